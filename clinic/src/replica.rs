//! The server's replica of each client's care record, cached in memory.
//!
//! A client's [`CareRecord`] is loaded from storage once and kept, behind
//! a per-client async mutex, so a sync or a clinician edit does not reload
//! the document. Work on a replica runs on a blocking thread while holding
//! that client's lock; different clients proceed in parallel.
//!
//! Every change is persisted like on a device: the Automerge changes since
//! the last stored heads are appended as one blob (with the planned sessions
//! and new alerts, in one transaction), and when the appended changes outgrow
//! the snapshot a new snapshot replaces them. If persisting fails, or a
//! request left changes waiting for missing dependencies, the cached replica
//! is dropped and reloaded from storage on next use, so memory never runs
//! ahead of the database.
//!
//! A device's changes are checked before anything is merged: each write
//! against the record's write rules ([`katcore::record::check_changes`],
//! `docs/record-format.md`) and each Automerge actor against the writer it
//! is bound to. Urgent items are derived from the values with the client's
//! pack, whatever the writer flagged.
//!
//! The server's own edits use one random actor per process start (see the
//! protocol document), so a restarted server never reuses an
//! (actor, sequence number) pair; each is bound to the clinic when first stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use automerge::{ActorId, Change, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use katcore::pack::{Pack, SignedPack};
use katcore::persist::{PersistedRecord, CLINIC_COMPACTION_BYTES};
use katcore::record::{
    check_changes, received_entries, touched_entries, CareRecord, RecordError, Writer, CHECK_IN_PREFIX,
};
use katcore::sync::wire::{SyncRequest, SyncResponse};

use crate::error::ApiError;
use crate::storage::{ActorOwner, ClinicStorage, NewAlert, PlannedSession, RecordUpdate};

/// How many bytes of memory a loaded record takes per stored byte, as
/// measured (BENCHMARKS.md: the 2-year record's 454 KB snapshot opens in
/// about 7.9 MiB of heap): what the cache budget counts.
const MEMORY_PER_STORED_BYTE: u64 = 17;

/// The device a sync comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyncingDevice<'a> {
    /// Its id.
    pub(crate) id: &'a str,
    /// How far its clock is ahead of the clinic's, in milliseconds, when
    /// it sent its time (`crate::clock::device_offset`).
    pub(crate) clock_offset_ms: Option<i64>,
}

/// How many times an operation on a record is tried when another instance
/// keeps storing changes of the same record first.
const CONFLICT_ATTEMPTS: u32 = 4;

/// One client's place in the cache.
#[derive(Default)]
struct Slot {
    replica: Arc<tokio::sync::Mutex<Option<Replica>>>,
    /// The estimated memory of the loaded replica; 0 when empty.
    bytes: AtomicU64,
    /// When it was last used, on the cache's own clock.
    last_used: AtomicU64,
}

/// The cache: one slot per client, each behind its own lock, with a memory
/// budget: after each use, the least recently used idle replicas are
/// dropped until the estimate is within it (they load again when needed).
pub(crate) struct Replicas {
    actor: ActorId,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    budget: u64,
    total: Arc<AtomicU64>,
    clock: AtomicU64,
    /// Cached records found older than the stored one and loaded again.
    stale: Arc<AtomicU64>,
    /// Operations redone because another writer appended first.
    redone: Arc<AtomicU64>,
}

/// The cache's size, for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CacheSize {
    /// Records loaded.
    pub(crate) records: u64,
    /// Their estimated memory.
    pub(crate) bytes: u64,
    /// Cached records found older than the stored one (another instance
    /// wrote) and loaded again, since the server started.
    pub(crate) stale_reloads: u64,
    /// Operations on a record redone on the reloaded record because another
    /// instance stored a change between the load and the append.
    pub(crate) conflicts_redone: u64,
}

impl Replicas {
    /// An empty cache of at most `budget` estimated bytes, whose edits use a
    /// fresh random actor.
    pub(crate) fn new(budget: u64) -> Replicas {
        Replicas {
            actor: ActorId::random(),
            slots: Mutex::new(HashMap::new()),
            budget,
            total: Arc::new(AtomicU64::new(0)),
            clock: AtomicU64::new(0),
            stale: Arc::new(AtomicU64::new(0)),
            redone: Arc::new(AtomicU64::new(0)),
        }
    }

    fn slot(&self, client_id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(client_id.to_owned()).or_default())
    }

    /// How many records are loaded and their estimated memory.
    pub(crate) fn size(&self) -> CacheSize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let records = slots.values().filter(|slot| slot.bytes.load(Ordering::Relaxed) > 0).count() as u64;
        CacheSize {
            records,
            bytes: self.total.load(Ordering::Relaxed),
            stale_reloads: self.stale.load(Ordering::Relaxed),
            conflicts_redone: self.redone.load(Ordering::Relaxed),
        }
    }

    /// Records that `slot` now holds `bytes` (0: empty) in `total`; called
    /// with the slot's lock held, so the figure never runs behind the slot.
    fn account(total: &AtomicU64, slot: &Slot, bytes: u64) {
        let before = slot.bytes.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            total.fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            total.fetch_sub(before - bytes, Ordering::Relaxed);
        }
    }

    /// Drops least recently used idle replicas (never `keep`'s) until the
    /// estimate is within the budget; a replica in use is skipped.
    fn evict(&self, keep: &str) {
        if self.total.load(Ordering::Relaxed) <= self.budget {
            return;
        }
        let mut candidates: Vec<(u64, Arc<Slot>)> = {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .iter()
                .filter(|(client_id, slot)| client_id.as_str() != keep && slot.bytes.load(Ordering::Relaxed) > 0)
                .map(|(_, slot)| (slot.last_used.load(Ordering::Relaxed), Arc::clone(slot)))
                .collect()
        };
        candidates.sort_by_key(|(last_used, _)| *last_used);
        for (_, slot) in candidates {
            if self.total.load(Ordering::Relaxed) <= self.budget {
                break;
            }
            if let Ok(mut replica) = slot.replica.try_lock() {
                *replica = None;
                Self::account(&self.total, &slot, 0);
            }
        }
    }

    /// See [`crate::state::AppState::with_replica`].
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        client_id: &str,
        storage: Arc<dyn ClinicStorage>,
        mut f: impl FnMut(&mut Replica, &dyn ClinicStorage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let slot = self.slot(client_id);
        let mut guard = Arc::clone(&slot.replica).lock_owned().await;
        let actor = self.actor.clone();
        let owned_id = client_id.to_owned();
        let (total, accounted) = (Arc::clone(&self.total), Arc::clone(&slot));
        let (stale, redone) = (Arc::clone(&self.stale), Arc::clone(&self.redone));
        let outcome = tokio::task::spawn_blocking(move || {
            let replica = &mut *guard;
            // Another instance may store a change of this record between our
            // load and our append: the append is then refused, the replica
            // dropped, and the operation redone on the record reloaded.
            let mut attempt = 1;
            let outcome = loop {
                let outcome = Self::run_locked(replica, &owned_id, actor.clone(), Arc::clone(&storage), &stale, &mut f);
                match outcome {
                    Err(e) if e.is_record_conflict() && attempt < CONFLICT_ATTEMPTS => {
                        redone.fetch_add(1, Ordering::Relaxed);
                        attempt += 1;
                    }
                    outcome => break outcome,
                }
            };
            Self::account(&total, &accounted, replica.as_ref().map_or(0, Replica::memory_estimate));
            outcome
        })
        .await?;
        slot.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.evict(client_id);
        outcome
    }

    /// Loads `client_id`'s record into `slot` if needed and runs `f` on it;
    /// empties the slot when memory may differ from storage.
    fn run_locked<T>(
        slot: &mut Option<Replica>,
        client_id: &str,
        actor: ActorId,
        storage: Arc<dyn ClinicStorage>,
        stale: &AtomicU64,
        f: &mut impl FnMut(&mut Replica, &dyn ClinicStorage) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        {
            // A cached replica older than what is stored (another instance
            // wrote since) is never used: it is loaded again.
            if let Some(cached) = slot.as_ref() {
                if storage.record_seq(client_id)? != cached.stored.last_seq() {
                    stale.fetch_add(1, Ordering::Relaxed);
                    *slot = None;
                }
            }
            if slot.is_none() {
                *slot = Some(Replica::load(storage.as_ref(), client_id, actor)?);
            }
            let Some(replica) = slot.as_mut() else { return Err(ApiError::internal("the replica vanished")) };
            let outcome = catch_unwind(AssertUnwindSafe(|| f(replica, storage.as_ref())));
            let outcome = match outcome {
                Ok(result) => {
                    if replica.discard || result.as_ref().is_err_and(|e| e.status().is_server_error()) {
                        *slot = None;
                    }
                    result
                }
                Err(_) => {
                    *slot = None;
                    Err(ApiError::internal("a record operation panicked"))
                }
            };
            outcome
        }
    }
}

/// One client's record with what is known to be stored.
pub(crate) struct Replica {
    client_id: String,
    /// The record and what of it is stored (`katcore::persist`, the engine devices use too).
    stored: PersistedRecord,
    /// Set when memory may differ from storage: the slot is then reloaded.
    discard: bool,
    /// The pack urgent items were last derived with, by ETag.
    pack: Option<(String, Arc<Pack>)>,
}

impl Replica {
    fn load(storage: &dyn ClinicStorage, client_id: &str, actor: ActorId) -> Result<Replica, ApiError> {
        let mut stored = PersistedRecord::load(&storage.load_record(client_id)?, actor, CLINIC_COMPACTION_BYTES)
            .map_err(|e| ApiError::internal(format!("client {client_id}: the stored record does not load: {e}")))?;
        // Score baselines follow the clinic's receipt of the check-ins, not the phones' clocks (`clock.rs`).
        let received = storage.entry_receipts(client_id, CHECK_IN_PREFIX)?;
        let received = received
            .into_iter()
            .filter_map(|(key, at)| Some((key.strip_prefix(CHECK_IN_PREFIX)?.to_owned(), at)))
            .collect();
        stored.record_mut().order_baselines_by_receipt(received);
        Ok(Replica { client_id: client_id.to_owned(), stored, discard: false, pack: None })
    }

    /// `client_id`'s record loaded from `storage` outside the cache, for
    /// reading (batch exports): its edits would carry a fresh actor.
    ///
    /// # Errors
    /// A storage failure, or a stored record that does not load.
    pub(crate) fn open(storage: &dyn ClinicStorage, client_id: &str) -> Result<Replica, ApiError> {
        Replica::load(storage, client_id, automerge::ActorId::random())
    }

    /// The estimated memory the loaded record takes.
    fn memory_estimate(&self) -> u64 {
        let (snapshot, changes) = self.stored.sizes();
        let receipts = self.record().receipts_memory() as u64;
        (snapshot + changes).max(1) * MEMORY_PER_STORED_BYTE + receipts
    }

    /// The record, for reading.
    pub(crate) fn record(&self) -> &CareRecord {
        self.stored.record()
    }

    /// Applies a clinician's edit and persists it before returning.
    pub(crate) fn edit<T>(
        &mut self,
        storage: &dyn ClinicStorage,
        f: impl FnOnce(&mut CareRecord) -> Result<T, RecordError>,
    ) -> Result<T, ApiError> {
        let value = f(self.stored.record_mut())?;
        let server_actor = self.record().actor().to_hex_string();
        self.persist(storage, None, std::slice::from_ref(&server_actor))?;
        Ok(value)
    }

    /// Processes one sync request of `device_id` (see `docs/sync-protocol.md`,
    /// "Server processing"): everything new is persisted before the answer,
    /// with the device's last sync time in the same transaction. A sync that
    /// brought nothing new records the time on its own.
    pub(crate) fn sync(
        &mut self,
        storage: &dyn ClinicStorage,
        request: &SyncRequest,
        device: SyncingDevice<'_>,
        max_record_bytes: u64,
    ) -> Result<SyncResponse, ApiError> {
        let device_id = device.id;
        if !self.stored.has_all(&request.since) {
            return Err(ApiError::history_missing());
        }
        let changes = self
            .record()
            .new_changes(&request.changes)
            .map_err(|e| ApiError::bad_request("malformed_changes", e.to_string()))?;
        // Changes whose dependencies neither the record nor the request
        // holds are answered `409` before anything is applied: nothing
        // waits inside Automerge, and the cached record stays as it is.
        let brought: HashSet<ChangeHash> = changes.iter().map(Change::hash).collect();
        if changes.iter().flat_map(Change::deps).any(|dep| !brought.contains(dep) && !self.stored.has_all(&[*dep])) {
            return Err(ApiError::history_missing());
        }
        let adding: u64 = changes.iter().map(|change| change.raw_bytes().len() as u64).sum();
        let (snapshot_bytes, change_bytes) = self.stored.sizes();
        if snapshot_bytes + change_bytes + adding > max_record_bytes {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "record_full",
                format!(
                    "the record would pass its limit of {max_record_bytes} stored bytes; the clinic must review it"
                ),
            ));
        }
        let mut new_actors = self.check_actors(storage, &changes, device_id)?;
        if request.since.is_empty() {
            // A whole-document upload (a new device, or the 409 recovery
            // after a restore) may carry other writers' changes the server
            // lost: their actors are not bound to this device. Its own are
            // bound on its next incremental sync.
            new_actors.clear();
        }
        check_changes(self.record().document(), &changes, Writer::Device)
            .map_err(|violation| ApiError::write_refused(&violation.key, violation.rule.code(), &violation.reason))?;
        if !changes.is_empty() {
            self.stored.record_mut().apply_changes(changes).map_err(|e| {
                // Whatever Automerge did before failing is not trusted.
                self.discard = true;
                ApiError::bad_request("malformed_changes", e.to_string())
            })?;
        }
        let waiting = !self.record().document().get_missing_deps(&[]).is_empty();
        let heads_known = self.stored.has_all(&request.heads);
        // What could be applied is consistent: keep it either way.
        let persisted = self.persist(storage, Some(device), &new_actors)?;
        if waiting {
            // Changes without their dependencies wait inside Automerge; drop
            // them so they cannot block other devices' syncs.
            self.discard = true;
        }
        if waiting || !heads_known {
            return Err(ApiError::history_missing());
        }
        if !persisted {
            storage.record_device_sync(device_id, Utc::now(), device.clock_offset_ms)?;
        }
        let record = self.record();
        let changes = if request.heads.is_empty() { record.save() } else { record.save_after(&request.heads) };
        Ok(SyncResponse { heads: record.heads(), changes })
    }

    /// Checks that every actor of `changes` is `device_id`'s (or new, and so
    /// becomes its): never the server's, never another device's. Returns the
    /// actors seen for the first time, to bind when the changes are stored.
    fn check_actors(
        &self,
        storage: &dyn ClinicStorage,
        changes: &[Change],
        device_id: &str,
    ) -> Result<Vec<String>, ApiError> {
        let actors: BTreeSet<String> = changes.iter().map(|c| c.actor_id().to_hex_string()).collect();
        let own = self.record().actor().to_hex_string();
        let mut new_actors = Vec::new();
        for actor in actors {
            // This process's actor counts as the clinic's before it is stored.
            let owner =
                if actor == own { Some(ActorOwner::Clinic) } else { storage.actor_owner(&self.client_id, &actor)? };
            match owner {
                None => new_actors.push(actor),
                Some(ActorOwner::Device(owner)) if owner == device_id => {}
                Some(ActorOwner::Device(_)) => {
                    return Err(ApiError::write_refused(
                        "(actor)",
                        "foreign_actor",
                        "this Automerge actor belongs to another device",
                    ));
                }
                Some(ActorOwner::Clinic) => {
                    return Err(ApiError::write_refused(
                        "(actor)",
                        "clinic_actor",
                        "changes under the clinic's Automerge actor come only from the clinic",
                    ));
                }
            }
        }
        Ok(new_actors)
    }

    /// The pack the record's urgent items are derived with: the client's
    /// assigned version, else the clinic's current pack, else the built-in
    /// default; parsed again only when it changed.
    pub(crate) fn pack(&mut self, storage: &dyn ClinicStorage) -> Result<Arc<Pack>, ApiError> {
        let assigned = self.record().assigned_pack().map(|a| a.version);
        let Some(etag) = storage.client_pack_etag(&self.client_id, assigned)? else {
            return Ok(Pack::default_pack());
        };
        if let Some((cached, pack)) = &self.pack {
            if *cached == etag {
                return Ok(Arc::clone(pack));
            }
        }
        let Some(stored) = storage.client_pack(&self.client_id, assigned)? else { return Ok(Pack::default_pack()) };
        let envelope: SignedPack = serde_json::from_str(&stored.signed_json)
            .map_err(|_| ApiError::internal("a stored pack is not a signed pack"))?;
        let pack = Pack::from_json(envelope.pack.to_string().as_bytes())
            .map(Arc::new)
            .map_err(|e| ApiError::internal(format!("a stored pack does not load: {e}")))?;
        self.pack = Some((stored.etag, Arc::clone(&pack)));
        Ok(pack)
    }

    /// Appends everything after the stored heads, with the planned sessions
    /// and alerts it implies, the actors it brings (bound to `synced_device`,
    /// or to the clinic) and the sync of `synced_device`, then compacts if
    /// due. Returns whether there was anything to append.
    fn persist(
        &mut self,
        storage: &dyn ClinicStorage,
        synced_device: Option<SyncingDevice<'_>>,
        new_actors: &[String],
    ) -> Result<bool, ApiError> {
        if !self.stored.has_unsaved() {
            // A sync that brought nothing new reads no pack.
            return Ok(false);
        }
        let pack = self.pack(storage)?;
        let client_id = &self.client_id;
        let expected_seq = self.stored.last_seq();
        let now = Utc::now();
        let mut received = Vec::new();
        let appended = self.stored.persist(|record, unsaved| {
            // Only the entries the new changes wrote can raise a new alert
            // or change the planned sessions.
            let touched = touched_entries(record.document(), &unsaved.changes);
            received = received_entries(record.document(), &unsaved.changes).into_iter().collect();
            let mut urgent = urgent_items(record, &pack, &touched, now);
            urgent.extend(crate::pack_ids::starts_on_unpublished_packs(storage, client_id, record, &touched, now)?);
            let wrote_a_session = touched.iter().any(|key| {
                key.starts_with(katcore::record::SESSION_PREFIX) || key.starts_with(katcore::record::READINESS_PREFIX)
            });
            let planned_sessions = wrote_a_session.then(|| planned_sessions(record, &pack));
            let update = RecordUpdate {
                change: &unsaved.bytes,
                expected_seq,
                planned_sessions: planned_sessions.as_deref(),
                urgent: &urgent,
                at: now,
                synced_device: synced_device.map(|device| device.id),
                new_actors,
                device_clock_offset_ms: synced_device.and_then(|device| device.clock_offset_ms),
                received: &received,
            };
            storage.append_record_change(client_id, &update)
        });
        let appended = appended.inspect_err(|_| self.discard = true)?.is_some();
        let check_ins = received.iter().filter_map(|key| key.strip_prefix(CHECK_IN_PREFIX));
        self.stored.record_mut().note_received(check_ins, now);
        if appended && self.stored.compaction_due() {
            let snapshot = self.stored.snapshot();
            match storage.compact_record(&self.client_id, &snapshot.bytes, snapshot.through_seq) {
                Ok(()) => self.stored.compacted(&snapshot),
                // The stored changes stay as they were; the next change retries.
                Err(e) => tracing::warn!(client_id = %self.client_id, error = %e, "record compaction failed"),
            }
        }
        Ok(appended)
    }
}

/// Sessions neither cancelled nor ended: what "next session" is chosen
/// from, each with the status its checklist has from the answers synced so
/// far under `pack` (the evaluation is of the scheduled start, so it does
/// not age; it is redone whenever the record's sessions or answers change).
fn planned_sessions(record: &CareRecord, pack: &Pack) -> Vec<PlannedSession> {
    record
        .sessions()
        .into_iter()
        .filter(|s| s.cancelled.is_none() && s.ended_at.is_none())
        .map(|s| PlannedSession {
            start: s.scheduled_start,
            started: s.started_at.is_some(),
            readiness: record.evaluate_session(pack, &s.id, &pack.default_locale).ok().map(|e| e.status),
        })
        .collect()
}

/// The urgent items of the entries at `touched` under `pack`, derived from
/// their values, as alerts to raise if new at `now`: an item dated more
/// than the tolerance ahead of `now` is dated `now` (`clock.rs`).
fn urgent_items(record: &CareRecord, pack: &Pack, touched: &BTreeSet<String>, now: DateTime<Utc>) -> Vec<NewAlert> {
    record
        .urgent_items_among(pack, touched)
        .into_iter()
        .map(|item| NewAlert { key: item.key, kind: item.kind, at: crate::clock::credible(item.at, now) })
        .collect()
}

/// The earliest upcoming session at `now`, as `CareRecord::upcoming_sessions` defines it.
pub(crate) fn next_session(
    planned: &[PlannedSession],
    now: DateTime<Utc>,
) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    planned
        .iter()
        .filter(|s| s.started || s.start.with_timezone(&Utc) + katcore::record::UPCOMING_GRACE >= now)
        .map(|s| s.start)
        .min()
}
