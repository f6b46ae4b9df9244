//! The SQLite schema and its migrations, tracked in `PRAGMA user_version`.
//!
//! [`CREATE_SQL`] followed by [`V4_SIGN_IN_SQL`], [`V5_RECEIPTS_SQL`] and
//! [`V6_ALERT_ACTIONS_SQL`] is the full current schema (versions 4 to 6's
//! additions are written once,
//! as the `ALTER`s that upgrade an older database, so a fresh and an
//! upgraded database are identical).
//! [`migrate`] brings any older database up to [`VERSION`] in one `IMMEDIATE` transaction (so two
//! processes opening the same database upgrade it once) and refuses a
//! database from a newer version. Times are Unix milliseconds (UTC).

use rusqlite::{Connection, Transaction, TransactionBehavior};

use katcore::sqlite;

use super::StorageError;

/// The schema version this build writes.
pub(crate) const VERSION: u32 = 6;

/// Connection settings, applied to every connection: the device store's (`katcore::sqlite`).
pub(crate) use katcore::sqlite::PRAGMAS;

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

/// The `clinics` table (schema version 3: the public key only), in
/// [`CREATE_SQL`] and in the upgrade from version 2.
macro_rules! clinics_table {
    () => {
        "
CREATE TABLE clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pack_public_key BLOB NOT NULL CHECK (length(pack_public_key) = 32),
    created_at INTEGER NOT NULL
) STRICT;
"
    };
}
pub(crate) use clinics_table;

/// The whole current schema.
pub(crate) const CREATE_SQL: &str = concat!(
    "
",
    clinics_table!(),
    "

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

/// Version 4's addition: clinicians' dashboard sign-in (a login and an
/// Argon2id hash in PHC form), the dashboard's sessions (only the SHA-256
/// of the cookie is stored) and the pack version each device last fetched. Added to a version 3 database by
/// [`migrate`] without further ado: it changes no existing row.
pub(crate) const V4_SIGN_IN_SQL: &str = "
ALTER TABLE clinicians ADD COLUMN login TEXT;
ALTER TABLE clinicians ADD COLUMN password_hash TEXT;
CREATE UNIQUE INDEX clinicians_by_login ON clinicians (login) WHERE login IS NOT NULL;
ALTER TABLE devices ADD COLUMN pack_version INTEGER;

CREATE TABLE web_sessions (
    id_hash BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
    clinician_id TEXT NOT NULL REFERENCES clinicians (id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
";

/// Version 5's addition: the clinic's own time. When the clinic first
/// received each entry of a record (server-assigned; a device cannot write
/// it), and each device's clock offset as measured at its latest sync
/// (`docs/sync-protocol.md`, "The device's clock"). Added to a version 4
/// database by [`migrate`]: it changes no existing row (entries stored
/// before have no receipt).
pub(crate) const V5_RECEIPTS_SQL: &str = "
CREATE TABLE entry_receipts (
    client_id TEXT NOT NULL REFERENCES clients (id),
    entry_key TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, entry_key)
) STRICT;
ALTER TABLE devices ADD COLUMN clock_offset_ms INTEGER;
";

/// Version 6's addition: what clinicians did about each alert. The outcome
/// of its current acknowledgement, and the audit trail of every
/// acknowledgement and reopening (who, when, the outcome's code). The
/// free-text note is kept only in the sealed record. Added to a version 5
/// database by [`migrate`]: no existing row changes (earlier
/// acknowledgements have no outcome and no trail row).
pub(crate) const V6_ALERT_ACTIONS_SQL: &str = "
ALTER TABLE alerts ADD COLUMN acknowledged_outcome TEXT;
CREATE TABLE alert_actions (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    action TEXT NOT NULL CHECK (action IN ('acknowledged', 'reopened')),
    at INTEGER NOT NULL,
    clinician_id TEXT NOT NULL,
    by_name TEXT NOT NULL,
    outcome TEXT
) STRICT;
CREATE INDEX alert_actions_of_alert ON alert_actions (alert_id, at);
";

/// Version 2's addition: which writer each Automerge actor of a record
/// belongs to (`device_id` NULL: the clinic).
pub(crate) const V2_ACTORS_SQL: &str = record_actors_table!();

/// The schema version recorded in the database.
pub(crate) fn user_version(conn: &Connection) -> Result<u32, StorageError> {
    let version =
        sqlite::schema_version(conn, VERSION)?.ok_or(StorageError::Corrupt("the schema version is invalid"))?;
    Ok(sqlite::version_number(version, VERSION))
}

/// Creates the schema, or refuses a database that is too old or too new.
///
/// Versions 1 and 2 kept record blobs in clear and the clinics' private
/// pack-signing keys: only [`crate::upgrade`] (`katctl clinic upgrade`),
/// which has the record key, brings them to version 3.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    if version > VERSION {
        return Err(StorageError::TooNew { found: version, supported: VERSION });
    }
    if (1..3).contains(&version) {
        return Err(StorageError::UpgradeRequired { found: version });
    }
    match version {
        0 => create(&tx)?,
        3..=5 => {
            if version < 4 {
                tx.execute_batch(V4_SIGN_IN_SQL)?;
            }
            if version < 5 {
                tx.execute_batch(V5_RECEIPTS_SQL)?;
            }
            tx.execute_batch(V6_ALERT_ACTIONS_SQL)?;
            sqlite::set_schema_version(&tx, VERSION)?;
        }
        _ => {}
    }
    tx.commit()?;
    Ok(())
}

/// Creates the whole current schema in an empty database.
fn create(tx: &Transaction<'_>) -> Result<(), StorageError> {
    let tables: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    if tables != 0 {
        return Err(StorageError::Corrupt("the database is not a katcore clinic database"));
    }
    tx.execute_batch(CREATE_SQL)?;
    tx.execute_batch(V4_SIGN_IN_SQL)?;
    tx.execute_batch(V5_RECEIPTS_SQL)?;
    tx.execute_batch(V6_ALERT_ACTIONS_SQL)?;
    sqlite::set_schema_version(tx, VERSION)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_gets_the_current_schema_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), VERSION);
    }

    /// The `clinics` table of versions 1 and 2, with the private key.
    pub(crate) const V2_CLINICS_SQL: &str = "
CREATE TABLE clinics (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    signing_key BLOB NOT NULL CHECK (length(signing_key) = 32),
    created_at INTEGER NOT NULL
) STRICT;
";

    /// The schema of `version` (1 or 2), as those versions created it.
    pub(crate) fn old_schema(version: u32) -> String {
        let v2 = CREATE_SQL.replace(clinics_table!().trim(), V2_CLINICS_SQL.trim());
        if version == 1 {
            v2.replace(V2_ACTORS_SQL.trim(), "")
        } else {
            v2
        }
    }

    /// The schema as `sqlite_master` holds it, whitespace and quotes
    /// normalised (a renamed table's name is stored quoted).
    pub(crate) fn schema_of(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
        stmt.query_map([], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|s| s.unwrap().replace('"', "").split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn older_databases_need_the_upgrade_command() {
        for version in [1, 2] {
            let mut old = Connection::open_in_memory().unwrap();
            old.execute_batch(&old_schema(version)).unwrap();
            old.pragma_update(None, "user_version", version).unwrap();
            let error = migrate(&mut old).unwrap_err();
            assert!(matches!(error, StorageError::UpgradeRequired { found } if found == version));
            assert!(error.to_string().contains("katctl clinic upgrade"), "{error}");
        }
    }

    #[test]
    fn a_version_3_database_gains_sign_in_and_keeps_its_rows() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(CREATE_SQL).unwrap();
        old.pragma_update(None, "user_version", 3).unwrap();
        old.execute_batch(
            "INSERT INTO clinics VALUES ('c', 'Clinic', zeroblob(32), 0);
             INSERT INTO clinicians (id, clinic_id, display_name, token_hash, created_at) VALUES ('n', 'c', 'N', x'01', 0);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(user_version(&old).unwrap(), VERSION);
        let login: Option<String> =
            old.query_row("SELECT login FROM clinicians WHERE id = 'n'", [], |r| r.get(0)).unwrap();
        assert_eq!(login, None);
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(schema_of(&old), schema_of(&fresh));
    }

    #[test]
    fn a_version_4_database_gains_receipts_and_keeps_its_rows() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(CREATE_SQL).unwrap();
        old.execute_batch(V4_SIGN_IN_SQL).unwrap();
        old.pragma_update(None, "user_version", 4).unwrap();
        old.execute_batch(
            "INSERT INTO clinics VALUES ('c', 'Clinic', zeroblob(32), 0);
             INSERT INTO clients (id, clinic_id, label, created_at) VALUES ('k', 'c', 'K', 0);
             INSERT INTO devices (id, client_id, label, token_hash, enrolled_at, last_sync_at)
                 VALUES ('d', 'k', 'phone', x'02', 0, 5);",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(user_version(&old).unwrap(), VERSION);
        let (last_sync, offset): (i64, Option<i64>) = old
            .query_row("SELECT last_sync_at, clock_offset_ms FROM devices WHERE id = 'd'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((last_sync, offset), (5, None), "kept, and not measured yet");
        let receipts: i64 = old.query_row("SELECT count(*) FROM entry_receipts", [], |r| r.get(0)).unwrap();
        assert_eq!(receipts, 0, "entries stored before have no receipt");
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(schema_of(&old), schema_of(&fresh));
    }

    #[test]
    fn a_version_5_database_gains_alert_actions_and_keeps_its_acknowledgements() {
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(CREATE_SQL).unwrap();
        old.execute_batch(V4_SIGN_IN_SQL).unwrap();
        old.execute_batch(V5_RECEIPTS_SQL).unwrap();
        old.pragma_update(None, "user_version", 5).unwrap();
        old.execute_batch(
            "INSERT INTO clinics VALUES ('c', 'Clinic', zeroblob(32), 0);
             INSERT INTO clients (id, clinic_id, label, created_at) VALUES ('k', 'c', 'K', 0);
             INSERT INTO alerts (id, client_id, urgent_key, kind, at, raised_at, acknowledged_at, acknowledged_by)
                 VALUES ('a', 'k', 'v:1', 'urgent_blood_pressure', 1, 2, 3, 'N');",
        )
        .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(user_version(&old).unwrap(), VERSION);
        let (at, by, outcome): (i64, String, Option<String>) = old
            .query_row("SELECT acknowledged_at, acknowledged_by, acknowledged_outcome FROM alerts", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((at, by.as_str(), outcome), (3, "N", None), "kept, with no outcome");
        let trail: i64 = old.query_row("SELECT count(*) FROM alert_actions", [], |r| r.get(0)).unwrap();
        assert_eq!(trail, 0);
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(schema_of(&old), schema_of(&fresh));
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
