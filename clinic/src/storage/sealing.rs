//! Encryption of the record blobs the clinic database keeps.
//!
//! Every record snapshot and appended change is sealed with
//! XChaCha20-Poly1305 under the server's record key, which the server reads
//! from a file at start (`--record-key`) and which is never written to the
//! database. A sealed blob is laid out as
//!
//! ```text
//! 0x01 (format) || key id (4 bytes) || nonce (24 bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! where the key id is the first 4 bytes of the SHA-256 of the key, so that
//! during a key rotation each blob names the key that opens it. The
//! associated data binds the blob to its row:
//! `b"katcore-clinic/v1\0" || table || b"\0" || client id || b"\0" || row`,
//! so a blob copied into another client's row, or another row of the same
//! client, does not open there.
//!
//! A key file holds one line, `katcore-record-key-v1 ` followed by the key
//! in standard base64, and is created with mode 0600.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::StorageError;

const FORMAT_V1: u8 = 0x01;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const AD_PREFIX: &[u8] = b"katcore-clinic/v1\0";
const FILE_PREFIX: &str = "katcore-record-key-v1 ";

/// The 32-byte key record blobs are sealed with; wiped from memory when
/// dropped, and `Debug` shows only its id.
pub struct RecordKey([u8; 32]);

impl RecordKey {
    /// A new random key.
    pub fn generate() -> RecordKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        RecordKey(key)
    }

    /// Reads a key file.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] naming the file and what is wrong with it.
    pub fn from_file(path: &Path) -> Result<RecordKey, StorageError> {
        let problem = |what: &str| StorageError::RecordKey(format!("{}: {what}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| problem(&format!("cannot read the key file: {e}")))?;
        let encoded = text
            .trim()
            .strip_prefix(FILE_PREFIX.trim_end())
            .map(str::trim)
            .ok_or_else(|| problem("not a record key file (it should start with `katcore-record-key-v1`)"))?;
        let mut bytes = STANDARD.decode(encoded).map_err(|_| problem("the key is not base64"))?;
        let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| problem("the key is not 32 bytes"));
        bytes.zeroize();
        Ok(RecordKey(key?))
    }

    /// Writes the key to a new file (mode 0600); an existing file is never
    /// overwritten.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when the file exists or cannot be written.
    pub fn write_new(&self, path: &Path) -> Result<(), StorageError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|e| StorageError::RecordKey(format!("{}: cannot create the key file: {e}", path.display())))?;
        let mut line = format!("{FILE_PREFIX}{}\n", STANDARD.encode(self.0));
        let written = file.write_all(line.as_bytes()).and_then(|()| file.sync_all());
        line.zeroize();
        written.map_err(|e| StorageError::RecordKey(format!("{}: cannot write the key file: {e}", path.display())))
    }

    /// The key's id: the first 4 bytes of its SHA-256, in hex.
    pub fn id(&self) -> String {
        self.id_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn id_bytes(&self) -> [u8; KEY_ID_LEN] {
        let digest = Sha256::digest(self.0);
        [digest[0], digest[1], digest[2], digest[3]]
    }
}

impl Drop for RecordKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for RecordKey {}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({})", self.id())
    }
}

/// The tables whose blobs are sealed, as named in the associated data.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sealed {
    /// `record_snapshots`, row: the snapshot's `through_seq`.
    Snapshot,
    /// `record_changes`, row: the change's `seq`.
    Change,
}

impl Sealed {
    fn name(self) -> &'static str {
        match self {
            Sealed::Snapshot => "record_snapshots",
            Sealed::Change => "record_changes",
        }
    }
}

/// Seals with the current key; opens with the current or a previous one.
pub(crate) struct Sealer {
    current: ([u8; KEY_ID_LEN], XChaCha20Poly1305),
    previous: Vec<([u8; KEY_ID_LEN], XChaCha20Poly1305)>,
}

impl Sealer {
    /// A sealer writing under `current` and also reading blobs sealed under
    /// `previous` keys (during a rotation).
    pub(crate) fn new(current: &RecordKey, previous: &[RecordKey]) -> Sealer {
        let cipher = |key: &RecordKey| (key.id_bytes(), XChaCha20Poly1305::new((&key.0).into()));
        Sealer { current: cipher(current), previous: previous.iter().map(cipher).collect() }
    }

    /// Seals `plaintext` for `row` of `table` in `client_id`'s record.
    pub(crate) fn seal(
        &self,
        table: Sealed,
        client_id: &str,
        row: i64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(table, client_id, row);
        let (id, aead) = &self.current;
        let ciphertext = aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| StorageError::Database("a record blob is too large to encrypt".into()))?;
        let mut blob = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        blob.push(FORMAT_V1);
        blob.extend_from_slice(id);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Opens a blob read from `row` of `table` in `client_id`'s record.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when no key given to the server has the
    /// blob's key id; [`StorageError::Corrupt`] when the blob is malformed,
    /// altered or moved from another row.
    pub(crate) fn open(&self, table: Sealed, client_id: &str, row: i64, blob: &[u8]) -> Result<Vec<u8>, StorageError> {
        if blob.len() < HEADER_LEN + TAG_LEN || blob[0] != FORMAT_V1 {
            return Err(StorageError::Corrupt("a record blob is not sealed"));
        }
        let (id, rest) = blob[1..].split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aead = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(key_id, _)| key_id == id)
            .map(|(_, aead)| aead)
            .ok_or_else(|| {
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                StorageError::RecordKey(format!(
                    "a record blob is sealed under key {hex}, which the server was not given (--old-record-key)"
                ))
            })?;
        let aad = associated_data(table, client_id, row);
        aead.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| StorageError::Corrupt("a record blob does not authenticate"))
    }

    /// Whether `blob` is sealed under the current key.
    pub(crate) fn is_current(&self, blob: &[u8]) -> bool {
        blob.get(1..1 + KEY_ID_LEN) == Some(&self.current.0[..])
    }

    /// `blob` sealed again under the current key, or `None` when it already
    /// is: the last step of a key rotation, on either backend.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when the blob's key was not given.
    pub(crate) fn reseal(
        &self,
        table: Sealed,
        client_id: &str,
        row: i64,
        blob: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if self.is_current(blob) {
            return Ok(None);
        }
        let plain = self.open(table, client_id, row, blob)?;
        self.seal(table, client_id, row, &plain).map(Some)
    }
}

/// Rewrites every record blob for which `f` (given its table, client, row
/// and stored bytes) returns new bytes; returns how many it rewrote. What
/// key rotation (reseal) and the upgrade (seal clear blobs) share.
pub(crate) fn rewrite_record_blobs(
    tx: &rusqlite::Transaction<'_>,
    mut f: impl FnMut(Sealed, &str, i64, &[u8]) -> Result<Option<Vec<u8>>, StorageError>,
) -> Result<u64, StorageError> {
    let mut rewritten = 0;
    for (table, select, update) in [
        (
            Sealed::Change,
            "SELECT client_id, seq, blob FROM record_changes",
            "UPDATE record_changes SET blob = ?3 WHERE client_id = ?1 AND seq = ?2",
        ),
        (
            Sealed::Snapshot,
            "SELECT client_id, through_seq, blob FROM record_snapshots",
            "UPDATE record_snapshots SET blob = ?3 WHERE client_id = ?1 AND through_seq = ?2",
        ),
    ] {
        let rows: Vec<(String, i64, Vec<u8>)> = {
            let mut stmt = tx.prepare(select)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (client_id, row, blob) in rows {
            if let Some(new) = f(table, &client_id, row, &blob)? {
                tx.execute(update, rusqlite::params![client_id, row, new])?;
                rewritten += 1;
            }
        }
    }
    Ok(rewritten)
}

fn associated_data(table: Sealed, client_id: &str, row: i64) -> Vec<u8> {
    let row = row.to_string();
    let mut aad = Vec::with_capacity(AD_PREFIX.len() + 20 + client_id.len() + row.len());
    aad.extend_from_slice(AD_PREFIX);
    aad.extend_from_slice(table.name().as_bytes());
    aad.push(0);
    aad.extend_from_slice(client_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_open_only_in_their_row_and_under_a_known_key() {
        let old = RecordKey::generate();
        let new = RecordKey::generate();
        let sealer = Sealer::new(&old, &[]);
        let blob = sealer.seal(Sealed::Change, "client-a", 7, b"journal text").unwrap();
        assert!(!blob.windows(7).any(|w| w == b"journal"));
        assert_eq!(sealer.open(Sealed::Change, "client-a", 7, &blob).unwrap(), b"journal text");
        assert!(matches!(sealer.open(Sealed::Change, "client-b", 7, &blob), Err(StorageError::Corrupt(_))));
        assert!(matches!(sealer.open(Sealed::Change, "client-a", 8, &blob), Err(StorageError::Corrupt(_))));
        assert!(matches!(sealer.open(Sealed::Snapshot, "client-a", 7, &blob), Err(StorageError::Corrupt(_))));
        let mut flipped = blob.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(sealer.open(Sealed::Change, "client-a", 7, &flipped), Err(StorageError::Corrupt(_))));
        // After a rotation the old blob still opens with the old key given…
        let rotated = Sealer::new(&new, &[RecordKey(old.0)]);
        assert_eq!(rotated.open(Sealed::Change, "client-a", 7, &blob).unwrap(), b"journal text");
        assert!(!rotated.is_current(&blob));
        // …and not without it, with an error naming the missing key.
        let error = Sealer::new(&new, &[]).open(Sealed::Change, "client-a", 7, &blob).unwrap_err();
        assert!(error.to_string().contains(&old.id()), "{error}");
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("katcore-record-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record.key");
        let _ = std::fs::remove_file(&path);
        let key = RecordKey::generate();
        key.write_new(&path).unwrap();
        assert_eq!(RecordKey::from_file(&path).unwrap().id(), key.id());
        assert!(key.write_new(&path).is_err(), "an existing key file is never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(RecordKey::from_file(&path).unwrap_err().to_string().contains("not a record key file"));
        std::fs::write(&path, "katcore-record-key-v1 AAAA").unwrap();
        assert!(RecordKey::from_file(&path).unwrap_err().to_string().contains("not 32 bytes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
