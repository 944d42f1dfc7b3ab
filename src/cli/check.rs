//! `kong check` and `kong config init`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};

use crate::config::{self, ProcessEnv};

/// Validates `conf`: prints each problem on its own line (exit 1) or that it is valid.
pub fn check(conf: &Path) -> anyhow::Result<i32> {
    let opts = config::LoadOptions {
        conf_path: Some(conf.to_path_buf()),
        ..Default::default()
    };
    match config::load(&opts, &ProcessEnv) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("Warning: {w}");
            }
            println!("configuration at {} is valid", conf.display());
            Ok(0)
        }
        Err(config::ConfigError::Invalid { errors }) => {
            for e in errors {
                eprintln!("{e}");
            }
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

const EXAMPLE: &str = r#"# A declarative configuration for kong (format 3.0).
#
# Load it with `database = off` and `declarative_config = kong.yml`, or import it into a
# database with `kong config db_import kong.yml`. Remove the leading '#' of an entry to use it.
_format_version: "3.0"
_transform: true

services:
#- name: example-service
#  url: http://example.com
#  routes:
#  - name: example-route
#    paths:
#    - /example
#  plugins:
#  - name: key-auth

consumers:
#- username: example-user
#  keyauth_credentials:
#  - key: my-key

plugins:
#- name: rate-limiting
#  config:
#    minute: 60
#    policy: local

upstreams:
#- name: example.upstream
#  targets:
#  - target: 127.0.0.1:8080
#    weight: 100
"#;

/// Writes the example declarative file, refusing to overwrite.
pub fn config_init(file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} already exists in this directory", file.display());
    }
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(file)
        .with_context(|| format!("could not write {}", file.display()))?;
    f.write_all(EXAMPLE.as_bytes())?;
    println!("{} written", file.display());
    Ok(())
}
