//! Care records on SQLite: the sealed snapshot and change log, each append
//! with what it implies (planned sessions, alerts, actor bindings, the
//! device's sync and clock offset, the receipt time of every entry it
//! wrote) in one transaction, and compaction. The PostgreSQL twin is
//! `postgres/records.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::super::sealing::Sealed;
use super::super::{urgent_kind_name, RecordUpdate, StorageError, StoredDocument};
use super::{collect, last_seq, ms, set_last_sync, time, SqliteStorage};

/// The stored snapshot and the changes after it.
pub(super) fn load(storage: &SqliteStorage, client_id: &str) -> Result<StoredDocument, StorageError> {
    let sealer = storage.sealer()?;
    storage.read(|tx| {
        let snapshot: Option<(i64, Vec<u8>)> = tx
            .prepare_cached("SELECT through_seq, blob FROM record_snapshots WHERE client_id = ?1")?
            .query_row([client_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let (snapshot_through_seq, snapshot) = match snapshot {
            Some((seq, blob)) => (seq, Some(sealer.open(Sealed::Snapshot, client_id, seq, &blob)?)),
            None => (0, None),
        };
        let mut stmt =
            tx.prepare_cached("SELECT seq, blob FROM record_changes WHERE client_id = ?1 AND seq > ?2 ORDER BY seq")?;
        let rows = stmt.query_map(params![client_id, snapshot_through_seq], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let changes = collect::<(i64, Vec<u8>)>(rows)?
            .into_iter()
            .map(|(seq, blob)| Ok((seq, sealer.open(Sealed::Change, client_id, seq, &blob)?)))
            .collect::<Result<_, StorageError>>()?;
        Ok(StoredDocument { snapshot, snapshot_through_seq, changes })
    })
}

/// Appends one change blob and everything it implies, in one transaction.
pub(super) fn append(storage: &SqliteStorage, client_id: &str, update: &RecordUpdate<'_>) -> Result<i64, StorageError> {
    let planned = update
        .planned_sessions
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StorageError::Database(format!("cannot encode planned sessions: {e}")))?;
    let sealer = storage.sealer()?;
    storage.write(|tx| {
        let last = last_seq(tx, client_id)?;
        if last != update.expected_seq {
            return Err(StorageError::Conflict);
        }
        let seq = last.checked_add(1).ok_or(StorageError::Corrupt("record change numbers are exhausted"))?;
        let blob = sealer.seal(Sealed::Change, client_id, seq, update.change)?;
        tx.prepare_cached("INSERT INTO record_changes (client_id, seq, blob) VALUES (?1, ?2, ?3)")?
            .execute(params![client_id, seq, blob])?;
        if let Some(planned) = &planned {
            tx.prepare_cached("UPDATE clients SET planned_sessions = ?2 WHERE id = ?1")?
                .execute(params![client_id, planned])?;
        }
        if let Some(device_id) = update.synced_device {
            set_last_sync(tx, device_id, update.at, update.device_clock_offset_ms)?;
        }
        let mut raise = tx.prepare_cached(
            "INSERT INTO alerts (id, client_id, urgent_key, kind, at, raised_at, acknowledged_at, acknowledged_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (client_id, urgent_key) DO NOTHING",
        )?;
        let mut raised = 0;
        for item in update.urgent {
            raised += raise.execute(params![
                katcore::record::new_id(),
                client_id,
                item.key,
                urgent_kind_name(item.kind),
                ms(item.at),
                ms(update.at),
                None::<i64>,
                None::<String>
            ])?;
        }
        let mut bind = tx.prepare_cached(
            "INSERT INTO record_actors (client_id, actor, device_id, first_seen_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (client_id, actor) DO NOTHING",
        )?;
        for actor in update.new_actors {
            bind.execute(params![client_id, actor, update.synced_device, ms(update.at)])?;
        }
        let mut receive = tx.prepare_cached(
            "INSERT INTO entry_receipts (client_id, entry_key, received_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (client_id, entry_key) DO NOTHING",
        )?;
        for key in update.received {
            receive.execute(params![client_id, key, ms(update.at)])?;
        }
        if raised > 0 {
            tracing::info!(client_id, raised, "alerts raised");
        }
        Ok(seq)
    })
}

/// Replaces the snapshot with one through `through_seq` and drops the
/// changes it covers.
pub(super) fn compact(
    storage: &SqliteStorage,
    client_id: &str,
    snapshot: &[u8],
    through_seq: i64,
) -> Result<(), StorageError> {
    let sealed = storage.sealer()?.seal(Sealed::Snapshot, client_id, through_seq, snapshot)?;
    storage.write(|tx| {
        let stored: i64 = tx.query_row(
            "SELECT COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = ?1), 0)",
            [client_id],
            |row| row.get(0),
        )?;
        if through_seq < stored || through_seq > last_seq(tx, client_id)? {
            return Err(StorageError::Database("a snapshot must cover the stored one and no unknown change".into()));
        }
        tx.execute(
            "INSERT INTO record_snapshots (client_id, through_seq, blob) VALUES (?1, ?2, ?3)
             ON CONFLICT (client_id) DO UPDATE SET through_seq = excluded.through_seq, blob = excluded.blob",
            params![client_id, through_seq, sealed],
        )?;
        tx.execute("DELETE FROM record_changes WHERE client_id = ?1 AND seq <= ?2", params![client_id, through_seq])?;
        Ok(())
    })
}

/// When the clinic first received each entry of the client whose logical
/// key starts with `prefix`.
pub(super) fn receipts(
    storage: &SqliteStorage,
    client_id: &str,
    prefix: &str,
) -> Result<HashMap<String, DateTime<Utc>>, StorageError> {
    storage.read(|tx| {
        let mut stmt = tx.prepare_cached(
            "SELECT entry_key, received_at FROM entry_receipts
             WHERE client_id = ?1 AND substr(entry_key, 1, length(?2)) = ?2",
        )?;
        let rows = stmt.query_map(params![client_id, prefix], |row| Ok((row.get(0)?, time(row, 1)?)))?;
        Ok(collect::<(String, DateTime<Utc>)>(rows)?.into_iter().collect())
    })
}
