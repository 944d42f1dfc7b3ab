//! The hosts file (`dns_hostsfile`): `address name [aliases...]` lines, `#` comments; names
//! lower-cased; the first address of each family listed for a name is kept, IPv4 first, and
//! `localhost` always resolves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Names to addresses (IPv4 first, then IPv6).
pub fn read(path: &Path) -> HashMap<String, Vec<IpAddr>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "hosts file not read");
            String::new()
        }
    };
    let mut map = parse(&text);
    map.entry("localhost".into()).or_insert_with(|| {
        vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ]
    });
    map
}

/// Parses hosts-file text.
pub fn parse(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(ip) = words
            .next()
            .and_then(|w| w.split('%').next()?.parse::<IpAddr>().ok())
        else {
            continue;
        };
        for name in words {
            let list = map.entry(name.to_ascii_lowercase()).or_default();
            if !list.iter().any(|known| known.is_ipv4() == ip.is_ipv4()) {
                list.push(ip);
                list.sort_by_key(|ip| ip.is_ipv6());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_address_per_family_wins() {
        let m = super::parse("# c\n10.0.0.1 A b\n10.0.0.2 a\n::1 a\n");
        assert_eq!(m["a"].len(), 2);
        assert_eq!(m["a"][0].to_string(), "10.0.0.1");
        assert_eq!(m["b"][0].to_string(), "10.0.0.1");
    }
}
