//! The landing page: the clinic's open alerts grouped by client (each group
//! with its count and the age of the client's last sync), the groups in
//! the order of their most urgent alert, filterable by kind and client and
//! paginated by client; every alert on the page is described from its
//! client's record.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use katcore::record::UrgentKind;
use serde::Deserialize;

use super::alert_rows::{describe_open, rows_of, sort_alerts, AlertRow};
use super::pages::{Chrome, Done};
use super::session::SignedIn;
use super::words::{shown, sync_age};
use super::{render, WebError};
// The acknowledgement form (ack_form.html) lists its outcomes.
use crate::alerts::Outcome;
use crate::state::AppState;
use crate::storage::{urgent_kind_from_name, urgent_kind_name, Alert, URGENT_KINDS};
use crate::wording::alert_kind_label;

/// Clients (groups of alerts) per page: each is one record read to
/// describe its alerts.
pub(crate) const CLIENTS_PER_PAGE: usize = 15;
/// Acknowledged alerts listed under the open ones.
const RECENTLY_ACKNOWLEDGED: usize = 20;

/// The landing page's filters and page (`GET /dashboard?kind=…&client=…&page=…`).
/// Values it does not know show everything (a kind or client that is no
/// longer there, a page past the last) rather than an error.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AlertsQuery {
    /// An alert kind's API name (`urgent_blood_pressure`…).
    kind: Option<String>,
    /// A client's id.
    client: Option<String>,
    /// 1-based page of client groups.
    page: Option<String>,
}

/// The filters in force, as the page and its links carry them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Only this kind.
    pub(crate) kind: Option<UrgentKind>,
    /// Only this client.
    pub(crate) client: Option<String>,
}

impl Filter {
    /// The filter `query` asks for; an unknown kind or a client id that is
    /// not an id is no filter.
    fn of(query: &AlertsQuery) -> Filter {
        let client =
            query.client.as_deref().map(str::trim).filter(|id| {
                !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        Filter {
            kind: query.kind.as_deref().and_then(|name| urgent_kind_from_name(name.trim())),
            client: client.map(str::to_owned),
        }
    }

    fn keeps(&self, alert: &Alert) -> bool {
        self.kind.is_none_or(|kind| kind == alert.kind) && self.client.as_ref().is_none_or(|id| *id == alert.client_id)
    }

    /// `/dashboard` with these filters and `page` (when not the first).
    pub(crate) fn link(&self, page: usize) -> String {
        let mut parts = Vec::new();
        if let Some(kind) = self.kind {
            parts.push(format!("kind={}", urgent_kind_name(kind)));
        }
        if let Some(client) = &self.client {
            parts.push(format!("client={client}"));
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() {
            "/dashboard".to_owned()
        } else {
            format!("/dashboard?{}", parts.join("&"))
        }
    }
}

/// Where a form of the landing page returns to: the same filters and page
/// (each read again through [`Filter`], so nothing else goes into the
/// address), with the `done` word.
pub(super) fn landing_link(kind: &str, client: &str, page: &str, done: &str) -> String {
    let query = AlertsQuery { kind: Some(kind.to_owned()), client: Some(client.to_owned()), page: None };
    let page = page.trim().parse::<usize>().unwrap_or(1).max(1);
    let link = Filter::of(&query).link(page);
    let joint = if link.contains('?') { '&' } else { '?' };
    format!("{link}{joint}done={done}")
}

/// An option of a filter's list: its value, words, open count and whether chosen.
pub(crate) struct Choice {
    value: String,
    label: String,
    count: usize,
    selected: bool,
}

/// One client's open alerts.
pub(crate) struct Group {
    client_id: String,
    client_label: String,
    synced: String,
    alerts: Vec<AlertRow>,
}

/// The landing page.
#[derive(Template)]
#[template(path = "alerts.html")]
pub(crate) struct AlertsPage {
    chrome: Chrome,
    /// When the list was read (the page does not refresh itself).
    as_of: String,
    kinds: Vec<Choice>,
    clients: Vec<Choice>,
    filtered: bool,
    /// The filters in force, for the forms to return to (empty: none).
    list_kind: String,
    list_client: String,
    /// Open alerts and clients the filters keep.
    shown_alerts: usize,
    shown_clients: usize,
    groups: Vec<Group>,
    page: usize,
    pages: usize,
    previous: Option<String>,
    next: Option<String>,
    acknowledged: Vec<AlertRow>,
}

/// `open` (sorted) as groups by client, in the order of each client's first
/// (most urgent) alert.
pub(crate) fn grouped(open: Vec<Alert>) -> Vec<(String, Vec<Alert>)> {
    let mut groups: Vec<(String, Vec<Alert>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for alert in open {
        match index.get(&alert.client_id) {
            Some(&i) => groups[i].1.push(alert),
            None => {
                index.insert(alert.client_id.clone(), groups.len());
                groups.push((alert.client_id.clone(), vec![alert]));
            }
        }
    }
    groups
}

/// The page `asked` of `count` groups: 1-based, held within 1..=pages.
fn page_number(asked: Option<&str>, count: usize) -> (usize, usize) {
    let pages = count.div_ceil(CLIENTS_PER_PAGE).max(1);
    let page = asked.and_then(|p| p.trim().parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    (page, pages)
}

/// `GET /dashboard`: open alerts by client, most urgent first.
pub(crate) async fn alerts(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(done): Query<Done>,
    Query(query): Query<AlertsQuery>,
) -> Result<Response, WebError> {
    let clinic_id = signed_in.clinician.clinic_id.clone();
    let (alerts, clients) = state
        .db(move |s| Ok((s.alerts_to_show(&clinic_id, None, RECENTLY_ACKNOWLEDGED)?, s.client_summaries(&clinic_id)?)))
        .await?;
    let now = Utc::now();
    let synced: HashMap<String, String> = clients.iter().map(|c| (c.id.clone(), sync_age(c.last_sync, now))).collect();
    let labels: HashMap<String, String> = clients.into_iter().map(|c| (c.id, c.label)).collect();
    let filter = Filter::of(&query);
    let (mut open, mut acknowledged): (Vec<Alert>, Vec<Alert>) =
        alerts.into_iter().partition(|a| a.acknowledged_at.is_none());
    let open_count = open.len();
    let (kinds, client_choices) = choices(&open, &labels, &filter);
    open.retain(|a| filter.keeps(a));
    acknowledged.retain(|a| filter.keeps(a));
    sort_alerts(&mut open);
    sort_alerts(&mut acknowledged);
    let shown_alerts = open.len();
    let groups = grouped(open);
    let (page, pages) = page_number(query.page.as_deref(), groups.len());
    let shown_clients = groups.len();
    let mut on_page = Vec::new();
    for (client_id, alerts) in groups.into_iter().skip((page - 1) * CLIENTS_PER_PAGE).take(CLIENTS_PER_PAGE) {
        let wanted: Vec<(String, String, UrgentKind, DateTime<Utc>)> =
            alerts.iter().map(|a| (a.id.clone(), a.key.clone(), a.kind, a.at)).collect();
        let zone = state.time_zone().clone();
        let details = state
            .with_replica(&client_id, move |replica, storage| {
                let pack = replica.pack(storage)?;
                let view = replica.record().view(&pack);
                Ok(describe_open(&view, &pack, &zone, wanted.iter().cloned()))
            })
            .await?;
        on_page.push(Group {
            client_label: labels.get(&client_id).cloned().unwrap_or_default(),
            synced: synced.get(&client_id).cloned().unwrap_or_default(),
            alerts: rows_of(&state, alerts, &labels, details),
            client_id,
        });
    }
    let page = AlertsPage {
        chrome: Chrome::new(&state, &signed_in, "alerts", open_count, &done),
        as_of: shown(&state, now),
        kinds,
        clients: client_choices,
        filtered: filter != Filter::default(),
        list_kind: filter.kind.map(urgent_kind_name).unwrap_or_default().to_owned(),
        list_client: filter.client.clone().unwrap_or_default(),
        shown_alerts,
        shown_clients,
        groups: on_page,
        previous: (page > 1).then(|| filter.link(page - 1)),
        next: (page < pages).then(|| filter.link(page + 1)),
        page,
        pages,
        acknowledged: rows_of(&state, acknowledged, &labels, HashMap::new()),
    };
    Ok(render(&page))
}

/// The filters' options: every kind, and every client with an open alert
/// (by label), each with its count of open alerts.
fn choices(open: &[Alert], labels: &HashMap<String, String>, filter: &Filter) -> (Vec<Choice>, Vec<Choice>) {
    let kinds = URGENT_KINDS
        .iter()
        .map(|&kind| Choice {
            value: urgent_kind_name(kind).to_owned(),
            label: alert_kind_label(kind).to_owned(),
            count: open.iter().filter(|a| a.kind == kind).count(),
            selected: filter.kind == Some(kind),
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for alert in open {
        *counts.entry(alert.client_id.as_str()).or_default() += 1;
    }
    let mut clients: Vec<Choice> = counts
        .into_iter()
        .map(|(id, count)| Choice {
            value: id.to_owned(),
            label: labels.get(id).cloned().unwrap_or_default(),
            count,
            selected: filter.client.as_deref() == Some(id),
        })
        .collect();
    clients.sort_by(|a, b| a.label.cmp(&b.label).then_with(|| a.value.cmp(&b.value)));
    (kinds, clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_hold_within_their_range_and_ignore_garbage() {
        assert_eq!(page_number(None, 0), (1, 1));
        assert_eq!(page_number(Some("2"), CLIENTS_PER_PAGE * 2 + 1), (2, 3));
        assert_eq!(page_number(Some("99"), CLIENTS_PER_PAGE + 1), (2, 2));
        assert_eq!(page_number(Some("0"), 40), (1, 3));
        assert_eq!(page_number(Some("-1"), 40), (1, 3));
        assert_eq!(page_number(Some("two"), 40), (1, 3));
    }

    #[test]
    fn filters_read_only_what_they_know_and_link_back_to_themselves() {
        let query =
            |kind: &str, client: &str| AlertsQuery { kind: Some(kind.into()), client: Some(client.into()), page: None };
        let filter = Filter::of(&query("side_effect", "3f2a-01"));
        assert_eq!(filter.kind, Some(UrgentKind::SideEffect));
        assert_eq!(filter.link(2), "/dashboard?kind=side_effect&client=3f2a-01&page=2");
        let garbage = Filter::of(&query("everything", "x\"><script>"));
        assert_eq!(garbage, Filter::default());
        assert_eq!(garbage.link(1), "/dashboard");
        // A form returns to its list, and to nothing a form could smuggle in.
        assert_eq!(
            landing_link("side_effect", "3f2a", "2", "acknowledged"),
            "/dashboard?kind=side_effect&client=3f2a&page=2&done=acknowledged"
        );
        assert_eq!(landing_link("", "", "", "reopened"), "/dashboard?done=reopened");
        assert_eq!(landing_link("x", "//evil.example", "-3", "acknowledged"), "/dashboard?done=acknowledged");
    }
}
