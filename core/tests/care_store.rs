//! The care record in its encrypted store, through the public API: durability
//! (including a real child process killed with SIGKILL), private entries,
//! encryption at rest, wrong keys, damage, compaction and threads, and the
//! first view after a kill.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use katcore::care_store::{CareStore, CareStoreError};
use katcore::pack::Pack;
use katcore::record::{JournalLinks, Party};
use katcore::store::{StoreError, StoreKey};
use katcore::Device;
use serde_json::json;

fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes(&[byte; 32]).unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("katcore-care-{}-{name}-{}", std::process::id(), katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("client.db")
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T20:00:00Z").unwrap().with_timezone(&Utc)
}

fn raw_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(b) = std::fs::read(file) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn writes_that_returned_are_there_after_reopening() {
    let path = temp_path("reopen");
    let pack = Pack::default_pack();
    let (entry, session) = {
        let store = CareStore::open(&path, &key(1)).unwrap();
        let session = store
            .update(|r| {
                r.schedule_session("2026-05-02T15:00:00-04:00".parse().unwrap(), "America/New_York", Party::Clinic)
            })
            .unwrap();
        store.update(|r| r.record_answer(&pack, &session, "monitor_present", &json!(true), now())).unwrap();
        let entry = store.write_journal_entry("Slept well.", &JournalLinks::default(), false, now()).unwrap();
        (entry, session)
    };
    let store = CareStore::open(&path, &key(1)).unwrap();
    assert_eq!(store.read(|r| r.journal_entry(&entry).unwrap().text), "Slept well.");
    assert_eq!(store.read(|r| r.session_answers(&session).unwrap()), json!({"monitor_present": true}));
}

#[test]
fn private_entries_never_enter_the_synced_document_and_nothing_is_plaintext_on_disk() {
    let path = temp_path("private");
    let private_marker = "lighthouse-at-dawn-private-4471";
    let shared_marker = "walked-by-the-river-shared-9923";
    let store = CareStore::open(&path, &key(2)).unwrap();
    let heads = store.read(|r| r.heads());
    let private = store.write_journal_entry(private_marker, &JournalLinks::default(), true, now()).unwrap();
    store.write_journal_entry(shared_marker, &JournalLinks::default(), false, now()).unwrap();
    store.edit_journal_entry(&private, &format!("{private_marker} (edited)"), now()).unwrap();

    // What sync would send: the whole document and the changes since before.
    let synced = [store.read(|r| r.save()), store.read(|r| r.save_after(&heads))].concat();
    let synced_plain = katcore::record::CareRecord::load(&store.read(|r| r.save()), automerge::ActorId::random())
        .unwrap()
        .to_json()
        .to_string();
    assert!(!contains(&synced, private_marker) && !synced_plain.contains(private_marker));
    assert!(synced_plain.contains(shared_marker), "the shared entry does sync");

    // Both are listed on this device.
    let journal = store.journal();
    assert_eq!(journal.len(), 2);
    assert!(journal.iter().any(|e| e.private && e.text.starts_with(private_marker)));

    // Nothing readable in the file, its WAL, or anywhere beside it.
    store.compact_now().unwrap();
    drop(store);
    let raw = raw_bytes(&path);
    assert!(!raw.is_empty());
    for marker in [private_marker, shared_marker, "Slept"] {
        assert!(!contains(&raw, marker), "{marker} found in the raw file");
    }

    // And the private entry survives reopening; deleting it erases it.
    let store = CareStore::open(&path, &key(2)).unwrap();
    assert!(store.journal().iter().any(|e| e.id == private && e.private));
    store.delete_journal_entry(&private, now()).unwrap();
    drop(store);
    assert!(CareStore::open(&path, &key(2)).unwrap().journal().iter().all(|e| e.id != private));
}

#[test]
fn a_wrong_key_is_typed_and_leaves_the_file_untouched() {
    let path = temp_path("wrong-key");
    CareStore::open(&path, &key(3))
        .unwrap()
        .write_journal_entry("Mine.", &JournalLinks::default(), false, now())
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = CareStore::open(&path, &key(4)).unwrap_err();
    assert!(matches!(err, CareStoreError::Store(StoreError::WrongKey)), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(CareStore::open(&path, &key(3)).unwrap().journal().len(), 1);
}

#[test]
fn a_damaged_file_is_an_error_never_an_empty_record() {
    let path = temp_path("damaged");
    {
        let store = CareStore::open(&path, &key(5)).unwrap();
        for i in 0..20 {
            store
                .write_journal_entry(&format!("Entry {i} with some words."), &JournalLinks::default(), false, now())
                .unwrap();
        }
    }
    // Fold the WAL into the main file so truncation cuts real data.
    drop(CareStore::open(&path, &key(5)).unwrap());
    let full = std::fs::read(&path).unwrap();
    for cut in [full.len() / 2, 100, 0] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let _ = std::fs::remove_file(format!("{}-wal", path.display()));
        let result = CareStore::open(&path, &key(5));
        assert!(
            matches!(result, Err(CareStoreError::Store(StoreError::Corrupt { .. }))),
            "cut at {cut}: {:?}",
            result.map(|s| s.journal().len())
        );
        assert_eq!(std::fs::read(&path).unwrap(), &full[..cut], "the damaged file is left as it was");
    }
}

#[test]
fn compaction_runs_in_the_background_and_loses_nothing() {
    let path = temp_path("compaction");
    let store = CareStore::open(&path, &key(6)).unwrap();
    let text = "A longer reflection about the session and the days after it. ".repeat(10);
    let mut ids = Vec::new();
    for i in 0..150 {
        ids.push(store.write_journal_entry(&format!("{i}: {text}"), &JournalLinks::default(), false, now()).unwrap());
    }
    // The background thread keeps compacting until the changes no longer
    // outgrow the snapshot; wait for that resting state.
    let at_rest = |(snapshot, changes): (u64, u64)| {
        snapshot > 0 && changes <= snapshot.max(katcore::persist::DEVICE_COMPACTION_BYTES)
    };
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while !at_rest(store.stored_bytes()) && Instant::now() < deadline {
        std::thread::sleep(StdDuration::from_millis(20));
    }
    let (snapshot, changes) = store.stored_bytes();
    assert!(at_rest((snapshot, changes)), "compaction settles: {changes} B of changes, {snapshot} B snapshot");
    drop(store);
    let store = CareStore::open(&path, &key(6)).unwrap();
    let journal = store.journal();
    assert_eq!(journal.len(), ids.len());
    assert!(ids.iter().all(|id| journal.iter().any(|e| &e.id == id)));
}

#[test]
fn threads_can_write_and_read_at_once() {
    let path = temp_path("threads");
    let store = Arc::new(CareStore::open(&path, &key(7)).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        store
                            .write_journal_entry(
                                &format!("thread {t} entry {i}"),
                                &JournalLinks::default(),
                                i % 5 == 0,
                                now(),
                            )
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || (0..50).map(|_| store.journal().len()).max().unwrap())
    };
    let ids: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    assert!(reader.join().unwrap() <= 100);
    drop(store);
    let journal = CareStore::open(&path, &key(7)).unwrap().journal();
    assert_eq!(journal.len(), 100);
    assert!(ids.iter().all(|id| journal.iter().any(|e| &e.id == id)));
}

#[test]
fn failed_operations_change_nothing() {
    let path = temp_path("failed");
    let store = CareStore::open(&path, &key(8)).unwrap();
    let heads = store.read(|r| r.heads());
    assert!(store.write_journal_entry("  ", &JournalLinks::default(), false, now()).is_err());
    assert!(store
        .write_journal_entry("ok", &JournalLinks { session_id: Some("nope".into()), prompt_id: None }, true, now())
        .is_err());
    assert!(store.edit_journal_entry("missing", "text", now()).is_err());
    assert!(store.merge_remote(b"definitely not automerge").is_err());
    assert_eq!(store.read(|r| r.heads()), heads);
    assert!(store.journal().is_empty());
}

/// Environment variable naming the store a crash child writes to.
const CRASH_CHILD_ENV: &str = "KATCORE_CRASH_CHILD_STORE";

/// The child of [`writes_survive_sigkill`]: writes until it is killed,
/// printing `ack N` after each write returned.
#[test]
#[ignore = "run only as the child process of writes_survive_sigkill"]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CRASH_CHILD_ENV) else { return };
    let pack = Pack::default_pack();
    let store = CareStore::open(Path::new(&path), &key(9)).unwrap();
    let session = store.read(|r| r.sessions().first().map(|s| s.id.clone())).unwrap();
    let start = store.journal().len();
    let mut out = std::io::stdout().lock();
    for n in start.. {
        let private = n % 7 == 0;
        store.write_journal_entry(&format!("entry {n}"), &JournalLinks::default(), private, Utc::now()).unwrap();
        writeln!(out, "ack journal {n}").unwrap();
        let value = json!(format!("answer {n}"));
        store
            .update(|r| r.record_answer(&pack, &session, "intention_set", &value, now() + Duration::seconds(n as i64)))
            .unwrap();
        writeln!(out, "ack answer {n}").unwrap();
        out.flush().unwrap();
    }
}

/// A real child process writing journal entries and checklist answers is
/// killed with SIGKILL at random points; every write it acknowledged is
/// there after reopening. `KATCORE_CRASH_KILLS` sets the number of kills
/// (default 12; RELIABILITY.md records a longer run).
#[test]
fn writes_survive_sigkill() {
    let kills: usize = std::env::var("KATCORE_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let path = temp_path("sigkill");
    CareStore::open(&path, &key(9))
        .unwrap()
        .update(|r| r.schedule_session("2026-05-02T15:00:00Z".parse().unwrap(), "UTC", Party::Clinic))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked_journal = 0usize;
    let mut last_answer: Option<usize> = None;
    let mut total_acks = 0usize;
    for round in 0..kills {
        let before = acked_journal;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child_writer", "--nocapture", "--ignored"])
            .env(CRASH_CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a pseudo-random number of acknowledged writes (1..=40).
        let kill_after = 1 + (round * 7919 + 13) % 40;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ack ") => {
                    seen += 1;
                    record_ack(&line, &mut acked_journal, &mut last_answer);
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        child.kill().unwrap(); // SIGKILL
                               // Acknowledgements already written to the pipe before the kill count too.
        for line in lines.map_while(Result::ok) {
            if line.starts_with("ack ") {
                record_ack(&line, &mut acked_journal, &mut last_answer);
            }
        }
        child.wait().unwrap();
        let acked_this_round = acked_journal - before;

        // The first view is written in each change's transaction: after a
        // kill it is there, and it is the record's (read before opening,
        // which would rebuild one that was missing or stale).
        let first_view = Device::first_view(&path, &key(9), "en", now())
            .expect("the first view reads after a kill")
            .expect("a kill never leaves the first view behind the changes");
        let store = CareStore::open(&path, &key(9)).expect("the store opens after a kill");
        let session = store.read(|r| r.sessions()[0].id.clone());
        let evaluation = store.read(|r| r.evaluate_session(&Pack::default_pack(), &session, "en")).unwrap();
        assert_eq!(first_view.checklist, Some(evaluation), "round {round}: the first view is the record's");
        let journal = store.journal();
        assert!(
            journal.len() >= acked_journal,
            "round {round}: {} entries, {acked_journal} acknowledged",
            journal.len()
        );
        for n in 0..acked_journal {
            assert!(journal.iter().any(|e| e.text == format!("entry {n}")), "round {round}: entry {n} lost");
        }
        if let Some(n) = last_answer {
            let session = store.read(|r| r.sessions()[0].id.clone());
            let answers = store.read(|r| r.session_answers(&session).unwrap());
            let stored: usize = answers["intention_set"].as_str().unwrap()["answer ".len()..].parse().unwrap();
            assert!(stored >= n, "round {round}: answer {n} was acknowledged but the record holds answer {stored}");
            assert_eq!(answers.as_object().unwrap().len(), 1);
        }
        total_acks += acked_this_round;
    }
    assert!(acked_journal >= kills, "every round acknowledged at least one write");
    println!("sigkill: {kills} kills survived, {total_acks} acknowledged journal writes, all present");
}

fn record_ack(line: &str, journal: &mut usize, answer: &mut Option<usize>) {
    let mut parts = line.split_whitespace().skip(1);
    let (kind, n) = (parts.next().unwrap(), parts.next().unwrap().parse::<usize>().unwrap());
    match kind {
        "journal" => *journal = (*journal).max(n + 1),
        _ => *answer = Some(answer.map_or(n, |a| a.max(n))),
    }
}

#[test]
fn repeated_evaluations_follow_every_change_to_the_record_and_the_pack() {
    use katcore::checklist::{ItemState, ReadinessStatus};
    let path = temp_path("evaluate");
    let store = CareStore::open(&path, &key(1)).unwrap();
    let pack = Pack::default_pack();
    let start = "2026-05-03T15:00:00-04:00".parse().unwrap();
    let [a, b] =
        [(); 2].map(|()| store.update(|r| r.schedule_session(start, "America/New_York", Party::Clinic)).unwrap());
    let state_of = |session: &str, pack: &Arc<Pack>, id: &str| {
        let evaluation = store.evaluate_session(pack, session, "en").unwrap();
        evaluation.items.iter().find(|item| item.id == id).map(|item| (evaluation.status, item.state))
    };
    assert_eq!(state_of(&a, &pack, "blood_pressure"), Some((ReadinessStatus::Incomplete, ItemState::Unanswered)));

    // A local answer is seen by the next evaluation, and only for its session.
    let high = json!({"systolic": 150, "diastolic": 85});
    store.update(|r| r.record_answer(&pack, &a, "blood_pressure", &high, now())).unwrap();
    assert_eq!(state_of(&a, &pack, "blood_pressure"), Some((ReadinessStatus::Blocked, ItemState::Fail)));
    assert_eq!(state_of(&b, &pack, "blood_pressure"), Some((ReadinessStatus::Incomplete, ItemState::Unanswered)));
    assert_eq!(state_of(&a, &pack, "blood_pressure"), Some((ReadinessStatus::Blocked, ItemState::Fail)));

    // A change merged from another device is seen too.
    let other = CareStore::open(&temp_path("evaluate-other"), &key(2)).unwrap();
    other.merge_remote(&store.read(|r| r.save())).unwrap();
    let lower = json!({"systolic": 128, "diastolic": 80});
    other.update(|r| r.record_answer(&pack, &a, "blood_pressure", &lower, now() + Duration::minutes(5))).unwrap();
    assert!(store.merge_remote(&other.read(|r| r.save())).unwrap());
    assert_eq!(state_of(&a, &pack, "blood_pressure").map(|(_, state)| state), Some(ItemState::Pass));

    // Another pack decodes the answers again: here one without the blood-pressure item.
    let mut trimmed = (*pack).clone();
    trimmed.checklist.retain(|item| item.id != "blood_pressure");
    let trimmed = Arc::new(trimmed);
    assert_eq!(state_of(&a, &trimmed, "blood_pressure"), None);
    assert_eq!(state_of(&a, &pack, "blood_pressure").map(|(_, state)| state), Some(ItemState::Pass));

    // Every answer is the same as a fresh read from the record.
    for session in [&a, &b] {
        let fresh = store.read(|r| r.evaluate_session(&pack, session, "en")).unwrap();
        assert_eq!(store.evaluate_session(&pack, session, "en").unwrap(), fresh);
    }
    assert!(store.evaluate_session(&pack, "no-such-session", "en").is_err());
}
