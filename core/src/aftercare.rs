//! What comes after a session: when driving is acceptable again, when to
//! check for side effects, and the integration prompts of the following days.
//!
//! Wall-clock times ("08:00 the next morning", "19:00 on day 3") are resolved
//! in the client's IANA time zone, so they stay right across daylight-saving
//! changes. A wall time that occurs twice (clocks going back) resolves to the
//! later instant; one that does not exist (clocks going forward) resolves as
//! if the clock had not changed yet, which lands after the gap (02:30 in a
//! 02:00→03:00 jump becomes 03:30).
//!
//! **Driving** is acceptable from the later of two instants: the first time
//! the pack's morning hour comes after the session's end, and the pack's
//! minimum interval (default 8 hours) of real elapsed time after the end.
//! The first alone would allow 7.5 hours after a session ending at 00:30,
//! or across a spring-forward night; the second alone would allow driving
//! in the small hours.
//!
//! **Quiet hours** (the pack's, default 22:00–07:00 local time) are the
//! client's night, and nothing is due inside them:
//! - the *first* side-effect check-in stays at its time even inside them,
//!   marked [`ScheduledPrompt::optional`]: it falls in the hours when side
//!   effects are most likely, while the monitor is still there and awake, and
//!   an app delivers it without sound so that a sleeping client is not woken;
//! - every other check-in or prompt due inside them is due at their end
//!   instead (its [`ScheduledPrompt::moved_from`] keeps the time it would
//!   have had), so the pack's texts must fit the morning after as well.
//!
//! Within each list prompts are strictly in time order, at least
//! [`PROMPT_SPACING`] apart (a moved prompt can meet another at the end of
//! the night; the later one waits). Moving takes a prompt at most to the
//! morning after its own day, so the default pack's schedule ends on day 14.

use crate::zone::Zone;
use chrono::{DateTime, Days, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::locale::Text;
use crate::pack::{parse_local_time, Pack, QuietHours};

/// An integration prompt is never due sooner than this after the session ends.
pub const MIN_PROMPT_DELAY: Duration = Duration::hours(1);

/// Two prompts of one list are never due closer together than this.
pub const PROMPT_SPACING: Duration = Duration::minutes(30);

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
    /// True for a check-in inside the quiet hours that is kept for a monitor
    /// who is awake: deliver it silently, and do not chase an answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// When the prompt would have been due had it not been moved out of
    /// the quiet hours (or away from another prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<DateTime<FixedOffset>>,
}

/// The plan for the time after one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aftercare {
    /// When the session ended.
    pub session_end: DateTime<FixedOffset>,
    /// The earliest time driving (or cycling, or machinery) is acceptable:
    /// the later of the pack's morning hour after the session and its
    /// minimum interval after the end (see the module documentation).
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
    let thresholds = &pack.thresholds;
    let night =
        thresholds.quiet_hours.as_ref().and_then(QuietHours::bounds).map(|(start, end)| Night { tz, start, end });

    let driving_hour =
        NaiveTime::from_hms_opt(u32::from(thresholds.driving_local_hour), 0, 0).unwrap_or(NaiveTime::MIN);
    let mut morning = at_local(tz, end_date, driving_hour);
    if morning <= end {
        morning = at_local(tz, next_day(end_date, 1), driving_hour);
    }
    let driving_ok_from = morning.max(end + Duration::hours(i64::from(thresholds.driving_min_hours)));

    let check_ins = pack
        .side_effect_check_ins
        .iter()
        .map(|p| Due { id: &p.id, at: end + Duration::minutes(i64::from(p.after_minutes)), text: &p.text })
        .collect();
    let prompts = pack
        .integration
        .iter()
        .map(|p| {
            let time = parse_local_time(&p.local_time).unwrap_or(NaiveTime::MIN);
            let at = at_local(tz, next_day(end_date, p.day), time).max(end + MIN_PROMPT_DELAY);
            Due { id: &p.id, at, text: &p.text }
        })
        .collect();
    let side_effect_check_ins = schedule(check_ins, night.as_ref(), true, &|t| pack.text(t, locale), &local);
    let integration = schedule(prompts, night.as_ref(), false, &|t| pack.text(t, locale), &local);

    Aftercare { session_end: local(end), driving_ok_from: local(driving_ok_from), side_effect_check_ins, integration }
}

/// The pack's quiet hours in one client's zone.
struct Night<'a> {
    tz: &'a Zone,
    start: NaiveTime,
    end: NaiveTime,
}

impl Night<'_> {
    /// Whether the instant `at` falls inside the quiet hours, in local time.
    fn contains(&self, at: DateTime<Utc>) -> bool {
        QuietHours::covers(self.start, self.end, at.with_timezone(self.tz).time())
    }

    /// The end of the quiet period `at` is in.
    fn end_after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let local = at.with_timezone(self.tz);
        // Before midnight in a period that wraps, it ends tomorrow.
        let date = if self.start > self.end && local.time() >= self.start {
            next_day(local.date_naive(), 1)
        } else {
            local.date_naive()
        };
        at_local(self.tz, date, self.end).max(at + Duration::minutes(1))
    }
}

/// A prompt of the pack and when it would be due, before the night is kept free.
struct Due<'a> {
    id: &'a str,
    at: DateTime<Utc>,
    text: &'a Text,
}

/// Where one prompt of a list lands.
struct Slot {
    at: DateTime<Utc>,
    optional: bool,
    moved_from: Option<DateTime<Utc>>,
}

/// One list's prompts in time order, placed by [`space`], in words and in
/// the client's local time.
fn schedule<'a>(
    mut due: Vec<Due<'a>>,
    night: Option<&Night<'_>>,
    keep_first: bool,
    words: &dyn Fn(&'a Text) -> &'a str,
    local: &dyn Fn(DateTime<Utc>) -> DateTime<FixedOffset>,
) -> Vec<ScheduledPrompt> {
    due.sort_by_key(|d| d.at);
    let wanted: Vec<DateTime<Utc>> = due.iter().map(|d| d.at).collect();
    space(&wanted, night, keep_first)
        .into_iter()
        .zip(due)
        .map(|(slot, d)| ScheduledPrompt {
            id: d.id.to_owned(),
            at: local(slot.at),
            text: words(d.text).to_owned(),
            optional: slot.optional,
            moved_from: slot.moved_from.map(local),
        })
        .collect()
}

/// Places a list's prompts (in time order) outside the quiet hours and
/// [`PROMPT_SPACING`] apart; with `keep_first`, a first prompt inside the
/// quiet hours stays and is optional.
fn space(due: &[DateTime<Utc>], night: Option<&Night<'_>>, keep_first: bool) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::with_capacity(due.len());
    for (i, &wanted) in due.iter().enumerate() {
        if i == 0 && keep_first && night.is_some_and(|n| n.contains(wanted)) {
            slots.push(Slot { at: wanted, optional: true, moved_from: None });
            continue;
        }
        let mut at = wanted;
        // Each turn moves `at` later; two turns settle it (spacing can push
        // a prompt into the night once, and the night's end is outside it),
        // and the bound keeps a malformed zone from looping.
        for _ in 0..4 {
            if let Some(previous) = slots.last() {
                at = at.max(previous.at + PROMPT_SPACING);
            }
            match night {
                Some(night) if night.contains(at) => at = night.end_after(at),
                _ => break,
            }
        }
        slots.push(Slot { at, optional: false, moved_from: (at != wanted).then_some(wanted) });
    }
    slots
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

    fn madrid() -> Zone {
        parse_time_zone("Europe/Madrid").unwrap()
    }

    fn driving(end: &str, tz: &Zone) -> (String, Duration) {
        let end = utc(end);
        let plan = plan(&Pack::default_pack(), end, tz, "en");
        (plan.driving_ok_from.to_rfc3339(), plan.driving_ok_from.with_timezone(&Utc) - end)
    }

    #[test]
    fn driving_is_ok_the_next_morning_at_the_pack_hour() {
        let plan = plan(&Pack::default_pack(), utc("2026-05-01T21:00:00Z"), &ny(), "en");
        // 17:00 EDT on 1 May → 08:00 EDT on 2 May.
        assert_eq!(plan.driving_ok_from.to_rfc3339(), "2026-05-02T08:00:00-04:00");
        assert_eq!(plan.session_end.to_rfc3339(), "2026-05-01T17:00:00-04:00");
    }

    #[test]
    fn driving_waits_for_the_morning_hour_and_the_minimum_interval_whichever_is_later() {
        // 23:59 and 00:00 are one minute apart, and so are their answers.
        assert_eq!(
            driving("2026-05-02T03:59:00Z", &ny()),
            ("2026-05-02T08:00:00-04:00".into(), Duration::minutes(481))
        );
        assert_eq!(driving("2026-05-02T04:00:00Z", &ny()), ("2026-05-02T08:00:00-04:00".into(), Duration::hours(8)));
        // Past midnight the 8 hours decide: 00:01 → 08:01, 00:30 → 08:30.
        assert_eq!(driving("2026-05-02T04:01:00Z", &ny()).0, "2026-05-02T08:01:00-04:00");
        assert_eq!(driving("2026-05-02T04:30:00Z", &ny()).0, "2026-05-02T08:30:00-04:00");
        // Ending at the morning hour itself, the next morning's is the one after it.
        assert_eq!(driving("2026-05-02T12:00:00Z", &ny()).0, "2026-05-03T08:00:00-04:00");
        // Ending at 07:59 (a night session), the 8 hours decide.
        assert_eq!(driving("2026-05-02T11:59:00Z", &ny()).0, "2026-05-02T15:59:00-04:00");
    }

    #[test]
    fn driving_counts_real_hours_across_spring_forward_in_two_zones() {
        // New York goes from 02:00 EST to 03:00 EDT on 8 March 2026: from
        // 23:30 EST, 08:00 EDT is only 7.5 hours away, so 08:30 it is.
        assert_eq!(driving("2026-03-08T04:30:00Z", &ny()), ("2026-03-08T08:30:00-04:00".into(), Duration::hours(8)));
        // Madrid goes from 02:00 CET to 03:00 CEST on 29 March 2026.
        let (at, after) = driving("2026-03-28T22:30:00Z", &madrid());
        assert_eq!((at.as_str(), after), ("2026-03-29T08:30:00+02:00", Duration::hours(8)));
        // From 23:00 the morning hour is 8 real hours away: it stands.
        let (at, after) = driving("2026-03-28T22:00:00Z", &madrid());
        assert_eq!((at.as_str(), after), ("2026-03-29T08:00:00+02:00", Duration::hours(8)));
        // An evening session: the morning decides, 11 real hours after 20:00 EST.
        assert_eq!(driving("2026-03-08T01:00:00Z", &ny()), ("2026-03-08T08:00:00-04:00".into(), Duration::hours(11)));
    }

    #[test]
    fn driving_across_fall_back_keeps_the_morning_hour() {
        // New York goes back from 02:00 EDT to 01:00 EST on 1 November 2026.
        assert_eq!(driving("2026-11-01T00:00:00Z", &ny()), ("2026-11-01T08:00:00-05:00".into(), Duration::hours(13)));
        // From 23:30 EDT, 08:00 EST is 9.5 real hours later.
        assert_eq!(driving("2026-11-01T03:30:00Z", &ny()).1, Duration::minutes(570));
        // Madrid goes back on 25 October 2026: from 00:30 CEST, 8 hours is 07:30 CET; 08:00 stands.
        assert_eq!(driving("2026-10-24T22:30:00Z", &madrid()).0, "2026-10-25T08:00:00+01:00");
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
            assert_eq!(prompt.moved_from, None);
        }
        assert!(plan.integration.windows(2).all(|w| w[0].at < w[1].at));
    }

    #[test]
    fn a_same_day_prompt_is_never_due_before_the_session_is_over() {
        let pack = Pack::default_pack();
        // Ends 20:00 EDT, after the day-0 evening prompt's wall time.
        let end = utc("2026-05-02T00:00:00Z");
        let plan = plan(&pack, end, &ny(), "en");
        assert!(plan.integration.iter().all(|p| p.at.with_timezone(&Utc) >= end + MIN_PROMPT_DELAY));
        assert_eq!(plan.integration[0].at.to_rfc3339(), "2026-05-01T21:00:00-04:00");
    }

    #[test]
    fn side_effect_check_ins_outside_the_night_are_minutes_after_the_end() {
        let pack = Pack::default_pack();
        // Ends 09:00 EDT: 10:00, 13:00 and 21:00 are all before 22:00.
        let end = utc("2026-05-01T13:00:00Z");
        let plan = plan(&pack, end, &ny(), "en");
        for prompt in &plan.side_effect_check_ins {
            let spec = pack.side_effect_check_ins.iter().find(|p| p.id == prompt.id).unwrap();
            assert_eq!(prompt.at.with_timezone(&Utc), end + Duration::minutes(i64::from(spec.after_minutes)));
            assert!(!prompt.optional && prompt.moved_from.is_none());
        }
    }

    fn times(prompts: &[ScheduledPrompt]) -> Vec<(String, bool, Option<String>)> {
        prompts
            .iter()
            .map(|p| {
                (
                    p.at.format("%d %H:%M").to_string(),
                    p.optional,
                    p.moved_from.map(|m| m.format("%d %H:%M").to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn a_late_evening_session_in_madrid_keeps_the_night_free() {
        // Ends 23:00 CEST on 1 May: the 1 h check-in (00:00) is kept for the
        // monitor, optional; the 4 h one (03:00) waits for 07:00; the
        // same-evening prompt (due 00:00 at the earliest) moves to the morning.
        let plan = plan(&Pack::default_pack(), utc("2026-05-01T21:00:00Z"), &madrid(), "es");
        assert_eq!(
            times(&plan.side_effect_check_ins),
            [
                ("02 00:00".into(), true, None),
                ("02 07:00".into(), false, Some("02 03:00".into())),
                ("02 11:00".into(), false, None),
            ]
        );
        assert_eq!(times(&plan.integration)[0], ("02 07:00".into(), false, Some("02 00:00".into())));
        assert_eq!(times(&plan.integration)[1], ("02 10:00".into(), false, None));
    }

    #[test]
    fn a_check_in_due_before_dawn_moves_to_the_end_of_the_night() {
        // Ends 17:00 EDT: 12 hours later is 05:00, moved to 07:00.
        let plan = plan(&Pack::default_pack(), utc("2026-05-01T21:00:00Z"), &ny(), "en");
        assert_eq!(times(&plan.side_effect_check_ins)[2], ("02 07:00".into(), false, Some("02 05:00".into())));
        // Ends 19:00 EDT: the 4 h (23:00) and 12 h (07:00) check-ins would meet at 07:00.
        let plan = super::plan(&Pack::default_pack(), utc("2026-05-01T23:00:00Z"), &ny(), "en");
        assert_eq!(
            times(&plan.side_effect_check_ins),
            [
                ("01 20:00".into(), false, None),
                ("02 07:00".into(), false, Some("01 23:00".into())),
                ("02 07:30".into(), false, Some("02 07:00".into())),
            ]
        );
    }

    #[test]
    fn the_edges_of_the_night() {
        let check_in = |end: &str, which: usize| {
            let p = &plan(&Pack::default_pack(), utc(end), &ny(), "en").side_effect_check_ins[which];
            (p.optional, p.moved_from.is_some(), p.at.format("%H:%M").to_string())
        };
        // The first check-in at 21:59 is an ordinary one; at 22:00 it is kept, optional.
        assert_eq!(check_in("2026-05-02T00:59:00Z", 0), (false, false, "21:59".into()));
        assert_eq!(check_in("2026-05-02T01:00:00Z", 0), (true, false, "22:00".into()));
        // The 4 h check-in at 06:59 moves to 07:00; at 07:00 it stays.
        assert_eq!(check_in("2026-05-02T06:59:00Z", 1), (false, true, "07:00".into()));
        assert_eq!(check_in("2026-05-02T07:00:00Z", 1), (false, false, "07:00".into()));
        // The 12 h check-in at 21:59 stays; at 22:00 it waits for the morning.
        assert_eq!(check_in("2026-05-01T13:59:00Z", 2), (false, false, "21:59".into()));
        assert_eq!(check_in("2026-05-01T14:00:00Z", 2), (false, true, "07:00".into()));
    }

    #[test]
    fn with_quiet_hours_off_nothing_moves() {
        let mut pack = (*Pack::default_pack()).clone();
        pack.thresholds.quiet_hours = None;
        let end = utc("2026-05-01T21:00:00Z");
        let plan = plan(&pack, end, &madrid(), "en");
        assert!(plan.side_effect_check_ins.iter().all(|p| !p.optional && p.moved_from.is_none()));
        assert_eq!(plan.side_effect_check_ins[1].at.format("%H:%M").to_string(), "03:00");
    }

    /// Every quarter hour of two days around each daylight-saving change
    /// of 2026, in New York and Madrid.
    fn ends_around_the_changes() -> Vec<(Zone, DateTime<Utc>)> {
        let mut ends = Vec::new();
        for (zone, days) in [
            (ny(), ["2026-03-07T00:00:00Z", "2026-10-31T00:00:00Z"]),
            (madrid(), ["2026-03-28T00:00:00Z", "2026-10-24T00:00:00Z"]),
        ] {
            for day in days {
                for quarter in 0..(2 * 24 * 4) {
                    ends.push((zone.clone(), utc(day) + Duration::minutes(15 * quarter)));
                }
            }
        }
        ends
    }

    #[test]
    fn every_plan_is_ordered_spaced_quiet_at_night_and_within_fourteen_days() {
        let pack = Pack::default_pack();
        let quiet = pack.thresholds.quiet_hours.clone().unwrap();
        let (start, stop) = (parse_local_time(&quiet.start).unwrap(), parse_local_time(&quiet.end).unwrap());
        for (zone, end) in ends_around_the_changes() {
            let plan = super::plan(&pack, end, &zone, "en");
            let driving = plan.driving_ok_from.with_timezone(&Utc);
            assert!(driving - end >= Duration::hours(8), "driving {} after {end}", plan.driving_ok_from);
            assert!(driving - end <= Duration::hours(33), "driving {} after {end}", plan.driving_ok_from);
            let end_date = end.with_timezone(&zone).date_naive();
            for (list, prompts) in [("check-ins", &plan.side_effect_check_ins), ("integration", &plan.integration)] {
                for pair in prompts.windows(2) {
                    assert!(pair[1].at - pair[0].at >= PROMPT_SPACING, "{list} after {end}: {pair:?}");
                }
                for (i, p) in prompts.iter().enumerate() {
                    let time = p.at.time();
                    let at_night = time >= start || time < stop;
                    assert!(!at_night || (p.optional && i == 0 && list == "check-ins"), "{list} after {end}: {p:?}");
                    assert!(p.at.with_timezone(&Utc) > end, "{list} after {end}: {p:?}");
                    assert!(p.at.date_naive() <= end_date + Days::new(14), "{list} after {end}: {p:?}");
                    assert_eq!(p.at.offset(), &p.at.with_timezone(&zone).fixed_offset().offset().clone());
                }
            }
        }
    }

    #[test]
    fn unknown_time_zones_are_named() {
        assert_eq!(parse_time_zone("Mars/Olympus").unwrap_err(), UnknownTimeZone("Mars/Olympus".into()));
    }
}
