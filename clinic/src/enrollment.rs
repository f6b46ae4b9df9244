//! Enrollment: codes a clinician hands out, redeemed once by a device.
//!
//! A code is 12 characters of Crockford base32 (60 random bits), shown as
//! `XXXX-XXXX-XXXX`, stored only as the SHA-256 of its 12 characters, valid
//! for [`CODE_VALIDITY`] and redeemable once (the redemption is one atomic
//! update). Input is read leniently, as Crockford intends: case, hyphens and
//! spaces do not matter, `O` reads as `0` and `I`/`L` as `1`. An unknown,
//! used or expired code gets the same `400 invalid_code`, and counts as a
//! failed attempt for the peer's rate limit.

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{client_ip, hash_secret, new_token, ClinicianAuth, TokenKind};
use crate::clinician::client_of_clinic;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{check_name, ApiJson, ApiPath};
use crate::state::AppState;
use crate::storage::NewDevice;

/// How long an enrollment code stays valid.
pub const CODE_VALIDITY: Duration = Duration::hours(72);
/// Longest device label, in characters.
pub(crate) const MAX_DEVICE_LABEL: usize = 100;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARS: usize = 12;

/// `POST /v1/enroll` and `POST /v1/clients/{client_id}/enrollment-codes`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/clients/{client_id}/enrollment-codes", post(create_code))
        .layer(DefaultBodyLimit::max(16 * 1024))
}

/// A new random code, formatted `XXXX-XXXX-XXXX`.
fn new_code() -> String {
    let mut bytes = [0u8; CODE_CHARS];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes.iter().map(|b| char::from(CROCKFORD[usize::from(b & 31)])).collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// The 12 canonical characters of a code as typed, or `None`.
fn normalize_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_CHARS);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && CROCKFORD.contains(&(c as u8)) => c,
            _ => return None,
        };
        if out.len() == CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

pub use katcore::sync::wire::{EnrollRequest, EnrollResponse};

/// A new enrollment code.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentCode {
    /// The code, `XXXX-XXXX-XXXX`; shown only now.
    pub code: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

/// The client's address, for the rate limit (see [`client_ip`]).
pub(crate) struct Peer(std::net::IpAddr);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Peer(client_ip(parts, state.trusted_proxies())))
    }
}

/// Redeems an enrollment code for a new device.
#[utoipa::path(
    post,
    path = "/v1/enroll",
    tag = "device",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "Enrolled; the token is shown only now", body = EnrollResponse),
        (status = 400, description = "`invalid_code` (unknown, used or expired) or invalid input", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
    )
)]
pub(crate) async fn enroll(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    state.limiter().check(peer)?;
    let label = check_name("device_label", &request.device_label, MAX_DEVICE_LABEL)?;
    let invalid_code = || ApiError::bad_request("invalid_code", "the enrollment code is unknown, used or expired");
    let Some(code) = normalize_code(&request.code) else {
        state.failed_attempt(peer).await;
        return Err(invalid_code());
    };
    let device_token = new_token(TokenKind::Device);
    let device = NewDevice { id: katcore::record::new_id(), label, token_hash: hash_secret(&device_token) };
    let device_id = device.id.clone();
    let code_hash = hash_secret(&code);
    let enrolled = state
        .db(move |s| {
            let Some(client_id) = s.redeem_enrollment_code(&code_hash, &device, Utc::now())? else { return Ok(None) };
            let client = s.client(&client_id)?;
            let clinic = match &client {
                Some(client) => s.clinic(&client.clinic_id)?,
                None => None,
            };
            Ok(clinic.map(|clinic| (client_id, clinic)))
        })
        .await?;
    let Some((client_id, clinic)) = enrolled else {
        state.failed_attempt(peer).await;
        return Err(invalid_code());
    };
    tracing::info!(%client_id, %device_id, "device enrolled");
    Ok(Json(EnrollResponse {
        client_id,
        device_id,
        device_token,
        clinic_name: clinic.name,
        pack_public_key: BASE64.encode(clinic.pack_public_key),
    }))
}

/// Creates an enrollment code for a client.
#[utoipa::path(
    post,
    path = "/v1/clients/{client_id}/enrollment-codes",
    tag = "clinician",
    security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client")),
    responses(
        (status = 201, description = "The code; shown only now", body = EnrollmentCode),
        (status = 401, description = "Missing, malformed or unknown token", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn create_code(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
) -> Result<(StatusCode, Json<EnrollmentCode>), ApiError> {
    Ok((StatusCode::CREATED, Json(issue_code(&state, &clinician, &client_id).await?)))
}

/// A new enrollment code for a client of the clinician's clinic; only its
/// hash is stored.
pub(crate) async fn issue_code(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
) -> Result<EnrollmentCode, ApiError> {
    client_of_clinic(state, clinician, client_id).await?;
    let client_id = client_id.to_owned();
    let code = new_code();
    let code_hash = normalize_code(&code).map(|c| hash_secret(&c)).ok_or_else(|| ApiError::internal("bad code"))?;
    let now = Utc::now();
    let expires_at = now + CODE_VALIDITY;
    state.db(move |s| s.insert_enrollment_code(&code_hash, &client_id, now, expires_at)).await?;
    Ok(EnrollmentCode { code, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_formatted_and_read_back() {
        let code = new_code();
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        let canonical = normalize_code(&code).unwrap();
        assert_eq!(canonical, code.replace('-', ""));
        assert_eq!(normalize_code(&code.to_lowercase()), Some(canonical.clone()));
        assert_eq!(normalize_code(&canonical), Some(canonical));
    }

    #[test]
    fn crockford_lookalikes_and_bad_input() {
        assert_eq!(normalize_code("oil0-0000-000 0").as_deref(), Some("011000000000"));
        assert_eq!(normalize_code("ABCD-EFGH-JKM"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMNP"), None);
        assert_eq!(normalize_code("ABCD-EFGH-JKMU"), None);
        assert_eq!(normalize_code("ÅBCD-EFGH-JKMN"), None);
        assert_eq!(normalize_code(""), None);
    }
}
