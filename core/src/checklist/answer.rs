//! Typed checklist answers, parsed strictly from JSON against a pack.
//!
//! Each answer's JSON shape follows its item's [`Rule`]: an RFC 3339 instant
//! or `"none"` for time windows, `{"systolic": n, "diastolic": n}` for blood
//! pressure, a boolean for attestations and screening questions, an option
//! value for choices and a string for free text. `null` clears an answer.
//! Anything else is refused with a [`ChecklistError`] naming the item — and
//! never quoting the value, which is health data.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::pack::{Pack, Rule};

/// Lowest and highest systolic reading accepted as a real measurement, mmHg.
pub const SYSTOLIC_RANGE: std::ops::RangeInclusive<u16> = 50..=300;
/// Lowest and highest diastolic reading accepted as a real measurement, mmHg.
pub const DIASTOLIC_RANGE: std::ops::RangeInclusive<u16> = 20..=200;

/// Why answers could not be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChecklistError {
    /// The answers are not a JSON object of item id → answer.
    #[error("answers: must be a JSON object mapping item ids to answers")]
    NotAnObject,
    /// An answer names an item the pack does not have.
    #[error("answers.{id}: no such checklist or screening item in this pack")]
    UnknownItem {
        /// The unknown id.
        id: String,
    },
    /// A "last taken" instant is after the session's start: the question
    /// is when it was last taken *before* the start.
    #[error("answers.{id}: the time last taken is after the session's start")]
    AfterStart {
        /// The item answered.
        id: String,
    },
    /// An answer has the wrong type or an impossible value.
    #[error("answers.{id}: {reason}")]
    InvalidAnswer {
        /// The item whose answer is wrong.
        id: String,
        /// What was expected.
        reason: &'static str,
    },
}

/// When something was last taken, as answered for a time-window item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastTaken {
    /// Not taken within the relevant window (`"none"`).
    NotRecently,
    /// Last taken at this instant.
    At(DateTime<FixedOffset>),
}

/// A blood-pressure reading in mmHg.
///
/// Reading it from a stored record entry tolerates fields a newer writer
/// added (e.g. a pulse); a checklist answer is read strictly ([`Answer::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BloodPressureReading {
    /// Systolic pressure.
    pub systolic: u16,
    /// Diastolic pressure.
    pub diastolic: u16,
}

impl BloodPressureReading {
    /// Checks the reading is physiologically possible.
    pub fn is_plausible(&self) -> bool {
        SYSTOLIC_RANGE.contains(&self.systolic)
            && DIASTOLIC_RANGE.contains(&self.diastolic)
            && self.diastolic < self.systolic
    }
}

/// One answer, typed by its item's rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Answer to a time-window item.
    Time(LastTaken),
    /// Answer to the blood-pressure item.
    BloodPressure(BloodPressureReading),
    /// Answer to an attestation or screening question.
    YesNo(bool),
    /// The chosen option value of a choice item.
    Choice(String),
    /// Free text.
    Text(String),
}

impl Answer {
    /// Parses `value` as the answer to an item with `rule`; `None` for `null`.
    ///
    /// `rule` is `None` for screening questions, which take a boolean.
    ///
    /// # Errors
    /// [`ChecklistError::InvalidAnswer`] when the value does not fit the rule.
    pub fn parse(id: &str, rule: Option<&Rule>, value: &Value) -> Result<Option<Answer>, ChecklistError> {
        if value.is_null() {
            return Ok(None);
        }
        let invalid = |reason| ChecklistError::InvalidAnswer { id: id.to_owned(), reason };
        let answer = match rule {
            None | Some(Rule::Attestation) => {
                Answer::YesNo(value.as_bool().ok_or_else(|| invalid("expected true or false"))?)
            }
            Some(Rule::TimeWindow { .. }) => {
                const EXPECTED: &str = "expected an RFC 3339 instant (e.g. 2026-05-01T12:00:00-04:00) or \"none\"";
                let text = value.as_str().ok_or_else(|| invalid(EXPECTED))?;
                if text == "none" {
                    Answer::Time(LastTaken::NotRecently)
                } else {
                    let at = DateTime::parse_from_rfc3339(text).map_err(|_| invalid(EXPECTED))?;
                    if !in_rfc3339_range(&at) {
                        return Err(invalid("is outside the years 0000-9999 that RFC 3339 can write"));
                    }
                    Answer::Time(LastTaken::At(at))
                }
            }
            Some(Rule::BloodPressure) => {
                const EXPECTED: &str = "expected {\"systolic\": integer, \"diastolic\": integer}";
                // Only an object with exactly these keys: serde would also read a
                // struct from an array, and would skip unknown keys.
                let keys_ok = value
                    .as_object()
                    .is_some_and(|map| map.len() == 2 && map.contains_key("systolic") && map.contains_key("diastolic"));
                if !keys_ok {
                    return Err(invalid(EXPECTED));
                }
                let reading: BloodPressureReading =
                    serde_json::from_value(value.clone()).map_err(|_| invalid(EXPECTED))?;
                if !reading.is_plausible() {
                    return Err(invalid(
                        "reading is not plausible (systolic 50-300, diastolic 20-200, systolic above diastolic)",
                    ));
                }
                Answer::BloodPressure(reading)
            }
            Some(Rule::Choice { options }) => {
                let text = value.as_str().ok_or_else(|| invalid("expected one of the option values as a string"))?;
                if !options.iter().any(|o| o.value == text) {
                    return Err(invalid("is not one of this item's option values"));
                }
                Answer::Choice(text.to_owned())
            }
            Some(Rule::FreeText) => {
                Answer::Text(value.as_str().ok_or_else(|| invalid("expected a string"))?.to_owned())
            }
        };
        Ok(Some(answer))
    }

    /// Parses `value` as the answer to `pack`'s item (or screening
    /// question) `id`; `None` for `null`.
    ///
    /// # Errors
    /// [`ChecklistError::UnknownItem`] or [`ChecklistError::InvalidAnswer`].
    pub fn parse_for(pack: &Pack, id: &str, value: &Value) -> Result<Option<Answer>, ChecklistError> {
        let rule = match pack.checklist_item(id) {
            Some(item) => Some(&item.rule),
            None if pack.screening.iter().any(|q| q.id == id) => None,
            None => return Err(ChecklistError::UnknownItem { id: id.to_owned() }),
        };
        Answer::parse(id, rule, value)
    }

    /// Checks a "last taken" instant is not after the session's `start`.
    ///
    /// # Errors
    /// [`ChecklistError::AfterStart`] naming `id`.
    pub fn check_before(&self, id: &str, start: DateTime<FixedOffset>) -> Result<(), ChecklistError> {
        match self {
            Answer::Time(LastTaken::At(at)) if *at > start => Err(ChecklistError::AfterStart { id: id.to_owned() }),
            _ => Ok(()),
        }
    }

    /// The answer in the JSON form [`Answer::parse`] reads.
    pub fn to_json(&self) -> Value {
        match self {
            Answer::Time(LastTaken::NotRecently) => Value::from("none"),
            Answer::Time(LastTaken::At(at)) => Value::from(at.to_rfc3339()),
            Answer::BloodPressure(r) => serde_json::json!({"systolic": r.systolic, "diastolic": r.diastolic}),
            Answer::YesNo(b) => Value::from(*b),
            Answer::Choice(s) | Answer::Text(s) => Value::from(s.as_str()),
        }
    }
}

/// Whether `at` can be written in RFC 3339 (years 0000 to 9999), both in
/// UTC and in its own offset.
pub fn in_rfc3339_range(at: &DateTime<FixedOffset>) -> bool {
    years_within(at, &(0..=9999))
}

/// Whether `at` falls in `years`, both in UTC and in its own offset.
pub(crate) fn years_within(at: &DateTime<FixedOffset>, years: &std::ops::RangeInclusive<i32>) -> bool {
    use chrono::Datelike;
    years.contains(&at.year()) && years.contains(&at.naive_utc().year())
}

/// A session's answers, keyed by item id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answers(BTreeMap<String, Answer>);

impl Answers {
    /// No answers yet.
    pub fn new() -> Self {
        Answers::default()
    }

    /// Parses a JSON object of answers against `pack`.
    ///
    /// # Errors
    /// [`ChecklistError::NotAnObject`], [`ChecklistError::UnknownItem`] or
    /// [`ChecklistError::InvalidAnswer`] for the first offending entry.
    pub fn from_json(pack: &Pack, value: &Value) -> Result<Answers, ChecklistError> {
        let map = value.as_object().ok_or(ChecklistError::NotAnObject)?;
        let mut answers = Answers::new();
        for (id, value) in map {
            answers.set(pack, id, value)?;
        }
        Ok(answers)
    }

    /// Sets (or, with `null`, clears) one answer after checking it against `pack`.
    ///
    /// # Errors
    /// [`ChecklistError::UnknownItem`] or [`ChecklistError::InvalidAnswer`];
    /// the previous answer is kept on error.
    pub fn set(&mut self, pack: &Pack, id: &str, value: &Value) -> Result<(), ChecklistError> {
        match Answer::parse_for(pack, id, value)? {
            Some(answer) => self.0.insert(id.to_owned(), answer),
            None => self.0.remove(id),
        };
        Ok(())
    }

    /// Checks every "last taken" instant against the session's `start`
    /// ([`Answer::check_before`]).
    ///
    /// # Errors
    /// [`ChecklistError::AfterStart`] for the first item (in id order) answered after the start.
    pub fn check_before(&self, start: DateTime<FixedOffset>) -> Result<(), ChecklistError> {
        self.0.iter().try_for_each(|(id, answer)| answer.check_before(id, start))
    }

    /// The answer to `id`, if given.
    pub fn get(&self, id: &str) -> Option<&Answer> {
        self.0.get(id)
    }

    /// Every answer with its item id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Answer)> {
        self.0.iter().map(|(id, answer)| (id.as_str(), answer))
    }

    /// All answers as a JSON object, in the form [`Answers::from_json`] reads.
    pub fn to_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(id, a)| (id.clone(), a.to_json())).collect())
    }

    /// Number of answered items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is answered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
