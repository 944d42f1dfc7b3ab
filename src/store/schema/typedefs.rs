//! Reusable value checks: names, hosts, paths, tags, addresses (Kong's typedefs).

use std::net::IpAddr;

use serde_json::Value;

/// Every protocol, sorted as Kong lists them in messages.
pub const PROTOCOLS: &[&str] = &[
    "grpc",
    "grpcs",
    "http",
    "https",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
];

/// The HTTP-subsystem protocols.
pub const HTTP_PROTOCOLS: &[&str] = &["grpc", "grpcs", "http", "https"];

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `utf8_name`: ASCII alphanumerics, `.`, `-`, `_`, `~`, and any non-ASCII character.
pub fn utf8_name(v: &Value) -> Result<(), String> {
    let s = text(v);
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_~".contains(*c) || !c.is_ascii()))
    {
        None => Ok(()),
        Some(c) => Err(format!(
            "invalid value '{s}': it must only contain alphanumeric and '., -, _, ~' characters (found '{c}')"
        )),
    }
}

/// Whether `s` is a DNS hostname (labels of letters, digits, `-` and `_`).
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Splits an optional `:port`, understanding bracketed IPv6.
pub fn split_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let invalid = || format!("invalid value: {s}");
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
        return match after {
            "" => Ok((host, None)),
            p => {
                let port = p.strip_prefix(':').ok_or_else(invalid)?;
                Ok((host, Some(port.parse().map_err(|_| invalid())?)))
            }
        };
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s, None));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p.parse().map_err(|_| invalid())?))),
        None => Ok((s, None)),
    }
}

/// `host`: a hostname or IP without a port.
pub fn host(v: &Value) -> Result<(), String> {
    let s = text(v);
    let (h, port) = split_port(s)?;
    if port.is_some() {
        return Err("must not have a port".into());
    }
    if h.parse::<IpAddr>().is_ok() || is_hostname(h) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

/// `host_with_optional_port`.
pub fn host_with_optional_port(v: &Value) -> Result<(), String> {
    let s = text(v);
    let (h, _) = split_port(s)?;
    if h.parse::<IpAddr>().is_ok() || is_hostname(h) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

/// `wildcard_host`: a hostname (not an IP, no port) with at most one `*`, leftmost or rightmost;
/// `*` alone is accepted too (as an SNI entity it names the certificate for any server name).
pub fn wildcard_host(v: &Value) -> Result<(), String> {
    let s = text(v);
    if s == "*" {
        return Ok(());
    }
    if s.parse::<IpAddr>().is_ok() {
        return Err("must not be an IP".into());
    }
    if s.contains(':') {
        return Err("must not have a port".into());
    }
    let stars = s.matches('*').count();
    if stars > 1 {
        return Err("only one wildcard must be specified".into());
    }
    if stars == 1 && !(s.starts_with("*.") || s.ends_with(".*")) {
        return Err("wildcard must be leftmost or rightmost character".into());
    }
    let bare = s.trim_start_matches("*.").trim_end_matches(".*");
    if is_hostname(bare) {
        Ok(())
    } else {
        Err(format!("invalid value: {s}"))
    }
}

/// `path`: starts with `/`, no `//`, only URL path characters, `%` followed by two hex digits.
pub fn path(v: &Value) -> Result<(), String> {
    let s = text(v);
    if !s.starts_with('/') {
        return Err("should start with: /".into());
    }
    if s.contains("//") {
        return Err("must not have empty segments".into());
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b);
        if !ok {
            return Err(format!(
                "invalid path: '{s}' (characters outside of the reserved list of RFC 3986 found)"
            ));
        }
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            // Three characters, not bytes: the next ones may be multi-byte.
            let escape: String = s.get(i..).unwrap_or_default().chars().take(3).collect();
            return Err(format!("invalid url-encoded value: '{escape}'"));
        }
    }
    Ok(())
}

/// Normalises a URL path the way routes are matched: percent-escapes of unreserved characters
/// decoded, other escapes upper-cased, `.` and `..` segments resolved.
pub fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out_bytes: Vec<u8> = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let (b'%', Some(hex)) = (b, hex) {
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    out_bytes.push(v);
                } else {
                    out_bytes.push(b'%');
                    out_bytes.extend(hex.to_ascii_uppercase().bytes());
                }
                i += 3;
                continue;
            }
        }
        out_bytes.push(b);
        i += 1;
    }
    // Only unreserved ASCII is decoded, so the text stays what it was: valid UTF-8.
    let decoded = String::from_utf8_lossy(&out_bytes);
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (n, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if n == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if n == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.is_empty() {
        "/".into()
    } else {
        joined
    }
}

/// `tag`: printable ASCII except `,` and `/`, or non-ASCII text.
pub fn tag(v: &Value) -> Result<(), String> {
    let s = text(v);
    if s.chars()
        .all(|c| !c.is_ascii() || ((' '..='~').contains(&c) && c != ',' && c != '/'))
    {
        Ok(())
    } else {
        Err("invalid tag: it must be printable ascii (except `,` and `/`) or valid utf-8".into())
    }
}

/// `ip_or_cidr`.
pub fn ip_or_cidr(v: &Value) -> Result<(), String> {
    let s = text(v);
    let (ip, bits) = match s.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (s, None),
    };
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return Err(format!("invalid ip or cidr range: '{s}'"));
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match bits.map(str::parse::<u8>) {
        None => Ok(()),
        Some(Ok(b)) if b <= max => Ok(()),
        Some(_) => Err(format!("invalid ip or cidr range: '{s}'")),
    }
}

/// `header_name`: an HTTP token.
pub fn header_name(v: &Value) -> Result<(), String> {
    let s = text(v);
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        Ok(())
    } else {
        Err(format!(
            "bad header name '{s}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        ))
    }
}

/// A PEM certificate chain that parses.
pub fn pem_certificate(v: &Value) -> Result<(), String> {
    let mut reader = text(v).as_bytes();
    let certs: Vec<_> = rustls_pemfile::certs(&mut reader)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid certificate: {e}"))?;
    if certs.is_empty() {
        return Err("invalid certificate: no PEM certificate found".into());
    }
    Ok(())
}

/// A PEM private key that parses.
pub fn pem_key(v: &Value) -> Result<(), String> {
    let mut reader = text(v).as_bytes();
    match rustls_pemfile::private_key(&mut reader) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("invalid key: no PEM private key found".into()),
        Err(e) => Err(format!("invalid key: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_and_paths() {
        assert!(host(&json!("example.com")).is_ok());
        assert!(host(&json!("10.0.0.1")).is_ok());
        assert!(host(&json!("::1")).is_ok());
        assert_eq!(
            host(&json!("example.com:80")),
            Err("must not have a port".into())
        );
        assert!(wildcard_host(&json!("*.example.com")).is_ok());
        assert!(wildcard_host(&json!("example.*")).is_ok());
        assert!(wildcard_host(&json!("a.*.com")).is_err());
        assert!(wildcard_host(&json!("*")).is_ok());
        assert!(wildcard_host(&json!("*.*")).is_err());
        assert!(path(&json!("/a/b%20c")).is_ok());
        assert!(path(&json!("a")).is_err());
        assert!(path(&json!("/a//b")).is_err());
        assert!(path(&json!("/a%zz")).is_err());
        // An escape cut short by a multi-byte character is an error, not a panic.
        assert_eq!(
            path(&json!("/%aé")),
            Err("invalid url-encoded value: '%aé'".into())
        );
        assert!(ip_or_cidr(&json!("10.0.0.0/8")).is_ok());
        assert!(ip_or_cidr(&json!("10.0.0.0/33")).is_err());
        assert!(tag(&json!("a,b")).is_err());
        assert!(utf8_name(&json!("my-svc.v1~ü")).is_ok());
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/%7euser/%2f"), "/~user/%2F");
        assert_eq!(normalize_path("/a/.."), "/");
        assert_eq!(normalize_path("/api/"), "/api/");
        assert_eq!(normalize_path("/ü/%C3%BC"), "/ü/%C3%BC");
        assert_eq!(normalize_path("/%é"), "/%é");
        assert!(utf8_name(&json!("my svc")).is_err());
    }
}
