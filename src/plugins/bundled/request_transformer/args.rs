//! Query strings and `application/x-www-form-urlencoded` bodies as ngx_lua reads and writes
//! them: a name may repeat, `name` alone is a flag (Lua's `true`), `+` decodes to a space, and
//! encoding escapes everything but letters, digits and `-._~`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `ngx.escape_uri` leaves alone.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Arguments by name, in the order names first appeared; a value of `None` is a bare flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    entries: Vec<(String, Vec<Option<String>>)>,
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

fn encode_pair(out: &mut String, name: &str, value: Option<&str>) {
    if !out.is_empty() {
        out.push('&');
    }
    out.extend(utf8_percent_encode(name, COMPONENT));
    if let Some(v) = value {
        out.push('=');
        out.extend(utf8_percent_encode(v, COMPONENT));
    }
}

impl Args {
    /// Parses `a=1&a=2&flag&empty=`; pieces without a name are dropped.
    pub fn parse(s: &str) -> Args {
        let mut args = Args::default();
        for piece in s.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = match piece.split_once('=') {
                Some((n, v)) => (decode(n), Some(decode(v))),
                None => (decode(piece), None),
            };
            if !name.is_empty() {
                args.append(&name, value);
            }
        }
        args
    }

    /// Every name with its values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Option<String>])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// Whether there is no argument.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The values of `name`.
    pub fn get(&self, name: &str) -> Option<&[Option<String>]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name`: `Some(None)` for a flag.
    pub fn first(&self, name: &str) -> Option<Option<&str>> {
        self.get(name)?.first().map(Option::as_deref)
    }

    /// Whether `name` is there (every argument is truthy in Lua: strings and flags alike).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_empty())
    }

    /// Takes `name` out.
    pub fn remove(&mut self, name: &str) -> Option<Vec<Option<String>>> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Sets `name` to `values`, in its place or at the end.
    pub fn set(&mut self, name: &str, values: Vec<Option<String>>) {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = values,
            None => self.entries.push((name.to_owned(), values)),
        }
    }

    /// Adds a value to `name`.
    pub fn append(&mut self, name: &str, value: Option<String>) {
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(value),
            None => self.entries.push((name.to_owned(), vec![value])),
        }
    }

    /// Moves `old`'s values to `new` (replacing what `new` had); false when `old` is absent.
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        if old == new {
            return false;
        }
        match self.remove(old) {
            Some(values) => {
                self.set(new, values);
                true
            }
            None => false,
        }
    }

    fn groups(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(|(name, values)| {
            let mut group = String::new();
            for v in values {
                encode_pair(&mut group, name, v.as_deref());
            }
            group
        })
    }

    /// Encoded in order (`ngx.encode_args`).
    pub fn encode(&self) -> String {
        let groups: Vec<String> = self.groups().filter(|g| !g.is_empty()).collect();
        groups.join("&")
    }

    /// Encoded with names in lexicographic order (Kong's `kong.service.request.set_query`).
    pub fn encode_sorted(&self) -> String {
        let mut groups: Vec<String> = self.groups().filter(|g| !g.is_empty()).collect();
        groups.sort();
        groups.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode_like_ngx() {
        let mut a = Args::parse("b=2&a=hello+world&b=3&flag&empty=&=x&c=%2F");
        assert_eq!(a.first("a"), Some(Some("hello world")));
        assert_eq!(a.first("flag"), Some(None));
        assert_eq!(a.first("empty"), Some(Some("")));
        assert_eq!(a.get("b").map(<[_]>::len), Some(2));
        assert_eq!(a.encode(), "b=2&b=3&a=hello%20world&flag&empty=&c=%2F");
        assert_eq!(
            a.encode_sorted(),
            "a=hello%20world&b=2&b=3&c=%2F&empty=&flag"
        );
        assert!(a.rename("b", "z"));
        assert!(!a.rename("nope", "x"));
        assert_eq!(a.encode(), "a=hello%20world&flag&empty=&c=%2F&z=2&z=3");
    }
}
