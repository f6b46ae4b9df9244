//! Checklist answers: every answer kept, the current one derived.
//!
//! Format 2 stores each answer as its own immutable field of its session's
//! map, `h:<answer id>` = `{"item", "value", "at"}`, written once and never
//! changed, so a reading a later answer replaced stays in the record (the
//! clinic's chart and alerts need it). The same write also sets the
//! session's `a:<item>` field to the same text, whose `value` and `at` are
//! what format 1 stored there: an app still on format 1 (on another of the
//! client's devices) then reads the current answer, never an older one.
//!
//! The current answer of an item is its `a:<item>` field, exactly as in
//! format 1: the last one written, and of values written concurrently (on
//! two devices offline) the one given latest (`at`; ties by the stored
//! text, so every replica picks the same). A `null` value clears it.
//!
//! The history is every `h:` entry, and every `a:` value (concurrent ones
//! included) that no `h:` entry repeats: that is how an answer written by a
//! format-1 app is kept. Entries are never changed, so a reading a later
//! answer replaced stays readable, and a writer that hides one with a
//! benign `a:` value leaves it in the history, where the urgency rules
//! read it.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use super::layout::Fields;
use super::AnswerRecord;

/// The prefix of an answer entry's field in its session's map (`h:<id>`).
pub(crate) const ANSWER_ENTRY: &str = "h:";
/// The prefix of an item's current-answer field (`a:<item id>`, format 1's only form).
pub(crate) const CURRENT_ANSWER: &str = "a:";

/// Every answer of a session, oldest first (by `at`; within an instant,
/// entries by id, then format-1 values). Values that are not answer
/// objects are skipped.
pub(super) fn answer_log(fields: &Fields) -> Vec<AnswerRecord> {
    let mut log: Vec<AnswerRecord> = Vec::new();
    // Entries first, so that a format-1 value can be matched against them.
    for entries in [true, false] {
        let prefix = if entries { ANSWER_ENTRY } else { CURRENT_ANSWER };
        for (key, values) in fields.with_prefix(prefix) {
            for stored in values.iter().filter_map(|s| parse_object(s)) {
                // An entry names its item and holds `null` when it cleared
                // it; a format-1 value is at its item's key and has a value.
                let item = if entries { stored.get("item").and_then(Value::as_str) } else { Some(key) };
                let value = stored.get("value").cloned().or(entries.then_some(Value::Null));
                let (Some(item), Some(value)) = (item, value) else { continue };
                let answer = AnswerRecord {
                    id: entries.then(|| key.to_owned()),
                    item_id: item.to_owned(),
                    at: at_of(&stored),
                    value,
                };
                let repeated = || {
                    log.iter().any(|a| {
                        a.id.is_some() && a.item_id == answer.item_id && a.at == answer.at && a.value == answer.value
                    })
                };
                if entries || !repeated() {
                    // Tens of answers a session: each goes straight to its place.
                    let order = |a: &AnswerRecord| (a.at, a.id.is_none(), a.id.clone());
                    let place = log.partition_point(|a| order(a) <= order(&answer));
                    log.insert(place, answer);
                }
            }
        }
    }
    log
}

/// One item's current answer and when it was given.
struct Current {
    value: Value,
    at: Option<DateTime<FixedOffset>>,
}

/// Each item's current answer, by item id: its `a:` field's value, the
/// latest `at` of concurrent ones winning (ties by text). A cleared item,
/// or one none of whose values reads as an answer, is left out.
fn current(fields: &Fields) -> impl Iterator<Item = (&str, Current)> {
    fields.with_prefix(CURRENT_ANSWER).filter_map(|(item, values)| {
        let latest = values
            .iter()
            .filter_map(|s| parse_object(s))
            .max_by(|a, b| at_of(a).cmp(&at_of(b)).then_with(|| a.to_string().cmp(&b.to_string())))?;
        let value = latest.get("value")?.clone();
        (!value.is_null()).then(|| (item, Current { at: at_of(&latest), value }))
    })
}

/// A session's current answers as a JSON object (item id → answer).
pub(super) fn session_answers(fields: &Fields) -> Value {
    Value::Object(current(fields).map(|(item, answer)| (item.to_owned(), answer.value)).collect())
}

/// A session's current answers, item id → value.
pub(super) fn current_answers(fields: &Fields) -> impl Iterator<Item = (&str, Value)> {
    current(fields).map(|(item, answer)| (item, answer.value))
}

/// A session's current answers with the instant each was given, by item id.
pub(super) fn latest_answers_at(fields: &Fields) -> Vec<(String, Value, Option<DateTime<FixedOffset>>)> {
    current(fields).map(|(item, answer)| (item.to_owned(), answer.value, answer.at)).collect()
}

/// The entries of the items' current answers (their ids, by item id): what
/// a readiness decision names. An item whose current value no `h:` entry
/// holds (a format-1 write) has none, and neither has a cleared one.
pub(super) fn current_answer_ids(fields: &Fields) -> Vec<String> {
    let log = answer_log(fields);
    current(fields)
        .filter_map(|(item, answer)| {
            // Ordered by id within an instant: the last match has the greatest id.
            let entry = log.iter().rev().find(|a| a.item_id == item && a.at == answer.at && a.value == answer.value);
            entry.and_then(|a| a.id.clone())
        })
        .collect()
}

/// The instant a stored answer was given, when it reads as one.
fn at_of(stored: &Value) -> Option<DateTime<FixedOffset>> {
    stored.get("at").and_then(Value::as_str).and_then(|s| DateTime::parse_from_rfc3339(s).ok())
}

/// Only an object is a stored answer (serde would also read one from an array).
fn parse_object(stored: &str) -> Option<Value> {
    serde_json::from_str::<Value>(stored).ok().filter(Value::is_object)
}

#[cfg(test)]
mod tests;
