//! How the care record grows: open time and file size at 1, 2, 5 and 10
//! years of synthetic history (the two-year generator, scaled).
//!
//! For each size it builds the record through the public API, compacts it,
//! closes it, then measures the median of repeated cold-cache-free opens to
//! the first view (`Device::first_view`: the next session, its checklist
//! evaluated, the due prompts and sync state, read from the stored current
//! state), of full opens (`CareStore::open`, which decrypts and loads
//! snapshot + changes) and of a bare `AutoCommit::load` of the same saved
//! bytes, and the file's size. It
//! prints one `[growth]` line per size, a least-squares linear fit with its
//! R², and writes `target/growth.csv` for `scripts/plot_growth.py`.
//!
//! `KATCORE_GROWTH_YEARS=1,2` limits the sizes (the 10-year build takes a
//! few minutes: every write is a durable transaction).

#[path = "support/two_year.rs"]
#[allow(dead_code)]
mod two_year;

use std::path::Path;
use std::time::{Duration, Instant};

use katcore::care_store::CareStore;
use katcore::store::StoreKey;
use katcore::Device;

const OPENS: usize = 15;

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing useful either way.
    let years: Vec<f64> = std::env::var("KATCORE_GROWTH_YEARS")
        .ok()
        .map(|v| v.split(',').filter_map(|y| y.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1.0, 2.0, 5.0, 10.0]);
    let key = StoreKey::from_bytes(&[0x42; 32]).expect("key");
    let mut rows = Vec::new();
    for &y in &years {
        let dir = std::env::temp_dir().join(format!("katcore-growth-{}-{y}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let path = dir.join("client.db");
        let store = CareStore::open(&path, &key).expect("create");
        let built = two_year::build_record(&store, y);
        // The next session, a week after the last, half answered: the
        // first view shows it, its checklist and the last one's prompts.
        let last_start = store.read(|r| r.sessions().iter().map(|s| s.scheduled_start).max()).expect("sessions");
        let next_start = last_start + chrono::Duration::days(7);
        let pack = katcore::Pack::default_pack();
        let next = store
            .update(|r| r.schedule_session(next_start, "America/New_York", katcore::record::Party::Clinic))
            .expect("schedule");
        let now = next_start.to_utc() - chrono::Duration::days(1);
        let reading = serde_json::json!({"systolic": 124, "diastolic": 78});
        store.update(|r| r.record_answer(&pack, &next, "blood_pressure", &reading, now)).expect("answer");
        store.compact_now().expect("compact");
        let saved = store.read(|r| r.save());
        drop(store);
        wait_closed(&path);
        let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let first = Device::first_view(&path, &key, "en", now).expect("first view").expect("a stored current state");
        assert!(first.checklist.is_some(), "the first view evaluates the next session's checklist");
        let first_view = median(
            (0..OPENS)
                .map(|_| time(|| drop(Device::first_view(&path, &key, "en", now).expect("first view"))))
                .collect(),
        );
        let open = median((0..OPENS).map(|_| time(|| drop(CareStore::open(&path, &key).expect("open")))).collect());
        let bare = median(
            (0..OPENS).map(|_| time(|| drop(automerge::AutoCommit::load(&saved).expect("bare load")))).collect(),
        );
        println!(
            "[growth] years={y} journal_entries={} writes={} file_bytes={file_bytes} saved_bytes={} first_view_ms={:.2} open_ms={:.2} bare_load_ms={:.2} build_s={:.1}",
            built.journal_entries,
            built.writes,
            saved.len(),
            ms(first_view),
            ms(open),
            ms(bare),
            built.seconds
        );
        rows.push((y, file_bytes as f64, ms(open), ms(bare), ms(first_view)));
        let _ = std::fs::remove_dir_all(&dir);
    }
    if rows.len() >= 2 {
        for (name, column) in [("file_bytes", 1usize), ("open_ms", 2), ("bare_load_ms", 3), ("first_view_ms", 4)] {
            let points: Vec<(f64, f64)> = rows.iter().map(|r| (r.0, [r.0, r.1, r.2, r.3, r.4][column])).collect();
            let (slope, intercept, r2) = linear_fit(&points);
            println!("[growth] fit {name} = {slope:.3} per year + {intercept:.3}; R² = {r2:.4}");
        }
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        println!(
            "[growth] first view at {} years: {:.3}× the bare load, {:.2}× the first view at {} years",
            last.0,
            last.4 / last.3,
            last.4 / first.4,
            first.0
        );
    }
    let csv: String = std::iter::once("years,file_bytes,open_ms,bare_load_ms,first_view_ms\n".to_owned())
        .chain(rows.iter().map(|(y, f, o, b, v)| format!("{y},{f},{o:.3},{b:.3},{v:.3}\n")))
        .collect();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/growth.csv");
    if std::fs::write(&out, csv).is_ok() {
        println!("[growth] wrote {}", out.display());
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Least squares `y = slope·x + intercept`, with the coefficient of determination.
fn linear_fit(points: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_tot: f64 = points.iter().map(|(_, y)| (y - my).powi(2)).sum();
    let ss_res: f64 = points.iter().map(|(x, y)| (y - (slope * x + intercept)).powi(2)).sum();
    (slope, intercept, if ss_tot == 0.0 { 1.0 } else { 1.0 - ss_res / ss_tot })
}

/// SQLite removes the `-wal` file when the last connection closes.
fn wait_closed(path: &Path) {
    let wal = Path::new(&format!("{}-wal", path.display())).to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while wal.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
