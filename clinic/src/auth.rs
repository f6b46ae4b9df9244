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
//! The peer is the TCP peer address: behind a reverse proxy every client
//! shares the proxy's address, so the limit then applies to the proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
/// Peers tracked before expired windows are swept.
const SWEEP_AT: usize = 10_000;

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

/// The peer's IP address (unspecified when the app runs without a socket).
pub(crate) fn peer_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// Counts failed attempts per peer in fixed one-minute windows.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    peers: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl FailureLimiter {
    /// `429` when `peer` already failed too often in the current window.
    ///
    /// # Errors
    /// [`ApiError::rate_limited`] with the seconds left in the window.
    pub fn check(&self, peer: IpAddr) -> Result<(), ApiError> {
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        match peers.get(&peer) {
            Some(window) if window.failures >= MAX_FAILURES_PER_WINDOW => {
                let left = FAILURE_WINDOW.saturating_sub(window.started.elapsed());
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(ApiError::rate_limited(left.as_secs().max(1)))
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one failed attempt by `peer`.
    pub fn fail(&self, peer: IpAddr) {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.len() >= SWEEP_AT {
            peers.retain(|_, window| window.started.elapsed() < FAILURE_WINDOW);
        }
        let now = Instant::now();
        let window = peers.entry(peer).or_insert(Window { started: now, failures: 0 });
        if window.started.elapsed() >= FAILURE_WINDOW {
            *window = Window { started: now, failures: 0 };
        }
        window.failures = window.failures.saturating_add(1);
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
    let peer = peer_ip(parts);
    state.limiter().check(peer)?;
    let Some((kind, token)) = bearer(&parts.headers) else {
        state.limiter().fail(peer);
        return Err(ApiError::unauthorized());
    };
    let hash = hash_secret(token);
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
    caller.unwrap_or_else(|| {
        state.limiter().fail(peer);
        Err(ApiError::unauthorized())
    })
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
}
