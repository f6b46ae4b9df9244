//! Signed packs on SQLite: publishing (versions only go up) and the pack a
//! client's record is read with, with their ETags. The PostgreSQL twin is
//! `postgres/packs.rs`.

use chrono::{DateTime, Utc};

use super::super::{PublishOutcome, StorageError, StoredPack};
use super::{ms, pack_row, SqliteStorage, CLIENT_PACK};
use rusqlite::{params, OptionalExtension};

/// [`ClinicStorage::client_pack`](crate::storage::ClinicStorage::client_pack) on SQLite.
pub(super) fn client_pack(
    storage: &SqliteStorage,
    client_id: &str,
    version: Option<u32>,
) -> Result<Option<StoredPack>, StorageError> {
    storage.read(|tx| {
        let sql = format!("SELECT p.pack_id, p.version, p.signed_json, p.etag {CLIENT_PACK}");
        Ok(tx.prepare_cached(&sql)?.query_row(params![client_id, version.map(i64::from)], pack_row).optional()?)
    })
}

/// [`ClinicStorage::client_pack_etag`](crate::storage::ClinicStorage::client_pack_etag) on SQLite.
pub(super) fn client_pack_etag(
    storage: &SqliteStorage,
    client_id: &str,
    version: Option<u32>,
) -> Result<Option<String>, StorageError> {
    storage.read(|tx| {
        let sql = format!("SELECT p.etag {CLIENT_PACK}");
        Ok(tx
            .prepare_cached(&sql)?
            .query_row(params![client_id, version.map(i64::from)], |row| row.get(0))
            .optional()?)
    })
}

/// [`ClinicStorage::current_pack`](crate::storage::ClinicStorage::current_pack) on SQLite.
pub(super) fn current_pack(storage: &SqliteStorage, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached(
                "SELECT pack_id, version, signed_json, etag FROM packs WHERE clinic_id = ?1
                 ORDER BY version DESC LIMIT 1",
            )?
            .query_row([clinic_id], pack_row)
            .optional()?)
    })
}

/// [`ClinicStorage::current_pack_etag_for_client`](crate::storage::ClinicStorage::current_pack_etag_for_client) on SQLite.
pub(super) fn current_pack_etag_for_client(
    storage: &SqliteStorage,
    client_id: &str,
) -> Result<Option<String>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached(
                "SELECT p.etag FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id
                 WHERE c.id = ?1 ORDER BY p.version DESC LIMIT 1",
            )?
            .query_row([client_id], |row| row.get(0))
            .optional()?)
    })
}

/// [`ClinicStorage::publish_pack`](crate::storage::ClinicStorage::publish_pack) on SQLite.
pub(super) fn publish_pack(
    storage: &SqliteStorage,
    clinic_id: &str,
    pack: &StoredPack,
    at: DateTime<Utc>,
) -> Result<PublishOutcome, StorageError> {
    storage.write(|tx| {
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
