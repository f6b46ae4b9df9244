//! Upgrading a device from record format v1: a store written by v1 — the
//! two-year fixture, with changes made offline after its last sync — opens
//! with this version and reads exactly as v1 read it, its pending changes
//! pass the server's write rules, and what is written afterwards goes into
//! format v2's buckets beside the v1 entries.
//!
//! The fixture (`data/v1-two-year.db`, store key 32 bytes of 0x42, and
//! `data/v1-two-year.json`) was written by v1's code at commit `6256a2a`
//! with `core/benches/support/two_year.rs` at 2 years; the JSON holds the
//! heads of its last sync, the list counts and the SHA-256 of the v1
//! `RecordView` of the whole record.

use std::str::FromStr;

use automerge::{ChangeHash, ReadDoc, ROOT};
use chrono::{DateTime, Utc};
use katcore::care_store::CareStore;
use katcore::instruments::InstrumentKind;
use katcore::pack::Pack;
use katcore::record::{bucket_of, check_changes, CareRecord, CheckInInput, JournalLinks, Writer};
use katcore::store::StoreKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const FIXTURE: &[u8] = include_bytes!("data/v1-two-year.db");

fn sidecar() -> Value {
    serde_json::from_str(include_str!("data/v1-two-year.json")).expect("the fixture's JSON")
}

/// The heads of the fixture's last sync.
fn synced_heads(fixture: &Value) -> Vec<ChangeHash> {
    fixture["synced_heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| ChangeHash::from_str(h.as_str().unwrap()).unwrap())
        .collect()
}

fn counts(r: &CareRecord) -> Value {
    json!({
        "sessions": r.sessions().len(), "journal": r.journal().len(), "vitals": r.vitals().len(),
        "side_effects": r.side_effects().len(), "check_ins": r.check_ins().len(),
        "notes": r.clinician_notes().len(), "urgent_items": r.urgent_items().len(),
    })
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn open_copy(name: &str) -> (std::path::PathBuf, CareStore) {
    let dir = std::env::temp_dir().join(format!("katcore-format-v1-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("client.db");
    std::fs::write(&path, FIXTURE).unwrap();
    let store = CareStore::open(&path, &StoreKey::from_bytes(&[0x42; 32]).unwrap()).expect("a v1 store opens");
    (dir, store)
}

#[test]
fn a_v1_store_reads_as_v1_read_it_and_its_offline_changes_are_accepted() {
    let (dir, store) = open_copy("reads");
    let fixture = sidecar();
    let pack = Pack::default_pack();
    // Everything reads exactly as version 1 read it, and format 2's answer
    // history holds each answer version 1 kept (its current ones, no entry id).
    let mut view = store.read(|r| r.view(&pack));
    for session in &mut view.sessions {
        let history = std::mem::take(&mut session.answer_history);
        assert!(history.iter().all(|answer| answer.id.is_none()), "a v1 answer has no entry");
        let current: serde_json::Map<String, Value> = history
            .into_iter()
            .filter(|answer| !answer.value.is_null())
            .map(|answer| (answer.item_id, answer.value))
            .collect();
        assert_eq!(current, session.answers);
    }
    let view = serde_json::to_string(&view).unwrap().replace(r#""answer_history":[],"#, "");
    assert_eq!(store.read(counts), fixture["counts"]);
    assert_eq!(sha256(&view), fixture["view_sha256"].as_str().unwrap(), "the whole record view is unchanged");
    assert!(store.read(|r| r.unreadable_entries()).is_empty());
    // The four changes made offline before the upgrade pass the server's
    // rules as a device's, against the record as the server has it.
    let synced = synced_heads(&fixture);
    let doc = store.read(|r| r.document().clone());
    let server = doc.fork_at(&synced).unwrap();
    let pending = doc.get_changes(&synced);
    assert_eq!(pending.len(), 4);
    check_changes(&server, &pending, Writer::Device).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn entries_written_after_the_upgrade_go_into_buckets_beside_the_v1_ones() {
    let (dir, store) = open_copy("writes");
    let fixture = sidecar();
    let before = store.read(|r| (r.check_ins(), r.journal()));
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-03T09:00:00Z").unwrap().with_timezone(&Utc);
    let check_in = store
        .update(|r| r.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![1, 1, 0, 0, 0, 0, 0]), at))
        .unwrap();
    let journal = store.write_journal_entry("Written after the upgrade.", &JournalLinks::default(), false, at).unwrap();
    // v1 entries are edited where they are.
    let oldest = before.1.last().unwrap().id.clone();
    store.edit_journal_entry(&oldest, "Edited after the upgrade.", at).unwrap();
    store.read(|r| {
        let doc = r.document();
        for key in [format!("c:{}", check_in.id), format!("j:{journal}")] {
            let bucket = bucket_of(&key).unwrap();
            let (_, map) = doc.get(ROOT, bucket.as_str()).unwrap().expect("the bucket exists");
            assert!(doc.get(&map, &key[2..]).unwrap().is_some(), "{key} is in {bucket}");
            assert!(doc.get(ROOT, key.as_str()).unwrap().is_none(), "{key} is not a root key");
        }
        assert!(doc.get(ROOT, format!("j:{oldest}").as_str()).unwrap().is_some(), "the v1 entry stays at the root");
        assert_eq!(r.journal_entry(&oldest).unwrap().text, "Edited after the upgrade.");
        // Nothing that was there is gone, and the new entries are listed with it.
        let ids: Vec<String> = r.check_ins().into_iter().map(|c| c.id).collect();
        assert!(before.0.iter().all(|c| ids.contains(&c.id)));
        assert_eq!(ids.len(), before.0.len() + 1);
        assert_eq!(r.journal().len(), before.1.len() + 1);
        assert!(r.unreadable_entries().is_empty());
    });
    // Everything since the last sync, old app's and new app's, passes the server's rules.
    let synced = synced_heads(&fixture);
    let doc = store.read(|r| r.document().clone());
    check_changes(&doc.fork_at(&synced).unwrap(), &doc.get_changes(&synced), Writer::Device).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
