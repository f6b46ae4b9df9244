//! [`ClinicStorage`] on one SQLite file (bundled SQLite).
//!
//! WAL with `synchronous = FULL`, foreign keys on, a busy timeout for other
//! processes (`katctl clinic add-clinician` while the server runs). Writes
//! go through one writer connection in `IMMEDIATE` transactions, reads
//! through one read-only connection, each behind its own mutex; callers run
//! on blocking threads.
//!
//! The care records' queries live in `records` (beside PostgreSQL's
//! `postgres/records.rs`); the rest of the storage's queries here.

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
    NewDevice, PlannedSession, PublishOutcome, RecordUpdate, SecretHash, StorageError, StoredDocument, StoredPack,
    WebSession,
};

mod alerts;
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
        self.write(|tx| {
            tx.execute(
                "INSERT INTO clinics (id, name, pack_public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![clinic.id, clinic.name, clinic.pack_public_key.as_slice(), ms(at)],
            )?;
            Ok(())
        })
    }

    fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT id, name, pack_public_key FROM clinics WHERE id = ?1")?
                .query_row([id], clinic_row)
                .optional()?)
        })
    }

    fn insert_clinician(
        &self,
        clinician: &Clinician,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO clinicians (id, clinic_id, display_name, token_hash, revoked, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    clinician.id,
                    clinician.clinic_id,
                    clinician.display_name,
                    token_hash.as_slice(),
                    clinician.revoked,
                    ms(at)
                ],
            )?;
            Ok(())
        })
    }

    fn clinician_by_token(&self, token_hash: &SecretHash) -> Result<Option<Clinician>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT id, clinic_id, display_name, revoked FROM clinicians WHERE token_hash = ?1")?
                .query_row([token_hash.as_slice()], |row| {
                    Ok(Clinician {
                        id: row.get(0)?,
                        clinic_id: row.get(1)?,
                        display_name: row.get(2)?,
                        revoked: row.get(3)?,
                    })
                })
                .optional()?)
        })
    }

    fn set_clinician_password(
        &self,
        clinician_id: &str,
        login: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE clinicians SET login = ?2, password_hash = ?3 WHERE id = ?1",
                params![clinician_id, login, password_hash],
            )?;
            // A new password ends the sessions signed in with the old one.
            tx.execute("DELETE FROM web_sessions WHERE clinician_id = ?1", [clinician_id])?;
            Ok(changed == 1)
        })
    }

    fn clinician_by_login(&self, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT id, clinic_id, display_name, revoked, password_hash FROM clinicians
                     WHERE login = ?1 AND password_hash IS NOT NULL",
                )?
                .query_row([login], |row| {
                    Ok(ClinicianLogin {
                        clinician: Clinician {
                            id: row.get(0)?,
                            clinic_id: row.get(1)?,
                            display_name: row.get(2)?,
                            revoked: row.get(3)?,
                        },
                        password_hash: row.get(4)?,
                    })
                })
                .optional()?)
        })
    }

    fn insert_web_session(&self, session: &WebSession) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [ms(session.created_at)])?;
            tx.execute(
                "INSERT INTO web_sessions (id_hash, clinician_id, csrf_token, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    session.id_hash.as_slice(),
                    session.clinician_id,
                    session.csrf_token,
                    ms(session.created_at),
                    ms(session.last_seen_at),
                    ms(session.expires_at)
                ],
            )?;
            Ok(())
        })
    }

    fn web_session(
        &self,
        id_hash: &SecretHash,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<(WebSession, Clinician)>, StorageError> {
        let found = self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT s.clinician_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                            c.clinic_id, c.display_name, c.revoked
                     FROM web_sessions s JOIN clinicians c ON c.id = s.clinician_id
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3 AND c.revoked = 0",
                )?
                .query_row(params![id_hash.as_slice(), ms(now), ms(now - idle)], |row| {
                    let session = WebSession {
                        id_hash: *id_hash,
                        clinician_id: row.get(0)?,
                        csrf_token: row.get(1)?,
                        created_at: time(row, 2)?,
                        last_seen_at: time(row, 3)?,
                        expires_at: time(row, 4)?,
                    };
                    let clinician = Clinician {
                        id: session.clinician_id.clone(),
                        clinic_id: row.get(5)?,
                        display_name: row.get(6)?,
                        revoked: row.get(7)?,
                    };
                    Ok((session, clinician))
                })
                .optional()?)
        })?;
        if let Some((session, _)) = &found {
            if now - session.last_seen_at >= chrono::Duration::minutes(1) {
                self.write(|tx| {
                    tx.execute(
                        "UPDATE web_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                        params![id_hash.as_slice(), ms(now)],
                    )?;
                    Ok(())
                })?;
            }
        }
        Ok(found)
    }

    fn delete_web_session(&self, id_hash: &SecretHash) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash.as_slice()])?;
            Ok(())
        })
    }

    fn insert_client(&self, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO clients (id, clinic_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![client.id, client.clinic_id, client.label, ms(at)],
            )?;
            Ok(())
        })
    }

    fn client(&self, id: &str) -> Result<Option<Client>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached("SELECT id, clinic_id, label FROM clients WHERE id = ?1")?
                .query_row([id], |row| Ok(Client { id: row.get(0)?, clinic_id: row.get(1)?, label: row.get(2)? }))
                .optional()?)
        })
    }

    fn client_summaries(&self, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT c.id, c.label, c.planned_sessions,
                        (SELECT max(d.last_sync_at) FROM devices d WHERE d.client_id = c.id),
                        (SELECT count(*) FROM alerts a WHERE a.client_id = c.id AND a.acknowledged_at IS NULL)
                 FROM clients c WHERE c.clinic_id = ?1 ORDER BY c.created_at, c.id",
            )?;
            let rows = stmt.query_map([clinic_id], |row| {
                let planned: String = row.get(2)?;
                Ok(ClientSummary {
                    id: row.get(0)?,
                    label: row.get(1)?,
                    planned_sessions: serde_json::from_str::<Vec<PlannedSession>>(&planned)
                        .map_err(|_| bad_column(2, "planned sessions are not valid JSON"))?,
                    last_sync: optional_time(row, 3)?,
                    open_alerts: row.get(4)?,
                })
            })?;
            collect(rows)
        })
    }

    fn insert_enrollment_code(
        &self,
        code_hash: &SecretHash,
        client_id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO enrollment_codes (code_hash, client_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![code_hash.as_slice(), client_id, ms(created_at), ms(expires_at)],
            )?;
            Ok(())
        })
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &SecretHash,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StorageError> {
        self.write(|tx| {
            let client_id: Option<String> = tx
                .prepare_cached(
                    "UPDATE enrollment_codes SET used_at = ?2
                     WHERE code_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING client_id",
                )?
                .query_row(params![code_hash.as_slice(), ms(now)], |row| row.get(0))
                .optional()?;
            let Some(client_id) = client_id else { return Ok(None) };
            tx.execute(
                "INSERT INTO devices (id, client_id, label, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![device.id, client_id, device.label, device.token_hash.as_slice(), ms(now)],
            )?;
            Ok(Some(client_id))
        })
    }

    fn device_by_token(&self, token_hash: &SecretHash) -> Result<Option<Device>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = ?1"))?
                .query_row([token_hash.as_slice()], device_row)
                .optional()?)
        })
    }

    fn devices(&self, client_id: &str) -> Result<Vec<Device>, StorageError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE client_id = ?1 ORDER BY enrolled_at, id"
            ))?;
            let rows = stmt.query_map([client_id], device_row)?;
            collect(rows)
        })
    }

    fn revoke_device(&self, clinic_id: &str, device_id: &str, at: DateTime<Utc>) -> Result<bool, StorageError> {
        self.write(|tx| {
            let found: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM devices d JOIN clients c ON c.id = d.client_id
                                WHERE d.id = ?1 AND c.clinic_id = ?2)",
                [device_id, clinic_id],
                |row| row.get(0),
            )?;
            if found {
                tx.execute(
                    "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![device_id, ms(at)],
                )?;
            }
            Ok(found)
        })
    }

    fn record_device_pack(&self, device_id: &str, version: u32) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE devices SET pack_version = ?2 WHERE id = ?1 AND pack_version IS NOT ?2",
                params![device_id, version],
            )?;
            Ok(())
        })
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: DateTime<Utc>,
        clock_offset_ms: Option<i64>,
    ) -> Result<(), StorageError> {
        self.write(|tx| set_last_sync(tx, device_id, at, clock_offset_ms))
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
        self.read(|tx| {
            let sql = format!("SELECT p.pack_id, p.version, p.signed_json, p.etag {CLIENT_PACK}");
            Ok(tx.prepare_cached(&sql)?.query_row(params![client_id, version.map(i64::from)], pack_row).optional()?)
        })
    }

    fn client_pack_etag(&self, client_id: &str, version: Option<u32>) -> Result<Option<String>, StorageError> {
        self.read(|tx| {
            let sql = format!("SELECT p.etag {CLIENT_PACK}");
            Ok(tx
                .prepare_cached(&sql)?
                .query_row(params![client_id, version.map(i64::from)], |row| row.get(0))
                .optional()?)
        })
    }

    fn current_pack(&self, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT pack_id, version, signed_json, etag FROM packs WHERE clinic_id = ?1
                     ORDER BY version DESC LIMIT 1",
                )?
                .query_row([clinic_id], pack_row)
                .optional()?)
        })
    }

    fn current_pack_etag_for_client(&self, client_id: &str) -> Result<Option<String>, StorageError> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT p.etag FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id
                     WHERE c.id = ?1 ORDER BY p.version DESC LIMIT 1",
                )?
                .query_row([client_id], |row| row.get(0))
                .optional()?)
        })
    }

    fn publish_pack(
        &self,
        clinic_id: &str,
        pack: &StoredPack,
        at: DateTime<Utc>,
    ) -> Result<PublishOutcome, StorageError> {
        self.write(|tx| {
            let current: Option<u32> =
                tx.query_row("SELECT max(version) FROM packs WHERE clinic_id = ?1", [clinic_id], |row| row.get(0))?;
            if let Some(current) = current.filter(|current| *current >= pack.version) {
                return Ok(PublishOutcome::NotNewer { current });
            }
            tx.execute(
                "INSERT INTO packs (clinic_id, version, pack_id, signed_json, etag, published_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![clinic_id, pack.version, pack.pack_id, pack.signed_json, pack.etag, ms(at)],
            )?;
            Ok(PublishOutcome::Published)
        })
    }
}
