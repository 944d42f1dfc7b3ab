//! `kong config parse`, `db_import` and `db_export`: declarative files and the datastore.
//!
//! The node's configuration (`-c`, `-p`, environment) says which database to use: the SQLite
//! file in the prefix by default, or PostgreSQL. `parse` never touches it: it loads the file
//! into a scratch in-memory store, which runs every check an import runs.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context};

use super::ConfArgs;
use crate::config::{Config, Database};
use crate::declarative::{self, DeclarativeError};
use crate::store::{ImportSummary, Store};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

fn needs_database(config: &Config, command: &str) -> anyhow::Result<()> {
    if config.database == Database::Off {
        bail!(
            "'kong config {command}' only works with a database.\n\
             When using database=off, reload your declarative configuration\n\
             using the /config endpoint."
        );
    }
    Ok(())
}

/// What a failed load prints: every problem on its own line after a heading.
fn failed(heading: &str, e: DeclarativeError) -> anyhow::Error {
    match e {
        DeclarativeError::Invalid(_) => anyhow!("{heading}:\n{e}"),
        other => anyhow!(other),
    }
}

/// The plugins `config` enables, which plugin entities are validated against.
fn registry(
    config: &crate::config::Config,
) -> anyhow::Result<std::sync::Arc<crate::plugins::Registry>> {
    let env = crate::plugins::BuildEnv::default();
    Ok(std::sync::Arc::new(crate::plugins::Registry::from_config(
        config, env,
    )?))
}

/// `kong config parse FILE`: checks a file; prints `parse successful` or every problem.
pub fn parse(file: &Path, conf: &ConfArgs) -> anyhow::Result<i32> {
    let config = super::lifecycle::load(conf, Vec::new())?;
    let plugins = registry(&config)?;
    runtime()?.block_on(async {
        let scratch = Store::memory().with_plugins(plugins);
        declarative::load_file(&scratch, file, false)
            .await
            .map_err(|e| failed("Failed parsing", e))
    })?;
    println!("parse successful");
    Ok(0)
}

/// `kong config db_import FILE`: imports a file into the database in one transaction.
pub fn db_import(file: &Path, conf: &ConfArgs) -> anyhow::Result<i32> {
    let config = super::lifecycle::load(conf, Vec::new())?;
    needs_database(&config, "db_import")?;
    let text = declarative::parse::read_file(file).map_err(|e| failed("Failed parsing", e))?;
    let prepared = declarative::prepare_text(&text, Some(&file.display().to_string()))
        .map_err(|e| failed("Failed parsing", e))?;
    let heading = if prepared.problems.is_empty() {
        "Failed importing"
    } else {
        "Failed parsing"
    };
    if config.database == Database::Sqlite {
        if let Some(dir) = config.sqlite_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
    }
    let summary = runtime()?.block_on(async {
        let store = Store::open(&config).await?.with_plugins(registry(&config)?);
        if prepared.problems.is_empty() {
            println!("parse successful, beginning import");
        }
        declarative::load(&store, prepared, false)
            .await
            .map_err(|e| failed(heading, e))
    })?;
    println!("import successful");
    print_summary(&summary);
    Ok(0)
}

fn print_summary(summary: &ImportSummary) {
    for (entity, count) in summary {
        println!("  {entity}: {count}");
    }
}

/// `kong config db_export [FILE]`: writes the database as a declarative file (YAML), to
/// standard output without a file. An existing file is never overwritten.
pub fn db_export(file: Option<&Path>, conf: &ConfArgs) -> anyhow::Result<i32> {
    let config = super::lifecycle::load(conf, Vec::new())?;
    needs_database(&config, "db_export")?;
    if let Some(file) = file {
        if file.exists() {
            bail!("{} already exists. Will not overwrite it.", file.display());
        }
    }
    if config.database == Database::Sqlite && !config.sqlite_path.exists() {
        bail!(
            "no database at {}: nothing to export",
            config.sqlite_path.display()
        );
    }
    let text = runtime()?.block_on(async {
        let store = Store::open(&config).await?.with_plugins(registry(&config)?);
        anyhow::Ok(declarative::export::export(&store).await?)
    })?;
    match file {
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .context("could not write to standard output")?,
        Some(file) => {
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(file)
                .with_context(|| format!("could not write {}", file.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("could not write {}", file.display()))?;
            println!("exported to {}", file.display());
        }
    }
    Ok(0)
}
