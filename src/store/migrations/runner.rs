//! The migration runner: bootstrap, up, finish and reset, each under the migrations lock.
//!
//! Every command reads the state once to refuse early (not bootstrapped, pending migrations,
//! changed files), then takes the lock — waiting for another node that holds it — and reads
//! the state again: whatever the other node did is not done twice. Each migration runs in its
//! own transaction together with the row that records it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::db::{Arg, Db, STATE_TABLE};
use super::lock::Lock;
use super::{Migration, MigrationError, SchemaState, Status, CORE};

/// Default time to live of the lock, and how long to wait for it.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Progress of a command, for whoever prints it.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Another node holds the lock; we wait for it.
    Waiting {
        /// The holder.
        owner: &'a str,
    },
    /// The lock is ours and `total` migrations (or teardowns) are about to run.
    Begin {
        /// How many.
        total: usize,
    },
    /// One migration ran; `status` is where it stands now.
    Ran {
        /// Migration name.
        name: &'a str,
        /// Pending (teardown still to run) or executed.
        status: Status,
    },
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These migrations ran, in order, and now stand as given.
    Ran(Vec<(String, Status)>),
    /// There was nothing to do (possibly because another node just did it).
    NothingToDo,
}

impl Outcome {
    /// The names of the migrations that ran.
    pub fn names(&self) -> Vec<String> {
        match self {
            Outcome::Ran(ran) => ran.iter().map(|(n, _)| n.clone()).collect(),
            Outcome::NothingToDo => Vec::new(),
        }
    }
}

/// Runs a list of migrations against one database.
#[derive(Debug, Clone)]
pub struct Migrator<'a> {
    db: Db,
    migrations: &'a [Migration],
    lock_timeout: Duration,
}

impl<'a> Migrator<'a> {
    /// A runner for `migrations` on `db`, with the default lock timeout.
    pub fn new(db: Db, migrations: &'a [Migration]) -> Self {
        Migrator {
            db,
            migrations,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Sets the lock's time to live and how long to wait for another node's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The database's state compared with this runner's migrations.
    pub async fn state(&self) -> Result<SchemaState, MigrationError> {
        let recorded = self.db.recorded().await?;
        Ok(SchemaState::compute(self.migrations, recorded))
    }

    /// Creates the bookkeeping and runs every migration, teardowns included.
    /// [`Outcome::NothingToDo`] when the database is already bootstrapped.
    pub async fn bootstrap(&self, on: &mut dyn FnMut(Event)) -> Result<Outcome, MigrationError> {
        if !self.state().await?.needs_bootstrap {
            return Ok(Outcome::NothingToDo);
        }
        self.db.ensure_bookkeeping().await?;
        let lock = self.lock(on).await?;
        let result = self.bootstrap_locked(&lock, on).await;
        lock.release().await;
        result
    }

    async fn bootstrap_locked(
        &self,
        lock: &Lock,
        on: &mut dyn FnMut(Event),
    ) -> Result<Outcome, MigrationError> {
        if !self.state().await?.needs_bootstrap {
            return Ok(Outcome::NothingToDo);
        }
        let todo: Vec<&Migration> = self.migrations.iter().collect();
        self.run_ups(&todo, true, false, lock, on).await
    }

    /// Runs the up part of every new migration; those with a teardown become pending.
    /// Refuses when the database needs bootstrap, or has pending migrations unless `force`;
    /// `force` also re-runs migrations that already ran.
    pub async fn up(
        &self,
        force: bool,
        on: &mut dyn FnMut(Event),
    ) -> Result<Outcome, MigrationError> {
        self.up_with(force, force, on).await
    }

    async fn up_with(
        &self,
        force: bool,
        allow_pending: bool,
        on: &mut dyn FnMut(Event),
    ) -> Result<Outcome, MigrationError> {
        let state = self.checked_state(allow_pending).await?;
        if state.new.is_empty() && !force {
            return Ok(Outcome::NothingToDo);
        }
        self.db.ensure_bookkeeping().await?;
        let lock = self.lock(on).await?;
        let result = async {
            let state = self.checked_state(allow_pending).await?;
            let todo: Vec<&Migration> = self
                .migrations
                .iter()
                .filter(|m| force || state.new.iter().any(|n| n == m.name))
                .collect();
            self.run_ups(&todo, false, force, &lock, on).await
        }
        .await;
        lock.release().await;
        result
    }

    /// Runs the teardown of every pending migration, making it executed.
    pub async fn finish(&self, on: &mut dyn FnMut(Event)) -> Result<Outcome, MigrationError> {
        let state = self.checked_state(true).await?;
        if state.pending.is_empty() {
            return Ok(Outcome::NothingToDo);
        }
        let lock = self.lock(on).await?;
        let result = async {
            let state = self.checked_state(true).await?;
            let todo: Vec<&Migration> = self
                .migrations
                .iter()
                .filter(|m| state.pending.iter().any(|n| n == m.name))
                .collect();
            for name in state.pending.iter().filter(|n| state.missing.contains(n)) {
                tracing::warn!(migration = %name, "pending migration unknown to this version; its teardown cannot run here");
            }
            if todo.is_empty() {
                return Ok(Outcome::NothingToDo);
            }
            on(Event::Begin { total: todo.len() });
            let mut ran = Vec::new();
            for m in todo {
                let record = "UPDATE migration_state SET state = 'executed', updated_at = $3 \
                              WHERE subsystem = $1 AND name = $2";
                let args = [
                    Arg::Text(CORE.into()),
                    Arg::Text(m.name.into()),
                    Arg::Int(now_ms()),
                ];
                self.db
                    .apply(m.teardown().unwrap_or_default(), record, &args)
                    .await
                    .map_err(|source| failed(m, "teardown", source))?;
                on(Event::Ran {
                    name: m.name,
                    status: Status::Executed,
                });
                ran.push((m.name.to_string(), Status::Executed));
                lock.refresh().await?;
            }
            Ok(Outcome::Ran(ran))
        }
        .await;
        lock.release().await;
        result
    }

    /// Drops every table in the database (or the configured schema).
    pub async fn reset(&self, on: &mut dyn FnMut(Event)) -> Result<(), MigrationError> {
        if self.state().await?.needs_bootstrap {
            return Err(MigrationError::NothingToReset);
        }
        self.db.ensure_bookkeeping().await?;
        let lock = self.lock(on).await?;
        // Dropping `locks` releases the lock with it.
        let result = self.db.drop_all_tables().await;
        lock.release().await;
        Ok(result?)
    }

    /// What a node does before serving from this database: refuses when it needs bootstrap or
    /// has new migrations, unless `run` (`kong start --run-migrations`), which bootstraps or
    /// runs `up`, waiting for another node's lock. Pending migrations are fine.
    pub async fn prepare_for_start(
        &self,
        run: bool,
        on: &mut dyn FnMut(Event),
    ) -> Result<SchemaState, MigrationError> {
        let state = self.state().await?;
        state.verify()?;
        if state.needs_bootstrap {
            if !run {
                return Err(MigrationError::NeedsBootstrap);
            }
            self.bootstrap(on).await?;
        } else if !state.new.is_empty() {
            if !run {
                return Err(MigrationError::NewMigrations);
            }
            self.up_with(false, true, on).await?;
        }
        self.state().await
    }

    /// Brings the database completely up to date: bootstrap, up and finish as needed. For the
    /// embedded SQLite file, which one node owns. Returns the migrations that ran.
    pub async fn up_to_date(&self) -> Result<Vec<String>, MigrationError> {
        let mut quiet = |_: Event| {};
        let state = self.state().await?;
        state.verify()?;
        if state.needs_bootstrap {
            return Ok(self.bootstrap(&mut quiet).await?.names());
        }
        let mut ran = self.up_with(false, true, &mut quiet).await?.names();
        for name in self.finish(&mut quiet).await?.names() {
            if !ran.contains(&name) {
                ran.push(name);
            }
        }
        Ok(ran)
    }

    /// The state, refusing a database that needs bootstrap, has changed files, or (unless
    /// `allow_pending`) has pending migrations.
    async fn checked_state(&self, allow_pending: bool) -> Result<SchemaState, MigrationError> {
        let state = self.state().await?;
        if state.needs_bootstrap {
            return Err(MigrationError::NeedsBootstrap);
        }
        state.verify()?;
        if !allow_pending && !state.pending.is_empty() {
            return Err(MigrationError::PendingMigrations);
        }
        Ok(state)
    }

    async fn lock(&self, on: &mut dyn FnMut(Event)) -> Result<Lock, MigrationError> {
        Lock::acquire(
            &self.db,
            self.lock_timeout,
            self.lock_timeout,
            &mut |owner| on(Event::Waiting { owner }),
        )
        .await
    }

    /// Runs the up part of `todo` (and the teardown too with `with_teardown`), recording each.
    /// With `replace`, an existing record is overwritten (re-runs with `--force`); otherwise a
    /// record that already exists fails the migration's transaction, so a migration can never
    /// take effect twice.
    async fn run_ups(
        &self,
        todo: &[&Migration],
        with_teardown: bool,
        replace: bool,
        lock: &Lock,
        on: &mut dyn FnMut(Event),
    ) -> Result<Outcome, MigrationError> {
        if todo.is_empty() {
            return Ok(Outcome::NothingToDo);
        }
        on(Event::Begin { total: todo.len() });
        let record = format!(
            "INSERT INTO {STATE_TABLE} (subsystem, name, checksum, state, updated_at) \
             VALUES ($1, $2, $3, $4, $5){}",
            if replace {
                " ON CONFLICT (subsystem, name) DO UPDATE SET checksum = excluded.checksum, \
                 state = excluded.state, updated_at = excluded.updated_at"
            } else {
                ""
            }
        );
        let mut ran = Vec::new();
        for m in todo {
            let mut script = m.up().to_string();
            let status = match (m.teardown(), with_teardown) {
                (None, _) => Status::Executed,
                (Some(teardown), true) => {
                    script.push('\n');
                    script.push_str(teardown);
                    Status::Executed
                }
                (Some(_), false) => Status::Pending,
            };
            let args = [
                Arg::Text(CORE.into()),
                Arg::Text(m.name.into()),
                Arg::Text(m.checksum()),
                Arg::Text(status.as_str().into()),
                Arg::Int(now_ms()),
            ];
            self.db
                .apply(&script, &record, &args)
                .await
                .map_err(|source| failed(m, "up", source))?;
            on(Event::Ran {
                name: m.name,
                status,
            });
            ran.push((m.name.to_string(), status));
            lock.refresh().await?;
        }
        Ok(Outcome::Ran(ran))
    }
}

fn failed(m: &Migration, part: &'static str, source: sqlx::Error) -> MigrationError {
    MigrationError::Failed {
        subsystem: CORE,
        name: m.name.to_string(),
        part,
        source,
    }
}

/// Milliseconds since the epoch on this node (for the record only; the lock uses the
/// database's clock).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
