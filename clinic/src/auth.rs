//! Bearer tokens, who may call what, and the failed-attempt rate limit.
//!
//! Tokens are `kd_` (device) or `kc_` (clinician) followed by base64url of
//! 32 random bytes; the server stores only their SHA-256. The extractors
//! [`DeviceAuth`] and [`ClinicianAuth`] answer:
//!
//! - `401` for a missing, malformed or unknown token (and a revoked clinician);
//! - `403` for a valid token of the other kind;
//! - `410` for a revoked device;
//! - `429` once the peer made more than [`MAX_FAILURES_PER_WINDOW`] failed
//!   attempts (bad tokens or enrollment codes) within [`FAILURE_WINDOW`].
//!
//! The limit counts per client address ([`FailureLimiter`], and on
//! PostgreSQL also in the database, so that every instance sees the
//! failures made on the others): the TCP peer,
//! or behind a trusted reverse proxy (`--trusted-proxy`) the address the
//! proxy names in `X-Forwarded-For`. A limited address is not locked out
//! with a valid token the server has accepted before.

use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::SecretHash;

/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "kd_";
/// Prefix of clinician tokens.
pub const CLINICIAN_TOKEN_PREFIX: &str = "kc_";
/// Failed attempts a peer may make per window before it gets `429`.
pub const MAX_FAILURES_PER_WINDOW: u32 = 20;
/// The rate-limit window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Which kind of party a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A client's enrolled device.
    Device,
    /// A clinician.
    Clinician,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Device => DEVICE_TOKEN_PREFIX,
            TokenKind::Clinician => CLINICIAN_TOKEN_PREFIX,
        }
    }
}

/// A new random token of `kind`.
pub fn new_token(kind: TokenKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a token or code: what storage keeps.
pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// The kind of a well-formed token, or `None`.
fn token_kind(token: &str) -> Option<TokenKind> {
    [TokenKind::Device, TokenKind::Clinician].into_iter().find(|kind| {
        token
            .strip_prefix(kind.prefix())
            .and_then(|rest| URL_SAFE_NO_PAD.decode(rest).ok())
            .is_some_and(|bytes| bytes.len() == 32)
    })
}

/// The bearer token of a request, if it is well formed.
fn bearer(headers: &HeaderMap) -> Option<(TokenKind, &str)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    Some((token_kind(token)?, token))
}

/// The client's address: the TCP peer, or, when the peer is a trusted
/// reverse proxy, the last address in `X-Forwarded-For` that is not itself
/// a trusted proxy (what the proxy saw). Unspecified without a socket.
pub(crate) fn client_ip(parts: &Parts, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.flat_map(|value| value.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|hop| !trusted_proxies.contains(hop)).unwrap_or(peer)
}

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
    fn remember(&self, token: &SecretHash) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known[Self::slot(token)] = *token;
    }

    /// Whether `token` was accepted since the server started (and not
    /// displaced by another since).
    fn is_known(&self, token: &SecretHash) -> bool {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known[Self::slot(token)] == *token
    }

    fn slot(token: &SecretHash) -> usize {
        usize::from(u16::from_le_bytes([token[0], token[1]])) % KNOWN_TOKENS
    }
}

/// A device authenticated by its token: it reaches only its own client.
#[derive(Clone, Debug)]
pub struct DeviceAuth {
    /// The device.
    pub device_id: String,
    /// The client the device belongs to.
    pub client_id: String,
}

/// A clinician authenticated by their token: they reach only their clinic.
#[derive(Clone, Debug)]
pub struct ClinicianAuth {
    /// The clinician.
    pub clinician_id: String,
    /// Their clinic.
    pub clinic_id: String,
    /// Their display name, written on notes and acknowledgements.
    pub display_name: String,
}

/// Who presented a valid token.
enum Caller {
    Device(DeviceAuth),
    Clinician(ClinicianAuth),
}

/// Resolves the request's token, counting failures against the peer.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let peer = client_ip(parts, state.trusted_proxies());
    let limiter = state.limiter();
    let Some((kind, token)) = bearer(&parts.headers) else {
        limiter.check(peer)?;
        state.failed_attempt(peer).await;
        return Err(ApiError::unauthorized());
    };
    let hash = hash_secret(token);
    if !limiter.is_known(&hash) {
        limiter.check(peer)?;
    }
    let caller = match kind {
        TokenKind::Device => state.db(move |s| s.device_by_token(&hash)).await?.map(|device| {
            if device.revoked_at.is_some() {
                Err(ApiError::device_revoked())
            } else {
                Ok(Caller::Device(DeviceAuth { device_id: device.id, client_id: device.client_id }))
            }
        }),
        TokenKind::Clinician => state.db(move |s| s.clinician_by_token(&hash)).await?.filter(|c| !c.revoked).map(|c| {
            Ok(Caller::Clinician(ClinicianAuth {
                clinician_id: c.id,
                clinic_id: c.clinic_id,
                display_name: c.display_name,
            }))
        }),
    };
    match caller {
        Some(caller) => {
            // Revoked devices are remembered too: their `410` must stay `410`.
            limiter.remember(&hash);
            caller
        }
        None => {
            state.failed_attempt(peer).await;
            Err(ApiError::unauthorized())
        }
    }
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Caller::Device(device) => Ok(device),
            Caller::Clinician(_) => Err(ApiError::forbidden("this endpoint is for enrolled devices")),
        }
    }
}

impl FromRequestParts<AppState> for ClinicianAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Caller::Clinician(clinician) => Ok(clinician),
            Caller::Device(_) => Err(ApiError::forbidden("this endpoint is for clinicians")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised_by_prefix_and_length() {
        let device = new_token(TokenKind::Device);
        let clinician = new_token(TokenKind::Clinician);
        assert_eq!(device.len(), 3 + 43);
        assert_eq!(token_kind(&device), Some(TokenKind::Device));
        assert_eq!(token_kind(&clinician), Some(TokenKind::Clinician));
        assert_eq!(token_kind("kd_short"), None);
        assert_eq!(token_kind(&device.replace("kd_", "kx_")), None);
        assert_eq!(token_kind(&format!("{device}A")), None);
        assert_ne!(hash_secret(&device), hash_secret(&clinician));
    }

    #[test]
    fn bearer_requires_the_scheme() {
        let token = new_token(TokenKind::Device);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        assert_eq!(bearer(&headers), Some((TokenKind::Device, token.as_str())));
        headers.insert(AUTHORIZATION, format!("Basic {token}").parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, token.parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

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
        let token = hash_secret("kd_example");
        assert!(!limiter.is_known(&token));
        limiter.remember(&token);
        assert!(limiter.is_known(&token));
    }
}
