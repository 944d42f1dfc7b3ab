//! The commands' surroundings: a configured `pg_schema`, unreachable servers, `database = off`,
//! SQLite files from before `migration_state`, and a terminal for `reset`'s question.

use super::*;

/// `pg_schema` is created by bootstrap and holds every table.
#[test]
fn bootstrap_creates_the_configured_schema() {
    let Some(t) = Target::postgres("schema") else {
        return;
    };
    t.write_conf("pg_schema = kong_data\n");
    assert_code(&t.kong(&["list"]), 3);
    assert_code(&t.kong(&["bootstrap"]), 0);
    assert_code(&t.kong(&["list"]), 0);
    assert_eq!(
        t.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'kong_data' AND tablename IN ('entities', 'migration_state', 'locks')"),
        "3"
    );
    assert_eq!(
        t.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    assert_code(&t.kong(&["reset", "--yes"]), 0);
    assert_code(&t.kong(&["list"]), 3);
}

/// A server that cannot be reached is named (host:port/database) with the reason, and the
/// password is never shown.
#[test]
fn connection_errors_name_the_server_not_the_password() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let conf = dir.path().join("kong.conf");
    std::fs::write(
        &conf,
        format!(
            "prefix = {}\ndatabase = postgres\npg_host = 127.0.0.1\npg_port = {port}\n\
             pg_database = nowhere\npg_password = hunter2-secret\n",
            dir.path().join("prefix").display()
        ),
    )
    .expect("write");
    let conf = conf.display().to_string();
    let out = kong(&["migrations", "list", "-c", &conf, "--db-timeout", "2"]);
    assert_code(&out, 1);
    let said = text(&out);
    assert!(
        said.contains(&format!("127.0.0.1:{port}/nowhere")),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
}

/// With `database = off` there is nothing to migrate.
#[test]
fn database_off_has_nothing_to_migrate() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = dir.path().join("kong.conf");
    std::fs::write(&conf, "database = off\n").expect("write");
    let out = kong(&["migrations", "list", "-c", &conf.display().to_string()]);
    assert_code(&out, 1);
    assert!(
        text(&out).contains("no database to migrate"),
        "{}",
        text(&out)
    );
}

/// An SQLite file written before `migration_state` existed (executed migrations recorded in
/// `schema_migrations`) is adopted: its history counts, and `up` brings it up to date.
#[test]
fn sqlite_files_with_the_old_bookkeeping_are_adopted() {
    let t = Target::sqlite();
    std::fs::create_dir_all(t.prefix()).expect("prefix");
    let base = t.embedded()[0];
    t.sql(
        "CREATE TABLE schema_migrations (subsystem TEXT NOT NULL, name TEXT NOT NULL, \
         checksum TEXT NOT NULL, executed_at INTEGER NOT NULL, PRIMARY KEY (subsystem, name))",
    );
    t.sql(base.text.trim());
    t.sql(&format!(
        "INSERT INTO schema_migrations VALUES ('core', '000_base', '{}', 1700000000)",
        base.checksum()
    ));
    let list = t.kong(&["list"]);
    assert_code(&list, 5);
    assert!(text(&list).contains("core: 000_base"), "{}", text(&list));
    let up = t.kong(&["up"]);
    assert_code(&up, 0);
    assert!(
        text(&up).contains("001_entities (executed)"),
        "{}",
        text(&up)
    );
    assert!(!t.has_table("schema_migrations"));
    assert_code(&t.kong(&["list"]), 0);
}

/// On a terminal, reset asks; anything but yes cancels. Bootstrap draws its progress there.
#[test]
fn reset_asks_on_a_terminal() {
    let t = Target::sqlite();
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: reset_asks_on_a_terminal: no `script` to provide a terminal");
        return;
    }
    let in_terminal = |args: &str, input: &str| {
        use std::io::Write;
        let cmd = format!(
            "{} migrations {args} -c {}",
            crate::support::kong::bin(),
            t.conf().display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("answer");
        drop(stdin);
        child.wait_with_output().expect("wait")
    };
    let boot = in_terminal("bootstrap", "");
    assert_code(&boot, 0);
    assert!(
        text(&boot).contains("core migrated up to: 001_entities (executed)"),
        "{}",
        text(&boot)
    );

    let cancelled = in_terminal("reset", "n\n");
    assert_code(&cancelled, 0);
    let said = text(&cancelled);
    assert!(
        said.contains("Are you sure? This operation is irreversible. [y/n]"),
        "{said}"
    );
    assert!(said.contains("cancelled"), "{said}");
    assert_code(&t.kong(&["list"]), 0);

    let confirmed = in_terminal("reset", "y\n");
    assert_code(&confirmed, 0);
    assert!(
        text(&confirmed).contains("Database successfully reset"),
        "{}",
        text(&confirmed)
    );
    assert_code(&t.kong(&["list"]), 3);
}
