//! The care record: one client's whole history as an Automerge document.
//!
//! Everything a client does between visits (sessions, checklist answers and
//! readiness decisions, vitals, side effects, check-ins, journal entries) and
//! what the clinic adds (sessions, notes, a pack assignment, acknowledgements
//! of urgent items) lives in one [`CareRecord`]. Phone, tablet and clinic
//! each hold a replica, edit it offline and merge without conflicts.
//!
//! Callers use typed methods only. The document layout, for sync peers and
//! anyone reading the bytes with another Automerge implementation:
//!
//! - Every entry lives under its own root key, `<prefix>:<id>`, with a
//!   random 128-bit hex id, so replicas never create the same container
//!   twice and never collide on ids.
//! - Entries that never change after they are written — vitals (`v:`), side
//!   effects (`e:`), check-ins (`c:`), clinician notes (`n:`), readiness
//!   decisions (`r:`) and acknowledgements (`k:<urgent key>`) — are a single
//!   JSON string. Few operations keep loading fast.
//! - Sessions (`s:`) and journal entries (`j:`) are maps whose fields change
//!   independently: the clinic can move a session while the phone records
//!   answers (`a:<item id>` fields, each `{"value", "at"}`).
//! - Journal text is a string register, not an Automerge `Text` object (which
//!   loads an order of magnitude slower). Concurrent edits of one entry are
//!   all kept by Automerge as conflicting values; reads return the winner and
//!   the others as [`JournalEntry::conflicting_texts`], so no words are lost,
//!   and the next edit settles the entry.
//! - Nothing is ever removed by a merge: deletion and cancellation are
//!   recorded fields (`deleted`, `cancelled`).

mod authority;
mod chunks;
mod model;
mod schema;
mod unreadable;
mod urgency;

use std::collections::BTreeSet;
use std::collections::HashSet;
use std::ops::Range;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef, ROOT,
};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::checklist::{evaluate, Answers, BloodPressureReading, Evaluation, ReadinessStatus};
use crate::instruments::score;
use crate::pack::Pack;
pub use authority::{
    check_changes, may_cancel, may_move, Rule, Violation, Writer, MAX_NEW_ENTRIES_PER_CHECK, MAX_OPS_PER_CHECK,
    MAX_UNKNOWN_FIELD_BYTES, MAX_VALUE_BYTES,
};
pub use chunks::{split_chunks, Chunk, ChunkKind, MAX_INFLATED_BYTES};
pub use model::*;
pub use schema::{json_schema, view_json_schema, RECORD_FORMAT_VERSION};
pub use unreadable::UnreadableEntry;
pub use urgency::touched_entries;

/// Longest journal entry or note accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// How long an unanswered integration prompt stays due.
pub const DUE_PROMPT_WINDOW: Duration = Duration::days(7);
/// A session stays "upcoming" this long after its scheduled start if it was never started.
pub const UPCOMING_GRACE: Duration = Duration::hours(6);

const SESSION: &str = "s:";
/// The prefix of a session's root key (`s:<id>`), for readers of
/// [`touched_entries`].
pub const SESSION_PREFIX: &str = SESSION;
const JOURNAL: &str = "j:";
const VITALS: &str = "v:";
const SIDE_EFFECT: &str = "e:";
const CHECK_IN: &str = "c:";
const NOTE: &str = "n:";
const READINESS: &str = "r:";
const ACK: &str = "k:";
const PACK: &str = "assigned_pack";

/// Why a record operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The named entry does not exist (or was deleted).
    #[error("no {kind} with id {id}")]
    NotFound {
        /// `session`, `journal entry`, `urgent item`, …
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// An argument was not acceptable.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: String,
        /// What was wrong, without repeating the value.
        reason: String,
    },
    /// The writer may not make this change (see [`may_move`], [`may_cancel`]).
    #[error("{field}: {reason}")]
    NotPermitted {
        /// Which field.
        field: String,
        /// Why, without repeating a value.
        reason: String,
    },
    /// Changes from another replica make a write their writer may not make
    /// (see [`check_changes`]); none of them was applied.
    #[error("a change was refused: {0}")]
    Refused(Violation),
    /// The bytes are not a readable Automerge document.
    #[error("the record could not be read: {reason}")]
    Malformed {
        /// What Automerge reported.
        reason: String,
    },
}

impl From<AutomergeError> for RecordError {
    fn from(e: AutomergeError) -> Self {
        RecordError::Malformed { reason: e.to_string() }
    }
}

/// Runs an Automerge load of bytes from outside (a peer, the disk), after
/// [`chunks::refuse_bundles`], turning a panic into [`RecordError::Malformed`].
///
/// Automerge 0.12 panics on some malformed chunks instead of answering an
/// error: an `unwrap` in the column decoder of its `hexane` dependency
/// (`hexane` 1.0.0-alpha.5, `src/lib.rs:354`) on a truncated LEB128 number
/// in a bundle chunk, reached from `Automerge::load` and `load_incremental`
/// before the chunk's checksum is checked. Found by the `record_load` fuzz
/// target (`fuzz/regressions/record_load/`). Automerge parses every chunk
/// before applying any, so such a panic leaves the document as it was.
fn parse_untrusted<T>(bytes: &[u8], load: impl FnOnce() -> Result<T, AutomergeError>) -> Result<T, RecordError> {
    chunks::refuse_bundles(bytes)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)) {
        Ok(result) => Ok(result?),
        Err(_) => Err(RecordError::Malformed { reason: "a chunk could not be decoded".into() }),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> RecordError {
    RecordError::InvalidInput { field: field.to_owned(), reason: reason.into() }
}

/// One client's care record.
#[derive(Debug, Clone)]
pub struct CareRecord {
    doc: Automerge,
}

impl Default for CareRecord {
    fn default() -> Self {
        CareRecord::new(ActorId::random())
    }
}

impl CareRecord {
    /// An empty record whose changes are attributed to `actor`.
    pub fn new(actor: ActorId) -> Self {
        CareRecord { doc: Automerge::new().with_actor(actor) }
    }

    /// Loads a record from saved bytes (a whole document, or concatenated changes).
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when the bytes are not an Automerge document
    /// or lack changes they depend on.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, RecordError> {
        chunks::refuse_bombs(bytes)?;
        let mut record = CareRecord { doc: parse_untrusted(bytes, || Automerge::load(bytes))?.with_actor(actor) };
        record.check_complete()?;
        Ok(record)
    }

    /// Loads a snapshot followed by incremental change blobs.
    ///
    /// # Errors
    /// As [`CareRecord::load`].
    pub fn load_parts<'a>(
        snapshot: Option<&[u8]>,
        changes: impl IntoIterator<Item = &'a [u8]>,
        actor: ActorId,
    ) -> Result<Self, RecordError> {
        let doc = match snapshot {
            Some(bytes) => parse_untrusted(bytes, || Automerge::load(bytes))?,
            None => Automerge::new(),
        };
        let mut record = CareRecord { doc: doc.with_actor(actor) };
        for change in changes {
            parse_untrusted(change, || record.doc.load_incremental(change))?;
        }
        record.check_complete()?;
        Ok(record)
    }

    fn check_complete(&mut self) -> Result<(), RecordError> {
        if self.doc.get_missing_deps(&[]).is_empty() {
            Ok(())
        } else {
            Err(RecordError::Malformed { reason: "changes are missing from the record".into() })
        }
    }

    /// The underlying document, for the sync layer. Read-only: every edit
    /// goes through the typed methods.
    pub fn document(&self) -> &Automerge {
        &self.doc
    }

    /// The actor this replica's changes are attributed to.
    pub fn actor(&self) -> &ActorId {
        self.doc.get_actor()
    }

    /// The current heads (hashes of the latest changes).
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The whole record, compacted.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made since `heads`, as one incremental blob.
    pub fn save_after(&self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Merges changes from another replica (a saved document or change blobs).
    /// Applying the same changes twice changes nothing.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when the bytes cannot be read; the record is unchanged.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        chunks::refuse_bombs(bytes)?;
        parse_untrusted(bytes, || self.doc.load_incremental(bytes))?;
        Ok(())
    }

    /// The changes in `bytes` (a saved document, change chunks, or both) that
    /// this record does not have yet, each once: what merging them would add.
    /// Check them with [`check_changes`] before [`CareRecord::apply_changes`].
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when the bytes do not frame or decode.
    pub fn new_changes(&self, bytes: &[u8]) -> Result<Vec<Change>, RecordError> {
        chunks::new_changes(&self.doc, bytes)
    }

    /// Applies changes decoded by [`CareRecord::new_changes`]. Changes whose
    /// dependencies are missing wait inside Automerge until they arrive.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when Automerge refuses them; the caller
    /// must then treat the record as unknown (reload it).
    pub fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), RecordError> {
        let doc = &mut self.doc;
        chunks::contained(|| doc.apply_changes(changes).map_err(|e| e.to_string()))
    }

    /// Merges another in-memory replica.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] if the documents cannot be merged.
    pub fn merge(&mut self, other: &CareRecord) -> Result<(), RecordError> {
        let mut other = other.doc.clone();
        self.doc.merge(&mut other)?;
        Ok(())
    }

    fn change<O>(
        &mut self,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, RecordError>,
    ) -> Result<O, RecordError> {
        self.doc.transact(f).map(|success| success.result).map_err(|failure| failure.error)
    }

    // ----- sessions -------------------------------------------------------

    /// Schedules a session; returns its id.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an unknown time zone.
    pub fn schedule_session(
        &mut self,
        start: DateTime<FixedOffset>,
        time_zone: &str,
        by: Party,
    ) -> Result<String, RecordError> {
        crate::aftercare::parse_time_zone(time_zone).map_err(|e| invalid("time_zone", e.to_string()))?;
        let id = new_id();
        let key = format!("{SESSION}{id}");
        self.change(|tx| {
            let obj = tx.put_object(ROOT, &key, ObjType::Map)?;
            tx.put(&obj, "start", start.to_rfc3339())?;
            tx.put(&obj, "tz", time_zone)?;
            tx.put(&obj, "by", party_str(by))?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Moves a session to a new start, as `by` (see [`may_move`]: a client
    /// may postpone a session the clinic scheduled, never bring it forward).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session,
    /// [`RecordError::NotPermitted`] for a move `by` may not make.
    pub fn move_session(
        &mut self,
        session_id: &str,
        start: DateTime<FixedOffset>,
        by: Party,
    ) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        let starts = std::iter::once(session.scheduled_start).chain(session.conflicting_starts);
        if starts.into_iter().any(|from| !may_move(by, session.scheduled_by, from, start)) {
            return Err(RecordError::NotPermitted {
                field: "start".into(),
                reason: "the clinic scheduled this session: it can be postponed here, never brought forward".into(),
            });
        }
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "start", start.to_rfc3339())?))
    }

    /// Cancels a session (recorded, never removed), as `by` (see [`may_cancel`]).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session,
    /// [`RecordError::NotPermitted`] when a client cancels a session the clinic scheduled.
    pub fn cancel_session(&mut self, session_id: &str, by: Party, at: DateTime<Utc>) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        if !may_cancel(by, session.scheduled_by) {
            return Err(RecordError::NotPermitted {
                field: "cancelled".into(),
                reason: "the clinic scheduled this session: only the clinic can cancel it".into(),
            });
        }
        let obj = self.session_obj(session_id)?;
        let value = to_json_string(&Deletion { at, by });
        self.change(|tx| Ok(tx.put(&obj, "cancelled", value)?))
    }

    /// Records (or, with `null`, clears) one checklist answer for a session.
    ///
    /// The answer is checked against `pack` first; answers are kept per item
    /// with the instant they were given, and the latest wins on merge.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session, and
    /// [`RecordError::InvalidInput`] naming the item for an answer that does
    /// not fit it.
    pub fn record_answer(
        &mut self,
        pack: &Pack,
        session_id: &str,
        item_id: &str,
        value: &Value,
        at: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let obj = self.session_obj(session_id)?;
        Answers::new()
            .set(pack, item_id, value)
            .map_err(|e| invalid(&format!("answers.{item_id}"), strip_field(&e.to_string())))?;
        let stored = json!({"value": value, "at": at}).to_string();
        self.change(|tx| Ok(tx.put(&obj, format!("a:{item_id}"), stored)?))
    }

    /// Stores the engine's decision for a session, with the pack it was
    /// evaluated against and when: the audit trail. Returns its id.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn record_readiness(
        &mut self,
        session_id: &str,
        evaluation: &Evaluation,
        pack: &Pack,
        at: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        self.session_obj(session_id)?;
        let record = ReadinessRecord {
            id: new_id(),
            session_id: session_id.to_owned(),
            evaluated_at: at,
            pack_id: pack.id.clone(),
            pack_version: pack.version,
            status: evaluation.status,
            ready_at: evaluation.ready_at,
            urgent: evaluation.urgent,
            items: evaluation.items.iter().map(|i| (i.id.clone(), i.state)).collect(),
        };
        self.put_entry(READINESS, &record.id.clone(), &record)
    }

    /// The safety gate: evaluates the session's checklist with `pack`
    /// afresh, records the decision (the audit trail the clinic sees; a
    /// `blocked` one raises an alert there) and starts the session at `at`
    /// only when the decision is `ready`. Returns the decision either way:
    /// a caller reports any other status as "not ready" (the device does,
    /// with `DeviceError::NotReady`). Nothing else in the crate starts a
    /// session.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when the
    /// session was cancelled (then nothing is recorded).
    pub fn try_start_session(
        &mut self,
        pack: &Pack,
        session_id: &str,
        locale: &str,
        at: DateTime<FixedOffset>,
    ) -> Result<Evaluation, RecordError> {
        // Checked before the decision is recorded, so a refusal writes nothing.
        self.check_startable(session_id)?;
        let evaluation = self.evaluate_session(pack, session_id, locale)?;
        self.record_readiness(session_id, &evaluation, pack, at.to_utc())?;
        if evaluation.status == ReadinessStatus::Ready {
            self.start_session(session_id, at)?;
        }
        Ok(evaluation)
    }

    fn check_startable(&self, session_id: &str) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        if session.cancelled.is_some() {
            return Err(invalid("session_id", "the session was cancelled"));
        }
        Ok(())
    }

    /// Marks a session started, unconditionally: only
    /// [`CareRecord::try_start_session`] (and the crate's tests) call it.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when it was cancelled.
    pub(crate) fn start_session(&mut self, session_id: &str, at: DateTime<FixedOffset>) -> Result<(), RecordError> {
        self.check_startable(session_id)?;
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "started_at", at.to_rfc3339())?))
    }

    /// Marks a session ended.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when it was
    /// never started or `at` is before its start.
    pub fn end_session(&mut self, session_id: &str, at: DateTime<FixedOffset>) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        match session.started_at {
            None => return Err(invalid("session_id", "the session has not started")),
            Some(started) if at < started => return Err(invalid("ended_at", "is before the session started")),
            Some(_) => {}
        }
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "ended_at", at.to_rfc3339())?))
    }

    // ----- entries --------------------------------------------------------

    /// Adds a blood-pressure reading; returns its id. Readings at or above
    /// the pack's urgent threshold are flagged urgent.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an implausible reading or unknown session.
    pub fn add_vitals(
        &mut self,
        pack: &Pack,
        reading: BloodPressureReading,
        taken_at: DateTime<Utc>,
        session_id: Option<&str>,
    ) -> Result<String, RecordError> {
        if !reading.is_plausible() {
            return Err(invalid("reading", "is not a plausible blood pressure"));
        }
        self.check_session_link(session_id)?;
        let limit = pack.thresholds.bp_urgent;
        let vitals = Vitals {
            id: new_id(),
            taken_at,
            reading,
            session_id: session_id.map(str::to_owned),
            urgent: reading.systolic >= limit.systolic || reading.diastolic >= limit.diastolic,
        };
        self.put_entry(VITALS, &vitals.id.clone(), &vitals)
    }

    /// Reports a side effect from the pack's list; returns its id. Severe
    /// reports, and side effects the pack says always to report, are urgent.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an effect the pack does not list or an unknown session.
    pub fn report_side_effect(
        &mut self,
        pack: &Pack,
        effect_id: &str,
        severity: Severity,
        reported_at: DateTime<Utc>,
        session_id: Option<&str>,
    ) -> Result<String, RecordError> {
        let effect = pack
            .side_effects
            .iter()
            .find(|e| e.id == effect_id)
            .ok_or_else(|| invalid("effect_id", "is not a side effect in the active pack"))?;
        self.check_session_link(session_id)?;
        let report = SideEffectReport {
            id: new_id(),
            reported_at,
            effect_id: effect_id.to_owned(),
            severity,
            session_id: session_id.map(str::to_owned),
            urgent: severity == Severity::Severe || effect.always_report,
        };
        self.put_entry(SIDE_EFFECT, &report.id.clone(), &report)
    }

    /// Records a check-in; returns it (scored, with its id).
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for answers that do not fit the
    /// questionnaire or a mood outside 0–10.
    pub fn add_check_in(&mut self, input: CheckInInput, completed_at: DateTime<Utc>) -> Result<CheckIn, RecordError> {
        let (kind, urgent) = match input {
            CheckInInput::Instrument(instrument, answers) => {
                let s = score(instrument, &answers).map_err(|e| invalid("answers", e.to_string()))?;
                (CheckInKind::Instrument { instrument, answers, total: s.total, band: s.band }, s.urgent)
            }
            CheckInInput::Mood(score) if score <= 10 => (CheckInKind::Mood { score }, false),
            CheckInInput::Mood(_) => return Err(invalid("mood", "must be from 0 to 10")),
        };
        let check_in = CheckIn { id: new_id(), completed_at, kind, urgent };
        self.put_entry(CHECK_IN, &check_in.id.clone(), &check_in)?;
        Ok(check_in)
    }

    /// Writes a shared journal entry; returns its id. (Private entries never
    /// enter the record: the store keeps them, see `CareStore`.)
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for empty or over-long text or an unknown session.
    pub fn write_journal_entry(
        &mut self,
        text: &str,
        links: &JournalLinks,
        created_at: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        self.check_journal_entry(text, links)?;
        let id = new_id();
        let key = format!("{JOURNAL}{id}");
        self.change(|tx| {
            let obj = tx.put_object(ROOT, &key, ObjType::Map)?;
            tx.put(&obj, "created_at", created_at.to_rfc3339())?;
            tx.put(&obj, "text", text)?;
            if let Some(prompt) = &links.prompt_id {
                tx.put(&obj, "prompt_id", prompt.as_str())?;
            }
            if let Some(session) = &links.session_id {
                tx.put(&obj, "session_id", session.as_str())?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Checks a journal entry's text and links as [`CareRecord::write_journal_entry`] does.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for empty or over-long text or an unknown session.
    pub fn check_journal_entry(&self, text: &str, links: &JournalLinks) -> Result<(), RecordError> {
        check_text("text", text)?;
        self.check_session_link(links.session_id.as_deref())
    }

    /// Replaces a journal entry's text (settling any concurrent versions).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown or deleted entry,
    /// [`RecordError::InvalidInput`] for empty or over-long text.
    pub fn edit_journal_entry(&mut self, id: &str, text: &str, at: DateTime<Utc>) -> Result<(), RecordError> {
        check_text("text", text)?;
        let obj = self.live_journal_obj(id)?;
        self.change(|tx| {
            tx.put(&obj, "text", text)?;
            tx.put(&obj, "edited_at", at.to_rfc3339())?;
            Ok(())
        })
    }

    /// Deletes a journal entry: recorded, so every replica hides it; its text
    /// stays in the history.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown or already deleted entry.
    pub fn delete_journal_entry(&mut self, id: &str, by: Party, at: DateTime<Utc>) -> Result<(), RecordError> {
        let obj = self.live_journal_obj(id)?;
        let value = to_json_string(&Deletion { at, by });
        self.change(|tx| Ok(tx.put(&obj, "deleted", value)?))
    }

    /// Adds a clinician's note; returns its id.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an empty author or empty or over-long text.
    pub fn add_clinician_note(&mut self, author: &str, text: &str, at: DateTime<Utc>) -> Result<String, RecordError> {
        if author.trim().is_empty() {
            return Err(invalid("author", "must not be empty"));
        }
        check_text("text", text)?;
        let note = ClinicianNote { id: new_id(), written_at: at, author: author.to_owned(), text: text.to_owned() };
        self.put_entry(NOTE, &note.id.clone(), &note)
    }

    /// Records the pack version the clinic assigned to this client.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an empty pack id or version 0.
    pub fn assign_pack(&mut self, pack_id: &str, version: u32, at: DateTime<Utc>) -> Result<(), RecordError> {
        if pack_id.is_empty() || version == 0 {
            return Err(invalid("pack", "needs an id and a version of 1 or more"));
        }
        let value = to_json_string(&PackAssignment { pack_id: pack_id.to_owned(), version, assigned_at: at });
        self.change(|tx| Ok(tx.put(ROOT, PACK, value)?))
    }

    /// Acknowledges an urgent item (by its [`UrgentItem::key`]).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] when no urgent item has that key.
    pub fn acknowledge(&mut self, key: &str, by: &str, at: DateTime<Utc>) -> Result<(), RecordError> {
        if !self.urgent_items().iter().any(|item| item.key == key) {
            return Err(not_found("urgent item", key));
        }
        let value = to_json_string(&Acknowledgement { at, by: by.to_owned() });
        let ack_key = format!("{ACK}{key}");
        self.change(|tx| Ok(tx.put(ROOT, &ack_key, value)?))
    }

    // ----- reads ----------------------------------------------------------

    /// Every session, cancelled ones included, by scheduled start.
    pub fn sessions(&self) -> Vec<Session> {
        let mut sessions: Vec<Session> =
            self.objects(SESSION).filter_map(|(id, obj)| read_session(&id, &self.fields(&obj))).collect();
        sessions.sort_by(|a, b| a.scheduled_start.cmp(&b.scheduled_start).then_with(|| a.id.cmp(&b.id)));
        sessions
    }

    /// Sessions still ahead at `now` (not cancelled or ended; a started one
    /// counts until it ends), soonest first.
    pub fn upcoming_sessions(&self, now: DateTime<Utc>) -> Vec<Session> {
        self.sessions()
            .into_iter()
            .filter(|s| s.cancelled.is_none() && s.ended_at.is_none())
            .filter(|s| s.started_at.is_some() || s.scheduled_start.with_timezone(&Utc) + UPCOMING_GRACE >= now)
            .collect()
    }

    /// One session.
    pub fn session(&self, id: &str) -> Option<Session> {
        let obj = self.session_obj(id).ok()?;
        read_session(id, &self.fields(&obj))
    }

    /// A session's current answers as a JSON object (item id → answer),
    /// the latest answer of each item winning.
    pub fn session_answers(&self, session_id: &str) -> Option<Value> {
        let obj = self.session_obj(session_id).ok()?;
        Some(session_answers(&self.fields(&obj)))
    }

    /// Evaluates a session's current answers against `pack`. Answers that no
    /// longer fit the pack count as unanswered, so they can never make it `ready`.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn evaluate_session(&self, pack: &Pack, session_id: &str, locale: &str) -> Result<Evaluation, RecordError> {
        let (start, answers) = self.checklist_inputs(pack, session_id)?;
        Ok(evaluate(pack, start, &answers, locale))
    }

    /// What a session's checklist is evaluated from: its scheduled start and
    /// its answers, less those that do not fit `pack` (they count as unanswered).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn checklist_inputs(
        &self,
        pack: &Pack,
        session_id: &str,
    ) -> Result<(DateTime<FixedOffset>, Answers), RecordError> {
        // One pass over the session object serves both the start and the answers.
        let fields = self.fields(&self.session_obj(session_id)?);
        let session = read_session(session_id, &fields).ok_or_else(|| not_found("session", session_id))?;
        let mut answers = Answers::new();
        for (id, value) in latest_answers(&fields) {
            // An answer that does not fit this pack is skipped: unanswered.
            let _ = answers.set(pack, id, &value);
        }
        Ok((session.scheduled_start, answers))
    }

    /// A session's readiness decisions, oldest first.
    pub fn readiness_history(&self, session_id: &str) -> Vec<ReadinessRecord> {
        let mut history: Vec<ReadinessRecord> =
            self.entries::<ReadinessRecord>(READINESS).filter(|r| r.session_id == session_id).collect();
        history.sort_by(|a, b| a.evaluated_at.cmp(&b.evaluated_at).then_with(|| a.id.cmp(&b.id)));
        history
    }

    /// Shared journal entries that are not deleted, newest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        let mut entries: Vec<JournalEntry> =
            self.objects(JOURNAL).filter_map(|(id, obj)| read_journal(&id, &self.fields(&obj))).collect();
        sort_journal(&mut entries);
        entries
    }

    /// One shared journal entry, if it exists and is not deleted.
    pub fn journal_entry(&self, id: &str) -> Option<JournalEntry> {
        let obj = self.map_obj(&format!("{JOURNAL}{id}"))?;
        read_journal(id, &self.fields(&obj))
    }

    /// Blood-pressure readings, oldest first.
    pub fn vitals(&self) -> Vec<Vitals> {
        sorted(self.entries(VITALS).collect(), |v: &Vitals| (v.taken_at, v.id.clone()))
    }

    /// Side-effect reports, oldest first.
    pub fn side_effects(&self) -> Vec<SideEffectReport> {
        sorted(self.entries(SIDE_EFFECT).collect(), |r: &SideEffectReport| (r.reported_at, r.id.clone()))
    }

    /// Check-ins, oldest first.
    pub fn check_ins(&self) -> Vec<CheckIn> {
        sorted(self.entries(CHECK_IN).collect(), |c: &CheckIn| (c.completed_at, c.id.clone()))
    }

    /// Clinician notes, oldest first.
    pub fn clinician_notes(&self) -> Vec<ClinicianNote> {
        sorted(self.entries(NOTE).collect(), |n: &ClinicianNote| (n.written_at, n.id.clone()))
    }

    /// The pack version assigned by the clinic, if any.
    pub fn assigned_pack(&self) -> Option<PackAssignment> {
        self.get_string(&ROOT, PACK).and_then(|s| serde_json::from_str(&s).ok())
    }

    /// Integration prompts due at `now` (for ended sessions, due within the
    /// last [`DUE_PROMPT_WINDOW`]) that no journal entry answers yet.
    /// `private_entries` are the device's private journal entries, which
    /// answer prompts too.
    pub fn due_integration_prompts(
        &self,
        pack: &Pack,
        now: DateTime<Utc>,
        locale: &str,
        private_entries: &[JournalEntry],
    ) -> Vec<DuePrompt> {
        let answered: HashSet<(String, String)> = self
            .journal()
            .iter()
            .chain(private_entries)
            .filter_map(|e| Some((e.session_id.clone()?, e.prompt_id.clone()?)))
            .collect();
        let mut due = Vec::new();
        for session in self.sessions().into_iter().filter(|s| s.cancelled.is_none()) {
            let (Some(ended), Ok(tz)) = (session.ended_at, crate::aftercare::parse_time_zone(&session.time_zone))
            else {
                continue;
            };
            let plan = crate::aftercare::plan(pack, ended.with_timezone(&Utc), &tz, locale);
            for prompt in plan.integration {
                let at = prompt.at.with_timezone(&Utc);
                if at <= now
                    && now - at <= DUE_PROMPT_WINDOW
                    && !answered.contains(&(session.id.clone(), prompt.id.clone()))
                {
                    due.push(DuePrompt {
                        session_id: session.id.clone(),
                        prompt_id: prompt.id,
                        due_at: prompt.at,
                        text: prompt.text,
                    });
                }
            }
        }
        due.sort_by_key(|p| p.due_at);
        due
    }

    /// The whole record as the clinic shows it, with urgent items under `pack`.
    pub fn view(&self, pack: &Pack) -> RecordView {
        let sessions = self
            .sessions()
            .into_iter()
            .map(|session| SessionView {
                answers: match self.session_answers(&session.id) {
                    Some(Value::Object(answers)) => answers,
                    _ => serde_json::Map::new(),
                },
                readiness: self.readiness_history(&session.id),
                session,
            })
            .collect();
        RecordView {
            sessions,
            journal: self.journal(),
            vitals: self.vitals(),
            side_effects: self.side_effects(),
            check_ins: self.check_ins(),
            clinician_notes: self.clinician_notes(),
            assigned_pack: self.assigned_pack(),
            urgent_items: self.urgent_items_with(pack),
            unreadable_entries: self.unreadable_entries(),
        }
    }

    /// [`CareRecord::view`] under the default pack, as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view(&Pack::default_pack())).unwrap_or_default()
    }

    // ----- internals ------------------------------------------------------

    fn put_entry<T: Serialize>(&mut self, prefix: &str, id: &str, entry: &T) -> Result<String, RecordError> {
        let mut value = serde_json::to_value(entry).map_err(|e| invalid("entry", e.to_string()))?;
        if let Some(map) = value.as_object_mut() {
            map.remove("id");
        }
        let key = format!("{prefix}{id}");
        let text = value.to_string();
        self.change(|tx| Ok(tx.put(ROOT, &key, text)?))?;
        Ok(id.to_owned())
    }

    fn entries<'a, T: DeserializeOwned + 'a>(&'a self, prefix: &str) -> impl Iterator<Item = T> + 'a {
        let prefix_len = prefix.len();
        self.doc.map_range(ROOT, prefix_range(prefix)).filter_map(move |item| {
            let ValueRef::Scalar(ScalarValueRef::Str(text)) = &item.value else { return None };
            parse_entry(text, &item.key[prefix_len..])
        })
    }

    /// The entries of kind `prefix` among `keys` (root keys), parsed as
    /// [`CareRecord::entries`] parses them, without scanning the others.
    fn entries_among<T: DeserializeOwned>(&self, prefix: &str, keys: &BTreeSet<String>) -> Vec<T> {
        keys.range(prefix_range(prefix))
            .filter_map(|key| parse_entry(&self.get_string(&ROOT, key)?, &key[prefix.len()..]))
            .collect()
    }

    fn objects<'a>(&'a self, prefix: &str) -> impl Iterator<Item = (String, ObjId)> + 'a {
        let prefix_len = prefix.len();
        self.doc.map_range(ROOT, prefix_range(prefix)).filter_map(move |item| match item.value {
            ValueRef::Object(ObjType::Map) => Some((item.key[prefix_len..].to_owned(), item.id())),
            _ => None,
        })
    }

    fn map_obj(&self, key: &str) -> Option<ObjId> {
        match self.doc.get(ROOT, key).ok()?? {
            (automerge::Value::Object(ObjType::Map), obj) => Some(obj),
            _ => None,
        }
    }

    fn session_obj(&self, id: &str) -> Result<ObjId, RecordError> {
        self.map_obj(&format!("{SESSION}{id}")).ok_or_else(|| not_found("session", id))
    }

    fn live_journal_obj(&self, id: &str) -> Result<ObjId, RecordError> {
        self.map_obj(&format!("{JOURNAL}{id}"))
            .filter(|obj| self.get_string(obj, "deleted").is_none())
            .ok_or_else(|| not_found("journal entry", id))
    }

    fn check_session_link(&self, session_id: Option<&str>) -> Result<(), RecordError> {
        match session_id {
            Some(id) if self.session_obj(id).is_err() => Err(invalid("session_id", "no such session")),
            _ => Ok(()),
        }
    }

    fn get_string(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.doc.get(obj, key).ok()?? {
            (automerge::Value::Scalar(s), _) => s.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Every string field of the map `obj` in one pass, each with its
    /// winning value first and then any concurrent ones. Automerge seeks each
    /// key separately (a few µs per key in 0.12), so one range over the object
    /// is many times cheaper than reading it key by key; `get_all` is asked only
    /// for keys that are in conflict.
    fn fields(&self, obj: &ObjId) -> Fields {
        let mut fields = Vec::new();
        for item in self.doc.map_range(obj, ..) {
            let mut values: Vec<String> = match &item.value {
                ValueRef::Scalar(ScalarValueRef::Str(text)) => vec![text.to_string()],
                _ => Vec::new(),
            };
            if item.conflict {
                for (value, _) in self.doc.get_all(obj, item.key.as_ref()).unwrap_or_default() {
                    if let Some(s) = value.as_str() {
                        if !values.iter().any(|v| v == s) {
                            values.push(s.to_owned());
                        }
                    }
                }
            }
            if !values.is_empty() {
                fields.push((item.key.into_owned(), values));
            }
        }
        // Automerge iterates keys in order already; sorting keeps `Fields`'
        // binary search independent of that (and costs one pass when sorted).
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Fields(fields)
    }
}

/// The string fields of one map object, as [`CareRecord::fields`] read them:
/// sorted by key, each with the winning value first.
struct Fields(Vec<(String, Vec<String>)>);

impl Fields {
    /// The winning value of `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.all(key).first().map(String::as_str)
    }

    /// The winning value of `key`, then any concurrent ones.
    fn all(&self, key: &str) -> &[String] {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => &self.0[i].1,
            Err(_) => &[],
        }
    }

    /// Every key starting with `prefix`, without the prefix, and its values.
    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a [String])> + 'a {
        let start = self.0.partition_point(|(k, _)| k.as_str() < prefix);
        self.0[start..].iter().map_while(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_slice())))
    }
}

fn read_session(id: &str, fields: &Fields) -> Option<Session> {
    let time = |key| fields.get(key).and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let mut starts = fields.all("start").iter().filter_map(|s| DateTime::parse_from_rfc3339(s).ok());
    Some(Session {
        id: id.to_owned(),
        scheduled_start: starts.next()?,
        conflicting_starts: starts.collect(),
        time_zone: fields.get("tz")?.to_owned(),
        scheduled_by: if fields.get("by")? == "clinic" { Party::Clinic } else { Party::Client },
        started_at: time("started_at"),
        ended_at: time("ended_at"),
        cancelled: fields.get("cancelled").and_then(|s| serde_json::from_str(s).ok()),
    })
}

/// A session's answers (`a:<item>` fields) as a JSON object, the latest
/// answer of each item winning among concurrent ones.
fn session_answers(fields: &Fields) -> Value {
    Value::Object(latest_answers(fields).map(|(item, value)| (item.to_owned(), value)).collect())
}

/// A session's current answers from its `a:<item>` fields, item by item. Of
/// concurrent values the one recorded latest (`at`, ties by text) wins; a
/// cleared answer (`null`) or an unreadable one is left out.
fn latest_answers(fields: &Fields) -> impl Iterator<Item = (&str, Value)> {
    /// The stored form of one answer, `{"at": …, "value": …}`, when only the value is needed.
    #[derive(Deserialize)]
    struct Stored {
        #[serde(default)]
        value: Value,
    }
    fields.with_prefix("a:").filter_map(|(item, values)| {
        let value = match values {
            // The common case, no concurrent answers: no need to read `at`. Only an
            // object is an answer (serde would also read a struct from an array).
            [only] if only.trim_start().starts_with('{') => serde_json::from_str::<Stored>(only).ok()?.value,
            [_] => return None,
            several => {
                let latest = several.iter().filter_map(|s| serde_json::from_str::<Value>(s).ok()).max_by(|a, b| {
                    let at = |v: &Value| v["at"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
                    at(a).cmp(&at(b)).then_with(|| a.to_string().cmp(&b.to_string()))
                })?;
                latest["value"].clone()
            }
        };
        (!value.is_null()).then_some((item, value))
    })
}

fn read_journal(id: &str, fields: &Fields) -> Option<JournalEntry> {
    if fields.get("deleted").is_some() {
        return None;
    }
    let time = |key| fields.get(key).and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc));
    let mut texts = fields.all("text").iter().cloned();
    Some(JournalEntry {
        id: id.to_owned(),
        created_at: time("created_at")?,
        edited_at: time("edited_at"),
        text: texts.next()?,
        conflicting_texts: texts.collect(),
        prompt_id: fields.get("prompt_id").map(str::to_owned),
        session_id: fields.get("session_id").map(str::to_owned),
        private: false,
    })
}

/// Newest first, ties by id: the order journal listings use.
pub(crate) fn sort_journal(entries: &mut [JournalEntry]) {
    entries.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
}

fn sorted<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(|item| key(item));
    items
}

/// A new random 128-bit id, as 32 hex digits.
pub fn new_id() -> String {
    rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// An entry's stored JSON with its `id` (the root key after the kind prefix) added.
fn parse_entry<T: DeserializeOwned>(text: &str, id: &str) -> Option<T> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    value.as_object_mut()?.insert("id".into(), Value::from(id));
    serde_json::from_value(value).ok()
}

fn prefix_range(prefix: &str) -> Range<String> {
    // Keys of one kind are `x:<id>`; `;` is the character after `:`.
    let end = format!("{};", &prefix[..prefix.len() - 1]);
    prefix.to_owned()..end
}

fn party_str(party: Party) -> &'static str {
    match party {
        Party::Client => "client",
        Party::Clinic => "clinic",
    }
}

fn not_found(kind: &'static str, id: &str) -> RecordError {
    RecordError::NotFound { kind, id: id.to_owned() }
}

pub(crate) fn check_text(field: &str, text: &str) -> Result<(), RecordError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(())
}

/// Drops the `answers.<id>: ` prefix of a checklist error, which the record
/// error's field already carries.
fn strip_field(message: &str) -> String {
    message.split_once(": ").map(|(_, reason)| reason.to_owned()).unwrap_or_else(|| message.to_owned())
}

fn to_json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests;
