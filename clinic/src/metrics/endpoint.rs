//! `GET /metrics` (the counters of [`super::Metrics`] and the record
//! cache's gauges, behind the optional metrics token) and the middleware
//! that counts error responses.

use std::fmt::Write as _;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::auth::hash_secret;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /metrics`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 401, description = "The server requires its metrics token (`--metrics-token`) and it was \
                       missing or wrong", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.metrics_token() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compared by hash: the time taken says nothing about the token.
        if hash_secret(presented.trim()) != hash_secret(expected) {
            return ApiError::unauthorized().into_response();
        }
    }
    let mut text = state.metrics().render();
    let cache = state.cache_size();
    for (name, help, value) in [
        ("katcore_clinic_record_cache_records", "Care records loaded in memory.", cache.records),
        ("katcore_clinic_record_cache_bytes", "Estimated memory of the loaded care records.", cache.bytes),
    ] {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    for (name, help, value) in [
        (
            "katcore_clinic_record_stale_reloads_total",
            "Cached care records found older than the stored one (another instance wrote) and loaded again.",
            cache.stale_reloads,
        ),
        (
            "katcore_clinic_record_conflicts_redone_total",
            "Record operations redone because another instance stored a change of the record first.",
            cache.conflicts_redone,
        ),
    ] {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Middleware counting every error response by status.
pub(crate) async fn count_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        state.metrics().observe_error(status);
    }
    response
}
