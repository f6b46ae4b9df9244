//! The canonical byte form of a pack, which is what gets signed.
//!
//! It is RFC 8785 (JSON Canonicalization Scheme) restricted to what packs
//! contain: object keys sorted by their UTF-16 code units, no insignificant
//! white space, strings escaped minimally, and integers only (packs carry no
//! floating-point numbers, which sidesteps JCS's number formatting rules). Any
//! JCS implementation therefore produces the same bytes, so a clinic can sign
//! packs with its own tooling.

use serde_json::Value;

use super::PackError;

/// Writes `value` in canonical form.
///
/// # Errors
/// [`PackError::Invalid`] when the value holds a non-integer number.
pub(crate) fn canonical_bytes(value: &Value) -> Result<Vec<u8>, PackError> {
    let mut out = Vec::with_capacity(16 * 1024);
    write(value, &mut out, &mut String::from("$"))?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>, path: &mut String) -> Result<(), PackError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(PackError::invalid(path.clone(), "numbers in a pack must be integers"));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write(item, out, path)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                let len = path.len();
                path.push('.');
                path.push_str(key);
                write(item, out, path)?;
                path.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(canonical_bytes(&v).unwrap()).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        assert_eq!(canon(json!({"b": [1, 2], "a": {"d": null, "c": true}})), r#"{"a":{"c":true,"d":null},"b":[1,2]}"#);
    }

    #[test]
    fn strings_are_escaped_like_jcs() {
        assert_eq!(canon(json!("a\"b\\c\n\u{1}é€")), "\"a\\\"b\\\\c\\n\\u0001é€\"");
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts
        // before U+FF61, although its UTF-8 bytes (F0 …) sort after (EF …).
        assert_eq!(canon(json!({"\u{FF61}": 2, "\u{1F600}": 1})), "{\"\u{1F600}\":1,\"\u{FF61}\":2}");
    }

    #[test]
    fn floats_are_refused_with_their_path() {
        let err = canonical_bytes(&json!({"a": [0, 1.5]})).unwrap_err();
        assert_eq!(err, PackError::invalid("$.a[1]", "numbers in a pack must be integers"));
    }
}
