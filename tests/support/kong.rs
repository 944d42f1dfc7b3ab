//! Running the real `kong` binary on a temporary prefix.
//!
//! [`Kong::start`] writes a `kong.conf` with free loopback ports, runs `kong start`, and waits
//! (with a deadline) until the Admin API answers. Dropping a [`Kong`] stops the node and makes
//! sure its process is gone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kong")
}

/// A port that was free a moment ago. Ports come from 20000–32767, below Linux's ephemeral
/// range (32768–60999): a port the OS picked for us there could be taken by any outgoing
/// connection before the node binds it. Each port is handed out once per test run.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20000;
    const SPAN: u16 = 12768;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Start somewhere different in every run, so two runs on one machine rarely meet.
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % u32::from(SPAN)) as u16 + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = LOW + n % SPAN;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// Runs `kong ARGS` and returns its output.
pub fn kong(args: &[&str]) -> Output {
    kong_env(args, &[])
}

/// Runs `kong ARGS` with extra environment variables.
pub fn kong_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env_remove("KONG_PREFIX");
    cmd.output().expect("kong runs")
}

/// Text of stdout and stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is alive (and not a zombie): the node's own check.
pub fn alive(pid: i32) -> bool {
    kong::prefix::is_alive(pid)
}

/// A node started from the real binary.
pub struct Kong {
    /// Temporary directory holding the prefix and `kong.conf`.
    pub dir: tempfile::TempDir,
    /// Proxy HTTP port.
    pub proxy_port: u16,
    /// Proxy HTTPS port.
    pub proxy_ssl_port: u16,
    /// Admin HTTP port.
    pub admin_port: u16,
    /// Admin HTTPS port.
    pub admin_ssl_port: u16,
    stopped: bool,
}

impl Kong {
    /// A configured but not yet started node; `extra` lines are appended to `kong.conf`.
    pub fn configure(extra: &str) -> Kong {
        let dir = tempfile::tempdir().expect("temp dir");
        let k = Kong {
            dir,
            proxy_port: free_port(),
            proxy_ssl_port: free_port(),
            admin_port: free_port(),
            admin_ssl_port: free_port(),
            stopped: true,
        };
        let conf = format!(
            "prefix = {prefix}\nproxy_listen = 127.0.0.1:{p}, 127.0.0.1:{ps} ssl http2\nadmin_listen = 127.0.0.1:{a}, 127.0.0.1:{as_} ssl http2\n{extra}\n",
            prefix = k.prefix().display(),
            p = k.proxy_port,
            ps = k.proxy_ssl_port,
            a = k.admin_port,
            as_ = k.admin_ssl_port,
        );
        std::fs::write(k.conf(), conf).expect("write kong.conf");
        k
    }

    /// Configures and starts a node, panicking with kong's output if it fails.
    pub fn start(extra: &str) -> Kong {
        let mut k = Kong::configure(extra);
        let out = k.run(&["start"]);
        assert!(out.status.success(), "kong start failed: {}", text(&out));
        k.stopped = false;
        k.wait_ready();
        k
    }

    /// Runs `kong CMD -c conf -p prefix`-style commands against this node.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        let conf = self.conf();
        let prefix = self.prefix();
        let conf = conf.to_str().expect("utf-8 path");
        let prefix = prefix.to_str().expect("utf-8 path");
        match args[0] {
            "start" | "restart" | "reload" | "prepare" => all.extend(["-c", conf, "-p", prefix]),
            "stop" | "quit" | "health" => all.extend(["-p", prefix]),
            _ => {}
        }
        kong(&all)
    }

    /// Marks the node as running (after a manual `start`).
    pub fn set_running(&mut self) {
        self.stopped = false;
    }

    /// Marks the node as stopped (after a manual `stop`/`quit`).
    pub fn set_stopped(&mut self) {
        self.stopped = true;
    }

    /// Waits until the Admin API answers.
    pub fn wait_ready(&self) {
        let url = self.admin("/status");
        let ok = wait_until(Duration::from_secs(15), || reqwest::blocking_get_ok(&url));
        assert!(ok, "admin API at {url} did not come up");
    }

    /// The prefix directory.
    pub fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    /// The `kong.conf` path.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("kong.conf")
    }

    /// Appends lines to `kong.conf`.
    pub fn append_conf(&self, lines: &str) {
        let mut text = std::fs::read_to_string(self.conf()).expect("read kong.conf");
        text.push_str(lines);
        text.push('\n');
        std::fs::write(self.conf(), text).expect("write kong.conf");
    }

    /// Admin API URL for `path`.
    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// Proxy URL for `path`.
    pub fn proxy(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.proxy_port)
    }

    /// The pid in the prefix's pid file.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.prefix().join("pids/nginx.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Contents of a log file in the prefix.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.prefix().join("logs").join(name)).unwrap_or_default()
    }
}

impl Drop for Kong {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let pid = self.pid();
        let _ = self.run(&["stop"]);
        if let Some(pid) = pid {
            if alive(pid) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// Minimal blocking HTTP helpers for readiness checks.
mod reqwest {
    /// Whether a GET to `url` answers at all (any status).
    pub fn blocking_get_ok(url: &str) -> bool {
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let Ok(mut s) = std::net::TcpStream::connect(authority) else {
            return false;
        };
        use std::io::{Read, Write};
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 ")
    }
}

/// Reads a file, or an empty string.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
