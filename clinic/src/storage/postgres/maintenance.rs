//! Operators' tools on a PostgreSQL database (`katctl clinic reseal`,
//! `katctl clinic copy-to-postgres`): sealing record blobs again under the
//! current record key, and copying a SQLite clinic database in.

use tokio_postgres::types::ToSql;

use super::PgStorage;
use crate::storage::sealing::Sealed;
use crate::storage::StorageError;

impl PgStorage {
    /// Seals again, under the current key, every record blob sealed under a
    /// previous one; returns how many.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when a blob's key was not given.
    pub fn reseal_records(&self) -> Result<u64, StorageError> {
        let sealer = self.sealer()?;
        // A maintenance command over every record: as long as it takes.
        self.block_within(None, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let mut rewritten = 0;
            for (table, select, update) in [
                (
                    Sealed::Change,
                    "SELECT client_id, seq, blob FROM record_changes FOR UPDATE",
                    "UPDATE record_changes SET blob = $3 WHERE client_id = $1 AND seq = $2",
                ),
                (
                    Sealed::Snapshot,
                    "SELECT client_id, through_seq, blob FROM record_snapshots FOR UPDATE",
                    "UPDATE record_snapshots SET blob = $3 WHERE client_id = $1 AND through_seq = $2",
                ),
            ] {
                for row in tx.query(select, &[]).await? {
                    let (client_id, seq, blob): (String, i64, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
                    if let Some(sealed) = sealer.reseal(table, &client_id, seq, &blob)? {
                        tx.execute(update, &[&client_id, &seq, &sealed]).await?;
                        rewritten += 1;
                    }
                }
            }
            tx.commit().await?;
            Ok(rewritten)
        })
    }

    /// Copies every row of the SQLite database `source` (schema version 4;
    /// open it with [`SqliteStorage::open`](crate::storage::SqliteStorage::open), with its server
    /// stopped) into this database, which must hold no clinic yet, in one
    /// transaction: tokens, codes and passwords stay valid (their hashes are
    /// copied), record blobs are copied still sealed (the server goes on
    /// with the same record key), and alerts keep their acknowledgements.
    /// Devices notice nothing but the new address, if it changed.
    ///
    /// # Errors
    /// [`StorageError::Database`] when this database already holds a
    /// clinic or a row does not read; nothing is copied then.
    pub fn copy_from_sqlite(&self, source: &crate::storage::SqliteStorage) -> Result<CopyReport, StorageError> {
        self.block_within(None, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let clinics: i64 = tx.query_one("SELECT count(*) FROM clinics", &[]).await?.get(0);
            if clinics > 0 {
                return Err(StorageError::Database(
                    "the PostgreSQL database already holds clinics: copy into an empty one".into(),
                ));
            }
            let mut report = CopyReport::default();
            for (table, columns) in COPIED_TABLES {
                let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
                let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let insert = tx
                    .prepare(&format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.join(", "),
                        placeholders.join(", ")
                    ))
                    .await?;
                let mut after = 0;
                let mut copied = 0u64;
                loop {
                    let rows = source.table_rows(table, &names, after, COPY_BATCH)?;
                    let Some((last, _)) = rows.last() else { break };
                    after = *last;
                    for (_, values) in rows {
                        let params = columns
                            .iter()
                            .zip(values)
                            .map(|((_, kind), value)| kind.param(value))
                            .collect::<Result<Vec<_>, _>>()?;
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                        tx.execute(&insert, &refs).await?;
                        copied += 1;
                    }
                }
                report.tables.push((table.to_owned(), copied));
            }
            tx.commit().await?;
            Ok(report)
        })
    }
}

/// What [`PgStorage::copy_from_sqlite`] copied: rows per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Each table, in the order copied, and its rows.
    pub tables: Vec<(String, u64)>,
}

/// The PostgreSQL type of a copied column.
#[derive(Clone, Copy)]
enum Column {
    Text,
    Int,
    Blob,
    /// SQLite's 0/1.
    Bool,
}

impl Column {
    /// `value` (from SQLite) as a parameter of this type; NULL stays NULL.
    fn param(self, value: rusqlite::types::Value) -> Result<Box<dyn ToSql + Sync + Send>, StorageError> {
        use rusqlite::types::Value;
        Ok(match (self, value) {
            (Column::Text, Value::Null) => Box::new(None::<String>),
            (Column::Int, Value::Null) => Box::new(None::<i64>),
            (Column::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
            (Column::Bool, Value::Null) => Box::new(None::<bool>),
            (Column::Text, Value::Text(text)) => Box::new(text),
            (Column::Int, Value::Integer(n)) => Box::new(n),
            (Column::Blob, Value::Blob(bytes)) => Box::new(bytes),
            (Column::Bool, Value::Integer(n)) => Box::new(n != 0),
            _ => return Err(StorageError::Corrupt("a SQLite value is not of its column's type")),
        })
    }
}

/// Rows copied per read from SQLite (record blobs may be megabytes each).
const COPY_BATCH: usize = 64;

/// Every table of the schema with a row worth keeping, parents first, and
/// its columns (`auth_failures` and `readiness_probe` are transient).
const COPIED_TABLES: [(&str, &[(&str, Column)]); 13] = {
    use Column::{Blob, Bool, Int, Text};
    [
        ("clinics", &[("id", Text), ("name", Text), ("pack_public_key", Blob), ("created_at", Int)]),
        (
            "clinicians",
            &[
                ("id", Text),
                ("clinic_id", Text),
                ("display_name", Text),
                ("token_hash", Blob),
                ("revoked", Bool),
                ("created_at", Int),
                ("login", Text),
                ("password_hash", Text),
            ],
        ),
        (
            "clients",
            &[("id", Text), ("clinic_id", Text), ("label", Text), ("planned_sessions", Text), ("created_at", Int)],
        ),
        (
            "enrollment_codes",
            &[("code_hash", Blob), ("client_id", Text), ("created_at", Int), ("expires_at", Int), ("used_at", Int)],
        ),
        (
            "devices",
            &[
                ("id", Text),
                ("client_id", Text),
                ("label", Text),
                ("token_hash", Blob),
                ("enrolled_at", Int),
                ("last_sync_at", Int),
                ("revoked_at", Int),
                ("pack_version", Int),
                ("clock_offset_ms", Int),
            ],
        ),
        ("record_snapshots", &[("client_id", Text), ("through_seq", Int), ("blob", Blob)]),
        ("record_changes", &[("client_id", Text), ("seq", Int), ("blob", Blob)]),
        (
            "alerts",
            &[
                ("id", Text),
                ("client_id", Text),
                ("urgent_key", Text),
                ("kind", Text),
                ("at", Int),
                ("raised_at", Int),
                ("acknowledged_at", Int),
                ("acknowledged_by", Text),
                ("acknowledged_outcome", Text),
            ],
        ),
        (
            "alert_actions",
            &[
                ("alert_id", Text),
                ("action", Text),
                ("at", Int),
                ("clinician_id", Text),
                ("by_name", Text),
                ("outcome", Text),
            ],
        ),
        ("record_actors", &[("client_id", Text), ("actor", Text), ("device_id", Text), ("first_seen_at", Int)]),
        ("entry_receipts", &[("client_id", Text), ("entry_key", Text), ("received_at", Int)]),
        (
            "packs",
            &[
                ("clinic_id", Text),
                ("version", Int),
                ("pack_id", Text),
                ("signed_json", Text),
                ("etag", Text),
                ("published_at", Int),
            ],
        ),
        (
            "web_sessions",
            &[
                ("id_hash", Blob),
                ("clinician_id", Text),
                ("csrf_token", Text),
                ("created_at", Int),
                ("last_seen_at", Int),
                ("expires_at", Int),
            ],
        ),
    ]
};
