//! `POST /v1/sync`: the device exchange of `docs/sync-protocol.md`.
//!
//! The body is the binary [`SyncRequest`]; the answer the binary
//! [`SyncResponse`] with `Content-Type: application/vnd.katcore.sync.v1`.
//! Every request, whatever its outcome, is counted in the metrics.
//!
//! The token is checked before a byte of the body is read: a stranger's
//! body is never buffered. The body is then read within the server's body
//! timeout and shared byte budget ([`crate::Limits`]).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt as _;
use katcore::sync::wire::{SyncRequest, CONTENT_TYPE};
use katcore::sync::PACK_ETAG_HEADER;
use utoipa::ToSchema;

use crate::auth::DeviceAuth;
use crate::error::ApiError;
use crate::replica::SyncingDevice;
use crate::state::AppState;

/// Largest sync body accepted.
pub const MAX_SYNC_BODY: usize = 16 * 1024 * 1024;

/// `POST /v1/sync`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/sync", post(sync))
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
        (status = 422, description = "`write_refused`: the changes make a write this device may not make; \
                       `key` and `rule` name it (docs/record-format.md). Nothing of the request is stored",
         body = crate::error::ErrorBody),
        (status = 408, description = "The body did not arrive within the body timeout", body = crate::error::ErrorBody),
        (status = 413, description = "`too_large`: body over 16 MiB; `record_full`: the record would pass its \
                       stored-size limit (32 MiB by default)", body = crate::error::ErrorBody),
        (status = 503, description = "The server is reading too many bodies, or the database is busy; see Retry-After",
         body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn sync(
    State(state): State<AppState>,
    auth: Result<DeviceAuth, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let mut received = 0;
    let outcome = match auth {
        Err(e) => Err(e),
        Ok(device) => match read_body(&state, &device.device_id, &headers, body).await {
            Err(e) => Err(e),
            Ok((body, _budget)) => {
                received = body.len();
                let clock_offset_ms = crate::clock::device_offset(&headers, chrono::Utc::now());
                if let Some(offset) = clock_offset_ms {
                    state.metrics().observe_clock_offset(offset);
                }
                exchange(&state, device, clock_offset_ms, body).await
            }
        },
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
        Err(e) => {
            if let Some(rule) = e.refused_rule() {
                state.metrics().observe_refused_write(rule);
                tracing::warn!(rule, "sync refused: a write the device may not make");
            }
            (e.into_response(), 0)
        }
    };
    let elapsed = started.elapsed();
    state.metrics().observe_sync(response.status(), received, sent, elapsed);
    tracing::info!(status = response.status().as_u16(), received, sent, millis = elapsed.as_millis() as u64, "sync");
    response
}

/// Reads an authenticated device's body: the right media type, at most
/// [`MAX_SYNC_BODY`] bytes, within the body timeout, while the device has
/// no more than [`crate::limits::MAX_BODIES_PER_DEVICE`] bodies being read,
/// and only while the shared budget of buffered body bytes has room for
/// each chunk as it arrives (a slow body holds only what it sent). The
/// returned permit holds the body's share of the budget until dropped.
async fn read_body<'s>(
    state: &'s AppState,
    device_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Option<tokio::sync::SemaphorePermit<'s>>), ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        if content_type.to_str().map_or(true, |value| !value.trim().starts_with(CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("the body must be `{CONTENT_TYPE}`"),
            ));
        }
    }
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > MAX_SYNC_BODY) {
        return Err(ApiError::too_large(MAX_SYNC_BODY));
    }
    let _turn = state.body_turns().enter(device_id).ok_or_else(|| ApiError::busy(1))?;
    let read = async {
        let mut body = body;
        let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(64 * 1024));
        let mut held: Option<tokio::sync::SemaphorePermit<'s>> = None;
        let mut held_kib = 0u32;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| ApiError::bad_request("invalid_body", "the request body could not be read"))?;
            let Ok(data) = frame.into_data() else { continue };
            if bytes.len() + data.len() > MAX_SYNC_BODY {
                return Err(ApiError::too_large(MAX_SYNC_BODY));
            }
            let needed = u32::try_from((bytes.len() + data.len()).div_ceil(1024)).unwrap_or(u32::MAX);
            if needed > held_kib {
                let more = state.body_budget().try_acquire_many(needed - held_kib).map_err(|_| ApiError::busy(1))?;
                match &mut held {
                    Some(permit) => permit.merge(more),
                    None => held = Some(more),
                }
                held_kib = needed;
            }
            bytes.extend_from_slice(&data);
        }
        Ok((Bytes::from(bytes), held))
    };
    match tokio::time::timeout(state.limits().body_read_timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the body did not arrive within {} s", state.limits().body_read_timeout.as_secs()),
        )),
        Ok(result) => result,
    }
}

/// Runs one exchange; returns the response body and the ETag of the
/// clinic's current pack, which the response advertises (`Katcore-Pack-ETag`)
/// so devices fetch the pack only when it changed.
async fn exchange(
    state: &AppState,
    device: DeviceAuth,
    clock_offset_ms: Option<i64>,
    body: Bytes,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let request = SyncRequest::decode(&body).map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    drop(body);
    let DeviceAuth { device_id, client_id } = device;
    let replica_client_id = client_id.clone();
    let max_record_bytes = state.limits().max_record_bytes;
    let (response, pack_etag) = state
        .with_replica(&client_id, move |replica, storage| {
            let device = SyncingDevice { id: &device_id, clock_offset_ms };
            let response = replica.sync(storage, &request, device, max_record_bytes)?;
            let pack_etag = storage.current_pack_etag_for_client(&replica_client_id)?;
            Ok((response, pack_etag))
        })
        .await?;
    Ok((response.encode(), pack_etag))
}
