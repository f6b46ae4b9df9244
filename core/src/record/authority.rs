//! Write authority: who may write what in a care record, checked change by
//! change on every replica that receives changes from another.
//!
//! A care record is edited by the client's devices and by the clinic. Any of
//! them can send any well-formed Automerge change, so a receiver decides for
//! itself what a change may do. The rules, in one place (the clinic server,
//! the device and `docs/record-format.md` all follow this table):
//!
//! | entry (logical key) | created by | afterwards |
//! |---|---|---|
//! | session `s:<id>` (map) | a device (`by: client`) or the clinic (`by: clinic`) | `tz` and `by` only in the change that creates it; `start` as [`may_move`] allows (a device postpones a clinic session, never brings it forward); `cancelled` as [`may_cancel`] allows; `started_at`, `ended_at` and current answers `a:<item>` by the client's devices; answer entries `h:<id>` by the client's devices, each written once and never changed |
//! | journal entry `j:<id>` (map) | a device | every field by the client's devices only |
//! | vitals `v:`, side effect `e:`, check-in `c:`, readiness decision `r:` | a device | never changed |
//! | clinician note `n:`, acknowledgement `k:<urgent key>` | the clinic | never changed |
//! | `assigned_pack` | the clinic | by the clinic |
//!
//! And for every writer:
//! - no Automerge delete op, on any entry or field: deleting and cancelling
//!   are recorded fields (`deleted`, `cancelled`);
//! - every value is a scalar string (JSON text for the immutable entries);
//!   no counters, lists, `Text` objects or nested objects;
//! - known fields must decode as their type; unknown fields inside a known
//!   entry are kept (a newer writer's additions) within a size limit; an
//!   unknown kind of entry is refused (new kinds reach the server first);
//! - at most [`MAX_NEW_ENTRIES_PER_CHECK`] new entries and
//!   [`MAX_OPS_PER_CHECK`] operations in one exchange.
//!
//! Entries are named by their logical key `<prefix><id>` wherever they live
//! (format v2's buckets, v1's root keys: `place.rs`). A bucket (`c/3f`) is
//! an empty map any writer of its kind may create, never replace (even
//! concurrently with another: readers read both); an entry in it must have
//! a 32-hex-digit id starting with the bucket's digits.
//!
//! The check reads each change's operations ([`automerge::ExpandedChange`])
//! against the receiver's record before anything is merged, so a refused
//! request changes nothing. Who the writer is comes from the receiver's own
//! knowledge (the server knows the device's token), never from the change.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Automerge, Change, ObjType, ReadDoc, ScalarValue};
use chrono::{DateTime, FixedOffset};

use super::answers::{ANSWER_ENTRY, CURRENT_ANSWER};
use super::chunks::contained;
use super::place::{self, Located};
use super::schema::{JOURNAL_FIELDS, SESSION_FIELDS};
use super::{Deletion, Party, MAX_TEXT_CHARS};

/// Most new entries one exchange may create (a device back from months
/// offline, or a whole record resent after a server restore, stays far below).
pub const MAX_NEW_ENTRIES_PER_CHECK: usize = 20_000;
/// Most operations one exchange may carry. Checking expands each change's
/// operations (about 100 bytes each, against a few bytes on the wire), so
/// this bounds the check's memory before anything is expanded; a two-year
/// record is about 20,000 operations.
pub const MAX_OPS_PER_CHECK: usize = 250_000;
/// Longest scalar string accepted in any field, in bytes (a journal text of
/// [`MAX_TEXT_CHARS`] characters fits).
pub const MAX_VALUE_BYTES: usize = 4 * MAX_TEXT_CHARS + 4096;
/// Longest value of a field this version does not know, in bytes.
pub const MAX_UNKNOWN_FIELD_BYTES: usize = 16 * 1024;
/// Longest id-like value (`prompt_id`, `session_id`, pack ids), in bytes.
const MAX_ID_BYTES: usize = 200;

/// Who wrote the changes being checked, as the receiver knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// One of the client's devices (the server checking a device's sync).
    Device,
    /// The clinic.
    Clinic,
    /// Relayed by the clinic server, from the clinic or from another of the
    /// client's devices (a device checking what the server sent). Everything
    /// either may write is allowed; every rule for all writers applies.
    Relayed,
}

impl Writer {
    fn is(self, party: Party) -> bool {
        match self {
            Writer::Relayed => true,
            Writer::Device => party == Party::Client,
            Writer::Clinic => party == Party::Clinic,
        }
    }
}

/// Whether `writer` may move a session scheduled by `scheduled_by` from
/// `from` to `to`: the clinic may move any session; a client's device may
/// move its own sessions, and may postpone (never bring forward) one the
/// clinic scheduled, as a checklist's `ready_at` asks when a window has not
/// closed yet.
pub fn may_move(writer: Party, scheduled_by: Party, from: DateTime<FixedOffset>, to: DateTime<FixedOffset>) -> bool {
    writer == Party::Clinic || scheduled_by == Party::Client || to >= from
}

/// Whether `writer` may cancel a session scheduled by `scheduled_by`: the
/// clinic any; a client's device only its own.
pub fn may_cancel(writer: Party, scheduled_by: Party) -> bool {
    writer == Party::Clinic || scheduled_by == Party::Client
}

/// Which rule a write broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// An Automerge delete op.
    DeleteOp,
    /// A counter, list, text or mark operation.
    UnsupportedOp,
    /// A collaborative `Text` object where a string belongs.
    TextObject,
    /// An object where a scalar belongs, or an entry of the wrong shape.
    WrongShape,
    /// A scalar that is not a string.
    NotAString,
    /// A root key (or logical key) of no known kind.
    UnknownEntryKind,
    /// Written by a party that may not write it.
    NotPermitted,
    /// A change to something written once and never changed.
    Immutable,
    /// A value that does not decode as its field's type, or breaks its limits.
    InvalidValue,
    /// Too many new entries in one exchange.
    TooManyEntries,
}

impl Rule {
    /// A stable machine-readable code, e.g. `delete_op`.
    pub fn code(self) -> &'static str {
        match self {
            Rule::DeleteOp => "delete_op",
            Rule::UnsupportedOp => "unsupported_op",
            Rule::TextObject => "text_object",
            Rule::WrongShape => "wrong_shape",
            Rule::NotAString => "not_a_string",
            Rule::UnknownEntryKind => "unknown_entry_kind",
            Rule::NotPermitted => "not_permitted",
            Rule::Immutable => "immutable",
            Rule::InvalidValue => "invalid_value",
            Rule::TooManyEntries => "too_many_entries",
        }
    }

    /// Every rule, for metrics and docs.
    pub const ALL: [Rule; 10] = [
        Rule::DeleteOp,
        Rule::UnsupportedOp,
        Rule::TextObject,
        Rule::WrongShape,
        Rule::NotAString,
        Rule::UnknownEntryKind,
        Rule::NotPermitted,
        Rule::Immutable,
        Rule::InvalidValue,
        Rule::TooManyEntries,
    ];
}

/// A write that broke a rule: the key it touched, the rule and why, in
/// words that never repeat a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason} ({})", rule.code())]
pub struct Violation {
    /// The entry key, or `<entry key>/<field>`.
    pub key: String,
    /// The rule.
    pub rule: Rule,
    /// What was wrong.
    pub reason: String,
}

fn violation(key: &str, rule: Rule, reason: impl Into<String>) -> Violation {
    Violation { key: key.to_owned(), rule, reason: reason.into() }
}

/// The kinds of entry a record holds, by logical key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Session,
    Journal,
    Vitals,
    SideEffect,
    CheckIn,
    Readiness,
    Note,
    Acknowledgement,
    PackAssignment,
}

impl EntryKind {
    /// The kind of the entry at logical key `key`.
    pub(crate) fn of(key: &str) -> Option<EntryKind> {
        if key == super::PACK {
            return Some(EntryKind::PackAssignment);
        }
        let (prefix, id) = key.split_at_checked(2)?;
        if id.is_empty() {
            return None;
        }
        Some(match prefix {
            super::SESSION => EntryKind::Session,
            super::JOURNAL => EntryKind::Journal,
            super::VITALS => EntryKind::Vitals,
            super::SIDE_EFFECT => EntryKind::SideEffect,
            super::CHECK_IN => EntryKind::CheckIn,
            super::READINESS => EntryKind::Readiness,
            super::NOTE => EntryKind::Note,
            super::ACK => EntryKind::Acknowledgement,
            _ => return None,
        })
    }

    /// Its name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EntryKind::Session => "session",
            EntryKind::Journal => "journal entry",
            EntryKind::Vitals => "vitals entry",
            EntryKind::SideEffect => "side-effect report",
            EntryKind::CheckIn => "check-in",
            EntryKind::Readiness => "readiness decision",
            EntryKind::Note => "clinician note",
            EntryKind::Acknowledgement => "acknowledgement",
            EntryKind::PackAssignment => "pack assignment",
        }
    }

    /// Maps whose fields change independently (the rest are one JSON string).
    pub(crate) fn is_map(self) -> bool {
        matches!(self, EntryKind::Session | EntryKind::Journal)
    }

    /// Who creates entries of this kind (sessions: either, see `by`).
    fn creator(self) -> Option<Party> {
        match self {
            EntryKind::Session => None,
            EntryKind::Journal
            | EntryKind::Vitals
            | EntryKind::SideEffect
            | EntryKind::CheckIn
            | EntryKind::Readiness => Some(Party::Client),
            EntryKind::Note | EntryKind::Acknowledgement | EntryKind::PackAssignment => Some(Party::Clinic),
        }
    }
}

/// Checks that `changes` (new to `doc`) only make writes `writer` may make.
///
/// # Errors
/// The first [`Violation`] found; the caller then applies none of the changes.
pub fn check_changes(doc: &Automerge, changes: &[Change], writer: Writer) -> Result<(), Violation> {
    if changes.iter().map(Change::len).sum::<usize>() > MAX_OPS_PER_CHECK {
        return Err(violation(
            "(changes)",
            Rule::TooManyEntries,
            format!("at most {MAX_OPS_PER_CHECK} operations per exchange"),
        ));
    }
    let expanded: Vec<_> = changes
        .iter()
        .map(|change| contained(|| Ok(change.decode())))
        .collect::<Result<_, _>>()
        .map_err(|_| violation("(changes)", Rule::WrongShape, "a change could not be decoded"))?;
    let mut check = Check { doc, writer, created: HashMap::new(), new_by: HashMap::new(), written: HashSet::new() };

    // First the buckets and entries these changes create, so that a field
    // written in a later change of the same request finds its entry whatever
    // the order, and how many entries they write, before checking any one.
    let mut root_writes = 0usize;
    for in_bucket in [false, true] {
        for change in &expanded {
            for (i, op) in change.operations.iter().enumerate() {
                let home = match &op.obj {
                    ObjectId::Root => Located::Root,
                    ObjectId::Id(obj) => match check.created.get(&op_id_string(obj)) {
                        Some(located @ Located::Bucket(_)) => located.clone(),
                        Some(_) => continue,
                        None => match place::locate(doc, &op_id_string(obj)) {
                            Some((located @ Located::Bucket(_), _)) => located,
                            _ => continue,
                        },
                    },
                };
                if matches!(home, Located::Root) == in_bucket {
                    continue;
                }
                root_writes += 1;
                let (Key::Map(key), OpType::Make(ObjType::Map)) = (&op.key, &op.action) else { continue };
                let created = match &home {
                    Located::Root if place::parse_bucket_key(key).is_some() => Located::Bucket(key.to_string()),
                    Located::Root => Located::Entry(key.to_string()),
                    Located::Bucket(bucket) => match place::parse_bucket_key(bucket) {
                        Some((prefix, _)) => Located::Entry(format!("{prefix}{key}")),
                        None => continue,
                    },
                    _ => continue,
                };
                let id = OpId(change.start_op.get() + i as u64, change.actor_id.clone());
                check.created.insert(op_id_string(&id), created);
            }
        }
    }
    if root_writes > MAX_NEW_ENTRIES_PER_CHECK {
        return Err(violation(
            "(changes)",
            Rule::TooManyEntries,
            format!("at most {MAX_NEW_ENTRIES_PER_CHECK} new entries per exchange"),
        ));
    }
    for change in &expanded {
        for op in &change.operations {
            if let (ObjectId::Id(obj), Key::Map(field), OpType::Put(ScalarValue::Str(value))) =
                (&op.obj, &op.key, &op.action)
            {
                if field == "by" {
                    if let Some(Located::Entry(key)) = check.created.get(&op_id_string(obj)) {
                        check.new_by.insert(key.clone(), value.to_string());
                    }
                }
            }
        }
    }
    for change in &expanded {
        for op in &change.operations {
            check.op(op)?;
        }
    }
    Ok(())
}

pub(crate) fn op_id_string(id: &OpId) -> String {
    format!("{}@{}", id.0, id.1)
}

struct Check<'a> {
    doc: &'a Automerge,
    writer: Writer,
    /// Buckets and entries created by the changes: object id → what it is.
    created: HashMap<String, Located>,
    /// `by` of the sessions the changes create.
    new_by: HashMap<String, String>,
    /// Root keys and fields already written by the changes.
    written: HashSet<String>,
}

impl Check<'_> {
    fn op(&mut self, op: &automerge::legacy::Op) -> Result<(), Violation> {
        let (home, created_here) = match &op.obj {
            ObjectId::Root => (Located::Root, false),
            ObjectId::Id(id) => {
                let id = op_id_string(id);
                match self.created.get(&id) {
                    Some(located) => (located.clone(), true),
                    None => (self.existing(&id)?, false),
                }
            }
        };
        let field = match &op.key {
            Key::Map(field) if !op.insert => field.to_string(),
            _ => {
                let at = match &home {
                    Located::Entry(key) | Located::Bucket(key) => key.as_str(),
                    _ => "(root)",
                };
                return Err(violation(at, Rule::UnsupportedOp, "only map fields are written; lists are not used"));
            }
        };
        // The logical key of the entry written, and of the field if any.
        let (entry, path) = match &home {
            Located::Root => (None, field.clone()),
            Located::Bucket(bucket) => {
                let (prefix, digits) = place::parse_bucket_key(bucket).unwrap_or(("", ""));
                let key = format!("{prefix}{field}");
                if !place::is_v2_id(&field) || !field.starts_with(digits) {
                    return Err(violation(
                        &key,
                        Rule::WrongShape,
                        "an entry in a bucket has a 32-hex-digit id starting with the bucket's digits",
                    ));
                }
                (None, key)
            }
            Located::Entry(key) => (Some(key.clone()), format!("{key}/{field}")),
            Located::Elsewhere => return Err(violation("(changes)", Rule::WrongShape, "entries are one level deep")),
        };
        match &op.action {
            OpType::Delete => {
                return Err(violation(&path, Rule::DeleteOp, "nothing is ever deleted; record deletion as a field"))
            }
            OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                return Err(violation(&path, Rule::UnsupportedOp, "counters and marks are not used"))
            }
            OpType::Make(_) | OpType::Put(_) => {}
        }
        match entry {
            None if matches!(home, Located::Root) && place::parse_bucket_key(&field).is_some() => {
                self.bucket_op(&field, op)
            }
            None => self.root_op(&path, op),
            Some(key) => self.field_op(&key, created_here, &field, &path, op),
        }
    }

    /// What an object that exists in the record before these changes is: a
    /// bucket, or an entry's map.
    fn existing(&self, id: &str) -> Result<Located, Violation> {
        let unknown = || violation("(changes)", Rule::WrongShape, "a change writes into an object the record lacks");
        match place::locate(self.doc, id).ok_or_else(unknown)? {
            (located @ (Located::Bucket(_) | Located::Entry(_)), ObjType::Map) => Ok(located),
            (Located::Entry(key) | Located::Bucket(key), _) => {
                Err(violation(&key, Rule::WrongShape, "entries are one level deep"))
            }
            _ => Err(violation("(changes)", Rule::WrongShape, "entries are one level deep")),
        }
    }

    /// The creation of a bucket (`c/3f`): an empty map, made by a writer of
    /// its kind, never replacing one (concurrent creations are all read).
    fn bucket_op(&mut self, key: &str, op: &automerge::legacy::Op) -> Result<(), Violation> {
        let kind = place::parse_bucket_key(key)
            .and_then(|(prefix, _)| EntryKind::of(&format!("{prefix}{}", "0".repeat(place::ID_LEN))))
            .ok_or_else(|| violation(key, Rule::UnknownEntryKind, "not a kind of entry this record format knows"))?;
        self.check_creator(key, kind)?;
        match &op.action {
            OpType::Make(ObjType::Map) if op.pred.is_empty() => Ok(()),
            OpType::Make(ObjType::Map) => {
                Err(violation(key, Rule::Immutable, "a bucket is created once and never replaced"))
            }
            OpType::Make(ObjType::Text) => Err(text_object(key)),
            _ => Err(violation(key, Rule::WrongShape, "a bucket is a map")),
        }
    }

    fn check_creator(&self, key: &str, kind: EntryKind) -> Result<(), Violation> {
        match kind.creator() {
            Some(creator) if !self.writer.is(creator) => {
                let who = if creator == Party::Clinic { "only the clinic" } else { "only the client's devices" };
                Err(violation(key, Rule::NotPermitted, format!("{who} may write a {}", kind.name())))
            }
            _ => Ok(()),
        }
    }

    fn root_op(&mut self, key: &str, op: &automerge::legacy::Op) -> Result<(), Violation> {
        let kind = EntryKind::of(key).ok_or_else(|| {
            violation(key, Rule::UnknownEntryKind, "not a kind of entry this record format version knows")
        })?;
        self.check_creator(key, kind)?;
        let exists = place::find(self.doc, key).is_some() || !self.written.insert(key.to_owned());
        if kind.is_map() {
            return match &op.action {
                OpType::Make(ObjType::Map) if !exists && op.pred.is_empty() => Ok(()),
                OpType::Make(ObjType::Map) => Err(violation(key, Rule::Immutable, "an entry is created once")),
                OpType::Make(ObjType::Text) => Err(text_object(key)),
                _ => Err(violation(key, Rule::WrongShape, format!("a {} is a map", kind.name()))),
            };
        }
        let value = scalar_string(key, op)?;
        if kind != EntryKind::PackAssignment && (exists || !op.pred.is_empty()) {
            return Err(violation(
                key,
                Rule::Immutable,
                format!("a {} is written once and never changed", kind.name()),
            ));
        }
        check_entry_value(kind, key, value, self.writer)
    }

    fn field_op(
        &mut self,
        entry: &str,
        created_here: bool,
        field: &str,
        path: &str,
        op: &automerge::legacy::Op,
    ) -> Result<(), Violation> {
        let kind = EntryKind::of(entry)
            .filter(|kind| kind.is_map())
            .ok_or_else(|| violation(entry, Rule::WrongShape, "only sessions and journal entries have fields"))?;
        let value = scalar_string(path, op)?;
        let devices_only = || {
            if self.writer.is(Party::Client) {
                Ok(())
            } else {
                Err(violation(path, Rule::NotPermitted, "only the client's devices may write this field"))
            }
        };
        if kind == EntryKind::Journal {
            // Every field of a journal entry, known or not, is the client's.
            devices_only()?;
        }
        let known = match kind {
            EntryKind::Session => {
                SESSION_FIELDS.contains(&field) || field.starts_with(CURRENT_ANSWER) || field.starts_with(ANSWER_ENTRY)
            }
            _ => JOURNAL_FIELDS.contains(&field),
        };
        if !known {
            // A newer writer's field: kept, and never read by this version.
            return unknown_field(path, value);
        }
        let first_write = created_here && op.pred.is_empty() && self.written.insert(path.to_owned());
        let not_permitted = |who: &str| violation(path, Rule::NotPermitted, format!("only {who} may write this field"));
        match (kind, field) {
            (EntryKind::Session, "tz" | "by") => {
                if !first_write {
                    return Err(violation(path, Rule::Immutable, "set only when the session is created"));
                }
                if field == "tz" {
                    crate::aftercare::parse_time_zone(value).map(drop).map_err(|_| invalid(path, "an IANA time zone"))
                } else {
                    let party = parse_party(path, value)?;
                    if self.writer.is(party) {
                        Ok(())
                    } else {
                        Err(violation(path, Rule::NotPermitted, "names a party other than the writer"))
                    }
                }
            }
            (EntryKind::Session, "start") => {
                let to = DateTime::parse_from_rfc3339(value).map_err(|_| invalid(path, "an RFC 3339 instant"))?;
                if self.writer == Writer::Device && !created_here {
                    let scheduled_by = self.session_by(entry);
                    let starts = self.current_starts(entry);
                    if starts.iter().any(|from| !may_move(Party::Client, scheduled_by, *from, to)) {
                        return Err(violation(
                            path,
                            Rule::NotPermitted,
                            "a device may postpone a session the clinic scheduled, never bring it forward",
                        ));
                    }
                }
                Ok(())
            }
            (EntryKind::Session, "cancelled") => {
                if self.writer == Writer::Device && !created_here && !may_cancel(Party::Client, self.session_by(entry))
                {
                    return Err(not_permitted("the clinic, which scheduled the session,"));
                }
                let deletion: Deletion = decode(path, value, "a cancellation {\"at\", \"by\"}")?;
                self.check_deletion_by(path, deletion.by)
            }
            (EntryKind::Session, "started_at" | "ended_at") => {
                devices_only()?;
                instant(path, value)
            }
            (EntryKind::Session, answer) if answer.starts_with(ANSWER_ENTRY) => {
                devices_only()?;
                if !place::is_v2_id(&answer[ANSWER_ENTRY.len()..]) {
                    return Err(violation(path, Rule::WrongShape, "an answer entry's id is 32 lowercase hex digits"));
                }
                // `first_write` already registered the path for an entry these changes create.
                let fresh = op.pred.is_empty()
                    && !self.field_exists(entry, field)
                    && (first_write || (!created_here && self.written.insert(path.to_owned())));
                if !fresh {
                    return Err(violation(path, Rule::Immutable, "an answer is written once and never changed"));
                }
                check_stored_answer(path, value, true)
            }
            (EntryKind::Session, answer) if answer.starts_with(CURRENT_ANSWER) => {
                devices_only()?;
                if answer.len() > 2 + MAX_ID_BYTES {
                    return Err(invalid(path, "an item id of at most 200 bytes"));
                }
                check_stored_answer(path, value, false)
            }
            (EntryKind::Journal, _) => match field {
                "created_at" | "edited_at" => instant(path, value),
                "text" => text(path, value),
                "prompt_id" | "session_id" => short_id(path, value),
                "deleted" => {
                    let deletion: Deletion = decode(path, value, "a deletion {\"at\", \"by\"}")?;
                    self.check_deletion_by(path, deletion.by)
                }
                _ => unknown_field(path, value),
            },
            (_, _) => unknown_field(path, value),
        }
    }

    /// Whether the existing entry at logical key `entry` has `field`.
    fn field_exists(&self, entry: &str, field: &str) -> bool {
        place::find(self.doc, entry).is_some_and(|(_, obj)| matches!(self.doc.get(&obj, field), Ok(Some(_))))
    }

    /// Who scheduled the session at logical key `entry`; one whose scheduler
    /// cannot be read is treated as the clinic's.
    fn session_by(&self, entry: &str) -> Party {
        let by = match self.new_by.get(entry) {
            Some(by) => Some(by.clone()),
            None => place::find(self.doc, entry).and_then(|(_, obj)| {
                self.doc.get(&obj, "by").ok().flatten().and_then(|(value, _)| value.as_str().map(str::to_owned))
            }),
        };
        if by.as_deref() == Some("client") {
            Party::Client
        } else {
            Party::Clinic
        }
    }

    /// Every current scheduled start of an existing session (several when
    /// moves were concurrent).
    fn current_starts(&self, entry: &str) -> Vec<DateTime<FixedOffset>> {
        let Some((_, obj)) = place::find(self.doc, entry) else { return Vec::new() };
        self.doc
            .get_all(&obj, "start")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(value, _)| value.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()))
            .collect()
    }

    fn check_deletion_by(&self, path: &str, by: Party) -> Result<(), Violation> {
        if self.writer.is(by) {
            Ok(())
        } else {
            Err(violation(path, Rule::NotPermitted, "names a party other than the writer"))
        }
    }
}

mod values;

pub(crate) use values::decodes_as;
use values::*;

#[cfg(test)]
mod buckets;
#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;
