//! IANA time zones as a `chrono` [`TimeZone`].
//!
//! The rules come from Jiff's bundled copy of the IANA time zone database,
//! kept as compact TZif bytes. Compiled-in Rust tables (`chrono-tz`) put a
//! pointer, and so a load-time relocation, behind every transition's
//! abbreviation: in the mobile library they cost 1.56 MB of the 8.72 MB
//! (issue 5). The bundled data behaves the same on every platform, so a plan
//! computed on the phone matches the one computed at the clinic.
//!
//! [`Zone`] implements [`TimeZone`], so the rest of the crate keeps using
//! `chrono` date-times (`with_timezone`, `from_local_datetime`).

use std::fmt;

use chrono::{
    Datelike, FixedOffset, LocalResult, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};

/// An IANA time zone such as `America/New_York`, with its full history of
/// offsets. Cheap to clone (the rules are shared).
#[derive(Clone)]
pub struct Zone {
    tz: jiff::tz::TimeZone,
}

impl Zone {
    /// The zone named `name`, or `None` when the database has no such zone.
    /// Names are matched as the IANA database spells them (letter case is
    /// ignored).
    pub fn named(name: &str) -> Option<Zone> {
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        // Zones from the database carry their IANA name; `name` relies on it.
        tz.iana_name()?;
        Some(Zone { tz })
    }

    /// The zone's IANA name, as the database spells it.
    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// The UTC offset in force at the instant `utc`.
    fn offset_at(&self, utc: &NaiveDateTime) -> FixedOffset {
        fixed(self.tz.to_offset(timestamp(utc)))
    }

    /// The zone's abbreviation at the instant `at` as the database spells
    /// it ("EST", "CEST"; for zones without letters, the offset, "-03"), to
    /// label the times a person reads. Clinic only: the mobile library does
    /// not carry it.
    #[cfg(feature = "clinic")]
    pub fn abbreviation_at(&self, at: chrono::DateTime<Utc>) -> String {
        self.tz.to_offset_info(timestamp(&at.naive_utc())).abbreviation().to_owned()
    }

    /// The offsets a local wall-clock time can have: one, two (clocks went
    /// back: earlier instant first), or none (clocks went forward over it).
    fn offsets_at_local(&self, local: &NaiveDateTime) -> LocalResult<FixedOffset> {
        let Some(civil) = civil(local) else { return LocalResult::None };
        match self.tz.to_ambiguous_timestamp(civil).offset() {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(fixed(offset)),
            // `before` is the offset in force before the fold, which gives the earlier instant.
            jiff::tz::AmbiguousOffset::Fold { before, after } => LocalResult::Ambiguous(fixed(before), fixed(after)),
            jiff::tz::AmbiguousOffset::Gap { .. } => LocalResult::None,
        }
    }
}

/// A UTC date-time as a `jiff` instant (to the second), held within the
/// years `jiff` supports.
fn timestamp(utc: &NaiveDateTime) -> jiff::Timestamp {
    jiff::Timestamp::new(utc.and_utc().timestamp(), 0).unwrap_or(if utc.year() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// `chrono`'s offset for a `jiff` one. Every real offset is within a day, so
/// the fallback to UTC is unreachable in practice.
fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).unwrap_or(Utc.fix())
}

/// A `chrono` local date-time as a `jiff` civil one; `None` beyond the years
/// -9999 to 9999 that `jiff` supports.
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    let small = |n: u32| i8::try_from(n).ok();
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        small(local.month())?,
        small(local.day())?,
        small(local.hour())?,
        small(local.minute())?,
        // A leap second (chrono's 60th second) reads as the 59th.
        small(local.second().min(59))?,
        0,
    )
    .ok()
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Zone {}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Zone").field(&self.name()).finish()
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset of a [`Zone`] at some instant, remembering the zone (as
/// `chrono` requires of a time zone's offset type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    offset: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.offset
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.offset, f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        // As chrono-tz does: the offsets at local midnight.
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        self.offsets_at_local(local).map(|offset| ZoneOffset { zone: self.clone(), offset })
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        ZoneOffset { zone: self.clone(), offset: self.offset_at(utc) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    /// `at` in `zone`, reduced to its fixed offset (the form the record stores).
    fn in_zone(at: DateTime<Utc>, zone: &Zone) -> DateTime<FixedOffset> {
        at.with_timezone(zone).fixed_offset()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn names_resolve_and_unknown_ones_do_not() {
        assert_eq!(Zone::named("America/New_York").unwrap().name(), "America/New_York");
        assert_eq!(Zone::named("europe/madrid").unwrap().name(), "Europe/Madrid");
        for bad in ["Mars/Olympus", "", "+05:00", "EST5EDT,M3.2.0,M11.1.0", "../../etc/passwd"] {
            assert!(Zone::named(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn offsets_follow_daylight_saving_time() {
        let ny = Zone::named("America/New_York").unwrap();
        assert_eq!(in_zone(utc("2026-01-15T12:00:00Z"), &ny).offset().local_minus_utc(), -5 * 3600);
        assert_eq!(in_zone(utc("2026-07-15T12:00:00Z"), &ny).offset().local_minus_utc(), -4 * 3600);
        let kolkata = Zone::named("Asia/Kolkata").unwrap();
        assert_eq!(in_zone(utc("2026-07-15T12:00:00Z"), &kolkata).to_rfc3339(), "2026-07-15T17:30:00+05:30");
    }

    #[cfg(feature = "clinic")]
    #[test]
    fn abbreviations_follow_daylight_saving_time() {
        let york = Zone::named("America/New_York").unwrap();
        assert_eq!(york.abbreviation_at(utc("2026-01-15T12:00:00Z")), "EST");
        assert_eq!(york.abbreviation_at(utc("2026-07-15T12:00:00Z")), "EDT");
        assert_eq!(Zone::named("Europe/Madrid").unwrap().abbreviation_at(utc("2026-07-15T12:00:00Z")), "CEST");
        assert_eq!(Zone::named("UTC").unwrap().abbreviation_at(utc("2026-07-15T12:00:00Z")), "UTC");
    }

    #[test]
    fn local_times_in_a_gap_or_a_fold() {
        let ny = Zone::named("America/New_York").unwrap();
        // 2026-03-08: 02:00 → 03:00, so 02:30 never happens.
        assert_eq!(ny.from_local_datetime(&wall("2026-03-08 02:30")), LocalResult::None);
        // 2026-11-01: 02:00 → 01:00, so 01:30 happens twice, EDT first.
        let LocalResult::Ambiguous(first, second) = ny.from_local_datetime(&wall("2026-11-01 01:30")) else {
            panic!("01:30 on the day clocks go back is ambiguous")
        };
        assert_eq!(first.with_timezone(&Utc), utc("2026-11-01T05:30:00Z"));
        assert_eq!(second.with_timezone(&Utc), utc("2026-11-01T06:30:00Z"));
        let single = ny.from_local_datetime(&wall("2026-11-02 09:00")).single().unwrap();
        assert_eq!(single.fixed_offset().to_rfc3339(), "2026-11-02T09:00:00-05:00");
    }

    #[test]
    fn dates_beyond_the_database_range_still_have_an_offset() {
        let ny = Zone::named("America/New_York").unwrap();
        let far = NaiveDate::from_ymd_opt(200_000, 1, 1).unwrap().and_time(chrono::NaiveTime::MIN);
        assert_eq!(ny.offset_from_utc_datetime(&far).fix().local_minus_utc(), -5 * 3600);
        assert_eq!(ny.offset_from_local_datetime(&far), LocalResult::None);
    }
}
