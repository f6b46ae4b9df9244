//! Care records on PostgreSQL: the sealed snapshot and change log, each
//! append with what it implies (planned sessions, alerts, actor bindings,
//! the device's sync and clock offset, the receipt time of every entry it
//! wrote) in one transaction, and compaction. The SQLite twin is
//! `sqlite/records.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::super::sealing::Sealed;
use super::super::{urgent_kind_name, RecordUpdate, StorageError, StoredDocument};
use super::rows::{ms, time};
use super::{PgStorage, LAST_SEQ};

/// Takes the client's row lock (`$1`), held until commit: appends to one
/// record are serialised across instances. Sets the planned sessions when
/// `$2` is not NULL.
const LOCK_CLIENT: &str = "UPDATE clients SET planned_sessions = COALESCE($2, planned_sessions) WHERE id = $1";

/// Stores change `$2 + 1` of client `$1`'s record (blob `$3`) only if `$2`
/// is still its last seq: an append made from a stale copy stores nothing.
const APPEND_CHANGE: &str = "INSERT INTO record_changes (client_id, seq, blob)
     SELECT $1, $2::BIGINT + 1, $3
     WHERE greatest(
         COALESCE((SELECT max(seq) FROM record_changes WHERE client_id = $1), 0),
         COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = $1), 0)) = $2";

/// Raises an alert per urgent item (ids `$2`, keys `$3`, kinds `$4`, times
/// `$5`, raised at `$6`) of client `$1` not alerted yet.
const RAISE_ALERTS: &str = "INSERT INTO alerts (id, client_id, urgent_key, kind, at, raised_at)
     SELECT u.id, $1, u.urgent_key, u.kind, u.at, $6
     FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[]) AS u (id, urgent_key, kind, at)
     ON CONFLICT (client_id, urgent_key) DO NOTHING";

/// Binds the actors `$2` first seen in client `$1`'s record to device `$3`
/// (NULL: the clinic) at `$4`.
const BIND_ACTORS: &str = "INSERT INTO record_actors (client_id, actor, device_id, first_seen_at)
     SELECT $1, u.actor, $3, $4 FROM unnest($2::TEXT[]) AS u (actor)
     ON CONFLICT (client_id, actor) DO NOTHING";

/// Records device `$1`'s sync at `$2`, and its clock offset `$3` when
/// measured (NULL keeps the last measurement).
pub(super) const SET_LAST_SYNC: &str =
    "UPDATE devices SET last_sync_at = $2, clock_offset_ms = COALESCE($3, clock_offset_ms) WHERE id = $1";

/// Records client `$1`'s entries `$2` as received at `$3`, each the first
/// time only.
const RECEIVE_ENTRIES: &str = "INSERT INTO entry_receipts (client_id, entry_key, received_at)
     SELECT $1, u.entry_key, $3 FROM unnest($2::TEXT[]) AS u (entry_key)
     ON CONFLICT (client_id, entry_key) DO NOTHING";

/// The stored snapshot and the changes after it.
pub(super) fn load(storage: &PgStorage, client_id: &str) -> Result<StoredDocument, StorageError> {
    let sealer = storage.sealer()?;
    let (snapshot, changes) = storage.block(async {
        let mut client = storage.client().await?;
        // One snapshot of the database for both reads: a compaction
        // committed between them cannot hide changes.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let snapshot = tx
            .query_opt("SELECT through_seq, blob FROM record_snapshots WHERE client_id = $1", &[&client_id])
            .await?
            .map(|row| (row.get::<_, i64>(0), row.get::<_, Vec<u8>>(1)));
        let through = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let changes: Vec<(i64, Vec<u8>)> = tx
            .query(
                "SELECT seq, blob FROM record_changes WHERE client_id = $1 AND seq > $2 ORDER BY seq",
                &[&client_id, &through],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        tx.commit().await?;
        Ok((snapshot, changes))
    })?;
    let (snapshot_through_seq, snapshot) = match snapshot {
        Some((seq, blob)) => (seq, Some(sealer.open(Sealed::Snapshot, client_id, seq, &blob)?)),
        None => (0, None),
    };
    let changes = changes
        .into_iter()
        .map(|(seq, blob)| Ok((seq, sealer.open(Sealed::Change, client_id, seq, &blob)?)))
        .collect::<Result<_, StorageError>>()?;
    Ok(StoredDocument { snapshot, snapshot_through_seq, changes })
}

/// Appends one change blob and everything it implies, in one transaction.
pub(super) fn append(storage: &PgStorage, client_id: &str, update: &RecordUpdate<'_>) -> Result<i64, StorageError> {
    let planned = update
        .planned_sessions
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StorageError::Database(format!("cannot encode planned sessions: {e}")))?;
    let sealer = storage.sealer()?;
    let expected = update.expected_seq;
    let next = expected.checked_add(1).ok_or(StorageError::Corrupt("record change numbers are exhausted"))?;
    let blob = sealer.seal(Sealed::Change, client_id, next, update.change)?;
    let at = ms(update.at);
    let alert_ids: Vec<String> = update.urgent.iter().map(|_| katcore::record::new_id()).collect();
    let alert_keys: Vec<&str> = update.urgent.iter().map(|item| item.key.as_str()).collect();
    let alert_kinds: Vec<&str> = update.urgent.iter().map(|item| urgent_kind_name(item.kind)).collect();
    let alert_times: Vec<i64> = update.urgent.iter().map(|item| ms(item.at)).collect();
    storage.block(async {
        let mut client = storage.client().await?;
        let tx = client.transaction().await?;
        let lock = tx.prepare_cached(LOCK_CLIENT).await?;
        let append = tx.prepare_cached(APPEND_CHANGE).await?;
        let synced = tx.prepare_cached(SET_LAST_SYNC).await?;
        let raise = tx.prepare_cached(RAISE_ALERTS).await?;
        let bind = tx.prepare_cached(BIND_ACTORS).await?;
        let receive = tx.prepare_cached(RECEIVE_ENTRIES).await?;
        // Sent together (tokio-postgres pipelines what is awaited
        // together) and run in this order: the client's row lock first,
        // so the append's check sees every append committed before it.
        let lock_params: [&(dyn ToSql + Sync); 2] = [&client_id, &planned];
        let append_params: [&(dyn ToSql + Sync); 3] = [&client_id, &expected, &blob];
        let synced_params: [&(dyn ToSql + Sync); 3] = [&update.synced_device, &at, &update.device_clock_offset_ms];
        let raise_params: [&(dyn ToSql + Sync); 6] =
            [&client_id, &alert_ids, &alert_keys, &alert_kinds, &alert_times, &at];
        let bind_params: [&(dyn ToSql + Sync); 4] = [&client_id, &update.new_actors, &update.synced_device, &at];
        let receive_params: [&(dyn ToSql + Sync); 3] = [&client_id, &update.received, &at];
        let (locked, appended, synced, raised, bound, received) = tokio::join!(
            tx.execute(&lock, &lock_params),
            tx.execute(&append, &append_params),
            tx.execute(&synced, &synced_params),
            tx.execute(&raise, &raise_params),
            tx.execute(&bind, &bind_params),
            tx.execute(&receive, &receive_params),
        );
        if locked? != 1 {
            return Err(StorageError::Database("no such client".into()));
        }
        if appended? != 1 {
            // Dropping the transaction rolls the other statements back.
            return Err(StorageError::Conflict);
        }
        let raised = raised?;
        synced?;
        bound?;
        received?;
        tx.commit().await?;
        if raised > 0 {
            tracing::info!(client_id, raised, "alerts raised");
        }
        Ok(next)
    })
}

/// Replaces the snapshot with one through `through_seq` and drops the
/// changes it covers.
pub(super) fn compact(
    storage: &PgStorage,
    client_id: &str,
    snapshot: &[u8],
    through_seq: i64,
) -> Result<(), StorageError> {
    let sealed = storage.sealer()?.seal(Sealed::Snapshot, client_id, through_seq, snapshot)?;
    storage.block(async {
        let mut client = storage.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE", &[&client_id]).await?;
        let last: i64 = tx.query_one(LAST_SEQ, &[&client_id]).await?.get(0);
        let stored: i64 = tx
            .query_opt("SELECT through_seq FROM record_snapshots WHERE client_id = $1", &[&client_id])
            .await?
            .map_or(0, |row| row.get(0));
        if through_seq < stored || through_seq > last {
            return Err(StorageError::Database("a snapshot must cover the stored one and no unknown change".into()));
        }
        tx.execute(
            "INSERT INTO record_snapshots (client_id, through_seq, blob) VALUES ($1, $2, $3)
             ON CONFLICT (client_id) DO UPDATE SET through_seq = excluded.through_seq, blob = excluded.blob",
            &[&client_id, &through_seq, &sealed],
        )
        .await?;
        tx.execute("DELETE FROM record_changes WHERE client_id = $1 AND seq <= $2", &[&client_id, &through_seq])
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// When the clinic first received each entry of the client whose logical
/// key starts with `prefix`.
pub(super) fn receipts(
    storage: &PgStorage,
    client_id: &str,
    prefix: &str,
) -> Result<HashMap<String, DateTime<Utc>>, StorageError> {
    storage
        .query(
            "SELECT entry_key, received_at FROM entry_receipts
             WHERE client_id = $1 AND left(entry_key, length($2)) = $2",
            &[&client_id, &prefix],
        )?
        .iter()
        .map(|row| Ok((row.get(0), time(row.get(1))?)))
        .collect()
}
