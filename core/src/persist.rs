//! The one persistence engine of every replica of a care record: the
//! device's encrypted store ([`crate::care_store`]) and the clinic server's
//! per-client replicas both keep a record as a snapshot plus a log of the
//! changes appended after it, and compact the log into a new snapshot once it
//! outgrows the snapshot.
//!
//! [`PersistedRecord`] is the record together with what is known to be
//! stored: the heads already in the log, the log's entries and sizes. The
//! storage itself is the caller's (an SQLite file on a phone, the clinic's
//! database); it is reached through the closures given to
//! [`PersistedRecord::persist`] and [`PersistedRecord::compacted`]'s caller,
//! so one engine serves stores with different transactions around the
//! append (the clinic stores its alerts in the same one).
//!
//! The invariant: every change in the record's document whose heads are
//! `saved_heads` is in storage. A caller whose append failed must reload
//! from storage (memory never runs ahead of the file).

use std::fmt;

use automerge::{ActorId, Change, ChangeHash};

use crate::record::{CareRecord, RecordError};

/// On a device, appended changes are compacted into a snapshot once they
/// exceed both the snapshot's size and this many bytes.
pub const DEVICE_COMPACTION_BYTES: u64 = 32 * 1024;

/// The clinic server's threshold: twice the device's, because the server
/// compacts on the request path under the client's lock, so fewer and
/// larger compactions cost its syncs less.
pub const CLINIC_COMPACTION_BYTES: u64 = 64 * 1024;

/// A record as stored: the latest snapshot and the changes after it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// The latest snapshot, if the document was ever compacted.
    pub snapshot: Option<Vec<u8>>,
    /// The last change the snapshot includes; 0 without a snapshot.
    pub snapshot_through_seq: i64,
    /// The changes after the snapshot, by ascending seq.
    pub changes: Vec<(i64, Vec<u8>)>,
}

/// Shows sizes only, so that logging a document never logs its content.
impl fmt::Debug for StoredDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seqs: Vec<i64> = self.changes.iter().map(|(seq, _)| *seq).collect();
        f.debug_struct("StoredDocument")
            .field("snapshot_bytes", &self.snapshot.as_ref().map(Vec::len))
            .field("snapshot_through_seq", &self.snapshot_through_seq)
            .field("change_seqs", &seqs)
            .finish()
    }
}

/// The changes made since the last append, ready to store as one log entry.
#[derive(Debug)]
pub struct Unsaved {
    /// The changes, in the order Automerge applied them.
    pub changes: Vec<Change>,
    /// Their bytes, concatenated: what the log entry holds (what
    /// `Automerge::save_after` writes, and `load_incremental` reads back).
    pub bytes: Vec<u8>,
    heads: Vec<ChangeHash>,
}

/// A snapshot to write: the whole record, covering the log through `through_seq`.
#[derive(Debug)]
pub struct Snapshot {
    /// The saved document.
    pub bytes: Vec<u8>,
    /// The last log entry it covers.
    pub through_seq: i64,
}

/// A care record with what is known to be in its storage.
#[derive(Debug)]
pub struct PersistedRecord {
    record: CareRecord,
    saved_heads: Vec<ChangeHash>,
    /// The log after the snapshot: each entry's seq and size.
    log: Vec<(i64, u64)>,
    /// The seq of the last entry appended (or covered by the snapshot).
    last_seq: i64,
    snapshot_bytes: u64,
    min_compaction_bytes: u64,
}

impl PersistedRecord {
    /// Loads `stored` with `actor` for the record's own edits; the log is
    /// compacted once it passes both the snapshot and `min_compaction_bytes`.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when the snapshot or a change does not load
    /// or a change's dependencies are missing: a damaged store, never an
    /// empty record.
    pub fn load(stored: &StoredDocument, actor: ActorId, min_compaction_bytes: u64) -> Result<Self, RecordError> {
        let record = CareRecord::load_parts(
            stored.snapshot.as_deref(),
            stored.changes.iter().map(|(_, bytes)| bytes.as_slice()),
            actor,
        )?;
        Ok(PersistedRecord {
            saved_heads: record.heads(),
            record,
            log: stored.changes.iter().map(|(seq, bytes)| (*seq, bytes.len() as u64)).collect(),
            last_seq: stored.changes.last().map_or(stored.snapshot_through_seq, |(seq, _)| *seq),
            snapshot_bytes: stored.snapshot.as_ref().map_or(0, |s| s.len() as u64),
            min_compaction_bytes,
        })
    }

    /// The record.
    pub fn record(&self) -> &CareRecord {
        &self.record
    }

    /// The record, to change; the changes are stored by the next [`PersistedRecord::persist`].
    pub fn record_mut(&mut self) -> &mut CareRecord {
        &mut self.record
    }

    /// Bytes of the snapshot and of the log after it.
    pub fn sizes(&self) -> (u64, u64) {
        (self.snapshot_bytes, self.log.iter().map(|(_, bytes)| bytes).sum())
    }

    /// Whether every change at `hashes` is in the record.
    pub fn has_all(&self, hashes: &[ChangeHash]) -> bool {
        let doc = self.record.document();
        hashes.iter().all(|hash| doc.get_change_meta_by_hash(hash).is_some())
    }

    /// Whether the record holds changes not yet stored (cheap: compares heads).
    pub fn has_unsaved(&self) -> bool {
        self.record.heads() != self.saved_heads
    }

    /// The changes not yet stored, or `None` when there are none.
    pub fn unsaved(&self) -> Option<Unsaved> {
        let heads = self.record.heads();
        if heads == self.saved_heads {
            return None;
        }
        let changes = self.record.document().get_changes(&self.saved_heads);
        let bytes = changes.iter().flat_map(|c| c.raw_bytes().iter().copied()).collect();
        Some(Unsaved { changes, bytes, heads })
    }

    /// The seq of the last stored log entry (or of the last the snapshot
    /// covers): what the next append expects to follow.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Stores the unsaved changes as one log entry with `append`, which is
    /// given the record (to derive what else the same transaction stores)
    /// and returns the entry's seq. Returns what was stored, or `None` when
    /// nothing was unsaved.
    ///
    /// # Errors
    /// `append`'s error; the record then runs ahead of storage, and the
    /// caller must reload it.
    pub fn persist<E>(
        &mut self,
        append: impl FnOnce(&CareRecord, &Unsaved) -> Result<i64, E>,
    ) -> Result<Option<Unsaved>, E> {
        let Some(unsaved) = self.unsaved() else { return Ok(None) };
        let seq = append(&self.record, &unsaved)?;
        self.saved_heads.clone_from(&unsaved.heads);
        self.last_seq = seq;
        self.log.push((seq, unsaved.bytes.len() as u64));
        Ok(Some(unsaved))
    }

    /// Whether the log has outgrown both the snapshot and the threshold.
    pub fn compaction_due(&self) -> bool {
        self.sizes().1 > self.snapshot_bytes.max(self.min_compaction_bytes)
    }

    /// A snapshot of the record covering the log through the last entry
    /// appended. Only what was stored may be covered, so call it after
    /// [`PersistedRecord::persist`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { bytes: self.record.save(), through_seq: self.last_seq }
    }

    /// Notes that `snapshot` was written and the log entries it covers dropped.
    pub fn compacted(&mut self, snapshot: &Snapshot) {
        self.snapshot_bytes = snapshot.bytes.len() as u64;
        self.log.retain(|(seq, _)| *seq > snapshot.through_seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::Pack;
    use crate::record::Party;
    use chrono::{DateTime, Utc};

    fn at() -> DateTime<Utc> {
        "2026-05-01T12:00:00Z".parse().unwrap()
    }

    /// Storage as a vector: what each call appended or compacted.
    #[derive(Default)]
    struct Memory(StoredDocument);

    impl Memory {
        fn append(&mut self, unsaved: &Unsaved) -> Result<i64, ()> {
            let seq = self.0.changes.last().map_or(self.0.snapshot_through_seq, |(seq, _)| *seq) + 1;
            self.0.changes.push((seq, unsaved.bytes.clone()));
            Ok(seq)
        }

        fn compact(&mut self, snapshot: &Snapshot) {
            self.0.snapshot = Some(snapshot.bytes.clone());
            self.0.snapshot_through_seq = snapshot.through_seq;
            self.0.changes.retain(|(seq, _)| *seq > snapshot.through_seq);
        }
    }

    fn write_vitals(record: &mut PersistedRecord) {
        let pack = Pack::default_pack();
        let reading = crate::checklist::BloodPressureReading { systolic: 120, diastolic: 80 };
        record.record_mut().add_vitals(&pack, reading, at(), None).unwrap();
    }

    #[test]
    fn appends_only_what_is_new_and_reloads_the_same_record() {
        let mut storage = Memory::default();
        let mut record = PersistedRecord::load(&storage.0, ActorId::random(), DEVICE_COMPACTION_BYTES).unwrap();
        assert!(record.persist(|_, u| storage.append(u)).unwrap().is_none(), "nothing to store yet");
        assert!(!record.has_unsaved());
        write_vitals(&mut record);
        assert!(record.has_unsaved());
        assert!(record.persist(|_, u| storage.append(u)).unwrap().is_some());
        assert!(record.persist(|_, u| storage.append(u)).unwrap().is_none(), "stored once");
        assert_eq!(storage.0.changes.len(), 1);
        let reloaded = PersistedRecord::load(&storage.0, ActorId::random(), DEVICE_COMPACTION_BYTES).unwrap();
        assert_eq!(reloaded.record().heads(), record.record().heads());
    }

    #[test]
    fn a_failed_append_keeps_the_changes_unsaved() {
        let mut record =
            PersistedRecord::load(&StoredDocument::default(), ActorId::random(), DEVICE_COMPACTION_BYTES).unwrap();
        write_vitals(&mut record);
        assert_eq!(record.persist(|_, _| Err::<i64, _>("disk full")).unwrap_err(), "disk full");
        assert!(record.unsaved().is_some());
    }

    #[test]
    fn compaction_is_due_past_both_the_snapshot_and_the_threshold_and_keeps_later_entries() {
        let mut storage = Memory::default();
        let mut record = PersistedRecord::load(&storage.0, ActorId::random(), 2_000).unwrap();
        while !record.compaction_due() {
            record.record_mut().schedule_session(at().fixed_offset(), "Europe/Madrid", Party::Client).unwrap();
            record.persist(|_, u| storage.append(u)).unwrap();
        }
        assert!(record.sizes().1 > 2_000);
        let snapshot = record.snapshot();
        // A write lands between taking the snapshot and storing it.
        write_vitals(&mut record);
        record.persist(|_, u| storage.append(u)).unwrap();
        storage.compact(&snapshot);
        record.compacted(&snapshot);
        assert_eq!(record.sizes().1, storage.0.changes.iter().map(|(_, c)| c.len() as u64).sum::<u64>());
        assert_eq!(storage.0.changes.len(), 1, "the later entry stays in the log");
        assert!(!record.compaction_due());
        let reloaded = PersistedRecord::load(&storage.0, ActorId::random(), 2_000).unwrap();
        assert_eq!(reloaded.record().heads(), record.record().heads());
        assert_eq!(reloaded.sizes(), record.sizes());
    }
}
