//! `POST /v1/sync`: the device exchange of `docs/sync-protocol.md`.
//!
//! The body is the binary [`SyncRequest`]; the answer the binary
//! [`SyncResponse`] with `Content-Type: application/vnd.katcore.sync.v1`.
//! Every request, whatever its outcome, is counted in the metrics.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use katcore::sync::wire::{SyncRequest, CONTENT_TYPE};
use katcore::sync::PACK_ETAG_HEADER;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::DeviceAuth;
use crate::error::ApiError;
use crate::extract::bytes_rejection;
use crate::state::AppState;

/// Largest sync body accepted.
pub const MAX_SYNC_BODY: usize = 16 * 1024 * 1024;

/// `POST /v1/sync`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", post(sync)).layer(DefaultBodyLimit::max(MAX_SYNC_BODY))
}

/// A binary sync body (wire format v1, see `docs/sync-protocol.md`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Never built: it only describes the bytes in the OpenAPI document.
pub(crate) struct SyncBody(Vec<u8>);

/// Exchanges changes with a device.
#[utoipa::path(
    post,
    path = "/v1/sync",
    tag = "device",
    security(("device_token" = [])),
    request_body(
        content = inline(SyncBody),
        content_type = "application/vnd.katcore.sync.v1",
        description = "version:u8 = 1 | since_count:u16be | since × hash[32] | heads_count:u16be | heads × hash[32] \
                       | Automerge changes (the rest). See docs/sync-protocol.md."
    ),
    responses(
        (status = 200, description = "version:u8 = 1 | heads_count:u16be | heads × hash[32] | changes the device lacks",
         body = inline(SyncBody), content_type = "application/vnd.katcore.sync.v1"),
        (status = 400, description = "Malformed body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing, malformed or unknown token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a device token", body = crate::error::ErrorBody),
        (status = 409, description = "`history_missing`: resend with empty `since` and the whole document",
         body = crate::error::ErrorBody),
        (status = 410, description = "The device was revoked", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 16 MiB", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn sync(
    State(state): State<AppState>,
    auth: Result<DeviceAuth, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let received = body.as_ref().map_or(0, Bytes::len);
    let outcome = match (auth, body) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(rejection)) => Err(bytes_rejection(&rejection, MAX_SYNC_BODY)),
        (Ok(device), Ok(body)) => exchange(&state, device, &headers, body).await,
    };
    let (response, sent) = match outcome {
        Ok((body, pack_etag)) => {
            let sent = body.len();
            let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response();
            if let Some(etag) = pack_etag.and_then(|etag| HeaderValue::from_str(&etag).ok()) {
                response.headers_mut().insert(PACK_ETAG_HEADER, etag);
            }
            (response, sent)
        }
        Err(e) => (e.into_response(), 0),
    };
    let elapsed = started.elapsed();
    state.metrics().observe_sync(response.status(), received, sent, elapsed);
    tracing::info!(status = response.status().as_u16(), received, sent, millis = elapsed.as_millis() as u64, "sync");
    response
}

/// Runs one exchange; returns the response body and the ETag of the
/// clinic's current pack, which the response advertises (`Katcore-Pack-ETag`)
/// so devices fetch the pack only when it changed.
async fn exchange(
    state: &AppState,
    device: DeviceAuth,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        if content_type.to_str().map_or(true, |value| !value.trim().starts_with(CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("the body must be `{CONTENT_TYPE}`"),
            ));
        }
    }
    let request = SyncRequest::decode(&body).map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    drop(body);
    check_chunks(&request.changes).map_err(|reason| ApiError::bad_request("malformed_request", reason))?;
    let DeviceAuth { device_id, client_id } = device;
    let replica_client_id = client_id.clone();
    let (response, pack_etag) = state
        .with_replica(&client_id, move |replica, storage| {
            let response = replica.sync(storage, &request, &device_id)?;
            let pack_etag = storage.current_pack_etag_for_client(&replica_client_id)?;
            Ok((response, pack_etag))
        })
        .await?;
    Ok((response.encode(), pack_etag))
}

/// The magic bytes that start every Automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The chunk type of a deflate-compressed change, whose checksum covers the
/// uncompressed change (checked by Automerge when it inflates it).
const COMPRESSED_CHUNK: u8 = 2;

/// Checks that `changes` is a sequence of well-framed Automerge chunks
/// (magic, known type, length within the body, checksum), because Automerge
/// silently skips a chunk it cannot parse after the first, which would turn
/// a corrupted upload into a `200`.
fn check_chunks(mut changes: &[u8]) -> Result<(), &'static str> {
    const MALFORMED: &str = "the changes are not well-formed Automerge chunks";
    while !changes.is_empty() {
        let (magic, rest) = changes.split_at_checked(4).ok_or(MALFORMED)?;
        let (checksum, rest) = rest.split_at_checked(4).ok_or(MALFORMED)?;
        let (&chunk_type, rest) = rest.split_first().ok_or(MALFORMED)?;
        if magic != CHUNK_MAGIC || chunk_type > 3 {
            return Err(MALFORMED);
        }
        let (length, length_bytes) = read_uleb128(rest).ok_or(MALFORMED)?;
        let rest = &rest[length_bytes..];
        let length = usize::try_from(length).map_err(|_| MALFORMED)?;
        let (data, rest) = rest.split_at_checked(length).ok_or(MALFORMED)?;
        if chunk_type != COMPRESSED_CHUNK {
            let mut hasher = Sha256::new();
            hasher.update([chunk_type]);
            hasher.update(&changes[9..9 + length_bytes]);
            hasher.update(data);
            if hasher.finalize()[..4] != *checksum {
                return Err("a chunk of the changes fails its checksum");
            }
        }
        changes = rest;
    }
    Ok(())
}

/// An unsigned LEB128 number and how many bytes it took.
fn read_uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        let bits = u64::from(byte & 0x7f);
        value |= bits.checked_shl(7 * i as u32).filter(|shifted| shifted >> (7 * i as u32) == bits)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use katcore::record::{CareRecord, CheckInInput};

    #[test]
    fn real_changes_pass_and_damage_is_caught() {
        let mut record = CareRecord::default();
        record.add_check_in(CheckInInput::Mood(4), chrono::Utc::now()).unwrap();
        let start = record.heads();
        record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
        let whole = record.save();
        let incremental = record.save_after(&start);
        let both = [whole.clone(), incremental.clone()].concat();
        for good in [&whole[..], &incremental[..], &both[..], &[][..]] {
            assert_eq!(check_chunks(good), Ok(()));
        }
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(check_chunks(&flipped).is_err());
        assert!(check_chunks(&whole[..whole.len() - 1]).is_err());
        assert!(check_chunks(&[whole.clone(), b"garbage".to_vec()].concat()).is_err());
        assert!(check_chunks(b"\x85\x6f\x4a\x83garbage").is_err());
    }

    #[test]
    fn leb128() {
        assert_eq!(read_uleb128(&[0x00]), Some((0, 1)));
        assert_eq!(read_uleb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_uleb128(&[0x80]), None);
        assert_eq!(read_uleb128(&[0xff; 11]), None);
    }
}
