//! The binary bodies of `POST /v1/sync`, shared by the client and the server.
//!
//! ```text
//! request  = version:u8 (=1) | since_count:u16be | since_count × hash[32]
//!                            | heads_count:u16be | heads_count × hash[32]
//!                            | changes: the rest (Automerge bytes, may be empty)
//! response = version:u8 (=1) | heads_count:u16be | heads_count × hash[32]
//!                            | changes: the rest (Automerge bytes, may be empty)
//! ```
//!
//! `since` is the server's heads as the client last saw them; `heads` are the
//! client's heads including the changes it sends; the changes are Automerge
//! change chunks or a whole saved document, as `Automerge::load_incremental`
//! reads them. See `docs/sync-protocol.md` for the exchange.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

/// What a device sends to enroll (`POST /v1/enroll`, JSON): one type for
/// the device that writes it and the clinic server that reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The code from the clinician, `XXXX-XXXX-XXXX`.
    pub code: String,
    /// A name for the device the clinic will see, e.g. "Ana's phone".
    pub device_label: String,
}

/// What an enrolled device receives (once). Unknown fields are ignored, so
/// a newer server may add some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The client the device now belongs to.
    pub client_id: String,
    /// The device's id.
    pub device_id: String,
    /// The device's bearer token (`kd_…`); shown only now.
    pub device_token: String,
    /// The clinic's name.
    pub clinic_name: String,
    /// Base64 of the clinic's 32-byte Ed25519 pack-signing public key.
    pub pack_public_key: String,
}

/// The wire format version.
pub const WIRE_VERSION: u8 = 1;
/// The media type of both bodies.
pub const CONTENT_TYPE: &str = "application/vnd.katcore.sync.v1";
/// Most heads a body may list; a real record has a handful.
pub const MAX_HEADS: usize = 1024;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The body is shorter than its header says.
    #[error("sync body is truncated in {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The version byte is not [`WIRE_VERSION`].
    #[error("sync body version {found} is not supported (expected {WIRE_VERSION})")]
    Version {
        /// The version found.
        found: u8,
    },
    /// Too many heads.
    #[error("sync body lists more than {MAX_HEADS} {field}")]
    TooManyHeads {
        /// `since` or `heads`.
        field: &'static str,
    },
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    /// The server's heads as the client last saw them (empty: "send me everything").
    pub since: Vec<ChangeHash>,
    /// The client's heads, including the changes sent.
    pub heads: Vec<ChangeHash>,
    /// Changes the server may lack.
    pub changes: Vec<u8>,
}

/// What the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    /// The server's heads after applying the request.
    pub heads: Vec<ChangeHash>,
    /// Changes the client lacks.
    pub changes: Vec<u8>,
}

impl SyncRequest {
    /// Encodes the request body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + 32 * (self.since.len() + self.heads.len()) + self.changes.len());
        out.push(WIRE_VERSION);
        put_heads(&mut out, &self.since);
        put_heads(&mut out, &self.heads);
        out.extend_from_slice(&self.changes);
        out
    }

    /// Decodes a request body.
    ///
    /// # Errors
    /// [`WireError`] for a body that does not follow the format.
    pub fn decode(body: &[u8]) -> Result<SyncRequest, WireError> {
        let mut reader = Reader::new(body)?;
        let since = reader.heads("since")?;
        let heads = reader.heads("heads")?;
        Ok(SyncRequest { since, heads, changes: reader.rest() })
    }
}

impl SyncResponse {
    /// Encodes the response body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + 32 * self.heads.len() + self.changes.len());
        out.push(WIRE_VERSION);
        put_heads(&mut out, &self.heads);
        out.extend_from_slice(&self.changes);
        out
    }

    /// Decodes a response body.
    ///
    /// # Errors
    /// [`WireError`] for a body that does not follow the format.
    pub fn decode(body: &[u8]) -> Result<SyncResponse, WireError> {
        let mut reader = Reader::new(body)?;
        let heads = reader.heads("heads")?;
        Ok(SyncResponse { heads, changes: reader.rest() })
    }
}

fn put_heads(out: &mut Vec<u8>, heads: &[ChangeHash]) {
    let count = heads.len().min(MAX_HEADS);
    out.extend_from_slice(&(count as u16).to_be_bytes());
    for head in &heads[..count] {
        out.extend_from_slice(&head.0);
    }
}

struct Reader<'a> {
    body: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Result<Self, WireError> {
        let (&version, rest) = body.split_first().ok_or(WireError::Truncated { field: "version" })?;
        if version != WIRE_VERSION {
            return Err(WireError::Version { found: version });
        }
        Ok(Reader { body: rest })
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.body.len() < n {
            return Err(WireError::Truncated { field });
        }
        let (taken, rest) = self.body.split_at(n);
        self.body = rest;
        Ok(taken)
    }

    fn heads(&mut self, field: &'static str) -> Result<Vec<ChangeHash>, WireError> {
        let count = self.take(2, field)?;
        let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
        if count > MAX_HEADS {
            return Err(WireError::TooManyHeads { field });
        }
        let bytes = self.take(32 * count, field)?;
        Ok(bytes
            .chunks_exact(32)
            .map(|chunk| {
                let mut hash = [0u8; 32];
                hash.copy_from_slice(chunk);
                ChangeHash(hash)
            })
            .collect())
    }

    fn rest(self) -> Vec<u8> {
        self.body.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hash(b: u8) -> ChangeHash {
        ChangeHash([b; 32])
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let request = SyncRequest { since: vec![hash(1)], heads: vec![hash(2), hash(3)], changes: b"changes".to_vec() };
        let body = request.encode();
        assert_eq!(body.len(), 1 + 2 + 32 + 2 + 64 + 7);
        assert_eq!(SyncRequest::decode(&body).unwrap(), request);
        let response = SyncResponse { heads: vec![hash(9)], changes: Vec::new() };
        assert_eq!(SyncResponse::decode(&response.encode()).unwrap(), response);
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert_eq!(SyncRequest::decode(&[]), Err(WireError::Truncated { field: "version" }));
        assert_eq!(SyncRequest::decode(&[2, 0, 0, 0, 0]), Err(WireError::Version { found: 2 }));
        assert_eq!(SyncRequest::decode(&[1, 0]), Err(WireError::Truncated { field: "since" }));
        assert_eq!(SyncRequest::decode(&[1, 0, 1, 7]), Err(WireError::Truncated { field: "since" }));
        assert_eq!(SyncRequest::decode(&[1, 0, 0, 0]), Err(WireError::Truncated { field: "heads" }));
        assert_eq!(SyncRequest::decode(&[1, 0xff, 0xff]), Err(WireError::TooManyHeads { field: "since" }));
        assert_eq!(SyncResponse::decode(&[1]), Err(WireError::Truncated { field: "heads" }));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = SyncRequest::decode(&body);
            let _ = SyncResponse::decode(&body);
        }
    }
}
