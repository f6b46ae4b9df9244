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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
pub use crate::failures::{FAILURE_WINDOW, MAX_FAILURES_PER_WINDOW};
use crate::state::AppState;
use crate::storage::SecretHash;

/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "kd_";
/// Prefix of clinician tokens.
pub const CLINICIAN_TOKEN_PREFIX: &str = "kc_";

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
}
