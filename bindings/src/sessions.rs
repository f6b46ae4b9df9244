//! `Sessions`: scheduling, the pre-session checklist, start and end, aftercare.
//!
//! The checklist is judged by the core engine against the session's scheduled
//! start; it fails closed (missing or unreadable answers never give `READY`).
//! `start` records the engine's decision (the audit trail the clinic sees)
//! and starts the session only when it is `READY`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use katcore::aftercare::{self, Aftercare as CoreAftercare, ScheduledPrompt as CoreScheduledPrompt};
use katcore::checklist::{
    Answer, BloodPressureReading, Evaluation as CoreEvaluation, ItemResult as CoreItemResult, ItemState, LastTaken,
    ReadinessStatus, Reminder as CoreReminder,
};
use katcore::record::{Party, Session as CoreSession};
use serde_json::{json, Value};

use crate::error::{KatcoreError, Result};
use crate::listeners::CareChange;
use crate::store::Inner;
use crate::time::{in_zone, or_now, to_system_time, to_utc};

/// The client's dosing sessions. Calls block briefly: reads are in memory, writes are
/// durable (on disk) when they return.
#[derive(uniffi::Object)]
pub struct Sessions {
    inner: Arc<Inner>,
}

impl Sessions {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Sessions { inner }
    }

    fn session(&self, session_id: &str) -> Result<CoreSession> {
        self.inner
            .read(|record| record.session(session_id))
            .ok_or_else(|| KatcoreError::NotFound { what: format!("session {session_id}") })
    }

    fn record_answer(&self, session_id: &str, item_id: &str, value: &Value, at: Option<SystemTime>) -> Result<()> {
        record_answer(&self.inner, session_id, item_id, value, at)
    }
}

/// Records one answer (a durable write) and tells the listeners.
fn record_answer(inner: &Inner, session_id: &str, item_id: &str, value: &Value, at: Option<SystemTime>) -> Result<()> {
    let (pack, at) = (inner.pack(), or_now("at", at)?);
    inner.update(CareChange::Sessions, |r| r.record_answer(&pack, session_id, item_id, value, at))
}

/// Evaluates a session's checklist with the pack in force (reusing the answers
/// decoded last time while nothing changed: `katcore::care_store`).
fn evaluate(inner: &Inner, session_id: &str, locale: &str) -> Result<Evaluation> {
    Ok(inner.store.evaluate_session(&inner.pack(), session_id, locale)?.into())
}

/// One session's pre-session checklist in one locale, from `Sessions.checklist`.
#[derive(uniffi::Object)]
pub struct SessionChecklist {
    inner: Arc<Inner>,
    session_id: String,
    locale: String,
}

#[uniffi::export]
impl SessionChecklist {
    /// The session this checklist belongs to.
    pub fn session_id(&self) -> String {
        self.session_id.clone()
    }

    /// Evaluates the checklist, as `Sessions.evaluate(sessionId, locale)`. Reads only.
    ///
    /// # Errors
    /// `NotFound` if the session is gone.
    pub fn evaluate(&self) -> Result<Evaluation> {
        evaluate(&self.inner, &self.session_id, &self.locale)
    }

    /// Records the answer to one item, as `Sessions.answer`. Blocking (a durable write).
    ///
    /// # Errors
    /// As `Sessions.answer`.
    #[uniffi::method(default(at = None))]
    pub fn answer(&self, item_id: String, answer: ChecklistAnswer, at: Option<SystemTime>) -> Result<()> {
        record_answer(&self.inner, &self.session_id, &item_id, &answer.to_json()?, at)
    }
}

#[uniffi::export]
impl Sessions {
    /// Schedules a session at `start` for a client in the IANA `time_zone`
    /// (e.g. `America/New_York`). Blocking (a durable write).
    ///
    /// # Errors
    /// `InvalidInput` for an unknown time zone.
    pub fn schedule(&self, start: SystemTime, time_zone: String) -> Result<Session> {
        let start = in_zone("start", Some(start), &time_zone)?;
        let id = self.inner.update(CareChange::Sessions, |r| r.schedule_session(start, &time_zone, Party::Client))?;
        self.session(&id).map(Session::from)
    }

    /// Moves a session to a new start.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn reschedule(&self, session_id: String, start: SystemTime) -> Result<()> {
        let start = in_zone("start", Some(start), &self.session(&session_id)?.time_zone)?;
        self.inner.update(CareChange::Sessions, |r| r.move_session(&session_id, start, Party::Client))
    }

    /// Cancels a session (recorded, never removed).
    ///
    /// # Errors
    /// `NotFound`.
    #[uniffi::method(default(at = None))]
    pub fn cancel(&self, session_id: String, at: Option<SystemTime>) -> Result<()> {
        let at = or_now("at", at)?;
        self.inner.update(CareChange::Sessions, |r| r.cancel_session(&session_id, Party::Client, at))
    }

    /// Sessions still ahead at `now` (default: the current time), soonest first.
    #[uniffi::method(default(now = None))]
    pub fn upcoming(&self, now: Option<SystemTime>) -> Result<Vec<Session>> {
        let now = or_now("now", now)?;
        Ok(self.inner.read(|r| r.upcoming_sessions(now)).into_iter().map(Session::from).collect())
    }

    /// Every session, cancelled and past ones included, by scheduled start.
    pub fn all(&self) -> Vec<Session> {
        self.inner.read(|r| r.sessions()).into_iter().map(Session::from).collect()
    }

    /// One session.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn get(&self, session_id: String) -> Result<Session> {
        self.session(&session_id).map(Session::from)
    }

    /// Records the answer to one checklist or screening item. Blocking (a durable write).
    ///
    /// # Errors
    /// `NotFound` for an unknown session; `InvalidInput` (field `answers.<item>`) for an
    /// unknown item or an answer that does not fit it, such as an implausible reading.
    #[uniffi::method(default(at = None))]
    pub fn answer(
        &self,
        session_id: String,
        item_id: String,
        answer: ChecklistAnswer,
        at: Option<SystemTime>,
    ) -> Result<()> {
        self.record_answer(&session_id, &item_id, &answer.to_json()?, at)
    }

    /// Clears the answer to one item.
    ///
    /// # Errors
    /// As `answer`.
    #[uniffi::method(default(at = None))]
    pub fn clear_answer(&self, session_id: String, item_id: String, at: Option<SystemTime>) -> Result<()> {
        self.record_answer(&session_id, &item_id, &Value::Null, at)
    }

    /// The session's current answers by item id. Answers that no longer fit the pack in
    /// force are left out (they count as unanswered).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn answers(&self, session_id: String) -> Result<HashMap<String, ChecklistAnswer>> {
        let pack = self.inner.pack();
        // The answers the engine evaluates: those that do not fit the pack are left out.
        let (_, answers) = self.inner.read(|r| r.checklist_inputs(&pack, &session_id))?;
        Ok(answers.iter().map(|(id, answer)| (id.to_owned(), ChecklistAnswer::from(answer))).collect())
    }

    /// Evaluates the checklist: overall readiness, every item's state with a message in
    /// `locale`, and the reminders to schedule as local notifications. Reads only.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn evaluate(&self, session_id: String, locale: String) -> Result<Evaluation> {
        evaluate(&self.inner, &session_id, &locale)
    }

    /// One session's checklist in `locale`, for the screen that shows it: its `evaluate()`
    /// takes no arguments, the cheapest call for re-evaluating after every answer.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn checklist(&self, session_id: String, locale: String) -> Result<Arc<SessionChecklist>> {
        self.session(&session_id)?;
        Ok(Arc::new(SessionChecklist { inner: Arc::clone(&self.inner), session_id, locale }))
    }

    /// Starts the session if its checklist is `READY`. The evaluation is recorded either
    /// way (the clinic sees it; `BLOCKED` raises an alert) and returned.
    ///
    /// # Errors
    /// `NotReady` with the status when it is not `READY` (the session does not start),
    /// `NotFound`, or `InvalidInput` for a cancelled session.
    #[uniffi::method(default(at = None))]
    pub fn start(&self, session_id: String, locale: String, at: Option<SystemTime>) -> Result<Evaluation> {
        let pack = self.inner.pack();
        let session = self.session(&session_id)?;
        let started_at = in_zone("at", at, &session.time_zone)?;
        let evaluation = self.inner.update(CareChange::Sessions, |r| {
            let evaluation = r.evaluate_session(&pack, &session_id, &locale)?;
            r.record_readiness(&session_id, &evaluation, &pack, started_at.to_utc())?;
            if evaluation.status == ReadinessStatus::Ready {
                r.start_session(&session_id, started_at)?;
            }
            Ok(evaluation)
        })?;
        match evaluation.status {
            ReadinessStatus::Ready => Ok(evaluation.into()),
            status => Err(KatcoreError::NotReady { status }),
        }
    }

    /// Ends a started session.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when it never started or `at` is before its start.
    #[uniffi::method(default(at = None))]
    pub fn end(&self, session_id: String, at: Option<SystemTime>) -> Result<()> {
        let ended_at = in_zone("at", at, &self.session(&session_id)?.time_zone)?;
        self.inner.update(CareChange::Sessions, |r| r.end_session(&session_id, ended_at))
    }

    /// The plan after an ended session: when driving is acceptable again, the
    /// side-effect check-ins and the integration prompts, in the session's time zone.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when the session has not ended.
    pub fn aftercare(&self, session_id: String, locale: String) -> Result<Aftercare> {
        let session = self.session(&session_id)?;
        let ended = session.ended_at.ok_or_else(|| KatcoreError::invalid("session_id", "the session has not ended"))?;
        let zone = aftercare::parse_time_zone(&session.time_zone)
            .map_err(|_| KatcoreError::invalid("time_zone", "is not a known IANA time zone name"))?;
        Ok(aftercare::plan(&self.inner.pack(), ended.to_utc(), &zone, &locale).into())
    }
}

/// An answer to a checklist or screening item; `Content.checklist` says which kind each takes.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChecklistAnswer {
    /// When it was last taken (time-window items).
    LastTaken {
        /// The instant.
        at: SystemTime,
    },
    /// Not taken within the window (time-window items).
    NotRecently,
    /// A blood-pressure reading in mmHg.
    BloodPressure {
        /// Systolic.
        systolic: u16,
        /// Diastolic.
        diastolic: u16,
    },
    /// Yes or no (attestations and screening questions).
    YesNo {
        /// The answer.
        value: bool,
    },
    /// The chosen option's value (choice items).
    Choice {
        /// One of the question's option values.
        value: String,
    },
    /// Free text.
    Text {
        /// The text.
        value: String,
    },
}

impl ChecklistAnswer {
    /// The JSON form the core engine reads.
    fn to_json(&self) -> Result<Value> {
        Ok(match self {
            ChecklistAnswer::LastTaken { at } => Value::from(to_utc("answer.at", *at)?.to_rfc3339()),
            ChecklistAnswer::NotRecently => Value::from("none"),
            ChecklistAnswer::BloodPressure { systolic, diastolic } => {
                json!({"systolic": systolic, "diastolic": diastolic})
            }
            ChecklistAnswer::YesNo { value } => Value::from(*value),
            ChecklistAnswer::Choice { value } | ChecklistAnswer::Text { value } => Value::from(value.as_str()),
        })
    }
}

impl From<&Answer> for ChecklistAnswer {
    fn from(answer: &Answer) -> Self {
        match answer {
            Answer::Time(LastTaken::At(at)) => ChecklistAnswer::LastTaken { at: to_system_time(*at) },
            Answer::Time(LastTaken::NotRecently) => ChecklistAnswer::NotRecently,
            Answer::BloodPressure(BloodPressureReading { systolic, diastolic }) => {
                ChecklistAnswer::BloodPressure { systolic: *systolic, diastolic: *diastolic }
            }
            Answer::YesNo(value) => ChecklistAnswer::YesNo { value: *value },
            Answer::Choice(value) => ChecklistAnswer::Choice { value: value.clone() },
            Answer::Text(value) => ChecklistAnswer::Text { value: value.clone() },
        }
    }
}

/// A dosing session.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Scheduled start.
    pub scheduled_start: SystemTime,
    /// The client's IANA time zone for this session.
    pub time_zone: String,
    /// Who scheduled it.
    pub scheduled_by: Party,
    /// When it started, once started.
    pub started_at: Option<SystemTime>,
    /// When it ended, once ended.
    pub ended_at: Option<SystemTime>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<SystemTime>,
    /// Other starts written concurrently (e.g. the clinic moved it while this phone was
    /// offline and also moved it): show them so someone settles it.
    pub conflicting_starts: Vec<SystemTime>,
}

impl From<CoreSession> for Session {
    fn from(s: CoreSession) -> Self {
        Session {
            id: s.id,
            scheduled_start: to_system_time(s.scheduled_start),
            time_zone: s.time_zone,
            scheduled_by: s.scheduled_by,
            started_at: s.started_at.map(to_system_time),
            ended_at: s.ended_at.map(to_system_time),
            cancelled_at: s.cancelled.map(|c| to_system_time(c.at)),
            conflicting_starts: s.conflicting_starts.into_iter().map(to_system_time).collect(),
        }
    }
}

/// The checklist's verdict for a session.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Evaluation {
    /// Overall status.
    pub status: ReadinessStatus,
    /// For `WAIT`: the earliest start at which every window is met.
    pub ready_at: Option<SystemTime>,
    /// An item needs the clinic now (a blood pressure at or above the urgent threshold).
    pub urgent: bool,
    /// Every checklist item, then every screening question, in the order of `Content.checklist`.
    pub items: Vec<ItemResult>,
    /// One reminder per time-window item: schedule them as local notifications.
    pub reminders: Vec<Reminder>,
}

impl From<CoreEvaluation> for Evaluation {
    fn from(e: CoreEvaluation) -> Self {
        Evaluation {
            status: e.status,
            ready_at: e.ready_at.map(to_system_time),
            urgent: e.urgent,
            items: e.items.into_iter().map(ItemResult::from).collect(),
            reminders: e.reminders.into_iter().map(Reminder::from).collect(),
        }
    }
}

/// The judgement of one item.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ItemResult {
    /// Item id.
    pub id: String,
    /// Its state.
    pub state: ItemState,
    /// Why, for the client, in the requested locale.
    pub message: String,
    /// For `WAIT`: the instant from which the item is met.
    pub until: Option<SystemTime>,
    /// The answer needs the clinic's attention now.
    pub urgent: bool,
}

impl From<CoreItemResult> for ItemResult {
    fn from(i: CoreItemResult) -> Self {
        ItemResult {
            id: i.id,
            state: i.state,
            message: i.message,
            until: i.until.map(to_system_time),
            urgent: i.urgent,
        }
    }
}

/// A moment to remind the client of, as a local notification.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Reminder {
    /// The time-window item it belongs to.
    pub id: String,
    /// When the window closes: the client must stop by then.
    pub at: SystemTime,
    /// Notification text.
    pub message: String,
}

impl From<CoreReminder> for Reminder {
    fn from(r: CoreReminder) -> Self {
        Reminder { id: r.id, at: to_system_time(r.at), message: r.message }
    }
}

/// The plan for the time after a session.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Aftercare {
    /// When the session ended.
    pub session_end: SystemTime,
    /// The earliest time driving (or cycling, or machinery) is acceptable.
    pub driving_ok_from: SystemTime,
    /// Side-effect check-ins, in time order.
    pub side_effect_check_ins: Vec<ScheduledPrompt>,
    /// Integration prompts, in time order.
    pub integration: Vec<ScheduledPrompt>,
}

impl From<CoreAftercare> for Aftercare {
    fn from(a: CoreAftercare) -> Self {
        Aftercare {
            session_end: to_system_time(a.session_end),
            driving_ok_from: to_system_time(a.driving_ok_from),
            side_effect_check_ins: a.side_effect_check_ins.into_iter().map(ScheduledPrompt::from).collect(),
            integration: a.integration.into_iter().map(ScheduledPrompt::from).collect(),
        }
    }
}

/// A prompt due at an instant.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ScheduledPrompt {
    /// The pack's prompt id.
    pub id: String,
    /// When it is due.
    pub at: SystemTime,
    /// The prompt, localized.
    pub text: String,
}

impl From<CoreScheduledPrompt> for ScheduledPrompt {
    fn from(p: CoreScheduledPrompt) -> Self {
        ScheduledPrompt { id: p.id, at: to_system_time(p.at), text: p.text }
    }
}

/// Whether the session can start.
#[uniffi::remote(Enum)]
pub enum ReadinessStatus {
    /// Every required item passes: the session may start at the scheduled time.
    Ready,
    /// Nothing fails, but a time window closes after the scheduled start: it may start at `ready_at`.
    Wait,
    /// Some required item has no usable answer.
    Incomplete,
    /// Some item fails: do not start; contact the clinic (never "try later").
    Blocked,
}

/// The state of one checklist item.
#[uniffi::remote(Enum)]
pub enum ItemState {
    /// Met.
    Pass,
    /// Not met: the session must not start; contact the clinic.
    Fail,
    /// Met, but worth attention.
    Warn,
    /// A time window that closes after the scheduled start.
    Wait,
    /// No usable answer yet.
    Unanswered,
}

/// Who made an entry or change.
#[uniffi::remote(Enum)]
pub enum Party {
    /// The client, on one of their devices.
    Client,
    /// The care team at the clinic.
    Clinic,
}
