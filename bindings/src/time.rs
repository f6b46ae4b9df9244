//! Instants across the FFI.
//!
//! Every instant crosses as a `SystemTime` (Kotlin `java.time.Instant`, Swift
//! `Date`): core's `DateTime<Utc>` and `DateTime<FixedOffset>` are declared
//! here as custom types over it, so core's records cross as they are. Time
//! zones travel separately as IANA names; an offset does not cross (the
//! core keeps the session's zone, and `Session.timeZone` names it).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Utc};

use crate::error::{KatcoreError, Result};

/// A UTC instant of core's; `Timestamp` in Kotlin and Swift is an alias of
/// `java.time.Instant` / `Date`.
pub type Timestamp = DateTime<Utc>;

/// An instant with the offset core keeps for it (the session's zone); it
/// crosses as the instant alone.
pub type ZonedTimestamp = DateTime<FixedOffset>;

uniffi::custom_type!(Timestamp, SystemTime, {
    remote,
    lower: |at| at.into(),
    try_lift: |at| Ok(to_utc("instant", at)?),
});

uniffi::custom_type!(ZonedTimestamp, SystemTime, {
    remote,
    lower: |at| at.into(),
    try_lift: |at| Ok(to_utc("instant", at)?.fixed_offset()),
});

/// A `SystemTime` from the host as a UTC date-time; `field` names it in
/// errors. Only the years 0000–9999 are accepted: what RFC 3339, and so the
/// record and the clinic, can write.
pub(crate) fn to_utc(field: &str, at: SystemTime) -> Result<DateTime<Utc>> {
    let out_of_range = || KatcoreError::invalid(field, "is outside the years 0000-9999 that RFC 3339 can write");
    let (seconds, nanos) = match at.duration_since(UNIX_EPOCH) {
        Ok(after) => (i64::try_from(after.as_secs()).map_err(|_| out_of_range())?, after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            let seconds = i64::try_from(before.as_secs()).map_err(|_| out_of_range())?;
            match before.subsec_nanos() {
                0 => (-seconds, 0),
                nanos => (-seconds - 1, 1_000_000_000 - nanos),
            }
        }
    };
    DateTime::from_timestamp(seconds, nanos)
        .filter(|at| katcore::checklist::in_rfc3339_range(&at.fixed_offset()))
        .ok_or_else(out_of_range)
}

/// `at` as UTC, or the current time when the host passed none.
pub(crate) fn or_now(field: &str, at: Option<SystemTime>) -> Result<DateTime<Utc>> {
    at.map_or_else(|| Ok(Utc::now()), |at| to_utc(field, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instants_round_trip_on_both_sides_of_the_epoch() {
        for at in [UNIX_EPOCH + Duration::new(1_777_000_000, 5), UNIX_EPOCH - Duration::new(10, 250)] {
            assert_eq!(SystemTime::from(to_utc("at", at).unwrap()), at);
        }
    }

    #[test]
    fn an_instant_outside_the_range_of_dates_is_invalid_input() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert!(matches!(to_utc("at", far), Err(KatcoreError::InvalidInput { .. })));
        // 9999-12-31T23:59:59Z is the last instant RFC 3339 can write; a second later is year 10000.
        let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        assert_eq!(to_utc("at", last).unwrap().to_rfc3339(), "9999-12-31T23:59:59+00:00");
        assert!(matches!(to_utc("at", last + Duration::from_secs(1)), Err(KatcoreError::InvalidInput { .. })));
        let first = UNIX_EPOCH - Duration::from_secs(62_167_219_200);
        assert_eq!(to_utc("at", first).unwrap().to_rfc3339(), "0000-01-01T00:00:00+00:00");
        assert!(matches!(to_utc("at", first - Duration::from_secs(1)), Err(KatcoreError::InvalidInput { .. })));
    }
}
