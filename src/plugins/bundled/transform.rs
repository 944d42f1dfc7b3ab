//! What request-transformer and response-transformer share: `name:value` config entries, their
//! schema validators, and Kong's rule for appending a value to a JSON field.

use serde_json::Value;

/// Splits a config entry as Kong's `^([^:]+):*(.-)$` does: the name up to the first `:`, then
/// every `:` skipped, the rest the value (`None` when empty). `None` for an entry without a
/// name.
pub fn split(entry: &str) -> Option<(&str, Option<&str>)> {
    let (name, value) = match entry.split_once(':') {
        Some((name, rest)) => (name, rest.trim_start_matches(':')),
        None => (entry, ""),
    };
    if name.is_empty() {
        return None;
    }
    Some((name, Some(value).filter(|v| !v.is_empty())))
}

/// Kong's `validate_header_name`: letters, digits, `-` and `_`.
pub fn header_name_ok(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid header"))
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Schema rule: `name:value` (Kong's `match = "^[^:]+:.*$"`).
pub fn colon_pair(v: &Value) -> Result<(), String> {
    let s = text(v);
    match s.split_once(':') {
        Some((name, _)) if !name.is_empty() => Ok(()),
        _ => Err(format!("invalid value: {s}")),
    }
}

/// Schema rule: the entry's name is a header name.
pub fn header_entry(v: &Value) -> Result<(), String> {
    match split(text(v)) {
        Some((name, _)) => header_name_ok(name),
        None => header_name_ok(""),
    }
}

/// Schema rule: `name:value` whose name is a header name.
pub fn colon_header_entry(v: &Value) -> Result<(), String> {
    colon_pair(v)?;
    header_entry(v)
}

/// Schema rule: `old:new`, both header names.
pub fn colon_header_rename(v: &Value) -> Result<(), String> {
    colon_pair(v)?;
    let s = text(v);
    let (old, new) = split(s).unwrap_or((s, None));
    header_name_ok(old)?;
    header_name_ok(new.unwrap_or_default())
}

/// Kong's `append_value` on a JSON field: a string becomes `[old, new]`, an array gets the
/// value pushed, anything else (absent included) is replaced by `[new]`.
pub fn append(current: Option<Value>, value: Value) -> Value {
    match current {
        Some(Value::String(s)) => Value::Array(vec![Value::String(s), value]),
        Some(Value::Array(mut list)) => {
            list.push(value);
            Value::Array(list)
        }
        _ => Value::Array(vec![value]),
    }
}

/// Lua's truthiness of a JSON field: present and not `false` (`null` is truthy, as cjson's
/// `null` is).
pub fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Bool(false)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_split_like_kong() {
        assert_eq!(split("a:b"), Some(("a", Some("b"))));
        assert_eq!(split("a::b:c"), Some(("a", Some("b:c"))));
        assert_eq!(split("a:"), Some(("a", None)));
        assert_eq!(split("a"), Some(("a", None)));
        assert_eq!(split(":b"), None);
        assert!(colon_pair(&json!("x:1")).is_ok());
        assert!(colon_pair(&json!("x")).is_err());
        assert_eq!(
            colon_header_rename(&json!("x-a:x b")),
            Err("'x b' is not a valid header".into())
        );
    }

    #[test]
    fn append_follows_kong() {
        assert_eq!(append(Some(json!("a")), json!("b")), json!(["a", "b"]));
        assert_eq!(append(Some(json!(["a"])), json!("b")), json!(["a", "b"]));
        assert_eq!(append(None, json!("b")), json!(["b"]));
        assert_eq!(append(Some(json!(1)), json!("b")), json!(["b"]));
        assert!(truthy(Some(&Value::Null)) && !truthy(Some(&json!(false))) && !truthy(None));
    }
}
