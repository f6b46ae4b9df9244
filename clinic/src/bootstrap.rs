//! Creating a clinic and clinician accounts (`katctl clinic …`).
//!
//! These run against the database directly, with or without a running
//! server (SQLite's locking keeps them safe side by side). Each prints its
//! token once; only its hash is stored. [`set_password`] gives a clinician
//! a dashboard sign-in; only the password's Argon2id hash is stored.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use ed25519_dalek::{SigningKey, VerifyingKey};
use katcore::pack::key_id;
use katcore::record::new_id;
use serde::{Deserialize, Serialize};

use crate::auth::{hash_secret, new_token, TokenKind};
use crate::storage::{Clinic, ClinicStorage, Clinician, SqliteStorage, StorageError};

/// Longest clinic or clinician name, in characters.
pub(crate) const MAX_NAME: usize = 200;

/// Why bootstrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A name is empty, too long or has control characters.
    #[error("{0}: must be 1 to {MAX_NAME} characters without control characters")]
    InvalidName(&'static str),
    /// There is no clinic with that id.
    #[error("no clinic with id {0}")]
    UnknownClinic(String),
    /// There is no clinician with that id.
    #[error("no clinician with id {0}")]
    UnknownClinician(String),
    /// The login or password is not acceptable.
    #[error(transparent)]
    Password(#[from] crate::web::PasswordError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What `init_clinic` created. The token is not stored anywhere: keep it.
#[derive(Clone, Serialize, Deserialize)]
pub struct InitOutput {
    /// The new clinic's id.
    pub clinic_id: String,
    /// The first clinician's id.
    pub clinician_id: String,
    /// The first clinician's bearer token (`kc_…`).
    pub clinician_token: String,
    /// Base64 of the clinic's 32-byte Ed25519 pack-signing public key.
    pub pack_public_key: String,
    /// Id of that key, as in signed packs.
    pub key_id: String,
    /// The private half, when [`init_clinic`] generated the pair: sign packs
    /// with it offline (`katctl pack sign`) and keep it out of the server's
    /// reach. Never serialized, never stored.
    #[serde(skip)]
    pub pack_signing_key: Option<SigningKey>,
}

/// Shows no token.
impl std::fmt::Debug for InitOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutput").field("clinic_id", &self.clinic_id).field("key_id", &self.key_id).finish()
    }
}

/// A new clinician's credentials. The token is not stored anywhere: keep it.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClinicianCreated {
    /// The clinician's id.
    pub clinician_id: String,
    /// Their bearer token (`kc_…`).
    pub clinician_token: String,
}

/// Shows no token.
impl std::fmt::Debug for ClinicianCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicianCreated").field("clinician_id", &self.clinician_id).finish_non_exhaustive()
    }
}

fn check(field: &'static str, value: &str) -> Result<String, BootstrapError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(BootstrapError::InvalidName(field));
    }
    Ok(value.to_owned())
}

/// Creates the database at `db_path` if needed, a clinic with a fresh pack
/// signing key pair, and its first clinician. The database keeps only the
/// public key; the private one is returned in
/// [`InitOutput::pack_signing_key`] for the caller to keep offline.
///
/// # Errors
/// [`BootstrapError::InvalidName`] or a storage failure.
pub fn init_clinic(db_path: &Path, clinic_name: &str, clinician_name: &str) -> Result<InitOutput, BootstrapError> {
    init_clinic_with_new_key(&SqliteStorage::open(db_path)?, clinic_name, clinician_name)
}

/// [`init_clinic`] in an open storage (SQLite or PostgreSQL).
///
/// # Errors
/// [`BootstrapError::InvalidName`] or a storage failure.
pub fn init_clinic_with_new_key(
    storage: &dyn ClinicStorage,
    clinic_name: &str,
    clinician_name: &str,
) -> Result<InitOutput, BootstrapError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut output = init_clinic_in(storage, clinic_name, clinician_name, &key.verifying_key())?;
    output.pack_signing_key = Some(key);
    Ok(output)
}

/// Creates a clinic whose packs must be signed for `pack_public_key` (made
/// offline, e.g. with `katctl pack keygen`), and its first clinician, in an
/// open storage.
///
/// # Errors
/// [`BootstrapError::InvalidName`] or a storage failure.
pub fn init_clinic_in(
    storage: &dyn ClinicStorage,
    clinic_name: &str,
    clinician_name: &str,
    pack_public_key: &VerifyingKey,
) -> Result<InitOutput, BootstrapError> {
    let clinic_name = check("clinic name", clinic_name)?;
    let clinician_name = check("clinician name", clinician_name)?;
    let clinic = Clinic { id: new_id(), name: clinic_name, pack_public_key: pack_public_key.to_bytes() };
    storage.insert_clinic(&clinic, Utc::now())?;
    let created = add_clinician_in(storage, &clinic.id, &clinician_name)?;
    Ok(InitOutput {
        clinic_id: clinic.id,
        clinician_id: created.clinician_id,
        clinician_token: created.clinician_token,
        pack_public_key: BASE64.encode(pack_public_key.as_bytes()),
        key_id: key_id(pack_public_key),
        pack_signing_key: None,
    })
}

/// Adds a clinician to an existing clinic.
///
/// # Errors
/// [`BootstrapError::UnknownClinic`], [`BootstrapError::InvalidName`] or a
/// storage failure.
pub fn add_clinician(db_path: &Path, clinic_id: &str, name: &str) -> Result<ClinicianCreated, BootstrapError> {
    let storage = SqliteStorage::open(db_path)?;
    add_clinician_in(&storage, clinic_id, name)
}

/// [`add_clinician`] on an open storage.
///
/// # Errors
/// As [`add_clinician`].
pub fn add_clinician_in(
    storage: &dyn ClinicStorage,
    clinic_id: &str,
    name: &str,
) -> Result<ClinicianCreated, BootstrapError> {
    let display_name = check("clinician name", name)?;
    if storage.clinic(clinic_id)?.is_none() {
        return Err(BootstrapError::UnknownClinic(clinic_id.to_owned()));
    }
    let token = new_token(TokenKind::Clinician);
    let clinician = Clinician { id: new_id(), clinic_id: clinic_id.to_owned(), display_name, revoked: false };
    storage.insert_clinician(&clinician, &hash_secret(&token), Utc::now())?;
    Ok(ClinicianCreated { clinician_id: clinician.id, clinician_token: token })
}

/// Gives clinician `clinician_id` the dashboard sign-in `login` with
/// `password` (at least 12 characters), replacing an earlier one and
/// ending the sessions signed in with it. Returns the login as stored
/// (trimmed, lower case).
///
/// # Errors
/// [`BootstrapError::Password`] for an unacceptable login or password,
/// [`BootstrapError::UnknownClinician`], or a storage failure (e.g. another
/// clinician has this login).
pub fn set_password(
    storage: &dyn ClinicStorage,
    clinician_id: &str,
    login: &str,
    password: &str,
) -> Result<String, BootstrapError> {
    let login = crate::web::normalize_login(login)?;
    let hash = crate::web::hash_password(password)?;
    if !storage.set_clinician_password(clinician_id, &login, &hash)? {
        return Err(BootstrapError::UnknownClinician(clinician_id.to_owned()));
    }
    Ok(login)
}
