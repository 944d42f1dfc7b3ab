//! Node lifecycle through the real binary: start, health, stop, quit, restart, reload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::http::{get, send, try_send};
use crate::support::kong::{alive, kong_env, text, wait_until, Kong};
use crate::support::upstream::EchoUpstream;

#[test]
fn start_serves_health_passes_and_stop_leaves_no_process() {
    let mut k = Kong::start("");
    let pid = k.pid().expect("pid file written");
    assert!(alive(pid));

    let info = get(&k.admin("/")).json();
    assert_eq!(info["tagline"], "Welcome to kong");
    assert_eq!(info["version"], "3.10.0");
    assert_eq!(info["configuration"]["database"], "sqlite");
    assert_eq!(info["pids"]["master"], pid);
    assert!(
        k.prefix().join("kong.db").is_file(),
        "embedded datastore created in the prefix"
    );

    let health = k.run(&["health"]);
    assert!(health.status.success(), "{}", text(&health));
    assert!(text(&health).contains(&format!("Kong is healthy at {}", k.prefix().display())));

    let stop = k.run(&["stop"]);
    assert!(stop.status.success(), "{}", text(&stop));
    assert!(text(&stop).contains("Kong stopped"));
    k.set_stopped();
    assert!(
        !alive(pid),
        "kong stop returns only once the process is gone"
    );
    assert!(
        !k.prefix().join("pids/nginx.pid").exists(),
        "pid file removed"
    );

    let health = k.run(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    let again = k.run(&["stop"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).contains("Kong is not running in"),
        "{}",
        text(&again)
    );
}

#[test]
fn second_start_on_a_busy_prefix_fails_clearly() {
    let k = Kong::start("");
    let out = k.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!(
            "Error: Kong is already running in {}",
            k.prefix().display()
        )),
        "{}",
        text(&out)
    );
    assert!(
        get(&k.admin("/")).status == 200,
        "the first node keeps running"
    );
}

#[test]
fn stale_pid_file_does_not_block_start() {
    let mut k = Kong::configure("");
    let dead = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().expect("wait");
    std::fs::create_dir_all(k.prefix().join("pids")).expect("mkdir");
    std::fs::write(k.prefix().join("pids/nginx.pid"), format!("{dead_pid}\n")).expect("write");
    let out = k.run(&["start"]);
    assert!(out.status.success(), "{}", text(&out));
    k.set_running();
    assert_ne!(k.pid(), Some(dead_pid as i32));
}

#[test]
fn start_failure_is_reported_and_leaves_nothing_running() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let k = Kong::configure(&format!("status_listen = 127.0.0.1:{port}"));
    let out = k.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(
        msg.contains(&format!(
            "could not listen on 127.0.0.1:{port} (status_listen)"
        )),
        "{msg}"
    );
    assert!(k.pid().is_none_or(|p| !alive(p)));
}

#[test]
fn restart_replaces_the_process() {
    let k = Kong::start("");
    let before = k.pid().expect("pid");
    let out = k.run(&["restart"]);
    assert!(out.status.success(), "{}", text(&out));
    let after = k.pid().expect("pid");
    assert_ne!(before, after);
    assert!(!alive(before));
    k.wait_ready();
}

/// A node routing `/slow` to an echo upstream (which must outlive the node's requests).
fn node_with_slow_route() -> (Kong, EchoUpstream) {
    let echo = EchoUpstream::start();
    let k = Kong::start("");
    for (path, body) in [
        (
            "/services",
            format!("{{\"name\": \"slow\", \"url\": \"{}\"}}", echo.url()),
        ),
        (
            "/services/slow/routes",
            r#"{"paths": ["/slow"], "strip_path": false}"#.to_owned(),
        ),
    ] {
        let r = send(
            "POST",
            &k.admin(path),
            &[("content-type", "application/json")],
            Some(body),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let live = wait_until(Duration::from_secs(5), || {
        get(&k.proxy("/slow")).status == 200
    });
    assert!(live, "the route never became live");
    (k, echo)
}

/// Sends a routed request whose body arrives slowly (the proxy buffers request bodies), so it
/// is in flight while the node is told to quit.
fn slow_request(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(b"POST /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 10\r\n\r\n01234")
        .expect("write head");
    s
}

fn refuses_connections(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[test]
fn quit_lets_a_slow_in_flight_request_finish() {
    let (mut k, _echo) = node_with_slow_route();
    let pid = k.pid().expect("pid");
    let mut slow = slow_request(k.proxy_port);
    std::thread::sleep(Duration::from_millis(100));

    let prefix = k.prefix();
    let quitter = std::thread::spawn(move || {
        kong_env(
            &["quit", "-t", "20", "-p", prefix.to_str().expect("utf-8")],
            &[],
        )
    });
    assert!(
        wait_until(Duration::from_secs(10), || refuses_connections(
            k.proxy_port
        )),
        "after quit the node stops accepting"
    );
    assert!(alive(pid), "the node waits for the in-flight request");

    slow.write_all(b"56789").expect("finish body");
    let mut response = String::new();
    slow.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("0123456789"),
        "the whole body went upstream: {response}"
    );

    let out = quitter.join().expect("quit thread");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Kong stopped (gracefully)"),
        "{}",
        text(&out)
    );
    k.set_stopped();
    assert!(!alive(pid));
}

#[test]
fn quit_closes_idle_keep_alive_connections_at_once() {
    // A connection that was answered and kept alive is idle: quitting closes it instead of
    // waiting for the quit timeout (20 s here).
    let (mut k, _echo) = node_with_slow_route();
    let pid = k.pid().expect("pid");
    let mut idle = TcpStream::connect(("127.0.0.1", k.proxy_port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    idle.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("request");
    let mut answer = [0u8; 4096];
    let n = idle.read(&mut answer).expect("answer");
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );

    let started = std::time::Instant::now();
    let out = kong_env(
        &[
            "quit",
            "-t",
            "20",
            "-p",
            k.prefix().to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Kong stopped (gracefully)"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "quit waited {:?} for an idle connection",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let closed = idle.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)) || closed.is_err(),
        "the idle connection was closed, not answered: {:?}",
        String::from_utf8_lossy(&rest)
    );
    k.set_stopped();
    assert!(!alive(pid));
}

#[test]
fn quit_stops_forcefully_after_its_timeout() {
    let (mut k, _echo) = node_with_slow_route();
    let pid = k.pid().expect("pid");
    let _slow = slow_request(k.proxy_port);
    std::thread::sleep(Duration::from_millis(100));
    let out = k.run(&["quit", "-t", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Timeout, Kong stopped forcefully"),
        "{}",
        text(&out)
    );
    k.set_stopped();
    assert!(!alive(pid));
}

#[test]
fn reload_during_traffic_drops_no_request() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let k = Kong::start("");
    let new_admin = crate::support::kong::free_port();
    let proxy = k.proxy("/reload-test");
    let admin = k.admin("/status");
    let reloaded = Arc::new(AtomicBool::new(false));
    let done = reloaded.clone();
    // Bounded: runs until 200 requests after the reload, never more than 20,000 in all.
    let traffic = std::thread::spawn(move || {
        let (mut failures, mut sent, mut after) = (Vec::new(), 0u32, 0u32);
        while after < 200 && sent < 20_000 {
            let url = if sent % 2 == 0 { &proxy } else { &admin };
            match try_send("GET", url, &[], None) {
                Ok(r) if r.status == 404 || r.status == 200 => {}
                Ok(r) => failures.push(format!("{url}: status {}", r.status)),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
            sent += 1;
            if done.load(Ordering::SeqCst) {
                after += 1;
            }
        }
        (failures, sent, after)
    });
    std::thread::sleep(Duration::from_millis(100));
    k.append_conf(&format!(
        "log_level = debug\nadmin_listen = 127.0.0.1:{}, 127.0.0.1:{new_admin}\n",
        k.admin_port
    ));
    let out = k.run(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Kong reloaded"));
    let url = format!("http://127.0.0.1:{new_admin}/");
    assert!(
        wait_until(Duration::from_secs(5), || try_send("GET", &url, &[], None)
            .is_ok()),
        "the listener added by reload answers"
    );
    reloaded.store(true, Ordering::SeqCst);

    let (failures, sent, after) = traffic.join().expect("traffic thread");
    assert!(
        failures.is_empty(),
        "requests failed during reload: {failures:?}"
    );
    assert_eq!(
        after, 200,
        "traffic continued after the reload ({sent} requests in all)"
    );

    let info = get(&url).json();
    assert_eq!(info["configuration"]["log_level"], "debug");
    assert!(
        wait_until(Duration::from_secs(5), || refuses_connections(
            k.admin_ssl_port
        )),
        "the listener removed by reload closes"
    );
}

#[test]
fn reload_with_a_broken_configuration_is_refused() {
    let k = Kong::start("");
    k.append_conf("log_level = loud");
    let out = k.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("log_level has an invalid value: 'loud'"),
        "{}",
        text(&out)
    );
    assert_eq!(
        get(&k.admin("/")).json()["configuration"]["log_level"],
        "notice"
    );
}

/// Kills a child process when dropped, so a failed assertion leaves nothing running.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reload_that_cannot_bind_keeps_the_node_as_it_was() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let k = Kong::start("");
    k.append_conf(&format!(
        "log_level = debug\nadmin_listen = 127.0.0.1:{}, 127.0.0.1:{port}\n",
        k.admin_port
    ));
    let out = k.run(&["reload"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        wait_until(Duration::from_secs(5), || k
            .log("error.log")
            .contains("reload refused")),
        "the refusal is logged: {}",
        k.log("error.log")
    );
    let info = get(&k.admin("/")).json();
    assert_eq!(
        info["configuration"]["log_level"], "notice",
        "old configuration kept"
    );
    let ssl = crate::support::http::try_send(
        "GET",
        &format!("https://127.0.0.1:{}/", k.admin_ssl_port),
        &[],
        None,
    );
    assert!(ssl.is_ok(), "old listeners kept: {ssl:?}");
}

#[test]
fn foreground_mode_serves_until_terminated() {
    let k = Kong::configure("");
    let child = std::process::Command::new(crate::support::kong::bin())
        .args(["start", "-c", k.conf().to_str().expect("utf-8")])
        .env("KONG_NGINX_DAEMON", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut child = ChildGuard(child);
    k.wait_ready();
    // The admin API answers as soon as it is bound; the pid file follows right after.
    wait_until(Duration::from_secs(5), || k.pid().is_some());
    assert_eq!(
        k.pid(),
        Some(child.0.id() as i32),
        "the foreground process is the node"
    );
    let health = k.run(&["health"]);
    assert!(health.status.success(), "{}", text(&health));
    nix_kill(child.0.id(), "TERM");
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
}

fn nix_kill(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// The node raises its soft open-files limit to the hard one (a soft 1,024 is a common default,
/// and every connection, kept-alive probe and log file counts against it).
#[test]
fn the_node_raises_its_open_files_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .expect("hard open files limit");
    if hard <= 256 {
        return; // nothing to raise from on this machine
    }
    let mut k = Kong::configure("");
    let conf = k.conf();
    let prefix = k.prefix();
    // Started with a soft limit of 256 under the hard one.
    let out = std::process::Command::new("prlimit")
        .arg("--nofile=256:")
        .arg("--")
        .arg(crate::support::kong::bin())
        .args(["start", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(&prefix)
        .output()
        .expect("prlimit runs (util-linux)");
    assert!(out.status.success(), "kong start failed: {}", text(&out));
    k.set_running();
    k.wait_ready();
    let pid = k.pid().expect("pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("node limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], hard.to_string(), "soft limit raised: {line}");
}
