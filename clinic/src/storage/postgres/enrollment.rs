//! Clients and their devices on PostgreSQL: enrollment codes redeemed once
//! (one `UPDATE … RETURNING`, so two instances cannot both redeem a code),
//! device tokens, revocation, each device's pack version, sync and clock
//! offset, and the client list's summaries. The SQLite twin is
//! `sqlite/enrollment.rs`.

use chrono::{DateTime, Utc};

use super::super::{Client, ClientSummary, Device, NewDevice, PlannedSession, SecretHash, StorageError};
use super::rows::{device_row, ms, optional_time, DEVICE_COLUMNS};
use super::{records, PgStorage};

/// [`ClinicStorage::insert_client`](crate::storage::ClinicStorage::insert_client) on PostgreSQL.
pub(super) fn insert_client(storage: &PgStorage, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
    storage
        .execute(
            "INSERT INTO clients (id, clinic_id, label, created_at) VALUES ($1, $2, $3, $4)",
            &[&client.id, &client.clinic_id, &client.label, &ms(at)],
        )
        .map(|_| ())
}

/// [`ClinicStorage::client`](crate::storage::ClinicStorage::client) on PostgreSQL.
pub(super) fn client(storage: &PgStorage, id: &str) -> Result<Option<Client>, StorageError> {
    Ok(storage.query_opt("SELECT id, clinic_id, label FROM clients WHERE id = $1", &[&id])?.map(|row| Client {
        id: row.get(0),
        clinic_id: row.get(1),
        label: row.get(2),
    }))
}

/// [`ClinicStorage::client_summaries`](crate::storage::ClinicStorage::client_summaries) on PostgreSQL.
pub(super) fn client_summaries(storage: &PgStorage, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
    storage
        .query(
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

/// [`ClinicStorage::insert_enrollment_code`](crate::storage::ClinicStorage::insert_enrollment_code) on PostgreSQL.
pub(super) fn insert_enrollment_code(
    storage: &PgStorage,
    code_hash: &SecretHash,
    client_id: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    storage
        .execute(
            "INSERT INTO enrollment_codes (code_hash, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&code_hash.as_slice(), &client_id, &ms(created_at), &ms(expires_at)],
        )
        .map(|_| ())
}

/// [`ClinicStorage::redeem_enrollment_code`](crate::storage::ClinicStorage::redeem_enrollment_code) on PostgreSQL.
pub(super) fn redeem_enrollment_code(
    storage: &PgStorage,
    code_hash: &SecretHash,
    device: &NewDevice,
    now: DateTime<Utc>,
) -> Result<Option<String>, StorageError> {
    storage.block(async {
        let mut client = storage.client().await?;
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

/// [`ClinicStorage::device_by_token`](crate::storage::ClinicStorage::device_by_token) on PostgreSQL.
pub(super) fn device_by_token(storage: &PgStorage, token_hash: &SecretHash) -> Result<Option<Device>, StorageError> {
    storage
        .query_opt(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1"), &[&token_hash.as_slice()])?
        .map(|row| device_row(&row))
        .transpose()
}

/// [`ClinicStorage::devices`](crate::storage::ClinicStorage::devices) on PostgreSQL.
pub(super) fn devices(storage: &PgStorage, client_id: &str) -> Result<Vec<Device>, StorageError> {
    storage
        .query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE client_id = $1 ORDER BY enrolled_at, id"),
            &[&client_id],
        )?
        .iter()
        .map(device_row)
        .collect()
}

/// [`ClinicStorage::revoke_device`](crate::storage::ClinicStorage::revoke_device) on PostgreSQL.
pub(super) fn revoke_device(
    storage: &PgStorage,
    clinic_id: &str,
    device_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let found = storage.query_opt(
        "UPDATE devices d SET revoked_at = COALESCE(d.revoked_at, $3)
         FROM clients c WHERE c.id = d.client_id AND d.id = $1 AND c.clinic_id = $2
         RETURNING d.id",
        &[&device_id, &clinic_id, &ms(at)],
    )?;
    Ok(found.is_some())
}

/// [`ClinicStorage::record_device_pack`](crate::storage::ClinicStorage::record_device_pack) on PostgreSQL.
pub(super) fn record_device_pack(storage: &PgStorage, device_id: &str, version: u32) -> Result<(), StorageError> {
    storage
        .execute(
            "UPDATE devices SET pack_version = $2 WHERE id = $1 AND pack_version IS DISTINCT FROM $2",
            &[&device_id, &i64::from(version)],
        )
        .map(|_| ())
}

/// [`ClinicStorage::record_device_sync`](crate::storage::ClinicStorage::record_device_sync) on PostgreSQL.
pub(super) fn record_device_sync(
    storage: &PgStorage,
    device_id: &str,
    at: DateTime<Utc>,
    clock_offset_ms: Option<i64>,
) -> Result<(), StorageError> {
    storage.execute(records::SET_LAST_SYNC, &[&device_id, &ms(at), &clock_offset_ms]).map(|_| ())
}
