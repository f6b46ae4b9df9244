//! Automerge chunk framing: how saved documents and change blobs are cut
//! into chunks, and which chunks katcore accepts from outside.
//!
//! Every Automerge chunk starts with the magic bytes `85 6f 4a 83`, a 4-byte
//! checksum (the first 4 bytes of the SHA-256 of the type, the length and the
//! data), a type byte (0 document, 1 change, 2 deflated change, 3 bundle) and
//! the data length as unsigned LEB128. Automerge itself silently skips a chunk
//! it cannot frame after the first one, so bytes from a peer are framed here
//! first: a corrupted upload is an error, never a partial `200`.
//!
//! Deflated parts (a compressed change chunk, a document's compressed
//! columns) are inflated here into a counter first, a few kilobytes of
//! memory at a time, and refused once one peer's bytes would inflate past
//! [`MAX_INFLATED_BYTES`]: Automerge inflates them whole, so a 1 MiB bomb
//! would otherwise become gigabytes before anything else is checked.

use std::io::Read as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{Automerge, Change};
use sha2::{Digest, Sha256};

use super::RecordError;

/// The bytes that start every Automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// What one chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    /// A whole document (`save`).
    Document,
    /// One change (`save_after` writes one per change).
    Change,
    /// One deflate-compressed change; its checksum covers the inflated
    /// change and is checked by Automerge when it inflates it.
    CompressedChange,
}

/// One framed chunk.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    /// What it holds.
    pub kind: ChunkKind,
    /// The whole chunk, header included.
    pub bytes: &'a [u8],
}

fn malformed(reason: &str) -> RecordError {
    RecordError::Malformed { reason: reason.to_owned() }
}

/// One chunk's framing, as far as it could be read.
struct Frame<'a> {
    checksum: &'a [u8],
    type_byte: u8,
    length_bytes: &'a [u8],
    data: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

/// The first chunk of `bytes`, if its framing (magic, checksum, type, LEB128
/// length, data within the bytes) can be read.
fn frame(bytes: &[u8]) -> Option<Frame<'_>> {
    let (magic, rest) = bytes.split_at_checked(4)?;
    let (checksum, rest) = rest.split_at_checked(4)?;
    let (&type_byte, rest) = rest.split_first()?;
    if magic != CHUNK_MAGIC {
        return None;
    }
    let (length, length_size) = read_uleb128(rest)?;
    let (length_bytes, rest) = rest.split_at(length_size);
    let (data, rest) = rest.split_at_checked(usize::try_from(length).ok()?)?;
    let whole = &bytes[..bytes.len() - rest.len()];
    Some(Frame { checksum, type_byte, length_bytes, data, whole, rest })
}

/// Most bytes the deflated parts of one call's chunks may inflate to.
///
/// A two-year record saves to well under 4 MiB (BENCHMARKS.md), and a sync
/// body is at most 16 MiB before inflation; 64 MiB leaves room for both
/// while keeping a bomb's cost to counting 64 MiB.
pub const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;

/// Cuts `bytes` into chunks: each must be well framed (magic, known type,
/// length within the bytes) and pass its checksum (compressed ones are
/// checked when inflated), and all deflated parts together must inflate to
/// at most [`MAX_INFLATED_BYTES`]. Bundle chunks are refused: katcore never
/// writes them, and Automerge 0.12's decoder trusts their run lengths (below).
///
/// # Errors
/// [`RecordError::Malformed`] naming what was wrong; no chunk is returned then.
pub fn split_chunks(mut bytes: &[u8]) -> Result<Vec<Chunk<'_>>, RecordError> {
    const MALFORMED: &str = "the changes are not well-formed Automerge chunks";
    let mut chunks = Vec::new();
    let mut inflate_budget = MAX_INFLATED_BYTES;
    while !bytes.is_empty() {
        let frame = frame(bytes).ok_or_else(|| malformed(MALFORMED))?;
        let kind = match frame.type_byte {
            0 => ChunkKind::Document,
            1 => ChunkKind::Change,
            2 => ChunkKind::CompressedChange,
            BUNDLE_CHUNK => return Err(malformed("bundle chunks are not accepted")),
            _ => return Err(malformed(MALFORMED)),
        };
        if kind != ChunkKind::CompressedChange {
            let mut hasher = Sha256::new();
            hasher.update([frame.type_byte]);
            hasher.update(frame.length_bytes);
            hasher.update(frame.data);
            if hasher.finalize()[..4] != *frame.checksum {
                return Err(malformed("a chunk of the changes fails its checksum"));
            }
        }
        for part in deflated_parts(frame.type_byte, frame.data).ok_or_else(|| malformed(MALFORMED))? {
            spend_inflating(part, &mut inflate_budget)?;
        }
        chunks.push(Chunk { kind, bytes: frame.whole });
        bytes = frame.rest;
    }
    Ok(chunks)
}

/// The deflated parts of a chunk of `type_byte` with `data`: a compressed
/// change is one, a document has one per deflated column, others none;
/// `None` when a document's prefix does not parse.
fn deflated_parts(type_byte: u8, data: &[u8]) -> Option<Vec<&[u8]>> {
    match type_byte {
        0 => deflated_columns(data),
        2 => Some(vec![data]),
        _ => Some(Vec::new()),
    }
}

/// Inflates `deflated` into a counter, taking what it inflates to from
/// `budget`; refuses it once the budget is spent or when it is not DEFLATE.
fn spend_inflating(deflated: &[u8], budget: &mut u64) -> Result<(), RecordError> {
    let mut inflater = flate2::bufread::DeflateDecoder::new(deflated).take(budget.saturating_add(1));
    let inflated = std::io::copy(&mut inflater, &mut std::io::sink())
        .map_err(|_| malformed("a compressed part of the changes does not inflate"))?;
    if inflated > *budget {
        return Err(malformed(&format!(
            "the compressed parts of the changes inflate past {} MiB",
            MAX_INFLATED_BYTES / (1024 * 1024)
        )));
    }
    *budget -= inflated;
    Ok(())
}

/// The data of every deflated column of a document chunk's `data`, or
/// `None` when its prefix does not parse (Automerge refuses it then too).
///
/// The layout (Automerge's binary format): actors (count, then each
/// length-prefixed), heads (count × 32 bytes), change column metadata and op
/// column metadata (each: count, then (spec, length) pairs; bit 3 of a spec
/// marks a deflated column), then the change columns' data and the op
/// columns' data in metadata order.
fn deflated_columns(data: &[u8]) -> Option<Vec<&[u8]>> {
    const DEFLATE_BIT: u64 = 0b1000;
    fn number(rest: &mut &[u8]) -> Option<u64> {
        let (value, size) = read_uleb128(rest)?;
        *rest = &rest[size..];
        Some(value)
    }
    let mut rest = data;
    for _ in 0..number(&mut rest)? {
        let length = usize::try_from(number(&mut rest)?).ok()?;
        rest = rest.get(length..)?;
    }
    let heads = usize::try_from(number(&mut rest)?).ok()?;
    rest = rest.get(heads.checked_mul(32)?..)?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let count = number(&mut rest)?;
        for _ in 0..count {
            let spec = number(&mut rest)?;
            let length = usize::try_from(number(&mut rest)?).ok()?;
            columns.push((spec & DEFLATE_BIT != 0, length));
        }
    }
    let mut deflated = Vec::new();
    for (is_deflated, length) in columns {
        let (column, after) = rest.split_at_checked(length)?;
        if is_deflated {
            deflated.push(column);
        }
        rest = after;
    }
    Some(deflated)
}

/// Refuses bytes whose deflated parts would inflate past
/// [`MAX_INFLATED_BYTES`], walking the chunks' framing leniently as
/// [`refuse_bundles`] does: for entry points that hand peers' bytes straight
/// to Automerge (`CareRecord::load`, `CareRecord::merge_bytes`).
pub(crate) fn refuse_bombs(mut bytes: &[u8]) -> Result<(), RecordError> {
    let mut budget = MAX_INFLATED_BYTES;
    while let Some(frame) = frame(bytes) {
        for part in deflated_parts(frame.type_byte, frame.data).unwrap_or_default() {
            spend_inflating(part, &mut budget)?;
        }
        bytes = frame.rest;
    }
    Ok(())
}

/// The chunk type of a bundle: several changes column-encoded together.
const BUNDLE_CHUNK: u8 = 3;

/// Refuses bytes that contain a bundle chunk, walking the chunks' framing
/// as far as it is well formed; Automerge stops at the first chunk it cannot
/// frame, and so does this (stored bytes are read leniently, as Automerge
/// reads them; bytes from a peer go through [`split_chunks`] first).
///
/// A record is only ever saved as a document chunk (`save`) or change
/// chunks (`save_after`); bundles come only from Automerge's explicit
/// `bundle` API, which katcore never calls. Their decoder in Automerge 0.12
/// panics on malformed columns and, worse, trusts run lengths: a 355-byte
/// bundle made it allocate 4 GiB (found by the `record_load` fuzz target,
/// `fuzz/regressions/record_load/`), which no `catch_unwind` can stop.
pub(crate) fn refuse_bundles(mut bytes: &[u8]) -> Result<(), RecordError> {
    while let Some(frame) = frame(bytes) {
        if frame.type_byte == BUNDLE_CHUNK {
            return Err(malformed("bundle chunks are not accepted"));
        }
        bytes = frame.rest;
    }
    Ok(())
}

/// Every change in `bytes` (a saved document, change chunks, or both) that
/// `known` does not have yet, each once, in the order they appear.
///
/// # Errors
/// [`RecordError::Malformed`] when the bytes do not frame or decode.
pub(crate) fn new_changes(known: &Automerge, bytes: &[u8]) -> Result<Vec<Change>, RecordError> {
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in split_chunks(bytes)? {
        let decoded = match chunk.kind {
            ChunkKind::Document => {
                contained(|| Automerge::load(chunk.bytes).map(|doc| doc.get_changes(&[])).map_err(|e| e.to_string()))?
            }
            ChunkKind::Change | ChunkKind::CompressedChange => {
                contained(|| Change::try_from(chunk.bytes).map(|c| vec![c]).map_err(|e| e.to_string()))?
            }
        };
        for change in decoded {
            let hash = change.hash();
            if known.get_change_meta_by_hash(&hash).is_none() && seen.insert(hash) {
                changes.push(change);
            }
        }
    }
    Ok(changes)
}

/// Runs a decoder on bytes from outside, turning an error or a panic of
/// Automerge's into [`RecordError::Malformed`] (Automerge 0.12 panics on
/// some malformed chunks instead of answering an error).
pub(crate) fn contained<T>(decode: impl FnOnce() -> Result<T, String>) -> Result<T, RecordError> {
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) | Err(_) => Err(malformed("a chunk could not be decoded")),
    }
}

/// An unsigned LEB128 number and how many bytes it took.
fn read_uleb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        let bits = u64::from(byte & 0x7f);
        value |= bits.checked_shl(7 * i as u32).filter(|shifted| shifted >> (7 * i as u32) == bits)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CareRecord, CheckInInput};

    #[test]
    fn real_changes_frame_and_damage_is_caught() {
        let mut record = CareRecord::default();
        record.add_check_in(CheckInInput::Mood(4), chrono::Utc::now()).unwrap();
        let start = record.heads();
        record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
        let whole = record.save();
        let incremental = record.save_after(&start);
        let both = [whole.clone(), incremental.clone()].concat();
        assert_eq!(split_chunks(&whole).unwrap().len(), 1);
        assert_eq!(split_chunks(&incremental).unwrap().len(), 1);
        assert_eq!(split_chunks(&both).unwrap().len(), 2);
        assert!(split_chunks(&[]).unwrap().is_empty());
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(split_chunks(&flipped).is_err());
        assert!(split_chunks(&whole[..whole.len() - 1]).is_err());
        assert!(split_chunks(&[whole.clone(), b"garbage".to_vec()].concat()).is_err());
        assert!(split_chunks(b"\x85\x6f\x4a\x83garbage").is_err());
    }

    #[test]
    fn new_changes_are_those_the_record_lacks_each_once() {
        let mut record = CareRecord::default();
        record.add_check_in(CheckInInput::Mood(4), chrono::Utc::now()).unwrap();
        let mut server = CareRecord::default();
        server.merge(&record).unwrap();
        let start = record.heads();
        record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
        let incremental = record.save_after(&start);
        // The whole document and the same change again: only the new change counts, once.
        let bytes = [record.save(), incremental.clone()].concat();
        let fresh = new_changes(server.document(), &bytes).unwrap();
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].hash(), record.heads()[0]);
        assert!(new_changes(record.document(), &bytes).unwrap().is_empty());
    }

    #[test]
    fn leb128() {
        assert_eq!(read_uleb128(&[0x00]), Some((0, 1)));
        assert_eq!(read_uleb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
        assert_eq!(read_uleb128(&[0x80]), None);
        assert_eq!(read_uleb128(&[0xff; 11]), None);
    }
}
