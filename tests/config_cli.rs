//! Configuration through the real binary: check, precedence, errors, and small commands.

use crate::support::http::get;
use crate::support::kong::{kong, kong_env, text, Kong};

fn conf_file(dir: &tempfile::TempDir, body: &str) -> String {
    let path = dir.path().join("kong.conf");
    std::fs::write(&path, body).expect("write");
    path.display().to_string()
}

#[test]
fn check_accepts_a_valid_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = conf_file(&dir, "log_level = debug # comment\nplugins = bundled\n");
    let out = kong(&["check", &conf]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("configuration at {conf} is valid")));
}

#[test]
fn check_names_key_value_reason_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = conf_file(
        &dir,
        "# ok\nlog_level = loud\nproxy_listen = 0.0.0.0:80 sssl\npg_port = 99999\n",
    );
    let out = kong(&["check", &conf]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains(&format!("log_level has an invalid value: 'loud' (debug, info, notice, warn, error, crit, alert, emerg) (from {conf}:2)")), "{t}");
    assert!(
        t.contains("proxy_listen has an invalid value: '0.0.0.0:80 sssl': unknown flag 'sssl'"),
        "{t}"
    );
    assert!(
        t.contains("pg_port must be between 0 and 65535: '99999'"),
        "{t}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = conf_file(&dir, "log_level = debug\nthis line has no equals sign\n");
    let out = kong(&["check", &conf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("{conf}:2: syntax error: expected 'key = value'")),
        "{}",
        text(&out)
    );
}

#[test]
fn unknown_keys_warn_but_do_not_fail() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = conf_file(&dir, "not_a_property = 1\nlua_package_path = ./?.lua\n");
    let out = kong(&["check", &conf]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("unknown property 'not_a_property'"), "{t}");
    assert!(
        !t.contains("lua_package_path"),
        "Kong's own keys load quietly: {t}"
    );
}

#[test]
fn start_with_a_broken_conf_names_the_key() {
    let k = Kong::configure("admin_listen = 127.0.0.1:notaport");
    let out = k.run(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.starts_with("Error: admin_listen has an invalid value: '127.0.0.1:notaport': invalid port 'notaport'"), "{t}");
    assert!(!k.prefix().join("pids/nginx.pid").exists());
}

#[test]
fn missing_conf_file_is_an_error() {
    let out = kong(&["start", "-c", "/nonexistent/kong.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Error: no file at: /nonexistent/kong.conf"));
}

#[test]
fn environment_overrides_the_file_and_flags_override_both() {
    let k = Kong::configure("log_level = info");
    let other = tempfile::tempdir().expect("tmp");
    let out = kong_env(
        &[
            "start",
            "-c",
            k.conf().to_str().expect("utf-8"),
            "-p",
            k.prefix().to_str().expect("utf-8"),
        ],
        &[
            ("KONG_LOG_LEVEL", "warn"),
            ("KONG_PREFIX", other.path().to_str().expect("utf-8")),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut k = k;
    k.set_running();
    let conf = &get(&k.admin("/")).json()["configuration"];
    assert_eq!(conf["log_level"], "warn", "env beats file");
    assert_eq!(
        conf["prefix"],
        k.prefix().display().to_string(),
        "-p beats env"
    );
}

#[test]
fn version_and_version_all() {
    let out = kong(&["version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3.10.0\n");
    let out = kong(&["version", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("3.10.0\nBuild: kong-rs "));
}

#[test]
fn unknown_or_missing_command_is_exit_code_1_with_usage() {
    let out = kong(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        text(&out)
    );
    let out = kong(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Usage: kong"), "{}", text(&out));
    let help = kong(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
}

#[test]
fn verbose_flags_explain_the_configuration() {
    let k = Kong::configure("pg_password = hunter2");
    let out = k.run(&["prepare", "--vv"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("reading config file at {}", k.conf().display())),
        "{t}"
    );
    assert!(t.contains("pg_password = \"******\""), "{t}");
    assert!(!t.contains("hunter2"), "{t}");
}

#[test]
fn config_init_writes_an_example_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("kong.yml");
    let out = kong(&["config", "init", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read_to_string(&file)
        .expect("written")
        .contains("_format_version: \"3.0\""));
    let again = kong(&["config", "init", file.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("already exists"));
}

#[test]
fn prepare_writes_the_prefix_without_starting() {
    let k = Kong::configure("");
    let out = k.run(&["prepare"]);
    assert!(out.status.success(), "{}", text(&out));
    let env = std::fs::read_to_string(k.prefix().join(".kong_env")).expect(".kong_env");
    assert!(env.contains(&format!("admin_listen = 127.0.0.1:{}", k.admin_port)));
    assert!(k.prefix().join("logs").is_dir());
    assert!(!k.prefix().join("pids/nginx.pid").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(k.prefix().join(".kong_env"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, ".kong_env may hold passwords");
}
