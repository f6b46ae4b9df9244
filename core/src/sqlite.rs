//! The SQLite conventions the device's store and the clinic's database
//! share: one set of connection settings and one way to read and write the
//! schema version (`PRAGMA user_version`). Each side keeps its own tables
//! and migrations; this module is what they have in common, so a rule about
//! durability or versions is written once.

use rusqlite::Connection;

/// Connection settings of an open database.
///
/// - `journal_mode = WAL`: readers do not block the writer and a crash never
///   leaves a half-written transaction.
/// - `synchronous = FULL`: a write is on disk when the call returns.
/// - `foreign_keys = ON`: references are enforced.
/// - `temp_store = MEMORY`: SQLite never spills to temporary files (Android
///   has no usable temp directory; and nothing leaves the database file).
/// - `secure_delete = ON`: deleted content is overwritten, not left in free pages.
pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;
PRAGMA secure_delete = ON;
";

/// What the version recorded in a database says, against the version this build writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaVersion {
    /// Version 0: no schema yet.
    Empty,
    /// An older version, to upgrade from.
    Older(u32),
    /// The version this build writes.
    Current,
    /// A newer version: written by a newer build, refused.
    Newer(u32),
}

/// Reads the schema version of `conn` against `current`.
///
/// # Errors
/// SQLite's error; `None` in the `Ok` for a negative version, which no
/// build of ours writes (the file is not one of ours).
pub fn schema_version(conn: &Connection, current: u32) -> rusqlite::Result<Option<SchemaVersion>> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    // user_version is a signed 32-bit field.
    let Ok(version) = u32::try_from(version) else { return Ok(None) };
    Ok(Some(match version {
        0 => SchemaVersion::Empty,
        v if v < current => SchemaVersion::Older(v),
        v if v == current => SchemaVersion::Current,
        v => SchemaVersion::Newer(v),
    }))
}

/// Records `version` as the schema version, inside the caller's transaction.
///
/// # Errors
/// SQLite's error.
pub fn set_schema_version(conn: &Connection, version: u32) -> rusqlite::Result<()> {
    conn.pragma_update(None, "user_version", version)
}

/// The raw version number of a [`SchemaVersion`] read against `current`.
pub fn version_number(version: SchemaVersion, current: u32) -> u32 {
    match version {
        SchemaVersion::Empty => 0,
        SchemaVersion::Older(v) | SchemaVersion::Newer(v) => v,
        SchemaVersion::Current => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_against_the_current_one() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(schema_version(&conn, 3).unwrap(), Some(SchemaVersion::Empty));
        for (written, read) in [(2, SchemaVersion::Older(2)), (3, SchemaVersion::Current), (4, SchemaVersion::Newer(4))]
        {
            set_schema_version(&conn, written).unwrap();
            assert_eq!(schema_version(&conn, 3).unwrap(), Some(read));
            assert_eq!(version_number(read, 3), written);
        }
        conn.pragma_update(None, "user_version", -1).unwrap();
        assert_eq!(schema_version(&conn, 3).unwrap(), None);
    }
}
