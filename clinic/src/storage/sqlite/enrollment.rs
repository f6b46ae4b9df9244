//! Clients and their devices on SQLite: enrollment codes redeemed once,
//! device tokens, revocation, each device's pack version, sync and clock
//! offset, and the client list's summaries. The PostgreSQL twin is
//! `postgres/enrollment.rs`.

use chrono::{DateTime, Utc};

use super::super::{Client, ClientSummary, Device, NewDevice, PlannedSession, SecretHash, StorageError};
use super::{bad_column, collect, device_row, ms, optional_time, set_last_sync, SqliteStorage, DEVICE_COLUMNS};
use rusqlite::{params, OptionalExtension};

/// [`ClinicStorage::insert_client`](crate::storage::ClinicStorage::insert_client) on SQLite.
pub(super) fn insert_client(storage: &SqliteStorage, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute(
            "INSERT INTO clients (id, clinic_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![client.id, client.clinic_id, client.label, ms(at)],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::client`](crate::storage::ClinicStorage::client) on SQLite.
pub(super) fn client(storage: &SqliteStorage, id: &str) -> Result<Option<Client>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached("SELECT id, clinic_id, label FROM clients WHERE id = ?1")?
            .query_row([id], |row| Ok(Client { id: row.get(0)?, clinic_id: row.get(1)?, label: row.get(2)? }))
            .optional()?)
    })
}

/// [`ClinicStorage::client_summaries`](crate::storage::ClinicStorage::client_summaries) on SQLite.
pub(super) fn client_summaries(storage: &SqliteStorage, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
    storage.read(|tx| {
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

/// [`ClinicStorage::insert_enrollment_code`](crate::storage::ClinicStorage::insert_enrollment_code) on SQLite.
pub(super) fn insert_enrollment_code(
    storage: &SqliteStorage,
    code_hash: &SecretHash,
    client_id: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute(
            "INSERT INTO enrollment_codes (code_hash, client_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![code_hash.as_slice(), client_id, ms(created_at), ms(expires_at)],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::redeem_enrollment_code`](crate::storage::ClinicStorage::redeem_enrollment_code) on SQLite.
pub(super) fn redeem_enrollment_code(
    storage: &SqliteStorage,
    code_hash: &SecretHash,
    device: &NewDevice,
    now: DateTime<Utc>,
) -> Result<Option<String>, StorageError> {
    storage.write(|tx| {
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

/// [`ClinicStorage::device_by_token`](crate::storage::ClinicStorage::device_by_token) on SQLite.
pub(super) fn device_by_token(
    storage: &SqliteStorage,
    token_hash: &SecretHash,
) -> Result<Option<Device>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = ?1"))?
            .query_row([token_hash.as_slice()], device_row)
            .optional()?)
    })
}

/// [`ClinicStorage::devices`](crate::storage::ClinicStorage::devices) on SQLite.
pub(super) fn devices(storage: &SqliteStorage, client_id: &str) -> Result<Vec<Device>, StorageError> {
    storage.read(|tx| {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE client_id = ?1 ORDER BY enrolled_at, id"
        ))?;
        let rows = stmt.query_map([client_id], device_row)?;
        collect(rows)
    })
}

/// [`ClinicStorage::revoke_device`](crate::storage::ClinicStorage::revoke_device) on SQLite.
pub(super) fn revoke_device(
    storage: &SqliteStorage,
    clinic_id: &str,
    device_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    storage.write(|tx| {
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

/// [`ClinicStorage::record_device_pack`](crate::storage::ClinicStorage::record_device_pack) on SQLite.
pub(super) fn record_device_pack(storage: &SqliteStorage, device_id: &str, version: u32) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute(
            "UPDATE devices SET pack_version = ?2 WHERE id = ?1 AND pack_version IS NOT ?2",
            params![device_id, version],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::record_device_sync`](crate::storage::ClinicStorage::record_device_sync) on SQLite.
pub(super) fn record_device_sync(
    storage: &SqliteStorage,
    device_id: &str,
    at: DateTime<Utc>,
    clock_offset_ms: Option<i64>,
) -> Result<(), StorageError> {
    storage.write(|tx| set_last_sync(tx, device_id, at, clock_offset_ms))
}
