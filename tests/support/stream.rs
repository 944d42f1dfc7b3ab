//! Stream upstreams and clients for the stream proxy tests, all blocking and line-based.
//!
//! The upstreams answer every line they read with `<tag> <line>`, so a test sees which service
//! a connection reached: [`TcpEcho`] in clear, [`TlsEcho`] over TLS with its own certificate,
//! [`UdpEcho`] per datagram (adding the port the datagram came from, which tells one proxy
//! session from the next). Each runs on its own threads and stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

/// How long a test client waits for an answer.
const ANSWER: Duration = Duration::from_secs(5);

/// A self-signed certificate: PEM for the Admin API and for servers, DER to recognise it.
pub struct Cert {
    /// The certificate, PEM.
    pub cert: String,
    /// Its key, PEM.
    pub key: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// An ECDSA P-256 self-signed certificate for `name`.
pub fn cert(name: &str) -> Cert {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed");
    Cert {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Answers each line of `stream` with `<tag> <line>` until it closes.
fn echo_lines<S: Read + Write>(stream: S, tag: &str) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        let answer = format!("{tag} {line}");
        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
            return;
        }
        let _ = reader.get_mut().flush();
        line.clear();
    }
}

/// Accepts on `listener` until `stop`, serving each connection with `serve` on its own thread.
fn accept_until<F>(listener: TcpListener, stop: Arc<AtomicBool>, serve: F)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(stream) = stream {
                let serve = serve.clone();
                std::thread::spawn(move || serve(stream));
            }
        }
    });
}

/// Wakes an accept loop so it sees its stop flag.
fn stop_listener(addr: SocketAddr, stop: &AtomicBool) {
    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}

/// A plain TCP line echo.
pub struct TcpEcho {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl TcpEcho {
    /// Starts an echo answering `<tag> <line>`.
    pub fn start(tag: &str) -> TcpEcho {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let tag = tag.to_owned();
        accept_until(listener, stop.clone(), move |s| echo_lines(s, &tag));
        TcpEcho { addr, stop }
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        stop_listener(self.addr, &self.stop);
    }
}

/// A TLS line echo serving its own certificate.
pub struct TlsEcho {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// The certificate it serves.
    pub cert: Cert,
    stop: Arc<AtomicBool>,
}

impl TlsEcho {
    /// Starts a TLS echo for `name` answering `<tag> <line>`.
    pub fn start(name: &str, tag: &str) -> TlsEcho {
        let cert = cert(name);
        let key = rustls_pemfile::private_key(&mut cert.key.as_bytes())
            .expect("PEM key")
            .expect("a key");
        let chain = vec![CertificateDer::from(cert.der.clone())];
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let tag = tag.to_owned();
        accept_until(listener, stop.clone(), move |s| {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            echo_lines(rustls::StreamOwned::new(conn, s), &tag);
        });
        TlsEcho { addr, cert, stop }
    }
}

impl Drop for TlsEcho {
    fn drop(&mut self) {
        stop_listener(self.addr, &self.stop);
    }
}

/// A UDP echo answering each datagram with `<tag> <sender port> <datagram>`.
pub struct UdpEcho {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpEcho {
    /// Starts a UDP echo.
    pub fn start(tag: &str) -> UdpEcho {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let addr = socket.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let tag = tag.to_owned();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::SeqCst) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let answer = format!("{tag} {} {text}", from.port());
                    let _ = socket.send_to(answer.as_bytes(), from);
                }
            }
        });
        UdpEcho { addr, stop }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Sends `line` over `stream` and reads one answer line; `Err("closed")` when the peer closes
/// first.
pub fn exchange<S: Read + Write>(stream: &mut S, line: &str) -> Result<String, String> {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return Err("closed".into()),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => answer.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err("closed".into())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    String::from_utf8(answer).map_err(|e| e.to_string())
}

/// Connects to `127.0.0.1:port` from `source` (any 127.0.0.0/8 address; the OS picks the
/// port) and exchanges one line.
pub fn tcp_line_from(source: &str, port: u16, line: &str) -> Result<String, String> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| e.to_string())?;
    let from: SocketAddr = format!("{source}:0").parse().map_err(|e| format!("{e}"))?;
    socket.bind(&from.into()).map_err(|e| e.to_string())?;
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    socket
        .connect_timeout(&to.into(), ANSWER)
        .map_err(|e| e.to_string())?;
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(ANSWER))
        .map_err(|e| e.to_string())?;
    exchange(&mut stream, line)
}

/// Connects to `127.0.0.1:port` and exchanges one line.
pub fn tcp_line(port: u16, line: &str) -> Result<String, String> {
    tcp_line_from("127.0.0.1", port, line)
}

/// A TLS connection to `127.0.0.1:port` asking for `sni`, handshaken: the stream and the
/// certificate (DER) the other end presented.
pub fn tls_connect(
    port: u16,
    sni: &str,
) -> Result<
    (
        rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
        Vec<u8>,
    ),
    String,
> {
    let provider = provider();
    let verifier = Arc::new(super::tls::Capture::new(provider.clone(), None));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(ANSWER))
        .map_err(|e| e.to_string())?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let seen = verifier.seen().ok_or("no certificate presented")?;
    Ok((stream, seen))
}

/// Sends `datagram` from `socket` to `127.0.0.1:port` and waits for one answer.
pub fn udp_exchange(socket: &UdpSocket, port: u16, datagram: &str) -> Result<String, String> {
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    socket
        .send_to(datagram.as_bytes(), ("127.0.0.1", port))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2048];
    let (n, _) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
