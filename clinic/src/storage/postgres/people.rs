//! Clinics, clinicians and the dashboard's sign-in sessions on PostgreSQL:
//! the clinician tokens and password logins, and sessions looked up by the
//! hash of their id. The SQLite twin is `sqlite/people.rs`.

use chrono::{DateTime, Utc};

use super::super::{Clinic, Clinician, ClinicianLogin, SecretHash, StorageError, WebSession};
use super::rows::{clinician_row, ms, time};

use super::PgStorage;

/// [`ClinicStorage::insert_clinic`](crate::storage::ClinicStorage::insert_clinic) on PostgreSQL.
pub(super) fn insert_clinic(storage: &PgStorage, clinic: &Clinic, at: DateTime<Utc>) -> Result<(), StorageError> {
    storage
        .execute(
            "INSERT INTO clinics (id, name, pack_public_key, created_at) VALUES ($1, $2, $3, $4)",
            &[&clinic.id, &clinic.name, &clinic.pack_public_key.as_slice(), &ms(at)],
        )
        .map(|_| ())
}

/// [`ClinicStorage::clinic`](crate::storage::ClinicStorage::clinic) on PostgreSQL.
pub(super) fn clinic(storage: &PgStorage, id: &str) -> Result<Option<Clinic>, StorageError> {
    storage
        .query_opt("SELECT id, name, pack_public_key FROM clinics WHERE id = $1", &[&id])?
        .map(|row| {
            let key: Vec<u8> = row.get(2);
            let pack_public_key = <[u8; 32]>::try_from(key.as_slice())
                .map_err(|_| StorageError::Corrupt("the public key is not 32 bytes"))?;
            Ok(Clinic { id: row.get(0), name: row.get(1), pack_public_key })
        })
        .transpose()
}

/// [`ClinicStorage::insert_clinician`](crate::storage::ClinicStorage::insert_clinician) on PostgreSQL.
pub(super) fn insert_clinician(
    storage: &PgStorage,
    clinician: &Clinician,
    token_hash: &SecretHash,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    storage
        .execute(
            "INSERT INTO clinicians (id, clinic_id, display_name, token_hash, revoked, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &clinician.id,
                &clinician.clinic_id,
                &clinician.display_name,
                &token_hash.as_slice(),
                &clinician.revoked,
                &ms(at),
            ],
        )
        .map(|_| ())
}

/// [`ClinicStorage::clinician_by_token`](crate::storage::ClinicStorage::clinician_by_token) on PostgreSQL.
pub(super) fn clinician_by_token(
    storage: &PgStorage,
    token_hash: &SecretHash,
) -> Result<Option<Clinician>, StorageError> {
    Ok(storage
        .query_opt(
            "SELECT id, clinic_id, display_name, revoked FROM clinicians WHERE token_hash = $1",
            &[&token_hash.as_slice()],
        )?
        .map(|row| clinician_row(&row)))
}

/// [`ClinicStorage::set_clinician_password`](crate::storage::ClinicStorage::set_clinician_password) on PostgreSQL.
pub(super) fn set_clinician_password(
    storage: &PgStorage,
    clinician_id: &str,
    login: &str,
    password_hash: &str,
) -> Result<bool, StorageError> {
    storage.block(async {
        let mut client = storage.client().await?;
        let tx = client.transaction().await?;
        let changed = tx
            .execute(
                "UPDATE clinicians SET login = $2, password_hash = $3 WHERE id = $1",
                &[&clinician_id, &login, &password_hash],
            )
            .await?;
        // A new password ends the sessions signed in with the old one.
        tx.execute("DELETE FROM web_sessions WHERE clinician_id = $1", &[&clinician_id]).await?;
        tx.commit().await?;
        Ok(changed == 1)
    })
}

/// [`ClinicStorage::clinician_by_login`](crate::storage::ClinicStorage::clinician_by_login) on PostgreSQL.
pub(super) fn clinician_by_login(storage: &PgStorage, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
    Ok(storage
        .query_opt(
            "SELECT id, clinic_id, display_name, revoked, password_hash FROM clinicians
             WHERE login = $1 AND password_hash IS NOT NULL",
            &[&login],
        )?
        .map(|row| ClinicianLogin { clinician: clinician_row(&row), password_hash: row.get(4) }))
}

/// [`ClinicStorage::insert_web_session`](crate::storage::ClinicStorage::insert_web_session) on PostgreSQL.
pub(super) fn insert_web_session(storage: &PgStorage, session: &WebSession) -> Result<(), StorageError> {
    storage.block(async {
        let mut client = storage.client().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM web_sessions WHERE expires_at <= $1", &[&ms(session.created_at)]).await?;
        tx.execute(
            "INSERT INTO web_sessions (id_hash, clinician_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &session.id_hash.as_slice(),
                &session.clinician_id,
                &session.csrf_token,
                &ms(session.created_at),
                &ms(session.last_seen_at),
                &ms(session.expires_at),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// [`ClinicStorage::web_session`](crate::storage::ClinicStorage::web_session) on PostgreSQL.
pub(super) fn web_session(
    storage: &PgStorage,
    id_hash: &SecretHash,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<Option<(WebSession, Clinician)>, StorageError> {
    let Some(row) = storage.query_opt(
        "SELECT s.clinician_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                c.clinic_id, c.display_name, c.revoked
         FROM web_sessions s JOIN clinicians c ON c.id = s.clinician_id
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND NOT c.revoked",
        &[&id_hash.as_slice(), &ms(now), &ms(now - idle)],
    )?
    else {
        return Ok(None);
    };
    let session = WebSession {
        id_hash: *id_hash,
        clinician_id: row.get(0),
        csrf_token: row.get(1),
        created_at: time(row.get(2))?,
        last_seen_at: time(row.get(3))?,
        expires_at: time(row.get(4))?,
    };
    let clinician = Clinician {
        id: session.clinician_id.clone(),
        clinic_id: row.get(5),
        display_name: row.get(6),
        revoked: row.get(7),
    };
    if now - session.last_seen_at >= chrono::Duration::minutes(1) {
        storage.execute(
            "UPDATE web_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1",
            &[&id_hash.as_slice(), &ms(now)],
        )?;
    }
    Ok(Some((session, clinician)))
}

/// [`ClinicStorage::delete_web_session`](crate::storage::ClinicStorage::delete_web_session) on PostgreSQL.
pub(super) fn delete_web_session(storage: &PgStorage, id_hash: &SecretHash) -> Result<(), StorageError> {
    storage.execute("DELETE FROM web_sessions WHERE id_hash = $1", &[&id_hash.as_slice()]).map(|_| ())
}
