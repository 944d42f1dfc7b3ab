//! The node's configuration snapshot follows the datastore: every committed write is announced
//! and rebuilt into a new snapshot off the hot path; a failed rebuild keeps the old one.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kong::proxy::upstream::Keepalive;
use kong::snapshot::{spawn_sync, Settings, Snapshot};
use kong::store::{Store, WriteOptions};
use serde_json::json;

use crate::support::http::rt;

fn doc(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("object expected"),
    }
}

fn settings() -> Settings {
    let registry = kong::plugins::Registry::new(
        &["bundled".to_owned()],
        kong::plugins::bundled(),
        kong::plugins::BuildEnv::default(),
    )
    .expect("bundled plugins");
    Settings {
        registry: std::sync::Arc::new(registry),
        keepalive: Keepalive {
            pool_size: 16,
            max_requests: 100,
            idle_timeout: 60,
        },
        trusted_certificates: vec!["system".into()],
        balancers: None,
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn writes_rebuild_the_snapshot_and_failures_keep_the_last_good_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    rt().block_on(async {
        let pool = kong::store::sqlite_pool(&dir.path().join("kong.db"))
            .await
            .expect("sqlite");
        let db = kong::store::migrations::Db::Sqlite {
            pool: pool.clone(),
            database: "kong.db".into(),
        };
        kong::store::migrations::Migrator::new(db, kong::store::migrations::SQLITE)
            .up_to_date()
            .await
            .expect("migrations");
        let store = Store::sqlite(pool.clone());
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let sync = spawn_sync(store.clone(), snapshot.clone(), settings())
            .await
            .expect("first build");
        let first = snapshot.load_full();
        assert_eq!((first.version, first.count("services")), (1, 0));

        for i in 0..20 {
            store
                .insert(
                    "services",
                    doc(json!({"name": format!("s{i}"), "host": "h"})),
                    WriteOptions::default(),
                )
                .await
                .expect("insert");
        }
        eventually("20 services in the snapshot", || {
            snapshot.load().count("services") == 20
        })
        .await;
        // A rebuild queued by the last writes may still follow the one that showed all 20.
        let mut built = snapshot.load_full();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = snapshot.load_full();
            if now.version == built.version {
                break;
            }
            built = now;
        }
        assert!(
            built.version > 1 && built.version <= 21,
            "one rebuild per change at most: {}",
            built.version
        );
        assert_ne!(built.hash, first.hash);

        // Corrupt a stored row under the node: the next rebuild cannot read the configuration,
        // so the last good snapshot must stay.
        sqlx::raw_sql(
            "UPDATE entities SET data = 'not json' WHERE id = (SELECT MIN(id) FROM entities)",
        )
        .execute(&pool)
        .await
        .expect("corrupt");
        store
            .insert(
                "services",
                doc(json!({"name": "late", "host": "h"})),
                WriteOptions::default(),
            )
            .await
            .expect("the write itself succeeds");
        eventually("the failed rebuild", || {
            sync.status.failed_rebuilds.load(Ordering::Relaxed) == 1
        })
        .await;
        let reason = sync
            .status
            .last_error
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or_default();
        assert!(
            reason.contains("could not read the configuration"),
            "{reason}"
        );
        assert_eq!(
            snapshot.load().version,
            built.version,
            "a failed rebuild swaps nothing"
        );
        assert_eq!(snapshot.load().count("services"), 20);
        sync.task.abort();
    });
}

#[test]
fn first_snapshot_failure_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    rt().block_on(async {
        let pool = kong::store::sqlite_pool(&dir.path().join("kong.db"))
            .await
            .expect("sqlite");
        let store = Store::sqlite(pool);
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let err = spawn_sync(store, snapshot, settings())
            .await
            .expect_err("no schema, no snapshot");
        assert!(
            err.to_string().contains("could not read the configuration"),
            "{err}"
        );
    });
}
