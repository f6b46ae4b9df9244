//! The client's device: one aggregate that every front end drives (the
//! mobile bindings, `katctl device`, the demo, the tests, the benchmarks and
//! the load generator).
//!
//! A [`Device`] owns the encrypted store ([`crate::care_store`]), the pack
//! registry (restoring the clinic's last signed pack on open), the sync
//! client and the change observers, and exposes the client's journey with
//! typed values: schedule, answer, evaluate, **start**, end, aftercare,
//! vitals, side effects, check-ins, journal, due prompts, enrollment, sync
//! and status.
//!
//! # The safety gate
//! [`Device::start`] evaluates the checklist afresh, records the decision
//! and starts the session only when it is `ready`
//! ([`CareRecord::try_start_session`]); any other status is
//! [`DeviceError::NotReady`] naming it. There is no other way to start a
//! session from outside this crate.
//!
//! Every write is durable when its call returns, and observers hear of it
//! afterwards ([`observers`]).

pub mod first_view;
pub mod observers;

use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::aftercare::{self, Aftercare};
use crate::care_store::{CareStore, CareStoreError};
use crate::checklist::{Answer, BloodPressureReading, Evaluation, ReadinessStatus};
use crate::instruments::{self, CheckInOutcome, InstrumentKind, Score};
use crate::pack::{Pack, PackRegistry, TrustedKeys};
use crate::record::{
    CareRecord, CheckIn, CheckInInput, CheckInKind, ClinicianNote, DuePrompt, JournalEntry, JournalLinks, Party,
    RecordError, Session, Severity, SideEffectReport, Vitals,
};
use crate::store::{StoreError, StoreKey};
use crate::sync::transport::{BoxFuture, HttpRequest, HttpResponse, Transport, TransportError};
use crate::sync::{restore_saved_pack, SyncClient, SyncError, SyncReport, SyncStatus, SyncTrigger};
use crate::zone::Zone;
pub use first_view::{FirstView, FirstViewSync};
use observers::Observers;
pub use observers::{CareChange, Observer, Subscription};

/// Why a device call failed. Messages name fields and ids, never values.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record refused the operation (unknown id, invalid input, …).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Enrollment or sync failed.
    #[error(transparent)]
    Sync(SyncError),
    /// The session did not start: its fresh evaluation is not `ready`. The
    /// decision was recorded (the clinic sees it; `blocked` raises an alert).
    #[error("the session is not ready to start: its checklist is {}", status.as_str())]
    NotReady {
        /// The checklist's status.
        status: ReadinessStatus,
        /// The whole evaluation, to show the client why.
        evaluation: Box<Evaluation>,
    },
    /// An argument the record does not check was not acceptable.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

impl From<CareStoreError> for DeviceError {
    fn from(error: CareStoreError) -> Self {
        match error {
            CareStoreError::Store(error) => DeviceError::Store(error),
            CareStoreError::Record(error) => DeviceError::Record(error),
        }
    }
}

impl From<SyncError> for DeviceError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Store(error) => error.into(),
            other => DeviceError::Sync(other),
        }
    }
}

/// The clinic a device is enrolled with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Enrollment {
    /// The clinic's name.
    pub clinic_name: String,
    /// Its server.
    pub server_url: String,
    /// The client this device belongs to.
    pub client_id: String,
    /// This device's id.
    pub device_id: String,
}

/// A scored questionnaire as recorded, with what to show the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckInResult {
    /// The recorded check-in's id.
    pub check_in_id: String,
    /// The score, and for an urgent one the crisis message and contacts.
    #[serde(flatten)]
    pub outcome: CheckInOutcome,
}

/// One client's device: the encrypted record, the pack in force, the sync
/// client and the observers. Cheap to clone (an `Arc` inside) and
/// thread-safe; reads run in parallel, writes one at a time.
#[derive(Clone, Debug)]
pub struct Device {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: CareStore,
    packs: Arc<RwLock<PackRegistry>>,
    sync: SyncClient,
    has_transport: bool,
    observers: Arc<Observers>,
}

impl Device {
    /// Opens (or creates) the device's store at `path` with the app's key
    /// and re-activates the clinic's last signed pack if it still verifies.
    /// `transport` sends enrollment and sync requests; without one,
    /// everything else works and those two say so.
    ///
    /// # Errors
    /// The store's errors of opening (`WrongKey`, `Corrupt`, `TooNew`, …).
    pub fn open(path: &Path, key: &StoreKey, transport: Option<Arc<dyn Transport>>) -> Result<Device, DeviceError> {
        let store = CareStore::open(path, key)?;
        let packs = Arc::new(RwLock::new(PackRegistry::new(TrustedKeys::default())));
        restore_saved_pack(store.store(), &packs)?;
        let has_transport = transport.is_some();
        let http: Arc<dyn Transport> = transport.unwrap_or_else(|| Arc::new(NoTransport));
        let sync = SyncClient::new(store.clone(), http, Arc::clone(&packs));
        let observers = Arc::default();
        Ok(Device { shared: Arc::new(Shared { store, packs, sync, has_transport, observers }) })
    }

    /// The pack in force: the clinic's signed pack once sync activated one, else the built-in default.
    pub fn pack(&self) -> Arc<Pack> {
        self.shared.packs.read().unwrap_or_else(std::sync::PoisonError::into_inner).active()
    }

    /// The encrypted store, for what this type does not wrap (reads of the
    /// whole record, sizes, compaction).
    pub fn store(&self) -> &CareStore {
        &self.shared.store
    }

    /// Reads the record.
    pub fn read<R>(&self, f: impl FnOnce(&CareRecord) -> R) -> R {
        self.shared.store.read(f)
    }

    /// Registers `observer` until the returned subscription is cancelled or dropped.
    pub fn subscribe(&self, observer: Arc<dyn Observer>) -> Subscription {
        self.shared.observers.add(observer)
    }

    // --- Sessions and the checklist ---

    /// Schedules a session at `start` for a client in the IANA `time_zone`; returns it.
    ///
    /// # Errors
    /// `InvalidInput` (field `time_zone`) for an unknown zone.
    pub fn schedule(&self, start: DateTime<Utc>, time_zone: &str) -> Result<Session, DeviceError> {
        let start = local(start, time_zone)?;
        let id = self.update(CareChange::Sessions, |r| r.schedule_session(start, time_zone, Party::Client))?;
        self.session(&id)
    }

    /// Moves a session to a new start.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn reschedule(&self, session_id: &str, start: DateTime<Utc>) -> Result<(), DeviceError> {
        let start = local(start, &self.session(session_id)?.time_zone)?;
        self.update(CareChange::Sessions, |r| r.move_session(session_id, start, Party::Client))
    }

    /// Cancels a session (recorded, never removed).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn cancel(&self, session_id: &str, at: DateTime<Utc>) -> Result<(), DeviceError> {
        self.update(CareChange::Sessions, |r| r.cancel_session(session_id, Party::Client, at))
    }

    /// One session.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn session(&self, session_id: &str) -> Result<Session, DeviceError> {
        self.read(|r| r.session(session_id))
            .ok_or_else(|| DeviceError::Record(RecordError::NotFound { kind: "session", id: session_id.to_owned() }))
    }

    /// Every session, by scheduled start.
    pub fn sessions(&self) -> Vec<Session> {
        self.read(CareRecord::sessions)
    }

    /// Sessions still ahead at `now`, soonest first.
    pub fn upcoming(&self, now: DateTime<Utc>) -> Vec<Session> {
        self.read(|r| r.upcoming_sessions(now))
    }

    /// Records the answer to one checklist or screening item (`None` clears it).
    ///
    /// # Errors
    /// `NotFound` for an unknown session; `InvalidInput` (field
    /// `answers.<item>`) for an unknown item or an answer that does not fit it.
    pub fn answer(
        &self,
        session_id: &str,
        item_id: &str,
        answer: Option<&Answer>,
        at: DateTime<Utc>,
    ) -> Result<(), DeviceError> {
        let pack = self.pack();
        let value = answer.map_or(serde_json::Value::Null, Answer::to_json);
        self.update(CareChange::Sessions, |r| r.record_answer(&pack, session_id, item_id, &value, at))
    }

    /// The session's answers that fit the pack in force, by item id (the
    /// others count as unanswered).
    ///
    /// # Errors
    /// `NotFound`.
    pub fn answers(&self, session_id: &str) -> Result<Vec<(String, Answer)>, DeviceError> {
        let pack = self.pack();
        let (_, _, answers) = self.read(|r| r.checklist_inputs(&pack, session_id))?;
        Ok(answers.iter().map(|(id, answer)| (id.to_owned(), answer.clone())).collect())
    }

    /// Evaluates the session's checklist with the pack in force, messages in
    /// `locale`. Reads only.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn evaluate(&self, session_id: &str, locale: &str) -> Result<Evaluation, DeviceError> {
        Ok(self.shared.store.evaluate_session(&self.pack(), session_id, locale)?)
    }

    /// Starts the session at `at` if its fresh evaluation is `ready`. The
    /// decision is recorded either way and returned.
    ///
    /// # Errors
    /// [`DeviceError::NotReady`] with the status (the session does not
    /// start), `NotFound`, or `InvalidInput` for a cancelled session.
    pub fn start(&self, session_id: &str, locale: &str, at: DateTime<Utc>) -> Result<Evaluation, DeviceError> {
        let pack = self.pack();
        let at = local(at, &self.session(session_id)?.time_zone)?;
        let evaluation = self.update(CareChange::Sessions, |r| r.try_start_session(&pack, session_id, locale, at))?;
        match evaluation.status {
            ReadinessStatus::Ready => Ok(evaluation),
            status => Err(DeviceError::NotReady { status, evaluation: Box::new(evaluation) }),
        }
    }

    /// Ends a started session at `at`.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when it never started or `at` is before its start.
    pub fn end(&self, session_id: &str, at: DateTime<Utc>) -> Result<(), DeviceError> {
        let at = local(at, &self.session(session_id)?.time_zone)?;
        self.update(CareChange::Sessions, |r| r.end_session(session_id, at))
    }

    /// The plan after an ended session: when driving is acceptable, the
    /// side-effect check-ins and the integration prompts, in its time zone.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` when the session has not ended.
    pub fn aftercare(&self, session_id: &str, locale: &str) -> Result<Aftercare, DeviceError> {
        let session = self.session(session_id)?;
        let ended = session.ended_at.ok_or_else(|| invalid("session_id", "the session has not ended"))?;
        Ok(aftercare::plan(&self.pack(), ended.to_utc(), &zone(&session.time_zone)?, locale))
    }

    // --- Wellbeing ---

    /// Records a blood-pressure reading; returns it, flagged `urgent` at or
    /// above the clinic's urgent threshold.
    ///
    /// # Errors
    /// `InvalidInput` for an implausible reading or an unknown session.
    pub fn record_blood_pressure(
        &self,
        reading: BloodPressureReading,
        session_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vitals, DeviceError> {
        let pack = self.pack();
        let id = self.update(CareChange::Wellbeing, |r| r.add_vitals(&pack, reading, at, session_id))?;
        self.read(|r| r.vitals().into_iter().find(|v| v.id == id))
            .ok_or(DeviceError::Record(RecordError::NotFound { kind: "vitals", id }))
    }

    /// Blood-pressure readings, oldest first.
    pub fn vitals(&self) -> Vec<Vitals> {
        self.read(CareRecord::vitals)
    }

    /// Reports a side effect the pack lists; returns the report, flagged
    /// `urgent` when severe or when the pack says always to report it.
    ///
    /// # Errors
    /// `InvalidInput` for an effect the pack does not list or an unknown session.
    pub fn report_side_effect(
        &self,
        effect_id: &str,
        severity: Severity,
        session_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<SideEffectReport, DeviceError> {
        let pack = self.pack();
        let id =
            self.update(CareChange::Wellbeing, |r| r.report_side_effect(&pack, effect_id, severity, at, session_id))?;
        self.read(|r| r.side_effects().into_iter().find(|e| e.id == id))
            .ok_or(DeviceError::Record(RecordError::NotFound { kind: "side effect", id }))
    }

    /// Side-effect reports, oldest first.
    pub fn side_effects(&self) -> Vec<SideEffectReport> {
        self.read(CareRecord::side_effects)
    }

    /// Scores (once) and records a questionnaire; an urgent result carries
    /// the crisis message and contacts in `locale`: show them at once.
    ///
    /// # Errors
    /// `InvalidInput` (field `answers`) for the wrong number of answers or one outside 0–3.
    pub fn check_in(
        &self,
        instrument: InstrumentKind,
        answers: Vec<u8>,
        locale: &str,
        at: DateTime<Utc>,
    ) -> Result<CheckInResult, DeviceError> {
        let pack = self.pack();
        let check_in =
            self.update(CareChange::Wellbeing, |r| r.add_check_in(CheckInInput::Instrument(instrument, answers), at))?;
        let CheckInKind::Instrument { total, band, .. } = check_in.kind else {
            return Err(invalid("instrument", "the check-in was not recorded as a questionnaire"));
        };
        let score = Score { instrument, total, band, urgent: check_in.urgent };
        // The first check-in with a questionnaire is the baseline, and no rise.
        let baseline = self.read(|r| r.score_baseline(instrument)).filter(|b| b.id != check_in.id).map(|b| b.total);
        Ok(CheckInResult { check_in_id: check_in.id, outcome: instruments::outcome(&pack, score, baseline, locale) })
    }

    /// Records a mood rating from 0 (worst) to 10 (best); returns the check-in's id.
    ///
    /// # Errors
    /// `InvalidInput` for a score above 10.
    pub fn record_mood(&self, score: u8, at: DateTime<Utc>) -> Result<String, DeviceError> {
        Ok(self.update(CareChange::Wellbeing, |r| r.add_check_in(CheckInInput::Mood(score), at))?.id)
    }

    /// Check-ins, oldest first.
    pub fn check_ins(&self) -> Vec<CheckIn> {
        self.read(CareRecord::check_ins)
    }

    // --- Journal ---

    /// Writes an entry and returns its id; a `private` one stays on this device.
    ///
    /// # Errors
    /// `InvalidInput` for empty or over-long text or an unknown session.
    pub fn write_journal(
        &self,
        text: &str,
        links: &JournalLinks,
        private: bool,
        at: DateTime<Utc>,
    ) -> Result<String, DeviceError> {
        let id = self.shared.store.write_journal_entry(text, links, private, at)?;
        self.changed(CareChange::Journal);
        Ok(id)
    }

    /// Replaces an entry's text, shared or private.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` for empty or over-long text.
    pub fn edit_journal(&self, entry_id: &str, text: &str, at: DateTime<Utc>) -> Result<(), DeviceError> {
        self.shared.store.edit_journal_entry(entry_id, text, at)?;
        self.changed(CareChange::Journal);
        Ok(())
    }

    /// Deletes an entry: a shared one disappears on every replica, a private one is erased.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn delete_journal(&self, entry_id: &str, at: DateTime<Utc>) -> Result<(), DeviceError> {
        self.shared.store.delete_journal_entry(entry_id, at)?;
        self.changed(CareChange::Journal);
        Ok(())
    }

    /// Every entry, shared and private, newest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.store.journal()
    }

    /// The notes the care team wrote to the client (they arrive by sync), oldest first.
    pub fn clinician_notes(&self) -> Vec<ClinicianNote> {
        self.read(CareRecord::clinician_notes)
    }

    /// Integration prompts due at `now` that no entry answers yet.
    pub fn due_prompts(&self, locale: &str, now: DateTime<Utc>) -> Vec<DuePrompt> {
        self.shared.store.due_integration_prompts(&self.pack(), now, locale)
    }

    // --- The clinic ---

    /// Enrolls this device with the clinic at `server_url` using a one-time `code`.
    ///
    /// # Errors
    /// `InvalidCode`, a network or server error, a store error, or
    /// `InvalidInput` (field `transport`) when the device has no transport.
    pub async fn enroll(&self, server_url: &str, code: &str, device_label: &str) -> Result<Enrollment, DeviceError> {
        self.check_transport()?;
        let credentials = self.shared.sync.enroll(server_url, code, device_label).await?;
        self.sync_status_changed();
        Ok(Enrollment {
            clinic_name: credentials.clinic_name,
            server_url: credentials.server_url,
            client_id: credentials.client_id,
            device_id: credentials.device_id,
        })
    }

    /// The clinic this device is enrolled with, if any.
    ///
    /// # Errors
    /// A store error (unreadable saved credentials).
    pub fn enrollment(&self) -> Result<Option<Enrollment>, DeviceError> {
        Ok(self.shared.sync.credentials()?.map(|c| Enrollment {
            clinic_name: c.clinic_name,
            server_url: c.server_url,
            client_id: c.client_id,
            device_id: c.device_id,
        }))
    }

    /// Runs one sync; a `User` trigger ignores the backoff of earlier
    /// failures, an `Automatic` one refuses while offline or backing off.
    /// Observers hear what arrived and the new status either way.
    ///
    /// # Errors
    /// See [`SyncError`]; `InvalidInput` (field `transport`) without a transport.
    pub async fn sync(&self, trigger: SyncTrigger) -> Result<SyncReport, DeviceError> {
        self.check_transport()?;
        let result = self.shared.sync.sync_now(trigger).await;
        if let Ok(report) = &result {
            if report.received_changes {
                self.shared.observers.each(|o| o.record_changed(CareChange::Received));
            }
            if report.pack_activated.is_some() {
                self.shared.observers.each(|o| o.record_changed(CareChange::Content));
            }
        }
        self.sync_status_changed();
        Ok(result?)
    }

    /// The host reports connectivity. Returns true when a sync is worth
    /// starting now: back online with changes pending.
    pub fn set_online(&self, online: bool) -> bool {
        let worth_syncing = self.shared.sync.set_online(online);
        self.sync_status_changed();
        worth_syncing
    }

    /// Where syncing stands.
    pub fn sync_status(&self) -> SyncStatus {
        self.shared.sync.status()
    }

    // --- Internals ---

    fn check_transport(&self) -> Result<(), DeviceError> {
        if self.shared.has_transport {
            Ok(())
        } else {
            Err(invalid("transport", "the device was opened without an HTTP transport, which sync needs"))
        }
    }

    /// Applies and persists one change, then tells the observers.
    fn update<R>(
        &self,
        change: CareChange,
        f: impl FnOnce(&mut CareRecord) -> Result<R, RecordError>,
    ) -> Result<R, DeviceError> {
        let result = self.shared.store.update(f)?;
        self.changed(change);
        Ok(result)
    }

    fn changed(&self, change: CareChange) {
        self.shared.observers.each(|o| o.record_changed(change));
        self.sync_status_changed();
    }

    fn sync_status_changed(&self) {
        if !self.shared.observers.is_empty() {
            let status = self.shared.sync.status();
            self.shared.observers.each(|o| o.sync_status_changed(&status));
        }
    }
}

/// `at` in the IANA zone `time_zone`, with that zone's offset at that instant.
///
/// # Errors
/// `InvalidInput` (field `time_zone`) for an unknown zone.
pub fn local(at: DateTime<Utc>, time_zone: &str) -> Result<DateTime<FixedOffset>, DeviceError> {
    Ok(at.with_timezone(&zone(time_zone)?).fixed_offset())
}

fn zone(name: &str) -> Result<Zone, DeviceError> {
    aftercare::parse_time_zone(name).map_err(|_| invalid("time_zone", "is not a known IANA time zone name"))
}

fn invalid(field: &str, reason: &str) -> DeviceError {
    DeviceError::InvalidInput { field: field.to_owned(), reason: reason.to_owned() }
}

/// The transport of a device opened without one: every request fails.
#[derive(Debug)]
struct NoTransport;

impl Transport for NoTransport {
    fn send(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async { Err(TransportError { reason: "no HTTP transport was given".into() }) })
    }
}

#[cfg(test)]
mod tests;
