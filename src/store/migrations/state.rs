//! A database's schema state: what it recorded, compared with the migrations this binary has.
//!
//! Pure logic, no IO: [`SchemaState::compute`] takes the recorded rows (or `None` when the
//! bookkeeping table does not exist) and the known list, and sorts every migration into
//! executed, pending, new or missing, noting checksum mismatches on the way.

use std::collections::BTreeMap;

use super::{Migration, MigrationError, CORE};

/// Where a recorded migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Up ran; the teardown has not (until `kong migrations finish`).
    Pending,
    /// Completely done.
    Executed,
}

impl Status {
    /// The word stored in the database and printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Executed => "executed",
        }
    }

    /// Reads a stored word; anything unknown counts as executed (it ran, whatever it says).
    pub fn parse(word: &str) -> Status {
        if word == "pending" {
            Status::Pending
        } else {
            Status::Executed
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the bookkeeping table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Subsystem, e.g. `core`.
    pub subsystem: String,
    /// Migration name.
    pub name: String,
    /// SHA-256 of the file that ran.
    pub checksum: String,
    /// Pending or executed.
    pub status: Status,
}

/// A recorded migration whose file changed since it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Migration name.
    pub name: String,
    /// Checksum in the database.
    pub recorded: String,
    /// Checksum of this binary's file.
    pub embedded: String,
}

/// The schema of one database, compared with a list of migrations (core subsystem).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaState {
    /// No migration was ever recorded: run `kong migrations bootstrap`.
    pub needs_bootstrap: bool,
    /// Migrations completely done, in list order (then unknown ones by name).
    pub executed: Vec<String>,
    /// Migrations whose up ran and teardown has not.
    pub pending: Vec<String>,
    /// Migrations of the list that have not run.
    pub new: Vec<String>,
    /// Migrations recorded in the database but unknown to this binary (a newer version ran).
    pub missing: Vec<String>,
    /// Recorded migrations whose file differs from this binary's.
    pub mismatched: Vec<Mismatch>,
}

impl SchemaState {
    /// Compares `recorded` (`None`: no bookkeeping table) with the `known` list.
    pub fn compute(known: &[Migration], recorded: Option<Vec<Recorded>>) -> SchemaState {
        let mut rows: BTreeMap<String, Recorded> = recorded
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.subsystem == CORE)
            .map(|r| (r.name.clone(), r))
            .collect();
        let mut state = SchemaState {
            needs_bootstrap: rows.is_empty(),
            ..SchemaState::default()
        };
        for m in known {
            let Some(row) = rows.remove(m.name) else {
                state.new.push(m.name.to_string());
                continue;
            };
            let embedded = m.checksum();
            if row.checksum != embedded {
                state.mismatched.push(Mismatch {
                    name: row.name.clone(),
                    recorded: row.checksum.clone(),
                    embedded,
                });
            }
            match row.status {
                Status::Executed => state.executed.push(row.name),
                Status::Pending => state.pending.push(row.name),
            }
        }
        // What is left was recorded by a binary that knew more migrations than this one.
        for (name, row) in rows {
            match row.status {
                Status::Executed => state.executed.push(name.clone()),
                Status::Pending => state.pending.push(name.clone()),
            }
            state.missing.push(name);
        }
        state
    }

    /// Bootstrapped, nothing new and nothing pending.
    pub fn is_up_to_date(&self) -> bool {
        !self.needs_bootstrap && self.new.is_empty() && self.pending.is_empty()
    }

    /// Fails on the first recorded migration whose file changed since it ran.
    pub fn verify(&self) -> Result<(), MigrationError> {
        match self.mismatched.first() {
            None => Ok(()),
            Some(m) => Err(MigrationError::Checksum {
                subsystem: CORE.to_string(),
                name: m.name.clone(),
                recorded: m.recorded.clone(),
                embedded: m.embedded.clone(),
            }),
        }
    }

    /// The state as `kong migrations status` prints it: names per subsystem.
    pub fn to_json(&self) -> serde_json::Value {
        let per_subsystem = |names: &[String]| {
            let mut map = serde_json::Map::new();
            if !names.is_empty() {
                map.insert(CORE.to_string(), serde_json::json!(names));
            }
            serde_json::Value::Object(map)
        };
        let mismatched: Vec<String> = self.mismatched.iter().map(|m| m.name.clone()).collect();
        serde_json::json!({
            "needs_bootstrap": self.needs_bootstrap,
            "executed": per_subsystem(&self.executed),
            "pending": per_subsystem(&self.pending),
            "new": per_subsystem(&self.new),
            "missing": per_subsystem(&self.missing),
            "checksum_mismatch": per_subsystem(&mismatched),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KNOWN: &[Migration] = &[
        Migration::new("000_a", "A"),
        Migration::new("001_b", "B\n-- teardown\nB2"),
        Migration::new("002_c", "C"),
    ];

    fn row(name: &str, text: &'static str, status: Status) -> Recorded {
        Recorded {
            subsystem: CORE.into(),
            name: name.into(),
            checksum: Migration::new("x", text).checksum(),
            status,
        }
    }

    #[test]
    fn no_table_or_no_rows_needs_bootstrap_and_everything_is_new() {
        for recorded in [None, Some(vec![])] {
            let s = SchemaState::compute(KNOWN, recorded);
            assert!(s.needs_bootstrap);
            assert_eq!(s.new, ["000_a", "001_b", "002_c"]);
            assert!(!s.is_up_to_date());
        }
    }

    #[test]
    fn rows_sort_into_executed_pending_new_and_missing() {
        let s = SchemaState::compute(
            KNOWN,
            Some(vec![
                row("000_a", "A", Status::Executed),
                row("001_b", "B\n-- teardown\nB2", Status::Pending),
                row("003_future", "F", Status::Executed),
            ]),
        );
        assert!(!s.needs_bootstrap);
        assert_eq!(s.executed, ["000_a", "003_future"]);
        assert_eq!(s.pending, ["001_b"]);
        assert_eq!(s.new, ["002_c"]);
        assert_eq!(s.missing, ["003_future"]);
        assert!(s.verify().is_ok());
        let json = s.to_json();
        assert_eq!(json["pending"]["core"][0], "001_b");
        assert_eq!(json["new"]["core"][0], "002_c");
        assert_eq!(json["checksum_mismatch"], serde_json::json!({}));
    }

    #[test]
    fn other_subsystems_are_not_core_migrations() {
        let mut plugin = row("000_a", "A", Status::Executed);
        plugin.subsystem = "key-auth".into();
        let s = SchemaState::compute(KNOWN, Some(vec![plugin]));
        assert!(s.needs_bootstrap);
    }

    #[test]
    fn a_changed_file_is_a_clear_error() {
        let s = SchemaState::compute(
            KNOWN,
            Some(vec![
                row("000_a", "A (edited)", Status::Executed),
                row("001_b", "B\n-- teardown\nB2", Status::Executed),
                row("002_c", "C", Status::Executed),
            ]),
        );
        assert!(s.is_up_to_date());
        let err = s.verify().expect_err("mismatch").to_string();
        assert!(err.contains("core/000_a"), "{err}");
        assert!(err.contains("checksum"), "{err}");
        assert_eq!(s.to_json()["checksum_mismatch"]["core"][0], "000_a");
    }
}
