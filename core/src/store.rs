//! The encrypted, crash-safe local store: one SQLite file per client.
//!
//! A [`Store`] keeps opaque byte blobs: a document as a snapshot plus
//! incremental changes (the care record's Automerge document, though the
//! store knows nothing about Automerge), private entries that are never
//! synced, per-server sync state and small metadata. Every call is one short
//! transaction and is durable when it returns.
//!
//! ```
//! use katcore::store::{Store, StoreKey};
//!
//! # let dir = std::env::temp_dir().join(format!("katcore-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("client.db");
//! // The key comes from the platform key store (Android Keystore, iOS Keychain).
//! let key = StoreKey::from_bytes(&[42; 32])?;
//! let store = Store::open(&path, &key)?;
//! let seq = store.append_change(b"a change")?;
//! store.compact(b"a snapshot covering it", seq)?;
//! store.append_change(b"a later change")?;
//! drop(store);
//!
//! let doc = Store::open(&path, &key)?.load_document()?;
//! assert_eq!(doc.snapshot.as_deref(), Some(&b"a snapshot covering it"[..]));
//! assert_eq!(doc.changes, vec![(seq + 1, b"a later change".to_vec())]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), katcore::store::StoreError>(())
//! ```
//!
//! # Encryption
//!
//! The database is plain (bundled) SQLite; every blob in it is sealed with
//! XChaCha20-Poly1305 under the host app's 32-byte [`StoreKey`], with a fresh
//! random nonce per write. A sealed blob is `0x01 || nonce (24 bytes) ||
//! ciphertext || tag`, and its associated data names where it lives:
//! `b"katcore-store/v1\0" || table || b"\0" || row key` (a change's seq in
//! decimal, the snapshot's `through_seq`, a private entry's id, a meta key,
//! a peer). A blob moved or swapped into another row, a snapshot relabelled
//! to cover other changes, or any flipped byte fails authentication and is
//! reported as [`StoreError::Corrupt`]. Plaintext is only ever in memory:
//! blobs are encrypted before SQLite sees them, so neither the database, its
//! write-ahead log nor any temporary file holds plaintext, and blobs are bound
//! parameters, so no SQL text or error message contains them either.
//!
//! Chosen over SQLCipher because it needs no OpenSSL in the mobile binary
//! (the size budget is 5 MB and TLS already brings its own crypto), it
//! cross-compiles to Android and iOS like any other Rust code, and per-blob
//! authentication turns any damaged byte into a typed error instead of
//! garbage. The cost: SQLite's own structure — table names, row counts, blob
//! sizes and change numbers — is visible to whoever holds the file; no
//! content is. Caller-chosen row keys (meta keys, private entry ids, sync
//! peers such as the clinic's URL) are stored blinded, as a keyed hash
//! (`crypto`'s `Cipher::blind`), with the clear key sealed inside the
//! blob (`frame`). Per-blob authentication does not notice a whole
//! row being deleted or the file being replaced by an older copy of itself.
//!
//! A key-check row in `meta` lets [`Store::open`] tell a wrong key
//! ([`StoreError::WrongKey`]) from a damaged file ([`StoreError::Corrupt`]).
//!
//! # Crash safety
//!
//! A new store is built in a temporary file next to `path` and renamed into
//! place, so a file at `path` is either a complete store or not one of ours.
//! An existing file is opened without SQLite's create flag; until the key is
//! verified nothing is written to it (not even the checkpoint SQLite runs on
//! close), so a wrong key, a damaged file or a file from a newer version is
//! left byte-for-byte as it was. Writes use SQLite's write-ahead log with
//! `synchronous = FULL`.
//!
//! Creating one store from two processes at the same instant is not
//! supported: the later rename would replace the earlier store. A crash
//! during creation can leave a hidden `.<name>.<random>.tmp` file beside the
//! store; it holds no content beyond the key check and is never opened.
//!
//! # Concurrency
//!
//! A [`Store`] is `Send + Sync` and is meant to be shared (`Arc<Store>`). It
//! holds one SQLite connection behind a mutex: all access is serialized
//! through it, and every call is one short transaction, so callers keep
//! their working state in memory and use the store to persist it. Change
//! numbers are assigned inside the writing transaction, so they are unique
//! and increasing even across processes sharing the file (SQLite's locking,
//! with a 5 s busy timeout).

mod crypto;
mod schema;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crypto::{Cipher, OpenError, Table, KEY_CHECK_ROW};
use schema::VERSION;

pub use crypto::StoreKey;

/// How long a call waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a store could not be opened, read or written.
///
/// Messages never carry stored content: blobs never appear in SQL text, and
/// row keys are not quoted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key supplied by the host app is not 32 bytes long.
    #[error("the store key must be exactly 32 bytes")]
    InvalidKey,
    /// The key does not open this file (or the file's key check is damaged,
    /// which looks the same).
    #[error("the store key is wrong for this file")]
    WrongKey,
    /// The file is not a katcore store, is truncated, or a stored value does
    /// not authenticate.
    #[error("the store is damaged: {what}")]
    Corrupt {
        /// What was found damaged.
        what: &'static str,
    },
    /// The file was written by a newer version of this library.
    #[error("the store has schema version {found}, newer than this app supports ({supported}); update the app")]
    TooNew {
        /// The schema version in the file.
        found: u32,
        /// The newest schema version this library reads.
        supported: u32,
    },
    /// The call would lose or overwrite data the store must keep (an older
    /// snapshot over a newer one, the reserved meta key, …): a bug in the caller.
    #[error("the store refused the call: {what}")]
    InvalidArgument {
        /// What was refused.
        what: &'static str,
    },
    /// The file system or SQLite failed (disk full, permission denied, the
    /// database stayed locked, …).
    #[error("the store could not be accessed: {reason}")]
    Storage {
        /// What the file system or SQLite reported.
        reason: String,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(failure, _)
                if matches!(failure.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
            {
                StoreError::Corrupt { what: "the file is not an intact SQLite database" }
            }
            rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::IntegralValueOutOfRange(..) => {
                StoreError::Corrupt { what: "a stored value has the wrong type" }
            }
            other => StoreError::Storage { reason: other.to_string() },
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Storage { reason: e.to_string() }
    }
}

pub use crate::persist::StoredDocument;

/// How much space the document takes on disk, to decide when to compact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreSizes {
    /// Size of the stored (encrypted) snapshot; 0 without one.
    pub snapshot_bytes: u64,
    /// Total size of the stored (encrypted) changes.
    pub change_bytes: u64,
    /// Number of stored changes.
    pub change_count: u64,
}

/// A keyed value as it is sealed: the clear key (its length as 4 bytes big
/// endian, then its UTF-8) followed by the value, so that the row key can
/// be a blind hash and the key still be read back.
pub(crate) fn frame(key: &str, value: &[u8]) -> Vec<u8> {
    let length = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut framed = Vec::with_capacity(4 + key.len() + value.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(key.as_bytes());
    framed.extend_from_slice(value);
    framed
}

/// The key and value of a [`frame`]d blob, if it is one.
pub(crate) fn unframe(framed: &[u8]) -> Option<(String, &[u8])> {
    let (length, rest) = framed.split_at_checked(4)?;
    let length = usize::try_from(u32::from_be_bytes(length.try_into().ok()?)).ok()?;
    let (key, value) = rest.split_at_checked(length)?;
    Some((String::from_utf8(key.to_vec()).ok()?, value))
}

/// A table of small values addressed by a caller-chosen key.
struct KeyedTable {
    table: Table,
    upsert: &'static str,
    select: &'static str,
    damaged: &'static str,
}

const META: KeyedTable = KeyedTable {
    table: Table::Meta,
    upsert: "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    select: "SELECT value FROM meta WHERE key = ?1",
    damaged: "a metadata value does not authenticate",
};

const PRIVATE_ENTRIES: KeyedTable = KeyedTable {
    table: Table::PrivateEntries,
    upsert:
        "INSERT INTO private_entries (id, blob) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET blob = excluded.blob",
    select: "SELECT blob FROM private_entries WHERE id = ?1",
    damaged: "a private entry does not authenticate",
};

const SYNC_STATE: KeyedTable = KeyedTable {
    table: Table::SyncState,
    upsert: "INSERT INTO sync_state (peer, blob) VALUES (?1, ?2) ON CONFLICT (peer) DO UPDATE SET blob = excluded.blob",
    select: "SELECT blob FROM sync_state WHERE peer = ?1",
    damaged: "a sync state does not authenticate",
};

/// An open, encrypted store. See the [module documentation](self).
pub struct Store {
    conn: Mutex<Connection>,
    cipher: Cipher,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating it if there is no file there.
    ///
    /// A new store is built in a temporary file in the same directory and
    /// renamed into place. An existing file is checked (schema version, key)
    /// before anything is written to it, then upgraded to the current schema.
    ///
    /// # Errors
    /// [`StoreError::WrongKey`] when `key` is not this file's key,
    /// [`StoreError::Corrupt`] for an empty, truncated or foreign file,
    /// [`StoreError::TooNew`] for a file from a newer version of this library
    /// (in these three cases the file is left untouched), and
    /// [`StoreError::Storage`] when the file system or SQLite fails (e.g. the
    /// directory does not exist).
    pub fn open(path: &Path, key: &StoreKey) -> Result<Store, StoreError> {
        let cipher = Cipher::new(key);
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_atomically(path, &cipher)?,
            Err(e) => return Err(e.into()),
        }
        let conn = open_existing(path, &cipher)?;
        Ok(Store { conn: Mutex::new(conn), cipher, path: path.to_path_buf() })
    }

    /// The path the store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the latest snapshot and every change after it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when any of them does not authenticate;
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn load_document(&self) -> Result<StoredDocument, StoreError> {
        self.read(|tx| {
            let stored = tx
                .query_row("SELECT through_seq, blob FROM snapshot WHERE id = 1", [], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .optional()?;
            let (snapshot_through_seq, snapshot) = match stored {
                Some((through_seq, blob)) => {
                    let snapshot = self.decrypt(
                        Table::Snapshot,
                        &through_seq.to_string(),
                        &blob,
                        "the snapshot does not authenticate",
                    )?;
                    (through_seq, Some(snapshot))
                }
                None => (0, None),
            };
            let mut stmt = tx.prepare_cached("SELECT seq, blob FROM changes WHERE seq > ?1 ORDER BY seq")?;
            let mut rows = stmt.query([snapshot_through_seq])?;
            let mut changes = Vec::new();
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let blob: Vec<u8> = row.get(1)?;
                changes.push((
                    seq,
                    self.decrypt(Table::Changes, &seq.to_string(), &blob, "a change does not authenticate")?,
                ));
            }
            Ok(StoredDocument { snapshot, snapshot_through_seq, changes })
        })
    }

    /// Appends one change and returns its seq, one more than any change or
    /// snapshot before it. The change is on disk when this returns.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails (nothing is written then).
    pub fn append_change(&self, bytes: &[u8]) -> Result<i64, StoreError> {
        self.append_change_with_meta(bytes, &mut |_| Vec::new())
    }

    /// Appends one change, as [`Store::append_change`], and in the same
    /// transaction stores the meta values `meta(seq)` returns (given the
    /// change's seq), each under its key: values derived from the document
    /// that must never be older or newer than the changes on disk.
    ///
    /// # Errors
    /// As [`Store::append_change`] and [`Store::put_meta`]; nothing is
    /// written then.
    pub fn append_change_with_meta(
        &self,
        bytes: &[u8],
        meta: &mut dyn FnMut(i64) -> Vec<(&'static str, Vec<u8>)>,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let seq = self.append_in(tx, bytes)?;
            for (key, value) in meta(seq) {
                self.put_keyed_in(tx, &META, check_meta_key(key)?, &value)?;
            }
            Ok(seq)
        })
    }

    /// The highest change number ever assigned (0 for a new store): that of
    /// the last change appended, even once a snapshot absorbed it.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        self.read(last_seq)
    }

    /// Replaces the snapshot with one that includes every change up to
    /// `through_seq` and deletes those changes, in one transaction. Changes
    /// after `through_seq` (including any appended while the snapshot was
    /// being made) are kept.
    ///
    /// # Errors
    /// [`StoreError::InvalidArgument`] when `through_seq` is below the stored
    /// snapshot's (which would lose the changes it already absorbed) or above
    /// the last appended change; [`StoreError::Storage`] when SQLite fails.
    /// Nothing is changed in either case.
    pub fn compact(&self, snapshot: &[u8], through_seq: i64) -> Result<(), StoreError> {
        let blob = self.cipher.seal(Table::Snapshot, &through_seq.to_string(), snapshot)?;
        self.write(|tx| {
            if through_seq < stored_through_seq(tx)? {
                return Err(StoreError::InvalidArgument { what: "the snapshot is older than the stored one" });
            }
            if through_seq > last_seq(tx)? {
                return Err(StoreError::InvalidArgument {
                    what: "the snapshot covers changes that were never appended",
                });
            }
            tx.execute(
                "INSERT INTO snapshot (id, through_seq, blob) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET through_seq = excluded.through_seq, blob = excluded.blob",
                (through_seq, &blob),
            )?;
            tx.execute("DELETE FROM changes WHERE seq <= ?1", [through_seq])?;
            Ok(())
        })?;
        // Give the freed pages back (stores created before incremental
        // auto-vacuum keep them for reuse instead: this is then a no-op).
        // The pragma frees pages as it is stepped: step it to the end.
        let conn = self.lock();
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// The stored sizes of the snapshot and the changes.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn sizes(&self) -> Result<StoreSizes, StoreError> {
        self.read(|tx| {
            let snapshot_bytes: i64 =
                tx.query_row("SELECT COALESCE((SELECT length(blob) FROM snapshot WHERE id = 1), 0)", [], |row| {
                    row.get(0)
                })?;
            let (change_bytes, change_count): (i64, i64) =
                tx.query_row("SELECT COALESCE(sum(length(blob)), 0), count(*) FROM changes", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            // Lengths and counts are never negative.
            let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
            Ok(StoreSizes {
                snapshot_bytes: unsigned(snapshot_bytes),
                change_bytes: unsigned(change_bytes),
                change_count: unsigned(change_count),
            })
        })
    }

    /// Stores a private (never synced) entry under `id`, replacing any entry
    /// with that id. The file shows neither the id nor the entry.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn put_private(&self, id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_private_with_meta(id, Some(bytes), None)
    }

    /// Deletes the private entry `id`, if there is one.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn delete_private(&self, id: &str) -> Result<(), StoreError> {
        self.write_private_with_meta(id, None, None)
    }

    /// Stores (`Some`) or deletes (`None`) the private entry `id` and, in the
    /// same transaction, the meta value `meta` (a key and its value), if any.
    ///
    /// # Errors
    /// As [`Store::put_private`] and [`Store::put_meta`]; nothing is written then.
    pub fn write_private_with_meta(
        &self,
        id: &str,
        entry: Option<&[u8]>,
        meta: Option<(&str, &[u8])>,
    ) -> Result<(), StoreError> {
        if let Some((key, _)) = meta {
            check_meta_key(key)?;
        }
        self.write(|tx| {
            match entry {
                Some(bytes) => self.put_keyed_in(tx, &PRIVATE_ENTRIES, id, bytes)?,
                None => {
                    tx.execute(
                        "DELETE FROM private_entries WHERE id = ?1",
                        [self.cipher.blind(Table::PrivateEntries, id)],
                    )?;
                }
            }
            match meta {
                Some((key, value)) => self.put_keyed_in(tx, &META, key, value),
                None => Ok(()),
            }
        })
    }

    /// All private entries, by id.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when any of them does not authenticate;
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn private_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached("SELECT id, blob FROM private_entries")?;
            let mut rows = stmt.query([])?;
            let mut entries = Vec::new();
            while let Some(row) = rows.next()? {
                let row_key: String = row.get(0)?;
                let blob: Vec<u8> = row.get(1)?;
                let framed = self.decrypt(PRIVATE_ENTRIES.table, &row_key, &blob, PRIVATE_ENTRIES.damaged)?;
                let (id, bytes) = unframe(&framed).ok_or(StoreError::Corrupt { what: PRIVATE_ENTRIES.damaged })?;
                if self.cipher.blind(PRIVATE_ENTRIES.table, &id) != row_key {
                    return Err(StoreError::Corrupt { what: PRIVATE_ENTRIES.damaged });
                }
                entries.push((id, bytes.to_vec()));
            }
            entries.sort_unstable();
            Ok(entries)
        })
    }

    /// Stores a metadata value (e.g. the document's actor id) under `key`.
    ///
    /// # Errors
    /// [`StoreError::InvalidArgument`] for the reserved key `key_check`;
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_meta_key(key)?;
        self.put_keyed(&META, key, value)
    }

    /// The metadata value under `key`, if there is one.
    ///
    /// # Errors
    /// [`StoreError::InvalidArgument`] for the reserved key `key_check`;
    /// [`StoreError::Corrupt`] when the value does not authenticate;
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_meta_key(key)?;
        self.get_keyed(&META, key)
    }

    /// Stores the sync state for the server `peer`.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn put_sync_state(&self, peer: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_keyed(&SYNC_STATE, peer, bytes)
    }

    /// The sync state for the server `peer`, if there is one.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when it does not authenticate;
    /// [`StoreError::Storage`] when SQLite fails.
    pub fn get_sync_state(&self, peer: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_keyed(&SYNC_STATE, peer)
    }

    fn append_in(&self, tx: &Transaction<'_>, bytes: &[u8]) -> Result<i64, StoreError> {
        let seq = last_seq(tx)?
            .checked_add(1)
            .ok_or(StoreError::Storage { reason: "change numbers are exhausted".into() })?;
        let blob = self.cipher.seal(Table::Changes, &seq.to_string(), bytes)?;
        tx.prepare_cached("INSERT INTO changes (seq, blob) VALUES (?1, ?2)")?.execute((seq, blob))?;
        Ok(seq)
    }

    fn put_keyed(&self, keyed: &KeyedTable, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| self.put_keyed_in(tx, keyed, key, value))
    }

    fn put_keyed_in(
        &self,
        tx: &Transaction<'_>,
        keyed: &KeyedTable,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let row_key = self.cipher.blind(keyed.table, key);
        let blob = self.cipher.seal(keyed.table, &row_key, &frame(key, value))?;
        tx.prepare_cached(keyed.upsert)?.execute((&row_key, &blob))?;
        Ok(())
    }

    fn get_keyed(&self, keyed: &KeyedTable, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row_key = self.cipher.blind(keyed.table, key);
        let blob: Option<Vec<u8>> =
            self.read(|tx| Ok(tx.prepare_cached(keyed.select)?.query_row([&row_key], |row| row.get(0)).optional()?))?;
        let Some(blob) = blob else { return Ok(None) };
        let framed = self.decrypt(keyed.table, &row_key, &blob, keyed.damaged)?;
        match unframe(&framed) {
            Some((stored, value)) if stored == key => Ok(Some(value.to_vec())),
            _ => Err(StoreError::Corrupt { what: keyed.damaged }),
        }
    }

    fn decrypt(&self, table: Table, row: &str, blob: &[u8], damaged: &'static str) -> Result<Vec<u8>, StoreError> {
        self.cipher.open(table, row, blob).map_err(|_: OpenError| StoreError::Corrupt { what: damaged })
    }

    /// Runs `f` in a read transaction: it sees one consistent state.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.transaction(TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in an `IMMEDIATE` write transaction, committed (durably)
    /// when `f` succeeds and rolled back when it fails.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.transaction(TransactionBehavior::Immediate, f)
    }

    /// Runs `f` in a transaction of `behavior`, committed when `f` succeeds.
    /// The transaction's code is compiled once ([`Store::run_once`]), not once
    /// per caller: it weighs in the mobile library.
    fn transaction<T>(
        &self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (mut f, mut value) = (Some(f), None);
        self.run_once(behavior, &mut |tx| {
            if let Some(f) = f.take() {
                value = Some(f(tx)?);
            }
            Ok(())
        })?;
        value.ok_or(StoreError::InvalidArgument { what: "the transaction did not run" })
    }

    fn run_once(
        &self,
        behavior: TransactionBehavior,
        f: &mut dyn FnMut(&Transaction<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(behavior)?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held rolled its transaction back when
        // the transaction was dropped, so the connection is still sound.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `key`, unless it is the reserved key check's.
fn check_meta_key(key: &str) -> Result<&str, StoreError> {
    if key == KEY_CHECK_ROW {
        return Err(StoreError::InvalidArgument { what: "the meta key `key_check` is reserved" });
    }
    Ok(key)
}

/// The `through_seq` of the stored snapshot; 0 without one.
fn stored_through_seq(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    Ok(tx.query_row("SELECT COALESCE((SELECT through_seq FROM snapshot WHERE id = 1), 0)", [], |row| row.get(0))?)
}

/// The highest seq ever assigned: that of the last change, or the snapshot's
/// `through_seq` once every change has been compacted away.
fn last_seq(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    Ok(tx.query_row(
        "SELECT max(COALESCE((SELECT max(seq) FROM changes), 0),
                    COALESCE((SELECT through_seq FROM snapshot WHERE id = 1), 0))",
        [],
        |row| row.get(0),
    )?)
}

/// Builds a new store in a temporary file beside `path` and renames it into
/// place, so that `path` never names a half-made store.
fn create_atomically(path: &Path, cipher: &Cipher) -> Result<(), StoreError> {
    let name = path.file_name().ok_or(StoreError::Storage { reason: "the store path has no file name".into() })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let suffix: String = crypto::random_bytes::<8>()?.iter().map(|b| format!("{b:02x}")).collect();
    let mut pending = PendingFile { path: dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy())), keep: false };

    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(&pending.path, flags)?;
    conn.execute_batch(schema::CREATE_PRAGMAS)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    schema::create(&tx, cipher)?;
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;

    File::open(&pending.path)?.sync_all()?;
    fs::rename(&pending.path, path)?;
    pending.keep = true;
    sync_dir(dir)?;
    Ok(())
}

/// A file being built; removed, with SQLite's side files, unless kept.
struct PendingFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for side in ["", "-journal", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(side);
            // Best effort: a leftover hidden temporary file is harmless.
            let _ = fs::remove_file(file);
        }
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    // Elsewhere (Windows) directories cannot be opened as files; NTFS
    // journals the rename itself.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Opens an existing store: checks it, then configures and upgrades it.
fn open_existing(path: &Path, cipher: &Cipher) -> Result<Connection, StoreError> {
    // SQLite takes an empty file for an empty database; for us it is a
    // damaged store, never one to initialise anew.
    if fs::metadata(path)?.len() == 0 {
        return Err(StoreError::Corrupt { what: "the file is empty" });
    }
    // No create flag: the file must be there. No URI flag: the path is a path.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Until the key is verified nothing may write to the file, not even the
    // checkpoint SQLite runs when the last connection to it closes.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;

    let version = schema::user_version(&conn)?;
    if version > VERSION {
        return Err(StoreError::TooNew { found: version, supported: VERSION });
    }
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |row| row.get(0),
    )?;
    if version == 0 || !has_meta {
        return Err(StoreError::Corrupt { what: "the file is not a katcore store" });
    }
    let key_check: Option<Vec<u8>> =
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK_ROW], |row| row.get(0)).optional()?;
    let key_check = key_check.ok_or(StoreError::Corrupt { what: "the key check is missing" })?;
    cipher.verify_key_check(&key_check)?;

    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
    conn.execute_batch(schema::PRAGMAS)?;
    if version < VERSION {
        schema::migrate(&mut conn, cipher)?;
    }
    Ok(conn)
}
