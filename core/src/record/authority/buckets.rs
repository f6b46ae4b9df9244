//! Format v2's buckets under the write rules: a bucket is an empty map a
//! writer of its kind creates and nobody replaces; its entries' ids name it;
//! concurrent buckets are both kept and both read; v1 root entries are
//! still read and still accepted beside v2 ones.

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ROOT};
use serde_json::json;

use super::tests::{fixture, home, now, raw};
use super::*;
use crate::record::{place, CareRecord, CheckInInput};

fn check_in_json(total_ones: usize) -> String {
    let answers: Vec<u8> = (0..9).map(|i| u8::from(i < total_ones)).collect();
    let scored = crate::instruments::score(crate::instruments::InstrumentKind::Phq9, &answers).unwrap();
    json!({"completed_at": now(), "kind": "instrument", "instrument": "phq9", "answers": answers,
        "total": scored.total, "band": scored.band, "urgent": false})
    .to_string()
}

fn device_check(base: &CareRecord, changes: &[automerge::Change]) -> Result<(), Violation> {
    check_changes(base.document(), changes, Writer::Device)
}

#[test]
fn a_bucket_is_an_empty_map_made_by_a_writer_of_its_kind_and_never_replaced() {
    let f = fixture();
    // Replacing the note's bucket would hide every note in it.
    let bucket = format!("n/{}", &f.note[..2]);
    let replaced = raw(&f.clinic, "thief", |tx| tx.put_object(ROOT, bucket.as_str(), ObjType::Map).map(drop));
    let violation = check_changes(f.clinic.document(), &replaced, Writer::Clinic).unwrap_err();
    assert_eq!((violation.key, violation.rule), (bucket.clone(), Rule::Immutable));
    // A device makes no note bucket, and no bucket is a string or a text.
    let notes = raw(&f.clinic, "thief", |tx| tx.put_object(ROOT, "n/01", ObjType::Map).map(drop));
    assert_eq!(device_check(&f.clinic, &notes).unwrap_err().rule, Rule::NotPermitted);
    let scalar = raw(&f.clinic, "thief", |tx| tx.put(ROOT, "c/01", "{}"));
    assert_eq!(device_check(&f.clinic, &scalar).unwrap_err().rule, Rule::WrongShape);
    let text = raw(&f.clinic, "thief", |tx| tx.put_object(ROOT, "c/01", ObjType::Text).map(drop));
    assert_eq!(device_check(&f.clinic, &text).unwrap_err().rule, Rule::TextObject);
    // An entry's id names its bucket: 32 hex digits starting with its digits.
    for id in ["02000000000000000000000000000001", "01", "01XYZ000000000000000000000000001"] {
        let misplaced = raw(&f.clinic, "phone", |tx| {
            let obj = tx.put_object(ROOT, "c/01", ObjType::Map)?;
            tx.put(&obj, id, check_in_json(2))
        });
        let violation = device_check(&f.clinic, &misplaced).unwrap_err();
        assert_eq!((violation.key, violation.rule), (format!("c:{id}"), Rule::WrongShape), "{id}");
    }
    // The same, well placed, is a check-in like any other.
    let placed = raw(&f.clinic, "phone", |tx| {
        let obj = tx.put_object(ROOT, "c/01", ObjType::Map)?;
        tx.put(&obj, "01000000000000000000000000000001", check_in_json(2))
    });
    device_check(&f.clinic, &placed).unwrap();
}

#[test]
fn buckets_made_concurrently_are_both_accepted_and_both_read() {
    let f = fixture();
    let mut server = f.clinic.clone();
    // A bucket the fixture's check-in (its id is random) has not made: one
    // made already would make the devices' buckets replacements, refused.
    let digits = ["ab", "cd"]
        .into_iter()
        .find(|digits| server.document().get(ROOT, format!("c/{digits}").as_str()).unwrap().is_none())
        .unwrap();
    let (bucket, first, second) = (
        format!("c/{digits}"),
        format!("{digits}000000000000000000000000000001"),
        format!("{digits}000000000000000000000000000002"),
    );
    // Two devices, offline, each start that bucket with a check-in of their own.
    let phone = raw(&server, "phone", |tx| {
        let obj = tx.put_object(ROOT, bucket.as_str(), ObjType::Map)?;
        tx.put(&obj, first.as_str(), check_in_json(1))
    });
    let tablet = raw(&server, "tablet", |tx| {
        let obj = tx.put_object(ROOT, bucket.as_str(), ObjType::Map)?;
        tx.put(&obj, second.as_str(), check_in_json(3))
    });
    device_check(&server, &phone).unwrap();
    server.apply_changes(phone.clone()).unwrap();
    // The second bucket replaces nothing the tablet saw: it is accepted.
    device_check(&server, &tablet).unwrap();
    server.apply_changes(tablet.clone()).unwrap();
    assert_eq!(server.document().get_all(ROOT, bucket.as_str()).unwrap().len(), 2, "two maps at one key");
    let ids: Vec<String> = server.check_ins().into_iter().map(|c| c.id).filter(|id| id.starts_with(digits)).collect();
    assert_eq!(ids, [first.clone(), second.clone()]);
    for id in &ids {
        assert!(place::find(server.document(), &format!("c:{id}")).is_some(), "{id} is found by its key");
    }
    assert!(server.unreadable_entries().is_empty());
    let touched = crate::record::touched_entries(server.document(), &tablet);
    assert_eq!(touched.into_iter().collect::<Vec<_>>(), [format!("c:{second}")]);
    // A later write goes into the winning bucket, and is read with the rest.
    let before = server.heads();
    let added = server.add_check_in(CheckInInput::Mood(5), now()).unwrap();
    let changes = server.document().get_changes(&before);
    check_changes(f.clinic.document(), &[phone, tablet].concat(), Writer::Device).unwrap();
    assert!(changes.len() == 1 && server.check_ins().iter().any(|c| c.id == added.id));
}

#[test]
fn v1_root_entries_are_read_and_accepted_beside_v2_buckets() {
    let f = fixture();
    let mut server = f.clinic.clone();
    // An app not yet upgraded writes a check-in and a journal entry at root keys.
    let v1 = raw(&server, "old-app", |tx| {
        tx.put(ROOT, "c:0123456789abcdef0123456789abcdef", check_in_json(2))?;
        let obj = tx.put_object(ROOT, "j:fedcba9876543210fedcba9876543210", ObjType::Map)?;
        tx.put(&obj, "created_at", now().to_rfc3339())?;
        tx.put(&obj, "text", "Written by the old app.")
    });
    device_check(&server, &v1).unwrap();
    server.apply_changes(v1).unwrap();
    assert!(server.check_ins().iter().any(|c| c.id == "0123456789abcdef0123456789abcdef"));
    let journal = server.journal_entry("fedcba9876543210fedcba9876543210").expect("a v1 journal entry is read");
    assert_eq!(journal.text, "Written by the old app.");
    // The new app edits it where it is, and its own entries go into buckets.
    server.edit_journal_entry(&journal.id, "Edited by the new app.", now()).unwrap();
    assert_eq!(server.journal_entry(&journal.id).unwrap().text, "Edited by the new app.");
    let added = server.add_check_in(CheckInInput::Mood(4), now()).unwrap();
    assert_eq!(home(&server, &format!("c:{}", added.id)).1, added.id, "written in its bucket");
    // One key, one entry: a v1 write of a key that lives in a bucket is a second write of it.
    let key = format!("c:{}", added.id);
    let twice = raw(&server, "old-app", |tx| tx.put(ROOT, key.as_str(), check_in_json(1)));
    assert_eq!(
        device_check(&server, &twice).unwrap_err(),
        violation(&key, Rule::Immutable, "a check-in is written once and never changed")
    );
    assert!(server.unreadable_entries().is_empty());
}
