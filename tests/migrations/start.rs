//! `kong start` against PostgreSQL: it refuses a database that is not migrated, naming the
//! command to run, unless `--run-migrations`; it connects the read-only replica.

use super::*;

/// `kong start` refuses an un-bootstrapped PostgreSQL and one with new migrations, naming the
/// command to run; `--run-migrations` runs it and starts.
#[test]
fn start_on_postgres_needs_migrations_or_run_migrations() {
    let Some(t) = Target::postgres("start_refused") else {
        return;
    };
    let mut k = Kong::configure(&t.database_lines());
    let refused = k.run(&["start"]);
    assert_code(&refused, 1);
    assert!(
        text(&refused).contains("Database needs bootstrapping; run 'kong migrations bootstrap'"),
        "{}",
        text(&refused)
    );
    assert!(k.pid().is_none(), "no node left running");

    assert_eq!(
        t.kong_with(&t.embedded()[..1], &["bootstrap"])
            .expect("old bootstrap"),
        0
    );
    let refused = k.run(&["start"]);
    assert_code(&refused, 1);
    assert!(
        text(&refused).contains("New migrations available; run 'kong migrations up' to proceed"),
        "{}",
        text(&refused)
    );

    let started = k.run(&["start", "--run-migrations"]);
    assert_code(&started, 0);
    k.set_running();
    k.wait_ready();
    assert!(
        text(&started).contains("core migrated up to: 001_entities (executed)"),
        "{}",
        text(&started)
    );
    let info = get(&k.admin("/")).json();
    assert_eq!(info["configuration"]["database"], "postgres");
    assert_code(&t.kong(&["list"]), 0);
}

/// `kong start --run-migrations` on an empty PostgreSQL bootstraps it.
#[test]
fn start_with_run_migrations_bootstraps_postgres() {
    let Some(t) = Target::postgres("start_bootstrap") else {
        return;
    };
    let mut k = Kong::configure(&t.database_lines());
    let started = k.run(&["start", "--run-migrations"]);
    assert_code(&started, 0);
    k.set_running();
    k.wait_ready();
    assert_code(&t.kong(&["list"]), 0);
    let status = get(&k.admin("/status")).json();
    assert_eq!(status["database"]["reachable"], true);
}

/// A read-only replica (`pg_ro_*`) is connected at start: an unreachable one stops the node
/// with its address, a reachable one is used.
#[test]
fn start_connects_the_read_only_replica() {
    let Some(t) = Target::postgres("replica") else {
        return;
    };
    assert_code(&t.kong(&["bootstrap"]), 0);
    let nowhere = free_port();
    let k = Kong::configure(&format!(
        "{}pg_ro_host = 127.0.0.1\npg_ro_port = {nowhere}\n",
        t.database_lines()
    ));
    let refused = k.run(&["start"]);
    assert_code(&refused, 1);
    assert!(
        text(&refused).contains(&format!(
            "read-only replica) datastore at 127.0.0.1:{nowhere}/"
        )),
        "{}",
        text(&refused)
    );

    let (host, port) = t.pg_server().expect("a PostgreSQL target");
    let mut k = Kong::configure(&format!(
        "{}pg_ro_host = {host}\npg_ro_port = {port}\n",
        t.database_lines()
    ));
    let started = k.run(&["start"]);
    assert_code(&started, 0);
    k.set_running();
    k.wait_ready();
}

/// A changed migration stops `kong start` too.
#[test]
fn start_refuses_a_changed_checksum() {
    let Some(t) = Target::postgres("start_checksum") else {
        return;
    };
    assert_code(&t.kong(&["bootstrap"]), 0);
    t.sql("UPDATE migration_state SET checksum = 'tampered' WHERE name = '001_entities'");
    let k = Kong::configure(&t.database_lines());
    let refused = k.run(&["start"]);
    assert_code(&refused, 1);
    assert!(
        text(&refused).contains("migration core/001_entities differs"),
        "{}",
        text(&refused)
    );
}
