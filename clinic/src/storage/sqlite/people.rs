//! Clinics, clinicians and the dashboard's sign-in sessions on SQLite: the
//! clinician tokens and password logins, and sessions looked up by the hash
//! of their id. The PostgreSQL twin is `postgres/people.rs`.

use chrono::{DateTime, Utc};

use super::super::{Clinic, Clinician, ClinicianLogin, SecretHash, StorageError, WebSession};
use super::{clinic_row, ms, time, SqliteStorage};
use rusqlite::{params, OptionalExtension};

/// [`ClinicStorage::insert_clinic`](crate::storage::ClinicStorage::insert_clinic) on SQLite.
pub(super) fn insert_clinic(storage: &SqliteStorage, clinic: &Clinic, at: DateTime<Utc>) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute(
            "INSERT INTO clinics (id, name, pack_public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![clinic.id, clinic.name, clinic.pack_public_key.as_slice(), ms(at)],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::clinic`](crate::storage::ClinicStorage::clinic) on SQLite.
pub(super) fn clinic(storage: &SqliteStorage, id: &str) -> Result<Option<Clinic>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached("SELECT id, name, pack_public_key FROM clinics WHERE id = ?1")?
            .query_row([id], clinic_row)
            .optional()?)
    })
}

/// [`ClinicStorage::insert_clinician`](crate::storage::ClinicStorage::insert_clinician) on SQLite.
pub(super) fn insert_clinician(
    storage: &SqliteStorage,
    clinician: &Clinician,
    token_hash: &SecretHash,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute(
            "INSERT INTO clinicians (id, clinic_id, display_name, token_hash, revoked, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                clinician.id,
                clinician.clinic_id,
                clinician.display_name,
                token_hash.as_slice(),
                clinician.revoked,
                ms(at)
            ],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::clinician_by_token`](crate::storage::ClinicStorage::clinician_by_token) on SQLite.
pub(super) fn clinician_by_token(
    storage: &SqliteStorage,
    token_hash: &SecretHash,
) -> Result<Option<Clinician>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached("SELECT id, clinic_id, display_name, revoked FROM clinicians WHERE token_hash = ?1")?
            .query_row([token_hash.as_slice()], |row| {
                Ok(Clinician {
                    id: row.get(0)?,
                    clinic_id: row.get(1)?,
                    display_name: row.get(2)?,
                    revoked: row.get(3)?,
                })
            })
            .optional()?)
    })
}

/// [`ClinicStorage::set_clinician_password`](crate::storage::ClinicStorage::set_clinician_password) on SQLite.
pub(super) fn set_clinician_password(
    storage: &SqliteStorage,
    clinician_id: &str,
    login: &str,
    password_hash: &str,
) -> Result<bool, StorageError> {
    storage.write(|tx| {
        let changed = tx.execute(
            "UPDATE clinicians SET login = ?2, password_hash = ?3 WHERE id = ?1",
            params![clinician_id, login, password_hash],
        )?;
        // A new password ends the sessions signed in with the old one.
        tx.execute("DELETE FROM web_sessions WHERE clinician_id = ?1", [clinician_id])?;
        Ok(changed == 1)
    })
}

/// [`ClinicStorage::clinician_by_login`](crate::storage::ClinicStorage::clinician_by_login) on SQLite.
pub(super) fn clinician_by_login(storage: &SqliteStorage, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
    storage.read(|tx| {
        Ok(tx
            .prepare_cached(
                "SELECT id, clinic_id, display_name, revoked, password_hash FROM clinicians
                 WHERE login = ?1 AND password_hash IS NOT NULL",
            )?
            .query_row([login], |row| {
                Ok(ClinicianLogin {
                    clinician: Clinician {
                        id: row.get(0)?,
                        clinic_id: row.get(1)?,
                        display_name: row.get(2)?,
                        revoked: row.get(3)?,
                    },
                    password_hash: row.get(4)?,
                })
            })
            .optional()?)
    })
}

/// [`ClinicStorage::insert_web_session`](crate::storage::ClinicStorage::insert_web_session) on SQLite.
pub(super) fn insert_web_session(storage: &SqliteStorage, session: &WebSession) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [ms(session.created_at)])?;
        tx.execute(
            "INSERT INTO web_sessions (id_hash, clinician_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session.id_hash.as_slice(),
                session.clinician_id,
                session.csrf_token,
                ms(session.created_at),
                ms(session.last_seen_at),
                ms(session.expires_at)
            ],
        )?;
        Ok(())
    })
}

/// [`ClinicStorage::web_session`](crate::storage::ClinicStorage::web_session) on SQLite.
pub(super) fn web_session(
    storage: &SqliteStorage,
    id_hash: &SecretHash,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<Option<(WebSession, Clinician)>, StorageError> {
    let found = storage.read(|tx| {
        Ok(tx
            .prepare_cached(
                "SELECT s.clinician_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                        c.clinic_id, c.display_name, c.revoked
                 FROM web_sessions s JOIN clinicians c ON c.id = s.clinician_id
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.last_seen_at > ?3 AND c.revoked = 0",
            )?
            .query_row(params![id_hash.as_slice(), ms(now), ms(now - idle)], |row| {
                let session = WebSession {
                    id_hash: *id_hash,
                    clinician_id: row.get(0)?,
                    csrf_token: row.get(1)?,
                    created_at: time(row, 2)?,
                    last_seen_at: time(row, 3)?,
                    expires_at: time(row, 4)?,
                };
                let clinician = Clinician {
                    id: session.clinician_id.clone(),
                    clinic_id: row.get(5)?,
                    display_name: row.get(6)?,
                    revoked: row.get(7)?,
                };
                Ok((session, clinician))
            })
            .optional()?)
    })?;
    if let Some((session, _)) = &found {
        if now - session.last_seen_at >= chrono::Duration::minutes(1) {
            storage.write(|tx| {
                tx.execute(
                    "UPDATE web_sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                    params![id_hash.as_slice(), ms(now)],
                )?;
                Ok(())
            })?;
        }
    }
    Ok(found)
}

/// [`ClinicStorage::delete_web_session`](crate::storage::ClinicStorage::delete_web_session) on SQLite.
pub(super) fn delete_web_session(storage: &SqliteStorage, id_hash: &SecretHash) -> Result<(), StorageError> {
    storage.write(|tx| {
        tx.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash.as_slice()])?;
        Ok(())
    })
}
