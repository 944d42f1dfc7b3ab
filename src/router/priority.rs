//! Route priority for the `traditional_compatible` flavor: the 64-bit number every (split) route
//! is ordered by, and the path grouping that splits routes.
//!
//! Layout, most significant first (the reasons are in the [module docs](super)):
//!
//! ```text
//! 63..61  match weight: how many of methods, hosts, headers, snis, paths (and sources,
//!         destinations) are set
//! 60      plain hosts only: `hosts` is present and no entry has a `*`
//! 59..52  number of headers, at most 255
//! 51      the paths are regexes
//! 50..19  regex_priority (regex paths only), as an order-preserving unsigned 32-bit value
//! 18..0   length of the prefix paths (all of one length after splitting)
//! ```

use uuid::Uuid;

/// The namespace split routes' ids are derived in (name: `<route id>#<group number>`), so a
/// split route keeps its id, hence its tie-break position, across rebuilds. Kong uses the same
/// derivation, which keeps equal-priority ties resolved the same way.
const SPLIT_NAMESPACE: Uuid = Uuid::from_u128(0x7f145bf9_0dce_4f91_98eb_debbce4b9f6b);

/// The id a route's `group`-th path group (1-based) is ordered by when the route is split.
pub(crate) fn split_id(route_id: &str, group: usize) -> Uuid {
    let name = format!("{route_id}#{group}");
    Uuid::new_v5(&SPLIT_NAMESPACE, name.as_bytes())
}

/// The facts about one (split) route that its priority depends on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PriorityInputs {
    /// How many matching attributes are set (≤ 7).
    pub match_weight: u8,
    /// `hosts` present (even empty) and without wildcards.
    pub plain_hosts_only: bool,
    /// Number of header names.
    pub headers: usize,
    /// The route's path group is regexes.
    pub regex: bool,
    /// The route's `regex_priority`.
    pub regex_priority: i64,
    /// The length of the group's prefix paths (0 for regexes or no paths).
    pub prefix_len: usize,
}

const MAX_HEADERS: u64 = 255;
const PREFIX_LEN_MASK: u64 = 0x7FFFF;

/// `regex_priority` as a 32-bit unsigned number ordered like the signed value: clamped to the
/// i32 range, sign bit flipped (so -1 < 0 < 1 still holds after the shift).
fn regex_priority_field(p: i64) -> u64 {
    let clamped = p.clamp(i64::from(i32::MIN), i64::from(i32::MAX));
    // Offset binary: i32::MIN..=i32::MAX maps onto 0..=u32::MAX in order.
    (clamped - i64::from(i32::MIN)).unsigned_abs()
}

/// The priority; higher is tried first.
pub(crate) fn priority(i: &PriorityInputs) -> u64 {
    let mut p = u64::from(i.match_weight.min(7)) << 61;
    if i.plain_hosts_only {
        p |= 1 << 60;
    }
    p |= (i.headers as u64).min(MAX_HEADERS) << 52;
    if i.regex {
        p |= 1 << 51;
        p |= regex_priority_field(i.regex_priority) << 19;
    }
    p | (i.prefix_len as u64 & PREFIX_LEN_MASK)
}

/// A route's paths grouped the way routes are split: all regex paths together, prefix paths by
/// length, groups in order of first appearance, paths in configured order inside each group.
pub(crate) fn group_paths(paths: &[String]) -> Vec<Vec<&str>> {
    // Key: None for regexes, Some(len) for prefixes.
    let mut keys: Vec<Option<usize>> = Vec::new();
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for p in paths {
        let key = if p.starts_with('~') {
            None
        } else {
            Some(p.len())
        };
        match keys.iter().position(|k| *k == key) {
            Some(i) => groups[i].push(p),
            None => {
                keys.push(key);
                groups.push(vec![p.as_str()]);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_match_weight_dominates_everything_below() {
        let three = PriorityInputs {
            match_weight: 3,
            ..Default::default()
        };
        let two_with_all_else = PriorityInputs {
            match_weight: 2,
            plain_hosts_only: true,
            headers: 300,
            regex: true,
            regex_priority: i64::MAX,
            prefix_len: 0x7FFFF,
        };
        assert!(priority(&three) > priority(&two_with_all_else));
    }

    #[test]
    fn priority_fields_are_ordered_plain_host_headers_regex_regex_priority_length() {
        let base = PriorityInputs {
            match_weight: 2,
            ..Default::default()
        };
        let plain = PriorityInputs {
            plain_hosts_only: true,
            ..base
        };
        let headers = PriorityInputs {
            headers: 255,
            regex: true,
            regex_priority: i64::MAX,
            prefix_len: 100,
            ..base
        };
        assert!(priority(&plain) > priority(&headers));
        let one_header = PriorityInputs { headers: 1, ..base };
        let regex = PriorityInputs {
            regex: true,
            regex_priority: i64::MAX,
            ..base
        };
        assert!(priority(&one_header) > priority(&regex));
        let long_prefix = PriorityInputs {
            prefix_len: 0x7FFFF,
            ..base
        };
        let low_regex = PriorityInputs {
            regex: true,
            regex_priority: i64::MIN,
            ..base
        };
        assert!(priority(&low_regex) > priority(&long_prefix));
    }

    #[test]
    fn priority_regex_priority_orders_negative_below_positive() {
        let at = |rp| {
            priority(&PriorityInputs {
                match_weight: 1,
                regex: true,
                regex_priority: rp,
                ..Default::default()
            })
        };
        assert!(at(-1) < at(0));
        assert!(at(0) < at(1));
        assert!(at(1) < at(1_000_000));
        assert!(at(i64::MIN) < at(-1));
        // Out of i32 range clamps rather than wraps.
        assert_eq!(at(i64::MAX), at(i64::from(i32::MAX)));
    }

    #[test]
    fn priority_regex_priority_is_ignored_for_prefix_paths() {
        let prefix = |rp| {
            priority(&PriorityInputs {
                match_weight: 1,
                regex_priority: rp,
                prefix_len: 4,
                ..Default::default()
            })
        };
        assert_eq!(prefix(-5), prefix(100));
    }

    #[test]
    fn group_paths_splits_by_regex_and_prefix_length_in_first_seen_order() {
        let paths: Vec<String> = ["~/regex.*$", "/long-path", "/one", "/two", "/three", "~/.*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            group_paths(&paths),
            vec![
                vec!["~/regex.*$", "~/.*"],
                vec!["/long-path"],
                vec!["/one", "/two"],
                vec!["/three"],
            ]
        );
    }

    #[test]
    fn split_id_is_a_stable_v5_uuid() {
        let a = split_id("e8fb37f1-102d-461e-9c51-6608a6bb8101", 1);
        assert_eq!(a, split_id("e8fb37f1-102d-461e-9c51-6608a6bb8101", 1));
        assert_ne!(a, split_id("e8fb37f1-102d-461e-9c51-6608a6bb8101", 2));
        assert_eq!(a.get_version_num(), 5);
    }
}
