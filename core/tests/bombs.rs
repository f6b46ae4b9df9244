//! Decompression bombs against the chunk reader every peer's bytes go
//! through (`split_chunks`, then `CareRecord::new_changes` on both the
//! server and the device): each bomb is refused, and the memory allocated
//! while refusing it stays a small fraction of what it would inflate to.
//!
//! A binary of its own, because it measures the process's allocations with
//! a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use katcore::record::{split_chunks, CareRecord, CheckInInput, RecordError, MAX_INFLATED_BYTES};
use sha2::{Digest, Sha256};

/// Counts live bytes and the peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Serialises the measurements when the tests share a process (`cargo test`).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What `f` allocated at its peak beyond what was live before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _alone = MEASURING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let value = f();
    (value, PEAK.load(Ordering::Relaxed) - before)
}

/// Most a refused bomb may allocate: the chunk bookkeeping and the inflater's
/// window, nowhere near the 64 MiB budget, let alone the bomb's size.
const BOUND: usize = 4 * 1024 * 1024;

/// Raw DEFLATE of `size` zero bytes (about 1,000:1 at the best level).
fn deflated_zeros(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..size / block.len() {
        encoder.write_all(&block).unwrap();
    }
    encoder.finish().unwrap()
}

fn uleb(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A chunk of `chunk_type` around `data` with a valid checksum.
fn chunk(chunk_type: u8, data: &[u8]) -> Vec<u8> {
    let mut length = Vec::new();
    uleb(data.len() as u64, &mut length);
    let mut hasher = Sha256::new();
    hasher.update([chunk_type]);
    hasher.update(&length);
    hasher.update(data);
    let checksum = hasher.finalize();
    [&[0x85, 0x6f, 0x4a, 0x83][..], &checksum[..4], &[chunk_type], &length, data].concat()
}

/// A document chunk with no actors or heads and one deflated change column
/// holding `column`.
fn document_with_deflated_column(column: &[u8]) -> Vec<u8> {
    let mut data = vec![0, 0]; // no actors, no heads
    data.push(1); // one change column…
    uleb((1 << 4) | 0b1000, &mut data); // …id 1, deflated
    uleb(column.len() as u64, &mut data);
    data.push(0); // no op columns
    data.extend_from_slice(column);
    chunk(0, &data)
}

fn assert_refused_as_a_bomb(result: Result<impl std::fmt::Debug, RecordError>) {
    match result {
        Err(RecordError::Malformed { reason }) => assert!(reason.contains("inflate past 64 MiB"), "{reason}"),
        other => panic!("a bomb was not refused as one: {other:?}"),
    }
}

#[test]
fn a_compressed_change_bomb_is_refused_within_a_bounded_allocation() {
    let bomb = chunk(2, &deflated_zeros(256 * 1024 * 1024));
    assert!(bomb.len() < 1024 * 1024, "the bomb is {} bytes", bomb.len());
    let record = CareRecord::default();
    let (result, peak) = peak_during(|| record.new_changes(&bomb).map(|changes| changes.len()));
    assert_refused_as_a_bomb(result);
    assert!(peak < BOUND, "refusing the bomb allocated {peak} bytes");
}

#[test]
fn a_document_column_bomb_is_refused_within_a_bounded_allocation() {
    let bomb = document_with_deflated_column(&deflated_zeros(256 * 1024 * 1024));
    let (result, peak) = peak_during(|| split_chunks(&bomb).map(|chunks| chunks.len()));
    assert_refused_as_a_bomb(result);
    assert!(peak < BOUND, "refusing the bomb allocated {peak} bytes");
}

#[test]
fn loading_or_merging_a_bomb_is_refused_within_a_bounded_allocation() {
    let bomb = chunk(2, &deflated_zeros(256 * 1024 * 1024));
    let (loaded, peak) = peak_during(|| CareRecord::load(&bomb, automerge::ActorId::random()).map(|_| ()));
    assert_refused_as_a_bomb(loaded);
    assert!(peak < BOUND, "loading the bomb allocated {peak} bytes");
    let mut record = CareRecord::default();
    let (merged, peak) = peak_during(|| record.merge_bytes(&bomb));
    assert_refused_as_a_bomb(merged);
    assert!(peak < BOUND, "merging the bomb allocated {peak} bytes");
}

#[test]
fn many_small_bombs_share_one_budget() {
    // Each inflates to 16 MiB, under the cap alone; five in one body are not.
    let one = chunk(2, &deflated_zeros(16 * 1024 * 1024));
    assert_eq!(MAX_INFLATED_BYTES, 4 * 16 * 1024 * 1024);
    assert_eq!(split_chunks(&one.repeat(4)).unwrap().len(), 4, "exactly the budget is allowed");
    assert_refused_as_a_bomb(split_chunks(&one.repeat(5)).map(|chunks| chunks.len()));
}

#[test]
fn honest_compressed_changes_and_documents_still_load() {
    let mut record = CareRecord::default();
    for mood in 0..50 {
        record.add_check_in(CheckInInput::Mood(mood % 10), chrono::Utc::now()).unwrap();
    }
    // Notes long enough that their changes are worth deflating (over 256 bytes).
    record.add_clinician_note("Dr. A", &"Reviewed the week's check-ins. ".repeat(40), chrono::Utc::now()).unwrap();
    let whole = record.save();
    let mut server = CareRecord::default();
    assert_eq!(server.new_changes(&whole).unwrap().len(), 51);
    // A third-party client may send each change deflated (chunk type 2).
    let mut compressed = Vec::new();
    for mut change in record.document().get_changes(&[]) {
        compressed.extend_from_slice(&change.bytes());
    }
    assert!(split_chunks(&compressed).unwrap().iter().any(|c| c.kind == katcore::record::ChunkKind::CompressedChange));
    let changes = server.new_changes(&compressed).unwrap();
    assert_eq!(changes.len(), 51);
    server.apply_changes(changes).unwrap();
    assert_eq!(server.heads(), record.heads());
}
