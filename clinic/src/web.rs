//! The care team's dashboard: server-rendered pages over the same storage,
//! authorization and actions as the clinician API.
//!
//! Everything lives under `/dashboard` and is plain HTML (askama templates
//! in `clinic/templates`, compiled in and escaped), one stylesheet, SVG
//! plots drawn on the server ([`plots`]) and no script at all, so it works
//! with a keyboard, a screen reader and a locked-down browser. Pages:
//!
//! | path | what |
//! |---|---|
//! | `/dashboard` | open alerts by client, most urgent first, filtered and paginated, each acknowledged with an outcome; recently acknowledged ones, each reopenable |
//! | `/dashboard/clients` | clients with next session, its readiness, last sync, open alerts; filter by label; add one |
//! | `/dashboard/clients/{id}` | a client: alerts, plots, sessions with their decisions, journal, notes, devices, actions |
//! | `/dashboard/packs` | the clinic's signed pack, each device's version, publishing |
//! | `/dashboard/signin` | sign-in ([`session`]) |
//!
//! Every action (acknowledge, reopen, schedule, move, note, enrollment code,
//! revoke, publish) is the API's own function, so the rules are the same:
//! another clinic's client is `404`. Forms are `POST` with the session's
//! CSRF token, answered `303` to the page they came from with a `done`
//! word (never data) to confirm. No health data goes into a URL, and
//! responses carry a strict Content-Security-Policy and `no-store`.

mod actions;
mod alert_rows;
mod alerts_page;
mod client_page;
mod pages;
mod plots;
mod session;
mod words;

use askama::Template;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub use session::{hash_password, normalize_login, PasswordError, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// Largest form body (a signed pack pasted into the publish form is the
/// largest; packs are at most 4 MiB, URL-encoding can triple that).
pub(crate) const MAX_FORM_BODY: usize = 12 * 1024 * 1024;

/// The dashboard's stylesheet.
const STYLESHEET: &str = include_str!("../static/dashboard.css");

/// The dashboard's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { session::see_other("/dashboard") }))
        .route("/dashboard", get(alerts_page::alerts))
        .route("/dashboard/signin", get(session::signin_page).post(session::sign_in))
        .route("/dashboard/signout", post(session::sign_out))
        .route("/dashboard/alerts/{alert_id}/ack", post(actions::acknowledge))
        .route("/dashboard/alerts/{alert_id}/reopen", post(actions::reopen))
        .route("/dashboard/clients", get(pages::clients).post(actions::create_client))
        .route("/dashboard/clients/{client_id}", get(client_page::client))
        .route("/dashboard/clients/{client_id}/record.json", get(client_page::record_json))
        .route("/dashboard/clients/{client_id}/fhir.json", get(client_page::fhir_json))
        .route("/dashboard/clients/{client_id}/sessions", post(actions::schedule))
        .route("/dashboard/clients/{client_id}/sessions/{session_id}", post(actions::move_session))
        .route("/dashboard/clients/{client_id}/notes", post(actions::note))
        .route("/dashboard/clients/{client_id}/enrollment-code", post(actions::enrollment_code))
        .route("/dashboard/clients/{client_id}/devices/{device_id}/revoke", post(actions::revoke))
        .route("/dashboard/packs", get(pages::packs).post(actions::publish))
        .route("/dashboard/static/dashboard.css", get(stylesheet))
        // Any other dashboard address: the dashboard's own 404 page, with its
        // security headers (not the API's JSON).
        .route("/dashboard/{*rest}", any(no_page))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .layer(axum::middleware::map_response(protect))
}

/// Headers every dashboard response carries: no script, no framing, no
/// caching of health data, no referrer.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// `GET /dashboard/static/dashboard.css`.
async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A rendered template as an HTML response (`500` if rendering failed).
pub(crate) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => WebError::from(ApiError::internal(format!("template: {e}"))).into_response(),
    }
}

/// An error shown as a page: the API's error, in words, with a way back.
#[derive(Debug)]
pub(crate) struct WebError(ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

impl From<crate::storage::StorageError> for WebError {
    fn from(e: crate::storage::StorageError) -> Self {
        WebError(ApiError::from(e))
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    /// The HTTP status, e.g. `404 Not Found`.
    status: String,
    /// What went wrong.
    message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let page = ErrorPage {
            status: format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
            message: self.0.message().to_owned(),
        };
        let html = page.render().unwrap_or_else(|_| "An error happened.".to_owned());
        // The API's response logs the cause and sets `Retry-After`; keep
        // its headers, put the page in place of the JSON.
        let mut response = self.0.into_response();
        *response.body_mut() = axum::body::Body::from(html);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        response
    }
}

/// `404` page for a dashboard address that names no page.
async fn no_page() -> WebError {
    WebError(ApiError::not_found("page"))
}

/// `400` page for a form field that does not read.
pub(crate) fn bad_field(message: impl Into<String>) -> WebError {
    WebError(ApiError::new(StatusCode::BAD_REQUEST, "invalid_form", message))
}

#[cfg(test)]
mod tests {
    use super::STYLESHEET;

    /// The stylesheet's `--name: #rrggbb` colour.
    fn colour(name: &str) -> &'static str {
        let start = STYLESHEET.find(&format!("--{name}: #")).unwrap_or_else(|| panic!("no --{name}")) + name.len() + 4;
        &STYLESHEET[start..start + 7]
    }

    /// WCAG 2 contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |hex: &str| {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
                if c <= 0.039_28 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn status_words_and_the_focus_ring_are_legible() {
        // Each status word on its tint (`.status.*`): at least 4.5:1 (WCAG AA, text).
        for (name, tint) in [("ok", "#e6f4ee"), ("urgent", "#fff3e0"), ("muted", "#eef1f4"), ("crisis", "#fdecee")] {
            assert!(STYLESHEET.contains(&format!("background: {tint}; color: var(--{name})")), "{name} on {tint}");
            let ratio = contrast(colour(name), tint);
            assert!(ratio >= 4.5, "--{name} on {tint}: {ratio:.2}:1");
        }
        // The focus ring against the page: at least 3:1 (WCAG 2.2, focus appearance).
        assert!(STYLESHEET.contains(":focus-visible { outline: 3px solid var(--ink); outline-offset: 2px; }"));
        for page in ["#ffffff", colour("bg")] {
            let ratio = contrast(colour("ink"), page);
            assert!(ratio >= 3.0, "focus ring on {page}: {ratio:.2}:1");
        }
    }
}
