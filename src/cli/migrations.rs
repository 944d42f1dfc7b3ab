//! `kong migrations`: bootstrap, up, finish, list, status and reset.
//!
//! They work on `database = postgres` and on the embedded SQLite file in the prefix
//! (`database = sqlite`, which also migrates itself when a node starts). Messages follow Kong's,
//! and so do `list`'s exit codes: 0 up to date, 3 needs bootstrap, 4 pending migrations,
//! 5 new migrations. Progress is a bar on a terminal and plain lines otherwise.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{self, Config, Database, Env, ProcessEnv};
use crate::store::migrations::{
    Catalog, Db, Event, MigrationError, Migrator, Outcome, SchemaState, Status, CORE,
};

/// `list`'s exit code: the database needs `kong migrations bootstrap`.
pub const EXIT_NEEDS_BOOTSTRAP: i32 = 3;
/// `list`'s exit code: migrations are pending (`kong migrations finish`).
pub const EXIT_PENDING: i32 = 4;
/// `list`'s exit code: new migrations are available (`kong migrations up`).
pub const EXIT_NEW: i32 = 5;

/// How many times `reset` asks before giving up.
const CONFIRM_ATTEMPTS: usize = 3;

/// `kong migrations` and its options (accepted before or after the subcommand, as Kong does).
#[derive(Debug, Clone, Args)]
pub struct MigrationsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MigrationsCommand,
    /// Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present).
    #[arg(short = 'c', long = "conf", value_name = "FILE", global = true)]
    pub conf: Option<PathBuf>,
    /// Override the prefix directory (where the SQLite file lives).
    #[arg(short = 'p', long = "prefix", value_name = "DIR", global = true)]
    pub prefix: Option<PathBuf>,
    /// Database timeout in seconds (overrides pg_timeout).
    #[arg(long = "db-timeout", value_name = "SECONDS", global = true)]
    pub db_timeout: Option<u64>,
    /// Seconds to wait for another node's migrations lock; also how long ours lives.
    #[arg(
        long = "lock-timeout",
        value_name = "SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub lock_timeout: u64,
    /// bootstrap: reset the database first; up: also re-run migrations that already ran.
    #[arg(short = 'f', long = "force", global = true)]
    pub force: bool,
    /// reset: do not ask for confirmation.
    #[arg(short = 'y', long = "yes", global = true)]
    pub yes: bool,
    /// Print nothing but errors.
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,
}

/// `kong migrations` subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrationsCommand {
    /// Create the schema on an empty database and run every migration.
    Bootstrap,
    /// Run the new migrations of a newer kong; those with a teardown stay pending.
    Up,
    /// Run the teardown of pending migrations, once every node runs the new version.
    Finish,
    /// List executed, pending and new migrations (exit 0 up to date, 3 needs bootstrap,
    /// 4 pending, 5 new).
    List,
    /// Print the migration state as JSON.
    Status,
    /// Drop every table of the database: all configuration is lost.
    Reset,
}

/// Runs `kong migrations` with this binary's migrations; returns the exit code.
pub fn run(args: &MigrationsArgs) -> anyhow::Result<i32> {
    run_with(args, Catalog::EMBEDDED, &ProcessEnv)
}

/// Runs `kong migrations` with the given migration lists and environment (tests use this to
/// play an earlier or later version of the binary); returns the exit code.
pub fn run_with(args: &MigrationsArgs, catalog: Catalog<'_>, env: &dyn Env) -> anyhow::Result<i32> {
    let config = load(args, env)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async {
        let Some(db) = Db::connect(&config).await? else {
            bail!("there is no database to migrate with database = off");
        };
        let migrations = catalog.for_db(&db);
        let migrator = Migrator::new(db.clone(), migrations)
            .with_lock_timeout(Duration::from_secs(args.lock_timeout));
        let mut out = Output::new(args.quiet, db.database());
        let result = command(args, &migrator, &mut out).await;
        out.clear();
        db.close().await;
        result
    })
}

/// `kong start --run-migrations`: bootstraps or runs `up` on PostgreSQL, waiting up to
/// `lock_timeout` seconds for a node already doing it. SQLite migrates itself when the node
/// opens it; `database = off` has nothing to migrate.
pub(super) fn run_for_start(config: &Config, lock_timeout: u64) -> anyhow::Result<()> {
    if config.database != Database::Postgres {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async {
        let Some(db) = Db::connect(config).await? else {
            return Ok(());
        };
        let migrator = Migrator::new(db.clone(), Catalog::EMBEDDED.for_db(&db))
            .with_lock_timeout(Duration::from_secs(lock_timeout));
        let mut out = Output::new(false, db.database());
        let result = migrator
            .prepare_for_start(true, &mut |e| out.event(e))
            .await;
        out.clear();
        db.close().await;
        result?;
        Ok(())
    })
}

fn load(args: &MigrationsArgs, env: &dyn Env) -> anyhow::Result<Config> {
    let mut overrides = Vec::new();
    if let Some(p) = &args.prefix {
        overrides.push(("--prefix", "prefix", p.display().to_string()));
    }
    if let Some(secs) = args.db_timeout {
        overrides.push((
            "--db-timeout",
            "pg_timeout",
            secs.saturating_mul(1000).to_string(),
        ));
    }
    let loaded = config::load(
        &config::LoadOptions {
            conf_path: args.conf.clone(),
            overrides,
            ..Default::default()
        },
        env,
    )?;
    for w in &loaded.warnings {
        eprintln!("Warning: {w}");
    }
    super::lifecycle::explain(&loaded);
    Ok(loaded.config)
}

async fn command(
    args: &MigrationsArgs,
    migrator: &Migrator<'_>,
    out: &mut Output,
) -> anyhow::Result<i32> {
    match args.command {
        MigrationsCommand::Bootstrap => bootstrap(args.force, migrator, out).await,
        MigrationsCommand::Up => up(args.force, migrator, out).await,
        MigrationsCommand::Finish => finish(migrator, out).await,
        MigrationsCommand::List => {
            let state = migrator.state().await?;
            if !state.needs_bootstrap {
                state.verify()?;
            }
            let (text, code) = list_report(&state);
            out.line(text.trim_end());
            Ok(code)
        }
        MigrationsCommand::Status => {
            let state = migrator.state().await?;
            out.line(serde_json::to_string_pretty(&state.to_json())?);
            Ok(0)
        }
        MigrationsCommand::Reset => reset(args.yes, migrator, out).await,
    }
}

async fn bootstrap(force: bool, migrator: &Migrator<'_>, out: &mut Output) -> anyhow::Result<i32> {
    if force {
        match migrator.reset(&mut |e| out.event(e)).await {
            Ok(()) => out.line("Database successfully reset"),
            Err(MigrationError::NothingToReset) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !migrator.state().await?.needs_bootstrap {
        out.line("Database already bootstrapped");
        return Ok(0);
    }
    out.line("Bootstrapping database...");
    match migrator.bootstrap(&mut |e| out.event(e)).await? {
        Outcome::NothingToDo => out.line("Database already bootstrapped"),
        Outcome::Ran(ran) => {
            out.summary(&ran);
            out.line("Database is up-to-date");
        }
    }
    Ok(0)
}

async fn up(force: bool, migrator: &Migrator<'_>, out: &mut Output) -> anyhow::Result<i32> {
    match migrator.up(force, &mut |e| out.event(e)).await? {
        Outcome::NothingToDo => out.line("Database is already up-to-date"),
        Outcome::Ran(ran) => {
            out.summary(&ran);
            if migrator.state().await?.pending.is_empty() {
                out.line("Database is up-to-date");
            } else {
                out.line(
                    "Database has pending migrations; run 'kong migrations finish' when ready",
                );
            }
        }
    }
    Ok(0)
}

async fn finish(migrator: &Migrator<'_>, out: &mut Output) -> anyhow::Result<i32> {
    match migrator.finish(&mut |e| out.event(e)).await? {
        Outcome::NothingToDo => out.line("No pending migrations to finish"),
        Outcome::Ran(ran) => out.summary(&ran),
    }
    if migrator.state().await?.new.is_empty() {
        out.line("Database is up-to-date");
    } else {
        out.line("New migrations available; run 'kong migrations up' to proceed");
    }
    Ok(0)
}

async fn reset(yes: bool, migrator: &Migrator<'_>, out: &mut Output) -> anyhow::Result<i32> {
    if migrator.state().await?.needs_bootstrap {
        return Err(MigrationError::NothingToReset.into());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "reset erases all data and needs a confirmation, but standard input is not a \
                 terminal; run 'kong migrations reset --yes' to reset without asking"
            );
        }
        if !confirm("Are you sure? This operation is irreversible.")? {
            out.line("cancelled");
            return Ok(0);
        }
    }
    migrator.reset(&mut |e| out.event(e)).await?;
    out.line("Database successfully reset");
    Ok(0)
}

/// Asks `question` on the terminal up to [`CONFIRM_ATTEMPTS`] times; true only for yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for _ in 0..CONFIRM_ATTEMPTS {
        write!(stdout, "> {question} [y/n] ")?;
        stdout.flush()?;
        let mut answer = String::new();
        if stdin.lock().read_line(&mut answer)? == 0 {
            return Ok(false);
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(true),
            "n" | "no" => return Ok(false),
            _ => {}
        }
    }
    Ok(false)
}

/// What `kong migrations list` prints for `state`, and its exit code.
pub fn list_report(state: &SchemaState) -> (String, i32) {
    if state.needs_bootstrap {
        return (
            "Database needs bootstrapping; run 'kong migrations bootstrap'\n".into(),
            EXIT_NEEDS_BOOTSTRAP,
        );
    }
    let mut text = String::new();
    let mut section = |title: &str, names: &[String]| {
        if !names.is_empty() {
            text.push_str(&format!("{title}:\n{CORE}: {}\n\n", names.join(", ")));
        }
    };
    section("Executed migrations", &state.executed);
    section("Pending migrations", &state.pending);
    section("New migrations available", &state.new);
    section(
        "Unknown migrations (recorded by a newer version)",
        &state.missing,
    );
    let (advice, code) = match (state.pending.is_empty(), state.new.is_empty()) {
        (true, true) => ("Database is up-to-date", 0),
        (false, true) => ("Run 'kong migrations finish' when ready", EXIT_PENDING),
        (true, false) => ("Run 'kong migrations up' to proceed", EXIT_NEW),
        (false, false) => (
            "Database has pending migrations from a previous upgrade, and new migrations \
             from this one: run 'kong migrations finish' first, then 'kong migrations up'",
            EXIT_PENDING,
        ),
    };
    text.push_str(advice);
    text.push('\n');
    (text, code)
}

/// Where progress goes: plain lines, plus a bar when standard output is a terminal.
struct Output {
    quiet: bool,
    terminal: bool,
    database: String,
    bar: Option<ProgressBar>,
}

impl Output {
    fn new(quiet: bool, database: &str) -> Self {
        Output {
            quiet,
            terminal: std::io::stdout().is_terminal(),
            database: database.to_string(),
            bar: None,
        }
    }

    fn line(&self, text: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{}", text.as_ref()),
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Waiting { owner } => self.line(format!(
                "waiting for the migrations lock held by {owner}..."
            )),
            Event::Begin { total } => {
                self.line(format!(
                    "migrating {CORE} on database '{}'...",
                    self.database
                ));
                if self.terminal && !self.quiet {
                    self.bar = Some(progress_bar(total));
                }
            }
            Event::Ran { name, status } => {
                self.line(format!("{CORE} migrated up to: {name} ({status})"));
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
        }
    }

    /// `N migrations processed`, then how many are executed and pending.
    fn summary(&mut self, ran: &[(String, Status)]) {
        self.clear();
        let pending = ran.iter().filter(|(_, s)| *s == Status::Pending).count();
        let executed = ran.len() - pending;
        let plural = if ran.len() == 1 { "" } else { "s" };
        self.line(format!("{} migration{plural} processed", ran.len()));
        if executed > 0 {
            self.line(format!("{executed} executed"));
        }
        if pending > 0 {
            self.line(format!("{pending} pending"));
        }
    }

    /// Removes the progress bar, if any.
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn progress_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(u64::try_from(total).unwrap_or(u64::MAX)),
        ProgressDrawTarget::stdout(),
    );
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} migrations") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn list_exit_codes_follow_kong() {
        let bootstrap = SchemaState {
            needs_bootstrap: true,
            ..Default::default()
        };
        assert_eq!(list_report(&bootstrap).1, 3);
        let done = SchemaState {
            executed: names(&["000_base"]),
            ..Default::default()
        };
        let (text, code) = list_report(&done);
        assert_eq!(code, 0);
        assert!(
            text.contains("Executed migrations:\ncore: 000_base"),
            "{text}"
        );
        let pending = SchemaState {
            pending: names(&["001_x"]),
            ..done.clone()
        };
        assert_eq!(list_report(&pending).1, 4);
        let new = SchemaState {
            new: names(&["002_y"]),
            ..done.clone()
        };
        let (text, code) = list_report(&new);
        assert_eq!(code, 5);
        assert!(
            text.contains("New migrations available:\ncore: 002_y"),
            "{text}"
        );
        let both = SchemaState {
            new: names(&["002_y"]),
            ..pending
        };
        assert_eq!(list_report(&both).1, 4);
    }
}
