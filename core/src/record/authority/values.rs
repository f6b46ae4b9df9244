//! What each value written into the record must decode as: scalar strings,
//! instants, texts and ids within their limits, and every immutable entry's
//! JSON as its type (a check-in's total as its answers score, a decision's
//! status as its item states say), checked for every writer.

use automerge::legacy::OpType;
use automerge::{ObjType, ScalarValue};
use chrono::DateTime;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{violation, EntryKind, Rule, Violation, Writer, MAX_ID_BYTES, MAX_UNKNOWN_FIELD_BYTES, MAX_VALUE_BYTES};
use crate::checklist::overall_status;
use crate::instruments::score;
use crate::record::{
    Acknowledgement, CheckIn, CheckInKind, ClinicianNote, PackAssignment, Party, ReadinessRecord, SideEffectReport,
    Vitals,
};

pub(super) fn text_object(path: &str) -> Violation {
    violation(
        path,
        Rule::TextObject,
        "a collaborative Text object where a scalar string belongs (Automerge JS: write an ImmutableString)",
    )
}

/// The scalar string an op puts.
pub(super) fn scalar_string<'o>(path: &str, op: &'o automerge::legacy::Op) -> Result<&'o str, Violation> {
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

pub(super) fn invalid(path: &str, expected: &str) -> Violation {
    violation(path, Rule::InvalidValue, format!("expected {expected}"))
}

pub(super) fn instant(path: &str, value: &str) -> Result<(), Violation> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .filter(crate::checklist::in_rfc3339_range)
        .map(drop)
        .ok_or_else(|| invalid(path, "an RFC 3339 instant (years 0000-9999)"))
}

pub(super) fn text(path: &str, value: &str) -> Result<(), Violation> {
    crate::record::check_text("text", value).map_err(|e| match e {
        crate::record::RecordError::InvalidInput { reason, .. } => violation(path, Rule::InvalidValue, reason),
        other => violation(path, Rule::InvalidValue, other.to_string()),
    })
}

pub(super) fn short_id(path: &str, value: &str) -> Result<(), Violation> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(invalid(path, "an id of 1 to 200 bytes"));
    }
    Ok(())
}

pub(super) fn unknown_field(path: &str, value: &str) -> Result<(), Violation> {
    if value.len() > MAX_UNKNOWN_FIELD_BYTES {
        return Err(violation(
            path,
            Rule::InvalidValue,
            format!("a field this version does not know may hold at most {MAX_UNKNOWN_FIELD_BYTES} bytes"),
        ));
    }
    Ok(())
}

pub(super) fn parse_party(path: &str, value: &str) -> Result<Party, Violation> {
    match value {
        "client" => Ok(Party::Client),
        "clinic" => Ok(Party::Clinic),
        _ => Err(invalid(path, "\"client\" or \"clinic\"")),
    }
}

/// Decodes a JSON field value; only a JSON object is read as a struct.
pub(super) fn decode<T: DeserializeOwned>(path: &str, value: &str, expected: &str) -> Result<T, Violation> {
    let json: Value = crate::json::from_str(value).map_err(|_| invalid(path, expected))?;
    if !json.is_object() {
        return Err(invalid(path, expected));
    }
    serde_json::from_value(json).map_err(|_| invalid(path, expected))
}

/// A stored answer: `{"value": <JSON>, "at": <RFC 3339>}`, and for an
/// answer entry (`h:<id>`, `entry`) also `"item"`, an id of 1 to 200 bytes.
pub(super) fn check_stored_answer(path: &str, value: &str, entry: bool) -> Result<(), Violation> {
    let expected = if entry { "an answer {\"item\", \"value\", \"at\"}" } else { "an answer {\"value\", \"at\"}" };
    let json: Value = crate::json::from_str(value).map_err(|_| invalid(path, expected))?;
    let at = json.get("at").and_then(Value::as_str).ok_or_else(|| invalid(path, expected))?;
    let item_ok =
        json.get("item").and_then(Value::as_str).is_some_and(|item| !item.is_empty() && item.len() <= MAX_ID_BYTES);
    if !json.is_object() || json.get("value").is_none() || (entry && !item_ok) {
        return Err(invalid(path, expected));
    }
    instant(path, at)
}

/// Decodes an immutable entry's JSON as its kind, as readers will.
pub(super) fn entry<T: DeserializeOwned>(key: &str, value: &str, kind: EntryKind) -> Result<T, Violation> {
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
pub(super) fn check_entry_value(kind: EntryKind, key: &str, value: &str, writer: Writer) -> Result<(), Violation> {
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
