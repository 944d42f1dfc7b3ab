//! Listener directives: `addr:port [flag ...], ...` or `off`, as in `proxy_listen`.

use std::fmt;

/// One listening socket and its flags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listen {
    /// Host part: an IPv4 address, a bracket-less IPv6 address, or a hostname.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Terminate TLS on this socket.
    pub ssl: bool,
    /// Offer HTTP/2 (ALPN `h2` with `ssl`, prior-knowledge h2c without).
    pub http2: bool,
    /// Expect a PROXY protocol header (accepted for compatibility; not acted on yet).
    pub proxy_protocol: bool,
    /// `deferred` (accepted, no effect on this platform's accept loop).
    pub deferred: bool,
    /// `bind` (always true here: every listener binds its own socket).
    pub bind: bool,
    /// Set `SO_REUSEPORT`.
    pub reuseport: bool,
    /// Listen backlog.
    pub backlog: Option<u32>,
    /// `IPV6_V6ONLY`, when given.
    pub ipv6only: Option<bool>,
    /// `SO_KEEPALIVE`, when given as `on`/`off` (the `idle:intvl:cnt` form enables it).
    pub so_keepalive: Option<bool>,
    /// Datagram socket (stream listeners only).
    pub udp: bool,
}

impl Listen {
    /// `host:port`, with brackets around IPv6 addresses.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())?;
        for (on, flag) in [
            (self.ssl, "ssl"),
            (self.http2, "http2"),
            (self.udp, "udp"),
            (self.proxy_protocol, "proxy_protocol"),
            (self.deferred, "deferred"),
            (self.bind, "bind"),
            (self.reuseport, "reuseport"),
        ] {
            if on {
                write!(f, " {flag}")?;
            }
        }
        if let Some(b) = self.backlog {
            write!(f, " backlog={b}")?;
        }
        if let Some(v) = self.ipv6only {
            write!(f, " ipv6only={}", if v { "on" } else { "off" })?;
        }
        if let Some(v) = self.so_keepalive {
            write!(f, " so_keepalive={}", if v { "on" } else { "off" })?;
        }
        Ok(())
    }
}

/// Parses a whole `*_listen` value. `stream` allows the `udp` flag and forbids `http2`.
pub fn parse_listeners(value: &str, stream: bool) -> Result<Vec<Listen>, String> {
    let value = value.trim();
    if value.is_empty() || value == "off" {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|entry| parse_one(entry.trim(), stream))
        .collect()
}

fn parse_one(entry: &str, stream: bool) -> Result<Listen, String> {
    let mut words = entry.split_whitespace();
    let addr = words
        .next()
        .ok_or_else(|| "empty listener entry".to_string())?;
    if addr == "off" {
        return Err("'off' must be the only value".into());
    }
    let (host, port) = split_host_port(addr)?;
    let mut l = Listen {
        host,
        port,
        ssl: false,
        http2: false,
        proxy_protocol: false,
        deferred: false,
        bind: false,
        reuseport: false,
        backlog: None,
        ipv6only: None,
        so_keepalive: None,
        udp: false,
    };
    for flag in words {
        match flag {
            "ssl" => l.ssl = true,
            "http2" if !stream => l.http2 = true,
            "udp" if stream => l.udp = true,
            "proxy_protocol" => l.proxy_protocol = true,
            "deferred" if !stream => l.deferred = true,
            "bind" => l.bind = true,
            "reuseport" => l.reuseport = true,
            _ => {
                if let Some(n) = flag.strip_prefix("backlog=") {
                    l.backlog = Some(n.parse().map_err(|_| {
                        format!("invalid backlog '{n}' in '{entry}': expected a number")
                    })?);
                } else if let Some(v) = flag.strip_prefix("ipv6only=") {
                    l.ipv6only = Some(on_off(v).ok_or_else(|| {
                        format!("invalid ipv6only '{v}' in '{entry}': expected on or off")
                    })?);
                } else if let Some(v) = flag.strip_prefix("so_keepalive=") {
                    l.so_keepalive = Some(keepalive(v).ok_or_else(|| {
                        format!("invalid so_keepalive '{v}' in '{entry}': expected on, off or idle:intvl:cnt")
                    })?);
                } else {
                    return Err(format!("unknown flag '{flag}' in '{entry}'"));
                }
            }
        }
    }
    if l.udp && l.ssl {
        return Err(format!("'udp' and 'ssl' cannot be combined in '{entry}'"));
    }
    Ok(l)
}

fn on_off(v: &str) -> Option<bool> {
    match v {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn keepalive(v: &str) -> Option<bool> {
    on_off(v).or_else(|| {
        let parts: Vec<_> = v.split(':').collect();
        (parts.len() == 3
            && parts.iter().all(|p| {
                p.is_empty() || p.trim_end_matches(['s', 'm', 'h']).parse::<u32>().is_ok()
            }))
        .then_some(true)
    })
}

fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("'{addr}' is not [ipv6]:port"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("'{addr}' has no port (expected address:port)"))?;
        if h.contains(':') {
            return Err(format!(
                "IPv6 address in '{addr}' must be bracketed: [addr]:port"
            ));
        }
        (h.to_string(), p)
    };
    if host.is_empty() {
        return Err(format!("'{addr}' has no address"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("invalid port '{port}' in '{addr}'"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kong_defaults() {
        let ls = parse_listeners(
            "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
            false,
        )
        .expect("valid");
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[0].address(), "0.0.0.0:8000");
        assert!(ls[0].reuseport && !ls[0].ssl);
        assert_eq!(ls[0].backlog, Some(16384));
        assert!(ls[1].ssl && ls[1].http2);
    }

    #[test]
    fn off_and_ipv6_and_flags() {
        assert!(parse_listeners("off", false).expect("off").is_empty());
        let l = &parse_listeners("[::1]:9000 ipv6only=on so_keepalive=30m::10", false)
            .expect("valid")[0];
        assert_eq!((l.host.as_str(), l.port), ("::1", 9000));
        assert_eq!(l.ipv6only, Some(true));
        assert_eq!(l.so_keepalive, Some(true));
        assert_eq!(l.to_string(), "[::1]:9000 ipv6only=on so_keepalive=on");
    }

    #[test]
    fn rejects_bad_entries_with_reason() {
        for (input, want) in [
            ("127.0.0.1", "has no port"),
            ("127.0.0.1:99999", "invalid port '99999'"),
            ("127.0.0.1:80 sssl", "unknown flag 'sssl'"),
            ("127.0.0.1:80 backlog=x", "invalid backlog 'x'"),
            ("off, 127.0.0.1:80", "'off' must be the only value"),
        ] {
            let err = parse_listeners(input, false).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
        assert!(parse_listeners("127.0.0.1:80 udp", false).is_err());
        assert!(parse_listeners("127.0.0.1:80 udp", true).is_ok());
    }
}
