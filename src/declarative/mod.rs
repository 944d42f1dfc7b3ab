//! Declarative configuration: Kong's `kong.yml` format, read into the store and written back.
//!
//! One path serves `kong config parse` and `db_import`, a DB-less node's start (and, later,
//! `POST /config`):
//!
//! 1. [`parse`]: text → JSON value (YAML or JSON, syntax errors with line and column) → the top
//!    level checked (`_format_version`, `_transform`, `_comment`, `_ignore`, entity lists);
//! 2. `migrate`: formats 1.1 and 2.1 brought to 3.0 (their route paths);
//! 3. `flatten`: nested entities hoisted into flat [`ImportItem`]s with their parent filled in,
//!    references by name turned into ids, duplicates refused, and ids made up by [`ids`] where the
//!    document has none, so the same file always yields the same ids;
//! 4. [`Store::import`]: every entity validated and written by the store's one write path, in
//!    one transaction, all or nothing; its failures are reported per entity path (`report`).
//!
//! [`export`] writes a store back as a document that loads into the same state.

pub mod export;
mod flatten;
pub mod ids;
mod migrate;
pub mod parse;
mod report;

use std::fmt;
use std::path::Path;

use md5::{Digest, Md5};

use crate::config::Config;
use crate::store::{DbError, ImportItem, ImportOptions, ImportSummary, Store};
pub use parse::{Document, Format, FormatVersion, SyntaxError, MAX_SIZE};

/// One problem in a document, at a path such as `services[2].routes[0].paths[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: entity path, then field path; empty for the document as a whole.
    pub path: String,
    /// What is wrong, in Kong's words.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: &str, message: &str) -> Problem {
        Problem {
            path: path.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DeclarativeError {
    /// The file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The document is larger than [`MAX_SIZE`].
    #[error("declarative configuration is too large: {size} bytes (the limit is {MAX_SIZE} bytes, 64 MiB)")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
    },
    /// The text is not well-formed YAML or JSON.
    #[error("failed parsing declarative configuration: {0}")]
    Syntax(SyntaxError),
    /// The document is well-formed but not a mapping of keys to entity lists.
    #[error("failed parsing declarative configuration: expected an object")]
    NotAnObject,
    /// Entities (or the top level) are invalid; every problem is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The export could not be written as YAML.
    #[error("could not write the declarative configuration: {0}")]
    Emit(serde_norway::Error),
}

// By hand rather than `#[from]`: the cause is already in the message, and a source would print
// it a second time in error chains.
impl From<SyntaxError> for DeclarativeError {
    fn from(e: SyntaxError) -> DeclarativeError {
        DeclarativeError::Syntax(e)
    }
}

impl From<serde_norway::Error> for DeclarativeError {
    fn from(e: serde_norway::Error) -> DeclarativeError {
        DeclarativeError::Emit(e)
    }
}

/// The entities of a document, flattened and ready for [`Store::import`].
#[derive(Debug)]
pub struct Prepared {
    /// One item per entity, `origin` set to its path in the document.
    pub items: Vec<ImportItem>,
    /// Import options from the document (`_transform`).
    pub options: ImportOptions,
    /// Problems found so far (top level, structure, duplicates).
    pub problems: Vec<Problem>,
    declared: flatten::Declared,
}

/// Parses and flattens a document's text; `name` (a file name) helps tell YAML from JSON.
pub fn prepare_text(text: &str, name: Option<&str>) -> Result<Prepared, DeclarativeError> {
    Ok(prepare(parse::parse_text(text, name)?))
}

/// Flattens a parsed document (migrating older formats first).
pub fn prepare(mut doc: Document) -> Prepared {
    if doc.version.is_legacy() {
        migrate::route_paths(&mut doc.entities);
    }
    let flat = flatten::flatten(doc.entities);
    let mut problems = doc.problems;
    problems.extend(flat.problems);
    Prepared {
        items: flat.items,
        options: ImportOptions {
            replace: false,
            no_transform: !doc.transform,
        },
        problems,
        declared: flat.declared,
    }
}

/// Imports a prepared document into `store` (replacing everything when `replace`), all or
/// nothing. When the document already has problems, nothing is written: its entities are
/// validated in a scratch store so that every problem is reported at once.
pub async fn load(
    store: &Store,
    prepared: Prepared,
    replace: bool,
) -> Result<ImportSummary, DeclarativeError> {
    let Prepared {
        items,
        mut options,
        mut problems,
        declared,
    } = prepared;
    options.replace = replace;
    if !problems.is_empty() {
        // A database may hold what the document refers to; a scratch store cannot tell.
        let has_database = store.backend() != "off" && !replace;
        if let Err(failure) = store.scratch().import(items, options).await {
            problems.extend(report::problems(failure, &declared, has_database)?);
        }
        return Err(DeclarativeError::Invalid(problems));
    }
    match store.import(items, options).await {
        Ok(summary) => Ok(summary),
        Err(failure) => Err(DeclarativeError::Invalid(report::problems(
            failure, &declared, false,
        )?)),
    }
}

/// Reads, checks and imports a file: `kong config parse` (into a scratch store) and
/// `kong config db_import`.
pub async fn load_file(
    store: &Store,
    path: &Path,
    replace: bool,
) -> Result<ImportSummary, DeclarativeError> {
    let text = parse::read_file(path)?;
    let name = path.display().to_string();
    load(store, prepare_text(&text, Some(&name))?, replace).await
}

/// A DB-less configuration that was loaded.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What was loaded, per entity.
    pub summary: ImportSummary,
    /// [`configuration_hash`] of the text.
    pub hash: String,
}

/// Replaces everything in a DB-less `store` with the document in `text`: the node's start with
/// `declarative_config(_string)` and `POST /config` go through here. On error the store keeps
/// what it had.
pub async fn apply(
    store: &Store,
    text: &str,
    name: Option<&str>,
) -> Result<Applied, DeclarativeError> {
    let prepared = prepare_text(text, name)?;
    let summary = load(store, prepared, true).await?;
    Ok(Applied {
        summary,
        hash: configuration_hash(text),
    })
}

/// A DB-less node's configured document (`declarative_config_string`, else
/// `declarative_config`) could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("error parsing declarative config {origin}:\n{error}")]
pub struct ConfiguredError {
    /// The file, or `declarative_config_string`.
    pub origin: String,
    /// Why.
    pub error: DeclarativeError,
}

/// Loads the document a DB-less node is configured with into `store`, replacing what it holds:
/// `declarative_config_string` when set (it wins, as in Kong), else the `declarative_config`
/// file. `None` when neither is set: the node starts empty.
pub async fn load_configured(
    config: &Config,
    store: &Store,
) -> Result<Option<Applied>, ConfiguredError> {
    let (text, origin, name) = match (
        &config.declarative_config_string,
        &config.declarative_config,
    ) {
        (Some(text), _) => (text.clone(), "declarative_config_string".to_owned(), None),
        (None, Some(path)) => {
            let origin = format!("file {}", path.display());
            let text = parse::read_file(path).map_err(|error| ConfiguredError {
                origin: origin.clone(),
                error,
            })?;
            (text, origin, Some(path.display().to_string()))
        }
        (None, None) => return Ok(None),
    };
    apply(store, &text, name.as_deref())
        .await
        .map(Some)
        .map_err(|error| ConfiguredError { origin, error })
}

/// The hash `/status` reports for a loaded configuration: the MD5 of its text, 32 hex digits.
pub fn configuration_hash(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `/status` reports before any configuration was loaded.
pub const EMPTY_HASH: &str = "00000000000000000000000000000000";

#[cfg(test)]
mod tests;
