//! Which document layout keeps a one-entry change cheap as a record grows:
//! the measurements behind record format v2 (`docs/record-format.md`).
//!
//! Automerge 0.12 applies a change by walking the operations of each object
//! it writes, so the cost of adding one entry follows the size of the map
//! the entry goes into. For each layout and record size this builds a bare
//! Automerge document of `n` check-in-sized entries, then times applying 200
//! one-entry changes made on another replica (the clinic's work when a phone
//! syncs one check-in), and a load of the saved bytes and their size:
//!
//! - `root`: every entry a key of the root map (format v1);
//! - `id16`, `id256`, `id4096`: entries in maps named by the first 1, 2 or
//!   3 hex digits of their random id;
//! - `month`: entries in one map per calendar month of their date (ten
//!   years, 120 maps).
//!
//! `cargo bench -p katcore --bench layout` (`KATCORE_LAYOUT_SIZES=50000`
//! limits the sizes; default 50,000 and 200,000).

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ReadDoc, ROOT};

const APPLIES: usize = 200;

#[derive(Clone, Copy, Debug)]
enum Layout {
    Root,
    Id(usize),
    Month,
}

impl Layout {
    fn name(self) -> String {
        match self {
            Layout::Root => "root".into(),
            Layout::Id(digits) => format!("id{}", 16usize.pow(digits as u32)),
            Layout::Month => "month".into(),
        }
    }

    /// The map an entry goes into (`None`: the root) and its key there.
    fn place(self, id: &str, index: usize) -> (Option<String>, String) {
        match self {
            Layout::Root => (None, format!("c:{id}")),
            Layout::Id(digits) => (Some(format!("c:{}", &id[..digits])), id.to_owned()),
            Layout::Month => (Some(format!("c:{:04}-{:02}", 2020 + (index / 12) % 10, 1 + index % 12)), id.to_owned()),
        }
    }
}

/// A pseudo-random 128-bit hex id (deterministic: xorshift).
fn id(state: &mut u64) -> String {
    let mut half = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    format!("{:016x}{:016x}", half(), half())
}

fn value(index: usize) -> String {
    format!(
        r#"{{"completed_at":"2026-05-{:02}T10:00:00Z","kind":"instrument","instrument":"phq9","answers":[0,1,0,0,2,0,1,0,0],"total":4,"band":"minimal","urgent":false}}"#,
        1 + index % 28
    )
}

/// Puts one entry into `existing` (its map, when the document has it) or
/// into a new map, or at the root for `Layout::Root`.
/// Returns the map it went into.
fn put(
    tx: &mut impl Transactable,
    existing: Option<automerge::ObjId>,
    layout: Layout,
    id: &str,
    index: usize,
) -> automerge::ObjId {
    let (map, key) = layout.place(id, index);
    let obj = match (map, existing) {
        (None, _) => ROOT,
        (Some(_), Some(obj)) => obj,
        (Some(map), None) => tx.put_object(ROOT, map, ObjType::Map).expect("map"),
    };
    tx.put(&obj, key, value(index)).expect("put");
    obj
}

fn build(layout: Layout, n: usize, seed: &mut u64) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from(b"phone".as_slice()));
    let mut maps = std::collections::HashMap::new();
    let mut tx = doc.transaction();
    for index in 0..n {
        let entry = id(seed);
        if let (Some(map), _) = layout.place(&entry, index) {
            let existing = maps.get(&map).cloned();
            let obj = put(&mut tx, existing, layout, &entry, index);
            maps.insert(map, obj);
        } else {
            put(&mut tx, None, layout, &entry, index);
        }
    }
    tx.commit();
    doc
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("KATCORE_LAYOUT_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50_000, 200_000]);
    println!("[layout] layout entries apply_p50_us apply_p99_us load_ms bytes");
    for &n in &sizes {
        for layout in [Layout::Root, Layout::Id(1), Layout::Id(2), Layout::Id(3), Layout::Month] {
            let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
            let mut server = build(layout, n, &mut seed);
            let saved = server.save();
            let started = Instant::now();
            let loaded = Automerge::load(&saved).expect("load");
            let load = started.elapsed();
            assert_eq!(loaded.get_heads(), server.get_heads());
            // One-entry changes from a phone that has the whole record.
            let mut phone = loaded.with_actor(ActorId::from(b"phone2".as_slice()));
            let mut changes = Vec::new();
            for k in 0..APPLIES {
                let heads = phone.get_heads();
                let entry = id(&mut seed);
                let mut tx = phone.transaction();
                let (map, _) = layout.place(&entry, n + k);
                let existing = map.as_ref().and_then(|m| tx.get(ROOT, m.as_str()).ok().flatten().map(|(_, obj)| obj));
                put(&mut tx, existing, layout, &entry, n + k);
                tx.commit();
                changes.push(phone.get_changes(&heads).into_iter().next().expect("one change"));
            }
            let mut times = Vec::with_capacity(APPLIES);
            for change in changes {
                let started = Instant::now();
                server.apply_changes([change]).expect("apply");
                times.push(started.elapsed());
            }
            let mut sorted = times.clone();
            sorted.sort();
            let p99 = sorted[sorted.len() * 99 / 100 - 1];
            println!(
                "[layout] {} {n} {:.1} {:.1} {:.1} {}",
                layout.name(),
                median(times).as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                load.as_secs_f64() * 1e3,
                saved.len()
            );
        }
    }
}
