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
//! Where each part lives: this file, the [`ClinicStorage`] implementation
//! that calls the queries, the SQL they share and the failure counts; the
//! queries by concern, each beside its SQLite twin in `sqlite/`: `records`,
//! the care records (load, the append with all it implies, compaction,
//! receipts); `alerts`; `people` (clinics, clinicians, sign-in sessions);
//! `enrollment` (clients, codes, devices); `packs`;
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
    NewDevice, PublishOutcome, RecordUpdate, SecretHash, StorageError, StoredDocument, StoredPack, WebSession,
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
mod enrollment;
mod maintenance;
mod packs;
mod people;
mod records;
mod rows;

pub use maintenance::CopyReport;
use rows::ms;

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
        packs::client_pack(self, client_id, version)
    }

    fn client_pack_etag(&self, client_id: &str, version: Option<u32>) -> Result<Option<String>, StorageError> {
        packs::client_pack_etag(self, client_id, version)
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
