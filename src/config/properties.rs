//! The table of `kong.conf` properties this node knows: name, default and value kind.
//!
//! Defaults are Kong's (3.10 line) except where this node deliberately differs, each such
//! difference marked `OURS` below. Properties Kong has but this node does not act on are listed
//! in [`INERT`] so that a Kong configuration file loads without a warning for each of them.

/// What a property's value must look like; checked when the typed config is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string.
    Str,
    /// `on`/`off`/`true`/`false`.
    Bool,
    /// Exactly `on` or `off` (nginx-style booleans).
    NgxBool,
    /// An integer within an inclusive range.
    Int(i64, i64),
    /// A non-negative number (seconds, possibly fractional).
    Num,
    /// A comma-separated list.
    List,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// Listener directives (`addr:port flags, ...` or `off`).
    Listen,
    /// A size with an optional `k`, `m` or `g` suffix.
    Size,
    /// A positive nginx time: `500ms`, `60s`, `1m`, `1h 30m`; a bare number is seconds.
    Time,
    /// nginx's `large_client_header_buffers`: a buffer count and a size, as in `4 8k`.
    Buffers,
}

/// One known property.
#[derive(Debug)]
pub struct Property {
    /// Lower-case property name, as written in `kong.conf`.
    pub name: &'static str,
    /// Built-in default; `None` means unset.
    pub default: Option<&'static str>,
    /// Value kind used for validation.
    pub kind: Kind,
    /// Whether the value is a secret, masked as `******` when the configuration is shown.
    pub secret: bool,
}

const fn p(name: &'static str, default: Option<&'static str>, kind: Kind) -> Property {
    Property {
        name,
        default,
        kind,
        secret: false,
    }
}

const fn secret(name: &'static str) -> Property {
    Property {
        name,
        default: None,
        kind: Kind::Str,
        secret: true,
    }
}

/// Log levels accepted by `log_level`, most verbose first.
pub const LOG_LEVELS: &[&str] = &[
    "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
];

/// Media types accepted by `error_default_type`.
pub const ERROR_TYPES: &[&str] = &[
    "application/json",
    "application/xml",
    "text/html",
    "text/plain",
];

use Kind::*;

/// Every property the node reads, with its default.
pub static PROPERTIES: &[Property] = &[
    p("prefix", Some("/usr/local/kong/"), Str),
    p("log_level", Some("notice"), OneOf(LOG_LEVELS)),
    // OURS: Kong has no structured logs; `json` writes every log line as one JSON object.
    p("log_format", Some("text"), OneOf(&["text", "json"])),
    p("proxy_access_log", Some("logs/access.log"), Str),
    p("proxy_error_log", Some("logs/error.log"), Str),
    p("proxy_stream_access_log", Some("logs/access.log basic"), Str),
    p("proxy_stream_error_log", Some("logs/error.log"), Str),
    p("admin_access_log", Some("logs/admin_access.log"), Str),
    p("admin_error_log", Some("logs/error.log"), Str),
    p("status_access_log", Some("off"), Str),
    p("status_error_log", Some("logs/status_error.log"), Str),
    p("plugins", Some("bundled"), List),
    p("vaults", Some("bundled"), List),
    p("anonymous_reports", Some("on"), Bool),
    p(
        "proxy_listen",
        Some("0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384"),
        Listen,
    ),
    p("stream_listen", Some("off"), Listen),
    p(
        "admin_listen",
        Some("127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 http2 ssl reuseport backlog=16384"),
        Listen,
    ),
    p("admin_gui_listen", Some("0.0.0.0:8002, 0.0.0.0:8445 ssl"), Listen),
    // OURS: the status API is opt-in here (Kong 3.x listens on 127.0.0.1:8007 by default).
    p("status_listen", Some("off"), Listen),
    // OURS: the embedded SQLite datastore is the default, so no database server is needed.
    p("database", Some("sqlite"), OneOf(&["sqlite", "postgres", "off"])),
    // OURS: the SQLite file, relative to the prefix unless absolute.
    p("sqlite_path", Some("kong.db"), Str),
    p("declarative_config", None, Str),
    Property {
        name: "declarative_config_string",
        default: None,
        kind: Str,
        secret: true,
    },
    p("pg_host", Some("127.0.0.1"), Str),
    p("pg_port", Some("5432"), Int(0, 65535)),
    p("pg_timeout", Some("5000"), Int(1, i64::MAX)),
    p("pg_user", Some("kong"), Str),
    secret("pg_password"),
    p("pg_database", Some("kong"), Str),
    p("pg_schema", None, Str),
    p("pg_ssl", Some("off"), Bool),
    p("pg_ssl_verify", Some("off"), Bool),
    p("pg_max_concurrent_queries", Some("0"), Int(0, i64::MAX)),
    p("pg_semaphore_timeout", Some("60000"), Int(1, i64::MAX)),
    p("pg_keepalive_timeout", None, Int(1, i64::MAX)),
    p("pg_pool_size", None, Int(1, i64::MAX)),
    p("pg_backlog", None, Int(1, i64::MAX)),
    p("pg_ro_host", None, Str),
    p("pg_ro_port", None, Int(0, 65535)),
    p("pg_ro_timeout", None, Int(1, i64::MAX)),
    p("pg_ro_user", None, Str),
    secret("pg_ro_password"),
    p("pg_ro_database", None, Str),
    p("pg_ro_schema", None, Str),
    p("pg_ro_ssl", None, Bool),
    p("pg_ro_ssl_verify", None, Bool),
    p("pg_ro_max_concurrent_queries", None, Int(0, i64::MAX)),
    p("pg_ro_semaphore_timeout", None, Int(1, i64::MAX)),
    p("pg_ro_keepalive_timeout", None, Int(1, i64::MAX)),
    p("pg_ro_pool_size", None, Int(1, i64::MAX)),
    p("pg_ro_backlog", None, Int(1, i64::MAX)),
    p("db_update_frequency", Some("5"), Num),
    p("db_update_propagation", Some("0"), Num),
    p("db_cache_ttl", Some("0"), Num),
    p("db_cache_neg_ttl", None, Num),
    p("db_resurrect_ttl", Some("30"), Num),
    p("db_cache_warmup_entities", Some("services"), List),
    p("mem_cache_size", Some("128m"), Size),
    p(
        "headers",
        Some("server_tokens, latency_tokens, x-kong-request-id"),
        List,
    ),
    p("headers_upstream", Some("x-kong-request-id"), List),
    p("trusted_ips", None, List),
    p("real_ip_header", Some("X-Real-IP"), Str),
    p("real_ip_recursive", Some("off"), NgxBool),
    p("nginx_http_client_max_body_size", Some("0"), Size),
    p("client_body_buffer_size", Some("8k"), Size),
    p("nginx_http_client_body_buffer_size", Some("8k"), Size),
    p("nginx_admin_client_max_body_size", Some("10m"), Size),
    p("nginx_admin_client_body_buffer_size", Some("10m"), Size),
    p("nginx_http_keepalive_requests", Some("10000"), Int(0, i64::MAX)),
    // How long and how much a client may take to send its request, for every HTTP listener.
    // The `nginx_proxy_*`, `nginx_admin_*` and `nginx_status_*` spellings of the same directives
    // override them for one kind of listener, as nginx's server-level directives do (see
    // [`SERVER_DIRECTIVES`]).
    p("nginx_http_client_header_timeout", Some("60s"), Time),
    p("nginx_http_client_body_timeout", Some("60s"), Time),
    p("nginx_http_large_client_header_buffers", Some("4 8k"), Buffers),
    p("error_default_type", Some("text/plain"), OneOf(ERROR_TYPES)),
    p("error_template_html", None, Str),
    p("error_template_json", None, Str),
    p("error_template_xml", None, Str),
    p("error_template_plain", None, Str),
    p("ssl_cert", None, List),
    Property {
        name: "ssl_cert_key",
        default: None,
        kind: List,
        secret: true,
    },
    p(
        "ssl_cipher_suite",
        Some("intermediate"),
        OneOf(&["modern", "intermediate", "old", "custom"]),
    ),
    p("ssl_ciphers", None, Str),
    p("ssl_protocols", Some("TLSv1.2 TLSv1.3"), Str),
    p("ssl_prefer_server_ciphers", Some("on"), NgxBool),
    p("ssl_session_tickets", Some("on"), NgxBool),
    p("ssl_session_timeout", Some("1d"), Str),
    p("ssl_session_cache_size", Some("10m"), Size),
    p("admin_ssl_cert", None, List),
    Property {
        name: "admin_ssl_cert_key",
        default: None,
        kind: List,
        secret: true,
    },
    p("status_ssl_cert", None, List),
    Property {
        name: "status_ssl_cert_key",
        default: None,
        kind: List,
        secret: true,
    },
    p("client_ssl", Some("off"), Bool),
    p("client_ssl_cert", None, Str),
    Property {
        name: "client_ssl_cert_key",
        default: None,
        kind: Str,
        secret: true,
    },
    p("upstream_keepalive_pool_size", Some("512"), Int(0, i64::MAX)),
    p("upstream_keepalive_max_requests", Some("10000"), Int(0, i64::MAX)),
    p("upstream_keepalive_idle_timeout", Some("60"), Int(0, i64::MAX)),
    p("nginx_worker_processes", Some("auto"), Str),
    p("nginx_daemon", Some("on"), NgxBool),
    p("nginx_user", Some("kong kong"), Str),
    p("lua_ssl_trusted_certificate", Some("system"), List),
    p("lua_ssl_verify_depth", Some("1"), Int(0, 100)),
    p("lua_ssl_protocols", Some("TLSv1.2 TLSv1.3"), Str),
    p("dns_resolver", None, List),
    p("dns_hostsfile", Some("/etc/hosts"), Str),
    p("dns_order", Some("LAST,SRV,A,CNAME"), List),
    p("dns_valid_ttl", None, Num),
    p("dns_stale_ttl", Some("3600"), Num),
    p("dns_cache_size", Some("10000"), Int(0, i64::MAX)),
    p("dns_not_found_ttl", Some("30"), Num),
    p("dns_error_ttl", Some("1"), Num),
    p("dns_no_sync", Some("off"), Bool),
    p("worker_consistency", Some("eventual"), OneOf(&["eventual", "strict"])),
    p("worker_state_update_frequency", Some("5"), Num),
    p(
        "router_flavor",
        Some("traditional_compatible"),
        OneOf(&["traditional", "traditional_compatible", "expressions"]),
    ),
    p(
        "role",
        Some("traditional"),
        OneOf(&["traditional", "control_plane", "data_plane"]),
    ),
    p("cluster_listen", Some("0.0.0.0:8005"), Listen),
    p("cluster_control_plane", Some("127.0.0.1:8005"), Str),
    p("cluster_cert", None, Str),
    Property {
        name: "cluster_cert_key",
        default: None,
        kind: Str,
        secret: true,
    },
    p("cluster_ca_cert", None, Str),
    p("cluster_server_name", None, Str),
    p("cluster_mtls", Some("shared"), OneOf(&["shared", "pki"])),
    p("allow_debug_header", Some("off"), Bool),
    p("node_id", None, Str),
    p("port_maps", None, List),
    p("host_ports", None, List),
    // OURS: Kong proxies any number of headers that fit `large_client_header_buffers` and only
    // hides those past this count from plugins; this node has no separate plugin view of the
    // headers, so a request carrying more than this many is refused with 400 instead.
    p("lua_max_req_headers", Some("100"), Int(1, 1000)),
    p("lua_max_resp_headers", Some("100"), Int(1, 1000)),
    p("lua_max_uri_args", Some("100"), Int(1, 1000)),
    p("lua_max_post_args", Some("100"), Int(1, 1000)),
    Property {
        name: "proxy_server",
        default: None,
        kind: Str,
        secret: true,
    },
    p("proxy_server_ssl_verify", Some("on"), Bool),
];

/// Kong properties that this node accepts and ignores: they configure Lua, nginx internals or
/// features that do not exist here, so a Kong configuration loads without noise.
pub static INERT: &[&str] = &[
    "admin_gui_url",
    "admin_gui_path",
    "admin_gui_api_url",
    "admin_gui_ssl_cert",
    "admin_gui_ssl_cert_key",
    "admin_gui_access_log",
    "admin_gui_error_log",
    "admin_gui_csp_header",
    "admin_gui_csp_header_value",
    "admin_gui_origin",
    "cluster_data_plane_purge_delay",
    "cluster_ocsp",
    "cluster_max_payload",
    "cluster_use_proxy",
    "cluster_dp_labels",
    "cluster_rpc",
    "cluster_rpc_sync",
    "cluster_cjson",
    "cluster_telemetry_listen",
    "dedicated_config_processing",
    "lmdb_environment_path",
    "lmdb_map_size",
    "lua_package_path",
    "lua_package_cpath",
    "lua_socket_pool_size",
    "lua_ssl_protocols",
    "new_dns_client",
    "resolver_address",
    "resolver_hosts_file",
    "resolver_family",
    "resolver_valid_ttl",
    "resolver_stale_ttl",
    "resolver_error_ttl",
    "resolver_lru_cache_size",
    "resolver_mem_cache_size",
    "request_debug",
    "request_debug_token",
    "tracing_instrumentations",
    "tracing_sampling_rate",
    "untrusted_lua",
    "untrusted_lua_sandbox_requires",
    "untrusted_lua_sandbox_environment",
    "wasm",
    "wasm_filters",
    "wasm_filters_path",
    "max_queued_batches",
    "pluginserver_names",
    "ssl_dhparam",
    "lua_ssl_trusted_certificate_combined",
    "opentelemetry_tracing",
    "opentelemetry_tracing_sampling_rate",
    "router_consistency",
    "privileged_worker",
    "admin_gui_auth",
    "admin_gui_auth_conf",
];

/// Kong's spelling aliases: `(alias, canonical)`. A value given under the alias is stored under
/// the canonical name.
pub static ALIASES: &[(&str, &str)] = &[
    ("nginx_main_daemon", "nginx_daemon"),
    ("nginx_main_worker_processes", "nginx_worker_processes"),
    ("nginx_main_user", "nginx_user"),
    ("nginx_proxy_real_ip_header", "real_ip_header"),
    ("nginx_proxy_real_ip_recursive", "real_ip_recursive"),
];

/// Directives read per listener kind: `nginx_http_<directive>` is the default, and
/// `nginx_proxy_<directive>`, `nginx_admin_<directive>` or `nginx_status_<directive>` (dynamic
/// keys, not in [`PROPERTIES`]) override it for the proxy, Admin API or Status API listeners.
pub static SERVER_DIRECTIVES: &[(&str, Kind)] = &[
    ("client_header_timeout", Time),
    ("client_body_timeout", Time),
    ("large_client_header_buffers", Buffers),
];

/// Prefixes of Kong's dynamic nginx directive injection keys (`nginx_http_gzip = on`, ...).
/// They are accepted; the ones this node understands are in [`PROPERTIES`].
pub static DYNAMIC_PREFIXES: &[&str] = &[
    "nginx_main_",
    "nginx_events_",
    "nginx_http_",
    "nginx_upstream_",
    "nginx_proxy_",
    "nginx_location_",
    "nginx_status_",
    "nginx_admin_",
    "nginx_stream_",
    "nginx_supstream_",
    "nginx_sproxy_",
    "nginx_wasm_",
    "pluginserver_",
    "vault_",
];

/// Looks up a known property by name.
pub fn find(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// The canonical name for `name` (resolving aliases).
pub fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, c)| *c)
        .unwrap_or(name)
}

/// Whether `name` is accepted without a warning: known, inert, or a dynamic directive.
pub fn is_accepted(name: &str) -> bool {
    find(name).is_some()
        || INERT.contains(&name)
        || DYNAMIC_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Whether the property's value must be masked when shown.
pub fn is_secret(name: &str) -> bool {
    find(name).is_some_and(|p| p.secret)
        || name.ends_with("password")
        || name.ends_with("_cert_key")
        || name.ends_with("_key")
        || name.starts_with("vault_")
        || name == "proxy_server"
}
