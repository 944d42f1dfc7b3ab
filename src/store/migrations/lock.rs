//! The migrations lock: one row in `locks`, so only one node changes the schema at a time.
//!
//! Taking the lock is a single upsert that succeeds only when no row exists or the existing
//! row has expired, judged by the database's clock (nodes' clocks may differ). The holder
//! pushes the expiry forward after each migration; a holder that dies loses the lock when it
//! expires. Waiters poll until the lock is free or their deadline passes.

use std::time::Duration;

use super::db::{Arg, Db};
use super::MigrationError;

/// The `locks.key` of the migrations lock.
pub const KEY: &str = "migrations";

/// How often a waiting node tries again.
const POLL: Duration = Duration::from_millis(200);

/// A held migrations lock. Release it with [`Lock::release`]; if the process dies instead,
/// the lock expires after its time to live.
#[derive(Debug)]
pub struct Lock {
    db: Db,
    owner: String,
    ttl: Duration,
}

impl Lock {
    /// Takes the lock, waiting up to `wait` while another node holds it. `on_wait` is called
    /// once, with the holder, when we have to wait. The lock lives for `ttl` (at least 1 s)
    /// unless refreshed.
    pub async fn acquire(
        db: &Db,
        ttl: Duration,
        wait: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<Lock, MigrationError> {
        let lock = Lock {
            db: db.clone(),
            owner: owner_id(),
            ttl: ttl.max(Duration::from_secs(1)),
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut told = false;
        loop {
            if lock.try_take().await? {
                return Ok(lock);
            }
            let holder = lock
                .holder()
                .await?
                .unwrap_or_else(|| "another node".into());
            if tokio::time::Instant::now() >= deadline {
                return Err(MigrationError::LockTimeout {
                    seconds: wait.as_secs(),
                    owner: holder,
                });
            }
            if !told {
                on_wait(&holder);
                told = true;
            }
            tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// Who holds this lock (`host:pid:random`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Pushes the expiry one time-to-live ahead; fails if the lock expired and was taken.
    pub async fn refresh(&self) -> Result<(), MigrationError> {
        let sql = format!(
            "UPDATE locks SET expires_at = {now} + $3 WHERE key = $1 AND owner = $2",
            now = self.db.dialect().now_ms
        );
        if self.db.execute(&sql, &self.args()).await? == 0 {
            return Err(MigrationError::LockLost {
                seconds: self.ttl.as_secs(),
            });
        }
        Ok(())
    }

    /// Gives the lock back. Failures are only logged: the lock expires anyway, and after a
    /// reset the table is gone with it.
    pub async fn release(self) {
        let result = self
            .db
            .execute(
                "DELETE FROM locks WHERE key = $1 AND owner = $2",
                &self.args()[..2],
            )
            .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "could not release the migrations lock");
        }
    }

    async fn try_take(&self) -> Result<bool, sqlx::Error> {
        let sql = format!(
            "INSERT INTO locks (key, owner, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE locks.expires_at < {now}",
            now = self.db.dialect().now_ms
        );
        Ok(self.db.execute(&sql, &self.args()).await? == 1)
    }

    async fn holder(&self) -> Result<Option<String>, sqlx::Error> {
        self.db
            .fetch_text(
                "SELECT owner FROM locks WHERE key = $1",
                &[Arg::Text(KEY.into())],
            )
            .await
    }

    /// `$1` key, `$2` owner, `$3` time to live in milliseconds.
    fn args(&self) -> [Arg; 3] {
        [
            Arg::Text(KEY.into()),
            Arg::Text(self.owner.clone()),
            Arg::Int(i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)),
        ]
    }
}

/// Names this process for operators reading the `locks` table: `host:pid:random`.
fn owner_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".into());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &nonce[..8])
}
