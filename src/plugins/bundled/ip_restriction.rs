//! `ip-restriction` (priority 990): refuses clients by address. The `deny` list is checked
//! first, then `allow` (when set, only its addresses pass). Entries are IPv4 or IPv6 addresses
//! or CIDR ranges; the client address is the one left after `trusted_ips` / real-IP
//! processing, and an IPv4-mapped IPv6 address counts as its IPv4 address. A refused request
//! gets `status` (default 403) with `message` (default `IP address not allowed: <client ip>`),
//! rendered as Kong's errors are.

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct IpRestriction;

/// A parsed list of addresses and ranges, split by family so a lookup compares integers.
#[derive(Debug, Default)]
struct Ranges {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Ranges {
    /// Parses `ip` or `ip/bits` entries (validated by the schema already).
    fn parse(entries: &[String]) -> Result<Ranges, String> {
        let mut ranges = Ranges::default();
        for entry in entries {
            let (ip, bits) = match entry.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (entry.as_str(), None),
            };
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("invalid ip or cidr range: '{entry}'"))?;
            let bits = bits
                .map(str::parse::<u32>)
                .transpose()
                .map_err(|_| format!("invalid ip or cidr range: '{entry}'"))?;
            match ip.to_canonical() {
                IpAddr::V4(v4) => {
                    let bits = bits.unwrap_or(32).min(32);
                    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                    ranges.v4.push((u32::from(v4) & mask, mask));
                }
                IpAddr::V6(v6) => {
                    let bits = bits.unwrap_or(128).min(128);
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    ranges.v6.push((u128::from(v6) & mask, mask));
                }
            }
        }
        Ok(ranges)
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let ip = u32::from(v4);
                self.v4.iter().any(|(net, mask)| ip & mask == *net)
            }
            IpAddr::V6(v6) => {
                let ip = u128::from(v6);
                self.v6.iter().any(|(net, mask)| ip & mask == *net)
            }
        }
    }
}

/// One configured instance.
struct Instance {
    allow: Ranges,
    deny: Ranges,
    status: Option<f64>,
    message: Option<String>,
}

fn checks(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    let empty = |f: &str| {
        doc.get(f)
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
    };
    if empty("allow") && empty("deny") {
        errs.entity(
            "at least one of these fields must be non-empty: 'config.allow', 'config.deny'",
        );
    }
}

fn strings(config: &Doc, field: &str) -> Vec<String> {
    config
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Kind for IpRestriction {
    fn name(&self) -> &'static str {
        "ip-restriction"
    }

    fn priority(&self) -> i32 {
        990
    }

    fn schema(&self) -> PluginSchema {
        let ips = || Field::array(Field::string().custom("ip_or_cidr", typedefs::ip_or_cidr));
        let config = Record::new(vec![
            ("allow", ips()),
            ("deny", ips()),
            ("status", Field::number()),
            ("message", Field::string()),
        ])
        .checks(vec![EntityCheck::Custom(checks)]);
        PluginSchema {
            name: self.name().into(),
            config,
            // Kong also runs it on stream routes (tcp, tls).
            protocols: Some(typedefs::PROTOCOLS.to_vec()),
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(Instance {
            allow: Ranges::parse(&strings(config, "allow"))?,
            deny: Ranges::parse(&strings(config, "deny"))?,
            status: config.get("status").and_then(Value::as_f64),
            message: config
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }))
    }
}

impl Instance {
    /// Kong's refusal: `kong.response.error(status, message)`, which only takes error
    /// statuses (anything else fails the request with a 500, as in Kong).
    fn refuse(&self, ctx: &mut Ctx, ip: IpAddr) -> Result<(), PluginError> {
        let code = self.status.unwrap_or(403.0);
        let status = Some(code)
            .filter(|c| c.fract() == 0.0 && (400.0..=599.0).contains(c))
            .and_then(|c| StatusCode::from_u16(c as u16).ok())
            .ok_or_else(|| {
                PluginError::new(format!("code must be a number between 400 and 599: {code}"))
            })?;
        let exit = match &self.message {
            Some(m) => ctx.error(status, m),
            None => ctx.error(status, &format!("IP address not allowed: {ip}")),
        };
        ctx.exit(exit);
        Ok(())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        let ip = ctx.client_ip();
        // Deny first: an address in both lists is refused.
        let refused =
            self.deny.contains(ip) || (!self.allow.is_empty() && !self.allow.contains(ip));
        if refused {
            self.refuse(ctx, ip)?;
        }
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(list: &[&str]) -> Ranges {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        Ranges::parse(&list).expect("valid ranges")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn ranges_match_by_family_and_prefix() {
        let r = ranges(&["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"]);
        assert!(r.contains(ip("10.200.3.4")));
        assert!(!r.contains(ip("11.0.0.1")));
        assert!(r.contains(ip("192.168.1.7")));
        assert!(!r.contains(ip("192.168.1.8")));
        assert!(r.contains(ip("2001:db8:1::5")));
        assert!(!r.contains(ip("2001:db9::1")));
        assert!(r.contains(ip("::1")));
        // IPv4-mapped IPv6 addresses are their IPv4 address.
        assert!(r.contains(ip("::ffff:10.1.2.3")));
        let all = ranges(&["0.0.0.0/0", "::/0"]);
        assert!(all.contains(ip("8.8.8.8")) && all.contains(ip("fe80::1")));
        assert!(ranges(&[]).is_empty());
    }
}
