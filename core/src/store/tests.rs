//! Scenarios for the store: round trips, what reaches the disk, wrong keys,
//! damaged and foreign files, versions and concurrent use.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("katcore-store-{name}-{}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes(&[byte; 32]).unwrap()
}

fn file_hash(path: &Path) -> Vec<u8> {
    Sha256::digest(fs::read(path).unwrap()).to_vec()
}

/// A store at `dir/client.db` holding a snapshot, later changes, a private
/// entry, a meta value and a sync state.
fn populated_store(dir: &TempDir) -> PathBuf {
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    for i in 0..4 {
        store.append_change(format!("change {i}").as_bytes()).unwrap();
    }
    store.compact(b"snapshot through 2", 2).unwrap();
    store.put_private("entry-1", b"private").unwrap();
    store.put_meta("actor", b"actor-id").unwrap();
    store.put_sync_state("clinic", b"sync").unwrap();
    path
}

/// Runs `sql` with `params` on the raw database file, as an attacker or a
/// damaged disk would change it.
fn tamper(path: &Path, sql: &str, params: impl rusqlite::Params) {
    let conn = Connection::open(path).unwrap();
    conn.execute(sql, params).unwrap();
    conn.close().unwrap();
}

fn raw_blob(path: &Path, sql: &str) -> Vec<u8> {
    let conn = Connection::open(path).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn flipped(mut blob: Vec<u8>) -> Vec<u8> {
    // Past the version byte and the nonce: inside the ciphertext or tag.
    let i = blob.len() - 3;
    blob[i] ^= 0x20;
    blob
}

/// Opens `path` and loads everything; the first error, or `Ok` if it all reads.
fn open_and_read_all(path: &Path, key: &StoreKey) -> Result<(), StoreError> {
    let store = Store::open(path, key)?;
    store.load_document()?;
    store.private_entries()?;
    store.get_meta("actor")?;
    store.get_sync_state("clinic")?;
    Ok(())
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn round_trip_through_compaction_and_reopen() {
    let dir = TempDir::new("round-trip");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(store.load_document().unwrap(), StoredDocument::default());

    let seqs: Vec<i64> = (1..=5).map(|i| store.append_change(format!("change {i}").as_bytes()).unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    store.compact(b"snapshot through 3", 3).unwrap();
    assert_eq!(store.append_change(b"change 6").unwrap(), 6);
    drop(store);

    let doc = Store::open(&path, &key(1)).unwrap().load_document().unwrap();
    assert_eq!(doc.snapshot, Some(b"snapshot through 3".to_vec()));
    assert_eq!(doc.snapshot_through_seq, 3);
    assert_eq!(doc.changes, vec![(4, b"change 4".to_vec()), (5, b"change 5".to_vec()), (6, b"change 6".to_vec())]);
}

#[test]
fn compaction_keeps_a_change_appended_meanwhile() {
    let dir = TempDir::new("compact-race");
    let store = Store::open(&dir.path().join("client.db"), &key(1)).unwrap();
    store.append_change(b"one").unwrap();
    store.append_change(b"two").unwrap();
    // The caller snapshots what it loaded (through 2) while another thread appends.
    let loaded = store.load_document().unwrap();
    let meanwhile = store.append_change(b"three").unwrap();
    store.compact(b"one+two", loaded.changes.last().unwrap().0).unwrap();

    let doc = store.load_document().unwrap();
    assert_eq!(doc.snapshot_through_seq, 2);
    assert_eq!(doc.changes, vec![(meanwhile, b"three".to_vec())]);
    assert_eq!(store.sizes().unwrap().change_count, 1);
}

#[test]
fn seqs_keep_rising_after_everything_is_compacted() {
    let dir = TempDir::new("seq-after-compact");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    store.append_change(b"one").unwrap();
    store.append_change(b"two").unwrap();
    store.compact(b"all", 2).unwrap();
    assert_eq!(store.sizes().unwrap().change_count, 0);
    drop(store);

    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(store.append_change(b"three").unwrap(), 3);
    assert_eq!(store.load_document().unwrap().changes, vec![(3, b"three".to_vec())]);
}

#[test]
fn compaction_refuses_stale_or_future_snapshots() {
    let dir = TempDir::new("compact-args");
    let store = Store::open(&dir.path().join("client.db"), &key(1)).unwrap();
    for _ in 0..4 {
        store.append_change(b"change").unwrap();
    }
    assert!(matches!(store.compact(b"future", 5), Err(StoreError::InvalidArgument { .. })));
    store.compact(b"through 3", 3).unwrap();
    assert!(matches!(store.compact(b"stale", 2), Err(StoreError::InvalidArgument { .. })));
    assert!(matches!(store.compact(b"negative", -1), Err(StoreError::InvalidArgument { .. })));
    // Re-compacting at the same point is fine.
    store.compact(b"through 3 again", 3).unwrap();

    let doc = store.load_document().unwrap();
    assert_eq!(doc.snapshot, Some(b"through 3 again".to_vec()));
    assert_eq!(doc.changes, vec![(4, b"change".to_vec())]);
}

#[test]
fn private_entries_meta_and_sync_state_round_trip() {
    let dir = TempDir::new("keyed");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    store.put_private("b", b"second").unwrap();
    store.put_private("a", b"first").unwrap();
    store.put_private("c", b"third").unwrap();
    store.put_private("a", b"first, edited").unwrap();
    store.delete_private("c").unwrap();
    store.delete_private("never existed").unwrap();
    store.put_meta("actor", b"actor-id").unwrap();
    store.put_sync_state("clinic-a", b"state a").unwrap();
    store.put_sync_state("clinic-a", b"state a2").unwrap();
    drop(store);

    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(
        store.private_entries().unwrap(),
        vec![("a".to_string(), b"first, edited".to_vec()), ("b".to_string(), b"second".to_vec())]
    );
    assert_eq!(store.get_meta("actor").unwrap(), Some(b"actor-id".to_vec()));
    assert_eq!(store.get_meta("missing").unwrap(), None);
    assert_eq!(store.get_sync_state("clinic-a").unwrap(), Some(b"state a2".to_vec()));
    assert_eq!(store.get_sync_state("clinic-b").unwrap(), None);
    // Private entries, meta and sync state are not part of the document.
    assert_eq!(store.load_document().unwrap(), StoredDocument::default());
}

#[test]
fn the_key_check_row_is_reserved() {
    let dir = TempDir::new("reserved");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    assert!(matches!(store.put_meta("key_check", b"x"), Err(StoreError::InvalidArgument { .. })));
    assert!(matches!(store.get_meta("key_check"), Err(StoreError::InvalidArgument { .. })));
    drop(store);
    Store::open(&path, &key(1)).unwrap();
}

#[test]
fn sizes_count_stored_ciphertext() {
    let dir = TempDir::new("sizes");
    let store = Store::open(&dir.path().join("client.db"), &key(1)).unwrap();
    assert_eq!(store.sizes().unwrap(), StoreSizes::default());
    store.append_change(&[0; 100]).unwrap();
    store.append_change(&[0; 50]).unwrap();
    // Each blob carries a version byte, a 24-byte nonce and a 16-byte tag.
    assert_eq!(store.sizes().unwrap(), StoreSizes { snapshot_bytes: 0, change_bytes: 150 + 2 * 41, change_count: 2 });
    store.compact(&[0; 10], 1).unwrap();
    assert_eq!(store.sizes().unwrap(), StoreSizes { snapshot_bytes: 10 + 41, change_bytes: 50 + 41, change_count: 1 });
}

#[test]
fn plaintext_never_reaches_the_disk() {
    const MARKER: &str = "MARKER-4f1c-phq9-ideation";
    let dir = TempDir::new("plaintext");
    let path = dir.path().join("client.db");
    let marker_in = |context: &str| format!("{context}: {MARKER} {MARKER}").into_bytes();

    let files_with_marker = || -> Vec<PathBuf> {
        fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|file| fs::read(file).unwrap().windows(MARKER.len()).any(|w| w == MARKER.as_bytes()))
            .collect()
    };

    let store = Store::open(&path, &key(1)).unwrap();
    let seq = store.append_change(&marker_in("change")).unwrap();
    store.compact(&marker_in("snapshot"), seq).unwrap();
    store.append_change(&marker_in("later change")).unwrap();
    store.put_private("entry-1", &marker_in("private")).unwrap();
    store.put_meta("actor", &marker_in("meta")).unwrap();
    store.put_sync_state("clinic", &marker_in("sync")).unwrap();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false), "the WAL is in use and is scanned");
    assert_eq!(files_with_marker(), Vec::<PathBuf>::new(), "while open");
    drop(store);
    assert_eq!(files_with_marker(), Vec::<PathBuf>::new(), "after closing");

    // The marker really went through: it reads back.
    let store = Store::open(&path, &key(1)).unwrap();
    assert_eq!(store.get_meta("actor").unwrap(), Some(marker_in("meta")));
}

#[test]
fn wrong_key_is_refused_and_the_file_is_untouched() {
    let dir = TempDir::new("wrong-key");
    let path = populated_store(&dir);
    let before = file_hash(&path);

    let err = Store::open(&path, &key(2)).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    assert_eq!(err.to_string(), "the store key is wrong for this file");
    assert_eq!(file_hash(&path), before);
    assert!(open_and_read_all(&path, &key(1)).is_ok());
}

#[test]
fn wrong_key_after_a_crash_leaves_the_unapplied_log_alone() {
    let dir = TempDir::new("wrong-key-crash");
    let path = populated_store(&dir);
    // A process that died after committing: its last write is only in the WAL.
    let conn = Connection::open(&path).unwrap();
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true).unwrap();
    conn.execute("DELETE FROM private_entries", []).unwrap();
    conn.close().unwrap();
    let before = file_hash(&path);

    assert!(matches!(Store::open(&path, &key(2)), Err(StoreError::WrongKey)));
    assert_eq!(file_hash(&path), before, "the log was not checkpointed into the file");
    assert_eq!(Store::open(&path, &key(1)).unwrap().private_entries().unwrap(), vec![]);
}

#[test]
fn caller_chosen_keys_are_blinded_in_the_file() {
    let dir = TempDir::new("blinded");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    let clinic = "https://riverside-clinic.example/katcore";
    store.put_sync_state(clinic, b"state").unwrap();
    store.put_private("journal-9f2c41", b"private words").unwrap();
    store.put_meta("pack-etag-meta", b"etag").unwrap();
    assert_eq!(store.get_sync_state(clinic).unwrap(), Some(b"state".to_vec()));
    assert_eq!(store.private_entries().unwrap(), vec![("journal-9f2c41".to_owned(), b"private words".to_vec())]);
    store.delete_private("journal-9f2c41").unwrap();
    assert!(store.private_entries().unwrap().is_empty());
    store.put_private("journal-9f2c41", b"private words").unwrap();
    drop(store);
    for file in std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()) {
        let bytes = std::fs::read(&file).unwrap();
        for clear in ["riverside-clinic", "journal-9f2c41", "pack-etag-meta"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear.as_bytes()), "{clear} in {}", file.display());
        }
    }
    // A value moved to another key's row does not open there.
    let store = Store::open(&path, &key(1)).unwrap();
    store.put_meta("other", b"x").unwrap();
    drop(store);
    let blob = raw_blob(&path, "SELECT blob FROM sync_state");
    tamper(&path, "UPDATE meta SET value = ?1 WHERE key != 'key_check'", [blob]);
    let store = Store::open(&path, &key(1)).unwrap();
    assert!(matches!(store.get_meta("other"), Err(StoreError::Corrupt { .. })));
}

#[test]
fn a_key_of_31_bytes_is_invalid() {
    assert!(matches!(StoreKey::from_bytes(&[1; 31]), Err(StoreError::InvalidKey)));
}

#[test]
fn a_flipped_byte_in_any_blob_is_corrupt_and_the_file_is_untouched() {
    for (table, select, update) in [
        ("changes", "SELECT blob FROM changes WHERE seq = 4", "UPDATE changes SET blob = ?1 WHERE seq = 4"),
        ("snapshot", "SELECT blob FROM snapshot", "UPDATE snapshot SET blob = ?1"),
        ("private", "SELECT blob FROM private_entries", "UPDATE private_entries SET blob = ?1"),
        (
            "meta",
            "SELECT value FROM meta WHERE key != 'key_check'",
            "UPDATE meta SET value = ?1 WHERE key != 'key_check'",
        ),
        ("sync", "SELECT blob FROM sync_state", "UPDATE sync_state SET blob = ?1"),
    ] {
        let dir = TempDir::new("flipped");
        let path = populated_store(&dir);
        tamper(&path, update, [flipped(raw_blob(&path, select))]);
        let before = file_hash(&path);

        let err = open_and_read_all(&path, &key(1)).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{table}: {err:?}");
        assert_eq!(file_hash(&path), before, "{table}");
    }
}

#[test]
fn swapped_change_blobs_are_corrupt() {
    let dir = TempDir::new("swapped");
    let path = populated_store(&dir);
    let three = raw_blob(&path, "SELECT blob FROM changes WHERE seq = 3");
    let four = raw_blob(&path, "SELECT blob FROM changes WHERE seq = 4");
    tamper(&path, "UPDATE changes SET blob = ?1 WHERE seq = 3", [four]);
    tamper(&path, "UPDATE changes SET blob = ?1 WHERE seq = 4", [three]);

    let err = Store::open(&path, &key(1)).unwrap().load_document().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "a change does not authenticate" }), "{err:?}");
}

#[test]
fn a_snapshot_relabelled_to_cover_more_changes_is_corrupt() {
    let dir = TempDir::new("relabelled");
    let path = populated_store(&dir);
    tamper(&path, "UPDATE snapshot SET through_seq = 3", []);
    let err = Store::open(&path, &key(1)).unwrap().load_document().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "the snapshot does not authenticate" }), "{err:?}");
}

#[test]
fn a_truncated_file_is_corrupt_and_untouched() {
    let dir = TempDir::new("truncated");
    let path = dir.path().join("client.db");
    let store = Store::open(&path, &key(1)).unwrap();
    for i in 0..40 {
        store.append_change(&vec![i; 2000]).unwrap();
    }
    drop(store);
    let bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 40 * 2000);
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let before = file_hash(&path);

    let err = open_and_read_all(&path, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(file_hash(&path), before);
}

#[test]
fn an_empty_file_is_corrupt_and_stays_empty() {
    let dir = TempDir::new("empty");
    let path = dir.path().join("client.db");
    fs::write(&path, b"").unwrap();

    let err = Store::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "the file is empty" }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), b"");
}

#[test]
fn a_garbage_file_is_corrupt_and_untouched() {
    let dir = TempDir::new("garbage");
    let path = dir.path().join("client.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(&path, &garbage).unwrap();

    let err = Store::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), garbage);
}

#[test]
fn a_foreign_sqlite_file_or_a_missing_key_check_is_corrupt() {
    let dir = TempDir::new("foreign");
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE notes (body TEXT);").unwrap();
    let before = file_hash(&foreign);
    let err = Store::open(&foreign, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "the file is not a katcore store" }), "{err:?}");
    assert_eq!(file_hash(&foreign), before);

    let path = populated_store(&dir);
    tamper(&path, "DELETE FROM meta WHERE key = 'key_check'", []);
    let err = Store::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "the key check is missing" }), "{err:?}");
}

#[test]
fn a_newer_schema_is_refused_and_the_file_is_untouched() {
    let dir = TempDir::new("too-new");
    let path = populated_store(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
    conn.close().unwrap();
    let before = file_hash(&path);

    let err = Store::open(&path, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found, supported } if found == VERSION + 1 && supported == VERSION));
    assert_eq!(file_hash(&path), before);
}

#[test]
fn creation_leaves_only_the_store_behind() {
    let dir = TempDir::new("create");
    let path = dir.path().join("client.db");
    drop(Store::open(&path, &key(1)).unwrap());
    let names: Vec<String> =
        fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["client.db".to_string()]);

    let missing_dir = dir.path().join("missing").join("client.db");
    let err = Store::open(&missing_dir, &key(1)).unwrap_err();
    assert!(matches!(err, StoreError::Storage { .. }), "{err:?}");
    assert!(fs::read_dir(dir.path()).unwrap().count() == 1);
}

#[test]
fn concurrent_appends_get_distinct_seqs_and_all_load_back() {
    let dir = TempDir::new("threads");
    let store = Arc::new(Store::open(&dir.path().join("client.db"), &key(1)).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                (0..50)
                    .map(|i| {
                        let bytes = format!("thread {t} write {i}").into_bytes();
                        (store.append_change(&bytes).unwrap(), bytes)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let written: BTreeMap<i64, Vec<u8>> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(written.len(), 200, "every seq is distinct");

    let loaded: Vec<(i64, Vec<u8>)> = store.load_document().unwrap().changes;
    assert_eq!(loaded, written.into_iter().collect::<Vec<_>>());
}
