//! The clinic's own time: how far a writer's clock is trusted.
//!
//! Every time in a record entry is the writing device's clock, which may be
//! wrong (a phone set years ahead) or forged. A time more than
//! [`FUTURE_TOLERANCE`] ahead of the server's clock when it meets the entry
//! is not credible: the server puts its own time in its place where order
//! matters, and marks the entry where it is shown.
//!
//! - An alert's time (`alerts.at`) is the item's time, or the time the
//!   server raised it when the item's time is more than the tolerance ahead
//!   of that (`replica.rs`): a phone's future date never pins an alert to
//!   the top of the list.
//! - The dashboard's plots span the client's times up to the tolerance
//!   ahead of now; an entry dated later is left off the plot (which would
//!   otherwise stretch into the future and squeeze every real reading into
//!   one edge) and stays in the tables, placed at now and marked.
//!
//! Receipt times of every entry, the device's measured clock offset and a
//! baseline that ignores backdating are not built yet (issue 28, item 4).

use chrono::{DateTime, Duration, Utc};

/// How far ahead of the server's clock a writer's time may be and still be
/// taken as written (phones drift; a minute or two is common).
pub(crate) const FUTURE_TOLERANCE: Duration = Duration::minutes(10);

/// How the dashboard marks an entry dated ahead of the clinic's clock.
pub(crate) const DATED_AHEAD: &str = "dated ahead of the clinic's clock by the client's device";

/// Whether `at` is more than the tolerance ahead of `now`.
pub(crate) fn ahead(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at > now + FUTURE_TOLERANCE
}

/// `at`, or `received` when `at` is more than the tolerance ahead of it.
pub(crate) fn credible(at: DateTime<Utc>, received: DateTime<Utc>) -> DateTime<Utc> {
    if ahead(at, received) {
        received
    } else {
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_within_the_tolerance_is_kept_and_one_beyond_it_replaced() {
        let now = DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z").unwrap().to_utc();
        assert_eq!(credible(now + Duration::minutes(10), now), now + Duration::minutes(10));
        assert_eq!(credible(now - Duration::days(400), now), now - Duration::days(400), "backdating is not detectable");
        assert_eq!(credible(now + Duration::minutes(11), now), now);
        assert_eq!(credible(now + Duration::days(730), now), now);
    }
}
