//! The fuzz targets' smoke test on the stable toolchain: every committed
//! seed (`fuzz/seeds/<target>/`) and every input a fuzzer once crashed on
//! (`fuzz/regressions/<target>/`) goes through the same functions the
//! `cargo fuzz` targets call (`fuzz/src/lib.rs`, included here), so a
//! regression fails the normal test suite without nightly features.
//!
//! To rewrite the seeds after a format change:
//! `cargo test -p katcore --test fuzz_corpus -- --ignored write_seeds`.

// The fuzz crate's library, whose `pub` items serve its own targets.
#[allow(unreachable_pub)]
#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// The committed corpus must stay small.
const MAX_COMMITTED_BYTES: u64 = 1024 * 1024;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !is_hidden(p)).collect();
    files.sort();
    files
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

#[test]
fn committed_seeds_and_regressions_replay_without_panicking() {
    let mut total = 0;
    for target in targets::TARGETS {
        let seeds = files("seeds", target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
        for path in seeds.iter().chain(&files("regressions", target)) {
            let bytes = std::fs::read(path).unwrap();
            total += bytes.len() as u64;
            targets::run(target, &bytes).unwrap();
        }
    }
    assert!(total < MAX_COMMITTED_BYTES, "the committed fuzz inputs take {total} bytes");
}

#[test]
fn every_seed_is_accepted_and_committed() {
    for seed in targets::seeds() {
        assert_eq!(targets::run(seed.target, &seed.bytes), Some(true), "{} is refused", seed.name);
        let path = fuzz_dir().join("seeds").join(seed.target).join(seed.name);
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(targets::run(seed.target, &committed), Some(true), "the committed {} is refused", seed.name);
    }
    assert_eq!(targets::run("nope", b""), None);
}

#[test]
fn truncated_and_damaged_seeds_are_typed_errors() {
    // A little deterministic fuzzing on every run: a hundred prefixes and
    // twenty single flipped bytes spread across each seed.
    for seed in targets::seeds() {
        let bytes = &seed.bytes;
        for end in (0..bytes.len()).step_by((bytes.len() / 100).max(1)) {
            targets::run(seed.target, &bytes[..end]);
        }
        let mut damaged = bytes.clone();
        for i in (0..damaged.len()).step_by((damaged.len() / 20).max(1)) {
            damaged[i] ^= 0x5a;
            targets::run(seed.target, &damaged);
            damaged[i] ^= 0x5a;
        }
    }
}

#[test]
fn parts_frame_and_unframe() {
    let framed = targets::join_parts(Some(b"snap"), &[b"a", b"", b"bc"]);
    let (snapshot, changes) = targets::frame_parts(&framed);
    assert_eq!(snapshot, Some(&b"snap"[..]));
    assert_eq!(changes, [&b"a"[..], b"", b"bc"]);
    assert_eq!(targets::frame_parts(&[0, 9, 1]), (Some(&[1u8][..]), Vec::new()));
    assert_eq!(targets::frame_parts(&[0]), (None, Vec::new()));
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand after a format change"]
fn write_seeds() {
    for seed in targets::seeds() {
        let dir = fuzz_dir().join("seeds").join(seed.target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(seed.name), &seed.bytes).unwrap();
    }
}
