//! The dashboard's forms (`POST`): each checks its CSRF token ([`Posted`]),
//! calls the same function as the API and answers `303` to the page it came
//! from, or an error page that says what to fix.

use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone as _};
use katcore::zone::Zone;
use serde::Deserialize;

use super::alerts_page::landing_link;
use super::pages::{chrome, EnrollmentPage};
use super::session::{see_other, NoFields, Posted};
use super::words::shown;
use super::{bad_field, render, WebError};
use crate::alerts::Outcome;
use crate::state::AppState;

/// `POST /dashboard/alerts/{alert_id}/ack`: what was done (`outcome`, an
/// [`Outcome`] code, required here) and an optional `note`; `client` names
/// the client page to return to (else the landing page).
#[derive(Debug, Deserialize)]
pub(crate) struct AckForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    client: String,
    #[serde(flatten)]
    list: ListPlace,
}

/// Where on the landing page a form was sent from: its filters and page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListPlace {
    #[serde(default)]
    list_kind: String,
    #[serde(default)]
    list_client: String,
    #[serde(default)]
    list_page: String,
}

/// Acknowledges an alert with its outcome.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    posted: Posted<AckForm>,
) -> Result<Response, WebError> {
    let outcome = Outcome::of_code(posted.form.outcome.trim())
        .ok_or_else(|| bad_field("Outcome: choose what was done about the alert."))?;
    let note = Some(posted.form.note.clone());
    crate::alerts::acknowledge_alert(&state, &posted.signed_in.clinician, &alert_id, Some(outcome), note).await?;
    Ok(back(&posted.form.client, &posted.form.list, "acknowledged"))
}

/// `POST /dashboard/alerts/{alert_id}/reopen`; `client` as for [`AckForm`].
#[derive(Debug, Deserialize)]
pub(crate) struct ReopenForm {
    #[serde(default)]
    client: String,
    #[serde(flatten)]
    list: ListPlace,
}

/// Opens an acknowledged alert again.
pub(crate) async fn reopen(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    posted: Posted<ReopenForm>,
) -> Result<Response, WebError> {
    crate::alerts::reopen_alert(&state, &posted.signed_in.clinician, &alert_id).await?;
    Ok(back(&posted.form.client, &posted.form.list, "reopened"))
}

/// `303` to the client's page (when `client` names one) or the landing
/// page at the filters and page the form came from, saying `done`.
fn back(client: &str, list: &ListPlace, done: &str) -> Response {
    if client.is_empty() {
        see_other(&landing_link(&list.list_kind, &list.list_client, &list.list_page, done))
    } else {
        see_other(&format!("/dashboard/clients/{}?done={done}", client_path(client)))
    }
}

/// A client id fit for a path (ids are hex; anything else becomes empty,
/// which lands on a `404`).
fn client_path(id: &str) -> &str {
    if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        id
    } else {
        ""
    }
}

/// `POST /dashboard/clients`: a new client.
#[derive(Debug, Deserialize)]
pub(crate) struct NewClientForm {
    label: String,
}

/// Adds a client and opens their page.
pub(crate) async fn create_client(
    State(state): State<AppState>,
    posted: Posted<NewClientForm>,
) -> Result<Response, WebError> {
    let id = crate::clinician::create(&state, &posted.signed_in.clinician, &posted.form.label).await?;
    Ok(see_other(&format!("/dashboard/clients/{id}?done=created")))
}

/// A local date and time in a zone, from a form.
#[derive(Debug, Deserialize)]
pub(crate) struct WhenForm {
    /// `YYYY-MM-DD`.
    date: String,
    /// `HH:MM`.
    time: String,
    /// IANA zone.
    time_zone: String,
}

impl WhenForm {
    /// The instant the client's wall clock shows then (the earlier one when
    /// clocks go back; an error for a time skipped when clocks go forward).
    fn instant(&self) -> Result<(DateTime<FixedOffset>, String), WebError> {
        let zone = Zone::named(self.time_zone.trim())
            .ok_or_else(|| bad_field("Time zone: give an IANA zone name, e.g. America/New_York."))?;
        let date = NaiveDate::parse_from_str(self.date.trim(), "%Y-%m-%d")
            .map_err(|_| bad_field("Date: give it as YYYY-MM-DD."))?;
        let time = NaiveTime::parse_from_str(self.time.trim(), "%H:%M")
            .map_err(|_| bad_field("Time: give it as HH:MM (24-hour clock)."))?;
        let local = zone.from_local_datetime(&date.and_time(time)).earliest().ok_or_else(|| {
            bad_field(format!("{date} {time} does not exist in {} (the clocks go forward then).", zone.name()))
        })?;
        Ok((local.fixed_offset(), zone.name().to_owned()))
    }
}

/// `POST /dashboard/clients/{client_id}/sessions`: schedules a session.
pub(crate) async fn schedule(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted<WhenForm>,
) -> Result<Response, WebError> {
    let (start, zone) = posted.form.instant()?;
    crate::clinician::schedule(&state, &posted.signed_in.clinician, &client_id, start, zone).await?;
    Ok(see_other(&format!("/dashboard/clients/{}?done=scheduled", client_path(&client_id))))
}

/// `POST /dashboard/clients/{client_id}/sessions/{session_id}`: moves a session.
pub(crate) async fn move_session(
    State(state): State<AppState>,
    Path((client_id, session_id)): Path<(String, String)>,
    posted: Posted<WhenForm>,
) -> Result<Response, WebError> {
    let (start, _) = posted.form.instant()?;
    crate::clinician::move_to(&state, &posted.signed_in.clinician, &client_id, session_id, start).await?;
    Ok(see_other(&format!("/dashboard/clients/{}?done=moved", client_path(&client_id))))
}

/// `POST /dashboard/clients/{client_id}/notes`.
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    text: String,
}

/// Adds a clinician note.
pub(crate) async fn note(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted<NoteForm>,
) -> Result<Response, WebError> {
    crate::clinician::write_note(&state, &posted.signed_in.clinician, &client_id, posted.form.text).await?;
    Ok(see_other(&format!("/dashboard/clients/{}?done=noted", client_path(&client_id))))
}

/// `POST /dashboard/clients/{client_id}/devices/{device_id}/revoke`.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path((client_id, device_id)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> Result<Response, WebError> {
    crate::clinician::client_of_clinic(&state, &posted.signed_in.clinician, &client_id).await?;
    crate::clinician::revoke(&state, &posted.signed_in.clinician, &device_id).await?;
    Ok(see_other(&format!("/dashboard/clients/{}?done=revoked", client_path(&client_id))))
}

/// The link a phone's camera reads from the enrollment QR code:
/// `katcore://enroll?server=<base URL>&code=<code>` (docs/dashboard.md).
pub(crate) fn enrollment_link(server: &str, code: &str) -> String {
    let query = serde_urlencoded::to_string([("server", server), ("code", code)]).unwrap_or_default();
    format!("katcore://enroll?{query}")
}

/// `link` as an SVG QR code, named for assistive technology.
fn qr_svg(link: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(link.as_bytes())
        .map_err(|e| WebError::from(crate::error::ApiError::internal(format!("QR code: {e}"))))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build();
    // An inline `<svg>`, without the XML declaration of a standalone file.
    let inline = svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]);
    Ok(inline.replacen("<svg ", "<svg role=\"img\" aria-label=\"Enrollment QR code\" ", 1))
}

/// `POST /dashboard/clients/{client_id}/enrollment-code`: a new code,
/// shown once as text and as a QR code (never put in a URL).
pub(crate) async fn enrollment_code(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    posted: Posted<NoFields>,
) -> Result<Response, WebError> {
    let client = crate::clinician::client_of_clinic(&state, &posted.signed_in.clinician, &client_id).await?;
    let issued = crate::enrollment::issue_code(&state, &posted.signed_in.clinician, &client_id).await?;
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty()).unwrap_or("localhost");
    let scheme = if state.secure_cookies() { "https" } else { "http" };
    let link = enrollment_link(&format!("{scheme}://{host}"), &issued.code);
    let page = EnrollmentPage {
        chrome: chrome(&state, &posted.signed_in, "clients"),
        client_id,
        label: client.label,
        qr: qr_svg(&link)?,
        link,
        expires: shown(&state, issued.expires_at),
        code: issued.code,
    };
    let mut response = render(&page);
    // A code is shown once: never kept by a cache or the history.
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /dashboard/packs`: a signed pack envelope, pasted.
#[derive(Debug, Deserialize)]
pub(crate) struct PublishForm {
    pack: String,
}

/// Verifies and publishes a signed pack.
pub(crate) async fn publish(State(state): State<AppState>, posted: Posted<PublishForm>) -> Result<Response, WebError> {
    crate::packs::publish(&state, &posted.signed_in.clinician, posted.form.pack.trim().as_bytes()).await?;
    Ok(see_other("/dashboard/packs?done=published"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enrollment_link_carries_server_and_code_encoded() {
        let link = enrollment_link("https://clinic.example:8443", "ABCD-EFGH-JKMN");
        assert_eq!(link, "katcore://enroll?server=https%3A%2F%2Fclinic.example%3A8443&code=ABCD-EFGH-JKMN");
        let svg = qr_svg(&link).unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Enrollment QR code\""));
        assert!(svg.contains("<path") || svg.contains("<rect"), "modules are drawn");
    }

    #[test]
    fn local_times_resolve_in_the_zone_and_skipped_ones_are_refused() {
        let form = |date: &str, time: &str| WhenForm {
            date: date.into(),
            time: time.into(),
            time_zone: "America/New_York".into(),
        };
        let (start, zone) = form("2026-07-01", "09:30").instant().unwrap();
        assert_eq!(start.to_rfc3339(), "2026-07-01T09:30:00-04:00");
        assert_eq!(zone, "America/New_York");
        assert!(form("2026-03-08", "02:30").instant().is_err(), "skipped by the spring change");
        let (fold, _) = form("2026-11-01", "01:30").instant().unwrap();
        assert_eq!(fold.to_rfc3339(), "2026-11-01T01:30:00-04:00", "the earlier of the two");
        assert!(form("2026-13-01", "09:00").instant().is_err());
        assert!(WhenForm { time_zone: "Mars/Olympus".into(), ..form("2026-07-01", "09:00") }.instant().is_err());
    }
}
