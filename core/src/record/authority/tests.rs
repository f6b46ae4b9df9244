//! Each write rule, on both sides: the honest writes every front end makes
//! pass, and each forgery a hostile or faulty replica could send is refused
//! naming its key and rule.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, Change, ObjType, ReadDoc, ScalarValue, ROOT};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde_json::json;

use super::*;
use crate::checklist::BloodPressureReading;
use crate::instruments::InstrumentKind;
use crate::pack::Pack;
use crate::record::{CareRecord, CheckInInput, JournalLinks, Severity, UrgentKind};

pub(super) fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

pub(super) fn now() -> DateTime<Utc> {
    t("2026-05-01T12:00:00Z").with_timezone(&Utc)
}

/// A record as the clinic holds it: a clinic-scheduled session, a note, a
/// pack assignment, and an acknowledged urgent check-in from the phone.
pub(super) struct Fixture {
    pub(super) clinic: CareRecord,
    pub(super) session: String,
    pub(super) note: String,
    pub(super) crisis_key: String,
}

pub(super) fn fixture() -> Fixture {
    let mut phone = CareRecord::new(ActorId::from(&b"phone"[..]));
    let crisis = phone
        .add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 1]), now())
        .unwrap();
    let mut clinic = CareRecord::new(ActorId::from(&b"clinic"[..]));
    clinic.merge(&phone).unwrap();
    let session = clinic.schedule_session(t("2026-05-03T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    let note = clinic.add_clinician_note("Dr. Rivera", "Plan reviewed.", now()).unwrap();
    clinic.assign_pack("org.example.default", 1, now()).unwrap();
    let crisis_key = format!("c:{}", crisis.id);
    clinic.acknowledge(&crisis_key, "Dr. Rivera", now()).unwrap();
    Fixture { clinic, session, note, crisis_key }
}

/// The changes a replica with `actor` makes on top of `base` with raw Automerge calls.
pub(super) fn raw(
    base: &CareRecord,
    actor: &str,
    edit: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
) -> Vec<Change> {
    let mut doc: Automerge = base.document().clone().with_actor(ActorId::from(actor.as_bytes()));
    let before = doc.get_heads();
    doc.transact(|tx| edit(tx)).map_err(|failure| failure.error).unwrap();
    doc.get_changes(&before)
}

/// The changes `edit` makes through the typed API on a device replica of `base`.
fn honest(base: &CareRecord, edit: impl FnOnce(&mut CareRecord)) -> Vec<Change> {
    let mut device = CareRecord::new(ActorId::from(&b"tablet"[..]));
    device.merge(base).unwrap();
    let before = device.heads();
    edit(&mut device);
    device.document().get_changes(&before)
}

fn device_check(base: &CareRecord, changes: &[Change]) -> Result<(), Violation> {
    check_changes(base.document(), changes, Writer::Device)
}

fn refused(base: &CareRecord, changes: &[Change]) -> (String, Rule) {
    let violation = device_check(base, changes).expect_err("the write should be refused");
    (violation.key, violation.rule)
}

/// The object holding the entry at logical key `key` and its key there:
/// its bucket and id (format v2), or the root and the key (v1).
pub(super) fn home(record: &CareRecord, key: &str) -> (automerge::ObjId, String) {
    let (prefix, id) = key.split_at(2);
    match crate::record::place::bucket_key(prefix, id) {
        Some(bucket) => (record.document().get(ROOT, bucket.as_str()).unwrap().unwrap().1, id.to_owned()),
        None => (ROOT, key.to_owned()),
    }
}

fn session_obj(record: &CareRecord, id: &str) -> automerge::ObjId {
    crate::record::place::find(record.document(), &format!("s:{id}")).unwrap().1
}

#[test]
fn every_honest_device_write_passes() {
    let f = fixture();
    let pack = Pack::default_pack();
    let session = f.session.clone();
    let changes = honest(&f.clinic, |r| {
        let own = r.schedule_session(t("2026-05-10T15:00:00-04:00"), "America/New_York", Party::Client).unwrap();
        r.move_session(&own, t("2026-05-09T15:00:00-04:00"), Party::Client).unwrap();
        r.cancel_session(&own, Party::Client, now()).unwrap();
        // A clinic session: postponed, answered, evaluated, started and ended.
        r.move_session(&session, t("2026-05-03T15:40:00-04:00"), Party::Client).unwrap();
        r.record_answer(&pack, &session, "blood_pressure", &json!({"systolic": 190, "diastolic": 100}), now()).unwrap();
        r.record_answer(&pack, &session, "monitor_present", &json!(true), now()).unwrap();
        r.record_answer(&pack, &session, "monitor_present", &serde_json::Value::Null, now()).unwrap();
        let evaluation = r.evaluate_session(&pack, &session, "en").unwrap();
        r.record_readiness(&session, &evaluation, &pack, now()).unwrap();
        r.start_session(&session, t("2026-05-03T15:45:00-04:00")).unwrap();
        r.end_session(&session, t("2026-05-03T17:45:00-04:00")).unwrap();
        r.add_vitals(&pack, BloodPressureReading { systolic: 185, diastolic: 100 }, now(), Some(&session)).unwrap();
        r.report_side_effect(&pack, "dizziness", Severity::Severe, now(), Some(&session)).unwrap();
        r.add_check_in(CheckInInput::Mood(3), now()).unwrap();
        r.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![3; 7]), now()).unwrap();
        let links = JournalLinks { prompt_id: Some("same_evening".into()), session_id: Some(session.clone()) };
        let entry = r.write_journal_entry("Calm afterwards.", &links, now()).unwrap();
        r.edit_journal_entry(&entry, "Calm afterwards, then tired.", now()).unwrap();
        r.delete_journal_entry(&entry, Party::Client, now()).unwrap();
    });
    assert!(changes.len() > 10);
    device_check(&f.clinic, &changes).unwrap();
    // The same changes relayed to another device pass its check too.
    check_changes(f.clinic.document(), &changes, Writer::Relayed).unwrap();
}

#[test]
fn every_honest_clinic_write_passes_on_a_device() {
    let f = fixture();
    let (session, crisis_key) = (f.session.clone(), f.crisis_key.clone());
    let mut device = CareRecord::new(ActorId::from(&b"tablet"[..]));
    device.merge(&f.clinic).unwrap();
    let mut clinic = f.clinic.clone();
    let before = device.heads();
    let _ = crisis_key;
    clinic.move_session(&session, t("2026-05-02T09:00:00-04:00"), Party::Clinic).unwrap();
    let other = clinic.schedule_session(t("2026-05-20T15:00:00-04:00"), "Europe/Madrid", Party::Clinic).unwrap();
    clinic.cancel_session(&other, Party::Clinic, now()).unwrap();
    clinic.add_clinician_note("Dr. Rivera", "Call on Friday.", now()).unwrap();
    clinic.assign_pack("org.example.default", 2, now()).unwrap();
    let changes = clinic.document().get_changes(&before);
    check_changes(device.document(), &changes, Writer::Relayed).unwrap();
    check_changes(device.document(), &changes, Writer::Clinic).unwrap();
    // From a device, the same writes are refused.
    assert_eq!(device_check(&device, &changes).unwrap_err().rule, Rule::NotPermitted);
}

#[test]
fn a_device_cannot_write_a_note_or_overwrite_one() {
    let f = fixture();
    let forged = raw(&f.clinic, "thief", |tx| {
        let note = json!({"written_at": now(), "author": "Dr. Rivera", "text": "Cleared for a double dose."});
        tx.put(ROOT, "n:0123456789abcdef0123456789abcdef", note.to_string())
    });
    assert_eq!(refused(&f.clinic, &forged), ("n:0123456789abcdef0123456789abcdef".into(), Rule::NotPermitted));
    let key = format!("n:{}", f.note);
    let overwritten = raw(&f.clinic, "thief", |tx| {
        tx.put(ROOT, &key, json!({"written_at": now(), "author": "Dr. Rivera", "text": "Changed."}).to_string())
    });
    assert_eq!(refused(&f.clinic, &overwritten), (key, Rule::NotPermitted));
}

#[test]
fn nothing_is_ever_deleted_by_a_delete_op() {
    let f = fixture();
    let note_key = format!("n:{}", f.note);
    let session_key = format!("s:{}", f.session);
    let (bucket, id) = home(&f.clinic, &note_key);
    assert_eq!(
        refused(&f.clinic, &raw(&f.clinic, "thief", |tx| tx.delete(&bucket, id.as_str()))),
        (note_key, Rule::DeleteOp)
    );
    let (bucket, id) = home(&f.clinic, &session_key);
    assert_eq!(
        refused(&f.clinic, &raw(&f.clinic, "thief", |tx| tx.delete(&bucket, id.as_str()))),
        (session_key.clone(), Rule::DeleteOp)
    );
    // Nor a whole bucket, which would hide every entry in it.
    let bucket_key = format!("s/{}", &f.session[..2]);
    assert_eq!(
        refused(&f.clinic, &raw(&f.clinic, "thief", |tx| tx.delete(ROOT, bucket_key.as_str()))),
        (bucket_key, Rule::DeleteOp)
    );
    let obj = session_obj(&f.clinic, &f.session);
    assert_eq!(
        refused(&f.clinic, &raw(&f.clinic, "thief", |tx| tx.delete(&obj, "start"))),
        (format!("{session_key}/start"), Rule::DeleteOp)
    );
    // A device's own entry is no different.
    let mut phone = f.clinic.clone();
    let vitals = phone
        .add_vitals(&Pack::default_pack(), BloodPressureReading { systolic: 120, diastolic: 80 }, now(), None)
        .unwrap();
    let key = format!("v:{vitals}");
    let (bucket, id) = home(&phone, &key);
    assert_eq!(refused(&phone, &raw(&phone, "phone2", |tx| tx.delete(&bucket, id.as_str()))), (key, Rule::DeleteOp));
}

#[test]
fn a_device_cannot_acknowledge_or_reassign_the_pack() {
    let f = fixture();
    let ack_key = format!("k:{}", f.crisis_key);
    let self_ack = raw(&f.clinic, "thief", |tx| {
        tx.put(ROOT, "k:c:00000000000000000000000000000001", json!({"at": now(), "by": "Dr. Rivera"}).to_string())
    });
    assert_eq!(refused(&f.clinic, &self_ack).1, Rule::NotPermitted);
    let reack = raw(&f.clinic, "thief", |tx| tx.put(ROOT, &ack_key, json!({"at": now(), "by": "Nobody"}).to_string()));
    assert_eq!(refused(&f.clinic, &reack), (ack_key, Rule::NotPermitted));
    let pack = raw(&f.clinic, "thief", |tx| {
        tx.put(ROOT, "assigned_pack", json!({"pack_id": "org.evil", "version": 99, "assigned_at": now()}).to_string())
    });
    assert_eq!(refused(&f.clinic, &pack), ("assigned_pack".into(), Rule::NotPermitted));
}

#[test]
fn a_device_schedules_only_as_the_client_and_never_brings_a_clinic_session_forward() {
    let f = fixture();
    let as_clinic = raw(&f.clinic, "thief", |tx| {
        let obj = tx.put_object(ROOT, "s:00000000000000000000000000000002", ObjType::Map)?;
        tx.put(&obj, "start", "2026-05-04T15:00:00-04:00")?;
        tx.put(&obj, "tz", "America/New_York")?;
        tx.put(&obj, "by", "clinic")
    });
    assert_eq!(refused(&f.clinic, &as_clinic), ("s:00000000000000000000000000000002/by".into(), Rule::NotPermitted));
    let obj = session_obj(&f.clinic, &f.session);
    let key = format!("s:{}", f.session);
    let earlier = raw(&f.clinic, "thief", |tx| tx.put(&obj, "start", "2026-05-03T09:00:00-04:00"));
    assert_eq!(refused(&f.clinic, &earlier), (format!("{key}/start"), Rule::NotPermitted));
    let later = raw(&f.clinic, "thief", |tx| tx.put(&obj, "start", "2026-05-03T16:00:00-04:00"));
    device_check(&f.clinic, &later).unwrap();
    let cancel =
        raw(&f.clinic, "thief", |tx| tx.put(&obj, "cancelled", json!({"at": now(), "by": "client"}).to_string()));
    assert_eq!(refused(&f.clinic, &cancel), (format!("{key}/cancelled"), Rule::NotPermitted));
    let retag = raw(&f.clinic, "thief", |tx| tx.put(&obj, "by", "client"));
    assert_eq!(refused(&f.clinic, &retag), (format!("{key}/by"), Rule::Immutable));
    // The typed API refuses the same, before anything reaches a change.
    let mut device = f.clinic.clone();
    assert!(matches!(
        device.move_session(&f.session, t("2026-05-03T09:00:00-04:00"), Party::Client),
        Err(crate::record::RecordError::NotPermitted { .. })
    ));
    assert!(matches!(
        device.cancel_session(&f.session, Party::Client, now()),
        Err(crate::record::RecordError::NotPermitted { .. })
    ));
}

#[test]
fn immutable_entries_are_written_once() {
    let mut phone = fixture().clinic;
    let id = phone
        .add_vitals(&Pack::default_pack(), BloodPressureReading { systolic: 185, diastolic: 95 }, now(), None)
        .unwrap();
    let key = format!("v:{id}");
    let lowered = raw(&phone, "phone2", |tx| {
        let vitals = json!({"taken_at": now(), "reading": {"systolic": 120, "diastolic": 80}, "session_id": null, "urgent": false});
        tx.put(ROOT, &key, vitals.to_string())
    });
    assert_eq!(refused(&phone, &lowered), (key, Rule::Immutable));
}

#[test]
fn values_are_scalar_strings_of_their_type() {
    let f = fixture();
    let journal_text_object = raw(&f.clinic, "js-app", |tx| {
        let obj = tx.put_object(ROOT, "j:00000000000000000000000000000003", ObjType::Map)?;
        tx.put(&obj, "created_at", now().to_rfc3339())?;
        let text = tx.put_object(&obj, "text", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "hello")
    });
    assert_eq!(
        refused(&f.clinic, &journal_text_object),
        ("j:00000000000000000000000000000003/text".into(), Rule::TextObject)
    );
    let vitals_as_text = raw(&f.clinic, "js-app", |tx| {
        tx.put_object(ROOT, "v:00000000000000000000000000000004", ObjType::Text).map(drop)
    });
    assert_eq!(refused(&f.clinic, &vitals_as_text).1, Rule::TextObject);
    let number = raw(&f.clinic, "js-app", |tx| tx.put(ROOT, "v:00000000000000000000000000000005", ScalarValue::Int(5)));
    assert_eq!(refused(&f.clinic, &number).1, Rule::NotAString);
    let bad_vitals = raw(&f.clinic, "js-app", |tx| {
        tx.put(ROOT, "v:00000000000000000000000000000006", json!({"taken_at": "yesterday", "reading": {}}).to_string())
    });
    assert_eq!(refused(&f.clinic, &bad_vitals).1, Rule::InvalidValue);
    let unknown_kind = raw(&f.clinic, "js-app", |tx| tx.put(ROOT, "x:1", "{}"));
    assert_eq!(refused(&f.clinic, &unknown_kind), ("x:1".into(), Rule::UnknownEntryKind));
    let nested = raw(&f.clinic, "js-app", |tx| {
        let obj = session_obj(&f.clinic, &f.session);
        tx.put_object(&obj, "a:blood_pressure", ObjType::Map).map(drop)
    });
    assert_eq!(refused(&f.clinic, &nested).1, Rule::WrongShape);
    let counter = raw(&f.clinic, "js-app", |tx| {
        let obj = session_obj(&f.clinic, &f.session);
        tx.put(&obj, "visits", ScalarValue::counter(1))?;
        tx.increment(&obj, "visits", 1)
    });
    assert_eq!(refused(&f.clinic, &counter).1, Rule::NotAString);
}

#[test]
fn an_entry_or_answer_that_repeats_a_key_is_refused() {
    let f = fixture();
    // Two readers would disagree on which reading this is.
    let vitals = r#"{"taken_at": "2026-05-01T12:00:00Z", "reading": {"systolic": 190, "systolic": 120, "diastolic": 80}, "urgent": false}"#;
    let twice = raw(&f.clinic, "js-app", |tx| tx.put(ROOT, "v:00000000000000000000000000000007", vitals));
    let (key, rule) = refused(&f.clinic, &twice);
    assert_eq!((key.as_str(), rule), ("v:00000000000000000000000000000007", Rule::InvalidValue));
    let once = vitals.replace(r#""systolic": 190, "#, "");
    let honest = raw(&f.clinic, "js-app", |tx| tx.put(ROOT, "v:00000000000000000000000000000007", once.as_str()));
    device_check(&f.clinic, &honest).unwrap();
    // A checklist answer whose value says `monitor_present` twice.
    let answer = r#"{"value": true, "value": false, "at": "2026-05-01T12:00:00Z"}"#;
    let twice = raw(&f.clinic, "js-app", |tx| {
        let obj = session_obj(&f.clinic, &f.session);
        tx.put(&obj, "a:monitor_present", answer)
    });
    assert_eq!(refused(&f.clinic, &twice).1, Rule::InvalidValue);
    // An instant past the year 9999 in UTC cannot be written in RFC 3339.
    let late = r#"{"value": "none", "at": "9999-12-31T23:00:00-05:00"}"#;
    let late = raw(&f.clinic, "js-app", |tx| {
        let obj = session_obj(&f.clinic, &f.session);
        tx.put(&obj, "a:last_alcohol", late)
    });
    assert_eq!(refused(&f.clinic, &late).1, Rule::InvalidValue);
}

#[test]
fn text_limits_hold_on_synced_data() {
    let f = fixture();
    let huge = "x".repeat(2_000_000);
    let over = "x".repeat(crate::record::MAX_TEXT_CHARS + 1);
    for text in [&huge, &over] {
        let changes = raw(&f.clinic, "js-app", |tx| {
            let obj = tx.put_object(ROOT, "j:00000000000000000000000000000007", ObjType::Map)?;
            tx.put(&obj, "created_at", now().to_rfc3339())?;
            tx.put(&obj, "text", text.as_str())
        });
        assert_eq!(
            refused(&f.clinic, &changes),
            ("j:00000000000000000000000000000007/text".into(), Rule::InvalidValue)
        );
    }
    let unknown = raw(&f.clinic, "js-app", |tx| {
        let obj = session_obj(&f.clinic, &f.session);
        tx.put(&obj, "mood_note", "y".repeat(MAX_UNKNOWN_FIELD_BYTES + 1))
    });
    assert_eq!(refused(&f.clinic, &unknown).1, Rule::InvalidValue);
}

#[test]
fn readiness_decisions_must_follow_from_their_item_states() {
    let f = fixture();
    let forged = raw(&f.clinic, "thief", |tx| {
        let decision = json!({
            "session_id": f.session, "evaluated_at": now(), "pack_id": "org.example.default", "pack_version": 1,
            "status": "ready", "ready_at": null, "urgent": false,
            "items": [["blood_pressure", "fail"], ["monitor_present", "pass"]],
        });
        tx.put(ROOT, "r:00000000000000000000000000000008", decision.to_string())
    });
    assert_eq!(refused(&f.clinic, &forged), ("r:00000000000000000000000000000008".into(), Rule::InvalidValue));
}

#[test]
fn unknown_fields_are_kept_and_an_urgent_value_is_urgent_whatever_its_flag() {
    let f = fixture();
    let newer_app = raw(&f.clinic, "newer-app", |tx| {
        let vitals = json!({
            "taken_at": now(), "reading": {"systolic": 190, "diastolic": 125, "pulse": 88},
            "session_id": null, "urgent": false, "device_model": "cuff-2",
        });
        tx.put(ROOT, "v:00000000000000000000000000000009", vitals.to_string())?;
        let phq = json!({"completed_at": now(), "kind": "instrument", "instrument": "phq9",
            "answers": [0, 0, 0, 0, 0, 0, 0, 0, 3], "total": 3, "band": "minimal", "urgent": false});
        tx.put(ROOT, "c:0000000000000000000000000000000a", phq.to_string())?;
        let effect = json!({"reported_at": now(), "effect_id": "dizziness", "severity": "severe", "session_id": null, "urgent": false});
        tx.put(ROOT, "e:0000000000000000000000000000000b", effect.to_string())
    });
    device_check(&f.clinic, &newer_app).unwrap();
    let mut record = f.clinic.clone();
    record.apply_changes(newer_app).unwrap();
    assert_eq!(record.vitals().len(), 1, "an entry with unknown fields stays visible");
    assert!(record.unreadable_entries().is_empty());
    let open: Vec<(String, UrgentKind)> =
        record.open_urgent_items().into_iter().map(|item| (item.key, item.kind)).collect();
    for (key, kind) in [
        ("v:00000000000000000000000000000009", UrgentKind::UrgentBloodPressure),
        ("c:0000000000000000000000000000000a", UrgentKind::CrisisCheckIn),
        ("e:0000000000000000000000000000000b", UrgentKind::SideEffect),
    ] {
        assert!(open.contains(&(key.to_owned(), kind)), "{key} must be urgent: {open:?}");
    }
}

#[test]
fn an_urgent_checklist_answer_is_urgent_without_a_readiness_decision() {
    let f = fixture();
    let obj = session_obj(&f.clinic, &f.session);
    let answer = raw(&f.clinic, "thief", |tx| {
        tx.put(&obj, "a:blood_pressure", json!({"value": {"systolic": 200, "diastolic": 130}, "at": now()}).to_string())
    });
    device_check(&f.clinic, &answer).unwrap();
    let mut record = f.clinic.clone();
    record.apply_changes(answer).unwrap();
    let items = record.open_urgent_items();
    assert!(items
        .iter()
        .any(|item| item.kind == UrgentKind::UrgentBloodPressure
            && item.session_id.as_deref() == Some(f.session.as_str())));
    // A stricter pack's limit is what counts at the clinic.
    let mut strict = (*Pack::default_pack()).clone();
    strict.thresholds.bp_urgent.systolic = 210;
    strict.thresholds.bp_urgent.diastolic = 140;
    assert!(!record.urgent_items_with(&strict).iter().any(|item| item.kind == UrgentKind::UrgentBloodPressure));
}

#[test]
fn entries_a_reader_cannot_read_are_listed_with_the_reason() {
    let f = fixture();
    // Written before the checks existed, or by a replica that bypassed them.
    let mut doc: Automerge = f.clinic.document().clone().with_actor(ActorId::from(&b"legacy"[..]));
    doc.transact::<_, _, AutomergeError>(|tx| {
        let obj = tx.put_object(ROOT, "j:0000000000000000000000000000000c", ObjType::Map)?;
        tx.put(&obj, "created_at", now().to_rfc3339())?;
        let text = tx.put_object(&obj, "text", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "hidden words")?;
        tx.put(ROOT, "v:0000000000000000000000000000000d", "{\"taken_at\": 5}")?;
        tx.put(ROOT, "z:1", "future")?;
        Ok(())
    })
    .unwrap();
    let record = CareRecord::load(&doc.save(), ActorId::random()).unwrap();
    let unreadable = record.unreadable_entries();
    let keys: Vec<&str> = unreadable.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["j:0000000000000000000000000000000c", "v:0000000000000000000000000000000d", "z:1"]);
    assert!(unreadable[0].reason.contains("text") && unreadable[0].reason.contains("Text object"));
    assert!(!unreadable.iter().any(|e| e.reason.contains("hidden")));
    assert_eq!(record.to_json()["unreadable_entries"].as_array().unwrap().len(), 3);
}

#[test]
fn too_many_new_entries_in_one_exchange_are_refused() {
    let f = fixture();
    let flood = raw(&f.clinic, "flood", |tx| {
        for i in 0..=MAX_NEW_ENTRIES_PER_CHECK {
            let obj = tx.put_object(ROOT, format!("j:{i:032x}"), ObjType::Map)?;
            tx.put(&obj, "created_at", now().to_rfc3339())?;
        }
        Ok(())
    });
    assert_eq!(refused(&f.clinic, &flood).1, Rule::TooManyEntries);
    let _ = Duration::zero();
}

#[test]
fn the_clinic_writes_no_journal_field_known_or_not() {
    let mut phone = fixture().clinic;
    let id = phone.write_journal_entry("Mine.", &JournalLinks::default(), now()).unwrap();
    let obj = crate::record::place::find(phone.document(), &format!("j:{id}")).unwrap().1;
    for field in ["text", "clinic_tag"] {
        let changes = raw(&phone, "clinic2", |tx| tx.put(&obj, field, "edited by the clinic"));
        let violation = check_changes(phone.document(), &changes, Writer::Clinic).unwrap_err();
        assert_eq!((violation.key, violation.rule), (format!("j:{id}/{field}"), Rule::NotPermitted));
        // From a device, the same write is the client's own: an edit, or a field kept for a newer reader.
        device_check(&phone, &changes).unwrap();
    }
}

#[test]
fn too_many_operations_in_one_exchange_are_refused_before_they_are_expanded() {
    let f = fixture();
    let obj = session_obj(&f.clinic, &f.session);
    let flood = raw(&f.clinic, "flood", |tx| {
        for i in 0..=MAX_OPS_PER_CHECK {
            tx.put(&obj, format!("x{i}"), "")?;
        }
        Ok(())
    });
    let violation = device_check(&f.clinic, &flood).unwrap_err();
    assert_eq!((violation.rule, violation.reason.contains("operations")), (Rule::TooManyEntries, true));
}
