//! Version strings.
//!
//! The node reports Kong's version (`3.10.0`) wherever clients read one (`GET /`, `Server`,
//! `Via`, `kong version`), because tools such as decK choose their behaviour from it. This
//! build's own version is shown by `kong version --all`.

/// The Kong version this node is compatible with.
pub const KONG_VERSION: &str = "3.10.0";

/// `Server` header value and `Via` token.
pub const SERVER_TOKEN: &str = "kong/3.10.0";

/// `Via` values for a response from an HTTP/1.1 and an HTTP/2 upstream (no earlier `Via`).
pub const VIA_HTTP1: &str = "1.1 kong/3.10.0";
/// See [`VIA_HTTP1`].
pub const VIA_HTTP2: &str = "2 kong/3.10.0";

/// This build's own version.
pub const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_agree() {
        assert_eq!(SERVER_TOKEN, format!("kong/{KONG_VERSION}"));
        assert_eq!(VIA_HTTP1, format!("1.1 {SERVER_TOKEN}"));
        assert_eq!(VIA_HTTP2, format!("2 {SERVER_TOKEN}"));
    }
}
