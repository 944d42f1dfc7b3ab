//! Version strings.
//!
//! The node reports Kong's version (`3.10.0`) wherever clients read one (`GET /`, `Server`,
//! `Via`, `kong version`), because tools such as decK choose their behaviour from it. This
//! build's own version is shown by `kong version --all`.

/// The Kong version this node is compatible with.
pub const KONG_VERSION: &str = "3.10.0";

/// `Server` header value and `Via` token.
pub const SERVER_TOKEN: &str = "kong/3.10.0";

/// This build's own version.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
