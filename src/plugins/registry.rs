//! The plugins a node knows: each [`Kind`] with its schema, and the subset the `plugins`
//! property enables. The registry is also what the datastore validates plugin entities with.

use std::sync::Arc;

use super::Plugin;
use crate::store::schema::{Doc, PluginSchema, PluginSchemas};

/// A kind of plugin: its identity, config schema, and how to build an instance.
pub trait Kind: Send + Sync + 'static {
    /// The name plugin entities use, e.g. `key-auth`.
    fn name(&self) -> &'static str;

    /// Kong's priority: higher runs first in every phase.
    fn priority(&self) -> i32;

    /// The schema of its `config` and the scopes it allows.
    fn schema(&self) -> PluginSchema;

    /// `(entity, field)` pairs the plugin looks entities up by while serving (key-auth:
    /// `("keyauth_credentials", "key")`); the snapshot indexes them.
    fn lookups(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// An instance for a validated `config`. Runs when the snapshot is built; an error skips
    /// the instance (logged) and keeps the rest of the configuration serving.
    fn build(&self, config: &Doc, env: &BuildEnv) -> Result<Arc<dyn Plugin>, String>;

    /// The schema on a node like `env` describes; by default [`Kind::schema`]. Plugins whose
    /// accepted values depend on the node (rate-limiting refuses the `cluster` policy without
    /// a database, as Kong does) override this.
    fn schema_for(&self, _env: &BuildEnv) -> PluginSchema {
        self.schema()
    }

    /// An instance for the stored plugin entity `plugin` (its scope: `route`, `service`,
    /// `consumer`) with its validated `config`; by default [`Kind::build`]. Plugins whose
    /// state is keyed by their scope (rate-limiting counters, like Kong's) override this.
    fn build_entity(
        &self,
        _plugin: &Doc,
        config: &Doc,
        env: &BuildEnv,
    ) -> Result<Arc<dyn Plugin>, String> {
        self.build(config, env)
    }
}

/// What plugin instances may hold on to beyond their config: node-wide services that outlive
/// snapshots.
#[derive(Debug, Clone, Default)]
pub struct BuildEnv {
    /// The node's id.
    pub node_id: String,
    /// The node's host name.
    pub hostname: String,
    /// The node's metrics registry (`prometheus` records into it, loggers count drops in it).
    pub metrics: Arc<super::bundled::prometheus::Metrics>,
    /// The node runs without a database of its own (DB-less, or a control plane): plugins
    /// refuse what would need one.
    pub dbless: bool,
    /// Rate-limit counters (local, datastore, Redis) shared by the rate limiting plugins.
    pub counters: super::bundled::limits::Counters,
}

/// Why the `plugins` property cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A name that no installed plugin has.
    #[error("plugin '{0}' is enabled but not installed")]
    Unknown(String),
}

/// The enabled plugins.
pub struct Registry {
    kinds: Vec<Arc<dyn Kind>>,
    schemas: Vec<PluginSchema>,
    env: BuildEnv,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|k| k.name()))
            .finish()
    }
}

impl Registry {
    /// The plugins of `available` that `enabled` (the `plugins` property) names: `bundled`
    /// stands for every bundled plugin, `off` for none.
    pub fn new(
        enabled: &[String],
        available: Vec<Arc<dyn Kind>>,
        env: BuildEnv,
    ) -> Result<Registry, RegistryError> {
        let mut kinds: Vec<Arc<dyn Kind>> = Vec::new();
        for name in enabled.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            match name {
                "off" => {}
                "bundled" => kinds.extend(available.iter().cloned()),
                name => match available.iter().find(|k| k.name() == name) {
                    Some(k) => kinds.push(k.clone()),
                    None => return Err(RegistryError::Unknown(name.to_owned())),
                },
            }
        }
        kinds.sort_by_key(|k| k.name());
        kinds.dedup_by_key(|k| k.name());
        let schemas = kinds.iter().map(|k| k.schema_for(&env)).collect();
        Ok(Registry {
            kinds,
            schemas,
            env,
        })
    }

    /// The enabled plugins of the `plugins` property among the bundled ones, on a node whose
    /// `database` and `role` `config` gives (see [`BuildEnv::dbless`]).
    pub fn from_config(
        config: &crate::config::Config,
        mut env: BuildEnv,
    ) -> Result<Registry, RegistryError> {
        env.dbless =
            config.database == crate::config::Database::Off || config.role == "control_plane";
        Registry::new(&config.plugins, super::bundled(), env)
    }

    /// The enabled kind called `name`.
    pub fn kind(&self, name: &str) -> Option<&Arc<dyn Kind>> {
        self.kinds.iter().find(|k| k.name() == name)
    }

    /// Every enabled kind, by name.
    pub fn kinds(&self) -> &[Arc<dyn Kind>] {
        &self.kinds
    }

    /// The node services instances are built with.
    pub fn env(&self) -> &BuildEnv {
        &self.env
    }

    /// Every `(entity, field)` the enabled plugins look up.
    pub fn lookups(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.kinds.iter().flat_map(|k| k.lookups().iter().copied())
    }
}

impl PluginSchemas for Registry {
    fn plugin(&self, name: &str) -> Option<&PluginSchema> {
        self.schemas.iter().find(|s| s.name == name)
    }

    fn names(&self) -> Vec<String> {
        self.schemas.iter().map(|s| s.name.clone()).collect()
    }
}
