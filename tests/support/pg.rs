//! PostgreSQL for integration tests.
//!
//! Tests that need a database call [`require_pg`], which hands out one
//! process-wide [`TestPg`] and then [`TestPg::fresh_database`] for an isolated
//! database per test. The server comes from one of two places:
//!
//! * `KONG_TEST_PG_URL=postgres://user:pass@host:port/db` — an existing server,
//!   used as-is (fresh databases are created on it with `psql` and left behind;
//!   their names start with `t_`).
//! * Otherwise a throw-away cluster: `initdb` + `pg_ctl` from the highest
//!   `/usr/lib/postgresql/*/bin` (or `KONG_TEST_PG_BIN`), in a temp dir, with
//!   trust auth, superuser `kong`, database `kong`, listening on a free port on
//!   127.0.0.1 with durability switched off. PostgreSQL refuses to run as root,
//!   so when the test runs as root the server tools run as the `postgres` OS
//!   user via `runuser`.
//!
//! Teardown: an owned [`TestPg`] stops its cluster (`pg_ctl stop -m
//! immediate`) and removes its directory when dropped. The shared instance
//! lives in a `static`, and statics are never dropped, so every cluster also
//! gets a watchdog: a small `sh` loop in its own process group that polls the
//! test process with `kill -0` once a second and, once it is gone (normal
//! exit, panic, abort, SIGKILL or Ctrl-C alike), stops the cluster and deletes
//! its directory. The cluster therefore outlives the test process by at most
//! about a second. We chose a watchdog over `atexit`-style hooks because those
//! need `unsafe`/libc and do not run on abort or SIGKILL.
//!
//! [`require_pg`] never lets a PostgreSQL suite pass by skipping on CI: with
//! `CI=true` an unavailable server is a panic; elsewhere the test prints a
//! `SKIPPED:` line to stderr and returns early.
//!
//! All functions here are blocking (they run external commands); calling them
//! from `#[tokio::test]` is fine for tests.
#![allow(dead_code)] // Not every test uses every helper.

use std::ffi::OsString;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming an existing server to use instead of a throw-away cluster.
pub const URL_ENV: &str = "KONG_TEST_PG_URL";
/// Environment variable overriding the directory holding `initdb`, `pg_ctl` and `psql`.
pub const BIN_ENV: &str = "KONG_TEST_PG_BIN";

/// Superuser created in a throw-away cluster.
const SUPERUSER: &str = "kong";
/// Database created in a throw-away cluster.
const DEFAULT_DATABASE: &str = "kong";
/// OS user the server tools run as when the test process is root.
const OS_USER: &str = "postgres";
/// How long the server may take to start accepting connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting the server (a fresh port each time) before giving up.
const START_ATTEMPTS: u32 = 3;
/// Lines of the server log quoted in error messages.
const LOG_TAIL_LINES: usize = 30;

/// Polls the test process and tears the cluster down once it has gone.
/// Arguments: `$1` test pid, `$2` cluster root dir, `$3...` the stop command.
const WATCHDOG_SCRIPT: &str = r#"pid=$1; dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
if ! "$@" >/dev/null 2>&1; then
  p=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) && [ -n "$p" ] && kill -9 "$p"
fi
rm -rf "$dir""#;

/// A PostgreSQL server tests can connect to: connection details, plus the
/// throw-away cluster behind them when this helper started one.
pub struct TestPg {
    /// Host to connect to (`127.0.0.1` for a throw-away cluster).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User to connect as (a superuser for a throw-away cluster).
    pub user: String,
    /// Password, if the server needs one (`None` for a throw-away cluster, which trusts).
    pub password: Option<String>,
    /// The default database (`kong` for a throw-away cluster).
    pub database: String,
    /// `postgres://` URL of the default database.
    url: String,
    /// Query string of `KONG_TEST_PG_URL` (e.g. `sslmode=disable`), kept for derived URLs.
    query: Option<String>,
    /// `psql` binary used to run SQL.
    psql: PathBuf,
    /// The cluster this helper started, if any.
    cluster: Option<Cluster>,
}

/// A throw-away cluster: its directory, how to run its tools, and its watchdog.
struct Cluster {
    /// Directory holding `data/`, `log` and the unix socket; deleted on drop.
    root: tempfile::TempDir,
    /// Directory holding `initdb`, `pg_ctl`, `psql`.
    bin_dir: PathBuf,
    /// Whether server tools must run as the `postgres` OS user (we are root).
    as_postgres: bool,
    /// The watchdog process; killed when the cluster is stopped by drop.
    watchdog: Option<Child>,
}

impl TestPg {
    /// Connects to `KONG_TEST_PG_URL` when set, else starts a throw-away cluster.
    ///
    /// The returned value owns the cluster: dropping it stops the server.
    pub fn start() -> Result<TestPg, String> {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.trim().is_empty() => {
                let pg = TestPg::from_url(url.trim())?;
                pg.psql(&pg.database, "select 1")
                    .map_err(|e| format!("{URL_ENV} is set but its server is unusable: {e}"))?;
                Ok(pg)
            }
            _ => TestPg::start_cluster(),
        }
    }

    /// Describes an existing server from a `postgres://user:pass@host:port/db` URL.
    /// Nothing is checked or started.
    pub fn from_url(url: &str) -> Result<TestPg, String> {
        let parts = parse_url(url)?;
        Ok(TestPg {
            url: url.to_owned(),
            host: parts.host,
            port: parts.port,
            user: parts.user,
            password: parts.password,
            database: parts.database,
            query: parts.query,
            psql: client_psql(),
            cluster: None,
        })
    }

    /// Starts a throw-away cluster with superuser `kong` and database `kong`.
    pub fn start_cluster() -> Result<TestPg, String> {
        let bin_dir = find_bin_dir()?;
        let as_postgres = effective_uid()? == 0;
        let root = make_root_dir(as_postgres)?;
        let mut cluster = Cluster {
            root,
            bin_dir,
            as_postgres,
            watchdog: None,
        };
        cluster.init()?;
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        let port = cluster.start_server()?;

        let mut pg = TestPg {
            host: Ipv4Addr::LOCALHOST.to_string(),
            port,
            user: SUPERUSER.to_owned(),
            password: None,
            database: DEFAULT_DATABASE.to_owned(),
            url: String::new(),
            query: None,
            psql: cluster.bin_dir.join("psql"),
            cluster: Some(cluster),
        };
        pg.url = pg.url_for(DEFAULT_DATABASE);
        pg.psql("postgres", &format!("CREATE DATABASE {DEFAULT_DATABASE}"))?;
        Ok(pg)
    }

    /// `postgres://` URL of the default database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `postgres://` URL of `database` on this server, same credentials.
    pub fn url_for(&self, database: &str) -> String {
        let mut userinfo = percent_encode(&self.user);
        if let Some(password) = &self.password {
            userinfo.push(':');
            userinfo.push_str(&percent_encode(password));
        }
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let query = self
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "postgres://{userinfo}@{host}:{}/{}{query}",
            self.port,
            percent_encode(database)
        )
    }

    /// Creates a new, empty database with a unique name derived from
    /// `name_hint` and returns its URL.
    pub fn fresh_database(&self, name_hint: &str) -> Result<String, String> {
        let name = self.create_database(name_hint)?;
        Ok(self.url_for(&name))
    }

    /// Creates a new, empty database with a unique name derived from
    /// `name_hint` and returns the name (for `KONG_PG_DATABASE`).
    pub fn create_database(&self, name_hint: &str) -> Result<String, String> {
        let name = unique_database_name(name_hint);
        self.psql(&self.database, &format!("CREATE DATABASE \"{name}\""))?;
        Ok(name)
    }

    /// Runs `sql` in `database` with `psql` and returns its unaligned,
    /// tuples-only output, trimmed (e.g. `"1"` for `select 1`).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.psql);
        cmd.args(["-X", "-q", "-w", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(database))
            .arg("-c")
            .arg(sql)
            .env("PGCONNECT_TIMEOUT", "10");
        let out = run(&mut cmd)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `KONG_PG_*` environment variables pointing Kong at `database` on this server.
    pub fn kong_env(&self, database: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("KONG_DATABASE", "postgres".to_owned()),
            ("KONG_PG_HOST", self.host.clone()),
            ("KONG_PG_PORT", self.port.to_string()),
            ("KONG_PG_USER", self.user.clone()),
            ("KONG_PG_DATABASE", database.to_owned()),
        ];
        if let Some(password) = &self.password {
            env.push(("KONG_PG_PASSWORD", password.clone()));
        }
        env
    }

    /// Data directory of the throw-away cluster (`None` for `KONG_TEST_PG_URL`).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.cluster.as_ref().map(Cluster::data_dir)
    }
}

impl Cluster {
    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// The argv prefix running `tool` from the bin dir, as `postgres` when we are root.
    fn tool_argv(&self, tool: &str) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        if self.as_postgres {
            argv.extend(["runuser", "-u", OS_USER, "--"].map(OsString::from));
        }
        argv.push(self.bin_dir.join(tool).into_os_string());
        argv
    }

    /// A command running server tool `tool`, from the cluster dir (readable by `postgres`).
    fn tool(&self, tool: &str) -> Command {
        let argv = self.tool_argv(tool);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(self.root.path());
        cmd
    }

    /// The full argv of `pg_ctl stop -m immediate` for this cluster.
    fn stop_argv(&self) -> Vec<OsString> {
        let mut argv = self.tool_argv("pg_ctl");
        argv.extend(["stop", "-m", "immediate", "-t", "30", "-D"].map(OsString::from));
        argv.push(self.data_dir().into_os_string());
        argv
    }

    /// Runs `initdb` (trust auth, superuser `kong`, UTF-8, C locale).
    fn init(&self) -> Result<(), String> {
        let mut cmd = self.tool("initdb");
        cmd.arg("-D").arg(self.data_dir()).args([
            "--auth=trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(&mut cmd).map(drop)
    }

    /// Starts the server on a free port, retrying with another port if the
    /// chosen one was taken meanwhile, and waits until it accepts TCP connections.
    fn start_server(&self) -> Result<u16, String> {
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match self.pg_ctl_start(port) {
                Ok(()) => {
                    wait_for_tcp(port, STARTUP_TIMEOUT).map_err(|e| self.with_log(e))?;
                    return Ok(port);
                }
                Err(e) if self.log_says_port_taken() => last_error = e,
                Err(e) => return Err(self.with_log(e)),
            }
        }
        Err(self.with_log(format!(
            "PostgreSQL did not start after {START_ATTEMPTS} attempts: {last_error}"
        )))
    }

    fn pg_ctl_start(&self, port: u16) -> Result<(), String> {
        // A fresh log per attempt, so `log_says_port_taken` sees only this one.
        let _ = std::fs::remove_file(self.log_file());
        let options = format!(
            "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            self.root.path().display()
        );
        let mut cmd = self.tool("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", &STARTUP_TIMEOUT.as_secs().to_string(), "start"]);
        run(&mut cmd).map(drop)
    }

    fn log_says_port_taken(&self) -> bool {
        std::fs::read_to_string(self.log_file())
            .map(|log| log.contains("Address already in use"))
            .unwrap_or(false)
    }

    /// Appends the tail of the server log to an error message.
    fn with_log(&self, error: String) -> String {
        let log = match std::fs::read_to_string(self.log_file()) {
            Ok(log) => log,
            Err(e) => {
                return format!(
                    "{error}\n(no server log at {}: {e})",
                    self.log_file().display()
                )
            }
        };
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!(
            "{error}\nserver log ({}):\n{tail}",
            self.log_file().display()
        )
    }

    /// Spawns the watchdog that tears the cluster down after the test process exits.
    /// It runs in its own process group so a terminal Ctrl-C does not kill it.
    fn spawn_watchdog(&self) -> Result<Child, String> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("kong-test-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.root.path())
            .args(self.stop_argv())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        cmd.spawn().map_err(|e| {
            format!(
                "could not spawn PostgreSQL watchdog `{}`: {e}",
                describe(&cmd)
            )
        })
    }

    /// Stops the server (if running) and the watchdog; the directory goes with `root`.
    fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            // The watchdog may already have exited; either way we only reap it.
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if !self.data_dir().join("postmaster.pid").exists() {
            return;
        }
        let argv = self.stop_argv();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(self.root.path());
        if let Err(e) = run(&mut cmd) {
            let _ = writeln!(std::io::stderr(), "warning: stopping test PostgreSQL: {e}");
        }
    }
}

/// Dropping a cluster (alone, or with its [`TestPg`], including on a failed
/// start) stops the server; the directory is then removed by `root`'s drop.
impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The process-wide instance, started on first use; the error, if it could
/// not be had, is remembered so later callers fail fast with the same reason.
pub fn shared() -> Result<&'static TestPg, String> {
    static SHARED: OnceLock<Result<TestPg, String>> = OnceLock::new();
    SHARED
        .get_or_init(TestPg::start)
        .as_ref()
        .map_err(Clone::clone)
}

/// The shared server for a test that needs PostgreSQL.
///
/// Returns `None` (after printing `SKIPPED: <reason>` to stderr, bypassing
/// libtest's output capture so it is visible) when no server can be had; the
/// test should then return early. On CI (`CI=true`) it panics instead, so a
/// PostgreSQL suite can never pass by skipping there.
pub fn require_pg() -> Option<&'static TestPg> {
    let reason = match shared() {
        Ok(pg) => return Some(pg),
        Err(reason) => reason,
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned();
    if on_ci() {
        panic!(
            "\n\n*** PostgreSQL is required but unavailable, and CI=true forbids skipping ***\n\
             test: {test}\nreason: {reason}\n\
             Install the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin \
             or {BIN_ENV}) or point {URL_ENV} at a server.\n"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: PostgreSQL unavailable ({reason}); \
         set {URL_ENV}=postgres://user:pass@host:port/db or install the server binaries to run it"
    );
    None
}

/// Whether we run on CI (`CI` is `true`/`1`/`yes`, any case).
fn on_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Runs `cmd` to completion (stdin closed) and fails, naming the command and
/// quoting its stderr, unless it exits successfully.
fn run(cmd: &mut Command) -> Result<Output, String> {
    let shown = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    if out.status.success() {
        return Ok(out);
    }
    Err(format!(
        "`{shown}` failed ({}):\nstderr: {}\nstdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        String::from_utf8_lossy(&out.stdout).trim()
    ))
}

/// The command line of `cmd`, for messages, with passwords in URL arguments masked.
fn describe(cmd: &Command) -> String {
    let mut shown = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        shown.push(' ');
        shown.push_str(&mask_password(&arg.to_string_lossy()));
    }
    shown
}

/// The bin dir of the highest installed PostgreSQL (or `KONG_TEST_PG_BIN`).
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var(BIN_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(format!("{BIN_ENV}={} has no initdb", dir.display()))
        };
    }
    let base = Path::new("/usr/lib/postgresql");
    let entries = std::fs::read_dir(base).map_err(|e| {
        format!(
            "no PostgreSQL server binaries: cannot read {}: {e}",
            base.display()
        )
    })?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .max_by_key(|bin| version_key(bin))
        .ok_or_else(|| {
            format!(
                "no PostgreSQL server binaries (initdb, pg_ctl) under {}/*/bin",
                base.display()
            )
        })
}

/// Numeric version of `/usr/lib/postgresql/<version>/bin`, e.g. `[9, 6]`.
fn version_key(bin: &Path) -> Vec<u32> {
    bin.parent()
        .and_then(Path::file_name)
        .map(|v| {
            v.to_string_lossy()
                .split('.')
                .map(|n| n.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// The `psql` client for `KONG_TEST_PG_URL`: `/usr/bin/psql`, else a server
/// bin dir's, else whatever is on `PATH`.
fn client_psql() -> PathBuf {
    let system = PathBuf::from("/usr/bin/psql");
    if system.is_file() {
        return system;
    }
    find_bin_dir()
        .map(|bin| bin.join("psql"))
        .ok()
        .filter(|psql| psql.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// Effective uid of this process, from `/proc/self/status` (no `unsafe` needed).
fn effective_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status to learn our uid: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| "no effective uid in /proc/self/status".to_owned())
}

/// Makes the cluster's root dir; when root, under `/tmp` (always traversable)
/// and owned by `postgres`.
fn make_root_dir(as_postgres: bool) -> Result<tempfile::TempDir, String> {
    let parent = if as_postgres {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    let root = tempfile::Builder::new()
        .prefix("kong-test-pg-")
        .tempdir_in(&parent)
        .map_err(|e| format!("cannot create a temp dir in {}: {e}", parent.display()))?;
    if as_postgres {
        let mut chown = Command::new("chown");
        chown.arg(format!("{OS_USER}:")).arg(root.path());
        run(&mut chown)?;
    }
    Ok(root)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    Ok(super::kong::free_port())
}

/// Polls until 127.0.0.1:`port` accepts TCP connections, for at most `timeout`.
fn wait_for_tcp(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "PostgreSQL not accepting connections on {addr} after {timeout:?}: {e}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A database name unique across processes and calls: `t_<hint>_<pid>_<secs>_<n>`.
fn unique_database_name(hint: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("t_{hint}_{}_{secs}_{n}", std::process::id())
}

/// The pieces of a `postgres://` URL.
struct UrlParts {
    user: String,
    password: Option<String>,
    host: String,
    port: u16,
    database: String,
    query: Option<String>,
}

/// Parses `postgres[ql]://[user[:password]@]host[:port][/database][?query]`.
/// User defaults to `postgres`, port to 5432, database to the user.
fn parse_url(url: &str) -> Result<UrlParts, String> {
    let bad = |why: &str| format!("bad {URL_ENV} {:?}: {why}", mask_password(url));
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| bad("must start with postgres://"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (rest, query) = match rest.split_once('?') {
        Some((rest, q)) => (rest, Some(q.to_owned()).filter(|q| !q.is_empty())),
        None => (rest, None),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, password)) => (
            percent_decode(user),
            Some(percent_decode(password)).filter(|p| !p.is_empty()),
        ),
        None => (String::new(), None),
    };
    let user = if user.is_empty() {
        "postgres".to_owned()
    } else {
        user
    };
    let (host, port) = split_host_port(hostport).map_err(|why| bad(&why))?;
    let database = percent_decode(path);
    let database = if database.is_empty() {
        user.clone()
    } else {
        database
    };
    Ok(UrlParts {
        user,
        password,
        host,
        port,
        database,
        query,
    })
}

/// Splits `host[:port]` or `[v6]:port`; port defaults to 5432.
fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in host")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|e| format!("port {p:?}: {e}"))?,
        None => 5432,
    };
    Ok((host.to_owned(), port))
}

/// `url` with the password part of its userinfo replaced by `***`.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as-is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes everything but unreserved URL characters as `%XX`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
