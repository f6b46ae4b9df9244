//! Alerts: the urgent items of the clinic's records, for clinicians to see
//! first and acknowledge.
//!
//! An alert is raised (once per client and urgent key) when a record change
//! brings an urgent item the alerts table does not have yet; see
//! [`crate::replica`]. Acknowledging one also writes the acknowledgement into
//! the client's record, so the devices see it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use katcore::record::RecordError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::ClinicianAuth;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::storage::{urgent_kind_name, Alert};

/// `GET /v1/alerts` and `POST /v1/alerts/{alert_id}/ack`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/alerts", get(list_alerts)).route("/v1/alerts/{alert_id}/ack", post(acknowledge))
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

/// Acknowledges an alert, in the alerts table and in the client's record.
#[utoipa::path(
    post, path = "/v1/alerts/{alert_id}/ack", tag = "clinician", security(("clinician_token" = [])),
    params(("alert_id" = String, Path, description = "The alert")),
    responses(
        (status = 204, description = "Acknowledged (or already acknowledged)"),
        (status = 404, description = "No such alert in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(alert_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    acknowledge_alert(&state, &clinician, &alert_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Acknowledges an alert of the clinician's clinic in the alerts table and
/// in the client's record, with their name and now (`404` for another
/// clinic's alert; nothing changes for one already acknowledged).
pub(crate) async fn acknowledge_alert(
    state: &AppState,
    clinician: &ClinicianAuth,
    alert_id: &str,
) -> Result<(), ApiError> {
    let clinic_id = clinician.clinic_id.clone();
    let id = alert_id.to_owned();
    let alert = state.db(move |s| s.alert(&clinic_id, &id)).await?.ok_or_else(|| ApiError::not_found("alert"))?;
    if alert.acknowledged_at.is_some() {
        return Ok(());
    }
    let by = clinician.display_name.clone();
    let client_id = alert.client_id.clone();
    state
        .with_replica(&client_id, move |replica, storage| {
            // The record decides who acknowledged: an acknowledgement it
            // already holds (another instance's, a moment ago) is kept, and
            // the alerts table takes the record's name and time, so the two
            // never disagree whichever instance wins.
            let pack = replica.pack(storage)?;
            let keys = std::collections::BTreeSet::from([alert.key.clone()]);
            let item = replica.record().urgent_items_among(&pack, &keys).into_iter().next();
            let (who, when) = match item.as_ref().and_then(|item| item.acknowledged.clone()) {
                Some(earlier) => (earlier.by, earlier.at),
                None => {
                    let now = Utc::now();
                    let acknowledged =
                        replica.edit(storage, |record| match record.acknowledge(&alert.key, &by, now) {
                            Err(RecordError::NotFound { .. }) => Ok(false),
                            other => other.map(|()| true),
                        })?;
                    if !acknowledged {
                        tracing::warn!(alert_id = %alert.id, "acknowledged alert has no urgent item in the record");
                    }
                    (by.clone(), now)
                }
            };
            Ok(storage.acknowledge_alert(&alert.id, &who, when)?)
        })
        .await?;
    tracing::info!(%alert_id, "alert acknowledged");
    Ok(())
}
