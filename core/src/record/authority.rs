//! Write authority: who may write what in a care record, checked change by
//! change on every replica that receives changes from another.
//!
//! A care record is edited by the client's devices and by the clinic. Any of
//! them can send any well-formed Automerge change, so a receiver decides for
//! itself what a change may do. The rules, in one place (the clinic server,
//! the device and `docs/record-format.md` all follow this table):
//!
//! | entry (root key) | created by | afterwards |
//! |---|---|---|
//! | session `s:<id>` (map) | a device (`by: client`) or the clinic (`by: clinic`) | `tz` and `by` only in the change that creates it; `start` as [`may_move`] allows (a device postpones a clinic session, never brings it forward); `cancelled` as [`may_cancel`] allows; `started_at`, `ended_at` and answers `a:<item>` by the client's devices |
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
//! The check reads each change's operations ([`automerge::ExpandedChange`])
//! against the receiver's record before anything is merged, so a refused
//! request changes nothing. Who the writer is comes from the receiver's own
//! knowledge (the server knows the device's token), never from the change.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Automerge, Change, ObjType, Prop, ReadDoc, ScalarValue, ROOT};
use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::chunks::contained;
use super::schema::{JOURNAL_FIELDS, SESSION_FIELDS};
use super::{
    Acknowledgement, CheckIn, CheckInKind, ClinicianNote, Deletion, PackAssignment, Party, ReadinessRecord,
    SideEffectReport, Vitals, MAX_TEXT_CHARS,
};
use crate::checklist::overall_status;
use crate::instruments::score;

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
    /// A root key of no known kind.
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

/// The kinds of entry a record holds, by root key.
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
    /// The kind of the entry at root key `key`.
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

    // First the entries these changes create, so that a field written in a
    // later change of the same request finds its entry whatever the order,
    // and how many root writes there are, before checking any one of them.
    let mut root_writes = 0usize;
    for change in &expanded {
        for (i, op) in change.operations.iter().enumerate() {
            if !matches!(op.obj, ObjectId::Root) {
                continue;
            }
            root_writes += 1;
            if let (Key::Map(key), OpType::Make(ObjType::Map)) = (&op.key, &op.action) {
                let id = OpId(change.start_op.get() + i as u64, change.actor_id.clone());
                check.created.insert(op_id_string(&id), key.to_string());
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
                    if let Some(key) = check.created.get(&op_id_string(obj)) {
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

/// The object `id` (`counter@actor`) of `doc`: its type and where it hangs
/// (its parent object and key), if `doc` holds it.
pub(crate) fn locate(doc: &Automerge, id: &str) -> Option<(ObjType, automerge::Parent)> {
    let (obj, obj_type) = contained(|| doc.import(id).map_err(|e| e.to_string())).ok()?;
    let parent = doc.parents(&obj).ok()?.next()?;
    Some((obj_type, parent))
}

struct Check<'a> {
    doc: &'a Automerge,
    writer: Writer,
    /// Entries created by the changes: object id → root key.
    created: HashMap<String, String>,
    /// `by` of the sessions the changes create.
    new_by: HashMap<String, String>,
    /// Root keys and fields already written by the changes.
    written: HashSet<String>,
}

impl Check<'_> {
    fn op(&mut self, op: &automerge::legacy::Op) -> Result<(), Violation> {
        let (entry, created_here) = match &op.obj {
            ObjectId::Root => (None, false),
            ObjectId::Id(id) => {
                let id = op_id_string(id);
                match self.created.get(&id) {
                    Some(key) => (Some(key.clone()), true),
                    None => (Some(self.existing_entry(&id)?), false),
                }
            }
        };
        let field = match &op.key {
            Key::Map(field) if !op.insert => field.to_string(),
            _ => {
                let at = entry.as_deref().unwrap_or("(root)");
                return Err(violation(at, Rule::UnsupportedOp, "only map fields are written; lists are not used"));
            }
        };
        let path = match &entry {
            None => field.clone(),
            Some(key) => format!("{key}/{field}"),
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
            None => self.root_op(&field, op),
            Some(key) => self.field_op(&key, created_here, &field, &path, op),
        }
    }

    /// The root key of an entry that exists in the record before these changes.
    fn existing_entry(&self, id: &str) -> Result<String, Violation> {
        let unknown = || violation("(changes)", Rule::WrongShape, "a change writes into an object the record lacks");
        let (obj_type, parent) = locate(self.doc, id).ok_or_else(unknown)?;
        match (parent.obj == ROOT, parent.prop, obj_type) {
            (true, Prop::Map(key), ObjType::Map) => Ok(key),
            (_, Prop::Map(key), _) if parent.obj == ROOT => {
                Err(violation(&key, Rule::WrongShape, "entries are one level deep"))
            }
            _ => Err(violation("(changes)", Rule::WrongShape, "entries are one level deep")),
        }
    }

    fn root_op(&mut self, key: &str, op: &automerge::legacy::Op) -> Result<(), Violation> {
        let kind = EntryKind::of(key).ok_or_else(|| {
            violation(key, Rule::UnknownEntryKind, "not a kind of entry this record format version knows")
        })?;
        if let Some(creator) = kind.creator() {
            if !self.writer.is(creator) {
                let who = if creator == Party::Clinic { "only the clinic" } else { "only the client's devices" };
                return Err(violation(key, Rule::NotPermitted, format!("{who} may write a {}", kind.name())));
            }
        }
        let exists = self.doc.get(ROOT, key).ok().flatten().is_some() || !self.written.insert(key.to_owned());
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
            EntryKind::Session => SESSION_FIELDS.contains(&field) || field.starts_with("a:"),
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
            (EntryKind::Session, answer) if answer.starts_with("a:") => {
                devices_only()?;
                if answer.len() > 2 + MAX_ID_BYTES {
                    return Err(invalid(path, "an item id of at most 200 bytes"));
                }
                check_stored_answer(path, value)
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

    /// Who scheduled the session at root key `entry`; one whose scheduler
    /// cannot be read is treated as the clinic's.
    fn session_by(&self, entry: &str) -> Party {
        let by = match self.new_by.get(entry) {
            Some(by) => Some(by.clone()),
            None => self.doc.get(ROOT, entry).ok().flatten().and_then(|(_, obj)| {
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
        let Some((_, obj)) = self.doc.get(ROOT, entry).ok().flatten() else { return Vec::new() };
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

fn text_object(path: &str) -> Violation {
    violation(
        path,
        Rule::TextObject,
        "a collaborative Text object where a scalar string belongs (Automerge JS: write an ImmutableString)",
    )
}

/// The scalar string an op puts.
fn scalar_string<'o>(path: &str, op: &'o automerge::legacy::Op) -> Result<&'o str, Violation> {
    match &op.action {
        OpType::Put(ScalarValue::Str(value)) if value.len() > MAX_VALUE_BYTES => {
            Err(violation(path, Rule::InvalidValue, format!("longer than {MAX_VALUE_BYTES} bytes")))
        }
        OpType::Put(ScalarValue::Str(value)) => Ok(value),
        OpType::Put(_) => Err(violation(path, Rule::NotAString, "every value is a scalar string")),
        OpType::Make(ObjType::Text) => Err(text_object(path)),
        _ => Err(violation(path, Rule::WrongShape, "an object where a scalar string belongs")),
    }
}

fn invalid(path: &str, expected: &str) -> Violation {
    violation(path, Rule::InvalidValue, format!("expected {expected}"))
}

fn instant(path: &str, value: &str) -> Result<(), Violation> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .filter(crate::checklist::in_rfc3339_range)
        .map(drop)
        .ok_or_else(|| invalid(path, "an RFC 3339 instant (years 0000-9999)"))
}

fn text(path: &str, value: &str) -> Result<(), Violation> {
    super::check_text("text", value).map_err(|e| match e {
        super::RecordError::InvalidInput { reason, .. } => violation(path, Rule::InvalidValue, reason),
        other => violation(path, Rule::InvalidValue, other.to_string()),
    })
}

fn short_id(path: &str, value: &str) -> Result<(), Violation> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(invalid(path, "an id of 1 to 200 bytes"));
    }
    Ok(())
}

fn unknown_field(path: &str, value: &str) -> Result<(), Violation> {
    if value.len() > MAX_UNKNOWN_FIELD_BYTES {
        return Err(violation(
            path,
            Rule::InvalidValue,
            format!("a field this version does not know may hold at most {MAX_UNKNOWN_FIELD_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn parse_party(path: &str, value: &str) -> Result<Party, Violation> {
    match value {
        "client" => Ok(Party::Client),
        "clinic" => Ok(Party::Clinic),
        _ => Err(invalid(path, "\"client\" or \"clinic\"")),
    }
}

/// Decodes a JSON field value; only a JSON object is read as a struct.
fn decode<T: DeserializeOwned>(path: &str, value: &str, expected: &str) -> Result<T, Violation> {
    let json: Value = crate::json::from_str(value).map_err(|_| invalid(path, expected))?;
    if !json.is_object() {
        return Err(invalid(path, expected));
    }
    serde_json::from_value(json).map_err(|_| invalid(path, expected))
}

/// A stored answer: `{"value": <JSON>, "at": <RFC 3339>}`.
fn check_stored_answer(path: &str, value: &str) -> Result<(), Violation> {
    const EXPECTED: &str = "an answer {\"value\", \"at\"}";
    let json: Value = crate::json::from_str(value).map_err(|_| invalid(path, EXPECTED))?;
    let at = json
        .as_object()
        .and_then(|map| map.get("at"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(path, EXPECTED))?;
    if json.get("value").is_none() {
        return Err(invalid(path, EXPECTED));
    }
    instant(path, at)
}

/// Decodes an immutable entry's JSON as its kind, as readers will.
fn entry<T: DeserializeOwned>(key: &str, value: &str, kind: EntryKind) -> Result<T, Violation> {
    let mut json: Value =
        crate::json::from_str(value).map_err(|_| invalid(key, "a JSON object (with no key twice)"))?;
    let map = json.as_object_mut().ok_or_else(|| invalid(key, "a JSON object"))?;
    map.insert("id".into(), Value::from(""));
    serde_json::from_value(json).map_err(|_| {
        violation(key, Rule::InvalidValue, format!("does not decode as a {} (see docs/record-format.md)", kind.name()))
    })
}

/// Decodes an immutable entry's (or the pack assignment's) JSON as its kind.
pub(crate) fn decodes_as(kind: EntryKind, key: &str, value: &str) -> Result<(), Violation> {
    match kind {
        EntryKind::Vitals => entry::<Vitals>(key, value, kind).map(drop),
        EntryKind::SideEffect => entry::<SideEffectReport>(key, value, kind).map(drop),
        EntryKind::CheckIn => entry::<CheckIn>(key, value, kind).map(drop),
        EntryKind::Readiness => entry::<ReadinessRecord>(key, value, kind).map(drop),
        EntryKind::Note => entry::<ClinicianNote>(key, value, kind).map(drop),
        EntryKind::Acknowledgement => entry::<Acknowledgement>(key, value, kind).map(drop),
        EntryKind::PackAssignment => decode::<PackAssignment>(key, value, "a pack assignment").map(drop),
        EntryKind::Session | EntryKind::Journal => Err(violation(key, Rule::WrongShape, "this entry is a map")),
    }
}

/// Checks the value of an immutable entry (or the pack assignment).
fn check_entry_value(kind: EntryKind, key: &str, value: &str, writer: Writer) -> Result<(), Violation> {
    let bad = |reason: &str| violation(key, Rule::InvalidValue, reason.to_owned());
    match kind {
        EntryKind::Vitals => {
            let vitals: Vitals = entry(key, value, kind)?;
            if !vitals.reading.is_plausible() {
                return Err(bad("the reading is not a plausible blood pressure"));
            }
            vitals.session_id.as_deref().map_or(Ok(()), |id| short_id(key, id))
        }
        EntryKind::SideEffect => {
            let report: SideEffectReport = entry(key, value, kind)?;
            short_id(key, &report.effect_id)?;
            report.session_id.as_deref().map_or(Ok(()), |id| short_id(key, id))
        }
        EntryKind::CheckIn => {
            let check_in: CheckIn = entry(key, value, kind)?;
            match check_in.kind {
                CheckInKind::Instrument { instrument, answers, total, band } => {
                    let scored =
                        score(instrument, &answers).map_err(|_| bad("the answers do not fit the questionnaire"))?;
                    if scored.total != total || scored.band != band {
                        return Err(bad("the total or band does not match the answers"));
                    }
                    Ok(())
                }
                CheckInKind::Mood { score } if score <= 10 => Ok(()),
                CheckInKind::Mood { .. } => Err(bad("a mood is from 0 to 10")),
            }
        }
        EntryKind::Readiness => {
            let record: ReadinessRecord = entry(key, value, kind)?;
            short_id(key, &record.pack_id)?;
            short_id(key, &record.session_id)?;
            if overall_status(record.items.iter().map(|(_, state)| *state)) != record.status {
                return Err(bad("the status does not follow from the item states"));
            }
            Ok(())
        }
        EntryKind::Note => {
            let note: ClinicianNote = entry(key, value, kind)?;
            if note.author.trim().is_empty() {
                return Err(bad("a note has an author"));
            }
            text(key, &note.text)
        }
        EntryKind::Acknowledgement => {
            entry::<Acknowledgement>(key, value, kind).map(drop)?;
            // `k:<urgent key>`: it names an entry of the record.
            match EntryKind::of(&key[2..]) {
                Some(_) => Ok(()),
                None => Err(bad("an acknowledgement names an urgent item's key")),
            }
        }
        EntryKind::PackAssignment => {
            debug_assert!(writer.is(Party::Clinic));
            let assignment: PackAssignment = decode(key, value, "a pack assignment")?;
            if assignment.version == 0 {
                return Err(bad("a pack version is 1 or more"));
            }
            short_id(key, &assignment.pack_id)
        }
        EntryKind::Session | EntryKind::Journal => Err(violation(key, Rule::WrongShape, "this entry is a map")),
    }
}

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;
