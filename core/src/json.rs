//! Strict JSON: every JSON document the project reads from outside goes
//! through here, and a document that repeats a key in one object is refused.
//!
//! `serde_json` keeps the *last* of two equal keys when it builds a map or a
//! [`serde_json::Value`], so `{"monitor_present": false, "monitor_present": true}` would
//! read as `true`: two readers of one document could then disagree (one
//! takes the first value, one the last), and a checklist could read as
//! ready. RFC 8259 only says names "SHOULD be unique"; we make it a MUST.
//!
//! [`from_slice`] checks the whole document first ([`check_unique_keys`],
//! one pass that builds nothing) and then parses it with `serde_json` as
//! usual, so type errors keep their line and column. The refusal names the
//! repeated key and where it is — keys are field names and item ids, never
//! health data.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Checks that no object in the JSON document `bytes` repeats a key.
///
/// # Errors
/// A `serde_json` error naming the repeated key (`duplicate key
/// "monitor_present" at line 1 column 40`), or the syntax error of a
/// document that is not JSON.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Parses `bytes` as a `T`, refusing a document that repeats a key.
///
/// # Errors
/// See [`check_unique_keys`]; then whatever `serde_json` reports for a
/// document of the wrong shape.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    check_unique_keys(bytes)?;
    serde_json::from_slice(bytes)
}

/// [`from_slice`] for text.
///
/// # Errors
/// See [`from_slice`].
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    from_slice(text.as_bytes())
}

/// Walks one JSON value, remembering the keys of each object it is in.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(DuplicateKey(key)));
            }
            seen.insert(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

struct DuplicateKey(String);

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "duplicate key {:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_repeated_key_is_refused_and_named_at_any_depth() {
        let err = check_unique_keys(br#"{"monitor_present": false, "monitor_present": true}"#).unwrap_err();
        assert!(err.to_string().starts_with("duplicate key \"monitor_present\""), "{err}");
        let nested = br#"{"answers": [{"a": 1}, {"b": {"systolic": 1, "systolic": 2}}]}"#;
        let err = check_unique_keys(nested).unwrap_err();
        assert!(err.to_string().contains("\"systolic\""), "{err}");
        assert!(from_slice::<Value>(br#"{"x": {"y": 1, "y": 1}}"#).is_err());
    }

    #[test]
    fn equal_keys_in_different_objects_and_valid_documents_pass() {
        let doc = br#"{"a": {"k": 1}, "b": {"k": [1, {"k": null}]}, "k": "k", "n": -1.5e3, "t": true}"#;
        check_unique_keys(doc).unwrap();
        let value: Value = from_slice(doc).unwrap();
        assert_eq!(value["b"]["k"][1]["k"], Value::Null);
        // A key and a string value may be equal, and escapes spell the same key.
        assert!(check_unique_keys(br#"{"a": 1, "\u0061": 2}"#).is_err());
    }

    #[test]
    fn what_is_not_json_is_still_a_syntax_error() {
        assert!(check_unique_keys(b"{not json").unwrap_err().is_syntax());
        assert!(check_unique_keys(b"{} {}").unwrap_err().is_syntax());
        assert!(from_str::<u8>("300").is_err());
    }
}
