//! Care-record benchmarks (issue 3): a two-year record opened from its
//! encrypted store, one durable journal write, one checklist evaluation, the
//! record's size on disk and the peak memory of opening it.
//!
//! Run with `cargo bench -p katcore --bench record` (or `scripts/bench.sh`).
//! Before the timed benchmarks, the binary builds the record once in a
//! temporary directory ([`two_year::build_record`], through the public API,
//! one durable change per call), compacts it, closes and reopens it, and
//! prints, clearly labelled on stderr:
//! - the on-disk size (database file + `-wal` after compaction and reopen)
//!   against the same content as gzip-compressed JSON (`record.to_json()`,
//!   level 6);
//! - the peak heap while one `CareStore::open` runs, from the counting
//!   global allocator below (Rust allocations) plus SQLite's own memory
//!   high-water mark (SQLite allocates with `malloc`, not through Rust), and
//!   the `VmHWM` of a fresh process that only opens the store.
//!
//! The timed benchmarks (criterion) are `open_store`, `bare_automerge_load`
//! (`AutoCommit::load` of the same record's saved bytes), `evaluate_checklist`
//! (the engine alone), `evaluate_session` (read a session's answers from
//! the open two-year record, then evaluate), `care_store_evaluate_session`
//! (what the bindings' `evaluate` does: the same, reusing the answers decoded
//! by the previous call while the record is unchanged) and
//! `durable_journal_write`, in that order; the write benchmarks
//! run last because they grow the record.
//!
//! `KATCORE_BENCH_YEARS` (default 2) scales the record.

#[path = "support/two_year.rs"]
mod two_year;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration as StdDuration, Instant};

use automerge::AutoCommit;
use chrono::{DateTime, Duration, FixedOffset, Utc};
use criterion::{BatchSize, Criterion};
use flate2::write::GzEncoder;
use flate2::Compression;
use katcore::care_store::CareStore;
use katcore::checklist::{evaluate, Answers, ReadinessStatus};
use katcore::pack::Pack;
use katcore::record::{CareRecord, JournalLinks, Party};
use katcore::store::StoreKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

/// Set in the environment of the child process that only opens the store
/// (at the path given) and reports its memory from `/proc/self/status`.
const CHILD_ENV: &str = "KATCORE_BENCH_OPEN_CHILD";
/// Overrides the years of history in the record.
const YEARS_ENV: &str = "KATCORE_BENCH_YEARS";

const MIB: f64 = 1024.0 * 1024.0;
/// Goals from the issue.
const GOAL_SIZE_RATIO: f64 = 1.5;
const GOAL_PEAK_BYTES: f64 = 30.0 * MIB;

// ----- counting allocator -------------------------------------------------

/// The system allocator, counting heap bytes while [`COUNTING`] is on: the
/// net bytes allocated since counting was switched on ([`CURRENT`]) and
/// their maximum ([`PEAK`]). Off, it costs one relaxed load per call, so the
/// timed benchmarks are not skewed by the counting.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

fn grew(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = CURRENT.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn shrank(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        CURRENT.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting only
// touches atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every
        // allocation of this allocator is).
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

/// Heap use while a closure ran.
struct HeapUse {
    /// Highest net Rust heap growth over the level when it started.
    rust_peak: isize,
    /// Net Rust heap growth when it returned (its result still alive).
    rust_retained: isize,
    /// SQLite's high-water mark over its level when it started.
    sqlite_peak: i64,
}

fn heap_use<R>(f: impl FnOnce() -> R) -> (R, HeapUse) {
    // SAFETY: both functions only read and reset SQLite's global counters.
    let sqlite_before = unsafe {
        rusqlite::ffi::sqlite3_memory_highwater(1);
        rusqlite::ffi::sqlite3_memory_used()
    };
    CURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let result = f();
    COUNTING.store(false, Ordering::SeqCst);
    // SAFETY: as above.
    let sqlite_high = unsafe { rusqlite::ffi::sqlite3_memory_highwater(0) };
    let used = HeapUse {
        rust_peak: PEAK.load(Ordering::SeqCst),
        rust_retained: CURRENT.load(Ordering::SeqCst),
        sqlite_peak: sqlite_high - sqlite_before,
    };
    (result, used)
}

// ----- fixture ------------------------------------------------------------

/// The store key of the benchmark record (a constant: nothing here is secret).
fn key() -> StoreKey {
    StoreKey::from_bytes(&[0x5a; 32]).expect("32 bytes")
}

/// The record built once per run, and what the benchmarks need from it.
struct Fixture {
    dir: PathBuf,
    path: PathBuf,
    /// `CareRecord::save()` of the compacted record: what `bare_automerge_load` loads.
    saved: Vec<u8>,
    /// Journal texts of exactly 800 characters for the write benchmark.
    texts: Vec<String>,
}

impl Fixture {
    fn build(years: f64) -> Fixture {
        let dir = std::env::temp_dir().join(format!("katcore-bench-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temporary directory");
        let path = dir.join("client.db");

        eprintln!("== katcore record bench: building a {years}-year record in {} ==", dir.display());
        let store = CareStore::open(&path, &key()).expect("create the store");
        let built = two_year::build_record(&store, years);
        store.compact_now().expect("compact");
        let open_sizes = (file_len(&path), file_len(&side_file(&path, "-wal")));
        let (saved, json, changes) = store.read(|r| (r.save(), r.to_json(), r.document().get_changes(&[]).len()));
        drop(store);
        wait_closed(&path);
        eprintln!(
            "[fixture] {} years: {} sessions ({} answers, {} readiness decisions), {} BP readings, {} mood + {} PHQ-9 + {} GAD-7 \
             check-ins, {} journal entries (mean {:.0} chars), {} clinician notes",
            built.years,
            built.sessions,
            built.answers,
            built.readiness,
            built.vitals,
            built.mood_check_ins,
            built.phq9,
            built.gad7,
            built.journal_entries,
            built.mean_journal_chars(),
            built.notes,
        );
        eprintln!(
            "[fixture] {} writes ({} Automerge changes) in {:.1} s; saved document {} bytes",
            built.writes,
            changes,
            built.seconds,
            saved.len()
        );

        report_size(&path, &json, open_sizes);
        report_memory(&path);

        let mut rng = StdRng::seed_from_u64(two_year::SEED ^ 0x800);
        let prose = two_year::Prose::english();
        let texts = (0..64)
            .map(|_| prose.text(&mut rng, 800).chars().take(800).collect::<String>().trim_end().to_owned())
            .collect();
        Fixture { dir, path, saved, texts }
    }
}

/// Waits until every connection to the store is closed (SQLite removes the
/// `-wal` file when the last one closes), e.g. after a background compaction
/// that still held the store when its last handle was dropped.
fn wait_closed(path: &Path) {
    let wal = side_file(path, "-wal");
    let deadline = Instant::now() + StdDuration::from_secs(60);
    while wal.exists() && Instant::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(20));
    }
    if wal.exists() {
        eprintln!("[fixture] warning: {} is still there after 60 s", wal.display());
    }
}

fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// Size on disk after compaction and reopen, against gzip'd JSON.
/// `before_reopen` is (db, -wal) right after the compaction, store still open.
fn report_size(path: &Path, json: &serde_json::Value, before_reopen: (u64, u64)) {
    let store = CareStore::open(path, &key()).expect("reopen");
    let (db, wal) = (file_len(path), file_len(&side_file(path, "-wal")));
    let (snapshot, changes) = store.stored_bytes();
    drop(store);
    wait_closed(path);

    let json_bytes = serde_json::to_vec(json).expect("JSON");
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
    gz.write_all(&json_bytes).expect("gzip");
    let gz = gz.finish().expect("gzip");

    // Where the file's bytes go: live pages vs. pages freed by compaction.
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("read-only connection");
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).expect(name);
    let (page_size, pages, free) = (pragma("page_size"), pragma("page_count"), pragma("freelist_count"));
    let vacuumed = side_file(path, ".vacuumed");
    conn.execute("VACUUM INTO ?1", [vacuumed.to_string_lossy()]).expect("VACUUM INTO");
    drop(conn);
    let vacuumed_len = file_len(&vacuumed);
    let _ = fs::remove_file(&vacuumed);

    let total = db + wal;
    let ratio = total as f64 / gz.len() as f64;
    eprintln!("== [size] on disk after compaction and reopen vs. gzip JSON (goal <= {GOAL_SIZE_RATIO}x) ==");
    eprintln!("[size] db file {db} bytes + -wal {wal} bytes = {total} bytes ({:.2} MiB)", total as f64 / MIB);
    eprintln!("[size]   encrypted snapshot {snapshot} bytes, changes after it {changes} bytes");
    eprintln!(
        "[size]   {pages} pages of {page_size} bytes, {free} of them free ({} bytes); VACUUM would leave {vacuumed_len} \
         bytes",
        free * page_size
    );
    eprintln!(
        "[size]   before the reopen (store still open after compacting): db {} bytes + -wal {} bytes",
        before_reopen.0, before_reopen.1
    );
    eprintln!("[size] record.to_json(): {} bytes; gzip level 6: {} bytes", json_bytes.len(), gz.len());
    eprintln!("[size] ratio on disk / gzip JSON = {ratio:.2}x  {}", verdict(ratio <= GOAL_SIZE_RATIO));
    eprintln!("[size]   (VACUUMed file / gzip JSON = {:.2}x)", vacuumed_len as f64 / gz.len() as f64);
}

/// Peak heap of one `CareStore::open`, in this process and in a fresh one.
fn report_memory(path: &Path) {
    // One open first, so that one-time initialisation (SQLite's, the default
    // pack's) is not counted.
    drop(CareStore::open(path, &key()).expect("open"));
    wait_closed(path);
    let (store, used) = heap_use(|| CareStore::open(path, &key()).expect("open"));
    drop(store);
    wait_closed(path);
    let total = used.rust_peak as f64 + used.sqlite_peak as f64;
    eprintln!("== [memory] peak heap during one CareStore::open (goal <= 30 MB) ==");
    eprintln!(
        "[memory] Rust heap: peak {:.2} MiB, still held by the open store {:.2} MiB",
        used.rust_peak as f64 / MIB,
        used.rust_retained as f64 / MIB
    );
    eprintln!("[memory] SQLite heap (malloc): peak {:.2} MiB", used.sqlite_peak as f64 / MIB);
    eprintln!("[memory] peak, Rust + SQLite = {:.2} MiB  {}", total / MIB, verdict(total <= GOAL_PEAK_BYTES));

    let exe = std::env::current_exe().expect("own path");
    match Command::new(exe).env(CHILD_ENV, path).output() {
        Ok(out) if out.status.success() => {
            eprintln!("[memory] fresh process: {}", String::from_utf8_lossy(&out.stdout).trim());
        }
        Ok(out) => eprintln!("[memory] fresh process failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => eprintln!("[memory] fresh process could not start: {e}"),
    }
    wait_closed(path);
}

/// The child process: opens the store and prints its memory high-water mark.
fn child_open(path: &Path) {
    let before = proc_status_kb("VmHWM");
    let store = CareStore::open(path, &key()).expect("open");
    let after = proc_status_kb("VmHWM");
    let rss = proc_status_kb("VmRSS");
    drop(store);
    println!(
        "VmHWM {:.1} MiB before open, {:.1} MiB after (+{:.1} MiB); VmRSS with the store open {:.1} MiB",
        before / 1024.0,
        after / 1024.0,
        (after - before) / 1024.0,
        rss / 1024.0
    );
}

fn proc_status_kb(field: &str) -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

// ----- benchmarks ---------------------------------------------------------

fn bench_open(c: &mut Criterion, fixture: &Fixture) {
    // Results are dropped outside the timing: closing is not part of opening.
    c.bench_function("open_store", |b| {
        b.iter_batched(|| (), |()| CareStore::open(&fixture.path, &key()).expect("open"), BatchSize::PerIteration)
    });
    c.bench_function("bare_automerge_load", |b| {
        b.iter_batched(|| (), |()| AutoCommit::load(black_box(&fixture.saved)).expect("load"), BatchSize::PerIteration)
    });
    wait_closed(&fixture.path);
}

/// A full set of answers to the default pack, all passing.
fn full_answers(pack: &Pack, start: DateTime<FixedOffset>) -> Answers {
    let before = |minutes: i64| (start - Duration::minutes(minutes)).to_rfc3339();
    let mut answers = json!({
        "last_solid_food": before(240),
        "last_liquid": before(90),
        "last_benzodiazepine": "none",
        "last_stimulant": "none",
        "last_alcohol": before(3 * 1440),
        "blood_pressure": {"systolic": 122, "diastolic": 78},
        "monitor_present": true,
        "safe_setting": true,
        "no_driving_plan": true,
        "antihypertensive_taken": "not_prescribed",
        "intention_set": "To notice what comes up without judging it.",
    });
    for question in &pack.screening {
        answers[question.id.as_str()] = json!(false);
    }
    Answers::from_json(pack, &answers).expect("answers fit the default pack")
}

fn bench_evaluate(c: &mut Criterion) {
    let pack = Pack::default_pack();
    let start = DateTime::parse_from_rfc3339("2026-10-20T10:00:00-04:00").expect("start");
    let answers = full_answers(&pack, start);
    assert_eq!(answers.len(), pack.checklist.len() + pack.screening.len());
    assert_eq!(evaluate(&pack, start, &answers, "en").status, ReadinessStatus::Ready);
    c.bench_function("evaluate_checklist", |b| {
        b.iter(|| evaluate(black_box(&pack), black_box(start), black_box(&answers), "en"))
    });
}

fn bench_evaluate_session(c: &mut Criterion, fixture: &Fixture) {
    let store = CareStore::open(&fixture.path, &key()).expect("open");
    let pack = Pack::default_pack();
    let end = DateTime::parse_from_rfc3339(two_year::END).expect("END").with_timezone(&Utc);
    let start = (end + Duration::days(2)).fixed_offset();
    let session = store
        .update(|r| {
            let id = r.schedule_session(start, two_year::TIME_ZONE, Party::Client)?;
            for (item, answer) in full_answers(&pack, start).to_json().as_object().expect("an object") {
                r.record_answer(&pack, &id, item, answer, end)?;
            }
            Ok(id)
        })
        .expect("answers recorded");
    let status = |r: &CareRecord| r.evaluate_session(&pack, &session, "en").expect("evaluate").status;
    assert_eq!(store.read(status), ReadinessStatus::Ready);
    c.bench_function("evaluate_session", |b| {
        b.iter(|| store.read(|r| r.evaluate_session(black_box(&pack), black_box(&session), "en")).expect("evaluate"))
    });
    // What the bindings call: the same evaluation, reusing the answers decoded
    // by the previous call while the record is unchanged.
    c.bench_function("care_store_evaluate_session", |b| {
        b.iter(|| store.evaluate_session(black_box(&pack), black_box(&session), "en").expect("evaluate"))
    });
    drop(store);
    wait_closed(&fixture.path);
}

fn bench_write(c: &mut Criterion, fixture: &Fixture) {
    let store = CareStore::open(&fixture.path, &key()).expect("open");
    let end = DateTime::parse_from_rfc3339(two_year::END).expect("END").with_timezone(&Utc);
    let links = JournalLinks::default();
    let mut n: i64 = 0;
    c.bench_function("durable_journal_write", |b| {
        b.iter(|| {
            n += 1;
            let text = &fixture.texts[n as usize % fixture.texts.len()];
            store.write_journal_entry(text, &links, false, end + Duration::minutes(n)).expect("write")
        })
    });
    drop(store);
    wait_closed(&fixture.path);
}

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child_open(Path::new(&path));
        return;
    }
    let years = std::env::var(YEARS_ENV).ok().and_then(|y| y.parse().ok()).unwrap_or(two_year::DEFAULT_YEARS);
    let fixture = Fixture::build(years);

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(StdDuration::from_secs(2))
        .measurement_time(StdDuration::from_secs(5))
        .configure_from_args();
    bench_open(&mut c, &fixture);
    bench_evaluate(&mut c);
    bench_evaluate_session(&mut c, &fixture);
    bench_write(&mut c, &fixture);
    c.final_summary();

    let _ = fs::remove_dir_all(&fixture.dir);
}
