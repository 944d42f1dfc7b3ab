//! `kong migrations` and `kong start`'s schema checks, through the real binary, on the embedded
//! SQLite file and on PostgreSQL. Tests marked "on both" run once per backend
//! (`<test>::sqlite`, `<test>::postgres`), each on its own fresh database.

mod edges;
mod start;
pub(crate) mod target;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use kong::store::migrations::lock::Lock;
use kong::store::migrations::{Migration, Migrator};
use serde_json::Value;

use crate::support::http::{get, rt};
use crate::support::kong::{free_port, kong, Kong};
use target::{text, Target};

/// Defines `mod $name { fn sqlite(); fn postgres(); }`, both running `$body` on a fresh target.
macro_rules! on_both {
    ($(#[doc = $doc:literal])* fn $name:ident($t:ident: &Target) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            fn check($t: &Target) $body

            #[test]
            fn sqlite() {
                check(&Target::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(t) = Target::postgres(stringify!($name)) {
                    check(&t);
                }
            }
        }
    };
}

/// A migration with a teardown, as a later version might ship: `up` adds, `finish` completes.
const PENDING: Migration = Migration::new(
    "002_with_teardown",
    "CREATE TABLE upgrade_added (x INTEGER);\n-- teardown\nCREATE TABLE upgrade_finished (x INTEGER);\n",
);

/// This binary's migrations plus [`PENDING`].
fn with_pending(t: &Target) -> Vec<Migration> {
    let mut list = t.embedded().to_vec();
    list.push(PENDING);
    list
}

fn assert_code(out: &std::process::Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}

on_both! {
    /// bootstrap → list says up to date → bootstrap again is a no-op; status is JSON.
    fn bootstrap_then_list_then_bootstrap_again(t: &Target) {
        let list = t.kong(&["list"]);
        assert_code(&list, 3);
        assert!(text(&list).contains("Database needs bootstrapping"), "{}", text(&list));

        let out = t.kong(&["bootstrap"]);
        assert_code(&out, 0);
        let said = text(&out);
        for line in [
            "Bootstrapping database...",
            "migrating core on database '",
            "core migrated up to: 000_base (executed)",
            "core migrated up to: 001_entities (executed)",
            "core migrated up to: 002_ratelimiting_metrics (executed)",
            "3 migrations processed",
            "3 executed",
            "Database is up-to-date",
        ] {
            assert!(said.contains(line), "missing {line:?} in:\n{said}");
        }
        assert!(t.has_table("entities") && t.has_table("cluster_events"));

        let list = t.kong(&["list"]);
        assert_code(&list, 0);
        assert!(
            text(&list).contains("Executed migrations:\ncore: 000_base, 001_entities, 002_ratelimiting_metrics"),
            "{}",
            text(&list)
        );

        let quiet = t.kong(&["list", "--quiet"]);
        assert_code(&quiet, 0);
        assert!(quiet.stdout.is_empty(), "{}", text(&quiet));

        let again = t.kong(&["bootstrap"]);
        assert_code(&again, 0);
        assert!(text(&again).contains("Database already bootstrapped"), "{}", text(&again));
        assert!(!text(&again).contains("migrated up to"), "{}", text(&again));

        let status = t.kong(&["status"]);
        assert_code(&status, 0);
        let json: Value = serde_json::from_slice(&status.stdout).expect("status prints JSON");
        assert_eq!(json["needs_bootstrap"], false);
        assert_eq!(json["executed"]["core"], serde_json::json!(["000_base", "001_entities", "002_ratelimiting_metrics"]));
        assert_eq!(json["new"], serde_json::json!({}));
    }
}

on_both! {
    /// reset without --yes and without a terminal refuses; with --yes it drops everything.
    fn reset_needs_yes_without_a_terminal(t: &Target) {
        let nothing = t.kong(&["reset", "--yes"]);
        assert_code(&nothing, 1);
        assert!(text(&nothing).contains("Database not bootstrapped, nothing to reset"));

        assert_code(&t.kong(&["bootstrap"]), 0);
        let refused = t.kong(&["reset"]);
        assert_code(&refused, 1);
        assert!(text(&refused).contains("--yes"), "{}", text(&refused));
        assert_code(&t.kong(&["list"]), 0);

        let reset = t.kong(&["reset", "--yes"]);
        assert_code(&reset, 0);
        assert!(text(&reset).contains("Database successfully reset"), "{}", text(&reset));
        assert_code(&t.kong(&["list"]), 3);
        assert!(!t.has_table("entities"));

        // bootstrap --force resets a bootstrapped database and bootstraps it again.
        assert_code(&t.kong(&["bootstrap"]), 0);
        let forced = t.kong(&["bootstrap", "--force"]);
        assert_code(&forced, 0);
        assert!(text(&forced).contains("Database successfully reset"), "{}", text(&forced));
        assert!(text(&forced).contains("3 migrations processed"), "{}", text(&forced));
        assert_code(&t.kong(&["list"]), 0);
    }
}

on_both! {
    /// Two bootstraps at once: both succeed, the work is done once.
    fn parallel_bootstraps_do_the_work_once(t: &Target) {
        let a = t.spawn(&["bootstrap"]);
        let b = t.spawn(&["bootstrap"]);
        let outs = [a, b].map(|c| c.wait_with_output().expect("wait"));
        for out in &outs {
            assert_code(out, 0);
        }
        let did_work = outs.iter().filter(|o| text(o).contains("3 migrations processed")).count();
        let no_op = outs.iter().filter(|o| text(o).contains("Database already bootstrapped")).count();
        assert_eq!((did_work, no_op), (1, 1), "{}\n---\n{}", text(&outs[0]), text(&outs[1]));
        assert_code(&t.kong(&["list"]), 0);
        assert_eq!(t.sql("SELECT CAST(count(*) AS TEXT) FROM migration_state"), "3");
    }
}

on_both! {
    /// Two `up`s at once after an upgrade: both succeed, the new migration runs once.
    fn parallel_ups_do_the_work_once(t: &Target) {
        assert_eq!(t.kong_with(&t.embedded()[..1], &["bootstrap"]).expect("old bootstrap"), 0);
        let a = t.spawn(&["up"]);
        let b = t.spawn(&["up"]);
        let outs = [a, b].map(|c| c.wait_with_output().expect("wait"));
        for out in &outs {
            assert_code(out, 0);
        }
        let ran = outs
            .iter()
            .filter(|o| text(o).contains("core migrated up to: 001_entities (executed)"))
            .count();
        let no_op = outs.iter().filter(|o| text(o).contains("Database is already up-to-date")).count();
        assert_eq!((ran, no_op), (1, 1), "{}\n---\n{}", text(&outs[0]), text(&outs[1]));
        assert_code(&t.kong(&["list"]), 0);
    }
}

on_both! {
    /// A node that finds the lock taken waits for it, then re-reads the state: what the other
    /// node did is not done again.
    fn a_waiting_node_finds_the_work_done(t: &Target) {
        assert_eq!(t.kong_with(&t.embedded()[..1], &["bootstrap"]).expect("old bootstrap"), 0);
        let db = t.db();
        let lock = rt()
            .block_on(Lock::acquire(&db, Duration::from_secs(600), Duration::ZERO, &mut |_| {}))
            .expect("lock taken");

        let mut waiting = t.spawn(&["up", "--lock-timeout", "300"]);
        let stdout = waiting.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a line").expect("utf-8");
        assert!(
            first.contains(&format!("waiting for the migrations lock held by {}", lock.owner())),
            "{first}"
        );

        // Meanwhile "the other node" (this test, holding the lock) runs the new migration.
        let migrator = Migrator::new(db.clone(), &t.embedded()[..1]);
        assert!(rt().block_on(migrator.state()).expect("state").new.is_empty());
        let upgraded = Migrator::new(db.clone(), t.embedded());
        let state = rt().block_on(upgraded.state()).expect("state");
        assert_eq!(state.new, ["001_entities", "002_ratelimiting_metrics"]);
        for m in &t.embedded()[1..] {
            record_as_other_node(&db, m);
        }
        rt().block_on(lock.release());

        let rest: Vec<String> = lines.map(|l| l.expect("utf-8")).collect();
        let out = waiting.wait_with_output().expect("wait");
        assert_code(&out, 0);
        let rest = rest.join("\n");
        assert!(rest.contains("Database is already up-to-date"), "{rest}");
        assert!(!rest.contains("migrated up to"), "{rest}");
        assert_code(&t.kong(&["list"]), 0);
        rt().block_on(db.close());
    }
}

/// Applies `m` and records it, as another node holding the lock would.
fn record_as_other_node(db: &kong::store::migrations::Db, m: &Migration) {
    use kong::store::migrations::db::Arg;
    let record = "INSERT INTO migration_state (subsystem, name, checksum, state, updated_at) \
                  VALUES ($1, $2, $3, 'executed', 0)";
    let args = [
        Arg::Text("core".into()),
        Arg::Text(m.name.into()),
        Arg::Text(m.checksum()),
    ];
    rt().block_on(db.apply(m.up(), record, &args))
        .expect("migration applied");
}

on_both! {
    /// A lock held past --lock-timeout fails clearly; an expired lock is taken over.
    fn a_held_lock_times_out_and_an_expired_one_is_taken_over(t: &Target) {
        assert_eq!(t.kong_with(&t.embedded()[..1], &["bootstrap"]).expect("old bootstrap"), 0);
        let db = t.db();
        let lock = rt()
            .block_on(Lock::acquire(&db, Duration::from_secs(600), Duration::ZERO, &mut |_| {}))
            .expect("lock taken");
        let out = t.kong(&["up", "--lock-timeout", "1"]);
        assert_code(&out, 1);
        assert!(
            text(&out).contains(&format!(
                "timed out after 1 s waiting for the migrations lock held by {}",
                lock.owner()
            )),
            "{}",
            text(&out)
        );
        assert_code(&t.kong(&["list"]), 5);

        // The holder died long ago: its lock has expired.
        t.sql("UPDATE locks SET expires_at = 0");
        let out = t.kong(&["up", "--lock-timeout", "1"]);
        assert_code(&out, 0);
        assert!(text(&out).contains("001_entities (executed)"), "{}", text(&out));
        assert_eq!(t.sql("SELECT CAST(count(*) AS TEXT) FROM locks"), "0");
        rt().block_on(db.close());
    }
}

on_both! {
    /// A migration file that changed after it ran is refused by every command but status.
    fn a_changed_checksum_is_refused(t: &Target) {
        assert_code(&t.kong(&["bootstrap"]), 0);
        t.sql("UPDATE migration_state SET checksum = 'tampered' WHERE name = '000_base'");
        for args in [&["up"][..], &["list"], &["finish"], &["up", "--force"]] {
            let out = t.kong(args);
            assert_code(&out, 1);
            let said = text(&out);
            assert!(
                said.contains("migration core/000_base differs from the one that ran on this database")
                    && said.contains("recorded checksum tampered"),
                "{args:?}: {said}"
            );
        }
        let status = t.kong(&["status"]);
        assert_code(&status, 0);
        let json: Value = serde_json::from_slice(&status.stdout).expect("JSON");
        assert_eq!(json["checksum_mismatch"]["core"], serde_json::json!(["000_base"]));
    }
}

on_both! {
    /// A database made by an earlier version keeps its data through `kong migrations up`.
    fn upgrade_from_an_earlier_version_keeps_data(t: &Target) {
        assert_eq!(t.kong_with(&t.embedded()[..1], &["bootstrap"]).expect("old bootstrap"), 0);
        assert!(!t.has_table("entities"));
        let event = if t.is_postgres() {
            "INSERT INTO cluster_events (id, node_id, at, expire_at, channel, data) VALUES \
             ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', \
             now(), now() + interval '1 hour', 'invalidations', 'kept')"
        } else {
            "INSERT INTO cluster_events (id, node_id, at, expire_at, channel, data) VALUES \
             ('e1', 'n1', 1.0, 2.0, 'invalidations', 'kept')"
        };
        t.sql(event);

        let list = t.kong(&["list"]);
        assert_code(&list, 5);
        assert!(
            text(&list).contains("New migrations available:\ncore: 001_entities"),
            "{}",
            text(&list)
        );
        let up = t.kong(&["up"]);
        assert_code(&up, 0);
        for line in [
            "core migrated up to: 001_entities (executed)",
            "2 migrations processed",
            "2 executed",
            "Database is up-to-date",
        ] {
            assert!(text(&up).contains(line), "missing {line:?} in:\n{}", text(&up));
        }
        assert_code(&t.kong(&["list"]), 0);
        assert!(t.has_table("entities"));
        assert_eq!(t.sql("SELECT data FROM cluster_events"), "kept");
        let again = t.kong(&["up"]);
        assert_code(&again, 0);
        assert!(text(&again).contains("Database is already up-to-date"), "{}", text(&again));
    }
}

on_both! {
    /// up leaves a migration with a teardown pending (list exit 4, up refuses); finish runs
    /// the teardown. Played with a later version's list that has such a migration.
    fn a_pending_migration_is_completed_by_finish(t: &Target) {
        assert_code(&t.kong(&["bootstrap"]), 0);
        let later = with_pending(t);
        assert_eq!(t.kong_with(&later, &["list"]).expect("list"), 5);
        assert_eq!(t.kong_with(&later, &["up"]).expect("up"), 0);
        assert!(t.has_table("upgrade_added") && !t.has_table("upgrade_finished"));
        assert_eq!(
            t.sql("SELECT state FROM migration_state WHERE name = '002_with_teardown'"),
            "pending"
        );
        assert_eq!(t.kong_with(&later, &["list"]).expect("list"), 4);
        let refused = t.kong_with(&later, &["up"]).expect_err("up refuses pending");
        assert!(refused.to_string().contains("Database has pending migrations; run 'kong migrations finish'"));

        // Nodes may start with pending migrations: old and new versions share the database.
        let migrator = Migrator::new(t.db(), &later);
        let state = rt().block_on(migrator.prepare_for_start(false, &mut |_| {})).expect("startable");
        assert_eq!(state.pending, ["002_with_teardown"]);

        // This binary does not know the migration: it is listed as unknown, not an error.
        let list = t.kong(&["list"]);
        assert!(text(&list).contains("Unknown migrations"), "{}", text(&list));

        assert_eq!(t.kong_with(&later, &["finish"]).expect("finish"), 0);
        assert!(t.has_table("upgrade_finished"));
        assert_eq!(t.kong_with(&later, &["list"]).expect("list"), 0);
        assert_eq!(t.kong_with(&later, &["finish"]).expect("finish again"), 0);
        rt().block_on(migrator.db().close());
    }
}

on_both! {
    /// bootstrap runs teardowns at once: nothing is left pending on a new database.
    fn bootstrap_runs_teardowns_at_once(t: &Target) {
        let later = with_pending(t);
        assert_eq!(t.kong_with(&later, &["bootstrap"]).expect("bootstrap"), 0);
        assert!(t.has_table("upgrade_added") && t.has_table("upgrade_finished"));
        assert_eq!(t.kong_with(&later, &["list"]).expect("list"), 0);
        assert_eq!(
            t.sql("SELECT state FROM migration_state WHERE name = '002_with_teardown'"),
            "executed"
        );
    }
}

on_both! {
    /// `up` and `finish` before bootstrap are errors that say what to run.
    fn up_and_finish_need_a_bootstrapped_database(t: &Target) {
        for cmd in ["up", "finish"] {
            let out = t.kong(&[cmd]);
            assert_code(&out, 1);
            assert!(
                text(&out).contains("Database needs bootstrapping; run 'kong migrations bootstrap'"),
                "{cmd}: {}",
                text(&out)
            );
        }
        assert_code(&t.kong(&["bootstrap"]), 0);
        let finish = t.kong(&["finish"]);
        assert_code(&finish, 0);
        assert!(text(&finish).contains("No pending migrations to finish"), "{}", text(&finish));
    }
}
