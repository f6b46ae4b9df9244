//! The failed-attempt rate limit: how many bad tokens and enrollment codes
//! an address may try ([`MAX_FAILURES_PER_WINDOW`] per [`FAILURE_WINDOW`]),
//! counted in constant memory ([`FailureLimiter`]). The extractors of
//! `auth.rs` consult it; the application state (`state.rs`) holds it.

use std::hash::BuildHasher as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::storage::SecretHash;

/// Failed attempts a peer may make per window before it gets `429`.
pub const MAX_FAILURES_PER_WINDOW: u32 = 20;
/// The rate-limit window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Buckets per row of the failure counts.
const BUCKETS: usize = 1 << 14;
/// Slots of the table of recently accepted tokens.
const KNOWN_TOKENS: usize = 1 << 15;

/// Counts failed attempts (bad tokens or enrollment codes) per client
/// address in fixed one-minute windows, in constant memory and constant
/// work per request.
///
/// The counts are a count-min sketch: two rows of [`BUCKETS`] counters,
/// each address hashed into one counter per row with a key chosen at random
/// when the server starts (so no one can aim at another's counters); an
/// address is limited when both its counters reached the limit, which
/// another address can cause only by colliding in both rows. IPv6 addresses
/// count per /64, the block one subscriber usually holds.
///
/// A limited address is not locked out with valid tokens: a token accepted
/// since the server started (remembered by hash in a fixed table) is still
/// looked up and served; unknown tokens and enrollment codes from it get
/// `429` without touching the database.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    started: Instant,
    keys: [std::collections::hash_map::RandomState; 2],
    rows: [Box<[AtomicU64]>; 2],
    known: Mutex<Box<[SecretHash]>>,
}

impl Default for FailureLimiter {
    fn default() -> FailureLimiter {
        let row = || (0..BUCKETS).map(|_| AtomicU64::new(0)).collect::<Box<[AtomicU64]>>();
        FailureLimiter {
            started: Instant::now(),
            keys: [Default::default(), Default::default()],
            rows: [row(), row()],
            known: Mutex::new(vec![[0u8; 32]; KNOWN_TOKENS].into_boxed_slice()),
        }
    }
}

/// The part of an address that is counted: all of IPv4, the /64 of IPv6.
pub(crate) fn counted(ip: IpAddr) -> [u8; 8] {
    match ip {
        IpAddr::V4(v4) => {
            let mut key = [0u8; 8];
            key[..4].copy_from_slice(&v4.octets());
            key
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => counted(IpAddr::V4(v4)),
            None => v6.octets()[..8].try_into().unwrap_or([0xff; 8]),
        },
    }
}

impl FailureLimiter {
    /// The current window's number since the limiter started.
    fn window(&self) -> u64 {
        self.started.elapsed().as_secs() / FAILURE_WINDOW.as_secs()
    }

    /// The counter of `ip` in each row.
    fn counters(&self, ip: IpAddr) -> [&AtomicU64; 2] {
        let key = counted(ip);
        let index = |row: usize| (self.keys[row].hash_one(key) as usize) % BUCKETS;
        [&self.rows[0][index(0)], &self.rows[1][index(1)]]
    }

    /// The failures a counter holds in `window` (a counter packs its window
    /// in the high 32 bits and its count in the low 32).
    fn failures(counter: &AtomicU64, window: u64) -> u32 {
        let packed = counter.load(Ordering::Relaxed);
        if packed >> 32 == window & 0xffff_ffff {
            packed as u32
        } else {
            0
        }
    }

    /// Whether `ip` already failed too often in the current window.
    pub(crate) fn is_limited(&self, ip: IpAddr) -> bool {
        let window = self.window();
        self.counters(ip).iter().all(|counter| Self::failures(counter, window) >= MAX_FAILURES_PER_WINDOW)
    }

    /// `429` when `ip` already failed too often in the current window.
    ///
    /// # Errors
    /// [`ApiError::rate_limited`] with the seconds left in the window.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        if self.is_limited(ip) {
            let into_window = self.started.elapsed().as_secs() % FAILURE_WINDOW.as_secs();
            Err(ApiError::rate_limited((FAILURE_WINDOW.as_secs() - into_window).max(1)))
        } else {
            Ok(())
        }
    }

    /// Counts one failed attempt from `ip`.
    pub(crate) fn fail(&self, ip: IpAddr) {
        let window = self.window() & 0xffff_ffff;
        for counter in self.counters(ip) {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let count = if packed >> 32 == window { (packed as u32).saturating_add(1) } else { 1 };
                Some(window << 32 | u64::from(count))
            });
        }
    }

    /// Marks `ip` as limited for the rest of the current window: other
    /// instances on the same database counted the failures
    /// ([`crate::ClinicStorage::count_failure`]).
    pub(crate) fn saturate(&self, ip: IpAddr) {
        let window = self.window() & 0xffff_ffff;
        for counter in self.counters(ip) {
            let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let count = if packed >> 32 == window {
                    (packed as u32).max(MAX_FAILURES_PER_WINDOW)
                } else {
                    MAX_FAILURES_PER_WINDOW
                };
                Some(window << 32 | u64::from(count))
            });
        }
    }

    /// Remembers a token that was just accepted.
    pub(crate) fn remember(&self, token: &SecretHash) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known[Self::slot(token)] = *token;
    }

    /// Whether `token` was accepted since the server started (and not
    /// displaced by another since).
    pub(crate) fn is_known(&self, token: &SecretHash) -> bool {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known[Self::slot(token)] == *token
    }

    fn slot(token: &SecretHash) -> usize {
        usize::from(u16::from_le_bytes([token[0], token[1]])) % KNOWN_TOKENS
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn the_limiter_blocks_after_too_many_failures() {
        let limiter = FailureLimiter::default();
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        for _ in 0..MAX_FAILURES_PER_WINDOW {
            assert!(limiter.check(peer).is_ok());
            limiter.fail(peer);
        }
        let error = limiter.check(peer).unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(limiter.check(other).is_ok());
    }

    #[test]
    fn the_limiter_counts_ipv6_per_64_and_remembers_accepted_tokens() {
        let limiter = FailureLimiter::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_WINDOW {
            limiter.fail(a);
        }
        assert!(limiter.is_limited(same_64));
        assert!(!limiter.is_limited(other_64));
        // Thousands of addresses cost no memory and never limit a stranger
        // unless it collides in both rows.
        for i in 0..50_000u32 {
            limiter.fail(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        }
        assert!(!limiter.is_limited(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        let token: SecretHash = [7; 32];
        assert!(!limiter.is_known(&token));
        limiter.remember(&token);
        assert!(limiter.is_known(&token));
    }
}
