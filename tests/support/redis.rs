//! Redis for integration tests: a throw-away `redis-server` per test.
//!
//! [`TestRedis::start`] runs `redis-server` on a free loopback port with persistence off
//! (`--save '' --appendonly no`), in a temporary directory, optionally with `requirepass`,
//! and waits (with a deadline) until it answers `PING`. When `redis-server` is missing and we
//! run as root, the Debian package `redis-server` is installed once; otherwise the test is
//! skipped (`SKIPPED:` on stderr), except on CI (`CI=true`), where a missing server is a
//! failure, as for PostgreSQL.
//!
//! Teardown: dropping a [`TestRedis`] kills the server. A watchdog shell (its own process)
//! kills it too once the test process is gone, so an aborted run leaves nothing behind for
//! longer than a second.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::kong::free_port;

/// A running `redis-server`.
pub struct TestRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `requirepass`, when set.
    pub password: Option<String>,
    /// With TLS only: the server's certificate (PEM file), for `lua_ssl_trusted_certificate`.
    pub tls_cert: Option<std::path::PathBuf>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// The `redis-server` binary, installing the Debian package once if it is missing and we may.
fn binary() -> Result<&'static str, String> {
    static FOUND: OnceLock<Result<String, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let find = || {
                ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
                    .into_iter()
                    .find(|p| std::path::Path::new(p).is_file())
                    .map(str::to_owned)
            };
            if let Some(found) = find() {
                return Ok(found);
            }
            let root = Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
            if !root {
                return Err("redis-server is not installed (and we are not root)".into());
            }
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-qq", "redis-server"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status();
            find().ok_or_else(|| "redis-server could not be installed".into())
        })
        .as_deref()
        .map_err(Clone::clone)
}

fn on_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// A fresh server for a test, or `None` (printed as `SKIPPED:`) when none can be had off CI.
pub fn require_redis(password: Option<&str>) -> Option<TestRedis> {
    required(TestRedis::start(password))
}

/// A fresh TLS-only server ([`TestRedis::start_tls`]), or `None` as [`require_redis`].
pub fn require_redis_tls() -> Option<TestRedis> {
    required(TestRedis::start_tls())
}

fn required(started: Result<TestRedis, String>) -> Option<TestRedis> {
    match started {
        Ok(r) => Some(r),
        Err(reason) if !on_ci() => {
            let test = std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_owned();
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {reason}");
            None
        }
        Err(reason) => panic!("Redis is required on CI but unavailable: {reason}"),
    }
}

impl TestRedis {
    /// Starts a server (with `requirepass` when `password` is given).
    pub fn start(password: Option<&str>) -> Result<TestRedis, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut r = TestRedis {
            port: free_port(),
            password: password.map(str::to_owned),
            tls_cert: None,
            child: None,
            dir,
        };
        r.restart()?;
        Ok(r)
    }

    /// Starts a server that speaks only TLS, with a self-signed certificate for `localhost`.
    pub fn start_tls() -> Result<TestRedis, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| e.to_string())?;
        let cert = dir.path().join("redis.crt");
        std::fs::write(&cert, certified.cert.pem()).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.path().join("redis.key"),
            certified.key_pair.serialize_pem(),
        )
        .map_err(|e| e.to_string())?;
        let mut r = TestRedis {
            port: free_port(),
            password: None,
            tls_cert: Some(cert),
            child: None,
            dir,
        };
        r.restart()?;
        Ok(r)
    }

    /// Starts the server (again, on the same port, empty) after [`TestRedis::kill`].
    pub fn restart(&mut self) -> Result<(), String> {
        let bin = binary()?;
        let mut cmd = Command::new(bin);
        match &self.tls_cert {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(cert) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(self.dir.path().join("redis.key"))
                .args(["--tls-auth-clients", "no"]),
        };
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not run {bin}: {e}"))?;
        let pid = child.id();
        // Kills the server once this test process is gone, however it ends.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill -9 {pid} 2>/dev/null",
                me = std::process::id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.tls_cert.is_some() {
                // No TLS client here: a listening port is as much as can be checked.
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    return Ok(());
                }
            } else if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("redis-server on port {} did not answer", self.port))
    }

    /// Whether the server answers (`+PONG`, or `-NOAUTH` when it wants a password).
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")))
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command (authenticating first when there is a password) in `database`.
    pub fn cmd(&self, database: i64, args: &[&str]) -> redis::Value {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/{database}", self.port),
            None => format!("redis://127.0.0.1:{}/{database}", self.port),
        };
        crate::support::http::rt().block_on(async {
            let client = redis::Client::open(url).expect("redis url");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection");
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            cmd.query_async(&mut conn).await.expect("redis command")
        })
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
