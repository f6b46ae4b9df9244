//! Decoding PostgreSQL rows into the storage's types, and the column lists
//! the decoders expect: times are stored as milliseconds since the epoch,
//! versions as `bigint`.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::storage::{Clinician, Device, StorageError, StoredPack};

pub(super) fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(super) fn time(millis: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(millis).ok_or(StorageError::Corrupt("a timestamp is out of range"))
}

pub(super) fn optional_time(millis: Option<i64>) -> Result<Option<DateTime<Utc>>, StorageError> {
    millis.map(time).transpose()
}

pub(super) fn version(value: i64) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::Corrupt("a pack version is out of range"))
}

pub(super) fn clinician_row(row: &Row) -> Clinician {
    Clinician { id: row.get(0), clinic_id: row.get(1), display_name: row.get(2), revoked: row.get(3) }
}

pub(super) const DEVICE_COLUMNS: &str =
    "id, client_id, label, enrolled_at, last_sync_at, revoked_at, pack_version, clock_offset_ms";

pub(super) fn device_row(row: &Row) -> Result<Device, StorageError> {
    Ok(Device {
        id: row.get(0),
        client_id: row.get(1),
        label: row.get(2),
        enrolled_at: time(row.get(3))?,
        last_sync_at: optional_time(row.get(4))?,
        revoked_at: optional_time(row.get(5))?,
        pack_version: row.get::<_, Option<i64>>(6).map(version).transpose()?,
        clock_offset_ms: row.get(7),
    })
}

pub(super) fn pack_row(row: &Row) -> Result<StoredPack, StorageError> {
    Ok(StoredPack { pack_id: row.get(0), version: version(row.get(1))?, signed_json: row.get(2), etag: row.get(3) })
}
