//! Authenticated encryption of every blob the store writes.
//!
//! Each blob is sealed with XChaCha20-Poly1305 under the host app's
//! [`StoreKey`] and a fresh random 24-byte nonce, and laid out as
//!
//! ```text
//! 0x01 (format version) || nonce (24 bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! The associated data names the blob's place in the database,
//! `b"katcore-store/v1\0" || table || b"\0" || row key`, so a blob copied,
//! moved or swapped into another row does not authenticate there. Table names
//! are fixed and contain no NUL, and the row key comes last, so no two places
//! share associated data.
//!
//! Caller-chosen row keys (meta keys, private entry ids, sync peers such as
//! the clinic's URL) are blinded before SQLite sees them: the row key is
//! [`Cipher::blind`], the hex of the first 16 bytes of
//! HMAC-SHA256(row-id key, table || 0 || key), where the row-id key is
//! HMAC-SHA256(store key, `b"katcore-store/row-ids/v1"`). The clear key
//! travels inside the sealed blob (see `store::frame`).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit as HmacKeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::StoreError;

/// Length of a [`StoreKey`] in bytes.
pub(super) const KEY_LEN: usize = 32;

const FORMAT_V1: u8 = 0x01;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
const AD_PREFIX: &[u8] = b"katcore-store/v1\0";

/// The meta row whose value proves, on open, that the key fits the file.
pub(crate) const KEY_CHECK_ROW: &str = "key_check";
/// What the key-check row decrypts to.
const KEY_CHECK_PLAINTEXT: &[u8] = b"katcore store key check v1";

/// The 32-byte key a store is encrypted with.
///
/// The host app generates it once and keeps it in the platform's key store
/// (Android Keystore, iOS Keychain); the store never writes it anywhere. The
/// bytes are wiped from memory when the key is dropped, and `Debug` shows
/// only `StoreKey(…)`.
pub struct StoreKey([u8; KEY_LEN]);

impl StoreKey {
    /// Takes a key from the host app's key store.
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] unless `bytes` is exactly 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey, StoreError> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| StoreError::InvalidKey)?;
        Ok(StoreKey(bytes))
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for StoreKey {}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

/// A table of the store's database, as named in the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Meta,
    Snapshot,
    Changes,
    PrivateEntries,
    SyncState,
}

impl Table {
    /// The table's SQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Snapshot => "snapshot",
            Table::Changes => "changes",
            Table::PrivateEntries => "private_entries",
            Table::SyncState => "sync_state",
        }
    }
}

/// Why a stored blob could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Too short or of an unknown format version.
    Malformed,
    /// Altered, moved to another row, or sealed under another key.
    Unauthentic,
}

/// Seals and opens blobs under one store key.
///
/// The cipher keeps its own copy of the key and wipes it on drop.
pub(crate) struct Cipher {
    aead: XChaCha20Poly1305,
    row_ids: Hmac<Sha256>,
}

impl Cipher {
    pub(crate) fn new(key: &StoreKey) -> Cipher {
        let mut derive = <Hmac<Sha256> as HmacKeyInit>::new_from_slice(&key.0).expect("HMAC takes any key length");
        derive.update(b"katcore-store/row-ids/v1");
        let mut row_id_key = derive.finalize().into_bytes();
        let row_ids = <Hmac<Sha256> as HmacKeyInit>::new_from_slice(&row_id_key).expect("HMAC takes any key length");
        row_id_key.as_mut_slice().zeroize();
        Cipher { aead: XChaCha20Poly1305::new((&key.0).into()), row_ids }
    }

    /// The row key `key` is stored under in `table`: a keyed hash, so the
    /// file shows no caller-chosen key (see the module documentation).
    pub(crate) fn blind(&self, table: Table, key: &str) -> String {
        let mut mac = self.row_ids.clone();
        mac.update(table.name().as_bytes());
        mac.update(&[0]);
        mac.update(key.as_bytes());
        mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Encrypts `plaintext` for the row `row` of `table`.
    pub(crate) fn seal(&self, table: Table, row: &str, plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let aad = associated_data(table, row);
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| StoreError::Storage { reason: "a blob is too large to encrypt".into() })?;
        let mut blob = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        blob.push(FORMAT_V1);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Decrypts a blob read from the row `row` of `table`.
    pub(crate) fn open(&self, table: Table, row: &str, blob: &[u8]) -> Result<Vec<u8>, OpenError> {
        if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = blob[1..].split_at(NONCE_LEN);
        let aad = associated_data(table, row);
        self.aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| OpenError::Unauthentic)
    }

    /// The value of the key-check row for a new store.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>, StoreError> {
        self.seal(Table::Meta, KEY_CHECK_ROW, KEY_CHECK_PLAINTEXT)
    }

    /// Checks the key-check row read from an existing store.
    ///
    /// # Errors
    /// [`StoreError::WrongKey`] when the value does not authenticate under
    /// this key (a damaged key-check row looks the same), and
    /// [`StoreError::Corrupt`] when it is not a key check at all.
    pub(crate) fn verify_key_check(&self, blob: &[u8]) -> Result<(), StoreError> {
        match self.open(Table::Meta, KEY_CHECK_ROW, blob) {
            Ok(plaintext) if plaintext == KEY_CHECK_PLAINTEXT => Ok(()),
            Ok(_) | Err(OpenError::Malformed) => Err(StoreError::Corrupt { what: "the key check is malformed" }),
            Err(OpenError::Unauthentic) => Err(StoreError::WrongKey),
        }
    }
}

fn associated_data(table: Table, row: &str) -> Vec<u8> {
    let name = table.name().as_bytes();
    let mut aad = Vec::with_capacity(AD_PREFIX.len() + name.len() + 1 + row.len());
    aad.extend_from_slice(AD_PREFIX);
    aad.extend_from_slice(name);
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

/// `N` bytes from the operating system's random number generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|_| StoreError::Storage { reason: "the system random number generator failed".into() })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(byte: u8) -> Cipher {
        Cipher::new(&StoreKey::from_bytes(&[byte; KEY_LEN]).unwrap())
    }

    #[test]
    fn key_must_be_32_bytes_and_debug_hides_it() {
        assert!(matches!(StoreKey::from_bytes(&[7; 31]), Err(StoreError::InvalidKey)));
        assert!(matches!(StoreKey::from_bytes(&[7; 33]), Err(StoreError::InvalidKey)));
        assert!(matches!(StoreKey::from_bytes(&[]), Err(StoreError::InvalidKey)));
        let key = StoreKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "StoreKey(…)");
    }

    #[test]
    fn row_keys_are_blinded_as_every_earlier_version_blinded_them() {
        // Stores already on phones find their rows by these values: a change of
        // algorithm or of crate that altered them would lose every blinded row.
        // Expected value from an independent implementation (Python's hmac and
        // hashlib): HMAC-SHA256(HMAC-SHA256(key, "katcore-store/row-ids/v1"),
        // "sync_state" || 0x00 || "server_url"), first 16 bytes, in hex.
        let cipher = Cipher::new(&StoreKey::from_bytes(&std::array::from_fn::<u8, KEY_LEN, _>(|i| i as u8)).unwrap());
        assert_eq!(cipher.blind(Table::SyncState, "server_url"), "b9b527ecb64caf9a882c22c0e7177906");
    }

    #[test]
    fn sealed_blob_has_the_documented_layout_and_round_trips() {
        let cipher = cipher(1);
        let blob = cipher.seal(Table::Changes, "7", b"hello").unwrap();
        assert_eq!(blob[0], FORMAT_V1);
        assert_eq!(blob.len(), 1 + NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(cipher.open(Table::Changes, "7", &blob).unwrap(), b"hello");
        // A fresh nonce every time.
        assert_ne!(cipher.seal(Table::Changes, "7", b"hello").unwrap(), blob);
    }

    #[test]
    fn a_blob_only_opens_in_its_own_row_under_its_own_key() {
        let cipher = cipher(1);
        let blob = cipher.seal(Table::Changes, "7", b"hello").unwrap();
        assert_eq!(cipher.open(Table::Changes, "8", &blob), Err(OpenError::Unauthentic));
        assert_eq!(cipher.open(Table::PrivateEntries, "7", &blob), Err(OpenError::Unauthentic));
        assert_eq!(self::cipher(2).open(Table::Changes, "7", &blob), Err(OpenError::Unauthentic));
        for i in 1..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x01;
            assert_eq!(cipher.open(Table::Changes, "7", &flipped), Err(OpenError::Unauthentic), "byte {i}");
        }
    }

    #[test]
    fn malformed_blobs_are_told_apart() {
        let cipher = cipher(1);
        let mut blob = cipher.seal(Table::Meta, "actor", b"").unwrap();
        assert_eq!(cipher.open(Table::Meta, "actor", &blob).unwrap(), b"");
        assert_eq!(cipher.open(Table::Meta, "actor", &blob[..blob.len() - 1]), Err(OpenError::Malformed));
        assert_eq!(cipher.open(Table::Meta, "actor", &[]), Err(OpenError::Malformed));
        blob[0] = 0x02;
        assert_eq!(cipher.open(Table::Meta, "actor", &blob), Err(OpenError::Malformed));
    }

    #[test]
    fn key_check_tells_a_wrong_key_from_a_malformed_row() {
        let check = cipher(1).key_check().unwrap();
        assert!(cipher(1).verify_key_check(&check).is_ok());
        assert!(matches!(cipher(2).verify_key_check(&check), Err(StoreError::WrongKey)));
        assert!(matches!(cipher(1).verify_key_check(&check[..10]), Err(StoreError::Corrupt { .. })));
        let other = cipher(1).seal(Table::Meta, KEY_CHECK_ROW, b"something else").unwrap();
        assert!(matches!(cipher(1).verify_key_check(&other), Err(StoreError::Corrupt { .. })));
    }
}
