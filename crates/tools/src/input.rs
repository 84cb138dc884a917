//! Typed tool inputs (§9.1) with pydantic's lax-mode coercions.
//!
//! The SDK validates with pydantic in lax mode, so `"1000"`, `1.0` and `true` are
//! all accepted for an integer, and `"yes"`, `"1"` or `1` for a boolean; strings
//! stay strict (`{"command": 123}` is rejected) and unknown fields are rejected.

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

/// Parse `input` as the input struct of `tool`, or return the SDK's error text.
pub fn parse<T: DeserializeOwned>(tool: &str, input: &Value) -> Result<T, String> {
    // serde fills a struct from a JSON array by position; the SDK's validation only
    // accepts an object, so anything else is the same invalid-arguments error.
    if !input.is_object() {
        return Err(format!(
            "ValueError('Invalid arguments for function {tool}')"
        ));
    }
    T::deserialize(input)
        .map_err(|_| format!("ValueError('Invalid arguments for function {tool}')"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BashInput {
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default, deserialize_with = "lax_opt_bool")]
    pub restart: Option<bool>,
    #[serde(default, deserialize_with = "lax_opt_int")]
    pub timeout_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    pub file_path: String,
    #[serde(default, deserialize_with = "lax_opt_int_list")]
    pub view_range: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteInput {
    pub file_path: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditInput {
    pub file_path: String,
    pub old_string: String,
    pub new_string: String,
    #[serde(default, deserialize_with = "lax_opt_bool")]
    pub replace_all: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobInput {
    pub pattern: String,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrepInput {
    pub pattern: String,
    #[serde(default)]
    pub path: Option<String>,
}

fn lax_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => lax_bool(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a boolean")),
    }
}

fn lax_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => lax_int(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected an integer")),
    }
}

fn lax_opt_int_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| lax_int(v).ok_or_else(|| D::Error::custom("expected integers")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(D::Error::custom("expected a list of integers")),
    }
}

/// pydantic lax `bool`: JSON booleans, 0/1 (also as floats) and the usual words.
pub fn lax_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => {
            let f = n.as_f64()?;
            (f == 0.0 || f == 1.0).then_some(f == 1.0)
        }
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// pydantic lax `int`: integers, integral floats, booleans, and decimal strings
/// (surrounding whitespace, a sign, `_` between digits and a zero fraction allowed).
pub fn lax_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
        }),
        Value::String(s) => parse_int_text(s.trim()),
        _ => None,
    }
}

fn parse_int_text(s: &str) -> Option<i64> {
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b == b'0') {
            return None;
        }
    }
    let digits = int_part.strip_prefix(['+', '-']).unwrap_or(int_part);
    let valid_underscores =
        !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
    if digits.is_empty()
        || !valid_underscores
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    int_part.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lax_coercions() {
        let b: BashInput = parse(
            "bash",
            &json!({"command": "ls", "timeout_ms": "1000", "restart": "true"}),
        )
        .unwrap();
        assert_eq!((b.timeout_ms, b.restart), (Some(1000), Some(true)));
        let b: BashInput = parse(
            "bash",
            &json!({"command": "ls", "timeout_ms": 1.0, "restart": 0}),
        )
        .unwrap();
        assert_eq!((b.timeout_ms, b.restart), (Some(1), Some(false)));
        let b: BashInput = parse(
            "bash",
            &json!({"timeout_ms": " -1_000.00 ", "restart": null}),
        )
        .unwrap();
        assert_eq!(
            (b.timeout_ms, b.restart, b.command),
            (Some(-1000), None, None)
        );
        let r: ReadInput =
            parse("read", &json!({"file_path": "a", "view_range": ["2", 3.0]})).unwrap();
        assert_eq!(r.view_range, Some(vec![2, 3]));
    }

    #[test]
    fn rejections_use_the_sdk_text() {
        let err =
            parse::<BashInput>("bash", &json!({"command": "ls", "description": "x"})).unwrap_err();
        assert_eq!(err, "ValueError('Invalid arguments for function bash')");
        assert!(parse::<BashInput>("bash", &json!({"command": 123})).is_err());
        assert!(parse::<BashInput>("bash", &json!({"timeout_ms": 1.5})).is_err());
        assert!(parse::<BashInput>("bash", &json!({"timeout_ms": "1e3"})).is_err());
        assert!(parse::<BashInput>("bash", &json!({"restart": "maybe"})).is_err());
        assert!(parse::<BashInput>("bash", &json!("ls")).is_err());
        // Positional arrays are not objects, though serde would fill a struct from them.
        let err = parse::<BashInput>("bash", &json!(["echo ran"])).unwrap_err();
        assert_eq!(err, "ValueError('Invalid arguments for function bash')");
        assert!(parse::<WriteInput>("write", &json!(["a.txt", "x"])).is_err());
        let err = parse::<ReadInput>("read", &json!({})).unwrap_err();
        assert_eq!(err, "ValueError('Invalid arguments for function read')");
        assert!(
            parse::<ReadInput>("read", &json!({"file_path": "a", "view_range": "1,2"})).is_err()
        );
        assert!(parse::<EditInput>("edit", &json!({"file_path": "a", "old_string": "x"})).is_err());
    }
}
