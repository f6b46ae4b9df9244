//! The store's SQLite schema, its version and its upgrades.
//!
//! The version lives in `PRAGMA user_version`. A new store is created from
//! [`CREATE_SQL`], the full current schema; an older one is brought up to
//! [`VERSION`] by [`upgrade_from`], one step per version, inside a single
//! `IMMEDIATE` transaction, so an upgrade happens completely or not at all. A
//! store written by a newer version of this library is refused, never
//! downgraded.
//!
//! History:
//! - v1: `meta`, `snapshot`, `changes`, `private_entries`.
//! - v2: `sync_state`, per-server sync state of the sync client.
//! - v3: the row keys of `meta`, `private_entries` and `sync_state` are
//!   blinded (`Cipher::blind`) and their clear keys sealed in the blobs;
//!   deleted content is overwritten (`secure_delete`).
//!
//! Every value column holds a sealed blob (see the `crypto` module); the
//! caller-chosen keys are blinded.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::crypto::{Cipher, Table, KEY_CHECK_ROW};
use super::frame;
use super::StoreError;
use crate::sqlite;

/// The schema version this library writes.
pub(super) const VERSION: u32 = 3;

/// The full current schema, as a new store is created.
pub(super) const CREATE_SQL: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL,
    blob BLOB NOT NULL
);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    blob BLOB NOT NULL
);
CREATE TABLE private_entries (
    id TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
CREATE TABLE sync_state (
    peer TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
";

/// The schema as version 1 of this library created it, kept verbatim as a
/// record of what [`upgrade_from`] starts from and as the migration test's
/// fixture.
#[cfg(test)]
pub(super) const CREATE_V1_SQL: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE snapshot (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL,
    blob BLOB NOT NULL
);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    blob BLOB NOT NULL
);
CREATE TABLE private_entries (
    id TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
";

/// Version 1 → 2: per-server sync state.
const UPGRADE_V1_TO_V2_SQL: &str = "
CREATE TABLE sync_state (
    peer TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
";

/// Connection settings of an open store, applied once its key is verified.
pub(crate) use crate::sqlite::PRAGMAS;

/// Settings for building a new store in its temporary file.
///
/// The temporary file keeps the rollback journal so that, once committed and
/// closed, everything is in the one file that is renamed into place; WAL mode
/// is switched on when the store is first opened. `auto_vacuum =
/// INCREMENTAL` (which must be set before the first table exists) lets
/// compaction hand the pages of dropped changes back to the file system.
pub(crate) const CREATE_PRAGMAS: &str = "
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;
";

/// The schema version recorded in the file.
pub(crate) fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let version =
        sqlite::schema_version(conn, VERSION)?.ok_or(StoreError::Corrupt { what: "the schema version is invalid" })?;
    Ok(sqlite::version_number(version, VERSION))
}

/// Creates the current schema and the key check in an empty database.
pub(crate) fn create(tx: &Transaction<'_>, cipher: &Cipher) -> Result<(), StoreError> {
    tx.execute_batch(CREATE_SQL)?;
    tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", (KEY_CHECK_ROW, cipher.key_check()?))?;
    sqlite::set_schema_version(tx, VERSION)?;
    Ok(())
}

/// Brings the schema up to [`VERSION`] in one `IMMEDIATE` transaction.
///
/// The version is read again under the write lock, so two processes opening
/// the same old store upgrade it once.
pub(crate) fn migrate(conn: &mut Connection, cipher: &Cipher) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > VERSION {
        return Err(StoreError::TooNew { found: version, supported: VERSION });
    }
    if version < VERSION {
        upgrade_from(&tx, version, cipher)?;
    }
    tx.commit()?;
    Ok(())
}

/// Upgrades a schema of `version` to [`VERSION`], one step at a time.
pub(crate) fn upgrade_from(tx: &Transaction<'_>, version: u32, cipher: &Cipher) -> Result<(), StoreError> {
    for from in version..VERSION {
        match from {
            1 => tx.execute_batch(UPGRADE_V1_TO_V2_SQL)?,
            2 => blind_row_keys(tx, cipher)?,
            // Version 0 is an empty database: stores are created complete,
            // so it was never one of ours.
            _ => return Err(StoreError::Corrupt { what: "the file is not a katcore store" }),
        }
    }
    sqlite::set_schema_version(tx, VERSION)?;
    Ok(())
}

/// Version 2 → 3: every caller-chosen row key is replaced by its blind
/// hash, and its clear key is sealed in the blob with the value.
fn blind_row_keys(tx: &Transaction<'_>, cipher: &Cipher) -> Result<(), StoreError> {
    for (table, name, key_column, value_column) in [
        (Table::Meta, "meta", "key", "value"),
        (Table::PrivateEntries, "private_entries", "id", "blob"),
        (Table::SyncState, "sync_state", "peer", "blob"),
    ] {
        let rows: Vec<(String, Vec<u8>)> = {
            let mut stmt = tx.prepare(&format!("SELECT {key_column}, {value_column} FROM {name}"))?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (key, blob) in rows.into_iter().filter(|(key, _)| !(table == Table::Meta && key == KEY_CHECK_ROW)) {
            let value = cipher
                .open(table, &key, &blob)
                .map_err(|_| StoreError::Corrupt { what: "a value does not authenticate while upgrading" })?;
            let row_key = cipher.blind(table, &key);
            let sealed = cipher.seal(table, &row_key, &frame(&key, &value))?;
            tx.execute(&format!("DELETE FROM {name} WHERE {key_column} = ?1"), [&key])?;
            tx.execute(
                &format!("INSERT INTO {name} ({key_column}, {value_column}) VALUES (?1, ?2)"),
                (&row_key, &sealed),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::*;
    use crate::store::crypto::{StoreKey, Table};
    use crate::store::tests::TempDir;
    use crate::store::Store;

    fn schema_of(path: &Path) -> Vec<(String, String, String)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").unwrap();
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).unwrap();
        rows.map(Result::unwrap)
            .map(|(kind, name, sql): (String, String, Option<String>)| {
                // Whitespace differs between the fresh and the upgraded text.
                (kind, name, sql.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect()
    }

    /// A v1 store exactly as version 1 of this library wrote it.
    fn write_v1_store(path: &Path, key: &StoreKey) {
        let cipher = Cipher::new(key);
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(CREATE_V1_SQL).unwrap();
        conn.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", (KEY_CHECK_ROW, cipher.key_check().unwrap()))
            .unwrap();
        let change = cipher.seal(Table::Changes, "1", b"first change").unwrap();
        conn.execute("INSERT INTO changes (seq, blob) VALUES (1, ?1)", [change]).unwrap();
        let entry = cipher.seal(Table::PrivateEntries, "journal-1", b"private words").unwrap();
        conn.execute("INSERT INTO private_entries (id, blob) VALUES ('journal-1', ?1)", [entry]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    }

    #[test]
    fn v1_store_upgrades_to_the_fresh_schema_with_data_intact() {
        let dir = TempDir::new("schema-upgrade");
        let key = StoreKey::from_bytes(&[3; 32]).unwrap();
        let old = dir.path().join("old.db");
        write_v1_store(&old, &key);

        let store = Store::open(&old, &key).unwrap();
        let doc = store.load_document().unwrap();
        assert_eq!(doc.changes, vec![(1, b"first change".to_vec())]);
        assert_eq!(store.private_entries().unwrap(), vec![("journal-1".to_string(), b"private words".to_vec())]);
        store.put_sync_state("clinic", b"state").unwrap();
        assert_eq!(store.get_sync_state("clinic").unwrap(), Some(b"state".to_vec()));
        assert_eq!(store.append_change(b"second").unwrap(), 2);
        drop(store);
        // The private entry's id is no longer in the file in clear.
        let bytes = std::fs::read(&old).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"journal-1"));

        let fresh = dir.path().join("fresh.db");
        drop(Store::open(&fresh, &key).unwrap());

        let conn = Connection::open(&old).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
        drop(conn);
        assert_eq!(schema_of(&old), schema_of(&fresh));
    }

    #[test]
    fn unknown_versions_are_not_upgraded() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        let cipher = Cipher::new(&StoreKey::from_bytes(&[1; 32]).unwrap());
        assert!(matches!(upgrade_from(&tx, 0, &cipher), Err(StoreError::Corrupt { .. })));
    }
}
