//! [`ClinicStorage`] on one SQLite file (bundled SQLite).
//!
//! WAL with `synchronous = FULL`, foreign keys on, a busy timeout for other
//! processes (`katctl clinic add-clinician` while the server runs). Writes
//! go through one writer connection in `IMMEDIATE` transactions, reads
//! through one read-only connection, each behind its own mutex; callers run
//! on blocking threads.
//!
//! The queries live by concern, each file beside its PostgreSQL twin in
//! `postgres/`: `records` (the care records), `alerts`, `people` (clinics,
//! clinicians, sign-in sessions), `enrollment` (clients, codes, devices) and
//! `packs`; this file holds the connections, the [`ClinicStorage`]
//! implementation that calls them and the row decoders they share (failed
//! attempts are counted in the server's memory on SQLite: one instance).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::schema;
use super::sealing::{rewrite_record_blobs, RecordKey, Sealer};
use super::{
    ActorOwner, Alert, AlertAction, Client, ClientSummary, Clinic, ClinicStorage, Clinician, ClinicianLogin, Device,
    NewDevice, PublishOutcome, RecordUpdate, SecretHash, StorageError, StoredDocument, StoredPack, WebSession,
};

mod alerts;
mod enrollment;
mod packs;
mod people;
mod records;

/// The pack a client's record is read with (`?1` the client, `?2` the
/// assigned version or NULL): that version if published, else the newest.
const CLIENT_PACK: &str = "FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id WHERE c.id = ?1
     ORDER BY p.version = ?2 DESC, p.version DESC LIMIT 1";

/// How long a call waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The SQLite storage. See the module documentation.
#[derive(Debug)]
pub struct SqliteStorage {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: PathBuf,
    /// Seals and opens record blobs; `None` when opened without a record key
    /// (bootstrap commands), and then records can be neither read nor written.
    sealer: Option<Sealer>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// [`StorageError::TooNew`] for a database of a newer server,
    /// [`StorageError::Corrupt`] for a file that is not ours, and
    /// [`StorageError::Database`] when SQLite or the file system fails.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::open_inner(path, None)
    }

    /// [`SqliteStorage::open`] with the record key (and, during a rotation,
    /// the previous keys whose blobs are still to be read): what the server
    /// runs with. Records are sealed under `key` (see `sealing`).
    ///
    /// # Errors
    /// As [`SqliteStorage::open`].
    pub fn open_sealed(path: &Path, key: &RecordKey, previous: &[RecordKey]) -> Result<SqliteStorage, StorageError> {
        SqliteStorage::open_inner(path, Some(Sealer::new(key, previous)))
    }

    fn open_inner(path: &Path, sealer: Option<Sealer>) -> Result<SqliteStorage, StorageError> {
        let mut writer = connect(path)?;
        schema::migrate(&mut writer)?;
        let reader = connect(path)?;
        reader.execute_batch("PRAGMA query_only = ON;")?;
        Ok(SqliteStorage { writer: Mutex::new(writer), reader: Mutex::new(reader), path: path.to_path_buf(), sealer })
    }

    fn sealer(&self) -> Result<&Sealer, StorageError> {
        self.sealer.as_ref().ok_or_else(|| {
            StorageError::RecordKey("records need the record key; this storage was opened without one".into())
        })
    }

    /// Seals again, under the current key, every record blob sealed under a
    /// previous one (the last step of a key rotation); returns how many.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when a blob's key was not given.
    pub fn reseal_records(&self) -> Result<u64, StorageError> {
        let sealer = self.sealer()?;
        self.write(|tx| {
            rewrite_record_blobs(tx, |table, client_id, row, blob| sealer.reseal(table, client_id, row, blob))
        })
    }

    /// Up to `limit` rows of `table` after rowid `after`, by rowid: each
    /// row's rowid and `columns` as stored (blobs still sealed). What
    /// copying a database to PostgreSQL reads
    /// ([`super::PgStorage::copy_from_sqlite`]); `table` and `columns` come
    /// from that code, never from input.
    pub(crate) fn table_rows(
        &self,
        table: &str,
        columns: &[&str],
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<rusqlite::types::Value>)>, StorageError> {
        let sql = format!("SELECT rowid, {} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2", columns.join(", "));
        self.read(|tx| {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                let values = (1..=columns.len()).map(|i| row.get(i)).collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((row.get(0)?, values))
            })?;
            collect(rows)
        })
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

fn connect(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(schema::PRAGMAS)?;
    Ok(conn)
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while the lock was held dropped (rolled back) its transaction.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let millis: i64 = row.get(idx)?;
    DateTime::from_timestamp_millis(millis).ok_or_else(|| bad_column(idx, "a timestamp is out of range"))
}

fn optional_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(millis) => DateTime::from_timestamp_millis(millis)
            .map(Some)
            .ok_or_else(|| bad_column(idx, "a timestamp is out of range")),
    }
}

fn bad_column(idx: usize, what: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, what.into())
}

fn clinic_row(row: &Row<'_>) -> rusqlite::Result<Clinic> {
    let key: Vec<u8> = row.get(2)?;
    let pack_public_key =
        <[u8; 32]>::try_from(key.as_slice()).map_err(|_| bad_column(2, "the public key is not 32 bytes"))?;
    Ok(Clinic { id: row.get(0)?, name: row.get(1)?, pack_public_key })
}

fn device_row(row: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        client_id: row.get(1)?,
        label: row.get(2)?,
        enrolled_at: time(row, 3)?,
        last_sync_at: optional_time(row, 4)?,
        revoked_at: optional_time(row, 5)?,
        pack_version: row.get(6)?,
        clock_offset_ms: row.get(7)?,
    })
}

const DEVICE_COLUMNS: &str =
    "id, client_id, label, enrolled_at, last_sync_at, revoked_at, pack_version, clock_offset_ms";

fn pack_row(row: &Row<'_>) -> rusqlite::Result<StoredPack> {
    Ok(StoredPack { pack_id: row.get(0)?, version: row.get(1)?, signed_json: row.get(2)?, etag: row.get(3)? })
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>, StorageError> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(StorageError::from)
}

/// Sets a device's last sync time.
/// Records a device's sync at `at`, and its clock offset when measured
/// (an unmeasured sync keeps the last measurement).
fn set_last_sync(
    tx: &Transaction<'_>,
    device_id: &str,
    at: DateTime<Utc>,
    clock_offset_ms: Option<i64>,
) -> Result<(), StorageError> {
    tx.prepare_cached(
        "UPDATE devices SET last_sync_at = ?2, clock_offset_ms = COALESCE(?3, clock_offset_ms) WHERE id = ?1",
    )?
    .execute(params![device_id, ms(at), clock_offset_ms])?;
    Ok(())
}

/// The highest seq assigned to a client's record: its last change, or the
/// snapshot's `through_seq` once every change was compacted away.
fn last_seq(tx: &Transaction<'_>, client_id: &str) -> Result<i64, StorageError> {
    Ok(tx.query_row(
        "SELECT max(COALESCE((SELECT max(seq) FROM record_changes WHERE client_id = ?1), 0),
                    COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = ?1), 0))",
        [client_id],
        |row| row.get(0),
    )?)
}

impl ClinicStorage for SqliteStorage {
    fn ping(&self) -> Result<(), StorageError> {
        self.read(|tx| Ok(tx.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        // Rewriting the schema version writes the header page: a real write.
        self.write(|tx| {
            let version = schema::user_version(tx)?;
            katcore::sqlite::set_schema_version(tx, version)?;
            Ok(())
        })
    }

    fn insert_clinic(&self, clinic: &Clinic, at: DateTime<Utc>) -> Result<(), StorageError> {
        people::insert_clinic(self, clinic, at)
    }

    fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        people::clinic(self, id)
    }

    fn insert_clinician(
        &self,
        clinician: &Clinician,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        people::insert_clinician(self, clinician, token_hash, at)
    }

    fn clinician_by_token(&self, token_hash: &SecretHash) -> Result<Option<Clinician>, StorageError> {
        people::clinician_by_token(self, token_hash)
    }

    fn set_clinician_password(
        &self,
        clinician_id: &str,
        login: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        people::set_clinician_password(self, clinician_id, login, password_hash)
    }

    fn clinician_by_login(&self, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
        people::clinician_by_login(self, login)
    }

    fn insert_web_session(&self, session: &WebSession) -> Result<(), StorageError> {
        people::insert_web_session(self, session)
    }

    fn web_session(
        &self,
        id_hash: &SecretHash,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<(WebSession, Clinician)>, StorageError> {
        people::web_session(self, id_hash, now, idle)
    }

    fn delete_web_session(&self, id_hash: &SecretHash) -> Result<(), StorageError> {
        people::delete_web_session(self, id_hash)
    }

    fn insert_client(&self, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
        enrollment::insert_client(self, client, at)
    }

    fn client(&self, id: &str) -> Result<Option<Client>, StorageError> {
        enrollment::client(self, id)
    }

    fn client_summaries(&self, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
        enrollment::client_summaries(self, clinic_id)
    }

    fn insert_enrollment_code(
        &self,
        code_hash: &SecretHash,
        client_id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        enrollment::insert_enrollment_code(self, code_hash, client_id, created_at, expires_at)
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &SecretHash,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StorageError> {
        enrollment::redeem_enrollment_code(self, code_hash, device, now)
    }

    fn device_by_token(&self, token_hash: &SecretHash) -> Result<Option<Device>, StorageError> {
        enrollment::device_by_token(self, token_hash)
    }

    fn devices(&self, client_id: &str) -> Result<Vec<Device>, StorageError> {
        enrollment::devices(self, client_id)
    }

    fn revoke_device(&self, clinic_id: &str, device_id: &str, at: DateTime<Utc>) -> Result<bool, StorageError> {
        enrollment::revoke_device(self, clinic_id, device_id, at)
    }

    fn record_device_pack(&self, device_id: &str, version: u32) -> Result<(), StorageError> {
        enrollment::record_device_pack(self, device_id, version)
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: DateTime<Utc>,
        clock_offset_ms: Option<i64>,
    ) -> Result<(), StorageError> {
        enrollment::record_device_sync(self, device_id, at, clock_offset_ms)
    }

    fn load_record(&self, client_id: &str) -> Result<StoredDocument, StorageError> {
        records::load(self, client_id)
    }

    fn record_seq(&self, client_id: &str) -> Result<i64, StorageError> {
        self.read(|tx| last_seq(tx, client_id))
    }

    fn append_record_change(&self, client_id: &str, update: &RecordUpdate<'_>) -> Result<i64, StorageError> {
        records::append(self, client_id, update)
    }

    fn compact_record(&self, client_id: &str, snapshot: &[u8], through_seq: i64) -> Result<(), StorageError> {
        records::compact(self, client_id, snapshot, through_seq)
    }

    fn entry_receipts(&self, client_id: &str, prefix: &str) -> Result<HashMap<String, DateTime<Utc>>, StorageError> {
        records::receipts(self, client_id, prefix)
    }

    fn alerts(&self, clinic_id: &str, open_only: bool) -> Result<Vec<Alert>, StorageError> {
        alerts::of_clinic(self, clinic_id, open_only)
    }

    fn alerts_to_show(
        &self,
        clinic_id: &str,
        client_id: Option<&str>,
        acknowledged: usize,
    ) -> Result<Vec<Alert>, StorageError> {
        alerts::to_show(self, clinic_id, client_id, acknowledged)
    }

    fn alert(&self, clinic_id: &str, alert_id: &str) -> Result<Option<Alert>, StorageError> {
        alerts::one(self, clinic_id, alert_id)
    }

    fn record_alert_action(&self, action: &AlertAction) -> Result<bool, StorageError> {
        alerts::record_action(self, action)
    }

    fn alert_actions(&self, client_id: &str) -> Result<Vec<AlertAction>, StorageError> {
        alerts::actions(self, client_id)
    }

    fn actor_owner(&self, client_id: &str, actor: &str) -> Result<Option<ActorOwner>, StorageError> {
        self.read(|tx| {
            let owner: Option<Option<String>> = tx
                .prepare_cached("SELECT device_id FROM record_actors WHERE client_id = ?1 AND actor = ?2")?
                .query_row(params![client_id, actor], |row| row.get(0))
                .optional()?;
            Ok(owner.map(|device| device.map_or(ActorOwner::Clinic, ActorOwner::Device)))
        })
    }

    fn client_pack(&self, client_id: &str, version: Option<u32>) -> Result<Option<StoredPack>, StorageError> {
        packs::client_pack(self, client_id, version)
    }

    fn client_pack_etag(&self, client_id: &str, version: Option<u32>) -> Result<Option<String>, StorageError> {
        packs::client_pack_etag(self, client_id, version)
    }

    fn current_pack(&self, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
        packs::current_pack(self, clinic_id)
    }

    fn current_pack_etag_for_client(&self, client_id: &str) -> Result<Option<String>, StorageError> {
        packs::current_pack_etag_for_client(self, client_id)
    }

    fn publish_pack(
        &self,
        clinic_id: &str,
        pack: &StoredPack,
        at: DateTime<Utc>,
    ) -> Result<PublishOutcome, StorageError> {
        packs::publish_pack(self, clinic_id, pack, at)
    }
}
