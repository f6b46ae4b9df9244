//! The pre-session checklist engine.
//!
//! [`evaluate`] judges a session's [`Answers`] against a pack, relative to the
//! session's scheduled start, and returns an [`Evaluation`]: one explained
//! [`ItemResult`] per checklist and screening item, the overall
//! [`ReadinessStatus`], and the [`Reminder`]s to schedule.
//!
//! Overall status, by precedence:
//! 1. `blocked` — any item `fail`s: do not start, contact the clinic.
//! 2. `incomplete` — any required item is unanswered (or its stored answer no
//!    longer fits the pack).
//! 3. `wait` — a time window closes after the scheduled start; `ready_at` is
//!    the earliest start at which every window is met.
//! 4. `ready` — everything passes (warnings allowed).
//!
//! Missing or unreadable data can only ever lead to `incomplete` or worse:
//! `ready` requires a valid, passing answer to every required item.

mod answer;
mod explain;

use chrono::{DateTime, Duration, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::pack::{Outcome, Pack, Rule};
use crate::zone::Zone;
pub(crate) use answer::years_within;
pub use answer::{
    in_rfc3339_range, Answer, Answers, BloodPressureReading, ChecklistError, LastTaken, DIASTOLIC_RANGE, SYSTOLIC_RANGE,
};
use explain::{LocalTime, Reason};

/// The state of one checklist item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Met.
    Pass,
    /// Not met: the session must not start; contact the clinic.
    Fail,
    /// Met, but worth the client's or clinic's attention.
    Warn,
    /// A time window that closes after the scheduled start.
    Wait,
    /// No usable answer yet.
    Unanswered,
}

/// Whether the session can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessStatus {
    /// Every required item passes: the session may start at the scheduled time.
    Ready,
    /// Everything is answered and nothing fails, but a time window closes
    /// after the scheduled start: the session may start at `ready_at`.
    Wait,
    /// Some required item has no usable answer.
    Incomplete,
    /// Some item fails: do not start; contact the clinic (never "try later").
    Blocked,
}

impl ReadinessStatus {
    /// The status as used in JSON (`ready`, `wait`, `incomplete`, `blocked`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadinessStatus::Ready => "ready",
            ReadinessStatus::Wait => "wait",
            ReadinessStatus::Incomplete => "incomplete",
            ReadinessStatus::Blocked => "blocked",
        }
    }
}

/// The judgement of one item, with a message for the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    /// The item id.
    pub id: String,
    /// Its state.
    pub state: ItemState,
    /// Why, in the requested locale.
    pub message: String,
    /// For `wait`: the instant from which the item is met.
    pub until: Option<DateTime<FixedOffset>>,
    /// True when the answer needs the clinic's attention now (a blood
    /// pressure at or above the urgent threshold).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

/// A moment to remind the client of, for a local notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The time-window item it belongs to.
    pub id: String,
    /// When the window closes: the client must stop by then.
    pub at: DateTime<FixedOffset>,
    /// Notification text in the requested locale.
    pub message: String,
}

/// The result of evaluating a checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Overall status.
    pub status: ReadinessStatus,
    /// For `wait`: the earliest start at which every window is met.
    pub ready_at: Option<DateTime<FixedOffset>>,
    /// True when any item is urgent; the record raises a clinic alert.
    pub urgent: bool,
    /// Every checklist item, then every screening question, in pack order.
    pub items: Vec<ItemResult>,
    /// One reminder per time-window item, in pack order.
    pub reminders: Vec<Reminder>,
}

/// Evaluates `answers` for a session starting at `session_start`, for a
/// caller that does not know the client's time zone: see [`evaluate_in`].
pub fn evaluate(pack: &Pack, session_start: DateTime<FixedOffset>, answers: &Answers, locale: &str) -> Evaluation {
    evaluate_in(pack, session_start, None, answers, locale)
}

/// Evaluates `answers` for a session starting at `session_start`, for a
/// client in `zone`.
///
/// Instants in the result (`until`, `ready_at`, reminders) carry the
/// client's UTC offset at that instant when `zone` is given, else
/// `session_start`'s. Messages show instants as the client's wall-clock
/// time at that instant (in `zone`, or else in the offset each was entered
/// with), in the pack locale that best matches `locale`. Answers to ids the
/// pack does not have are ignored; an answer that does not fit its item
/// (for example one stored under an older pack), and a "last taken" instant
/// after the start (the session was moved earlier), count as unanswered.
pub fn evaluate_in(
    pack: &Pack,
    session_start: DateTime<FixedOffset>,
    zone: Option<&Zone>,
    answers: &Answers,
    locale: &str,
) -> Evaluation {
    let locale = pack.locale_for(locale);
    let shown = |t: DateTime<FixedOffset>| match zone {
        Some(zone) => t.with_timezone(zone).fixed_offset(),
        None => t.with_timezone(session_start.offset()),
    };
    let clock = LocalTime { zone, start_date: shown(session_start).date_naive() };
    let text = |t| pack.text(t, locale);
    let mut items = Vec::with_capacity(pack.checklist.len() + pack.screening.len());
    let mut reminders = Vec::new();

    for item in &pack.checklist {
        let answer = answers.get(&item.id);
        let (state, reason, until) = match (&item.rule, answer) {
            (_, None) if item.optional => (ItemState::Warn, Reason::OptionalMissing, None),
            (_, None) => (ItemState::Unanswered, Reason::Unanswered, None),
            (Rule::TimeWindow { window_minutes, .. }, Some(Answer::Time(last))) => {
                judge_window(session_start, Duration::minutes(i64::from(*window_minutes)), *last)
            }
            (Rule::BloodPressure, Some(Answer::BloodPressure(reading))) if reading.is_plausible() => {
                let t = &pack.thresholds;
                let meets = |limit: crate::pack::BloodPressureLimit| {
                    reading.systolic >= limit.systolic || reading.diastolic >= limit.diastolic
                };
                if meets(t.bp_urgent) {
                    (ItemState::Fail, Reason::BpUrgent { reading: *reading }, None)
                } else if meets(t.bp_limit) {
                    (ItemState::Fail, Reason::BpHigh { reading: *reading, limit: t.bp_limit }, None)
                } else {
                    (ItemState::Pass, Reason::BpOk { reading: *reading, limit: t.bp_limit }, None)
                }
            }
            (Rule::Attestation, Some(Answer::YesNo(true))) => (ItemState::Pass, Reason::Confirmed, None),
            (Rule::Attestation, Some(Answer::YesNo(false))) => (ItemState::Fail, Reason::NotConfirmed, None),
            (Rule::Choice { options }, Some(Answer::Choice(value))) => {
                match options.iter().find(|o| &o.value == value) {
                    Some(option) => (state_of(option.outcome), Reason::Note(text(&option.note).to_owned()), None),
                    None => (ItemState::Unanswered, Reason::Unreadable, None),
                }
            }
            (Rule::FreeText, Some(Answer::Text(s))) if !s.trim().is_empty() => {
                (ItemState::Pass, Reason::TextGiven, None)
            }
            (Rule::FreeText, Some(Answer::Text(_))) if item.optional => {
                (ItemState::Warn, Reason::OptionalMissing, None)
            }
            (Rule::FreeText, Some(Answer::Text(_))) => (ItemState::Unanswered, Reason::Unanswered, None),
            (_, Some(_)) => (ItemState::Unanswered, Reason::Unreadable, None),
        };
        if let Rule::TimeWindow { window_minutes, reminder } = &item.rule {
            reminders.push(Reminder {
                id: item.id.clone(),
                at: shown(session_start - Duration::minutes(i64::from(*window_minutes))),
                message: text(reminder).to_owned(),
            });
        }
        let urgent = matches!(reason, Reason::BpUrgent { .. });
        items.push(ItemResult {
            id: item.id.clone(),
            state,
            message: reason.message(locale, clock),
            until: until.map(shown),
            urgent,
        });
    }

    for question in &pack.screening {
        let (state, reason) = match answers.get(&question.id) {
            None => (ItemState::Unanswered, Reason::Unanswered),
            Some(Answer::YesNo(false)) => (ItemState::Pass, Reason::ScreenNo),
            Some(Answer::YesNo(true)) => match question.if_yes {
                Outcome::Fail => (ItemState::Fail, Reason::ScreenBlocks),
                Outcome::Warn => (ItemState::Warn, Reason::ScreenCaution),
                Outcome::Pass => (ItemState::Pass, Reason::ScreenNo),
            },
            Some(_) => (ItemState::Unanswered, Reason::Unreadable),
        };
        items.push(ItemResult {
            id: question.id.clone(),
            state,
            message: reason.message(locale, clock),
            until: None,
            urgent: false,
        });
    }

    let ready_at = items.iter().filter(|i| i.state == ItemState::Wait).filter_map(|i| i.until).max();
    let status = overall_status(items.iter().map(|i| i.state));
    Evaluation {
        status,
        ready_at: if status == ReadinessStatus::Wait { ready_at } else { None },
        urgent: items.iter().any(|i| i.urgent),
        items,
        reminders,
    }
}

fn state_of(outcome: Outcome) -> ItemState {
    match outcome {
        Outcome::Pass => ItemState::Pass,
        Outcome::Warn => ItemState::Warn,
        Outcome::Fail => ItemState::Fail,
    }
}

/// A time window is met when the last intake is at least `window` before the start.
fn judge_window(
    start: DateTime<FixedOffset>,
    window: Duration,
    last: LastTaken,
) -> (ItemState, Reason, Option<DateTime<FixedOffset>>) {
    match last {
        LastTaken::NotRecently => (ItemState::Pass, Reason::NotTaken { window }, None),
        LastTaken::At(at) if at > start => (ItemState::Unanswered, Reason::AfterStart, None),
        LastTaken::At(at) => {
            let clear_from = at + window;
            if clear_from <= start {
                (ItemState::Pass, Reason::WindowMet { at, window }, None)
            } else {
                (ItemState::Wait, Reason::WindowOpen { at, window, until: clear_from }, Some(clear_from))
            }
        }
    }
}

/// The overall status that item states imply: **blocked** if any failed,
/// else **incomplete** if any is unanswered, else **wait** if any waits,
/// else **ready**. Stored readiness decisions are checked against it too.
pub fn overall_status(states: impl IntoIterator<Item = ItemState>) -> ReadinessStatus {
    let (mut fail, mut unanswered, mut wait) = (false, false, false);
    for state in states {
        match state {
            ItemState::Fail => fail = true,
            ItemState::Unanswered => unanswered = true,
            ItemState::Wait => wait = true,
            ItemState::Pass | ItemState::Warn => {}
        }
    }
    if fail {
        ReadinessStatus::Blocked
    } else if unanswered {
        ReadinessStatus::Incomplete
    } else if wait {
        ReadinessStatus::Wait
    } else {
        ReadinessStatus::Ready
    }
}

#[cfg(test)]
mod tests;
