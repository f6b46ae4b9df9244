//! Alerts: the urgent items of the clinic's records, for clinicians to see
//! first and acknowledge.
//!
//! An alert is raised (once per client and urgent key) when a record change
//! brings an urgent item the alerts table does not have yet; see
//! [`crate::replica`]. Acknowledging one also writes the acknowledgement into
//! the client's record, so the devices see it, with what was done about it
//! (an [`Outcome`] and a note); an acknowledged alert can be reopened. Each
//! acknowledgement and reopening is a line of the alert's audit trail.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use katcore::record::{Acknowledgement, RecordError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::ClinicianAuth;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, OptionalApiJson};
use crate::state::AppState;
use crate::storage::{urgent_kind_name, Alert, AlertAction, AlertActionKind};

/// `GET /v1/alerts`, `POST /v1/alerts/{alert_id}/ack` and `POST /v1/alerts/{alert_id}/reopen`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/alerts/{alert_id}/ack", post(acknowledge))
        .route("/v1/alerts/{alert_id}/reopen", post(reopen))
}

/// What a clinician did about an alert, recorded when acknowledging it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Spoke with the client.
    SpokeWithClient,
    /// Called; no answer.
    NoAnswer,
    /// Left a message for the client.
    LeftMessage,
    /// Called emergency services for the client.
    EmergencyServices,
    /// Passed to the prescriber.
    ToPrescriber,
    /// Reviewed; nothing more needed.
    NoActionNeeded,
    /// Something else (the note says what).
    Other,
}

impl Outcome {
    /// Every outcome, in the order forms offer them.
    pub const ALL: [Outcome; 7] = [
        Outcome::SpokeWithClient,
        Outcome::NoAnswer,
        Outcome::LeftMessage,
        Outcome::EmergencyServices,
        Outcome::ToPrescriber,
        Outcome::NoActionNeeded,
        Outcome::Other,
    ];

    /// Its code, as the API, the record and the database spell it.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::SpokeWithClient => "spoke_with_client",
            Outcome::NoAnswer => "no_answer",
            Outcome::LeftMessage => "left_message",
            Outcome::EmergencyServices => "emergency_services",
            Outcome::ToPrescriber => "to_prescriber",
            Outcome::NoActionNeeded => "no_action_needed",
            Outcome::Other => "other",
        }
    }

    /// The outcome with code `code`.
    pub fn of_code(code: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|outcome| outcome.code() == code)
    }

    /// In words, for the dashboard.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::SpokeWithClient => "Spoke with the client",
            Outcome::NoAnswer => "Called, no answer",
            Outcome::LeftMessage => "Left a message",
            Outcome::EmergencyServices => "Called emergency services",
            Outcome::ToPrescriber => "Passed to the prescriber",
            Outcome::NoActionNeeded => "Reviewed, nothing more needed",
            Outcome::Other => "Other (see the note)",
        }
    }
}

/// The words for a stored outcome code: its label, or the code itself for
/// one this build does not know (a newer instance's).
pub(crate) fn outcome_words(code: &str) -> String {
    Outcome::of_code(code).map_or_else(|| code.to_owned(), |outcome| outcome.label().to_owned())
}

/// Longest acknowledgement note, in characters.
pub const MAX_ACK_NOTE_CHARS: usize = 2_000;

/// Body of `POST /v1/alerts/{alert_id}/ack` (optional: without one, the
/// acknowledgement has no outcome, as before outcomes existed).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// What was done about it.
    pub outcome: Option<Outcome>,
    /// A note (at most 2,000 characters), kept in the client's record only.
    pub note: Option<String>,
}

/// Which alerts to list.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Unacknowledged only.
    #[default]
    Open,
    /// Every alert.
    All,
}

/// Query of `GET /v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// `open` (default) or `all`.
    #[param(inline)]
    pub status: Option<AlertStatus>,
}

/// An alert as clinicians see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Id.
    pub alert_id: String,
    /// The client.
    pub client_id: String,
    /// `checklist_blocked`, `urgent_blood_pressure`, `side_effect`, `crisis_check_in`,
    /// `started_not_ready`, `severe_score` or `score_worsened`.
    pub kind: String,
    /// The urgent item's key in the record.
    pub key: String,
    /// When the item happened, by its writer's clock; when that is more than 10 minutes
    /// ahead of the server's, when the server raised the alert (`clock.rs`).
    pub at: DateTime<Utc>,
    /// When the server raised the alert.
    pub raised_at: DateTime<Utc>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// The acknowledgement's outcome code (`spoke_with_client`…), when one was given.
    pub acknowledged_outcome: Option<String>,
}

impl From<Alert> for AlertView {
    fn from(alert: Alert) -> Self {
        AlertView {
            alert_id: alert.id,
            client_id: alert.client_id,
            kind: urgent_kind_name(alert.kind).to_owned(),
            key: alert.key,
            at: alert.at,
            raised_at: alert.raised_at,
            acknowledged_at: alert.acknowledged_at,
            acknowledged_by: alert.acknowledged_by,
            acknowledged_outcome: alert.acknowledged_outcome,
        }
    }
}

/// Lists the clinic's alerts: open ones first, then newest first.
#[utoipa::path(
    get, path = "/v1/alerts", tag = "clinician", security(("clinician_token" = [])),
    params(AlertsQuery),
    responses(
        (status = 200, description = "The alerts", body = [AlertView]),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 401, description = "Missing, malformed or unknown token", body = ErrorBody),
    )
)]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let open_only = matches!(query.status.unwrap_or_default(), AlertStatus::Open);
    let alerts = state.db(move |s| s.alerts(&clinician.clinic_id, open_only)).await?;
    Ok(Json(alerts.into_iter().map(AlertView::from).collect()))
}

/// Acknowledges an alert, with what was done about it, in the alerts table
/// (and its audit trail) and in the client's record.
#[utoipa::path(
    post, path = "/v1/alerts/{alert_id}/ack", tag = "clinician", security(("clinician_token" = [])),
    params(("alert_id" = String, Path, description = "The alert")),
    request_body(content = Option<AcknowledgeRequest>, description = "Optional: the outcome and a note"),
    responses(
        (status = 204, description = "Acknowledged (or already acknowledged)"),
        (status = 400, description = "An unknown outcome, or a note over 2,000 characters", body = ErrorBody),
        (status = 404, description = "No such alert in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(alert_id): ApiPath<String>,
    OptionalApiJson(request): OptionalApiJson<AcknowledgeRequest>,
) -> Result<StatusCode, ApiError> {
    let request = request.unwrap_or_default();
    acknowledge_alert(&state, &clinician, &alert_id, request.outcome, request.note).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens an acknowledged alert again (an acknowledgement made in error, or
/// one that needs more), in the alerts table and its audit trail; the
/// record keeps its acknowledgement, written once.
#[utoipa::path(
    post, path = "/v1/alerts/{alert_id}/reopen", tag = "clinician", security(("clinician_token" = [])),
    params(("alert_id" = String, Path, description = "The alert")),
    responses(
        (status = 204, description = "Open (or already open)"),
        (status = 404, description = "No such alert in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn reopen(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(alert_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    reopen_alert(&state, &clinician, &alert_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `note` trimmed, `None` when empty; an error past [`MAX_ACK_NOTE_CHARS`].
pub(crate) fn checked_note(note: Option<String>) -> Result<Option<String>, ApiError> {
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_ACK_NOTE_CHARS) {
        return Err(ApiError::bad_request("invalid_note", "the note is over 2,000 characters"));
    }
    Ok(note)
}

/// Acknowledges an alert of the clinician's clinic with `outcome` and
/// `note` in the alerts table, its audit trail and the client's record,
/// with their name and now (`404` for another clinic's alert; nothing
/// changes for one already acknowledged).
///
/// The record's acknowledgement is written once. An alert reopened and
/// acknowledged again keeps the first there; the new outcome goes to the
/// alerts table and the trail, and a note, as a clinician note naming the
/// alert's kind, to the record.
pub(crate) async fn acknowledge_alert(
    state: &AppState,
    clinician: &ClinicianAuth,
    alert_id: &str,
    outcome: Option<Outcome>,
    note: Option<String>,
) -> Result<(), ApiError> {
    let note = checked_note(note)?;
    let clinic_id = clinician.clinic_id.clone();
    let id = alert_id.to_owned();
    let alert = state.db(move |s| s.alert(&clinic_id, &id)).await?.ok_or_else(|| ApiError::not_found("alert"))?;
    if alert.acknowledged_at.is_some() {
        return Ok(());
    }
    let by = clinician.display_name.clone();
    let clinician_id = clinician.clinician_id.clone();
    let client_id = alert.client_id.clone();
    state
        .with_replica(&client_id, move |replica, storage| {
            let pack = replica.pack(storage)?;
            let keys = std::collections::BTreeSet::from([alert.key.clone()]);
            let item = replica.record().urgent_items_among(&pack, &keys).into_iter().next();
            let recorded = item.and_then(|item| item.acknowledged);
            // When the alert was last reopened: read only when the record holds an
            // acknowledgement, the one case where it decides anything.
            let reopened = match &recorded {
                Some(_) => storage
                    .alert_actions(&alert.client_id)?
                    .into_iter()
                    .filter(|line| line.alert_id == alert.id && line.action == AlertActionKind::Reopened)
                    .map(|line| line.at)
                    .max(),
                None => None,
            };
            let mine = Acknowledgement {
                outcome: outcome.map(|o| o.code().to_owned()),
                note: note.clone(),
                ..Acknowledgement::new(&by, Utc::now())
            };
            let written = match recorded {
                // Another instance's, a moment ago: the record decides who
                // acknowledged, and the alerts table takes its name, time and
                // outcome, so the two never disagree whichever instance wins.
                Some(earlier) if reopened.is_none_or(|at| earlier.at > at) => earlier,
                // Acknowledged before the alert was reopened: the record keeps
                // that one; a note of this acknowledgement becomes a clinician note.
                Some(_) => {
                    if let Some(note) = &note {
                        let kind = crate::wording::alert_kind_label(alert.kind);
                        let text = format!("Alert \u{201c}{kind}\u{201d} acknowledged again: {note}");
                        replica.edit(storage, |record| record.add_clinician_note(&by, &text, mine.at))?;
                    }
                    mine
                }
                None => {
                    let acknowledged =
                        replica.edit(storage, |record| match record.acknowledge_with(&alert.key, &mine) {
                            Err(RecordError::NotFound { .. }) => Ok(false),
                            other => other.map(|()| true),
                        })?;
                    if !acknowledged {
                        tracing::warn!(alert_id = %alert.id, "acknowledged alert has no urgent item in the record");
                    }
                    mine
                }
            };
            Ok(storage.record_alert_action(&AlertAction {
                alert_id: alert.id.clone(),
                action: AlertActionKind::Acknowledged,
                at: written.at,
                clinician_id: clinician_id.clone(),
                by: written.by,
                outcome: written.outcome,
            })?)
        })
        .await?;
    tracing::info!(%alert_id, "alert acknowledged");
    Ok(())
}

/// Opens an acknowledged alert of the clinician's clinic again, in the
/// alerts table and its audit trail (`404` for another clinic's alert;
/// nothing changes for one already open). The record keeps its
/// acknowledgement, which every reader holds as written once: that a
/// clinician saw the item stays true.
pub(crate) async fn reopen_alert(state: &AppState, clinician: &ClinicianAuth, alert_id: &str) -> Result<(), ApiError> {
    let clinic_id = clinician.clinic_id.clone();
    let id = alert_id.to_owned();
    let alert = state.db(move |s| s.alert(&clinic_id, &id)).await?.ok_or_else(|| ApiError::not_found("alert"))?;
    if alert.acknowledged_at.is_none() {
        return Ok(());
    }
    let action = AlertAction {
        alert_id: alert.id,
        action: AlertActionKind::Reopened,
        at: Utc::now(),
        clinician_id: clinician.clinician_id.clone(),
        by: clinician.display_name.clone(),
        outcome: None,
    };
    state.db(move |s| s.record_alert_action(&action)).await?;
    tracing::info!(%alert_id, "alert reopened");
    Ok(())
}
