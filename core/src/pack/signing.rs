//! Ed25519 signatures over packs, and the set of clinic keys a device trusts.
//!
//! A signed pack is a small JSON envelope:
//! `{"format": "katcore.signed-pack/1", "key_id": "…", "signature": "…", "pack": {…}}`.
//! The signature (standard base64) is Ed25519 over the domain tag
//! [`SIGNATURE_DOMAIN`] followed by the canonical bytes of `pack` (see
//! `canonical.rs`). `key_id` names the signing key: the first 8 bytes of the
//! SHA-256 of its 32-byte public key, in hex.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
#[cfg(feature = "pem")]
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::canonical::canonical_bytes;
use super::{malformed, Pack, PackError};

/// The `format` value of a signed pack envelope.
pub const SIGNED_PACK_FORMAT: &str = "katcore.signed-pack/1";

/// Bytes prefixed to the canonical pack before signing, so a pack signature
/// can never be mistaken for a signature over anything else.
pub(super) const SIGNATURE_DOMAIN: &[u8] = b"katcore signed pack v1\n";

/// A pack with its signature, as stored on disk and served by the clinic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPack {
    /// Always [`SIGNED_PACK_FORMAT`].
    pub format: String,
    /// Identifier of the signing key, see [`key_id`].
    pub key_id: String,
    /// Ed25519 signature, standard base64.
    pub signature: String,
    /// The bare pack.
    pub pack: serde_json::Value,
}

impl SignedPack {
    /// The envelope as pretty JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The clinic public keys a device accepts packs from.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    /// Trusts exactly these keys.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        TrustedKeys { keys: keys.into_iter().collect() }
    }

    /// Adds a key (e.g. during a clinic's key rotation both are trusted).
    pub fn add(&mut self, key: VerifyingKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// True when no key is trusted: then no signed pack can be activated.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| key_id(k) == id)
    }
}

/// The identifier of a public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a signing key from PKCS#8 PEM (as written by `katctl pack keygen`
/// or `openssl genpkey -algorithm ed25519`; with the `pem` feature) or from
/// base64 of its 32-byte seed.
///
/// # Errors
/// [`PackError::Key`] when the text is neither.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, PackError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        #[cfg(feature = "pem")]
        return SigningKey::from_pkcs8_pem(text)
            .map_err(|_| PackError::Key { reason: "not an Ed25519 PKCS#8 private key".into() });
        #[cfg(not(feature = "pem"))]
        return Err(no_pem());
    }
    let seed: [u8; 32] = decode_32(text, "private key")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key from SPKI PEM (with the `pem` feature) or from base64
/// of its 32 bytes.
///
/// # Errors
/// [`PackError::Key`] when the text is neither, or is not a valid curve point.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, PackError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        #[cfg(feature = "pem")]
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|_| PackError::Key { reason: "not an Ed25519 public key".into() });
        #[cfg(not(feature = "pem"))]
        return Err(no_pem());
    }
    let bytes = decode_32(text, "public key")?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| PackError::Key { reason: "public key is not a valid Ed25519 point".into() })
}

/// A PEM key where this build reads base64 only (without the `pem` feature).
#[cfg(not(feature = "pem"))]
fn no_pem() -> PackError {
    PackError::Key {
        reason: "PEM keys are read with the `pem` feature (katctl, the clinic); give the key as base64".into(),
    }
}

fn decode_32(text: &str, what: &str) -> Result<[u8; 32], PackError> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| PackError::Key { reason: format!("{what} is not base64 of 32 bytes or PEM") })
}

/// Checks `pack` ([`Pack::validate`], [`Pack::check_authoring`]) and signs it with `key`.
///
/// # Errors
/// [`PackError::Invalid`] when the pack breaks a rule: a broken pack is never signed.
pub fn sign_pack(pack: &Pack, key: &SigningKey) -> Result<SignedPack, PackError> {
    pack.validate()?;
    pack.check_authoring()?;
    let value = serde_json::to_value(pack).map_err(malformed)?;
    let signature = key.sign(&signed_message(&value)?);
    Ok(SignedPack {
        format: SIGNED_PACK_FORMAT.to_owned(),
        key_id: key_id(&key.verifying_key()),
        signature: BASE64.encode(signature.to_bytes()),
        pack: value,
    })
}

/// Verifies a signed pack's bytes against `trusted` and returns the validated pack.
///
/// The signature is checked before the pack's content is interpreted.
///
/// # Errors
/// [`PackError::Unsigned`] for a bare pack, [`PackError::Malformed`] or
/// [`PackError::UnsupportedFormat`] for an envelope that cannot be read,
/// [`PackError::UntrustedKey`], [`PackError::BadSignature`], and then any
/// error of [`Pack::from_json`] for the signed content.
pub fn verify_pack(bytes: &[u8], trusted: &TrustedKeys) -> Result<Pack, PackError> {
    let value: serde_json::Value = crate::json::from_slice(bytes).map_err(malformed)?;
    if value.get("signature").is_none() && value.get("checklist").is_some() {
        return Err(PackError::Unsigned);
    }
    let envelope: SignedPack = serde_json::from_value(value).map_err(malformed)?;
    if envelope.format != SIGNED_PACK_FORMAT {
        return Err(PackError::UnsupportedFormat { found: envelope.format });
    }
    let key =
        trusted.find(&envelope.key_id).ok_or_else(|| PackError::UntrustedKey { key_id: envelope.key_id.clone() })?;
    let signature = BASE64
        .decode(envelope.signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(PackError::BadSignature)?;
    key.verify_strict(&signed_message(&envelope.pack)?, &signature).map_err(|_| PackError::BadSignature)?;
    Pack::from_value(envelope.pack)
}

fn signed_message(pack: &serde_json::Value) -> Result<Vec<u8>, PackError> {
    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend(canonical_bytes(pack)?);
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "pem")]
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey, EncodePublicKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn signed_default(seed: u8) -> Vec<u8> {
        let pack = Pack::default_pack();
        serde_json::to_vec(&sign_pack(&pack, &key(seed)).unwrap()).unwrap()
    }

    /// The envelope an older `katctl` signed: no rule of [`Pack::check_authoring`] applied.
    fn signed_as_before(pack: serde_json::Value, seed: u8) -> Vec<u8> {
        let signature = key(seed).sign(&signed_message(&pack).unwrap());
        let envelope = SignedPack {
            format: SIGNED_PACK_FORMAT.to_owned(),
            key_id: key_id(&key(seed).verifying_key()),
            signature: BASE64.encode(signature.to_bytes()),
            pack,
        };
        serde_json::to_vec(&envelope).unwrap()
    }

    #[test]
    fn a_pack_signed_before_quiet_hours_existed_is_still_read_and_its_night_prompt_moved() {
        // Written before issue 19: no quiet_hours (so 22:00-07:00 applies),
        // and an evening prompt at 22:30 that a new pack could not be signed with.
        let mut value: serde_json::Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
        for field in ["quiet_hours", "driving_min_hours", "score_alerts"] {
            value["thresholds"].as_object_mut().unwrap().remove(field);
        }
        value["integration"][0]["local_time"] = serde_json::json!("22:30");
        let trusted = TrustedKeys::new([key(3).verifying_key()]);
        let pack = verify_pack(&signed_as_before(value, 3), &trusted).unwrap();
        assert!(matches!(pack.check_authoring(), Err(PackError::Invalid { .. })));
        assert!(matches!(sign_pack(&pack, &key(3)), Err(PackError::Invalid { .. })));
        // A session ending 15:00 in New York: the 22:30 prompt is due at 07:00.
        let tz = crate::aftercare::parse_time_zone("America/New_York").unwrap();
        let end = chrono::DateTime::parse_from_rfc3339("2026-05-01T19:00:00Z").unwrap().to_utc();
        let plan = crate::aftercare::plan(&pack, end, &tz, "en");
        let prompt = plan.integration.iter().find(|p| p.id == pack.integration[0].id).unwrap();
        assert_eq!(prompt.at.to_rfc3339(), "2026-05-02T07:00:00-04:00");
        assert_eq!(prompt.moved_from.unwrap().to_rfc3339(), "2026-05-01T22:30:00-04:00");
    }

    #[test]
    fn a_signed_pack_verifies_with_its_key() {
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let pack = verify_pack(&signed_default(1), &trusted).unwrap();
        assert_eq!(&pack, Pack::default_pack().as_ref());
    }

    #[test]
    fn a_pack_signed_by_another_key_is_refused() {
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let err = verify_pack(&signed_default(2), &trusted).unwrap_err();
        assert_eq!(err, PackError::UntrustedKey { key_id: key_id(&key(2).verifying_key()) });
    }

    #[test]
    fn a_forged_key_id_does_not_help() {
        // Signed by key 2 but claiming key 1's id: the signature fails.
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let mut envelope: SignedPack = serde_json::from_slice(&signed_default(2)).unwrap();
        envelope.key_id = key_id(&key(1).verifying_key());
        let err = verify_pack(&serde_json::to_vec(&envelope).unwrap(), &trusted).unwrap_err();
        assert_eq!(err, PackError::BadSignature);
    }

    #[test]
    fn any_tampering_breaks_the_signature() {
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let mut envelope: SignedPack = serde_json::from_slice(&signed_default(1)).unwrap();
        envelope.pack["thresholds"]["bp_limit"]["systolic"] = serde_json::json!(200);
        let err = verify_pack(&serde_json::to_vec(&envelope).unwrap(), &trusted).unwrap_err();
        assert_eq!(err, PackError::BadSignature);

        let mut envelope: SignedPack = serde_json::from_slice(&signed_default(1)).unwrap();
        envelope.signature = "AAAA".into();
        let err = verify_pack(&serde_json::to_vec(&envelope).unwrap(), &trusted).unwrap_err();
        assert_eq!(err, PackError::BadSignature);
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        // Re-serialising the envelope pretty-printed keeps the signature valid.
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let envelope: SignedPack = serde_json::from_slice(&signed_default(1)).unwrap();
        assert!(verify_pack(envelope.to_json_pretty().as_bytes(), &trusted).is_ok());
    }

    #[cfg(not(feature = "pem"))]
    #[test]
    fn a_device_build_refuses_a_pem_key_by_name() {
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----";
        let Err(PackError::Key { reason }) = parse_verifying_key(pem) else { panic!("a PEM key must be refused") };
        assert!(reason.contains("base64"), "{reason}");
    }

    #[test]
    fn a_bare_pack_is_reported_unsigned() {
        let trusted = TrustedKeys::new([key(1).verifying_key()]);
        let err = verify_pack(Pack::default_pack_json().as_bytes(), &trusted).unwrap_err();
        assert_eq!(err, PackError::Unsigned);
    }

    #[cfg(feature = "pem")]
    #[test]
    fn keys_round_trip_through_pem_and_base64() {
        let k = key(7);
        let pem = k.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(parse_signing_key(&pem).unwrap().to_bytes(), k.to_bytes());
        assert_eq!(parse_signing_key(&BASE64.encode(k.to_bytes())).unwrap().to_bytes(), k.to_bytes());
        let public_pem = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(parse_verifying_key(&public_pem).unwrap(), k.verifying_key());
        assert_eq!(parse_verifying_key(&BASE64.encode(k.verifying_key().as_bytes())).unwrap(), k.verifying_key());
        assert!(matches!(parse_verifying_key("bm9wZQ=="), Err(PackError::Key { .. })));
        assert!(matches!(
            parse_signing_key("-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"),
            Err(PackError::Key { .. })
        ));
    }
}
