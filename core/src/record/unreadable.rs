//! Entries a reader of this version cannot show, and why.
//!
//! Readers tolerate fields they do not know, and stay strict on the types of
//! the fields they do. An entry that fails that (written by a faulty or
//! foreign client, or by a future version in a way this one cannot read) is
//! not silently left out: [`CareRecord::unreadable_entries`] lists it with
//! its key and the reason, and the clinic shows that list to clinicians.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef, ROOT};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::authority::{decodes_as, EntryKind};
use super::place;
use super::{read_journal, read_session, CareRecord};

/// An entry of the record this version cannot read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnreadableEntry {
    /// Its logical key, e.g. `v:0a1b…` (a bucket's own key, e.g. `v/0a`, when
    /// the bucket itself cannot be read).
    pub key: String,
    /// Why it cannot be read, naming the field; never its content.
    pub reason: String,
}

impl CareRecord {
    /// Every entry that the typed reads of this record leave out because it
    /// cannot be read, with the reason, in key order.
    pub fn unreadable_entries(&self) -> Vec<UnreadableEntry> {
        let mut unreadable = Vec::new();
        for item in self.doc.map_range(ROOT, ..) {
            let key = item.key.as_ref();
            let Some((prefix, digits)) = place::parse_bucket_key(key) else {
                if let Some(reason) = self.entry_problem(key, &item.value, item.id()) {
                    unreadable.push(UnreadableEntry { key: key.to_owned(), reason });
                }
                continue;
            };
            // A bucket (`place.rs`): every map at its key, and each entry in it.
            for (value, obj) in self.doc.get_all(ROOT, key).unwrap_or_default() {
                if !matches!(value, automerge::Value::Object(ObjType::Map)) {
                    unreadable.push(UnreadableEntry { key: key.to_owned(), reason: "a bucket is a map".to_owned() });
                    continue;
                }
                for entry in self.doc.map_range(&obj, ..) {
                    let logical = format!("{prefix}{}", entry.key);
                    let reason = if place::in_bucket(&entry.key, digits) {
                        self.entry_problem(&logical, &entry.value, entry.id())
                    } else {
                        Some("an id that does not belong to its bucket".to_owned())
                    };
                    if let Some(reason) = reason {
                        unreadable.push(UnreadableEntry { key: logical, reason });
                    }
                }
            }
        }
        unreadable.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        unreadable
    }

    /// Why the entry at logical key `key`, holding `value` (object `obj`),
    /// cannot be read, if it cannot.
    fn entry_problem(&self, key: &str, value: &ValueRef<'_>, obj: ObjId) -> Option<String> {
        match (EntryKind::of(key), value) {
            (None, _) => Some("a kind of entry this version does not know".to_owned()),
            (Some(kind), ValueRef::Object(ObjType::Map)) if kind.is_map() => self.map_entry_problem(kind, &obj),
            (Some(kind), ValueRef::Scalar(ScalarValueRef::Str(text))) if !kind.is_map() => {
                decodes_as(kind, key, text).err().map(|violation| violation.reason)
            }
            (Some(_), ValueRef::Object(ObjType::Text)) => {
                Some("a collaborative Text object where a string belongs".to_owned())
            }
            (Some(kind), _) if kind.is_map() => Some(format!("a {} is a map", kind.name())),
            (Some(_), _) => Some("not a scalar string".to_owned()),
        }
    }

    /// Why a session or journal map cannot be read, if it cannot.
    fn map_entry_problem(&self, kind: EntryKind, obj: &ObjId) -> Option<String> {
        let fields = self.fields(obj);
        let (readable, required): (bool, &[&str]) = match kind {
            EntryKind::Session => (read_session("", &fields).is_some(), &["start", "tz", "by"]),
            _ if fields.get("deleted").is_some() => return None,
            _ => (read_journal("", &fields).is_some(), &["created_at", "text"]),
        };
        if readable {
            return None;
        }
        let problem = required.iter().find_map(|field| match self.doc.get(obj, *field).ok().flatten() {
            None => Some(format!("{field}: missing")),
            Some((automerge::Value::Object(ObjType::Text), _)) => {
                Some(format!("{field}: a collaborative Text object where a string belongs"))
            }
            Some((automerge::Value::Object(_), _)) => Some(format!("{field}: an object where a string belongs")),
            Some((automerge::Value::Scalar(s), _)) if s.as_str().is_none() => Some(format!("{field}: not a string")),
            Some(_) => None,
        });
        Some(problem.unwrap_or_else(|| format!("a field of this {} does not have its type", kind.name())))
    }
}
