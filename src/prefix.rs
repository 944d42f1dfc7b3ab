//! The prefix directory: its layout, the pid file, and `.kong_env`.
//!
//! ```text
//! <prefix>/.kong_env          resolved configuration (read by stop/quit/reload/health)
//! <prefix>/pids/nginx.pid     pid of the running node (name kept for Kong's scripts)
//! <prefix>/logs/              error.log, access.log, admin_access.log, ...
//! <prefix>/ssl/               generated self-signed default certificates
//! <prefix>/kong.db            the embedded SQLite datastore (database = sqlite)
//! ```

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::{Config, LogTarget};

/// Prefix problems.
#[derive(Debug, thiserror::Error)]
pub enum PrefixError {
    /// A file or directory could not be created or written.
    #[error("could not prepare Kong prefix at {prefix}: {path}: {source}")]
    Io {
        /// The prefix.
        prefix: String,
        /// The path that failed.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another node runs on this prefix.
    #[error("Kong is already running in {0}")]
    AlreadyRunning(String),
}

/// Paths inside one prefix.
#[derive(Debug, Clone)]
pub struct Prefix {
    root: PathBuf,
}

impl Prefix {
    /// A prefix rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Prefix { root: root.into() }
    }

    /// The prefix directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The pid file.
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("pids/nginx.pid")
    }

    /// The resolved configuration file.
    pub fn kong_env(&self) -> PathBuf {
        self.root.join(crate::config::KONG_ENV)
    }

    /// Directory of generated certificates.
    pub fn ssl_dir(&self) -> PathBuf {
        self.root.join("ssl")
    }

    /// The pid of the node running on this prefix, if any. A pid file whose process is gone
    /// (a crash, a reboot) is stale and yields `None`; it is left for the next start to
    /// overwrite, so a reader never deletes a live node's file.
    pub fn running_pid(&self) -> Option<i32> {
        let pid = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()?;
        (pid > 0 && is_alive(pid)).then_some(pid)
    }

    /// Creates the layout and writes `.kong_env` (mode 0600: it may hold passwords). Fails if a
    /// node already runs here.
    pub fn prepare(&self, config: &Config) -> Result<(), PrefixError> {
        if self.running_pid().is_some() {
            return Err(PrefixError::AlreadyRunning(self.root.display().to_string()));
        }
        for dir in ["", "pids", "logs", "ssl", "sockets"] {
            let path = self.root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| self.io(&path, e))?;
        }
        let logs = [
            &config.proxy_access_log,
            &config.proxy_error_log,
            &config.admin_access_log,
            &config.status_access_log,
        ];
        for target in logs {
            if let LogTarget::File(path) = target {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| self.io(parent, e))?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| self.io(path, e))?;
            }
        }
        self.write_private(&self.kong_env(), config.to_kong_env().as_bytes())
    }

    /// Writes the pid file for `pid`.
    pub fn write_pid(&self, pid: u32) -> Result<(), PrefixError> {
        // Written aside and renamed, so a reader never sees a half-written file.
        let path = self.pid_file();
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| self.io(&path, e))
    }

    /// Removes the pid file if it still names `pid`.
    pub fn remove_pid(&self, pid: u32) {
        let path = self.pid_file();
        if std::fs::read_to_string(&path).is_ok_and(|s| s.trim() == pid.to_string()) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Writes a file readable only by the owner.
    pub fn write_private(&self, path: &Path, content: &[u8]) -> Result<(), PrefixError> {
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(content)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| self.io(path, e))
    }

    fn io(&self, path: &Path, source: std::io::Error) -> PrefixError {
        PrefixError::Io {
            prefix: self.root.display().to_string(),
            path: path.display().to_string(),
            source,
        }
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None::<Signal>).is_err() {
        return false;
    }
    // A zombie still answers signal 0; its state letter in /proc says otherwise.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z"),
        Err(_) => true,
    }
}
