//! What comes after a session: when driving is acceptable again, when to
//! check for side effects, and the integration prompts of the following days.
//!
//! Wall-clock times ("08:00 the next morning", "19:00 on day 3") are resolved
//! in the client's IANA time zone, so they stay right across daylight-saving
//! changes. A wall time that occurs twice (clocks going back) resolves to the
//! later instant; one that does not exist (clocks going forward) resolves as
//! if the clock had not changed yet, which lands after the gap (02:30 in a
//! 02:00→03:00 jump becomes 03:30).

use crate::zone::Zone;
use chrono::{DateTime, Days, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::pack::Pack;

/// An integration prompt is never due sooner than this after the session ends.
pub const MIN_PROMPT_DELAY: Duration = Duration::hours(1);

/// The IANA time zone name was not recognised.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("time zone {0:?} is not a known IANA time zone name (e.g. America/New_York)")]
pub struct UnknownTimeZone(pub String);

/// Parses an IANA time zone name such as `America/New_York`.
///
/// # Errors
/// [`UnknownTimeZone`] for a name not in the time zone database.
pub fn parse_time_zone(name: &str) -> Result<Zone, UnknownTimeZone> {
    Zone::named(name.trim()).ok_or_else(|| UnknownTimeZone(name.to_owned()))
}

/// A prompt due at an instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledPrompt {
    /// The pack's prompt id.
    pub id: String,
    /// When it is due, with the client's local UTC offset at that instant.
    pub at: DateTime<FixedOffset>,
    /// The prompt in the requested locale.
    pub text: String,
}

/// The plan for the time after one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aftercare {
    /// When the session ended.
    pub session_end: DateTime<FixedOffset>,
    /// The earliest time driving (or cycling, or machinery) is acceptable:
    /// the pack's hour on the morning after the session.
    pub driving_ok_from: DateTime<FixedOffset>,
    /// Side-effect check-ins, in time order.
    pub side_effect_check_ins: Vec<ScheduledPrompt>,
    /// Integration prompts, in time order.
    pub integration: Vec<ScheduledPrompt>,
}

/// Plans the time after a session that ended at `end`, for a client in `tz`.
pub fn plan(pack: &Pack, end: DateTime<Utc>, tz: &Zone, locale: &str) -> Aftercare {
    let local = |t: DateTime<Utc>| t.with_timezone(tz).fixed_offset();
    let end_date = end.with_timezone(tz).date_naive();

    let driving_hour =
        NaiveTime::from_hms_opt(u32::from(pack.thresholds.driving_local_hour), 0, 0).unwrap_or(NaiveTime::MIN);
    let driving_ok_from = at_local(tz, next_day(end_date, 1), driving_hour);

    let mut side_effect_check_ins: Vec<ScheduledPrompt> = pack
        .side_effect_check_ins
        .iter()
        .map(|p| ScheduledPrompt {
            id: p.id.clone(),
            at: local(end + Duration::minutes(i64::from(p.after_minutes))),
            text: pack.text(&p.text, locale).to_owned(),
        })
        .collect();
    side_effect_check_ins.sort_by_key(|p| p.at);

    let mut integration: Vec<ScheduledPrompt> = pack
        .integration
        .iter()
        .map(|p| {
            let time = crate::pack::parse_local_time(&p.local_time).unwrap_or(NaiveTime::MIN);
            let at = at_local(tz, next_day(end_date, p.day), time).max(end + MIN_PROMPT_DELAY);
            ScheduledPrompt { id: p.id.clone(), at: local(at), text: pack.text(&p.text, locale).to_owned() }
        })
        .collect();
    integration.sort_by_key(|p| p.at);

    Aftercare { session_end: local(end), driving_ok_from: local(driving_ok_from), side_effect_check_ins, integration }
}

fn next_day(date: NaiveDate, days: u8) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days))).unwrap_or(date)
}

/// The instant of a local wall-clock time, resolved as the module explains.
fn at_local(tz: &Zone, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let wall = NaiveDateTime::new(date, time);
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(_, later) => later.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: read the wall time with the offset in force before it.
            let before = tz.offset_from_utc_datetime(&(wall - Duration::days(1)));
            let offset = chrono::Offset::fix(&before);
            (wall - Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ny() -> Zone {
        parse_time_zone("America/New_York").unwrap()
    }

    #[test]
    fn driving_is_ok_the_next_morning_at_the_pack_hour() {
        let plan = plan(&Pack::default_pack(), utc("2026-05-01T21:00:00Z"), &ny(), "en");
        // 17:00 EDT on 1 May → 08:00 EDT on 2 May.
        assert_eq!(plan.driving_ok_from.to_rfc3339(), "2026-05-02T08:00:00-04:00");
        assert_eq!(plan.session_end.to_rfc3339(), "2026-05-01T17:00:00-04:00");
    }

    #[test]
    fn a_session_ending_after_midnight_still_needs_a_full_night() {
        // Ends 00:30 local on 2 May: the next morning is 3 May, not 7.5 hours later.
        let plan = plan(&Pack::default_pack(), utc("2026-05-02T04:30:00Z"), &ny(), "en");
        assert_eq!(plan.driving_ok_from.to_rfc3339(), "2026-05-03T08:00:00-04:00");
    }

    #[test]
    fn driving_time_is_right_across_spring_forward() {
        // US clocks go forward at 02:00 on 8 March 2026. A session ending at
        // 20:00 EST on 7 March clears at 08:00 EDT: 11 hours later, not 12.
        let end = utc("2026-03-08T01:00:00Z");
        let plan = plan(&Pack::default_pack(), end, &ny(), "en");
        assert_eq!(plan.driving_ok_from.to_rfc3339(), "2026-03-08T08:00:00-04:00");
        assert_eq!(plan.driving_ok_from.with_timezone(&Utc) - end, Duration::hours(11));
    }

    #[test]
    fn driving_time_is_right_across_fall_back() {
        // US clocks go back at 02:00 on 1 November 2026: 13 hours from 20:00 EDT.
        let end = utc("2026-11-01T00:00:00Z");
        let plan = plan(&Pack::default_pack(), end, &ny(), "en");
        assert_eq!(plan.driving_ok_from.to_rfc3339(), "2026-11-01T08:00:00-05:00");
        assert_eq!(plan.driving_ok_from.with_timezone(&Utc) - end, Duration::hours(13));
    }

    #[test]
    fn wall_times_in_a_gap_or_overlap_resolve_after_the_change() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let gap = at_local(&ny(), date, NaiveTime::from_hms_opt(2, 30, 0).unwrap());
        assert_eq!(gap.with_timezone(&ny()).fixed_offset().to_rfc3339(), "2026-03-08T03:30:00-04:00");
        let date = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let overlap = at_local(&ny(), date, NaiveTime::from_hms_opt(1, 30, 0).unwrap());
        assert_eq!(overlap.with_timezone(&ny()).fixed_offset().to_rfc3339(), "2026-11-01T01:30:00-05:00");
    }

    #[test]
    fn integration_prompts_follow_the_pack_days_in_local_time() {
        let pack = Pack::default_pack();
        let end = utc("2026-05-01T19:00:00Z"); // 15:00 EDT
        let plan = plan(&pack, end, &ny(), "es");
        assert_eq!(plan.integration.len(), pack.integration.len());
        for prompt in &plan.integration {
            let spec = pack.integration.iter().find(|p| p.id == prompt.id).unwrap();
            let expected_date = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap() + Days::new(u64::from(spec.day));
            assert_eq!(prompt.at.date_naive(), expected_date, "{}", prompt.id);
            assert_eq!(prompt.at.format("%H:%M").to_string(), spec.local_time, "{}", prompt.id);
            assert_eq!(prompt.text, spec.text.try_get("es").unwrap());
        }
        assert!(plan.integration.windows(2).all(|w| w[0].at <= w[1].at));
        let last = plan.integration.last().unwrap();
        assert!(last.at.with_timezone(&Utc) - end <= Duration::days(15));
    }

    #[test]
    fn a_same_day_prompt_is_never_due_before_the_session_is_over() {
        let pack = Pack::default_pack();
        // Ends 22:00 EDT, after the day-0 evening prompt's wall time.
        let end = utc("2026-05-02T02:00:00Z");
        let plan = plan(&pack, end, &ny(), "en");
        assert!(plan.integration.iter().all(|p| p.at.with_timezone(&Utc) >= end + MIN_PROMPT_DELAY));
    }

    #[test]
    fn side_effect_check_ins_are_minutes_after_the_end() {
        let pack = Pack::default_pack();
        let end = utc("2026-05-01T19:00:00Z");
        let plan = plan(&pack, end, &ny(), "en");
        for prompt in &plan.side_effect_check_ins {
            let spec = pack.side_effect_check_ins.iter().find(|p| p.id == prompt.id).unwrap();
            assert_eq!(prompt.at.with_timezone(&Utc), end + Duration::minutes(i64::from(spec.after_minutes)));
        }
    }

    #[test]
    fn unknown_time_zones_are_named() {
        assert_eq!(parse_time_zone("Mars/Olympus").unwrap_err(), UnknownTimeZone("Mars/Olympus".into()));
    }
}
