//! The clinician API for clients, their devices and their records.
//!
//! Every route takes a clinician token and reaches only that clinician's
//! clinic: another clinic's client or device is `404`, exactly like one
//! that does not exist, so nothing leaks. Edits (sessions, notes, the pack
//! assignment) are care-record operations by the server's actor, persisted
//! like synced changes, so they merge with the devices' offline edits.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, FixedOffset, Utc};
use katcore::record::{Party, RecordView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::ClinicianAuth;
use crate::error::{ApiError, ErrorBody};
use crate::extract::check_name;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::replica::next_session;
use crate::state::AppState;
use crate::storage::Client;

/// Largest JSON body of these routes (a note may hold 100,000 characters).
pub(crate) const MAX_CLINICIAN_BODY: usize = 1024 * 1024;
/// Longest client label, in characters.
pub(crate) const MAX_CLIENT_LABEL: usize = 200;

/// Clients, their devices and records.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/clients", post(create_client).get(list_clients))
        .route("/v1/clients/{client_id}/record", get(record))
        .route("/v1/clients/{client_id}/devices", get(devices))
        .route("/v1/clients/{client_id}/sessions", post(schedule_session))
        .route("/v1/clients/{client_id}/sessions/{session_id}", put(move_session))
        .route("/v1/clients/{client_id}/notes", post(add_note))
        .route("/v1/clients/{client_id}/pack", put(assign_pack))
        .route("/v1/devices/{device_id}/revoke", post(revoke_device))
        .layer(DefaultBodyLimit::max(MAX_CLINICIAN_BODY))
}

/// The client, if it exists and belongs to the clinician's clinic; else `404`.
pub(crate) async fn client_of_clinic(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
) -> Result<Client, ApiError> {
    let id = client_id.to_owned();
    state
        .db(move |s| s.client(&id))
        .await?
        .filter(|client| client.clinic_id == clinician.clinic_id)
        .ok_or_else(|| ApiError::not_found("client"))
}

/// A new client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    /// A pseudonymous label the clinic chooses (no health data).
    pub label: String,
}

/// The id of a created client.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientCreated {
    /// The new client's id.
    pub client_id: String,
}

/// A row of the client list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientListItem {
    /// Id.
    pub client_id: String,
    /// Label.
    pub label: String,
    /// Start of the earliest upcoming session (not cancelled or ended).
    pub next_session: Option<DateTime<FixedOffset>>,
    /// Latest sync of any of the client's devices.
    pub last_sync: Option<DateTime<Utc>>,
    /// Unacknowledged alerts.
    pub open_alerts: u32,
}

/// An enrolled device.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Id.
    pub device_id: String,
    /// Label given at enrollment.
    pub label: String,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// Its latest successful sync.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The version of the clinic's signed pack it last fetched, if any.
    pub pack_version: Option<u32>,
    /// How far its clock was ahead of the clinic's (negative: behind), in
    /// milliseconds, at its latest sync that sent its time; absent if never
    /// measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
}

/// A session to schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSessionRequest {
    /// Start, RFC 3339 with offset.
    pub start: DateTime<FixedOffset>,
    /// The client's IANA time zone, e.g. `America/New_York`.
    pub time_zone: String,
}

/// The id of a scheduled session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionCreated {
    /// The session's id.
    pub session_id: String,
}

/// A session's new start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveSessionRequest {
    /// New start, RFC 3339 with offset.
    pub start: DateTime<FixedOffset>,
}

/// A clinician's note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// The note (at most 100,000 characters).
    pub text: String,
}

/// The id of a written note.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoteCreated {
    /// The note's id.
    pub note_id: String,
}

/// The pack version assigned to a client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPackRequest {
    /// Pack id.
    pub pack_id: String,
    /// Pack version (1 or more).
    pub version: u32,
}

/// Creates a client.
#[utoipa::path(
    post, path = "/v1/clients", tag = "clinician", security(("clinician_token" = [])),
    request_body = NewClientRequest,
    responses(
        (status = 201, description = "Created", body = ClientCreated),
        (status = 400, description = "Invalid label", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown token", body = ErrorBody),
    )
)]
pub(crate) async fn create_client(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiJson(request): ApiJson<NewClientRequest>,
) -> Result<(StatusCode, Json<ClientCreated>), ApiError> {
    let client_id = create(&state, &clinician, &request.label).await?;
    Ok((StatusCode::CREATED, Json(ClientCreated { client_id })))
}

/// Creates a client of the clinician's clinic labelled `label`; returns its id.
pub(crate) async fn create(state: &AppState, clinician: &ClinicianAuth, label: &str) -> Result<String, ApiError> {
    let label = check_name("label", label, MAX_CLIENT_LABEL)?;
    let client = Client { id: katcore::record::new_id(), clinic_id: clinician.clinic_id.clone(), label };
    let client_id = client.id.clone();
    state.db(move |s| s.insert_client(&client, Utc::now())).await?;
    Ok(client_id)
}

/// Lists the clinic's clients, oldest first.
#[utoipa::path(
    get, path = "/v1/clients", tag = "clinician", security(("clinician_token" = [])),
    responses(
        (status = 200, description = "The clinic's clients", body = [ClientListItem]),
        (status = 401, description = "Missing, malformed or unknown token", body = ErrorBody),
    )
)]
pub(crate) async fn list_clients(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
) -> Result<Json<Vec<ClientListItem>>, ApiError> {
    let summaries = state.db(move |s| s.client_summaries(&clinician.clinic_id)).await?;
    let now = Utc::now();
    Ok(Json(
        summaries
            .into_iter()
            .map(|c| ClientListItem {
                next_session: next_session(&c.planned_sessions, now),
                client_id: c.id,
                label: c.label,
                last_sync: c.last_sync,
                open_alerts: c.open_alerts,
            })
            .collect(),
    ))
}

/// Most items of each list one record answer holds, and the default.
pub(crate) const MAX_RECORD_PAGE: usize = 10_000;

/// The window of a record answer (`GET /v1/clients/{client_id}/record`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordQuery {
    /// Only what happened at or after this instant (RFC 3339).
    pub since: Option<DateTime<FixedOffset>>,
    /// Only what happened before this instant (RFC 3339).
    pub until: Option<DateTime<FixedOffset>>,
    /// Most items per list, the most recent kept (1 to 10,000; default 10,000).
    pub limit: Option<usize>,
}

/// The header naming the lists a record answer cut to its limit.
pub(crate) const TRUNCATED_HEADER: &str = "katcore-truncated";

/// A client's care record as clinicians see it (`CareRecord::view`), in a
/// time window.
#[utoipa::path(
    get, path = "/v1/clients/{client_id}/record", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client"), RecordQuery),
    responses(
        (status = 200, description = "The record as clinicians see it, urgent items derived with the client's pack \
                                      (schema `CareRecordView`; the stored format is docs/record-format.md). \
                                      Lists with more items in the window than `limit` keep the most recent and are \
                                      named in `Katcore-Truncated`: ask again with a narrower window",
         body = Object,
         headers(("Katcore-Truncated" = String, description = "Comma-separated lists cut to `limit`, if any"))),
        (status = 400, description = "A bad window or limit", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn record(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RecordQuery>,
) -> Result<axum::response::Response, ApiError> {
    let limit = query.limit.unwrap_or(MAX_RECORD_PAGE);
    if !(1..=MAX_RECORD_PAGE).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_RECORD_PAGE}")));
    }
    let (since, until) = (query.since.map(|t| t.with_timezone(&Utc)), query.until.map(|t| t.with_timezone(&Utc)));
    if let (Some(since), Some(until)) = (since, until) {
        if since >= until {
            return Err(ApiError::bad_request("invalid_query", "since must be before until"));
        }
    }
    client_of_clinic(&state, &clinician, &client_id).await?;
    let (view, truncated) = state
        .with_replica(&client_id, move |replica, storage| {
            let pack = replica.pack(storage)?;
            let mut view: RecordView = replica.record().view(&pack);
            let truncated = view.window(since, until, limit);
            Ok((view, truncated))
        })
        .await?;
    let mut response = Json(view).into_response();
    if !truncated.is_empty() {
        if let Ok(value) = axum::http::HeaderValue::from_str(&truncated.join(",")) {
            response.headers_mut().insert(TRUNCATED_HEADER, value);
        }
    }
    Ok(response)
}

/// A client's devices, by enrollment.
#[utoipa::path(
    get, path = "/v1/clients/{client_id}/devices", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client")),
    responses(
        (status = 200, description = "The devices", body = [DeviceView]),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn devices(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    client_of_clinic(&state, &clinician, &client_id).await?;
    let devices = state.db(move |s| s.devices(&client_id)).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| DeviceView {
                device_id: d.id,
                label: d.label,
                enrolled_at: d.enrolled_at,
                last_sync_at: d.last_sync_at,
                revoked_at: d.revoked_at,
                pack_version: d.pack_version,
                clock_offset_ms: d.clock_offset_ms,
            })
            .collect(),
    ))
}

/// Revokes a device: its token gets `410` from then on.
#[utoipa::path(
    post, path = "/v1/devices/{device_id}/revoke", tag = "clinician", security(("clinician_token" = [])),
    params(("device_id" = String, Path, description = "The device")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 404, description = "No such device in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(device_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&state, &clinician, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a device of the clinician's clinic (`404` for any other).
pub(crate) async fn revoke(state: &AppState, clinician: &ClinicianAuth, device_id: &str) -> Result<(), ApiError> {
    let (clinic_id, id) = (clinician.clinic_id.clone(), device_id.to_owned());
    let found = state.db(move |s| s.revoke_device(&clinic_id, &id, Utc::now())).await?;
    if !found {
        return Err(ApiError::not_found("device"));
    }
    tracing::info!(%device_id, "device revoked");
    Ok(())
}

/// Schedules a session.
#[utoipa::path(
    post, path = "/v1/clients/{client_id}/sessions", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client")),
    request_body = ScheduleSessionRequest,
    responses(
        (status = 201, description = "Scheduled", body = SessionCreated),
        (status = 400, description = "Invalid start or time zone", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn schedule_session(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(request): ApiJson<ScheduleSessionRequest>,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let session_id = schedule(&state, &clinician, &client_id, request.start, request.time_zone).await?;
    Ok((StatusCode::CREATED, Json(SessionCreated { session_id })))
}

/// Schedules a session for a client of the clinician's clinic; returns its id.
pub(crate) async fn schedule(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
    start: DateTime<FixedOffset>,
    time_zone: String,
) -> Result<String, ApiError> {
    client_of_clinic(state, clinician, client_id).await?;
    state
        .with_replica(client_id, move |replica, storage| {
            replica.edit(storage, |record| record.schedule_session(start, &time_zone, Party::Clinic))
        })
        .await
}

/// Moves a session to a new start.
#[utoipa::path(
    put, path = "/v1/clients/{client_id}/sessions/{session_id}", tag = "clinician",
    security(("clinician_token" = [])),
    params(
        ("client_id" = String, Path, description = "The client"),
        ("session_id" = String, Path, description = "The session"),
    ),
    request_body = MoveSessionRequest,
    responses(
        (status = 204, description = "Moved"),
        (status = 400, description = "Invalid start", body = ErrorBody),
        (status = 404, description = "No such client or session", body = ErrorBody),
    )
)]
pub(crate) async fn move_session(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath((client_id, session_id)): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<MoveSessionRequest>,
) -> Result<StatusCode, ApiError> {
    move_to(&state, &clinician, &client_id, session_id, request.start).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves a session of a client of the clinician's clinic to `start`.
pub(crate) async fn move_to(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
    session_id: String,
    start: DateTime<FixedOffset>,
) -> Result<(), ApiError> {
    client_of_clinic(state, clinician, client_id).await?;
    state
        .with_replica(client_id, move |replica, storage| {
            replica.edit(storage, |record| record.move_session(&session_id, start, Party::Clinic))
        })
        .await
}

/// Adds a note signed with the clinician's display name.
#[utoipa::path(
    post, path = "/v1/clients/{client_id}/notes", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "Written", body = NoteCreated),
        (status = 400, description = "Empty or over-long text", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn add_note(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(request): ApiJson<NoteRequest>,
) -> Result<(StatusCode, Json<NoteCreated>), ApiError> {
    let note_id = write_note(&state, &clinician, &client_id, request.text).await?;
    Ok((StatusCode::CREATED, Json(NoteCreated { note_id })))
}

/// Writes a note, signed with the clinician's display name, on a client of
/// their clinic; returns its id.
pub(crate) async fn write_note(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
    text: String,
) -> Result<String, ApiError> {
    client_of_clinic(state, clinician, client_id).await?;
    let author = clinician.display_name.clone();
    state
        .with_replica(client_id, move |replica, storage| {
            replica.edit(storage, |record| record.add_clinician_note(&author, &text, Utc::now()))
        })
        .await
}

/// Assigns a pack version to the client.
#[utoipa::path(
    put, path = "/v1/clients/{client_id}/pack", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client")),
    request_body = AssignPackRequest,
    responses(
        (status = 204, description = "Assigned"),
        (status = 400, description = "Empty pack id or version 0", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn assign_pack(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
    ApiJson(request): ApiJson<AssignPackRequest>,
) -> Result<StatusCode, ApiError> {
    client_of_clinic(&state, &clinician, &client_id).await?;
    let pack_id = check_name("pack_id", &request.pack_id, 200)?;
    state
        .with_replica(&client_id, move |replica, storage| {
            replica.edit(storage, |record| record.assign_pack(&pack_id, request.version, Utc::now()))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
