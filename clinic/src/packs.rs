//! Content packs: the clinic signs a pack offline with its private key
//! (`katctl pack sign`), a clinician publishes the signed pack, the server
//! verifies it against the clinic's public key and serves it; devices fetch
//! it with `ETag` / `If-None-Match`. The server never holds a private key,
//! so a copy of its database cannot sign packs.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use katcore::pack::{verify_pack, PackError, SignedPack, TrustedKeys};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{ClinicianAuth, DeviceAuth};
use crate::error::{ApiError, ErrorBody};
use crate::extract::bytes_rejection;
use crate::state::AppState;
use crate::storage::{PublishOutcome, StoredPack};

/// Largest pack accepted.
pub const MAX_PACK_BODY: usize = 4 * 1024 * 1024;

/// `GET /v1/pack` (device) and `PUT /v1/pack` (clinician).
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/pack", get(current_pack).put(publish_pack)).layer(DefaultBodyLimit::max(MAX_PACK_BODY))
}

/// What publishing a pack answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PackPublished {
    /// The pack's id.
    pub pack_id: String,
    /// Its version.
    pub version: u32,
    /// Id of the clinic key that signed it.
    pub key_id: String,
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |candidate| {
            let candidate = candidate.trim();
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        },
    )
}

/// The clinic's current signed pack.
#[utoipa::path(
    get, path = "/v1/pack", tag = "device", security(("device_token" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "The ETag of the pack the device has")),
    responses(
        (status = 200, description = "The signed pack envelope (`katcore.signed-pack/1`), with an ETag",
         body = Object, headers(("ETag" = String, description = "Entity tag of this pack"))),
        (status = 304, description = "The device's pack is current"),
        (status = 401, description = "Missing, malformed or unknown token", body = ErrorBody),
        (status = 404, description = "The clinic publishes no pack: keep the built-in default", body = ErrorBody),
        (status = 410, description = "The device was revoked", body = ErrorBody),
    )
)]
pub(crate) async fn current_pack(
    State(state): State<AppState>,
    device: DeviceAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pack = state
        .db(move |s| match s.client(&device.client_id)? {
            Some(client) => {
                let pack = s.current_pack(&client.clinic_id)?;
                if let Some(pack) = &pack {
                    // Served now, or confirmed current by its ETag below:
                    // either way the device has this version.
                    s.record_device_pack(&device.device_id, pack.version)?;
                }
                Ok(pack)
            }
            None => Ok(None),
        })
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no_pack", "the clinic publishes no pack"))?;
    let etag = HeaderValue::from_str(&pack.etag).map_err(ApiError::internal)?;
    let cache = [(header::ETAG, etag), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    if etag_matches(&headers, &pack.etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((StatusCode::OK, cache, [content_type], pack.signed_json).into_response())
}

/// Verifies a signed pack against the clinic's public key and makes it current.
#[utoipa::path(
    put, path = "/v1/pack", tag = "clinician", security(("clinician_token" = [])),
    request_body(content = Object, description = "A signed pack envelope (`katcore.signed-pack/1`, from \
                 `katctl pack sign`; see docs/pack-format.md)"),
    responses(
        (status = 201, description = "Verified and published", body = PackPublished),
        (status = 400, description = "`unsigned_pack`: a bare pack; `bad_signature`: not signed by the clinic's key, \
                       or altered; `invalid_pack`: malformed or breaks a rule", body = ErrorBody),
        (status = 409, description = "`version_not_newer`: the current pack's version is not lower", body = ErrorBody),
        (status = 413, description = "Over 4 MiB", body = ErrorBody),
    )
)]
pub(crate) async fn publish_pack(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PackPublished>), ApiError> {
    let body = body.map_err(|rejection| bytes_rejection(&rejection, MAX_PACK_BODY))?;
    Ok((StatusCode::CREATED, Json(publish(&state, &clinician, &body).await?)))
}

/// Verifies a signed pack envelope against the clinician's clinic's public
/// key and makes it the clinic's current pack.
pub(crate) async fn publish(
    state: &AppState,
    clinician: &ClinicianAuth,
    body: &[u8],
) -> Result<PackPublished, ApiError> {
    let clinic_id = clinician.clinic_id.clone();
    let id = clinic_id.clone();
    let clinic = state.db(move |s| s.clinic(&id)).await?.ok_or_else(|| ApiError::internal("the clinic is missing"))?;
    let public = VerifyingKey::from_bytes(&clinic.pack_public_key)
        .map_err(|_| ApiError::internal("the clinic's public key is not a valid Ed25519 key"))?;
    let pack = verify_pack(body, &TrustedKeys::new([public])).map_err(|e| match e {
        PackError::Unsigned => ApiError::bad_request(
            "unsigned_pack",
            "the pack is not signed: sign it offline with the clinic's key (`katctl pack sign`)",
        ),
        PackError::UntrustedKey { .. } | PackError::BadSignature => {
            ApiError::bad_request("bad_signature", e.to_string())
        }
        other => ApiError::bad_request("invalid_pack", other.to_string()),
    })?;
    // What a new pack must meet beyond what devices check (see `Pack::check_authoring`).
    pack.check_authoring().map_err(|e| ApiError::bad_request("invalid_pack", e.to_string()))?;
    let signed: SignedPack =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_pack", e.to_string()))?;
    let signed_json = serde_json::to_string(&signed).map_err(ApiError::internal)?;
    let digest = Sha256::digest(signed_json.as_bytes());
    let etag = format!("\"{}\"", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>());
    let stored = StoredPack { pack_id: pack.id.clone(), version: pack.version, signed_json, etag };
    match state.db(move |s| s.publish_pack(&clinic_id, &stored, Utc::now())).await? {
        PublishOutcome::Published => {
            tracing::info!(pack_id = %pack.id, version = pack.version, "pack published");
            Ok(PackPublished { pack_id: pack.id, version: pack.version, key_id: signed.key_id })
        }
        PublishOutcome::NotNewer { current } => Err(ApiError::conflict(
            "version_not_newer",
            format!("the current pack has version {current}; publish a higher version"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_wildcards() {
        let mut headers = HeaderMap::new();
        assert!(!etag_matches(&headers, "\"abc\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(etag_matches(&headers, "\"abc\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(etag_matches(&headers, "\"abc\""));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!etag_matches(&headers, "\"abc\""));
    }
}
