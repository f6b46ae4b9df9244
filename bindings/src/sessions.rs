//! `Sessions`: scheduling, the pre-session checklist, start and end, aftercare.
//!
//! Every call is one call of core's [`Device`]: the checklist is judged by
//! the core engine against the session's scheduled start and fails closed,
//! and `start` goes through core's gate (the decision is recorded; the
//! session starts only when it is `READY`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use katcore::aftercare::{Aftercare, ScheduledPrompt};
use katcore::checklist::{
    Answer, BloodPressureReading, Evaluation, ItemResult, ItemState, LastTaken, ReadinessStatus, Reminder,
};
use katcore::device::Device;
use katcore::record::{Party, Session as CoreSession};

use crate::error::Result;
use crate::time::{or_now, to_utc, Timestamp, ZonedTimestamp};

/// The client's dosing sessions. Calls block briefly: reads are in memory, writes are
/// durable (on disk) when they return.
#[derive(uniffi::Object)]
pub struct Sessions {
    pub(crate) device: Device,
}

/// One session's pre-session checklist in one locale, from `Sessions.checklist`.
#[derive(uniffi::Object)]
pub struct SessionChecklist {
    device: Device,
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
        Ok(self.device.evaluate(&self.session_id, &self.locale)?)
    }

    /// Records the answer to one item, as `Sessions.answer`. Blocking (a durable write).
    ///
    /// # Errors
    /// As `Sessions.answer`.
    #[uniffi::method(default(at = None))]
    pub fn answer(&self, item_id: String, answer: ChecklistAnswer, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.answer(&self.session_id, &item_id, Some(&answer.into_core()?), or_now("at", at)?)?)
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
        Ok(self.device.schedule(to_utc("start", start)?, &time_zone)?.into())
    }

    /// Moves a session to a new start.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn reschedule(&self, session_id: String, start: SystemTime) -> Result<()> {
        Ok(self.device.reschedule(&session_id, to_utc("start", start)?)?)
    }

    /// Cancels a session (recorded, never removed).
    ///
    /// # Errors
    /// `NotFound`.
    #[uniffi::method(default(at = None))]
    pub fn cancel(&self, session_id: String, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.cancel(&session_id, or_now("at", at)?)?)
    }

    /// Sessions still ahead at `now` (default: the current time), soonest first.
    #[uniffi::method(default(now = None))]
    pub fn upcoming(&self, now: Option<SystemTime>) -> Result<Vec<Session>> {
        Ok(self.device.upcoming(or_now("now", now)?).into_iter().map(Session::from).collect())
    }

    /// Every session, cancelled and past ones included, by scheduled start.
    pub fn all(&self) -> Vec<Session> {
        self.device.sessions().into_iter().map(Session::from).collect()
    }

    /// One session.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn get(&self, session_id: String) -> Result<Session> {
        Ok(self.device.session(&session_id)?.into())
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
        Ok(self.device.answer(&session_id, &item_id, Some(&answer.into_core()?), or_now("at", at)?)?)
    }

    /// Clears the answer to one item.
    ///
    /// # Errors
    /// As `answer`.
    #[uniffi::method(default(at = None))]
    pub fn clear_answer(&self, session_id: String, item_id: String, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.answer(&session_id, &item_id, None, or_now("at", at)?)?)
    }

    /// The session's current answers by item id. Answers that no longer fit the pack in
    /// force are left out (they count as unanswered).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn answers(&self, session_id: String) -> Result<HashMap<String, ChecklistAnswer>> {
        let answers = self.device.answers(&session_id)?;
        Ok(answers.into_iter().map(|(id, answer)| (id, ChecklistAnswer::from(answer))).collect())
    }

    /// Evaluates the checklist: overall readiness, every item's state with a message in
    /// `locale`, and the reminders to schedule as local notifications. Reads only.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn evaluate(&self, session_id: String, locale: String) -> Result<Evaluation> {
        Ok(self.device.evaluate(&session_id, &locale)?)
    }

    /// One session's checklist in `locale`, for the screen that shows it: its `evaluate()`
    /// takes no arguments, the cheapest call for re-evaluating after every answer.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn checklist(&self, session_id: String, locale: String) -> Result<Arc<SessionChecklist>> {
        self.device.session(&session_id)?;
        Ok(Arc::new(SessionChecklist { device: self.device.clone(), session_id, locale }))
    }

    /// Starts the session if its checklist is `READY`. The evaluation is recorded either
    /// way (the clinic sees it; `BLOCKED` raises an alert) and returned.
    ///
    /// # Errors
    /// `NotReady` with the status when it is not `READY` (the session does not start),
    /// `NotFound`, or `InvalidInput` for a cancelled session.
    #[uniffi::method(default(at = None))]
    pub fn start(&self, session_id: String, locale: String, at: Option<SystemTime>) -> Result<Evaluation> {
        Ok(self.device.start(&session_id, &locale, or_now("at", at)?)?)
    }

    /// Ends a started session.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when it never started or `at` is before its start.
    #[uniffi::method(default(at = None))]
    pub fn end(&self, session_id: String, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.end(&session_id, or_now("at", at)?)?)
    }

    /// The plan after an ended session: when driving is acceptable again, the
    /// side-effect check-ins and the integration prompts, in the session's time zone.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when the session has not ended.
    pub fn aftercare(&self, session_id: String, locale: String) -> Result<Aftercare> {
        Ok(self.device.aftercare(&session_id, &locale)?)
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
    /// Core's typed answer. Its shape is the app's (flat cases rather than
    /// core's nested `Answer::Time(LastTaken)`), so it is converted here.
    fn into_core(self) -> Result<Answer> {
        Ok(match self {
            ChecklistAnswer::LastTaken { at } => Answer::Time(LastTaken::At(to_utc("answer.at", at)?.fixed_offset())),
            ChecklistAnswer::NotRecently => Answer::Time(LastTaken::NotRecently),
            ChecklistAnswer::BloodPressure { systolic, diastolic } => {
                Answer::BloodPressure(BloodPressureReading { systolic, diastolic })
            }
            ChecklistAnswer::YesNo { value } => Answer::YesNo(value),
            ChecklistAnswer::Choice { value } => Answer::Choice(value),
            ChecklistAnswer::Text { value } => Answer::Text(value),
        })
    }
}

impl From<Answer> for ChecklistAnswer {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Time(LastTaken::At(at)) => ChecklistAnswer::LastTaken { at: at.into() },
            Answer::Time(LastTaken::NotRecently) => ChecklistAnswer::NotRecently,
            Answer::BloodPressure(BloodPressureReading { systolic, diastolic }) => {
                ChecklistAnswer::BloodPressure { systolic, diastolic }
            }
            Answer::YesNo(value) => ChecklistAnswer::YesNo { value },
            Answer::Choice(value) => ChecklistAnswer::Choice { value },
            Answer::Text(value) => ChecklistAnswer::Text { value },
        }
    }
}

/// A dosing session. The app's shape of core's `Session`: a cancellation is
/// its instant (`cancelledAt`), as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Scheduled start.
    pub scheduled_start: ZonedTimestamp,
    /// The client's IANA time zone for this session.
    pub time_zone: String,
    /// Who scheduled it.
    pub scheduled_by: Party,
    /// When it started, once started.
    pub started_at: Option<ZonedTimestamp>,
    /// When it ended, once ended.
    pub ended_at: Option<ZonedTimestamp>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<Timestamp>,
    /// Other starts written concurrently (e.g. the clinic moved it while this phone was
    /// offline and also moved it): show them so someone settles it.
    pub conflicting_starts: Vec<ZonedTimestamp>,
}

impl From<CoreSession> for Session {
    fn from(s: CoreSession) -> Self {
        Session {
            id: s.id,
            scheduled_start: s.scheduled_start,
            time_zone: s.time_zone,
            scheduled_by: s.scheduled_by,
            started_at: s.started_at,
            ended_at: s.ended_at,
            cancelled_at: s.cancelled.map(|c| c.at),
            conflicting_starts: s.conflicting_starts,
        }
    }
}

/// The checklist's verdict for a session.
#[uniffi::remote(Record)]
pub struct Evaluation {
    /// Overall status.
    pub status: ReadinessStatus,
    /// For `WAIT`: the earliest start at which every window is met.
    pub ready_at: Option<ZonedTimestamp>,
    /// An item needs the clinic now (a blood pressure at or above the urgent threshold).
    pub urgent: bool,
    /// Every checklist item, then every screening question, in the order of `Content.checklist`.
    pub items: Vec<ItemResult>,
    /// One reminder per time-window item: schedule them as local notifications.
    pub reminders: Vec<Reminder>,
}

/// The judgement of one item.
#[uniffi::remote(Record)]
pub struct ItemResult {
    /// Item id.
    pub id: String,
    /// Its state.
    pub state: ItemState,
    /// Why, for the client, in the requested locale.
    pub message: String,
    /// For `WAIT`: the instant from which the item is met.
    pub until: Option<ZonedTimestamp>,
    /// The answer needs the clinic's attention now.
    pub urgent: bool,
}

/// A moment to remind the client of, as a local notification.
#[uniffi::remote(Record)]
pub struct Reminder {
    /// The time-window item it belongs to.
    pub id: String,
    /// When the window closes: the client must stop by then.
    pub at: ZonedTimestamp,
    /// Notification text.
    pub message: String,
}

/// The plan for the time after a session.
#[uniffi::remote(Record)]
pub struct Aftercare {
    /// When the session ended.
    pub session_end: ZonedTimestamp,
    /// The earliest time driving (or cycling, or machinery) is acceptable: the
    /// pack's morning hour after the session, and at least its minimum interval.
    pub driving_ok_from: ZonedTimestamp,
    /// Side-effect check-ins, in time order.
    pub side_effect_check_ins: Vec<ScheduledPrompt>,
    /// Integration prompts, in time order.
    pub integration: Vec<ScheduledPrompt>,
}

/// A prompt due at an instant.
#[uniffi::remote(Record)]
pub struct ScheduledPrompt {
    /// The pack's prompt id.
    pub id: String,
    /// When it is due.
    pub at: ZonedTimestamp,
    /// The prompt, localized.
    pub text: String,
    /// True for a check-in inside the client's quiet hours kept for a monitor
    /// who is awake: deliver it silently and do not chase an answer.
    pub optional: bool,
    /// When it would have been due had it not been moved out of the quiet hours.
    pub moved_from: Option<ZonedTimestamp>,
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
