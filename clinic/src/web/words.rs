//! Instants and statuses in the dashboard's words: the one time rule every
//! page follows, and the ages and labels the lists share.

use chrono::{DateTime, Utc};
use katcore::checklist::ReadinessStatus;
use katcore::zone::Zone;

use crate::state::AppState;

/// An instant by the dashboard's one time rule: in the clinic's configured
/// zone, labelled with that zone's abbreviation at the instant, e.g.
/// `Tue 1 Dec 2026 14:05 EST`. Every time on every page is shown so.
pub(crate) fn shown(state: &AppState, at: DateTime<Utc>) -> String {
    shown_in(state.time_zone(), at)
}

/// `at` in `zone`, labelled with the zone's abbreviation then.
pub(super) fn shown_in(zone: &Zone, at: DateTime<Utc>) -> String {
    format!("{} {}", at.with_timezone(zone).format("%a %-d %b %Y %H:%M"), zone.abbreviation_at(at))
}

/// A session's start by the time rule, and, when the client's zone
/// (`client_zone`, an IANA name) reads it differently, the client's own
/// wall-clock time too, labelled: `Wed 9 Dec 2026 11:00 EST (10:00 CST,
/// the client's time)`.
pub(crate) fn shown_for_client(state: &AppState, at: DateTime<Utc>, client_zone: &str) -> String {
    with_clients_time(state.time_zone(), at, client_zone)
}

/// [`shown_for_client`] with the clinic's zone `clinic`.
fn with_clients_time(clinic: &Zone, at: DateTime<Utc>, client_zone: &str) -> String {
    let ours = shown_in(clinic, at);
    let Some(zone) = Zone::named(client_zone) else { return ours };
    let theirs = shown_in(&zone, at);
    if theirs == ours {
        return ours;
    }
    let local = if at.with_timezone(&zone).date_naive() == at.with_timezone(clinic).date_naive() {
        format!("{} {}", at.with_timezone(&zone).format("%H:%M"), zone.abbreviation_at(at))
    } else {
        theirs
    };
    format!("{ours} ({local}, the client's time)")
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

    #[test]
    fn every_time_is_in_one_labelled_zone_and_a_session_adds_the_clients_own() {
        let york = Zone::named("America/New_York").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 12, 9, 16, 0, 0).unwrap();
        assert_eq!(shown_in(&york, at), "Wed 9 Dec 2026 11:00 EST");
        let summer = Utc.with_ymd_and_hms(2026, 7, 9, 15, 0, 0).unwrap();
        assert_eq!(shown_in(&york, summer), "Thu 9 Jul 2026 11:00 EDT");
        assert_eq!(shown_in(&Zone::named("UTC").unwrap(), at), "Wed 9 Dec 2026 16:00 UTC");
        let chicago = "America/Chicago";
        assert_eq!(with_clients_time(&york, at, chicago), "Wed 9 Dec 2026 11:00 EST (10:00 CST, the client's time)");
        assert_eq!(with_clients_time(&york, at, "America/Detroit"), "Wed 9 Dec 2026 11:00 EST", "same time, said once");
        let late = Utc.with_ymd_and_hms(2026, 12, 10, 4, 30, 0).unwrap();
        let los_angeles = with_clients_time(&york, late, "America/Los_Angeles");
        assert_eq!(los_angeles, "Wed 9 Dec 2026 23:30 EST (20:30 PST, the client's time)");
        let tokyo = with_clients_time(&york, late, "Asia/Tokyo");
        assert_eq!(
            tokyo, "Wed 9 Dec 2026 23:30 EST (Thu 10 Dec 2026 13:30 JST, the client's time)",
            "another day: in full"
        );
    }
}
