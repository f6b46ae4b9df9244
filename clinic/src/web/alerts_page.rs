//! The landing page: the clinic's open alerts, grouped by client, most
//! urgent first, filterable and paginated, each described from its
//! client's record.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use katcore::record::UrgentKind;

use super::alert_rows::{describe_open, rows_of, sort_alerts, AlertRow};
use super::pages::{Chrome, Done};
use super::session::SignedIn;
use super::words::{shown, sync_age};
use super::{render, WebError};
use crate::state::AppState;
use crate::storage::Alert;

/// Most clients whose records are read to describe the landing page's alerts.
const DESCRIBED_CLIENTS: usize = 50;
/// Acknowledged alerts listed under the open ones.
const RECENTLY_ACKNOWLEDGED: usize = 20;

/// The landing page.
#[derive(Template)]
#[template(path = "alerts.html")]
pub(crate) struct AlertsPage {
    chrome: Chrome,
    /// When the list was read (the page does not refresh itself).
    as_of: String,
    open: Vec<AlertRow>,
    acknowledged: Vec<AlertRow>,
}

/// Alert rows for `alerts`, described from the records of their clients
/// (the first [`DESCRIBED_CLIENTS`] of them).
async fn alert_rows(
    state: &AppState,
    alerts: Vec<Alert>,
    labels: &HashMap<String, String>,
) -> Result<Vec<AlertRow>, WebError> {
    // The first clients by their alerts' order, each once: one client with
    // many alerts must not leave every other client's alerts undescribed.
    let mut clients: Vec<String> = Vec::new();
    for alert in alerts.iter().filter(|a| a.acknowledged_at.is_none()) {
        if clients.len() == DESCRIBED_CLIENTS {
            break;
        }
        if !clients.contains(&alert.client_id) {
            clients.push(alert.client_id.clone());
        }
    }
    let mut details: HashMap<String, String> = HashMap::new();
    for client_id in clients {
        let wanted: Vec<(String, String, UrgentKind, DateTime<Utc>)> = alerts
            .iter()
            .filter(|a| a.client_id == client_id && a.acknowledged_at.is_none())
            .map(|a| (a.id.clone(), a.key.clone(), a.kind, a.at))
            .collect();
        let described = state
            .with_replica(&client_id, move |replica, storage| {
                let pack = replica.pack(storage)?;
                let view = replica.record().view(&pack);
                Ok(describe_open(&view, &pack, wanted.iter().cloned()))
            })
            .await?;
        details.extend(described);
    }
    Ok(rows_of(state, alerts, labels, details))
}

/// `GET /dashboard`: open alerts, most urgent and newest first.
pub(crate) async fn alerts(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let clinic_id = signed_in.clinician.clinic_id.clone();
    let (mut alerts, clients) = state
        .db(move |s| Ok((s.alerts_to_show(&clinic_id, None, RECENTLY_ACKNOWLEDGED)?, s.client_summaries(&clinic_id)?)))
        .await?;
    sort_alerts(&mut alerts);
    let now = Utc::now();
    let synced: HashMap<String, String> = clients.iter().map(|c| (c.id.clone(), sync_age(c.last_sync, now))).collect();
    let labels: HashMap<String, String> = clients.into_iter().map(|c| (c.id, c.label)).collect();
    let open_count = alerts.iter().filter(|a| a.acknowledged_at.is_none()).count();
    let mut rows = alert_rows(&state, alerts, &labels).await?;
    for row in &mut rows {
        row.synced = synced.get(&row.client_id).cloned().unwrap_or_default();
    }
    let (open, acknowledged) = rows.into_iter().partition(|row| row.acknowledged.is_none());
    let page = AlertsPage {
        chrome: Chrome::new(&state, &signed_in, "alerts", open_count, &done),
        as_of: shown(&state, Utc::now()),
        open,
        acknowledged,
    };
    Ok(render(&page))
}
