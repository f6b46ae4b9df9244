//! Instants across the FFI.
//!
//! Every instant crosses as a `SystemTime` (Kotlin `java.time.Instant`, Swift
//! `Date`); time zones travel separately as IANA names. The core keeps the
//! session's UTC offset where it matters, so it is recomputed here from the
//! session's zone.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

use crate::error::{KatcoreError, Result};

/// The instant as a `SystemTime`.
pub(crate) fn to_system_time<Tz: TimeZone>(at: DateTime<Tz>) -> SystemTime {
    at.into()
}

/// A `SystemTime` from the host as a UTC date-time; `field` names it in errors.
pub(crate) fn to_utc(field: &str, at: SystemTime) -> Result<DateTime<Utc>> {
    let out_of_range = || KatcoreError::invalid(field, "is outside the supported range of dates");
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
    DateTime::from_timestamp(seconds, nanos).ok_or_else(out_of_range)
}

/// `at` (or now) in the IANA `time_zone`, with that zone's offset at that instant.
pub(crate) fn in_zone(field: &str, at: Option<SystemTime>, time_zone: &str) -> Result<DateTime<FixedOffset>> {
    let zone = katcore::aftercare::parse_time_zone(time_zone)
        .map_err(|_| KatcoreError::invalid("time_zone", "is not a known IANA time zone name"))?;
    Ok(or_now(field, at)?.with_timezone(&zone).fixed_offset())
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
            assert_eq!(to_system_time(to_utc("at", at).unwrap()), at);
        }
    }

    #[test]
    fn zones_give_the_local_offset() {
        let at = UNIX_EPOCH + Duration::from_secs(1_777_651_200); // 2026-05-01T16:00:00Z
        let local = in_zone("start", Some(at), "America/New_York").unwrap();
        assert_eq!(local.to_rfc3339(), "2026-05-01T12:00:00-04:00");
        assert!(matches!(in_zone("start", Some(at), "Mars/Base"), Err(KatcoreError::InvalidInput { .. })));
    }
}
