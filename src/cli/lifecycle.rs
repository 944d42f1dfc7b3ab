//! Node lifecycle commands: start, stop, quit, restart, reload, health, prepare.
//!
//! `kong start` resolves the configuration (defaults < file < env < flags), prepares the prefix
//! and writes `.kong_env`; the node itself then runs from `.kong_env` only. In daemon mode the
//! node is this same binary re-executed as `kong _serve --daemon`: it reports readiness (or its
//! startup error) on a pipe to the starting process, then detaches from the terminal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{ConfArgs, PrefixArgs, StartArgs};
use crate::config::{self, Config, ProcessEnv};
use crate::prefix::{is_alive, Prefix};

/// The line a daemonized node prints when it is ready.
const READY: &str = "kong-ready";

/// 0 = quiet, 1 = `--v`, 2 = `--vv`.
static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets how much the lifecycle commands explain (`--v`, `--vv`).
pub fn set_verbosity(level: u8) {
    VERBOSITY.store(level, std::sync::atomic::Ordering::Relaxed);
}

fn verbosity() -> u8 {
    VERBOSITY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Resolves the configuration from `-c`/`-p`, the environment and `extra` flag overrides,
/// printing warnings (and, with `--v`, what was read).
pub(super) fn load(
    conf: &ConfArgs,
    extra: Vec<(&'static str, &'static str, String)>,
) -> anyhow::Result<Config> {
    let mut overrides = extra;
    if let Some(p) = &conf.prefix {
        overrides.push(("--prefix", "prefix", p.display().to_string()));
    }
    let loaded = config::load(
        &config::LoadOptions {
            conf_path: conf.conf.clone(),
            overrides,
            ..Default::default()
        },
        &ProcessEnv,
    )?;
    for w in &loaded.warnings {
        eprintln!("Warning: {w}");
    }
    explain(&loaded);
    Ok(loaded.config)
}

/// With `--v`, says which file and prefix are used; with `--vv`, prints the whole resolved
/// configuration (secrets masked).
pub(super) fn explain(loaded: &config::Loaded) {
    if verbosity() == 0 {
        return;
    }
    match &loaded.conf_path {
        Some(p) => eprintln!("reading config file at {}", p.display()),
        None => eprintln!("no config file found; using defaults, environment and flags"),
    }
    eprintln!("prefix: {}", loaded.config.prefix.display());
    if verbosity() >= 2 {
        if let Some(map) = loaded.config.to_json().as_object() {
            for (k, v) in map {
                eprintln!("  {k} = {v}");
            }
        }
    }
}

/// The prefix for commands that only take `-p`: the flag, else `KONG_PREFIX`, else `prefix`
/// in the default configuration file, else the default for this user.
fn prefix_of(args: &PrefixArgs) -> PathBuf {
    let path = args
        .prefix
        .clone()
        .or_else(|| std::env::var_os("KONG_PREFIX").map(PathBuf::from))
        .or_else(default_file_prefix)
        .unwrap_or_else(|| config::default_prefix(&ProcessEnv));
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|d| d.join(&path))
            .unwrap_or(path)
    }
}

/// `prefix` from the first default configuration file, read without validating the rest, so
/// `kong stop` finds a node that `kong start` placed where that file says.
fn default_file_prefix() -> Option<PathBuf> {
    let path = config::DEFAULT_PATHS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())?;
    let text = std::fs::read_to_string(path).ok()?;
    config::parse::parse(&text, &path.display().to_string())
        .ok()?
        .into_iter()
        .rev()
        .find(|e| e.key == "prefix" && !e.value.is_empty())
        .map(|e| PathBuf::from(e.value))
}

fn start_config(args: &StartArgs) -> anyhow::Result<Config> {
    if args.nginx_conf.is_some() || args.nginx_conf_flags.is_some() {
        eprintln!("Warning: --nginx-conf and --nginx-conf-flags have no effect (there is no nginx template)");
    }
    let mut extra = Vec::new();
    if let Some(secs) = args.db_timeout {
        extra.push(("--db-timeout", "pg_timeout", (secs * 1000).to_string()));
    }
    load(&args.conf, extra)
}

/// `kong start`.
pub fn start(args: &StartArgs) -> anyhow::Result<()> {
    let config = start_config(args)?;
    let prefix = Prefix::new(&config.prefix);
    prefix.prepare(&config)?;
    if args.run_migrations {
        super::migrations::run_for_start(&config, args.lock_timeout)?;
    }
    if config.daemon {
        spawn_daemon(&prefix)?;
        println!("Kong started");
        Ok(())
    } else {
        let mut ready = Foreground;
        crate::runtime::run(prefix.root(), &mut ready)?;
        Ok(())
    }
}

struct Foreground;

impl crate::runtime::Readiness for Foreground {
    fn ready(&mut self, _: &[(&'static str, std::net::SocketAddr)]) {
        println!("Kong started");
    }
}

/// Re-executes this binary as the node and waits until it is ready or has failed.
fn spawn_daemon(prefix: &Prefix) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("could not find the kong executable")?;
    let mut child = std::process::Command::new(exe)
        .arg("_serve")
        .arg("--daemon")
        .arg("--prefix")
        .arg(prefix.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start the kong node process")?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("could not read from the node process"))?;
    let mut output = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        if line == READY {
            return Ok(());
        }
        if !line.trim_start().starts_with("Run with --v") {
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child
        .wait()
        .context("could not wait for the node process")?;
    let message = output
        .trim()
        .strip_prefix("Error: ")
        .unwrap_or(output.trim())
        .to_string();
    if message.is_empty() {
        bail!(
            "the node exited during start-up ({status}); see the error log in {}/logs",
            prefix.root().display()
        );
    }
    bail!("{message}")
}

/// `kong _serve`: runs the node in this process.
pub fn serve(prefix: &Path, daemon: bool) -> anyhow::Result<()> {
    if daemon {
        // Leave the starting terminal's session so its hang-ups and job control don't reach us.
        let _ = nix::unistd::setsid();
        let mut ready = DaemonReady;
        crate::runtime::run(prefix, &mut ready)?;
    } else {
        crate::runtime::run(prefix, &mut crate::runtime::NoNotify)?;
    }
    Ok(())
}

struct DaemonReady;

impl crate::runtime::Readiness for DaemonReady {
    fn ready(&mut self, _: &[(&'static str, std::net::SocketAddr)]) {
        eprintln!("{READY}");
        // From now on nobody reads our terminal output: point stdio at /dev/null so a late
        // write can never fail or block.
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            use std::os::fd::AsRawFd;
            for fd in 0..=2 {
                let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

fn running_pid(prefix: &Path) -> anyhow::Result<i32> {
    if !prefix.exists() {
        bail!("no such prefix: {}", prefix.display());
    }
    Prefix::new(prefix)
        .running_pid()
        .ok_or_else(|| anyhow!("Kong is not running in {}", prefix.display()))
}

fn signal(pid: i32, sig: Signal) -> anyhow::Result<()> {
    kill(Pid::from_raw(pid), sig).with_context(|| format!("could not send {sig} to process {pid}"))
}

fn wait_exit(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `kong stop`: fast shutdown; waits until the process is gone.
pub fn stop(args: &PrefixArgs, quiet: bool) -> anyhow::Result<()> {
    let prefix = prefix_of(args);
    let pid = running_pid(&prefix)?;
    signal(pid, Signal::SIGTERM)?;
    if !wait_exit(pid, Duration::from_secs(10)) {
        signal(pid, Signal::SIGKILL)?;
        wait_exit(pid, Duration::from_secs(5));
    }
    if !quiet {
        println!("Kong stopped");
    }
    Ok(())
}

/// `kong quit`: graceful shutdown, forceful after `timeout` seconds.
pub fn quit(args: &PrefixArgs, timeout: u64, wait: u64) -> anyhow::Result<()> {
    let prefix = prefix_of(args);
    let pid = running_pid(&prefix)?;
    if wait > 0 {
        println!("Waiting {wait} seconds before quitting");
        std::thread::sleep(Duration::from_secs(wait));
    }
    signal(pid, Signal::SIGQUIT)?;
    if wait_exit(pid, Duration::from_secs(timeout)) {
        println!("Kong stopped (gracefully)");
    } else {
        signal(pid, Signal::SIGTERM)?;
        wait_exit(pid, Duration::from_secs(10));
        println!("Timeout, Kong stopped forcefully");
    }
    Ok(())
}

/// `kong restart`: stop if running, then start.
pub fn restart(args: &StartArgs) -> anyhow::Result<()> {
    let config = start_config(args)?;
    let prefix = Prefix::new(&config.prefix);
    if let Some(pid) = prefix.running_pid() {
        signal(pid, Signal::SIGTERM)?;
        if !wait_exit(pid, Duration::from_secs(5)) {
            bail!("Kong did not stop within 5 seconds (pid {pid})");
        }
    }
    start(args)
}

/// `kong reload`: merges the new configuration over `.kong_env`, validates it, and signals
/// the node, which applies it without closing its listening sockets.
pub fn reload(args: &ConfArgs) -> anyhow::Result<()> {
    let prefix_path = prefix_of(&PrefixArgs {
        prefix: args.prefix.clone(),
    });
    let pid = running_pid(&prefix_path)?;
    let prefix = Prefix::new(&prefix_path);
    let mut overrides = Vec::new();
    if let Some(p) = &args.prefix {
        overrides.push(("--prefix", "prefix", p.display().to_string()));
    }
    let loaded = config::load(
        &config::LoadOptions {
            base: Some(prefix.kong_env()),
            conf_path: args.conf.clone(),
            no_default_search: args.conf.is_none(),
            overrides,
        },
        &ProcessEnv,
    )?;
    for w in &loaded.warnings {
        eprintln!("Warning: {w}");
    }
    if loaded.config.prefix != prefix_path {
        bail!(
            "the configuration names prefix {} but the node runs in {}; a running node cannot move",
            loaded.config.prefix.display(),
            prefix_path.display()
        );
    }
    prefix.write_private(&prefix.kong_env(), loaded.config.to_kong_env().as_bytes())?;
    signal(pid, Signal::SIGHUP)?;
    println!("Kong reloaded");
    Ok(())
}

/// `kong health`.
pub fn health(args: &PrefixArgs) -> anyhow::Result<()> {
    let prefix = prefix_of(args);
    if !prefix.join(config::KONG_ENV).exists() {
        bail!("Kong is not running at {}", prefix.display());
    }
    let running = Prefix::new(&prefix).running_pid().is_some();
    println!(
        "kong......{}",
        if running { "running" } else { "not running" }
    );
    println!();
    if !running {
        bail!("some services are not running");
    }
    println!("Kong is healthy at {}", prefix.display());
    Ok(())
}

/// `kong prepare`.
pub fn prepare(args: &ConfArgs) -> anyhow::Result<()> {
    let config = load(args, Vec::new())?;
    let prefix = Prefix::new(&config.prefix);
    prefix.prepare(&config).map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
