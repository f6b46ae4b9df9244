//! The typed views the record API returns, and the inputs it takes.
//!
//! These are plain data: serializable, so the clinic can export a record as
//! JSON and the bindings can map them one-to-one.

use chrono::{DateTime, FixedOffset, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::checklist::{BloodPressureReading, ItemState, ReadinessStatus};
use crate::instruments::{Band, InstrumentKind};

/// Who made an entry or change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The client, on one of their devices.
    Client,
    /// The care team at the clinic.
    Clinic,
}

/// A dosing session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    /// Identifier.
    pub id: String,
    /// Scheduled start.
    pub scheduled_start: DateTime<FixedOffset>,
    /// The client's IANA time zone for this session.
    pub time_zone: String,
    /// Who scheduled it.
    pub scheduled_by: Party,
    /// When it actually started, once started.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// When it ended, once ended.
    pub ended_at: Option<DateTime<FixedOffset>>,
    /// When and by whom it was cancelled, if it was.
    pub cancelled: Option<Deletion>,
    /// Other scheduled starts written concurrently (e.g. the clinic moved the
    /// session while the client's phone was offline and also moved it); the
    /// app can show them so someone settles it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicting_starts: Vec<DateTime<FixedOffset>>,
}

/// A stored readiness decision: the audit trail of what the engine said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadinessRecord {
    /// Identifier.
    pub id: String,
    /// The session it is for.
    pub session_id: String,
    /// When it was evaluated.
    pub evaluated_at: DateTime<Utc>,
    /// The pack it was evaluated against.
    pub pack_id: String,
    /// That pack's version.
    pub pack_version: u32,
    /// The overall status.
    pub status: ReadinessStatus,
    /// For `wait`: the earliest possible start.
    pub ready_at: Option<DateTime<FixedOffset>>,
    /// Whether an item was urgent.
    pub urgent: bool,
    /// Every item's state, in pack order.
    pub items: Vec<(String, ItemState)>,
    /// The answers it was made from: the ids of the answer entries (`h:<id>`
    /// in the session, each naming its item) current when it was recorded,
    /// by item id. An item unanswered then, or whose current answer had no
    /// entry (written by a format-1 app), has none; decisions recorded
    /// before format 2 name none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
}

/// One checklist answer as it was given: immutable, kept for good. The
/// current answer of an item is the latest of its answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnswerRecord {
    /// The answer entry's id (`h:<id>` in its session); `None` for an answer
    /// only a format-1 writer stored (in the session's `a:<item>` field).
    pub id: Option<String>,
    /// The checklist item it answers.
    pub item_id: String,
    /// The value as the pack's item reads it; `null` cleared the answer.
    pub value: serde_json::Value,
    /// When it was given (`None` for a format-1 value without a readable time).
    pub at: Option<DateTime<FixedOffset>>,
}

/// A blood-pressure reading taken at some time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Vitals {
    /// Identifier.
    pub id: String,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The reading.
    pub reading: BloodPressureReading,
    /// The session it belongs to, if any.
    pub session_id: Option<String>,
    /// At or above the pack's urgent threshold when recorded.
    pub urgent: bool,
}

/// How bad a side effect is, as the client judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Noticeable, not troubling.
    Mild,
    /// Troubling.
    Moderate,
    /// Severe: flagged urgent for the clinic.
    Severe,
}

/// A reported side effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SideEffectReport {
    /// Identifier.
    pub id: String,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// The pack's side-effect id.
    pub effect_id: String,
    /// Severity.
    pub severity: Severity,
    /// The session it follows, if any.
    pub session_id: Option<String>,
    /// Severe, or a side effect the pack says to always report.
    pub urgent: bool,
}

/// What a check-in recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckInKind {
    /// A PHQ-9 or GAD-7 questionnaire.
    Instrument {
        /// Which one.
        instrument: InstrumentKind,
        /// The answers, 0–3 each.
        answers: Vec<u8>,
        /// Their sum.
        total: u8,
        /// Severity band.
        band: Band,
    },
    /// A daily mood rating, 0 (worst) to 10 (best).
    Mood {
        /// The rating.
        score: u8,
    },
}

/// A completed check-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckIn {
    /// Identifier.
    pub id: String,
    /// When it was completed.
    pub completed_at: DateTime<Utc>,
    /// What was recorded.
    #[serde(flatten)]
    pub kind: CheckInKind,
    /// Needs prompt clinical review (PHQ-9 item 9 above 0).
    pub urgent: bool,
}

/// What to record in a check-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckInInput {
    /// A questionnaire with its answers.
    Instrument(InstrumentKind, Vec<u8>),
    /// A daily mood rating, 0–10.
    Mood(u8),
}

/// An explicit, recorded deletion or cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deletion {
    /// When.
    pub at: DateTime<Utc>,
    /// By whom.
    pub by: Party,
}

/// A journal entry, shared or private.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntry {
    /// Identifier.
    pub id: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// The text.
    pub text: String,
    /// Texts written concurrently on other devices. Nothing is lost: the app
    /// shows them and the client's next edit settles the entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicting_texts: Vec<String>,
    /// The integration prompt it answers, if any.
    pub prompt_id: Option<String>,
    /// The session it relates to, if any.
    pub session_id: Option<String>,
    /// True when it lives only on this device and never syncs.
    pub private: bool,
}

impl JournalEntry {
    /// The (session id, prompt id) of the integration prompt it answers, if it answers one.
    pub fn prompt_link(&self) -> Option<(String, String)> {
        Some((self.session_id.clone()?, self.prompt_id.clone()?))
    }
}

/// Links from a new journal entry to what it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalLinks {
    /// The integration prompt it answers.
    pub prompt_id: Option<String>,
    /// The session it relates to.
    pub session_id: Option<String>,
}

/// A clinician's note on the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClinicianNote {
    /// Identifier.
    pub id: String,
    /// When it was written.
    pub written_at: DateTime<Utc>,
    /// The clinician's display name.
    pub author: String,
    /// The note.
    pub text: String,
}

/// The pack version the clinic assigned to this client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PackAssignment {
    /// Pack id.
    pub pack_id: String,
    /// Pack version.
    pub version: u32,
    /// When it was assigned.
    pub assigned_at: DateTime<Utc>,
}

/// Why an item is urgent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UrgentKind {
    /// A readiness decision was `blocked`.
    ChecklistBlocked,
    /// A blood pressure at or above the urgent threshold.
    UrgentBloodPressure,
    /// A severe side effect, or one the pack says always to report.
    SideEffect,
    /// A check-in that needs prompt review (PHQ-9 item 9).
    CrisisCheckIn,
    /// A session was started without a `ready` readiness decision.
    StartedNotReady,
    /// A PHQ-9 or GAD-7 total at or above the pack's severe threshold.
    SevereScore,
    /// A PHQ-9 or GAD-7 total risen over the client's baseline by the pack's margin or more.
    ScoreWorsened,
}

/// An item the clinic must see first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UrgentItem {
    /// Stable key of the underlying entry (what an acknowledgement names).
    pub key: String,
    /// What kind of item.
    pub kind: UrgentKind,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The session it relates to, if any.
    pub session_id: Option<String>,
    /// Set once a clinician acknowledged it.
    pub acknowledged: Option<Acknowledgement>,
}

/// A clinician's acknowledgement of an urgent item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Acknowledgement {
    /// When.
    pub at: DateTime<Utc>,
    /// The clinician's display name.
    pub by: String,
    /// What the clinician did about it, one of the outcomes of
    /// docs/record-format.md (`spoke_with_client`, `no_answer`…); absent
    /// from acknowledgements written before outcomes existed. Readers
    /// show an outcome they do not know as it is. Clinic only: devices
    /// read past it (the mobile library leaves the field out).
    #[cfg(feature = "clinic")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The clinician's note on it, if any (clinic only, as `outcome`).
    #[cfg(feature = "clinic")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Acknowledgement {
    /// An acknowledgement by `by` at `at`, with no outcome or note.
    pub fn new(by: &str, at: DateTime<Utc>) -> Acknowledgement {
        Acknowledgement {
            at,
            by: by.to_owned(),
            #[cfg(feature = "clinic")]
            outcome: None,
            #[cfg(feature = "clinic")]
            note: None,
        }
    }
}

/// An integration prompt that is due and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuePrompt {
    /// The session it follows.
    pub session_id: String,
    /// The pack's prompt id.
    pub prompt_id: String,
    /// When it became due.
    pub due_at: DateTime<FixedOffset>,
    /// The prompt text in the requested locale.
    pub text: String,
}

/// A session as the clinic's record view shows it: with its current answers
/// and its readiness decisions.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SessionView {
    /// The session.
    #[serde(flatten)]
    pub session: Session,
    /// Current answers by checklist item id (the latest of concurrent ones).
    pub answers: serde_json::Map<String, serde_json::Value>,
    /// Every answer ever given, oldest first: a reading a later answer
    /// replaced is still here.
    pub answer_history: Vec<AnswerRecord>,
    /// Readiness decisions, oldest first.
    pub readiness: Vec<ReadinessRecord>,
}

/// The whole record as the clinic shows it to clinicians
/// (`GET /v1/clients/{client_id}/record`).
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct RecordView {
    /// Every session, by scheduled start.
    pub sessions: Vec<SessionView>,
    /// Shared journal entries that are not deleted, newest first.
    pub journal: Vec<JournalEntry>,
    /// Blood-pressure readings, oldest first.
    pub vitals: Vec<Vitals>,
    /// Side-effect reports, oldest first.
    pub side_effects: Vec<SideEffectReport>,
    /// Check-ins, oldest first.
    pub check_ins: Vec<CheckIn>,
    /// Clinician notes, oldest first.
    pub clinician_notes: Vec<ClinicianNote>,
    /// The pack version the clinic assigned, if any.
    pub assigned_pack: Option<PackAssignment>,
    /// Urgent items under the pack the view was made with, newest first.
    pub urgent_items: Vec<UrgentItem>,
    /// Entries this version cannot read, with why (never silently left out).
    pub unreadable_entries: Vec<crate::record::UnreadableEntry>,
}

impl RecordView {
    /// Keeps only what happened in `[since, until)` (either bound may be
    /// open) and, of each list, the `limit` most recent items; returns the
    /// names of the lists that had more than `limit` in the window, so that a
    /// reader asks again for a narrower window and nothing is silently left
    /// out. Sessions are placed by their scheduled start; unreadable entries,
    /// which carry no time, are always kept whole.
    pub fn window(
        &mut self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<&'static str> {
        let inside = |at: DateTime<Utc>| since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u);
        let mut truncated = Vec::new();
        fn keep<T>(
            name: &'static str,
            list: &mut Vec<T>,
            at: impl Fn(&T) -> DateTime<Utc>,
            inside: &impl Fn(DateTime<Utc>) -> bool,
            limit: usize,
            truncated: &mut Vec<&'static str>,
        ) {
            list.retain(|item| inside(at(item)));
            if list.len() > limit {
                // Keep the newest `limit`, in the list's own order.
                let mut times: Vec<DateTime<Utc>> = list.iter().map(&at).collect();
                times.sort_unstable();
                let cutoff = times[times.len() - limit];
                let mut ties = limit - times.iter().filter(|t| **t > cutoff).count();
                list.retain(|item| {
                    let at = at(item);
                    let tie = at == cutoff && ties > 0;
                    ties -= usize::from(tie);
                    at > cutoff || tie
                });
                truncated.push(name);
            }
        }
        keep(
            "sessions",
            &mut self.sessions,
            |s| s.session.scheduled_start.with_timezone(&Utc),
            &inside,
            limit,
            &mut truncated,
        );
        keep("journal", &mut self.journal, |e| e.created_at, &inside, limit, &mut truncated);
        keep("vitals", &mut self.vitals, |v| v.taken_at, &inside, limit, &mut truncated);
        keep("side_effects", &mut self.side_effects, |e| e.reported_at, &inside, limit, &mut truncated);
        keep("check_ins", &mut self.check_ins, |c| c.completed_at, &inside, limit, &mut truncated);
        keep("clinician_notes", &mut self.clinician_notes, |n| n.written_at, &inside, limit, &mut truncated);
        keep("urgent_items", &mut self.urgent_items, |i| i.at, &inside, limit, &mut truncated);
        truncated
    }
}
