//! The record's Automerge document and the bytes that reach it from
//! outside (a peer, the disk): loading, merging and saving, with the
//! defences against malformed or hostile bytes (bundle and bomb checks,
//! panics contained) that every load goes through.

use super::*;

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
pub(super) fn parse_untrusted<T>(
    bytes: &[u8],
    load: impl FnOnce() -> Result<T, AutomergeError>,
) -> Result<T, RecordError> {
    chunks::refuse_bundles(bytes)?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)) {
        Ok(result) => Ok(result?),
        Err(_) => Err(RecordError::Malformed { reason: "a chunk could not be decoded".into() }),
    }
}

impl CareRecord {
    /// Loads a record from saved bytes (a whole document, or concatenated changes).
    ///
    /// # Errors
    /// [`RecordError::Malformed`] when the bytes are not an Automerge document
    /// or lack changes they depend on.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, RecordError> {
        chunks::refuse_bombs(bytes)?;
        let mut record =
            CareRecord::with_document(parse_untrusted(bytes, || Automerge::load(bytes))?.with_actor(actor));
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
        let mut record = CareRecord::with_document(doc.with_actor(actor));
        for change in changes {
            parse_untrusted(change, || record.doc.load_incremental(change))?;
        }
        record.check_complete()?;
        Ok(record)
    }

    pub(super) fn check_complete(&mut self) -> Result<(), RecordError> {
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
        let result = parse_untrusted(bytes, || self.doc.load_incremental(bytes));
        self.baselines_after(None);
        result?;
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
        // Changes that wait for missing dependencies (or release earlier
        // waiting ones) are not folded into the baselines one by one; with no
        // memo there is nothing to fold, and nothing is asked of Automerge.
        let folded = (self.baselines.get().is_some() && self.doc.get_missing_deps(&[]).is_empty())
            .then(|| baselines::foldable(&changes))
            .flatten();
        let doc = &mut self.doc;
        let result = chunks::contained(|| doc.apply_changes(changes).map_err(|e| e.to_string()));
        let folded = folded.filter(|_| result.is_ok() && self.doc.get_missing_deps(&[]).is_empty());
        self.baselines_after(folded.as_deref());
        result
    }

    /// Merges another in-memory replica.
    ///
    /// # Errors
    /// [`RecordError::Malformed`] if the documents cannot be merged.
    pub fn merge(&mut self, other: &CareRecord) -> Result<(), RecordError> {
        let mut other = other.doc.clone();
        let result = self.doc.merge(&mut other);
        self.baselines_after(None);
        result?;
        Ok(())
    }
}
