//! The dashboard's pages (`GET`) other than the alerts ([`super::alerts_page`])
//! and a client's ([`super::client_page`]): what each shows and how it is
//! gathered, and the chrome every signed-in page shares.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::session::SignedIn;
use super::words::{readiness_label, shown, sync_age};
use super::{render, WebError};
use crate::replica::next_session;
use crate::state::AppState;
use crate::storage::ClientSummary;

/// What every signed-in page shows around its content.
pub(crate) struct Chrome {
    /// The clinician's display name.
    pub(crate) clinician: String,
    /// The session's CSRF token, for the sign-out form and the page's forms.
    pub(crate) csrf: String,
    /// Which tab is current: `alerts`, `clients` or `packs`.
    pub(crate) tab: &'static str,
    /// Open alerts of the clinic.
    pub(crate) open_alerts: usize,
    /// The zone times are shown in.
    pub(crate) zone: String,
    /// A confirmation of what the last form did, if any.
    pub(crate) notice: Option<&'static str>,
}

/// The `done` word a form's redirect carries, turned into a sentence.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    /// What was done.
    done: Option<String>,
    /// The client list's filter.
    q: Option<String>,
    /// On a client's page: every line of every list, not only the latest.
    all: Option<String>,
}

impl Done {
    /// Whether a client's page lists everything (`?all=1`).
    pub(super) fn show_all(&self) -> bool {
        self.all.is_some()
    }

    fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "acknowledged" => "Alert acknowledged. If that was a mistake, reopen it below.",
            "reopened" => "Alert reopened: it is open again.",
            "scheduled" => "Session scheduled. The client's devices get it at their next sync.",
            "moved" => "Session moved. The client's devices get it at their next sync.",
            "noted" => "Note added.",
            "revoked" => "Device revoked: its token no longer works.",
            "created" => "Client added.",
            "published" => "Pack published. Devices fetch it at their next sync.",
            _ => return None,
        })
    }
}

impl Chrome {
    pub(super) fn new(
        state: &AppState,
        signed_in: &SignedIn,
        tab: &'static str,
        open_alerts: usize,
        done: &Done,
    ) -> Chrome {
        Chrome {
            clinician: signed_in.clinician.display_name.clone(),
            csrf: signed_in.csrf.clone(),
            tab,
            open_alerts,
            zone: state.time_zone().name().to_owned(),
            notice: done.notice(),
        }
    }
}

/// A row of the client list.
pub(crate) struct ClientRow {
    id: String,
    label: String,
    next_session: String,
    readiness: Option<&'static str>,
    last_sync: String,
    open_alerts: u32,
}

/// The client list.
#[derive(Template)]
#[template(path = "clients.html")]
pub(crate) struct ClientsPage {
    chrome: Chrome,
    query: String,
    clients: Vec<ClientRow>,
    total: usize,
}

/// `GET /dashboard/clients?q=…`: the clinic's clients, those with open
/// alerts first; `q` keeps those whose label contains it (any case).
pub(crate) async fn clients(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let clinic_id = signed_in.clinician.clinic_id.clone();
    let summaries: Vec<ClientSummary> = state.db(move |s| s.client_summaries(&clinic_id)).await?;
    let total = summaries.len();
    let open_alerts = summaries.iter().map(|c| c.open_alerts as usize).sum();
    let query = done.q.clone().unwrap_or_default();
    let needle = query.trim().to_lowercase();
    let now = Utc::now();
    let mut rows: Vec<(u32, ClientRow)> = summaries
        .into_iter()
        .filter(|c| needle.is_empty() || c.label.to_lowercase().contains(&needle))
        .map(|c| {
            let next = next_session(&c.planned_sessions, now);
            let readiness = next
                .and_then(|start| c.planned_sessions.iter().find(|s| s.start == start))
                .and_then(|s| s.readiness)
                .map(readiness_label);
            (
                c.open_alerts,
                ClientRow {
                    next_session: next.map_or_else(|| "none scheduled".into(), |t| shown(&state, t.to_utc())),
                    readiness,
                    last_sync: match c.last_sync {
                        Some(t) => format!("{} ({})", shown(&state, t), sync_age(Some(t), now)),
                        None => sync_age(None, now),
                    },
                    open_alerts: c.open_alerts,
                    id: c.id,
                    label: c.label,
                },
            )
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let page = ClientsPage {
        chrome: Chrome::new(&state, &signed_in, "clients", open_alerts, &done),
        query,
        clients: rows.into_iter().map(|(_, row)| row).collect(),
        total,
    };
    Ok(render(&page))
}

/// A device's pack version on the packs page.
pub(crate) struct PackRow {
    client_id: String,
    client_label: String,
    device_label: String,
    version: String,
    current: bool,
}

/// The packs page.
#[derive(Template)]
#[template(path = "packs.html")]
pub(crate) struct PacksPage {
    chrome: Chrome,
    current: Option<String>,
    devices: Vec<PackRow>,
}

/// `GET /dashboard/packs`: the clinic's current signed pack and the version
/// each active device last fetched.
pub(crate) async fn packs(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let clinic_id = signed_in.clinician.clinic_id.clone();
    let (current, clients, devices) = state
        .db(move |s| {
            let clients = s.client_summaries(&clinic_id)?;
            let mut devices = Vec::new();
            for client in &clients {
                devices.extend(s.devices(&client.id)?.into_iter().filter(|d| d.revoked_at.is_none()));
            }
            Ok((s.current_pack(&clinic_id)?, clients, devices))
        })
        .await?;
    let open_alerts = clients.iter().map(|c| c.open_alerts as usize).sum();
    let labels: HashMap<&str, &str> = clients.iter().map(|c| (c.id.as_str(), c.label.as_str())).collect();
    let current_version = current.as_ref().map(|p| p.version);
    let page = PacksPage {
        chrome: Chrome::new(&state, &signed_in, "packs", open_alerts, &done),
        current: current.map(|p| format!("{} v{}", p.pack_id, p.version)),
        devices: devices
            .iter()
            .map(|d| PackRow {
                client_id: d.client_id.clone(),
                client_label: labels.get(d.client_id.as_str()).copied().unwrap_or_default().to_owned(),
                device_label: crate::wording::without_bidi_controls(&d.label).into_owned(),
                version: d.pack_version.map_or_else(|| "built-in".into(), |v| format!("v{v}")),
                // With no pack published, the built-in pack is the current one.
                current: d.pack_version == current_version,
            })
            .collect(),
    };
    Ok(render(&page))
}

/// The page that shows a new enrollment code, once.
#[derive(Template)]
#[template(path = "enrollment.html")]
pub(crate) struct EnrollmentPage {
    pub(crate) chrome: Chrome,
    pub(crate) client_id: String,
    pub(crate) label: String,
    pub(crate) code: String,
    pub(crate) expires: String,
    /// The QR code (SVG) of the enrollment link.
    pub(crate) qr: String,
    /// The link the QR code holds.
    pub(crate) link: String,
}

/// [`Chrome`] for pages rendered by actions.
pub(crate) fn chrome(state: &AppState, signed_in: &SignedIn, tab: &'static str) -> Chrome {
    Chrome::new(state, signed_in, tab, 0, &Done::default())
}
