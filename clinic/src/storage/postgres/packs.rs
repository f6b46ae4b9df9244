//! Signed packs on PostgreSQL: publishing (versions only go up) and the
//! pack a client's record is read with, with their ETags. The SQLite twin
//! is `sqlite/packs.rs`.

use chrono::{DateTime, Utc};

use super::super::{PublishOutcome, StorageError, StoredPack};
use super::rows::{ms, pack_row, version};
use super::{PgStorage, CLIENT_PACK};

/// [`ClinicStorage::client_pack`](crate::storage::ClinicStorage::client_pack) on PostgreSQL.
pub(super) fn client_pack(
    storage: &PgStorage,
    client_id: &str,
    version: Option<u32>,
) -> Result<Option<StoredPack>, StorageError> {
    let version = version.map(i64::from);
    storage
        .query_opt(
            &format!("SELECT p.pack_id, p.version, p.signed_json, p.etag {CLIENT_PACK}"),
            &[&client_id, &version],
        )?
        .map(|row| pack_row(&row))
        .transpose()
}

/// [`ClinicStorage::client_pack_etag`](crate::storage::ClinicStorage::client_pack_etag) on PostgreSQL.
pub(super) fn client_pack_etag(
    storage: &PgStorage,
    client_id: &str,
    version: Option<u32>,
) -> Result<Option<String>, StorageError> {
    let version = version.map(i64::from);
    Ok(storage.query_opt(&format!("SELECT p.etag {CLIENT_PACK}"), &[&client_id, &version])?.map(|row| row.get(0)))
}

/// [`ClinicStorage::current_pack`](crate::storage::ClinicStorage::current_pack) on PostgreSQL.
pub(super) fn current_pack(storage: &PgStorage, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
    storage
        .query_opt(
            "SELECT pack_id, version, signed_json, etag FROM packs WHERE clinic_id = $1 ORDER BY version DESC LIMIT 1",
            &[&clinic_id],
        )?
        .map(|row| pack_row(&row))
        .transpose()
}

/// [`ClinicStorage::current_pack_etag_for_client`](crate::storage::ClinicStorage::current_pack_etag_for_client) on PostgreSQL.
pub(super) fn current_pack_etag_for_client(
    storage: &PgStorage,
    client_id: &str,
) -> Result<Option<String>, StorageError> {
    Ok(storage
        .query_opt(
            "SELECT p.etag FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id
             WHERE c.id = $1 ORDER BY p.version DESC LIMIT 1",
            &[&client_id],
        )?
        .map(|row| row.get(0)))
}

/// [`ClinicStorage::publish_pack`](crate::storage::ClinicStorage::publish_pack) on PostgreSQL.
pub(super) fn publish_pack(
    storage: &PgStorage,
    clinic_id: &str,
    pack: &StoredPack,
    at: DateTime<Utc>,
) -> Result<PublishOutcome, StorageError> {
    storage.block(async {
        let mut client = storage.client().await?;
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
