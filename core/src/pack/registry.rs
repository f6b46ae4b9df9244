//! The pack a device is using, and the only way to replace it.
//!
//! A [`PackRegistry`] starts with the built-in default pack. A clinic pack
//! replaces it only when it verifies against the trusted clinic keys, passes
//! validation and is not an older version of the active pack; on any error
//! the active pack stays exactly as it was.

use std::sync::Arc;

use super::{verify_pack, Pack, PackError, TrustedKeys};

/// Holds the active pack and the keys a replacement must be signed with.
#[derive(Clone, Debug)]
pub struct PackRegistry {
    trusted: TrustedKeys,
    active: Arc<Pack>,
}

impl PackRegistry {
    /// A registry whose active pack is the built-in default.
    pub fn new(trusted: TrustedKeys) -> Self {
        PackRegistry { trusted, active: Pack::default_pack() }
    }

    /// The pack in force.
    pub fn active(&self) -> Arc<Pack> {
        Arc::clone(&self.active)
    }

    /// The keys a replacement pack must be signed with.
    pub fn trusted_keys(&self) -> &TrustedKeys {
        &self.trusted
    }

    /// Trusts one more clinic key (e.g. the one learned at enrollment).
    pub fn trust(&mut self, key: ed25519_dalek::VerifyingKey) {
        self.trusted.add(key);
    }

    /// Verifies a signed pack and makes it the active one.
    ///
    /// Offering the active version again is accepted and changes nothing.
    ///
    /// # Errors
    /// Any error of [`verify_pack`], or [`PackError::Downgrade`] for an older
    /// version of the active pack's id. The active pack is unchanged on error.
    pub fn activate_signed(&mut self, bytes: &[u8]) -> Result<Arc<Pack>, PackError> {
        let pack = verify_pack(bytes, &self.trusted)?;
        if pack.id == self.active.id && pack.version < self.active.version {
            return Err(PackError::Downgrade { id: pack.id, active: self.active.version, offered: pack.version });
        }
        self.active = Arc::new(pack);
        Ok(self.active())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::sign_pack;
    use ed25519_dalek::SigningKey;

    fn clinic_key() -> SigningKey {
        SigningKey::from_bytes(&[42; 32])
    }

    fn clinic_pack(version: u32, systolic: u16) -> Vec<u8> {
        let mut pack = Pack::default_pack().as_ref().clone();
        pack.id = "org.example.clinic".into();
        pack.version = version;
        pack.thresholds.bp_limit.systolic = systolic;
        serde_json::to_vec(&sign_pack(&pack, &clinic_key()).unwrap()).unwrap()
    }

    fn registry() -> PackRegistry {
        PackRegistry::new(TrustedKeys::new([clinic_key().verifying_key()]))
    }

    #[test]
    fn starts_with_the_default_pack() {
        assert_eq!(registry().active().id, Pack::default_pack().id);
    }

    #[test]
    fn a_verified_pack_becomes_active() {
        let mut r = registry();
        let active = r.activate_signed(&clinic_pack(3, 135)).unwrap();
        assert_eq!((active.id.as_str(), active.version), ("org.example.clinic", 3));
        assert_eq!(r.active().thresholds.bp_limit.systolic, 135);
    }

    #[test]
    fn a_tampered_pack_leaves_the_active_pack_in_force() {
        let mut r = registry();
        r.activate_signed(&clinic_pack(3, 135)).unwrap();
        let mut tampered: serde_json::Value = serde_json::from_slice(&clinic_pack(4, 135)).unwrap();
        tampered["pack"]["thresholds"]["bp_limit"]["systolic"] = 220.into();
        let err = r.activate_signed(&serde_json::to_vec(&tampered).unwrap()).unwrap_err();
        assert_eq!(err, PackError::BadSignature);
        assert_eq!((r.active().version, r.active().thresholds.bp_limit.systolic), (3, 135));
    }

    #[test]
    fn unsigned_and_untrusted_packs_leave_the_default_in_force() {
        let mut r = registry();
        let unsigned = Pack::default_pack().to_json_pretty();
        assert_eq!(r.activate_signed(unsigned.as_bytes()).unwrap_err(), PackError::Unsigned);
        let mut stranger = PackRegistry::new(TrustedKeys::default());
        assert!(matches!(stranger.activate_signed(&clinic_pack(1, 140)), Err(PackError::UntrustedKey { .. })));
        assert_eq!(r.active(), Pack::default_pack());
        assert_eq!(stranger.active(), Pack::default_pack());
    }

    #[test]
    fn an_older_version_is_refused_and_the_same_version_is_idempotent() {
        let mut r = registry();
        r.activate_signed(&clinic_pack(5, 135)).unwrap();
        let err = r.activate_signed(&clinic_pack(4, 120)).unwrap_err();
        assert_eq!(err, PackError::Downgrade { id: "org.example.clinic".into(), active: 5, offered: 4 });
        assert_eq!(r.active().thresholds.bp_limit.systolic, 135);
        assert_eq!(r.activate_signed(&clinic_pack(5, 135)).unwrap().version, 5);
    }
}
