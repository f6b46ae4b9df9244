//! When to try again: which answers are transient, exponential backoff with
//! jitter, and the server's `Retry-After` (`docs/sync-protocol.md`,
//! "Errors and retrying").

use chrono::{DateTime, Duration, Utc};

use super::transport::{HttpResponse, TransportError};
use super::SyncError;

/// First retry delay after a transient failure.
pub const INITIAL_BACKOFF: Duration = Duration::seconds(2);
/// Longest delay between automatic attempts.
pub const MAX_BACKOFF: Duration = Duration::minutes(15);

/// When to try again after `failures` consecutive transient failures:
/// exponential from [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`], with "equal
/// jitter" (half fixed, half random from `jitter` in 0..1), and never before
/// the server's `Retry-After`.
pub fn next_attempt(
    now: DateTime<Utc>,
    failures: u32,
    retry_after: Option<DateTime<Utc>>,
    jitter: f64,
) -> DateTime<Utc> {
    let exponent = failures.saturating_sub(1).min(20);
    let base_ms =
        INITIAL_BACKOFF.num_milliseconds().saturating_mul(1i64 << exponent).min(MAX_BACKOFF.num_milliseconds());
    let jittered_ms = base_ms / 2 + ((base_ms / 2) as f64 * jitter.clamp(0.0, 1.0)) as i64;
    let backoff = now + Duration::milliseconds(jittered_ms);
    retry_after.map_or(backoff, |server| backoff.max(server))
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(now + Duration::seconds(i64::from(seconds)));
    }
    DateTime::parse_from_rfc2822(value).ok().map(|t| t.with_timezone(&Utc))
}

/// Passes a 2xx response through and turns any other status into its error.
pub(super) fn check_status(response: HttpResponse) -> Result<HttpResponse, SyncError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let retry_after = response.header("retry-after").and_then(|v| parse_retry_after(v, Utc::now()));
    let message = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Err(match status {
        401 => SyncError::Unauthorized,
        403 => SyncError::Forbidden,
        410 => SyncError::Revoked,
        // 408: the body did not arrive in time (a slow network): try again later.
        408 | 429 | 500..=599 => SyncError::ServerBusy { status, retry_after },
        _ => SyncError::Rejected { status, message },
    })
}

/// A transport failure: no answer arrived.
pub(super) fn network(error: TransportError) -> SyncError {
    SyncError::Network { reason: error.reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn slow_busy_and_failing_answers_are_retried_later_and_others_are_not() {
        let answer = |status| HttpResponse { status, headers: Vec::new(), body: Vec::new() };
        for status in [408, 429, 500, 503] {
            assert!(matches!(check_status(answer(status)), Err(SyncError::ServerBusy { .. })), "{status}");
        }
        for status in [400, 413, 422] {
            assert!(matches!(check_status(answer(status)), Err(SyncError::Rejected { .. })), "{status}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let now = at("2026-05-01T12:00:00Z");
        assert_eq!(next_attempt(now, 1, None, 0.0), now + Duration::seconds(1));
        assert_eq!(next_attempt(now, 1, None, 1.0), now + Duration::seconds(2));
        assert_eq!(next_attempt(now, 3, None, 1.0), now + Duration::seconds(8));
        assert_eq!(next_attempt(now, 30, None, 1.0), now + MAX_BACKOFF);
        assert_eq!(next_attempt(now, 30, None, 0.0), now + MAX_BACKOFF / 2);
    }

    #[test]
    fn retry_after_is_honoured_when_later() {
        let now = at("2026-05-01T12:00:00Z");
        let server = now + Duration::seconds(120);
        assert_eq!(next_attempt(now, 1, Some(server), 1.0), server);
        assert_eq!(next_attempt(now, 9, Some(now + Duration::seconds(1)), 1.0), now + Duration::seconds(512));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = at("2026-05-01T12:00:00Z");
        assert_eq!(parse_retry_after("30", now), Some(now + Duration::seconds(30)));
        assert_eq!(parse_retry_after("Fri, 01 May 2026 12:05:00 GMT", now), Some(at("2026-05-01T12:05:00Z")));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
