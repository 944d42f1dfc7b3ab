//! Turning a form tree into a JSON document, typed by the target schema.
//!
//! Form values arrive as text, so Kong infers their types from the schema
//! (`infer_value` in `kong/api/arguments.lua`); this module does the same, field by field:
//!
//! | field kind | form value | becomes |
//! |---|---|---|
//! | any known field | `""` | `null` (clears the field) |
//! | integer, number | text | the number, or the text when it is not one |
//! | boolean | `true` / `false` | the boolean, other text unchanged |
//! | array, set | one value | a one-element array, the element coerced |
//! | array, set | `[]` / index / repeated keys | the elements in order (`null`s dropped) |
//! | map | keys | an object, each value coerced |
//! | record, `any` (with a record) | keys | an object, known keys coerced |
//! | foreign | `service.id=…`, `service.name=…` | `{"id": …}`, `{"name": …}` |
//! | unknown key, `any` without a record | anything | left as text ([`plain`]) |
//!
//! Nothing here fails: a value that does not fit stays as it is, and validation then reports
//! it ("expected an integer", "unknown field") with its path.

use serde_json::{Map, Number, Value};

use super::form::{Form, Node, Seg};
use crate::store::schema::{Doc, Field, Kind, Record};

/// The document for `form`, coerced by `record`; `Kind::Any` fields use `any` when given.
pub(super) fn document(form: Form, record: &Record, any: Option<&Record>) -> Doc {
    let mut doc = Map::new();
    // Top-level steps are all names, so these keys are the field names as sent.
    for (key, node) in keyed(form.root) {
        let value = match record.field(&key) {
            Some(field) => coerce(node, field, any),
            // `ttl` is an entity option rather than a field; Kong reads it as a number for
            // entities that have one, and any other entity refuses it whatever its type.
            None if key == "ttl" => number_or_text(node),
            None => plain(node),
        };
        doc.insert(key, value);
    }
    doc
}

/// `node` typed as `field`.
fn coerce(node: Node, field: &Field, any: Option<&Record>) -> Value {
    if matches!(&node, Node::Text(t) if t.is_empty()) {
        return Value::Null;
    }
    match &field.kind {
        Kind::String => plain(node),
        Kind::Integer | Kind::Number => number_or_text(node),
        Kind::Boolean => match node {
            Node::Text(t) if t == "true" => Value::Bool(true),
            Node::Text(t) if t == "false" => Value::Bool(false),
            other => plain(other),
        },
        Kind::Array(element) | Kind::Set(element) => match node {
            Node::Branch(children) if is_list(&children) => Value::Array(
                ordered(children)
                    .into_iter()
                    .map(|item| coerce(item, element, any))
                    // Lua arrays cannot hold nil: `paths[]=` is an empty list, not `[null]`.
                    .filter(|v| !v.is_null())
                    .collect(),
            ),
            Node::Branch(children) => object(children, plain),
            leaf => Value::Array(
                Some(coerce(leaf, element, any))
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .collect(),
            ),
        },
        Kind::Map(_, values) => match node {
            Node::Branch(children) => object(children, |n| coerce(n, values, any)),
            leaf => plain(leaf),
        },
        Kind::Record(record) => fields(node, record, any),
        Kind::Any => match any {
            Some(record) => fields(node, record, any),
            None => plain(node),
        },
        // The referenced entity's schema is not at hand; its keys (`id`, `name`, …) are
        // strings, and the store resolves whichever unique one is given.
        Kind::Foreign(_) => match node {
            Node::Branch(children) => object(children, |n| match n {
                Node::Text(t) if t.is_empty() => Value::Null,
                other => plain(other),
            }),
            leaf => plain(leaf),
        },
    }
}

/// A record's keys coerced by its fields, unknown keys left as they are.
fn fields(node: Node, record: &Record, any: Option<&Record>) -> Value {
    let Node::Branch(children) = node else {
        return plain(node);
    };
    let mut out = Map::new();
    for (key, child) in keyed(children) {
        let value = match record.field(&key) {
            Some(field) => coerce(child, field, any),
            None => plain(child),
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

/// Text as a number when it reads as one (Lua's `tonumber`), else unchanged.
fn number_or_text(node: Node) -> Value {
    match node {
        Node::Text(t) => match number(&t) {
            Some(n) => Value::Number(n),
            None => Value::String(t),
        },
        other => plain(other),
    }
}

/// The number `text` spells: decimal (with fraction or exponent) or `0x` hexadecimal,
/// surrounding whitespace allowed. Whole numbers become JSON integers; infinities and NaN
/// are not numbers here (JSON has no spelling for them).
pub(super) fn number(text: &str) -> Option<Number> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Ok(i) = t.parse::<i64>() {
        return Some(Number::from(i));
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let n = i64::from_str_radix(hex, 16).ok()?;
        return Some(Number::from(if negative { -n } else { n }));
    }
    let decimal = unsigned.bytes().any(|b| b.is_ascii_digit())
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !decimal {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Some(Number::from(f as i64))
    } else {
        Number::from_f64(f)
    }
}

/// `node` without a schema: text stays text, a flag is `true`, a branch of elements is an
/// array and any other branch an object.
pub(super) fn plain(node: Node) -> Value {
    match node {
        Node::Text(t) => Value::String(t),
        Node::Flag => Value::Bool(true),
        Node::Branch(children) if is_list(&children) => {
            Value::Array(ordered(children).into_iter().map(plain).collect())
        }
        Node::Branch(children) => object(children, plain),
    }
}

/// A branch as an object, each child rendered by `value`.
fn object(children: Vec<(Seg, Node)>, value: impl Fn(Node) -> Value) -> Value {
    Value::Object(
        keyed(children)
            .into_iter()
            .map(|(k, n)| (k, value(n)))
            .collect(),
    )
}

/// Whether a branch holds only elements (`[]`, indexes, repeated keys).
fn is_list(children: &[(Seg, Node)]) -> bool {
    children.iter().all(|(s, _)| !matches!(s, Seg::Name(_)))
}

/// Elements in order: indexed ones by index (ties in arrival order), then appended ones.
fn ordered(children: Vec<(Seg, Node)>) -> Vec<Node> {
    let mut indexed = Vec::new();
    let mut appended = Vec::new();
    for (seg, node) in children {
        match seg {
            Seg::Index(i) => indexed.push((i, node)),
            Seg::Append | Seg::Name(_) => appended.push(node),
        }
    }
    indexed.sort_by_key(|(i, _)| *i);
    indexed
        .into_iter()
        .map(|(_, n)| n)
        .chain(appended)
        .collect()
}

/// Children with object keys: names as they are, indexes as digits, and appended elements
/// numbered after the highest index, so no two keys collide.
fn keyed(children: Vec<(Seg, Node)>) -> Vec<(String, Node)> {
    let last = children
        .iter()
        .filter_map(|(s, _)| match s {
            Seg::Index(i) => Some(*i),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut next = last;
    children
        .into_iter()
        .map(|(seg, node)| {
            let key = match seg {
                Seg::Name(n) => n,
                Seg::Index(i) => i.to_string(),
                Seg::Append => {
                    next = next.saturating_add(1);
                    next.to_string()
                }
            };
            (key, node)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_lua_tonumber() {
        let n = |s: &str| number(s).map(Value::Number);
        assert_eq!(n("42"), Some(Value::from(42)));
        assert_eq!(n(" -7 "), Some(Value::from(-7)));
        assert_eq!(n("+5"), Some(Value::from(5)));
        assert_eq!(n("1.5"), Some(Value::from(1.5)));
        assert_eq!(n("1e3"), Some(Value::from(1000)));
        assert_eq!(n("2.0"), Some(Value::from(2)));
        assert_eq!(n("0x1F"), Some(Value::from(31)));
        assert_eq!(n("-0x10"), Some(Value::from(-16)));
        assert_eq!(n(".5"), Some(Value::from(0.5)));
        assert_eq!(n("9223372036854775807"), Some(Value::from(i64::MAX)));
        for bad in [
            "", " ", "abc", "1a", "inf", "NaN", "infinity", "1e999", "0x", "1..2", "--1", "0xZZ",
            "0x+1", "0x-1",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn plain_rendering_of_mixed_branches_never_collides() {
        let node = Node::Branch(vec![
            (Seg::Append, Node::Text("a".into())),
            (Seg::Index(3), Node::Text("b".into())),
            (Seg::Name("x".into()), Node::Flag),
            (Seg::Append, Node::Text("c".into())),
        ]);
        assert_eq!(
            plain(node),
            serde_json::json!({"3": "b", "4": "a", "5": "c", "x": true})
        );
    }

    #[test]
    fn lists_order_indexes_then_appends() {
        let node = Node::Branch(vec![
            (Seg::Append, Node::Text("last".into())),
            (Seg::Index(10), Node::Text("second".into())),
            (Seg::Index(2), Node::Text("first".into())),
        ]);
        assert_eq!(plain(node), serde_json::json!(["first", "second", "last"]));
    }
}
