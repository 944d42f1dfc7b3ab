//! Node configuration: `kong.conf` file + `KONG_*` environment + command-line flags → a
//! validated [`Config`].
//!
//! Precedence, lowest to highest (later layers win, key by key):
//! 1. built-in defaults ([`properties::PROPERTIES`]),
//! 2. the configuration file (`-c FILE`, else the first of [`DEFAULT_PATHS`] that exists),
//! 3. environment variables `KONG_<UPPER_CASE_KEY>`,
//! 4. command-line flags (`-p/--prefix`, `--db-timeout`, ...).
//!
//! The environment is read through the [`Env`] trait so tests never mutate the process
//! environment. Unknown keys are warnings, not errors; every error names the key, the value,
//! the reason, and where the value came from.

mod listen;
pub mod parse;
pub mod properties;
mod typed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use listen::{parse_listeners, Listen};
pub use parse::Source;
pub use typed::{
    ClientLimits, Config, Database, DnsConfig, Headers, LogLevel, LogTarget, PgConfig, RawMap,
    RawValue,
};

use typed::Reader;

/// Files searched, in order, when no `-c` is given.
pub const DEFAULT_PATHS: &[&str] = &["/etc/kong/kong.conf", "/etc/kong.conf"];

/// Name of the resolved-configuration file written into the prefix.
pub const KONG_ENV: &str = ".kong_env";

/// Configuration problems, each message complete on its own line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `-c` named a file that does not exist.
    #[error("no file at: {0}")]
    NoFile(String),
    /// A file could not be read.
    #[error("could not read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Syntax or validation errors, one per line.
    #[error("{}", errors.join("\n"))]
    Invalid {
        /// One message per problem.
        errors: Vec<String>,
    },
}

/// Read access to environment variables.
pub trait Env {
    /// The value of `name`, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable (for dynamic `KONG_NGINX_*` keys).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars(&self) -> Vec<(String, String)> {
        // vars() would panic on a non-UTF-8 variable anywhere in the environment.
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("KONG_"))
            .collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// What to load.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// `-c FILE`; `None` searches [`DEFAULT_PATHS`].
    pub conf_path: Option<PathBuf>,
    /// A previously resolved configuration (`.kong_env`) laid under the file; used by reload.
    pub base: Option<PathBuf>,
    /// Skip the default file search (used when `base` already holds the configuration).
    pub no_default_search: bool,
    /// Command-line overrides: `(flag, key, value)`.
    pub overrides: Vec<(&'static str, &'static str, String)>,
}

/// A loaded configuration and what was noticed on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// The configuration file used, if any.
    pub conf_path: Option<PathBuf>,
    /// Warnings (unknown keys, deprecated spellings, ...).
    pub warnings: Vec<String>,
}

/// Loads, merges and validates the configuration.
pub fn load(opts: &LoadOptions, env: &dyn Env) -> Result<Loaded, ConfigError> {
    let mut raw = RawMap::new();
    let mut warnings = Vec::new();
    for prop in properties::PROPERTIES {
        raw.insert(
            prop.name.to_string(),
            RawValue {
                value: prop.default.map(str::to_string),
                source: Source::Default,
            },
        );
    }

    if let Some(base) = &opts.base {
        apply_file(&mut raw, base, &mut warnings)?;
        for v in raw
            .values_mut()
            .filter(|v| matches!(v.source, Source::File { .. }))
        {
            v.value = v.value.as_deref().map(parse::unescape_env_value);
        }
    }
    let conf_path = match &opts.conf_path {
        Some(p) if !p.exists() => return Err(ConfigError::NoFile(p.display().to_string())),
        Some(p) => Some(p.clone()),
        None if opts.no_default_search => None,
        None => DEFAULT_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    };
    if let Some(path) = &conf_path {
        apply_file(&mut raw, path, &mut warnings)?;
    }
    apply_env(&mut raw, env);
    for (flag, key, value) in &opts.overrides {
        raw.insert(
            key.to_string(),
            RawValue {
                value: Some(value.clone()),
                source: Source::Cli(flag),
            },
        );
    }
    let config = build(&raw, env, &mut warnings)?;
    Ok(Loaded {
        config,
        conf_path,
        warnings,
    })
}

fn apply_file(
    raw: &mut RawMap,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    for entry in parse::parse_file(path)? {
        let key = properties::canonical(&entry.key).to_string();
        if !properties::is_accepted(&key) {
            warnings.push(format!(
                "{shown}:{}: unknown property '{}' (ignored)",
                entry.line, entry.key
            ));
        }
        raw.insert(
            key,
            RawValue {
                value: Some(entry.value),
                source: Source::File {
                    path: shown.clone(),
                    line: entry.line,
                },
            },
        );
    }
    Ok(())
}

fn apply_env(raw: &mut RawMap, env: &dyn Env) {
    let mut set = |key: &str, var: String, value: String| {
        raw.insert(
            properties::canonical(key).to_string(),
            RawValue {
                value: Some(value),
                source: Source::Env(var),
            },
        );
    };
    for prop in properties::PROPERTIES {
        let var = format!("KONG_{}", prop.name.to_ascii_uppercase());
        if let Some(v) = env.var(&var) {
            set(prop.name, var, v);
        }
    }
    // Aliases and dynamic directives are only discoverable by scanning.
    for (var, value) in env.vars() {
        let Some(rest) = var.strip_prefix("KONG_") else {
            continue;
        };
        let key = rest.to_ascii_lowercase();
        let is_alias = properties::ALIASES.iter().any(|(a, _)| *a == key);
        let dynamic = properties::DYNAMIC_PREFIXES
            .iter()
            .any(|p| key.starts_with(p));
        if (is_alias || dynamic) && properties::find(&key).is_none() {
            set(&key, var, value);
        }
    }
}

fn build(raw: &RawMap, env: &dyn Env, warnings: &mut Vec<String>) -> Result<Config, ConfigError> {
    let mut r = Reader::new(raw);
    r.check_kinds();

    let prefix = resolve_prefix(r.get("prefix"), env, raw);
    let log_level = r
        .get("log_level")
        .and_then(LogLevel::parse)
        .unwrap_or(LogLevel::Notice);

    let database = match r.get("database") {
        Some("postgres") => Database::Postgres,
        Some("off") => Database::Off,
        Some("cassandra") => {
            r.invalid("database", "database has an invalid value: 'cassandra' (cassandra is not supported; use sqlite, postgres or off)".into());
            Database::Sqlite
        }
        _ => Database::Sqlite,
    };
    if database == Database::Sqlite
        && raw
            .get("database")
            .is_some_and(|v| v.source == Source::Default)
        && raw
            .iter()
            .any(|(k, v)| k.starts_with("pg_") && v.source != Source::Default)
    {
        warnings.push(
            "pg_* properties are set but database is 'sqlite' (the default); set database = postgres to use PostgreSQL"
                .into(),
        );
    }

    let pg = PgConfig {
        host: r.string("pg_host"),
        port: r.int("pg_port"),
        timeout_ms: r.int("pg_timeout"),
        user: r.string("pg_user"),
        password: r.opt_string("pg_password"),
        database: r.string("pg_database"),
        schema: r.opt_string("pg_schema"),
        ssl: r.bool("pg_ssl"),
        ssl_verify: r.bool("pg_ssl_verify"),
        max_concurrent_queries: r.int("pg_max_concurrent_queries"),
        pool_size: r.opt_int("pg_pool_size"),
    };
    let pg_ro = r.get("pg_ro_host").map(|host| PgConfig {
        host: host.to_string(),
        port: r.opt_int("pg_ro_port").unwrap_or(pg.port),
        timeout_ms: r.opt_int("pg_ro_timeout").unwrap_or(pg.timeout_ms),
        user: r
            .opt_string("pg_ro_user")
            .unwrap_or_else(|| pg.user.clone()),
        password: r
            .opt_string("pg_ro_password")
            .or_else(|| pg.password.clone()),
        database: r
            .opt_string("pg_ro_database")
            .unwrap_or_else(|| pg.database.clone()),
        schema: r.opt_string("pg_ro_schema").or_else(|| pg.schema.clone()),
        ssl: r.get("pg_ro_ssl").map_or(pg.ssl, |_| r.bool("pg_ro_ssl")),
        ssl_verify: r
            .get("pg_ro_ssl_verify")
            .map_or(pg.ssl_verify, |_| r.bool("pg_ro_ssl_verify")),
        max_concurrent_queries: r
            .opt_int("pg_ro_max_concurrent_queries")
            .unwrap_or(pg.max_concurrent_queries),
        pool_size: r.opt_int("pg_ro_pool_size").or(pg.pool_size),
    });

    let headers = parse_headers(&mut r);
    let headers_upstream_request_id = match r.list("headers_upstream").as_slice() {
        [] => false,
        [one] if one.eq_ignore_ascii_case("off") => false,
        [one] if one.eq_ignore_ascii_case("x-kong-request-id") => true,
        other => {
            r.invalid(
                "headers_upstream",
                format!(
                    "headers_upstream: invalid entry '{}' (x-kong-request-id, off)",
                    other.join(", ")
                ),
            );
            false
        }
    };

    let worker_threads = match r.get("nginx_worker_processes") {
        None | Some("auto") => None,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                r.invalid(
                    "nginx_worker_processes",
                    format!("nginx_worker_processes is not a positive number or 'auto': '{v}'"),
                );
                None
            }
        },
    };

    let node_id = r
        .get("node_id")
        .and_then(|v| match uuid::Uuid::parse_str(v) {
            Ok(id) => Some(id),
            Err(_) => {
                r.invalid("node_id", format!("node_id must be a valid UUID: '{v}'"));
                None
            }
        });

    for (cert, key) in [
        ("ssl_cert", "ssl_cert_key"),
        ("admin_ssl_cert", "admin_ssl_cert_key"),
        ("status_ssl_cert", "status_ssl_cert_key"),
    ] {
        let (c, k) = (r.list(cert).len(), r.list(key).len());
        if c > 0 && k == 0 {
            r.invalid(key, format!("{key} must be specified"));
        } else if k > 0 && c == 0 {
            r.invalid(cert, format!("{cert} must be specified"));
        } else if c != k {
            r.invalid(
                key,
                format!("{cert} and {key} must have the same number of entries ({c} vs {k})"),
            );
        }
    }

    let dns = dns_config(&mut r);
    let declarative_config = r.get("declarative_config").map(absolute);
    let config = Config {
        log_level,
        log_json: r.get("log_format") == Some("json"),
        proxy_access_log: r.log_target("proxy_access_log", &prefix),
        proxy_error_log: r.log_target("proxy_error_log", &prefix),
        admin_access_log: r.log_target("admin_access_log", &prefix),
        status_access_log: r.log_target("status_access_log", &prefix),
        proxy_listen: r.listeners("proxy_listen"),
        stream_listen: r.listeners("stream_listen"),
        admin_listen: r.listeners("admin_listen"),
        status_listen: r.listeners("status_listen"),
        database,
        sqlite_path: prefix.join(r.get("sqlite_path").unwrap_or("kong.db")),
        declarative_config: declarative_config.clone(),
        declarative_config_string: r.opt_string("declarative_config_string"),
        pg,
        pg_ro,
        plugins: r.list("plugins"),
        headers,
        headers_upstream_request_id,
        trusted_ips: r.list("trusted_ips"),
        real_ip_header: r.string("real_ip_header"),
        real_ip_recursive: r.get("real_ip_recursive") == Some("on"),
        ssl_cert: r.list("ssl_cert"),
        ssl_cert_key: r.list("ssl_cert_key"),
        admin_ssl_cert: r.list("admin_ssl_cert"),
        admin_ssl_cert_key: r.list("admin_ssl_cert_key"),
        status_ssl_cert: r.list("status_ssl_cert"),
        status_ssl_cert_key: r.list("status_ssl_cert_key"),
        daemon: r.get("nginx_daemon") != Some("off"),
        worker_threads,
        client_max_body_size: r.size("nginx_http_client_max_body_size"),
        admin_client_max_body_size: r.size("nginx_admin_client_max_body_size"),
        proxy_client: r.client_limits("proxy"),
        admin_client: r.client_limits("admin"),
        status_client: r.client_limits("status"),
        error_default_type: r.string("error_default_type"),
        upstream_keepalive_pool_size: r.int("upstream_keepalive_pool_size"),
        upstream_keepalive_max_requests: r.int("upstream_keepalive_max_requests"),
        upstream_keepalive_idle_timeout: r.int("upstream_keepalive_idle_timeout"),
        lua_ssl_trusted_certificate: r.list("lua_ssl_trusted_certificate"),
        dns,
        node_id,
        router_flavor: r.string("router_flavor"),
        role: r.string("role"),
        raw: raw
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone().filter(|s| !s.trim().is_empty())))
            .chain([("prefix".to_string(), Some(prefix.display().to_string()))])
            .chain(declarative_config.map(|p| {
                (
                    "declarative_config".to_string(),
                    Some(p.display().to_string()),
                )
            }))
            .collect(),
        prefix,
    };

    check_roles(&config, &mut r);
    if r.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { errors: r.errors })
    }
}

/// The `dns_*` properties: resolvers as `ip[:port]` (port 53 by default), record types among
/// `LAST`, `SRV`, `A`, `AAAA` and `CNAME`, TTLs in seconds.
fn dns_config(r: &mut Reader<'_>) -> DnsConfig {
    let defaults = DnsConfig::default();
    let mut resolvers = Vec::new();
    for entry in r.list("dns_resolver") {
        let parsed = entry.parse::<std::net::SocketAddr>().ok().or_else(|| {
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            bare.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| std::net::SocketAddr::new(ip, 53))
        });
        match parsed {
            Some(addr) => resolvers.push(addr),
            None => r.invalid(
                "dns_resolver",
                format!("dns_resolver: '{entry}' is not a valid ip[:port]"),
            ),
        }
    }
    let mut order = Vec::new();
    for entry in r.list("dns_order") {
        let upper = entry.trim().to_ascii_uppercase();
        if ["LAST", "SRV", "A", "AAAA", "CNAME"].contains(&upper.as_str()) {
            order.push(upper);
        } else {
            r.invalid(
                "dns_order",
                format!("dns_order: invalid entry '{entry}' (LAST, SRV, A, AAAA, CNAME)"),
            );
        }
    }
    if order.is_empty() {
        order = defaults.order.clone();
    }
    DnsConfig {
        resolvers,
        hostsfile: r
            .get("dns_hostsfile")
            .map(PathBuf::from)
            .unwrap_or(defaults.hostsfile),
        order,
        valid_ttl: r.seconds("dns_valid_ttl"),
        stale_ttl: r.seconds("dns_stale_ttl").unwrap_or(defaults.stale_ttl),
        cache_size: r.opt_int("dns_cache_size").unwrap_or(defaults.cache_size),
        not_found_ttl: r
            .seconds("dns_not_found_ttl")
            .unwrap_or(defaults.not_found_ttl),
        error_ttl: r.seconds("dns_error_ttl").unwrap_or(defaults.error_ttl),
        no_sync: r.bool("dns_no_sync"),
    }
}

fn check_roles(c: &Config, r: &mut Reader<'_>) {
    match c.role.as_str() {
        "data_plane" | "control_plane" => r.invalid(
            "role",
            format!(
                "role has an unsupported value: '{}' (hybrid mode is not available yet; use traditional)",
                c.role
            ),
        ),
        _ => {}
    }
    if c.router_flavor == "expressions" {
        r.invalid(
            "router_flavor",
            "router_flavor has an unsupported value: 'expressions' (traditional, traditional_compatible)".into(),
        );
    }
}

fn parse_headers(r: &mut Reader<'_>) -> Headers {
    let mut h = Headers::default();
    for token in r.list("headers") {
        match token.to_ascii_lowercase().as_str() {
            "off" => h = Headers::default(),
            "server" => h.server = true,
            "via" => h.via = true,
            "server_tokens" => {
                h.server = true;
                h.via = true;
            }
            "x-kong-proxy-latency" => h.proxy_latency = true,
            "x-kong-response-latency" => h.response_latency = true,
            "x-kong-upstream-latency" => h.upstream_latency = true,
            "x-kong-admin-latency" => h.admin_latency = true,
            "latency_tokens" => {
                h.proxy_latency = true;
                h.response_latency = true;
                h.upstream_latency = true;
                h.admin_latency = true;
            }
            "x-kong-upstream-status" => h.upstream_status = true,
            "x-kong-request-id" => h.request_id = true,
            _ => r.invalid("headers", format!("headers: invalid entry '{token}'")),
        }
    }
    h
}

/// The prefix: configured (made absolute), else the default for this user.
///
/// Root (and anyone who can write it) uses Kong's `/usr/local/kong`; other users get
/// `$HOME/.kong`, so `kong start` works without privileges.
fn resolve_prefix(configured: Option<&str>, env: &dyn Env, raw: &RawMap) -> PathBuf {
    let is_default = raw
        .get("prefix")
        .is_none_or(|v| v.source == Source::Default);
    let path = match configured {
        Some(p) if !is_default => PathBuf::from(p),
        _ => default_prefix(env),
    };
    if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(&path))
            .unwrap_or(path)
    }
}

/// `path` made absolute against the working directory, as Kong does for `declarative_config`
/// (the node may run elsewhere than where `kong start` was typed).
fn absolute(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(&path))
        .unwrap_or(path)
}

/// The default prefix for the current user (see `resolve_prefix`).
pub fn default_prefix(env: &dyn Env) -> PathBuf {
    let system = PathBuf::from("/usr/local/kong");
    if nix::unistd::geteuid().is_root() || writable(&system) {
        return system;
    }
    match env.var("HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join(".kong"),
        _ => system,
    }
}

fn writable(dir: &Path) -> bool {
    let target = if dir.exists() {
        dir
    } else {
        match dir.parent() {
            Some(p) => p,
            None => return false,
        }
    };
    nix::unistd::access(target, nix::unistd::AccessFlags::W_OK).is_ok()
}

impl Config {
    /// The resolved configuration in `kong.conf` syntax, as written to `.kong_env`.
    pub fn to_kong_env(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.raw {
            if let Some(v) = v {
                out.push_str(k);
                out.push_str(" = ");
                out.push_str(&parse::escape_env_value(v));
                out.push('\n');
            }
        }
        out
    }

    /// The configuration as JSON with typed values and secrets masked, as `GET /` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        let mut map = serde_json::Map::new();
        for (k, v) in &self.raw {
            let value = match v {
                None => Value::Null,
                Some(_) if properties::is_secret(k) => Value::String("******".into()),
                Some(v) => match properties::find(k).map(|p| p.kind) {
                    Some(properties::Kind::Bool) => {
                        typed::parse_bool(v).map_or(Value::Null, Value::Bool)
                    }
                    Some(properties::Kind::Int(..)) | Some(properties::Kind::Num) => v
                        .parse::<f64>()
                        .ok()
                        .and_then(|n| {
                            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                                Some(Value::from(n as i64))
                            } else {
                                serde_json::Number::from_f64(n).map(Value::Number)
                            }
                        })
                        .unwrap_or(Value::Null),
                    Some(properties::Kind::List) | Some(properties::Kind::Listen) => Value::Array(
                        typed::split_list(v)
                            .into_iter()
                            .map(Value::String)
                            .collect(),
                    ),
                    _ => Value::String(v.clone()),
                },
            };
            map.insert(k.clone(), value);
        }
        Value::Object(map)
    }

    /// Path of `.kong_env` in the prefix.
    pub fn kong_env_path(&self) -> PathBuf {
        self.prefix.join(KONG_ENV)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut f, text.as_bytes()).expect("write");
        f
    }

    fn load_with(
        file: Option<&Path>,
        e: &[(&str, &str)],
        overrides: Vec<(&'static str, &'static str, String)>,
    ) -> Result<Loaded, ConfigError> {
        load(
            &LoadOptions {
                conf_path: file.map(Path::to_path_buf),
                no_default_search: true,
                overrides,
                ..Default::default()
            },
            &env(e),
        )
    }

    #[test]
    fn defaults_are_kongs() {
        let c = load_with(None, &[("HOME", "/home/x")], vec![])
            .expect("defaults")
            .config;
        assert_eq!(c.log_level, LogLevel::Notice);
        assert_eq!(c.proxy_listen.len(), 2);
        assert_eq!(c.proxy_listen[0].address(), "0.0.0.0:8000");
        assert!(c.proxy_listen[1].ssl && c.proxy_listen[1].http2);
        assert_eq!(c.admin_listen[0].address(), "127.0.0.1:8001");
        assert_eq!(c.admin_listen[1].address(), "127.0.0.1:8444");
        assert!(c.status_listen.is_empty());
        assert_eq!(c.database, Database::Sqlite);
        assert!(c.daemon);
        assert!(c.headers.server && c.headers.via && c.headers.request_id);
        assert_eq!(c.pg.port, 5432);
        assert_eq!(c.admin_client_max_body_size, 10 << 20);
        assert_eq!(c.upstream_keepalive_pool_size, 512);
    }

    #[test]
    fn client_limits_default_to_nginx_and_servers_override_http() {
        let c = load_with(None, &[("HOME", "/home/x")], vec![])
            .expect("defaults")
            .config;
        assert_eq!(c.proxy_client, ClientLimits::default());
        assert_eq!(c.proxy_client.header_total, 32 << 10);

        let f = write(
            "nginx_http_client_header_timeout = 5s\nnginx_http_client_body_timeout = 1m\nnginx_proxy_client_body_timeout = 500ms\nnginx_admin_large_client_header_buffers = 2 1k\nlua_max_req_headers = 50\n",
        );
        let c = load_with(Some(f.path()), &[("HOME", "/home/x")], vec![])
            .expect("valid")
            .config;
        let secs = std::time::Duration::from_secs;
        assert_eq!(c.proxy_client.header_timeout, secs(5));
        assert_eq!(c.admin_client.header_timeout, secs(5));
        assert_eq!(
            c.proxy_client.body_timeout,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(c.admin_client.body_timeout, secs(60));
        assert_eq!(c.status_client.body_timeout, secs(60));
        assert_eq!(
            (c.admin_client.header_line, c.admin_client.header_total),
            (1024, 2048)
        );
        assert_eq!(c.proxy_client.header_line, 8 << 10);
        assert_eq!(c.proxy_client.max_headers, 50);

        let f = write("nginx_http_client_header_timeout = soon\nnginx_proxy_large_client_header_buffers = 8k\n");
        let err = load_with(Some(f.path()), &[("HOME", "/home/x")], vec![])
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains("nginx_http_client_header_timeout is not a positive time: 'soon'"),
            "{err}"
        );
        assert!(
            err.contains("nginx_proxy_large_client_header_buffers has an invalid value: '8k'"),
            "{err}"
        );
    }

    #[test]
    fn declarative_config_is_made_absolute() {
        let c = load_with(
            None,
            &[
                ("HOME", "/home/x"),
                ("KONG_DECLARATIVE_CONFIG", "conf/kong.yml"),
            ],
            vec![],
        )
        .expect("valid")
        .config;
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(c.declarative_config, Some(cwd.join("conf/kong.yml")));
        assert!(c.to_kong_env().contains(&format!(
            "declarative_config = {}\n",
            cwd.join("conf/kong.yml").display()
        )));
    }

    #[test]
    fn precedence_is_default_file_env_cli() {
        let f = write(
            "log_level = info\npg_host = file-host\npg_port = 1111\nprefix = /tmp/from-file\n",
        );
        let c = load_with(
            Some(f.path()),
            &[
                ("KONG_PG_HOST", "env-host"),
                ("KONG_PREFIX", "/tmp/from-env"),
            ],
            vec![("--prefix", "prefix", "/tmp/from-cli".into())],
        )
        .expect("valid")
        .config;
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.pg.host, "env-host");
        assert_eq!(c.pg.port, 1111);
        assert_eq!(c.prefix, PathBuf::from("/tmp/from-cli"));
    }

    #[test]
    fn errors_name_key_value_reason_and_origin() {
        let f = write("log_level = loud\npg_port = abc\nproxy_listen = 0.0.0.0 ssl\n");
        let err =
            load_with(Some(f.path()), &[("KONG_PG_SSL", "maybe")], vec![]).expect_err("invalid");
        let msg = err.to_string();
        let p = f.path().display();
        assert!(msg.contains(&format!("log_level has an invalid value: 'loud' (debug, info, notice, warn, error, crit, alert, emerg) (from {p}:1)")), "{msg}");
        assert!(
            msg.contains(&format!("pg_port is not a number: 'abc' (from {p}:2)")),
            "{msg}"
        );
        assert!(
            msg.contains("proxy_listen has an invalid value: '0.0.0.0 ssl'"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "pg_ssl is not a boolean: 'maybe' (from environment variable KONG_PG_SSL)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn unknown_keys_warn_and_kong_keys_do_not() {
        let f = write("no_such_thing = 1\nlua_package_path = ./?.lua\nnginx_http_gzip = on\nnginx_main_daemon = off\n");
        let loaded = load_with(Some(f.path()), &[], vec![]).expect("valid");
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("unknown property 'no_such_thing'"));
        assert!(
            !loaded.config.daemon,
            "nginx_main_daemon is an alias of nginx_daemon"
        );
    }

    #[test]
    fn env_alias_and_daemon_off() {
        let c = load_with(None, &[("KONG_NGINX_DAEMON", "off")], vec![])
            .expect("valid")
            .config;
        assert!(!c.daemon);
        let c = load_with(None, &[("KONG_NGINX_MAIN_DAEMON", "off")], vec![])
            .expect("valid")
            .config;
        assert!(!c.daemon);
    }

    #[test]
    fn missing_conf_file_is_an_error() {
        let err =
            load_with(Some(Path::new("/nonexistent/kong.conf")), &[], vec![]).expect_err("missing");
        assert_eq!(err.to_string(), "no file at: /nonexistent/kong.conf");
    }

    #[test]
    fn kong_env_round_trips_and_json_masks_secrets() {
        let f = write("pg_password = s3cr\\#t\nplugins = bundled,key-auth\n");
        let c = load_with(Some(f.path()), &[], vec![])
            .expect("valid")
            .config;
        let again = write(&c.to_kong_env());
        let c2 = load_with(Some(again.path()), &[], vec![])
            .expect("valid")
            .config;
        assert_eq!(c2.pg.password.as_deref(), Some("s3cr#t"));
        assert_eq!(c.raw, c2.raw);
        let json = c.to_json();
        assert_eq!(json["pg_password"], "******");
        assert_eq!(json["plugins"], serde_json::json!(["bundled", "key-auth"]));
        assert_eq!(json["pg_port"], 5432);
        assert_eq!(json["pg_ssl"], false);
    }

    #[test]
    fn kong_env_carries_multi_line_values() {
        let pem = "-----BEGIN KEY-----\nab\\cd#\n-----END KEY-----\n";
        let c = load_with(None, &[("KONG_DECLARATIVE_CONFIG_STRING", pem)], vec![])
            .expect("valid")
            .config;
        let env_file = write(&c.to_kong_env());
        let back = load(
            &LoadOptions {
                base: Some(env_file.path().to_path_buf()),
                no_default_search: true,
                ..Default::default()
            },
            &env(&[]),
        )
        .expect("reload .kong_env")
        .config;
        assert_eq!(back.declarative_config_string, c.declarative_config_string);
        assert_eq!(
            back.declarative_config_string.as_deref(),
            Some(pem.trim_end())
        );
        assert_eq!(c.to_json()["declarative_config_string"], "******");
    }

    #[test]
    fn cert_without_key_is_rejected() {
        let err = load_with(None, &[("KONG_SSL_CERT", "/a.crt")], vec![]).expect_err("invalid");
        assert!(err.to_string().contains("ssl_cert_key must be specified"));
    }
}
