//! Reading a TLS client's ClientHello without committing to anything, as nginx's `ssl_preread`
//! does: the server name it asks for routes the connection, and every byte read is kept so the
//! connection can still be terminated here or passed through untouched.
//!
//! The bytes are parsed by rustls' [`Acceptor`], which only reads: it never writes to the
//! socket, so dropping it after the hello leaves the client's handshake untouched. What is not a
//! ClientHello rustls accepts (plain bytes, SSLv2, a hello without null compression or with an
//! invalid name) yields no server name, and the connection routes on its addresses alone.

use std::time::Duration;

use rustls::server::Acceptor;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::error::StreamError;

/// How long a client may take to send its ClientHello (nginx's `preread_timeout`).
pub(crate) const PREREAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How much is read looking for a ClientHello (nginx's `preread_buffer_size`, plus one record
/// header): a hello that does not fit routes without a server name.
const PREREAD_LIMIT: usize = 16 * 1024 + 5;

/// What the client sent first.
#[derive(Debug, Default)]
pub(crate) struct Hello {
    /// The server name asked for (lower-case), if a ClientHello with one was read.
    pub sni: Option<String>,
    /// Every byte read from the client, to be replayed.
    pub bytes: Vec<u8>,
}

/// Reads from `stream` until a ClientHello is complete, the bytes cannot be one, the client
/// stops sending, or [`PREREAD_LIMIT`] bytes were read; within [`PREREAD_TIMEOUT`].
pub(crate) async fn client_hello(stream: &mut TcpStream) -> Result<Hello, StreamError> {
    let mut hello = Hello::default();
    match tokio::time::timeout(PREREAD_TIMEOUT, read_hello(stream, &mut hello)).await {
        Ok(Ok(())) => Ok(hello),
        Ok(Err(e)) => Err(StreamError::ClientRead(e)),
        Err(_) => Err(StreamError::PrereadTimeout),
    }
}

async fn read_hello(stream: &mut TcpStream, hello: &mut Hello) -> std::io::Result<()> {
    let mut acceptor = Acceptor::default();
    let mut chunk = [0u8; 4096];
    while hello.bytes.len() < PREREAD_LIMIT {
        let room = (PREREAD_LIMIT - hello.bytes.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Ok(());
        }
        hello.bytes.extend_from_slice(&chunk[..n]);
        match feed(&mut acceptor, &chunk[..n]) {
            Fed::Hello(sni) => {
                hello.sni = sni;
                return Ok(());
            }
            Fed::NotTls => return Ok(()),
            Fed::More => {}
        }
    }
    Ok(())
}

/// What feeding bytes to the acceptor gave.
#[derive(Debug, PartialEq, Eq)]
enum Fed {
    /// A complete ClientHello, with its server name if any.
    Hello(Option<String>),
    /// Not a ClientHello rustls accepts.
    NotTls,
    /// Incomplete so far.
    More,
}

fn feed(acceptor: &mut Acceptor, mut bytes: &[u8]) -> Fed {
    while !bytes.is_empty() {
        match acceptor.read_tls(&mut bytes) {
            Ok(0) | Err(_) => return Fed::NotTls,
            Ok(_) => {}
        }
    }
    match acceptor.accept() {
        Ok(Some(accepted)) => Fed::Hello(accepted.client_hello().server_name().map(str::to_owned)),
        Ok(None) => Fed::More,
        Err(_) => Fed::NotTls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The first flight of a rustls client asking for `name`.
    fn client_hello_bytes(name: &str) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
        let Ok(config) = config else {
            panic!("client config");
        };
        let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.to_owned()) else {
            panic!("server name");
        };
        let Ok(mut conn) = rustls::ClientConnection::new(Arc::new(config), server_name) else {
            panic!("client connection");
        };
        let mut out = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    #[test]
    fn reads_the_server_name_from_a_hello_in_pieces() {
        let bytes = client_hello_bytes("Db.Example.Test");
        let mut acceptor = Acceptor::default();
        let (first, rest) = bytes.split_at(7);
        assert_eq!(feed(&mut acceptor, first), Fed::More);
        assert_eq!(
            feed(&mut acceptor, rest),
            Fed::Hello(Some("db.example.test".into()))
        );
    }

    #[test]
    fn plain_bytes_are_not_tls() {
        let mut acceptor = Acceptor::default();
        assert_eq!(feed(&mut acceptor, b"GET / HTTP/1.1\r\n\r\n"), Fed::NotTls);
    }
}
