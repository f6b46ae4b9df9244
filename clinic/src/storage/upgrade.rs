//! `katctl clinic upgrade`: brings a clinic database of schema version 1 or
//! 2 to version 3, in which nothing readable is kept at rest.
//!
//! In one transaction it:
//! 1. adds version 2's `record_actors` table (from version 1);
//! 2. writes each clinic's private pack-signing key to
//!    `DIR/<clinic id>.pack-signing-key.pem` (PKCS#8, mode 0600, never
//!    overwriting a file) and keeps only the public key in `clinics`;
//! 3. seals every record snapshot and change under the record key.
//!
//! It then rewrites the file (`VACUUM`, with `secure_delete`) and truncates
//! the WAL, so that neither the keys nor the clear record bytes stay in
//! free pages. Take the key files offline: whoever holds one can sign packs
//! every device of that clinic accepts.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use katcore::pack::key_id;
use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;

use super::schema::{self, clinics_table, VERSION};
use super::sealing::{rewrite_record_blobs, RecordKey, Sealer};
use super::StorageError;

/// What [`upgrade`] did.
#[derive(Debug, Serialize)]
pub struct UpgradeReport {
    /// The schema version found.
    pub from: u32,
    /// The schema version now.
    pub to: u32,
    /// Each clinic's exported signing key: clinic id, key file, key id.
    pub signing_keys: Vec<ExportedKey>,
    /// Record blobs sealed.
    pub records_sealed: u64,
}

/// One clinic's private key, written out by [`upgrade`].
#[derive(Debug, Serialize)]
pub struct ExportedKey {
    /// The clinic.
    pub clinic_id: String,
    /// The PKCS#8 PEM file holding its private key.
    pub file: PathBuf,
    /// The key's id, as packs and devices name it.
    pub key_id: String,
}

/// Upgrades the database at `db`; see the module documentation. A database
/// already at the current version is left as it is.
///
/// # Errors
/// [`StorageError::TooNew`], [`StorageError::Corrupt`] for a file that is
/// not a clinic database, [`StorageError::RecordKey`] when a key file cannot
/// be written; nothing is changed in the database then.
pub fn upgrade(db: &Path, key: &RecordKey, signing_keys_out: &Path) -> Result<UpgradeReport, StorageError> {
    if !db.exists() {
        return Err(StorageError::Database(format!("{}: no such database", db.display())));
    }
    let mut conn = Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let from = schema::user_version(&conn)?;
    let mut report = UpgradeReport { from, to: VERSION, signing_keys: Vec::new(), records_sealed: 0 };
    match from {
        VERSION => return Ok(report),
        0 => return Err(StorageError::Corrupt("the database is not a katcore clinic database")),
        found if found > VERSION => return Err(StorageError::TooNew { found, supported: VERSION }),
        // Versions 3 and 4 are sealed already; what later versions add, the
        // server adds itself.
        3 | 4 => {
            schema::migrate(&mut conn)?;
            return Ok(report);
        }
        _ => {}
    }
    // Rebuilding `clinics` needs foreign keys off, which SQLite allows only
    // outside a transaction; `foreign_key_check` below stands in for them.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = OFF; PRAGMA secure_delete = ON;")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if from == 1 {
        tx.execute_batch(schema::V2_ACTORS_SQL)?;
    }
    let clinics: Vec<(String, String, Vec<u8>, i64)> = {
        let mut stmt = tx.prepare("SELECT id, name, signing_key, created_at FROM clinics ORDER BY id")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    tx.execute_batch(&clinics_table!().replace("CREATE TABLE clinics (", "CREATE TABLE clinics_v3 ("))?;
    for (id, name, seed, created_at) in &clinics {
        let seed = <[u8; 32]>::try_from(seed.as_slice())
            .map_err(|_| StorageError::Corrupt("a clinic's signing key is not 32 bytes"))?;
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key();
        let file = signing_keys_out.join(format!("{id}.pack-signing-key.pem"));
        write_private_key(&file, &signing)?;
        report.signing_keys.push(ExportedKey { clinic_id: id.clone(), file, key_id: key_id(&public) });
        tx.execute(
            "INSERT INTO clinics_v3 (id, name, pack_public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, public.as_bytes().as_slice(), created_at],
        )?;
    }
    tx.execute_batch("DROP TABLE clinics; ALTER TABLE clinics_v3 RENAME TO clinics;")?;
    let sealer = Sealer::new(key, &[]);
    report.records_sealed =
        rewrite_record_blobs(&tx, |table, client_id, row, plain| sealer.seal(table, client_id, row, plain).map(Some))?;
    let dangling: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| row.get(0))?;
    if dangling != 0 {
        return Err(StorageError::Corrupt("the upgrade would leave rows without their parents"));
    }
    tx.execute_batch(schema::V4_SIGN_IN_SQL)?;
    tx.execute_batch(schema::V5_RECEIPTS_SQL)?;
    tx.execute_batch(schema::V6_ALERT_ACTIONS_SQL)?;
    katcore::sqlite::set_schema_version(&tx, VERSION)?;
    tx.commit()?;
    conn.execute_batch("PRAGMA foreign_keys = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(report)
}

/// Writes `key` as PKCS#8 PEM to a new file readable only by its owner. A
/// file already holding this very key (an earlier attempt that failed after
/// writing it) is kept; any other existing file is an error.
fn write_private_key(path: &Path, key: &SigningKey) -> Result<(), StorageError> {
    use std::io::Write as _;
    let problem = |e: &dyn std::fmt::Display| StorageError::Database(format!("{}: {e}", path.display()));
    if let Ok(existing) = std::fs::read_to_string(path) {
        return match katcore::pack::parse_signing_key(&existing) {
            Ok(found) if found.to_bytes() == key.to_bytes() => Ok(()),
            _ => Err(problem(&"the file exists and holds another key; move it away first")),
        };
    }
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| problem(&e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| problem(&e))?;
    file.write_all(pem.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| problem(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::tests::{old_schema, schema_of};
    use crate::storage::{ClinicStorage, SqliteStorage};

    /// `key` written to a file in `dir`, as an operator keeps it.
    fn write_key(dir: &Path, key: &RecordKey) -> PathBuf {
        let path = dir.join(format!("{}.key", key.id()));
        let _ = std::fs::remove_file(&path);
        key.write_new(&path).unwrap();
        path
    }

    #[test]
    fn a_version_2_database_is_sealed_and_loses_its_private_keys() {
        let dir = std::env::temp_dir().join(format!("katcore-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("clinic.db");
        let seed = [7u8; 32];
        let change = b"journal: the drive home felt long".to_vec();
        {
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch(&old_schema(2)).unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute("INSERT INTO clinics VALUES ('c1', 'Riverside', ?1, 0)", [seed.as_slice()]).unwrap();
            conn.execute("INSERT INTO clients (id, clinic_id, label, created_at) VALUES ('k1', 'c1', 'A', 0)", [])
                .unwrap();
            conn.execute("INSERT INTO record_changes VALUES ('k1', 1, ?1)", [&change]).unwrap();
        }
        // The server refuses it until it is upgraded.
        let key = RecordKey::generate();
        let refused = SqliteStorage::open_sealed(&db, &key, &[]).unwrap_err();
        assert!(matches!(refused, StorageError::UpgradeRequired { found: 2 }));

        let report = upgrade(&db, &key, &dir).unwrap();
        assert_eq!((report.from, report.to, report.records_sealed), (2, VERSION, 1));
        let exported = std::fs::read_to_string(&report.signing_keys[0].file).unwrap();
        let signing = katcore::pack::parse_signing_key(&exported).unwrap();
        assert_eq!(signing.to_bytes(), seed);

        let storage = SqliteStorage::open_sealed(&db, &key, &[]).unwrap();
        let clinic = storage.clinic("c1").unwrap().unwrap();
        assert_eq!(clinic.pack_public_key, signing.verifying_key().to_bytes());
        assert_eq!(storage.load_record("k1").unwrap().changes, vec![(1, change.clone())]);
        let mut fresh = Connection::open_in_memory().unwrap();
        schema::migrate(&mut fresh).unwrap();
        assert_eq!(schema_of(&Connection::open(&db).unwrap()), schema_of(&fresh));
        drop(storage);
        // Neither the private key nor the clear record is left in the files.
        for file in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            if file.to_string_lossy().contains("clinic.db") {
                let bytes = std::fs::read(&file).unwrap();
                assert!(!bytes.windows(change.len()).any(|w| w == change.as_slice()), "{}", file.display());
                assert!(!bytes.windows(32).any(|w| w == seed), "{}", file.display());
            }
        }
        // A key rotation: the new key reads old blobs only when given the
        // old one, reseals them, and then needs it no more.
        let new_key = RecordKey::generate();
        let storage = SqliteStorage::open_sealed(&db, &new_key, &[]).unwrap();
        assert!(matches!(storage.load_record("k1"), Err(StorageError::RecordKey(_))));
        drop(storage);
        let old_key = RecordKey::from_file(&write_key(&dir, &key)).unwrap();
        let rotating = SqliteStorage::open_sealed(&db, &new_key, &[old_key]).unwrap();
        assert_eq!(rotating.load_record("k1").unwrap().changes, vec![(1, change.clone())]);
        assert_eq!(rotating.reseal_records().unwrap(), 1);
        assert_eq!(rotating.reseal_records().unwrap(), 0, "nothing left under the old key");
        drop(rotating);
        let storage = SqliteStorage::open_sealed(&db, &new_key, &[]).unwrap();
        assert_eq!(storage.load_record("k1").unwrap().changes, vec![(1, change.clone())]);
        drop(storage);
        let key = new_key;
        // Upgrading again changes nothing.
        assert_eq!(upgrade(&db, &key, &dir).unwrap().records_sealed, 0);
        // A key file left by an earlier attempt is kept when it holds the same key.
        assert!(write_private_key(&report.signing_keys[0].file, &signing).is_ok());
        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(write_private_key(&report.signing_keys[0].file, &other).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
