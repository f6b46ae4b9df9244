//! Instants and statuses in the dashboard's words: the one time rule every
//! page follows, and the ages and labels the lists share.

use chrono::{DateTime, Utc};
use katcore::checklist::ReadinessStatus;

use crate::state::AppState;

/// An instant in the dashboard's zone, e.g. `Tue 1 Dec 2026 14:05`.
pub(crate) fn shown(state: &AppState, at: DateTime<Utc>) -> String {
    at.with_timezone(state.time_zone()).format("%a %-d %b %Y %H:%M").to_string()
}

/// A readiness status in words, and its badge class.
pub(super) fn readiness_label(status: ReadinessStatus) -> &'static str {
    match status {
        ReadinessStatus::Ready => "ready",
        ReadinessStatus::Wait => "wait",
        ReadinessStatus::Incomplete => "incomplete",
        ReadinessStatus::Blocked => "blocked",
    }
}

/// How long ago `last` was, for a nurse weighing how current a client's
/// data is: "synced just now", "synced 5 min ago", "synced 3 h ago",
/// "synced 2 d ago", or "never synced".
pub(crate) fn sync_age(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(last) = last else { return "never synced".to_owned() };
    let minutes = (now - last).num_minutes().max(0);
    match minutes {
        0 => "synced just now".to_owned(),
        1..=59 => format!("synced {minutes} min ago"),
        60..=2879 => format!("synced {} h ago", minutes / 60),
        _ => format!("synced {} d ago", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_age_of_a_sync_reads_in_the_unit_a_nurse_needs() {
        let now = Utc.with_ymd_and_hms(2026, 5, 10, 12, 0, 0).unwrap();
        let ago = |minutes| Some(now - chrono::Duration::minutes(minutes));
        assert_eq!(sync_age(None, now), "never synced");
        assert_eq!(sync_age(ago(0), now), "synced just now");
        assert_eq!(sync_age(ago(5), now), "synced 5 min ago");
        assert_eq!(sync_age(ago(185), now), "synced 3 h ago");
        assert_eq!(sync_age(ago(3 * 1440 + 10), now), "synced 3 d ago");
        assert_eq!(sync_age(Some(now + chrono::Duration::minutes(3)), now), "synced just now", "a clock step back");
    }
}
