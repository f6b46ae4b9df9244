//! [`ClinicStorage`] on PostgreSQL, for several server instances on one
//! database (`--database-url postgres://…`, docs/deployment.md).
//!
//! The driver is `tokio-postgres` with a `deadpool-postgres` pool. The
//! storage trait is synchronous (the server calls it on blocking threads),
//! so [`PgStorage`] owns a small Tokio runtime of its own that drives the
//! connections; each method blocks its caller on one short transaction
//! there. That keeps the driver's tasks off the server's runtime, and lets
//! `katctl` use the same storage without a runtime of its own.
//!
//! The schema is applied by refinery (`migrations/postgres`, history in
//! `refinery_schema_history`) under an advisory lock, so instances starting
//! together migrate once; a database migrated by a newer server is refused.
//!
//! What several instances need, and how each is kept correct here:
//!
//! - **A record's changes** are numbered (seq) per client. An append names
//!   the last seq its writer's replica holds, takes the client's row lock
//!   (held until commit) and is stored only if that is still the record's
//!   last seq. An instance that lost the race gets
//!   [`StorageError::Conflict`], reloads the record and merges again
//!   (`crate::replica`): nothing is lost, and alerts, keyed by the record's
//!   item, are raised once (`ON CONFLICT DO NOTHING`).
//! - **Enrollment codes** are redeemed by one `UPDATE … RETURNING`: a code
//!   row is locked by the first redeemer, and the second sees it used.
//! - **Revocation, sign-in sessions and packs** live only here; no instance
//!   caches them.
//! - **Failed attempts** are counted per address and minute in
//!   `auth_failures`, shared by every instance ([`ClinicStorage::count_failure`]).
//!
//! Connections use TLS whenever the server offers it, verified against
//! [`PgOptions::ca_file`] or the public web's roots; every call is bounded
//! in time (`CALL_TIMEOUT`), so a database that stops answering costs a
//! `503`, never a request held forever.
//!
//! Where each part lives: this file, the storage's queries (the
//! [`ClinicStorage`] implementation) and the SQL they share; `records`, the
//! care records (load, the append with all it implies, compaction,
//! receipts), beside SQLite's `sqlite/records.rs`;
//! `connection`, TLS, the pool and its runtime, migrations, the bounded
//! blocking bridge and what driver errors mean; `maintenance`, the
//! operators' tools (resealing record blobs, copying a SQLite database in);
//! `rows`, decoding rows into the storage's types.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::sealing::Sealer;
use super::{
    ActorOwner, Alert, AlertAction, Client, ClientSummary, Clinic, ClinicStorage, Clinician, ClinicianLogin, Device,
    NewDevice, PlannedSession, PublishOutcome, RecordUpdate, SecretHash, StorageError, StoredDocument, StoredPack,
    WebSession,
};

/// Connections the pool opens by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How to connect to PostgreSQL, beyond the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections the pool may open.
    pub pool_size: usize,
    /// PEM certificates of the authorities the database's TLS certificate
    /// must chain to; `None` trusts the public web's roots (Mozilla's, as
    /// compiled in). TLS is used whenever the server offers it (the URL's
    /// `sslmode`: `prefer`, the default; `require` refuses a server
    /// without it; `disable` never asks), and its certificate is always
    /// verified, host name included.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions { pool_size: DEFAULT_POOL_SIZE, ca_file: None }
    }
}

/// The PostgreSQL storage. See the module documentation.
pub struct PgStorage {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Seals and opens record blobs; `None` when opened without a record key.
    sealer: Option<Sealer>,
}

mod alerts;
mod connection;
mod maintenance;
mod records;
mod rows;

pub use maintenance::CopyReport;
use rows::{clinician_row, device_row, ms, optional_time, pack_row, time, version, DEVICE_COLUMNS};

/// The highest seq assigned to a client's record (`$1`): its last change,
/// or the snapshot's `through_seq` once every change was compacted away.
pub(super) const LAST_SEQ: &str = "SELECT greatest(
        COALESCE((SELECT max(seq) FROM record_changes WHERE client_id = $1), 0),
        COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = $1), 0))";

/// The pack a client's record is read with (`$1` the client, `$2` the
/// assigned version or NULL): that version if published, else the newest.
const CLIENT_PACK: &str = "FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id WHERE c.id = $1
     ORDER BY (p.version = $2) IS TRUE DESC, p.version DESC LIMIT 1";

impl ClinicStorage for PgStorage {
    fn ping(&self) -> Result<(), StorageError> {
        self.query_opt("SELECT 1", &[]).map(|_| ())
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        let now = ms(Utc::now());
        self.execute(
            "INSERT INTO readiness_probe (id, checked_at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            &[&now],
        )
        .map(|_| ())
    }

    fn insert_clinic(&self, clinic: &Clinic, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clinics (id, name, pack_public_key, created_at) VALUES ($1, $2, $3, $4)",
            &[&clinic.id, &clinic.name, &clinic.pack_public_key.as_slice(), &ms(at)],
        )
        .map(|_| ())
    }

    fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        self.query_opt("SELECT id, name, pack_public_key FROM clinics WHERE id = $1", &[&id])?
            .map(|row| {
                let key: Vec<u8> = row.get(2);
                let pack_public_key = <[u8; 32]>::try_from(key.as_slice())
                    .map_err(|_| StorageError::Corrupt("the public key is not 32 bytes"))?;
                Ok(Clinic { id: row.get(0), name: row.get(1), pack_public_key })
            })
            .transpose()
    }

    fn insert_clinician(
        &self,
        clinician: &Clinician,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clinicians (id, clinic_id, display_name, token_hash, revoked, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &clinician.id,
                &clinician.clinic_id,
                &clinician.display_name,
                &token_hash.as_slice(),
                &clinician.revoked,
                &ms(at),
            ],
        )
        .map(|_| ())
    }

    fn clinician_by_token(&self, token_hash: &SecretHash) -> Result<Option<Clinician>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT id, clinic_id, display_name, revoked FROM clinicians WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )?
            .map(|row| clinician_row(&row)))
    }

    fn set_clinician_password(
        &self,
        clinician_id: &str,
        login: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let changed = tx
                .execute(
                    "UPDATE clinicians SET login = $2, password_hash = $3 WHERE id = $1",
                    &[&clinician_id, &login, &password_hash],
                )
                .await?;
            // A new password ends the sessions signed in with the old one.
            tx.execute("DELETE FROM web_sessions WHERE clinician_id = $1", &[&clinician_id]).await?;
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    fn clinician_by_login(&self, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT id, clinic_id, display_name, revoked, password_hash FROM clinicians
                 WHERE login = $1 AND password_hash IS NOT NULL",
                &[&login],
            )?
            .map(|row| ClinicianLogin { clinician: clinician_row(&row), password_hash: row.get(4) }))
    }

    fn insert_web_session(&self, session: &WebSession) -> Result<(), StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM web_sessions WHERE expires_at <= $1", &[&ms(session.created_at)]).await?;
            tx.execute(
                "INSERT INTO web_sessions (id_hash, clinician_id, csrf_token, created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &session.id_hash.as_slice(),
                    &session.clinician_id,
                    &session.csrf_token,
                    &ms(session.created_at),
                    &ms(session.last_seen_at),
                    &ms(session.expires_at),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn web_session(
        &self,
        id_hash: &SecretHash,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<(WebSession, Clinician)>, StorageError> {
        let Some(row) = self.query_opt(
            "SELECT s.clinician_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                    c.clinic_id, c.display_name, c.revoked
             FROM web_sessions s JOIN clinicians c ON c.id = s.clinician_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND NOT c.revoked",
            &[&id_hash.as_slice(), &ms(now), &ms(now - idle)],
        )?
        else {
            return Ok(None);
        };
        let session = WebSession {
            id_hash: *id_hash,
            clinician_id: row.get(0),
            csrf_token: row.get(1),
            created_at: time(row.get(2))?,
            last_seen_at: time(row.get(3))?,
            expires_at: time(row.get(4))?,
        };
        let clinician = Clinician {
            id: session.clinician_id.clone(),
            clinic_id: row.get(5),
            display_name: row.get(6),
            revoked: row.get(7),
        };
        if now - session.last_seen_at >= chrono::Duration::minutes(1) {
            self.execute(
                "UPDATE web_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1",
                &[&id_hash.as_slice(), &ms(now)],
            )?;
        }
        Ok(Some((session, clinician)))
    }

    fn delete_web_session(&self, id_hash: &SecretHash) -> Result<(), StorageError> {
        self.execute("DELETE FROM web_sessions WHERE id_hash = $1", &[&id_hash.as_slice()]).map(|_| ())
    }

    fn insert_client(&self, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clients (id, clinic_id, label, created_at) VALUES ($1, $2, $3, $4)",
            &[&client.id, &client.clinic_id, &client.label, &ms(at)],
        )
        .map(|_| ())
    }

    fn client(&self, id: &str) -> Result<Option<Client>, StorageError> {
        Ok(self.query_opt("SELECT id, clinic_id, label FROM clients WHERE id = $1", &[&id])?.map(|row| Client {
            id: row.get(0),
            clinic_id: row.get(1),
            label: row.get(2),
        }))
    }

    fn client_summaries(&self, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
        self.query(
            "SELECT c.id, c.label, c.planned_sessions,
                    (SELECT max(d.last_sync_at) FROM devices d WHERE d.client_id = c.id),
                    (SELECT count(*) FROM alerts a WHERE a.client_id = c.id AND a.acknowledged_at IS NULL)
             FROM clients c WHERE c.clinic_id = $1 ORDER BY c.created_at, c.id",
            &[&clinic_id],
        )?
        .iter()
        .map(|row| {
            let planned: String = row.get(2);
            Ok(ClientSummary {
                id: row.get(0),
                label: row.get(1),
                planned_sessions: serde_json::from_str::<Vec<PlannedSession>>(&planned)
                    .map_err(|_| StorageError::Corrupt("planned sessions are not valid JSON"))?,
                last_sync: optional_time(row.get(3))?,
                open_alerts: u32::try_from(row.get::<_, i64>(4)).unwrap_or(u32::MAX),
            })
        })
        .collect()
    }

    fn insert_enrollment_code(
        &self,
        code_hash: &SecretHash,
        client_id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO enrollment_codes (code_hash, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&code_hash.as_slice(), &client_id, &ms(created_at), &ms(expires_at)],
        )
        .map(|_| ())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &SecretHash,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // The row lock this takes makes a concurrent redeemer (on any
            // instance) wait, then see the code used.
            let Some(row) = tx
                .query_opt(
                    "UPDATE enrollment_codes SET used_at = $2
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING client_id",
                    &[&code_hash.as_slice(), &ms(now)],
                )
                .await?
            else {
                return Ok(None);
            };
            let client_id: String = row.get(0);
            tx.execute(
                "INSERT INTO devices (id, client_id, label, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5)",
                &[&device.id, &client_id, &device.label, &device.token_hash.as_slice(), &ms(now)],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(client_id))
        })
    }

    fn device_by_token(&self, token_hash: &SecretHash) -> Result<Option<Device>, StorageError> {
        self.query_opt(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1"),
            &[&token_hash.as_slice()],
        )?
        .map(|row| device_row(&row))
        .transpose()
    }

    fn devices(&self, client_id: &str) -> Result<Vec<Device>, StorageError> {
        self.query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE client_id = $1 ORDER BY enrolled_at, id"),
            &[&client_id],
        )?
        .iter()
        .map(device_row)
        .collect()
    }

    fn revoke_device(&self, clinic_id: &str, device_id: &str, at: DateTime<Utc>) -> Result<bool, StorageError> {
        let found = self.query_opt(
            "UPDATE devices d SET revoked_at = COALESCE(d.revoked_at, $3)
             FROM clients c WHERE c.id = d.client_id AND d.id = $1 AND c.clinic_id = $2
             RETURNING d.id",
            &[&device_id, &clinic_id, &ms(at)],
        )?;
        Ok(found.is_some())
    }

    fn record_device_pack(&self, device_id: &str, version: u32) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET pack_version = $2 WHERE id = $1 AND pack_version IS DISTINCT FROM $2",
            &[&device_id, &i64::from(version)],
        )
        .map(|_| ())
    }

    fn record_device_sync(
        &self,
        device_id: &str,
        at: DateTime<Utc>,
        clock_offset_ms: Option<i64>,
    ) -> Result<(), StorageError> {
        self.execute(records::SET_LAST_SYNC, &[&device_id, &ms(at), &clock_offset_ms]).map(|_| ())
    }

    fn load_record(&self, client_id: &str) -> Result<StoredDocument, StorageError> {
        records::load(self, client_id)
    }

    fn record_seq(&self, client_id: &str) -> Result<i64, StorageError> {
        Ok(self.query_opt(LAST_SEQ, &[&client_id])?.map_or(0, |row| row.get(0)))
    }

    fn append_record_change(&self, client_id: &str, update: &RecordUpdate<'_>) -> Result<i64, StorageError> {
        records::append(self, client_id, update)
    }

    fn actor_owner(&self, client_id: &str, actor: &str) -> Result<Option<ActorOwner>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT device_id FROM record_actors WHERE client_id = $1 AND actor = $2",
                &[&client_id, &actor],
            )?
            .map(|row| row.get::<_, Option<String>>(0).map_or(ActorOwner::Clinic, ActorOwner::Device)))
    }

    fn client_pack(&self, client_id: &str, version: Option<u32>) -> Result<Option<StoredPack>, StorageError> {
        let version = version.map(i64::from);
        self.query_opt(
            &format!("SELECT p.pack_id, p.version, p.signed_json, p.etag {CLIENT_PACK}"),
            &[&client_id, &version],
        )?
        .map(|row| pack_row(&row))
        .transpose()
    }

    fn client_pack_etag(&self, client_id: &str, version: Option<u32>) -> Result<Option<String>, StorageError> {
        let version = version.map(i64::from);
        Ok(self.query_opt(&format!("SELECT p.etag {CLIENT_PACK}"), &[&client_id, &version])?.map(|row| row.get(0)))
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

    fn current_pack(&self, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
        self.query_opt(
            "SELECT pack_id, version, signed_json, etag FROM packs WHERE clinic_id = $1 ORDER BY version DESC LIMIT 1",
            &[&clinic_id],
        )?
        .map(|row| pack_row(&row))
        .transpose()
    }

    fn current_pack_etag_for_client(&self, client_id: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT p.etag FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id
                 WHERE c.id = $1 ORDER BY p.version DESC LIMIT 1",
                &[&client_id],
            )?
            .map(|row| row.get(0)))
    }

    fn publish_pack(
        &self,
        clinic_id: &str,
        pack: &StoredPack,
        at: DateTime<Utc>,
    ) -> Result<PublishOutcome, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // The clinic's row lock orders concurrent publishes.
            tx.execute("SELECT 1 FROM clinics WHERE id = $1 FOR UPDATE", &[&clinic_id]).await?;
            let current: Option<i64> =
                tx.query_one("SELECT max(version) FROM packs WHERE clinic_id = $1", &[&clinic_id]).await?.get(0);
            if let Some(current) = current.filter(|current| *current >= i64::from(pack.version)) {
                return Ok(PublishOutcome::NotNewer { current: version(current)? });
            }
            tx.execute(
                "INSERT INTO packs (clinic_id, version, pack_id, signed_json, etag, published_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&clinic_id, &i64::from(pack.version), &pack.pack_id, &pack.signed_json, &pack.etag, &ms(at)],
            )
            .await?;
            tx.commit().await?;
            Ok(PublishOutcome::Published)
        })
    }

    fn count_failure(&self, address: &[u8; 8], at: DateTime<Utc>) -> Result<Option<u32>, StorageError> {
        let window = at.timestamp().div_euclid(60) * 60;
        let row = self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_one(
                    "INSERT INTO auth_failures (address, window_start, failures) VALUES ($1, $2, 1)
                     ON CONFLICT (address, window_start) DO UPDATE SET failures = auth_failures.failures + 1
                     RETURNING failures",
                    &[&address.as_slice(), &window],
                )
                .await?;
            let failures: i32 = row.get(0);
            if failures == 1 {
                // A new window for this address: forget windows that ended.
                tx.execute("DELETE FROM auth_failures WHERE window_start < $1", &[&(window - 60)]).await?;
            }
            tx.commit().await?;
            Ok(failures)
        })?;
        Ok(Some(u32::try_from(row).unwrap_or(0)))
    }
}
