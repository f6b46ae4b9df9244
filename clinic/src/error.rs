//! The one error type every handler returns.
//!
//! An [`ApiError`] becomes a `4xx`/`5xx` response with the body
//! `{"error": "<code>", "message": "<words>"}`. Client errors are logged at
//! debug level by code only; server errors log their internal cause (never a
//! token, a body or record content: storage and record errors carry none)
//! and answer a generic message.

use std::fmt::Display;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use katcore::record::RecordError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage::StorageError;

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_code` or `history_missing`.
    pub error: String,
    /// What went wrong, in words; never contains tokens or record content.
    pub message: String,
    /// For `write_refused`: the record key (or `<key>/<field>`) a refused
    /// write touched, `(actor)` or `(changes)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For `write_refused`: the rule it broke, e.g. `delete_op` (see docs/record-format.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// An error answered to the caller as clean JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    internal: Option<String>,
    /// For `write_refused`: the key and the rule (boxed: errors stay small).
    refused: Option<Box<(String, &'static str)>>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after: None, internal: None, refused: None }
    }

    /// What went wrong, in words (never a token or record content; generic
    /// for server errors).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `400` with a specific code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `422 write_refused`: a sync's changes make a write the device may not
    /// make; the body names the key and the rule, never a value.
    pub fn write_refused(key: &str, rule: &'static str, reason: &str) -> Self {
        let mut error = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "write_refused",
            format!("{key}: {reason} ({rule}); nothing of this request was stored"),
        );
        error.refused = Some(Box::new((key.to_owned(), rule)));
        error
    }

    /// The rule a `write_refused` error names.
    pub fn refused_rule(&self) -> Option<&'static str> {
        self.refused.as_ref().map(|refused| refused.1)
    }

    /// `401`: the token is missing, malformed or unknown.
    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    /// `403`: the token is valid but may not reach this resource.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// `404` for an unknown resource (or one of another clinic).
    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no such {what}"))
    }

    /// `409` with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// `409 history_missing`: the device must resend its whole document.
    pub fn history_missing() -> Self {
        ApiError::conflict(
            "history_missing",
            "the server lacks changes this request depends on; resend with empty `since` and the whole document",
        )
    }

    /// `410`: the device was revoked.
    pub fn device_revoked() -> Self {
        ApiError::new(StatusCode::GONE, "device_revoked", "this device was revoked; enroll again")
    }

    /// `413`: the body exceeds `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body exceeds {limit} bytes"))
    }

    /// `503` with a `Retry-After` of `seconds`: the server or its database
    /// is busy (or cannot write); devices back off and retry.
    pub fn busy(seconds: u64) -> Self {
        let mut error =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", format!("the server is busy; retry in {seconds} s"));
        error.retry_after = Some(seconds);
        error
    }

    /// Whether another writer stored a change of the record first
    /// ([`StorageError::Conflict`]): the operation is redone on the
    /// reloaded record.
    pub(crate) fn is_record_conflict(&self) -> bool {
        self.code == "record_busy"
    }

    /// `429` with a `Retry-After` of `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many failed attempts; retry in {seconds} s"),
        );
        error.retry_after = Some(seconds);
        error
    }

    /// `500`: `cause` is logged, never sent.
    pub fn internal(cause: impl Display) -> Self {
        let mut error = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error");
        error.internal = Some(cause.to_string());
        error
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(
                status = self.status.as_u16(),
                cause = self.internal.as_deref().unwrap_or(""),
                "request failed"
            );
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, "request refused");
        }
        let (key, rule) = match self.refused.map(|refused| *refused) {
            Some((key, rule)) => (Some(key), Some(rule.to_owned())),
            None => (None, None),
        };
        let body = ErrorBody { error: self.code.to_owned(), message: self.message, key, rule };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(cause) => {
                tracing::warn!(cause, "the database cannot write now");
                ApiError::busy(DATABASE_RETRY_AFTER)
            }
            StorageError::Conflict => {
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "record_busy",
                    "the record is being changed by another request; retry in 1 s",
                );
                error.retry_after = Some(1);
                error
            }
            other => ApiError::internal(other),
        }
    }
}

/// Seconds a client is asked to wait when the database cannot write.
pub(crate) const DATABASE_RETRY_AFTER: u64 = 5;

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::NotFound { kind, .. } => ApiError::not_found(kind),
            RecordError::InvalidInput { .. } => ApiError::bad_request("invalid_input", e.to_string()),
            RecordError::NotPermitted { .. } => ApiError::forbidden(e.to_string()),
            RecordError::Malformed { .. } => ApiError::bad_request("malformed_changes", e.to_string()),
            RecordError::Refused(violation) => {
                ApiError::write_refused(&violation.key, violation.rule.code(), &violation.reason)
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("a background task failed: {e}"))
    }
}

/// The fallback for unknown routes: `404` JSON.
pub(crate) async fn no_route() -> ApiError {
    ApiError::not_found("route")
}

/// The fallback for a known route with the wrong method: `405` JSON.
pub(crate) async fn wrong_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}
