//! The `kong` command line: one clap tree, dispatch, and exit codes.
//!
//! Exit codes follow Kong: 0 on success, 1 on any error (printed as `Error: <message>`).
//! Subcommands that report a state through their code (`kong migrations list`) return it.

mod check;
mod declarative;
pub mod generate;
mod lifecycle;
pub mod migrations;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Kong-compatible API gateway.
#[derive(Debug, Parser)]
#[command(name = "kong", version = crate::version::KONG_VERSION, disable_version_flag = true)]
#[command(
    about = "Kong-compatible API gateway: proxy, Admin API and datastore tooling in one binary"
)]
pub struct Cli {
    /// Verbose output (info-level messages on the terminal).
    #[arg(long = "v", global = true)]
    pub verbose: bool,
    /// Debug output.
    #[arg(long = "vv", global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `-c` and `-p`, shared by most commands.
#[derive(Debug, Clone, Args)]
pub struct ConfArgs {
    /// Configuration file (default: /etc/kong/kong.conf, then /etc/kong.conf, if present).
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// Override the prefix directory.
    #[arg(short = 'p', long = "prefix", value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

/// Only `-p`.
#[derive(Debug, Clone, Args)]
pub struct PrefixArgs {
    /// Prefix directory of the node (default: the configured default prefix).
    #[arg(short = 'p', long = "prefix", value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

/// Flags of `kong start` and `kong restart`.
#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    #[command(flatten)]
    conf: ConfArgs,
    /// Run pending database migrations before starting.
    #[arg(long = "run-migrations")]
    run_migrations: bool,
    /// Database timeout in seconds (overrides pg_timeout).
    #[arg(long = "db-timeout", value_name = "SECONDS")]
    db_timeout: Option<u64>,
    /// Seconds to wait for the migrations lock with --run-migrations.
    #[arg(long = "lock-timeout", value_name = "SECONDS", default_value_t = 60)]
    lock_timeout: u64,
    /// Accepted for compatibility with Kong; there is no nginx template here.
    #[arg(long = "nginx-conf", value_name = "FILE", hide = true)]
    nginx_conf: Option<PathBuf>,
    /// Accepted for compatibility with Kong; ignored.
    #[arg(long = "nginx-conf-flags", value_name = "FLAGS", hide = true)]
    nginx_conf_flags: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a node (in the background unless nginx_daemon = off).
    Start(StartArgs),
    /// Stop a running node at once.
    Stop(PrefixArgs),
    /// Stop a running node gracefully: stop accepting, finish in-flight requests.
    Quit {
        /// Prefix of the node.
        #[command(flatten)]
        prefix: PrefixArgs,
        /// Seconds to wait for in-flight requests before stopping forcefully (minimum 1).
        #[arg(short = 't', long = "timeout", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// Seconds to wait before starting the graceful shutdown.
        #[arg(short = 'w', long = "wait", default_value_t = 0)]
        wait: u64,
    },
    /// Stop (if running) and start a node.
    Restart(StartArgs),
    /// Re-read the configuration and apply it without dropping requests.
    Reload(ConfArgs),
    /// Check that the node on a prefix is running.
    Health(PrefixArgs),
    /// Validate a configuration file.
    Check {
        /// The file to check.
        #[arg(value_name = "CONF", default_value = "/etc/kong/kong.conf")]
        conf: PathBuf,
    },
    /// Prepare the prefix directory without starting.
    Prepare(ConfArgs),
    /// Print the version.
    Version {
        /// Also print component versions.
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Manage the database schema: bootstrap, up, finish, list, status, reset.
    Migrations(migrations::MigrationsArgs),
    /// Declarative configuration tools.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the node in this process (used by `kong start`).
    #[command(name = "_serve", hide = true)]
    Serve {
        /// Prefix holding `.kong_env`.
        #[arg(short = 'p', long = "prefix")]
        prefix: PathBuf,
        /// Report readiness on standard error, then detach from the terminal.
        #[arg(long = "daemon")]
        daemon: bool,
    },
}

/// `kong config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write an example declarative configuration file (default ./kong.yml).
    Init {
        /// Target file.
        #[arg(value_name = "FILE", default_value = "kong.yml")]
        file: PathBuf,
    },
    /// Check a declarative configuration file (YAML or JSON) without loading it anywhere.
    Parse {
        /// The file to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// `-c` and `-p`: which node configuration (and so which database).
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Import a declarative configuration file into the database, all or nothing.
    #[command(name = "db_import", alias = "db-import")]
    DbImport {
        /// The file to import.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// `-c` and `-p`: which node configuration (and so which database).
        #[command(flatten)]
        conf: ConfArgs,
    },
    /// Export the database as a declarative configuration file (YAML).
    #[command(name = "db_export", alias = "db-export")]
    DbExport {
        /// Target file, which must not exist yet (default: standard output).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// `-c` and `-p`: which node configuration (and so which database).
        #[command(flatten)]
        conf: ConfArgs,
    },
}

/// The clap command tree (for completions and man pages).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn run() -> anyhow::Result<i32> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0; usage errors exit 1, as Kong's do.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return Ok(code);
        }
    };
    let verbosity = if cli.debug { 2 } else { u8::from(cli.verbose) };
    lifecycle::set_verbosity(verbosity);
    match cli.command {
        Command::Start(args) => lifecycle::start(&args).map(|_| 0),
        Command::Restart(args) => lifecycle::restart(&args).map(|_| 0),
        Command::Stop(p) => lifecycle::stop(&p, false).map(|_| 0),
        Command::Quit {
            prefix,
            timeout,
            wait,
        } => lifecycle::quit(&prefix, timeout, wait).map(|_| 0),
        Command::Reload(c) => lifecycle::reload(&c).map(|_| 0),
        Command::Health(p) => lifecycle::health(&p).map(|_| 0),
        Command::Check { conf } => check::check(&conf),
        Command::Prepare(c) => lifecycle::prepare(&c).map(|_| 0),
        Command::Version { all } => {
            println!("{}", crate::version::KONG_VERSION);
            if all {
                println!("Build: kong-rs {}", crate::version::BUILD_VERSION);
                println!(
                    "Target: {}-{}",
                    std::env::consts::ARCH,
                    std::env::consts::OS
                );
                println!("TLS: rustls 0.23 (ring)");
                println!("HTTP: hyper 1");
            }
            Ok(0)
        }
        Command::Migrations(args) => migrations::run(&args),
        Command::Config { command } => match command {
            ConfigCommand::Init { file } => check::config_init(&file).map(|_| 0),
            ConfigCommand::Parse { file, conf } => declarative::parse(&file, &conf),
            ConfigCommand::DbImport { file, conf } => declarative::db_import(&file, &conf),
            ConfigCommand::DbExport { file, conf } => {
                declarative::db_export(file.as_deref(), &conf)
            }
        },
        Command::Serve { prefix, daemon } => lifecycle::serve(&prefix, daemon).map(|_| 0),
    }
}
