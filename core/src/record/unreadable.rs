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
use super::{read_journal, read_session, CareRecord};

/// An entry of the record this version cannot read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnreadableEntry {
    /// Its root key, e.g. `v:0a1b…`.
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
            let reason = match (EntryKind::of(key), &item.value) {
                (None, _) => Some("a kind of entry this version does not know".to_owned()),
                (Some(kind), ValueRef::Object(ObjType::Map)) if kind.is_map() => {
                    self.map_entry_problem(kind, &item.id())
                }
                (Some(kind), ValueRef::Scalar(ScalarValueRef::Str(text))) if !kind.is_map() => {
                    decodes_as(kind, key, text).err().map(|violation| violation.reason)
                }
                (Some(_), ValueRef::Object(ObjType::Text)) => {
                    Some("a collaborative Text object where a string belongs".to_owned())
                }
                (Some(kind), _) if kind.is_map() => Some(format!("a {} is a map", kind.name())),
                (Some(_), _) => Some("not a scalar string".to_owned()),
            };
            if let Some(reason) = reason {
                unreadable.push(UnreadableEntry { key: key.to_owned(), reason });
            }
        }
        unreadable
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
