//! The care record kept in the encrypted local store: what an app opens.
//!
//! A [`CareStore`] is the record in memory plus its encrypted SQLite file.
//! Every mutating call applies one Automerge change and appends exactly that
//! change (not a re-save of the record) to the store in one transaction
//! before it returns: a call that returned is on disk. When the appended
//! changes outgrow the last snapshot, a background thread writes a fresh
//! snapshot and drops the changes it covers. Opening loads the snapshot and
//! then the later changes.
//!
//! Beside the changes, each of those transactions also stores the record's
//! current state as a first screen needs it (`current`): what
//! [`crate::Device::first_view`] reads without loading the history.
//!
//! Private journal entries never enter the record (so they never sync); they
//! are kept as separate encrypted blobs in the same file, and listings merge
//! them in.
//!
//! # Concurrency
//! `CareStore` is `Send + Sync` and cheap to share (`Arc` inside). The record
//! sits behind a read–write lock: reads (the UI thread) run in parallel with
//! each other; a write holds the lock while it applies its change and
//! persists it, so readers never see a change that is not yet durable. The
//! SQLite connection is used by one call at a time. Compaction reads the
//! record under the read lock, then writes the snapshot without holding it.

mod current;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use automerge::{ActorId, ChangeHash};
use chrono::{DateTime, FixedOffset, Utc};

use crate::checklist::{evaluate_in, Answers, Evaluation};
use crate::pack::Pack;
use crate::persist::{PersistedRecord, DEVICE_COMPACTION_BYTES};
use crate::record::{
    check_changes, sort_journal, touched_entries, CareRecord, DuePrompt, JournalEntry, JournalLinks, RecordError,
    Writer,
};
use crate::store::{Store, StoreError, StoreKey};
pub(crate) use current::Current;
use current::{META_KEY as CURRENT_META_KEY, SEQ_KEY as CURRENT_SEQ_KEY};

/// Why a care-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum CareStoreError {
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record refused the operation.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The care record in its encrypted store.
#[derive(Clone, Debug)]
pub struct CareStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    state: RwLock<State>,
    compacting: AtomicBool,
    /// The checklist inputs [`CareStore::evaluate_session`] decoded last.
    checklist: Mutex<Option<ChecklistInputs>>,
}

/// One session's decoded checklist inputs, and what they were decoded from.
/// The record's heads name its whole state, so equal heads, session and pack
/// mean equal inputs.
#[derive(Debug)]
struct ChecklistInputs {
    heads: Vec<ChangeHash>,
    session_id: String,
    pack: Arc<Pack>,
    start: DateTime<FixedOffset>,
    zone: Option<crate::zone::Zone>,
    answers: Answers,
}

#[derive(Debug)]
struct State {
    /// The record and what of it is stored (`crate::persist`).
    persisted: PersistedRecord,
    private: BTreeMap<String, JournalEntry>,
    /// What a first screen is made from, as stored ([`current`]).
    current: Current,
}

impl CareStore {
    /// Opens (or creates) the store at `path` with the host app's key.
    ///
    /// # Errors
    /// Any [`StoreError`] of opening (`WrongKey`, `Corrupt`, `TooNew`, …);
    /// a record whose changes do not load is `Corrupt`, never an empty record.
    pub fn open(path: &Path, key: &StoreKey) -> Result<CareStore, CareStoreError> {
        let store = Store::open(path, key)?;
        // A fresh actor for every open: a device restored from a backup (or a
        // copied store) can then never reuse an (actor, sequence number) pair
        // that already reached another replica, which Automerge would refuse.
        let state = load_state(&store, ActorId::random())?;
        Ok(CareStore {
            inner: Arc::new(Inner {
                store,
                state: RwLock::new(state),
                compacting: AtomicBool::new(false),
                checklist: Mutex::new(None),
            }),
        })
    }

    /// Reads the record.
    pub fn read<R>(&self, f: impl FnOnce(&CareRecord) -> R) -> R {
        f(self.inner.read().persisted.record())
    }

    /// Applies one change to the record and persists it before returning.
    ///
    /// If `f` fails, nothing changes. If persisting fails, the in-memory
    /// record is reloaded from disk, so memory never runs ahead of the file.
    ///
    /// # Errors
    /// The error of `f`, or the [`StoreError`] of persisting.
    pub fn update<R>(&self, f: impl FnOnce(&mut CareRecord) -> Result<R, RecordError>) -> Result<R, CareStoreError> {
        let mut state = self.inner.write();
        let result = f(state.persisted.record_mut())?;
        self.inner.persist(&mut state)?;
        drop(state);
        self.inner.maybe_compact_in_background();
        Ok(result)
    }

    /// Evaluates a session's checklist against `pack`: the same result as
    /// [`CareRecord::evaluate_session`], made for a checklist screen that
    /// evaluates often. The answers decoded by the previous call are reused
    /// while the record's heads, the session and the pack are the same (any
    /// change to the record, local or merged, moves the heads); the checklist
    /// engine itself runs on every call.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn evaluate_session(
        &self,
        pack: &Arc<Pack>,
        session_id: &str,
        locale: &str,
    ) -> Result<Evaluation, RecordError> {
        let mut slot = self.inner.checklist.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let inputs = {
            let state = self.inner.read();
            let heads = state.persisted.record().heads();
            match slot.take() {
                Some(inputs)
                    if inputs.heads == heads && inputs.session_id == session_id && Arc::ptr_eq(&inputs.pack, pack) =>
                {
                    inputs
                }
                _ => {
                    let (start, zone, answers) = state.persisted.record().checklist_inputs(pack, session_id)?;
                    ChecklistInputs {
                        heads,
                        session_id: session_id.to_owned(),
                        pack: Arc::clone(pack),
                        start,
                        zone,
                        answers,
                    }
                }
            }
        };
        let evaluation = evaluate_in(pack, inputs.start, inputs.zone.as_ref(), &inputs.answers, locale);
        *slot = Some(inputs);
        Ok(evaluation)
    }

    /// Merges changes relayed by the clinic server (the clinic's, or the
    /// client's other devices') and persists them, once each is checked to be
    /// a write one of them may make ([`Writer::Relayed`]). Returns whether
    /// anything new arrived.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] for bytes that are not Automerge changes,
    /// [`RecordError::Refused`] for a write no writer may make (nothing
    /// changes then), or a [`StoreError`] of persisting.
    pub fn merge_remote(&self, bytes: &[u8]) -> Result<bool, CareStoreError> {
        let before = self.read(CareRecord::heads);
        self.update(|record| {
            let changes = record.new_changes(bytes)?;
            check_changes(record.document(), &changes, Writer::Relayed).map_err(RecordError::Refused)?;
            record.apply_changes(changes)
        })?;
        Ok(self.read(CareRecord::heads) != before)
    }

    /// Writes a journal entry; a private one stays on this device only.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for bad text or links, or a [`StoreError`].
    pub fn write_journal_entry(
        &self,
        text: &str,
        links: &JournalLinks,
        private: bool,
        at: DateTime<Utc>,
    ) -> Result<String, CareStoreError> {
        if !private {
            return self.update(|record| record.write_journal_entry(text, links, at));
        }
        self.read(|record| record.check_journal_entry(text, links))?;
        let entry = JournalEntry {
            id: crate::record::new_id(),
            created_at: at,
            edited_at: None,
            text: text.to_owned(),
            conflicting_texts: Vec::new(),
            prompt_id: links.prompt_id.clone(),
            session_id: links.session_id.clone(),
            private: true,
        };
        self.inner.put_private(entry)
    }

    /// Replaces a journal entry's text, shared or private.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] or [`RecordError::InvalidInput`], or a [`StoreError`].
    pub fn edit_journal_entry(&self, id: &str, text: &str, at: DateTime<Utc>) -> Result<(), CareStoreError> {
        let private = self.inner.read().private.get(id).cloned();
        match private {
            None => self.update(|record| record.edit_journal_entry(id, text, at)),
            Some(mut entry) => {
                crate::record::check_text("text", text)?;
                entry.text = text.to_owned();
                entry.edited_at = Some(at);
                self.inner.put_private(entry).map(|_| ())
            }
        }
    }

    /// Deletes a journal entry. A shared one is marked deleted on every
    /// replica; a private one is erased from this device.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or a [`StoreError`].
    pub fn delete_journal_entry(&self, id: &str, at: DateTime<Utc>) -> Result<(), CareStoreError> {
        let mut state = self.inner.write();
        if state.private.contains_key(id) {
            return self.inner.delete_private(&mut state, id);
        }
        drop(state);
        self.update(|record| record.delete_journal_entry(id, crate::record::Party::Client, at))
    }

    /// Shared and private journal entries, newest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        let state = self.inner.read();
        let mut entries = state.persisted.record().journal();
        entries.extend(state.private.values().cloned());
        sort_journal(&mut entries);
        entries
    }

    /// Integration prompts due at `now` and not yet answered by any entry,
    /// shared or private.
    pub fn due_integration_prompts(&self, pack: &Pack, now: DateTime<Utc>, locale: &str) -> Vec<DuePrompt> {
        let state = self.inner.read();
        let private: Vec<JournalEntry> = state.private.values().cloned().collect();
        state.persisted.record().due_integration_prompts(pack, now, locale, &private)
    }

    /// Writes a snapshot now and drops the changes it covers.
    ///
    /// # Errors
    /// A [`StoreError`] of writing; the store keeps its previous contents.
    pub fn compact_now(&self) -> Result<(), CareStoreError> {
        self.inner.compact()
    }

    /// The underlying encrypted store (the sync client keeps its state there).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The seq of the last change stored.
    pub fn last_seq(&self) -> i64 {
        self.inner.read().persisted.last_seq()
    }

    /// Bytes of the snapshot and of the changes appended after it.
    pub fn stored_bytes(&self) -> (u64, u64) {
        self.inner.read().persisted.sizes()
    }
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic inside a reader cannot leave the state half-written.
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends everything after the stored heads as one change blob, and
    /// the current state it leads to in the same transaction.
    fn persist(&self, state: &mut State) -> Result<(), CareStoreError> {
        let State { persisted, current, .. } = state;
        let appended = persisted.persist(|record, unsaved| {
            let touched = touched_entries(record.document(), &unsaved.changes);
            self.store.append_change_with_meta(&unsaved.bytes, &mut |seq| {
                let mut meta = vec![(CURRENT_SEQ_KEY, Current::encode_seq(seq))];
                if current.apply_change(record, &touched, Utc::now()) {
                    meta.push((CURRENT_META_KEY, current.encode()));
                }
                meta
            })
        });
        match appended {
            Ok(_) => Ok(()),
            Err(error) => {
                // Memory must not run ahead of the file: go back to what is stored.
                let actor = state.persisted.record().actor().clone();
                *state = load_state(&self.store, actor)?;
                Err(error.into())
            }
        }
    }

    fn put_private(&self, entry: JournalEntry) -> Result<String, CareStoreError> {
        let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Storage { reason: e.to_string() })?;
        let mut state = self.write();
        self.write_private(&mut state, &entry.id, Some((&entry, &bytes)))?;
        let id = entry.id.clone();
        state.private.insert(id.clone(), entry);
        Ok(id)
    }

    fn delete_private(&self, state: &mut State, id: &str) -> Result<(), CareStoreError> {
        self.write_private(state, id, None)?;
        state.private.remove(id);
        Ok(())
    }

    /// Stores (`Some`, with its bytes) or erases (`None`) the private entry
    /// `id`, and the current state that follows, in one transaction.
    fn write_private(
        &self,
        state: &mut State,
        id: &str,
        entry: Option<(&JournalEntry, &[u8])>,
    ) -> Result<(), CareStoreError> {
        let moved = state.current.note_entry(id, entry.map(|(entry, _)| entry));
        let current = moved.then(|| state.current.encode());
        let written = self.store.write_private_with_meta(
            id,
            entry.map(|(_, bytes)| bytes),
            current.as_deref().map(|bytes| (CURRENT_META_KEY, bytes)),
        );
        if written.is_err() {
            // Nothing was written: the state follows the entry as it was.
            state.current.note_entry(id, state.private.get(id));
        }
        Ok(written?)
    }

    fn compaction_due(&self) -> bool {
        self.read().persisted.compaction_due()
    }

    fn maybe_compact_in_background(self: &Arc<Self>) {
        if self.compaction_due() && !self.compacting.swap(true, Ordering::AcqRel) {
            let inner = Arc::clone(self);
            std::thread::spawn(move || {
                // Writes that arrive meanwhile may make another round due;
                // keep going until it is not. A failed compaction leaves the
                // store as it was; the next write tries again.
                while inner.compaction_due() && inner.compact().is_ok() {}
                inner.compacting.store(false, Ordering::Release);
                // A write may have seen the flag set just before it cleared.
                if inner.compaction_due() {
                    inner.maybe_compact_in_background();
                }
            });
        }
    }

    fn compact(&self) -> Result<(), CareStoreError> {
        // The snapshot is taken under the read lock and written without it;
        // writes meanwhile append after the seq it covers.
        let snapshot = self.read().persisted.snapshot();
        self.store.compact(&snapshot.bytes, snapshot.through_seq)?;
        self.write().persisted.compacted(&snapshot);
        Ok(())
    }
}

fn load_state(store: &Store, actor: ActorId) -> Result<State, CareStoreError> {
    let persisted = PersistedRecord::load(&store.load_document()?, actor, DEVICE_COMPACTION_BYTES)
        .map_err(|_| StoreError::Corrupt { what: "the care record's changes do not load" })?;
    let mut private = BTreeMap::new();
    for (id, bytes) in store.private_entries()? {
        let entry: JournalEntry =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt { what: "a private journal entry" })?;
        private.insert(id, entry);
    }
    let seq = persisted.last_seq();
    let current = match Current::stored(store, seq).ok().flatten() {
        Some(current) => current,
        None => {
            let current = Current::build(persisted.record(), private.values(), Utc::now());
            // Best effort, the state before the seq that vouches for it:
            // without both the next open shows no first view
            // (`Device::first_view` says so) and builds it again.
            if store.put_meta(CURRENT_META_KEY, &current.encode()).is_ok() {
                let _ = store.put_meta(CURRENT_SEQ_KEY, &Current::encode_seq(seq));
            }
            current
        }
    };
    Ok(State { persisted, private, current })
}
