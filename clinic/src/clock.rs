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
//!   one edge) and stays in the tables, placed at its receipt and marked.
//! - Every entry's receipt: the first time the clinic stored a change that
//!   wrote it (`entry_receipts`, written with the change in one transaction;
//!   [`crate::storage::ClinicStorage::entry_receipts`]). A device cannot
//!   write it. The dashboard places an entry dated ahead at its receipt.
//! - The score baseline is the check-in the clinic received first
//!   (`katcore::record`, `baselines.rs`), so a check-in a phone backdates
//!   cannot become the baseline and hide a later rise.
//! - Each device's clock offset is measured at each sync from the time it
//!   sends ([`DEVICE_TIME_HEADER`], [`device_offset`]) and shown on the
//!   client page, in the clinician API's device list and in `/metrics`.

use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};

pub(crate) use katcore::sync::DEVICE_TIME_HEADER;

/// How far ahead of the server's clock a writer's time may be and still be
/// taken as written (phones drift; a minute or two is common).
pub(crate) const FUTURE_TOLERANCE: Duration = Duration::minutes(10);

/// How the dashboard marks an entry dated ahead of the clinic's clock.
const DATED_AHEAD: &str = "dated ahead of the clinic's clock by the client's device";

/// `text` marked as dated ahead by its device, at `dated` (as the page
/// shows instants), and shown where the clinic received it: the one mark
/// of the alerts and the lists.
pub(crate) fn marked_ahead(text: &str, dated: &str) -> String {
    format!("{text} ({DATED_AHEAD}: {dated}; shown when received)")
}

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

/// How far the device's clock is ahead of `now` (negative: behind), in
/// milliseconds, from the time it sent in [`DEVICE_TIME_HEADER`] (Unix
/// milliseconds); `None` when the header is absent or not such a time. The
/// request's transit time counts as the device being behind.
pub(crate) fn device_offset(headers: &HeaderMap, now: DateTime<Utc>) -> Option<i64> {
    let sent: i64 = headers.get(DEVICE_TIME_HEADER)?.to_str().ok()?.trim().parse().ok()?;
    DateTime::<Utc>::from_timestamp_millis(sent)?;
    sent.checked_sub(now.timestamp_millis())
}

/// A clock offset in words: "3 min 5 s ahead", "40 s behind", "in step"
/// (within a second).
pub(crate) fn offset_text(offset_ms: i64) -> String {
    let seconds = offset_ms.unsigned_abs() / 1000;
    if seconds == 0 {
        return "in step".to_owned();
    }
    let way = if offset_ms > 0 { "ahead" } else { "behind" };
    let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    let amount = match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{minutes} min {secs} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    };
    format!("{amount} {way}")
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

    #[test]
    fn the_device_offset_is_its_sent_time_minus_the_clinics() {
        let now = DateTime::parse_from_rfc3339("2026-05-01T12:00:00Z").unwrap().to_utc();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(DEVICE_TIME_HEADER, value.parse().unwrap());
            device_offset(&headers, now)
        };
        assert_eq!(with(&(now.timestamp_millis() + 95_000).to_string()), Some(95_000));
        assert_eq!(with(&(now.timestamp_millis() - 2_000).to_string()), Some(-2_000));
        assert_eq!(device_offset(&HeaderMap::new(), now), None, "an older app sends no time");
        for bad in ["soon", "", "1e12", "99999999999999999999", "-9223372036854775808"] {
            assert_eq!(with(bad), None, "{bad:?} is not a time");
        }
    }

    #[test]
    fn an_offset_reads_in_the_largest_units_that_matter() {
        assert_eq!(offset_text(400), "in step");
        assert_eq!(offset_text(-40_000), "40 s behind");
        assert_eq!(offset_text(185_000), "3 min 5 s ahead");
        assert_eq!(offset_text(-(2 * 3600 + 60) * 1000), "2 h 1 min behind");
        assert_eq!(offset_text(730 * 86_400_000 + 3_600_000), "730 d 1 h ahead");
    }
}
