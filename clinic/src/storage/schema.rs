//! The SQLite schema and its migrations, tracked in `PRAGMA user_version`.
//!
//! [`CREATE_SQL`] is the full current schema. [`migrate`] brings any older
//! database up to [`VERSION`] in one `IMMEDIATE` transaction (so two
//! processes opening the same database upgrade it once) and refuses a
//! database from a newer version. Times are Unix milliseconds (UTC).

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StorageError;

/// The schema version this build writes.
pub(crate) const VERSION: u32 = 2;

/// Connection settings, applied to every connection.
pub(crate) const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;
";

/// The `record_actors` table (schema version 2), in [`CREATE_SQL`] and in
/// the upgrade from version 1: one text for both.
macro_rules! record_actors_table {
    () => {
        "
CREATE TABLE record_actors (
    client_id TEXT NOT NULL REFERENCES clients (id),
    actor TEXT NOT NULL,
    device_id TEXT REFERENCES devices (id),
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, actor)
) STRICT;
"
    };
}

/// The whole current schema.
pub(crate) const CREATE_SQL: &str = concat!(
    "
CREATE TABLE clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    signing_key BLOB NOT NULL CHECK (length(signing_key) = 32),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE clinicians (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    display_name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    label TEXT NOT NULL,
    planned_sessions TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX clients_by_clinic ON clients (clinic_id, created_at);

CREATE TABLE enrollment_codes (
    code_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
) STRICT;

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    label TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    enrolled_at INTEGER NOT NULL,
    last_sync_at INTEGER,
    revoked_at INTEGER
) STRICT;
CREATE INDEX devices_by_client ON devices (client_id);

CREATE TABLE record_changes (
    client_id TEXT NOT NULL REFERENCES clients (id),
    seq INTEGER NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (client_id, seq)
) STRICT;

CREATE TABLE record_snapshots (
    client_id TEXT PRIMARY KEY REFERENCES clients (id),
    through_seq INTEGER NOT NULL,
    blob BLOB NOT NULL
) STRICT;

CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id),
    urgent_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    raised_at INTEGER NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    UNIQUE (client_id, urgent_key)
) STRICT;

",
    record_actors_table!(),
    "
CREATE TABLE packs (
    clinic_id TEXT NOT NULL REFERENCES clinics (id),
    version INTEGER NOT NULL,
    pack_id TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    etag TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, version)
) STRICT;
"
);

/// Version 2's addition: which writer each Automerge actor of a record
/// belongs to (`device_id` NULL: the clinic).
const V2_ACTORS_SQL: &str = record_actors_table!();

/// The schema version recorded in the database.
pub(crate) fn user_version(conn: &Connection) -> Result<u32, StorageError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(version).map_err(|_| StorageError::Corrupt("the schema version is invalid"))
}

/// Creates or upgrades the schema to [`VERSION`] in one `IMMEDIATE` transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > VERSION {
        return Err(StorageError::TooNew { found: version, supported: VERSION });
    }
    if version < VERSION {
        upgrade_from(&tx, version)?;
    }
    tx.commit()?;
    Ok(())
}

/// Upgrades a schema of `version` to [`VERSION`], one step at a time.
fn upgrade_from(tx: &Transaction<'_>, version: u32) -> Result<(), StorageError> {
    for from in version..VERSION {
        match from {
            0 => {
                let tables: i64 = tx.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    [],
                    |row| row.get(0),
                )?;
                if tables != 0 {
                    return Err(StorageError::Corrupt("the database is not a katcore clinic database"));
                }
                tx.execute_batch(CREATE_SQL)?;
                // The whole current schema: nothing left to upgrade.
                break;
            }
            // 1 → 2: the Automerge actors of each record and who wrote with
            // them (a device, or the clinic when `device_id` is NULL).
            1 => tx.execute_batch(V2_ACTORS_SQL)?,
            _ => return Err(StorageError::Corrupt("unknown schema version")),
        }
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_gets_the_current_schema_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
    }

    #[test]
    fn a_version_1_database_upgrades_to_the_current_schema() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(&CREATE_SQL.replace(V2_ACTORS_SQL.trim(), "")).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        migrate(&mut old).unwrap();
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let schema = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
            stmt.query_map([], |row| row.get::<_, String>(0))
                .unwrap()
                .map(|s| s.unwrap().split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        assert_eq!(user_version(&old).unwrap(), VERSION);
        assert_eq!(schema(&old), schema(&fresh));
    }

    #[test]
    fn newer_and_foreign_databases_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(StorageError::TooNew { .. })));

        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE other (x INTEGER)").unwrap();
        assert!(matches!(migrate(&mut conn), Err(StorageError::Corrupt(_))));
    }
}
