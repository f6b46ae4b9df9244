//! Record behaviour: typed operations, merges of every part, no lost words.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::checklist::{BloodPressureReading, ReadinessStatus};
use crate::instruments::InstrumentKind;

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    t(s).with_timezone(&Utc)
}

fn pack() -> std::sync::Arc<Pack> {
    Pack::default_pack()
}

fn replica(name: &str) -> CareRecord {
    CareRecord::new(ActorId::from(name.as_bytes()))
}

/// Replicas that share a history, as after a sync.
fn fork(base: &CareRecord, name: &str) -> CareRecord {
    let mut r = replica(name);
    r.merge(base).unwrap();
    r
}

fn bp(systolic: u16, diastolic: u16) -> BloodPressureReading {
    BloodPressureReading { systolic, diastolic }
}

fn merged(replicas: &[&CareRecord]) -> CareRecord {
    let mut all = replica("observer");
    for r in replicas {
        all.merge(r).unwrap();
    }
    all
}

#[test]
fn a_session_is_scheduled_answered_evaluated_and_audited() {
    let pack = pack();
    let mut r = replica("phone");
    let id = r.schedule_session(t("2026-05-01T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    let now = utc("2026-05-01T10:00:00Z");
    r.record_answer(&pack, &id, "last_solid_food", &json!("2026-05-01T13:00:00-04:00"), now).unwrap();
    r.record_answer(&pack, &id, "blood_pressure", &json!({"systolic": 150, "diastolic": 85}), now).unwrap();
    let e = r.evaluate_session(&pack, &id, "en").unwrap();
    assert_eq!(e.status, ReadinessStatus::Blocked);
    r.record_readiness(&id, &e, &pack, now).unwrap();

    // A second, lower reading replaces the first answer.
    let later = now + Duration::minutes(10);
    r.record_answer(&pack, &id, "blood_pressure", &json!({"systolic": 128, "diastolic": 80}), later).unwrap();
    assert_eq!(r.session_answers(&id).unwrap()["blood_pressure"], json!({"systolic": 128, "diastolic": 80}));

    let history = r.readiness_history(&id);
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].pack_id.as_str(), history[0].pack_version), (pack.id.as_str(), pack.version));
    assert_eq!(history[0].status, ReadinessStatus::Blocked);
    assert_eq!(r.open_urgent_items()[0].kind, UrgentKind::ChecklistBlocked);
}

#[test]
fn answers_come_with_the_instant_the_winning_one_was_recorded() {
    let pack = pack();
    let phone = {
        let mut r = replica("phone");
        r.schedule_session(t("2026-05-01T15:00:00Z"), "UTC", Party::Client).unwrap();
        r
    };
    let id = phone.sessions()[0].id.clone();
    let mut tablet = fork(&phone, "tablet");
    let mut phone = phone;
    phone
        .record_answer(
            &pack,
            &id,
            "blood_pressure",
            &json!({"systolic": 130, "diastolic": 85}),
            utc("2026-05-01T10:00:00Z"),
        )
        .unwrap();
    tablet
        .record_answer(
            &pack,
            &id,
            "blood_pressure",
            &json!({"systolic": 124, "diastolic": 80}),
            utc("2026-05-01T11:00:00Z"),
        )
        .unwrap();
    phone.record_answer(&pack, &id, "monitor_present", &json!(true), utc("2026-05-01T09:00:00Z")).unwrap();
    phone.record_answer(&pack, &id, "monitor_present", &serde_json::Value::Null, utc("2026-05-01T09:30:00Z")).unwrap();
    let both = merged(&[&phone, &tablet]);
    let answers = both.session_answers_at(&id);
    assert_eq!(answers.len(), 1, "a cleared answer is left out: {answers:?}");
    let (item, value, at) = &answers[0];
    assert_eq!(item, "blood_pressure");
    assert_eq!(value, &json!({"systolic": 124, "diastolic": 80}), "the later of the concurrent answers");
    assert_eq!(at.map(|t| t.with_timezone(&Utc)), Some(utc("2026-05-01T11:00:00Z")));
    assert!(both.session_answers_at("unknown").is_empty());
}

#[test]
fn answers_are_checked_against_the_pack_and_clearing_works() {
    let pack = pack();
    let mut r = replica("phone");
    let id = r.schedule_session(t("2026-05-01T15:00:00Z"), "UTC", Party::Client).unwrap();
    let now = utc("2026-05-01T10:00:00Z");
    let err = r.record_answer(&pack, &id, "monitor_present", &json!("yes"), now).unwrap_err();
    assert!(matches!(&err, RecordError::InvalidInput { field, .. } if field == "answers.monitor_present"), "{err}");
    assert!(matches!(
        r.record_answer(&pack, &id, "favourite_colour", &json!(true), now),
        Err(RecordError::InvalidInput { .. })
    ));
    assert!(matches!(
        r.record_answer(&pack, "nope", "monitor_present", &json!(true), now),
        Err(RecordError::NotFound { .. })
    ));
    r.record_answer(&pack, &id, "monitor_present", &json!(true), now).unwrap();
    r.record_answer(&pack, &id, "monitor_present", &serde_json::Value::Null, now + Duration::seconds(1)).unwrap();
    assert_eq!(r.session_answers(&id).unwrap(), json!({}));
    assert!(matches!(
        r.schedule_session(t("2026-05-01T15:00:00Z"), "Mars/Base", Party::Client),
        Err(RecordError::InvalidInput { .. })
    ));
}

#[test]
fn sessions_start_end_cancel_and_list_as_upcoming() {
    let mut r = replica("phone");
    let a = r.schedule_session(t("2026-05-01T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    let b = r.schedule_session(t("2026-05-08T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    let c = r.schedule_session(t("2026-05-15T15:00:00-04:00"), "America/New_York", Party::Client).unwrap();
    assert!(matches!(r.end_session(&a, t("2026-05-01T17:00:00-04:00")), Err(RecordError::InvalidInput { .. })));
    r.start_session(&a, t("2026-05-01T15:05:00-04:00")).unwrap();
    assert!(matches!(r.end_session(&a, t("2026-05-01T15:00:00-04:00")), Err(RecordError::InvalidInput { .. })));
    r.end_session(&a, t("2026-05-01T17:00:00-04:00")).unwrap();
    r.cancel_session(&c, Party::Client, utc("2026-05-02T12:00:00Z")).unwrap();
    assert!(matches!(r.start_session(&c, t("2026-05-15T15:00:00-04:00")), Err(RecordError::InvalidInput { .. })));
    r.move_session(&b, t("2026-05-09T10:00:00-04:00"), Party::Client).unwrap();

    let upcoming = r.upcoming_sessions(utc("2026-05-02T12:00:00Z"));
    assert_eq!(upcoming.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [b.as_str()]);
    assert_eq!(upcoming[0].scheduled_start, t("2026-05-09T10:00:00-04:00"));
    assert_eq!(r.sessions().len(), 3, "cancelled sessions stay in the record");
    assert_eq!(r.session(&c).unwrap().cancelled.unwrap().by, Party::Client);
}

#[test]
fn entries_are_typed_flagged_and_listed() {
    let pack = pack();
    let mut r = replica("phone");
    let now = utc("2026-05-01T20:00:00Z");
    r.add_vitals(&pack, bp(120, 80), now, None).unwrap();
    r.add_vitals(&pack, bp(182, 100), now + Duration::minutes(1), None).unwrap();
    assert!(matches!(r.add_vitals(&pack, bp(80, 120), now, None), Err(RecordError::InvalidInput { .. })));
    r.report_side_effect(&pack, "nausea_vomiting", Severity::Mild, now, None).unwrap();
    r.report_side_effect(&pack, "dizziness", Severity::Severe, now, None).unwrap();
    r.report_side_effect(&pack, "blood_in_urine", Severity::Mild, now, None).unwrap();
    assert!(matches!(
        r.report_side_effect(&pack, "hiccups", Severity::Mild, now, None),
        Err(RecordError::InvalidInput { .. })
    ));
    let phq =
        r.add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 1]), now).unwrap();
    assert!(phq.urgent);
    r.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![1; 7]), now).unwrap();
    r.add_check_in(CheckInInput::Mood(7), now).unwrap();
    assert!(matches!(r.add_check_in(CheckInInput::Mood(11), now), Err(RecordError::InvalidInput { .. })));
    assert!(matches!(
        r.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![1; 6]), now),
        Err(RecordError::InvalidInput { .. })
    ));
    r.add_clinician_note("Dr. Rivera", "Discussed sleep; follow up next week.", now).unwrap();
    r.assign_pack("org.example.clinic", 3, now).unwrap();

    assert_eq!(r.vitals().len(), 2);
    assert_eq!(r.side_effects().iter().filter(|e| e.urgent).count(), 2, "severe and always-report");
    assert_eq!(r.check_ins().len(), 3);
    assert_eq!(r.clinician_notes()[0].author, "Dr. Rivera");
    assert_eq!(r.assigned_pack().unwrap().version, 3);
    let kinds: Vec<UrgentKind> = r.open_urgent_items().iter().map(|i| i.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == UrgentKind::SideEffect).count(), 2);
    assert!(kinds.contains(&UrgentKind::UrgentBloodPressure));
    assert!(kinds.contains(&UrgentKind::CrisisCheckIn));

    let key = r.open_urgent_items()[0].key.clone();
    r.acknowledge(&key, "Dr. Rivera", now).unwrap();
    assert_eq!(r.open_urgent_items().len(), 3);
    assert_eq!(r.urgent_items().len(), 4);
    assert!(matches!(r.acknowledge("v:nothing", "Dr. Rivera", now), Err(RecordError::NotFound { .. })));
}

#[test]
fn journal_entries_are_written_edited_and_deleted_explicitly() {
    let mut r = replica("phone");
    let now = utc("2026-05-01T20:00:00Z");
    let id = r.write_journal_entry("First thoughts.", &JournalLinks::default(), now).unwrap();
    r.edit_journal_entry(&id, "First thoughts, revised.", now + Duration::hours(1)).unwrap();
    assert_eq!(r.journal_entry(&id).unwrap().text, "First thoughts, revised.");
    assert!(matches!(
        r.write_journal_entry("  ", &JournalLinks::default(), now),
        Err(RecordError::InvalidInput { .. })
    ));
    let too_long = "x".repeat(MAX_TEXT_CHARS + 1);
    assert!(matches!(
        r.write_journal_entry(&too_long, &JournalLinks::default(), now),
        Err(RecordError::InvalidInput { .. })
    ));
    r.delete_journal_entry(&id, Party::Client, now + Duration::hours(2)).unwrap();
    assert!(r.journal().is_empty());
    assert!(matches!(r.edit_journal_entry(&id, "again", now), Err(RecordError::NotFound { .. })));
    assert!(matches!(r.delete_journal_entry(&id, Party::Client, now), Err(RecordError::NotFound { .. })));
}

#[test]
fn concurrent_edits_of_one_journal_entry_keep_both_texts() {
    let now = utc("2026-05-01T20:00:00Z");
    let mut phone = replica("phone");
    let id = phone.write_journal_entry("Draft.", &JournalLinks::default(), now).unwrap();
    let mut tablet = fork(&phone, "tablet");
    phone.edit_journal_entry(&id, "Written on the phone on the bus.", now + Duration::minutes(5)).unwrap();
    tablet.edit_journal_entry(&id, "Written on the tablet at home.", now + Duration::minutes(6)).unwrap();

    let a = merged(&[&phone, &tablet]);
    let b = merged(&[&tablet, &phone]);
    let entry = a.journal_entry(&id).unwrap();
    assert_eq!(entry, b.journal_entry(&id).unwrap(), "same view whatever the merge order");
    let mut texts = vec![entry.text.clone()];
    texts.extend(entry.conflicting_texts.clone());
    texts.sort();
    assert_eq!(texts, ["Written on the phone on the bus.", "Written on the tablet at home."]);

    // The next edit settles it.
    let mut settled = a.clone();
    settled.edit_journal_entry(&id, "Both: bus and home.", now + Duration::hours(1)).unwrap();
    assert!(settled.journal_entry(&id).unwrap().conflicting_texts.is_empty());
}

#[test]
fn every_part_merges_from_three_replicas_in_any_order() {
    let pack = pack();
    let now = utc("2026-05-01T12:00:00Z");
    let mut clinic = replica("clinic");
    let session = clinic.schedule_session(t("2026-05-02T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    let shared = clinic.write_journal_entry("Shared before going offline.", &JournalLinks::default(), now).unwrap();
    let mut phone = fork(&clinic, "phone");
    let mut tablet = fork(&clinic, "tablet");

    // Offline edits everywhere.
    phone.record_answer(&pack, &session, "monitor_present", &json!(true), now).unwrap();
    phone.record_answer(&pack, &session, "blood_pressure", &json!({"systolic": 150, "diastolic": 80}), now).unwrap();
    tablet
        .record_answer(
            &pack,
            &session,
            "blood_pressure",
            &json!({"systolic": 125, "diastolic": 80}),
            now + Duration::minutes(20),
        )
        .unwrap();
    let e = phone.evaluate_session(&pack, &session, "en").unwrap();
    phone.record_readiness(&session, &e, &pack, now).unwrap();
    phone.add_vitals(&pack, bp(150, 80), now, Some(&session)).unwrap();
    tablet.add_vitals(&pack, bp(125, 80), now, Some(&session)).unwrap();
    phone.report_side_effect(&pack, "nausea_vomiting", Severity::Moderate, now, Some(&session)).unwrap();
    tablet.add_check_in(CheckInInput::Mood(6), now).unwrap();
    phone.write_journal_entry("Phone entry.", &JournalLinks::default(), now).unwrap();
    tablet.write_journal_entry("Tablet entry.", &JournalLinks::default(), now).unwrap();
    tablet.delete_journal_entry(&shared, Party::Client, now).unwrap();
    clinic.move_session(&session, t("2026-05-02T16:00:00-04:00"), Party::Clinic).unwrap();
    clinic.add_clinician_note("Dr. Rivera", "Moved by an hour.", now).unwrap();
    clinic.assign_pack("org.example.clinic", 2, now).unwrap();

    let orders: [[&CareRecord; 3]; 6] = [
        [&phone, &tablet, &clinic],
        [&phone, &clinic, &tablet],
        [&tablet, &phone, &clinic],
        [&tablet, &clinic, &phone],
        [&clinic, &phone, &tablet],
        [&clinic, &tablet, &phone],
    ];
    let results: Vec<CareRecord> = orders.iter().map(|order| merged(order)).collect();
    for r in &results[1..] {
        assert_eq!(r.to_json(), results[0].to_json());
        let (mut a, mut b) = (r.heads(), results[0].heads());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
    let r = &results[0];
    assert_eq!(r.vitals().len(), 2);
    assert_eq!(r.side_effects().len(), 1);
    assert_eq!(r.check_ins().len(), 1);
    assert_eq!(r.clinician_notes().len(), 1);
    assert_eq!(r.readiness_history(&session).len(), 1);
    let texts: Vec<String> = r.journal().into_iter().map(|e| e.text).collect();
    assert_eq!(texts.len(), 2, "two new entries, the deleted one hidden: {texts:?}");
    assert_eq!(r.session(&session).unwrap().scheduled_start, t("2026-05-02T16:00:00-04:00"));
    assert_eq!(r.session_answers(&session).unwrap()["blood_pressure"], json!({"systolic": 125, "diastolic": 80}));
    assert_eq!(r.session_answers(&session).unwrap()["monitor_present"], json!(true));
    assert_eq!(r.assigned_pack().unwrap().version, 2);
}

#[test]
fn concurrent_moves_of_a_session_are_surfaced() {
    let mut clinic = replica("clinic");
    let id = clinic.schedule_session(t("2026-05-02T15:00:00Z"), "UTC", Party::Clinic).unwrap();
    let mut phone = fork(&clinic, "phone");
    clinic.move_session(&id, t("2026-05-03T15:00:00Z"), Party::Clinic).unwrap();
    phone.move_session(&id, t("2026-05-04T15:00:00Z"), Party::Client).unwrap();
    let s = merged(&[&phone, &clinic]).session(&id).unwrap();
    assert_eq!(s.conflicting_starts.len(), 1);
    let mut all = vec![s.scheduled_start, s.conflicting_starts[0]];
    all.sort();
    assert_eq!(all, [t("2026-05-03T15:00:00Z"), t("2026-05-04T15:00:00Z")]);
}

#[test]
fn due_integration_prompts_follow_the_session_end_and_journal_answers() {
    let pack = pack();
    let mut r = replica("phone");
    let id = r.schedule_session(t("2026-05-01T15:00:00-04:00"), "America/New_York", Party::Clinic).unwrap();
    r.start_session(&id, t("2026-05-01T15:00:00-04:00")).unwrap();
    r.end_session(&id, t("2026-05-01T17:00:00-04:00")).unwrap();
    let now = utc("2026-05-02T16:00:00Z"); // 12:00 EDT the next day
    let due = r.due_integration_prompts(&pack, now, "en", &[]);
    let ids: Vec<&str> = due.iter().map(|p| p.prompt_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "the evening prompt and the next morning's: {ids:?}");
    let links = JournalLinks { prompt_id: Some(due[0].prompt_id.clone()), session_id: Some(id.clone()) };
    r.write_journal_entry("Answering the first prompt.", &links, now).unwrap();
    assert_eq!(r.due_integration_prompts(&pack, now, "en", &[]).len(), 1);
    // Long after, nothing is due any more.
    assert!(r.due_integration_prompts(&pack, now + Duration::days(40), "en", &[]).is_empty());
}

#[test]
fn a_record_round_trips_through_bytes_and_incremental_saves() {
    let pack = pack();
    let mut r = replica("phone");
    r.add_vitals(&pack, bp(120, 80), utc("2026-05-01T12:00:00Z"), None).unwrap();
    let heads = r.heads();
    let snapshot = r.save();
    r.write_journal_entry("After the snapshot.", &JournalLinks::default(), utc("2026-05-01T13:00:00Z")).unwrap();
    let increment = r.save_after(&heads);
    let loaded = CareRecord::load_parts(Some(&snapshot), [increment.as_slice()], ActorId::random()).unwrap();
    assert_eq!(loaded.to_json(), r.to_json());
    // An increment without its base is refused, never taken as a whole record.
    let err = CareRecord::load_parts(None, [increment.as_slice()], ActorId::random()).unwrap_err();
    assert!(matches!(err, RecordError::Malformed { .. }));
    assert!(matches!(CareRecord::load(b"not automerge", ActorId::random()), Err(RecordError::Malformed { .. })));
    // Merging the same bytes twice changes nothing.
    let mut twice = loaded.clone();
    twice.merge_bytes(&increment).unwrap();
    twice.merge_bytes(&r.save()).unwrap();
    assert_eq!(twice.to_json(), r.to_json());
}

/// One operation of the record API, for the property test.
#[derive(Clone, Debug)]
enum Op {
    Schedule(u8),
    Move(u8, u8),
    Answer(u8, bool, u16),
    Vitals(u16, u16),
    SideEffect(u8, bool),
    Mood(u8),
    Phq9(u8),
    Write(u8),
    Edit(u8, u8),
    Delete(u8),
    Note(u8),
    StartEnd(u8),
    Readiness(u8),
    Cancel(u8),
    AssignPack(u8),
    Acknowledge(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::Schedule),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Move(a, b)),
        (any::<u8>(), any::<bool>(), 90u16..200).prop_map(|(a, b, c)| Op::Answer(a, b, c)),
        (90u16..200, 50u16..89).prop_map(|(s, d)| Op::Vitals(s, d)),
        (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::SideEffect(a, b)),
        (0u8..=10).prop_map(Op::Mood),
        (0u8..=3).prop_map(Op::Phq9),
        any::<u8>().prop_map(Op::Write),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Edit(a, b)),
        any::<u8>().prop_map(Op::Delete),
        any::<u8>().prop_map(Op::Note),
        any::<u8>().prop_map(Op::StartEnd),
        any::<u8>().prop_map(Op::Readiness),
        any::<u8>().prop_map(Op::Cancel),
        (1u8..20).prop_map(Op::AssignPack),
        any::<u8>().prop_map(Op::Acknowledge),
    ]
}

/// Applies `op` to `r`; returns a description of what must be visible after merging.
fn apply(r: &mut CareRecord, op: &Op, step: usize) -> Option<String> {
    let pack = pack();
    let now = utc("2026-05-01T12:00:00Z") + Duration::minutes(step as i64);
    let pick = |items: Vec<String>, n: u8| (!items.is_empty()).then(|| items[n as usize % items.len()].clone());
    let sessions = r.sessions().into_iter().map(|s| s.id).collect::<Vec<_>>();
    let journal = r.journal().into_iter().map(|e| e.id).collect::<Vec<_>>();
    match op {
        Op::Schedule(h) => {
            let start = t("2026-06-01T00:00:00Z") + Duration::hours(i64::from(*h));
            Some(format!("session {}", r.schedule_session(start, "UTC", Party::Client).ok()?))
        }
        Op::Move(s, h) => {
            let id = pick(sessions, *s)?;
            r.move_session(&id, t("2026-07-01T00:00:00Z") + Duration::hours(i64::from(*h)), Party::Clinic).ok()?;
            None
        }
        Op::Answer(s, monitor, sys) => {
            let id = pick(sessions, *s)?;
            r.record_answer(&pack, &id, "monitor_present", &json!(monitor), now).ok()?;
            r.record_answer(&pack, &id, "blood_pressure", &json!({"systolic": sys, "diastolic": 70}), now).ok()?;
            None
        }
        Op::Vitals(s, d) => Some(format!("vitals {}", r.add_vitals(&pack, bp(*s, *d), now, None).ok()?)),
        Op::SideEffect(i, severe) => {
            let effect = &pack.side_effects[*i as usize % pack.side_effects.len()].id;
            let severity = if *severe { Severity::Severe } else { Severity::Mild };
            Some(format!("side effect {}", r.report_side_effect(&pack, effect, severity, now, None).ok()?))
        }
        Op::Mood(m) => Some(format!("check-in {}", r.add_check_in(CheckInInput::Mood(*m), now).ok()?.id)),
        Op::Phq9(item9) => {
            let answers = vec![1, 1, 0, 0, 2, 0, 1, 0, *item9];
            Some(format!(
                "check-in {}",
                r.add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, answers), now).ok()?.id
            ))
        }
        Op::Write(n) => Some(format!(
            "journal {}",
            r.write_journal_entry(&format!("entry {n} at {step}"), &JournalLinks::default(), now).ok()?
        )),
        Op::Edit(j, n) => {
            let id = pick(journal, *j)?;
            r.edit_journal_entry(&id, &format!("edit {n} at {step}"), now).ok()?;
            None
        }
        Op::Delete(j) => {
            let id = pick(journal, *j)?;
            r.delete_journal_entry(&id, Party::Client, now).ok()?;
            Some(format!("deleted {id}"))
        }
        Op::Note(n) => Some(format!("note {}", r.add_clinician_note("Dr. Rivera", &format!("note {n}"), now).ok()?)),
        Op::StartEnd(s) => {
            let id = pick(sessions, *s)?;
            let at = now.fixed_offset();
            r.start_session(&id, at).ok()?;
            r.end_session(&id, at + Duration::hours(2)).ok()?;
            Some(format!("ended {id}"))
        }
        Op::Readiness(s) => {
            let id = pick(sessions, *s)?;
            let evaluation = r.evaluate_session(&pack, &id, "en").ok()?;
            Some(format!("readiness {}", r.record_readiness(&id, &evaluation, &pack, now).ok()?))
        }
        Op::Cancel(s) => {
            let id = pick(sessions, *s)?;
            r.cancel_session(&id, Party::Clinic, now).ok()?;
            Some(format!("cancelled {id}"))
        }
        Op::AssignPack(v) => {
            r.assign_pack("org.example.clinic", u32::from(*v), now).ok()?;
            None
        }
        Op::Acknowledge(n) => {
            let keys: Vec<String> = r.urgent_items().into_iter().map(|i| i.key).collect();
            let key = pick(keys, *n)?;
            r.acknowledge(&key, "Dr. Rivera", now).ok()?;
            Some(format!("acknowledged {key}"))
        }
    }
}

fn visible(r: &CareRecord, fact: &str) -> bool {
    let (kind, id) = fact.rsplit_once(' ').unwrap();
    match kind {
        "session" => r.session(id).is_some(),
        "vitals" => r.vitals().iter().filter(|v| v.id == id).count() == 1,
        "side effect" => r.side_effects().iter().filter(|e| e.id == id).count() == 1,
        "check-in" => r.check_ins().iter().filter(|c| c.id == id).count() == 1,
        "journal" => r.journal_entry(id).is_some() || place::find(r.document(), &format!("j:{id}")).is_some(),
        "deleted" => r.journal_entry(id).is_none(),
        "note" => r.clinician_notes().iter().filter(|n| n.id == id).count() == 1,
        "ended" => r.session(id).is_some_and(|s| s.ended_at.is_some()),
        "readiness" => r.sessions().iter().flat_map(|s| r.readiness_history(&s.id)).filter(|x| x.id == id).count() == 1,
        "cancelled" => r.session(id).is_some_and(|s| s.cancelled.is_some()),
        "acknowledged" => r.urgent_items().iter().any(|i| i.key == id && i.acknowledged.is_some()),
        _ => false,
    }
}

/// Cases for the convergence property: 64 in CI, `KATCORE_CONVERGENCE_CASES`
/// for the long recorded run (RELIABILITY.md).
fn convergence_cases() -> u32 {
    std::env::var("KATCORE_CONVERGENCE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(convergence_cases()))]

    /// Three replicas edit offline and sync pairwise in a random order; after
    /// a final full exchange all are equal and every acknowledged operation
    /// is reflected exactly once.
    #[test]
    fn replicas_converge_under_any_history(
        ops in proptest::collection::vec((0usize..3, op()), 1..40),
        syncs in proptest::collection::vec((0usize..3, 0usize..3), 0..12),
    ) {
        let mut replicas = [replica("phone"), replica("tablet"), replica("clinic")];
        let mut facts = Vec::new();
        let mut sync_iter = syncs.iter();
        for (step, (who, op)) in ops.iter().enumerate() {
            if let Some(fact) = apply(&mut replicas[*who], op, step) {
                facts.push(fact);
            }
            if step % 3 == 2 {
                if let Some(&(a, b)) = sync_iter.next() {
                    let from = replicas[b].clone();
                    replicas[a].merge(&from).unwrap();
                }
            }
        }
        let all = merged(&[&replicas[0], &replicas[1], &replicas[2]]);
        for r in &mut replicas {
            r.merge(&all).unwrap();
        }
        let expected = replicas[0].to_json();
        for r in &replicas[1..] {
            prop_assert_eq!(&r.to_json(), &expected);
        }
        for fact in &facts {
            prop_assert!(visible(&replicas[0], fact), "{} is missing", fact);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(convergence_cases()))]

    /// What the clinic raises change by change (the urgent items of the
    /// entries each change touched) covers every urgent item of the whole
    /// record at the end: alerts are never missed by looking only at what
    /// changed.
    #[test]
    fn urgent_items_of_each_change_cover_the_whole_record(
        ops in proptest::collection::vec((0usize..2, op()), 1..40),
    ) {
        let pack = pack();
        let mut replicas = [replica("phone"), replica("clinic")];
        let mut server = CareRecord::default();
        let mut raised = std::collections::BTreeSet::new();
        for (step, (who, op)) in ops.iter().enumerate() {
            apply(&mut replicas[*who], op, step);
            let before = server.heads();
            server.merge(&replicas[*who]).unwrap();
            let changes = server.document().get_changes(&before);
            let touched = crate::record::touched_entries(server.document(), &changes);
            raised.extend(server.urgent_items_among(&pack, &touched).into_iter().map(|item| item.key));
        }
        for item in server.urgent_items_with(&pack) {
            prop_assert!(raised.contains(&item.key), "{} was never raised", item.key);
        }
    }
}

/// A bundle chunk that makes Automerge 0.12 panic while decoding it (found
/// by the `record_load` fuzz target): every way bytes enter a record answers
/// `Malformed` instead (bundles are refused before Automerge sees them), and
/// a record it was merged into is unchanged.
#[test]
fn a_chunk_that_panics_automerge_is_a_malformed_record() {
    const HEX: &str = concat!(
        "856f4a83f8eadd8103c40101eebb572e3a9d1ab5b94a8b1f165d00000000000000001100000000000000ffff00000321",
        "02231f3401719282eb9e1af7968f7b5b1eaea4fe25e03e916da71759766d02630d0deb52692eeb4a777fc8a84fcf0bb4",
        "719282eb9e1af7968fe612020075f685960bb66a00e60dc611eaeb52692eeb4a777fc8a84fcf0bb4719282eb9e1af796",
        "8f7b5b1eaea4fe25e03e916da71759766d02630d6a0dc611eaeb52694a777fc8a84fcf0bb471eb9e1af7968f7b5b1eae",
        "a4fe25e03e916d657373616765630d",
    );
    let bytes: Vec<u8> = (0..HEX.len()).step_by(2).map(|i| u8::from_str_radix(&HEX[i..i + 2], 16).unwrap()).collect();
    let malformed = |result: Result<CareRecord, RecordError>| matches!(result, Err(RecordError::Malformed { .. }));
    assert!(malformed(CareRecord::load(&bytes, ActorId::random())));
    assert!(malformed(CareRecord::load_parts(Some(&bytes), [], ActorId::random())));
    assert!(malformed(CareRecord::load_parts(None, [&bytes[..]], ActorId::random())));
    let mut record = replica("a");
    record.add_check_in(CheckInInput::Mood(3), utc("2026-05-01T20:00:00Z")).unwrap();
    let heads = record.heads();
    assert!(matches!(record.merge_bytes(&bytes), Err(RecordError::Malformed { .. })));
    assert_eq!(record.heads(), heads);
    record.add_check_in(CheckInInput::Mood(4), utc("2026-05-01T21:00:00Z")).unwrap();
    assert_eq!(record.check_ins().len(), 2);
    // Behind other chunks too: bundles are refused wherever they stand.
    let behind = [record.save(), bytes.clone()].concat();
    assert!(malformed(CareRecord::load(&behind, ActorId::random())));
    let heads = record.heads();
    let mut changes = record.save_after(&[]);
    changes.extend_from_slice(&bytes);
    assert!(matches!(replica("b").merge_bytes(&changes), Err(RecordError::Malformed { .. })));
    assert_eq!(record.heads(), heads);
    // What katcore writes is never refused.
    assert_eq!(CareRecord::load(&record.save(), ActorId::random()).unwrap().heads(), heads);
    let mut copy = replica("c");
    copy.merge_bytes(&record.save_after(&[])).unwrap();
    assert_eq!(copy.heads(), heads);
}

#[test]
fn stored_answers_that_are_not_answer_objects_count_as_unanswered() {
    let pack = pack();
    let mut r = replica("phone");
    let id = r.schedule_session(t("2026-05-01T15:00:00-04:00"), "America/New_York", Party::Client).unwrap();
    r.record_answer(&pack, &id, "monitor_present", &json!(true), utc("2026-05-01T10:00:00Z")).unwrap();
    // What a faulty replica might have written in place of `{"at": …, "value": …}`.
    let obj = r.session_obj(&id).unwrap();
    r.change(|tx| {
        for (item, raw) in
            [("a:safe_setting", "[true]"), ("a:no_driving_plan", "true"), ("a:intention_set", "{\"value\": ")]
        {
            tx.put(&obj, item, raw).map_err(|e| RecordError::Malformed { reason: e.to_string() })?;
        }
        Ok(())
    })
    .unwrap();
    let answers = r.session_answers(&id).unwrap();
    assert_eq!(answers, json!({"monitor_present": true}));
    let (_, _, decoded) = r.checklist_inputs(&pack, &id).unwrap();
    assert_eq!(decoded.len(), 1);
}

#[test]
fn a_session_started_without_a_ready_decision_is_urgent_whoever_wrote_it() {
    let pack = pack();
    let start = t("2026-05-01T15:00:00-04:00");
    let now = utc("2026-05-01T10:00:00Z");
    let started = |r: &CareRecord| -> Vec<UrgentItem> {
        r.urgent_items().into_iter().filter(|i| i.kind == UrgentKind::StartedNotReady).collect()
    };
    // Through the gate: refused (incomplete), nothing started, nothing urgent.
    let mut gated = replica("phone");
    let id = gated.schedule_session(start, "America/New_York", Party::Clinic).unwrap();
    let refused = gated.try_start_session(&pack, &id, "en", start).unwrap();
    assert_eq!(refused.status, ReadinessStatus::Incomplete);
    assert!(gated.session(&id).unwrap().started_at.is_none());
    assert!(started(&gated).is_empty());

    // A writer that skips the gate: started with no decision at all.
    let mut tampered = replica("tampered");
    let id = tampered.schedule_session(start, "America/New_York", Party::Clinic).unwrap();
    tampered.start_session(&id, start).unwrap();
    let items = started(&tampered);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].key, format!("s:{id}/started"));
    assert_eq!(items[0].at, start.with_timezone(&Utc));
    assert_eq!(items[0].session_id.as_deref(), Some(id.as_str()));
    // The same derivation from the entries the change touched, as the clinic does it.
    let touched: BTreeSet<String> = [format!("s:{id}")].into();
    assert!(tampered.urgent_items_among(&pack, &touched).iter().any(|i| i.kind == UrgentKind::StartedNotReady));

    // Started after a `blocked` decision: urgent. After a later `ready` one: not.
    let mut late = replica("late");
    let id = late.schedule_session(start, "America/New_York", Party::Clinic).unwrap();
    let blocked = Evaluation {
        status: ReadinessStatus::Blocked,
        ready_at: None,
        urgent: false,
        items: vec![],
        reminders: vec![],
    };
    late.record_readiness(&id, &blocked, &pack, now).unwrap();
    late.start_session(&id, start).unwrap();
    assert_eq!(started(&late).len(), 1, "the latest decision before the start was blocked");
    let ready = Evaluation { status: ReadinessStatus::Ready, ..blocked.clone() };
    let mut fixed = replica("fixed");
    let id = fixed.schedule_session(start, "America/New_York", Party::Clinic).unwrap();
    fixed.record_readiness(&id, &blocked, &pack, now).unwrap();
    fixed.record_readiness(&id, &ready, &pack, start.with_timezone(&Utc)).unwrap();
    fixed.start_session(&id, start).unwrap();
    assert!(started(&fixed).is_empty(), "ready at the instant of the start");
    // A `ready` decision only after the start does not cover it.
    let mut after = replica("after");
    let id = after.schedule_session(start, "America/New_York", Party::Clinic).unwrap();
    after.start_session(&id, start).unwrap();
    after.record_readiness(&id, &ready, &pack, start.with_timezone(&Utc) + Duration::minutes(1)).unwrap();
    assert_eq!(started(&after).len(), 1);
}

fn check_in(r: &mut CareRecord, kind: InstrumentKind, answers: Vec<u8>, at: &str) -> String {
    r.add_check_in(CheckInInput::Instrument(kind, answers), utc(at)).unwrap().id
}

fn urgent_kind(r: &CareRecord, pack: &Pack, id: &str) -> Option<UrgentKind> {
    let key = format!("c:{id}");
    r.urgent_items_with(pack).into_iter().find(|i| i.key == key).map(|i| i.kind)
}

#[test]
fn severe_totals_raise_an_alert_without_item_nine() {
    let mut r = replica("phone");
    // PHQ-9 of 24 with item 9 at 0 (the case of issue 19), and one of 19.
    let severe = check_in(&mut r, InstrumentKind::Phq9, vec![3, 3, 3, 3, 3, 3, 3, 3, 0], "2026-05-01T10:00:00Z");
    let below = check_in(&mut r, InstrumentKind::Phq9, vec![3, 3, 3, 3, 3, 3, 1, 0, 0], "2026-05-02T10:00:00Z");
    let gad = check_in(&mut r, InstrumentKind::Gad7, vec![3, 3, 3, 3, 3, 0, 0], "2026-05-02T10:00:00Z");
    let gad_below = check_in(&mut r, InstrumentKind::Gad7, vec![3, 3, 3, 3, 2, 0, 0], "2026-05-03T10:00:00Z");
    let pack = pack();
    assert_eq!(urgent_kind(&r, &pack, &severe), Some(UrgentKind::SevereScore));
    assert_eq!(urgent_kind(&r, &pack, &below), None, "19 is not severe, and lower than the baseline");
    assert_eq!(urgent_kind(&r, &pack, &gad), Some(UrgentKind::SevereScore));
    assert_eq!(urgent_kind(&r, &pack, &gad_below), None);
    // A clinic that sets its own threshold gets its own alerts.
    let mut strict = (*pack).clone();
    strict.thresholds.score_alerts.phq9.total_at_least = 19;
    assert_eq!(urgent_kind(&r, &strict, &below), Some(UrgentKind::SevereScore));
    strict.thresholds.score_alerts.phq9.total_at_least = 0;
    assert_eq!(urgent_kind(&r, &strict, &severe), None, "0 turns the rule off");
}

#[test]
fn a_rise_from_the_first_check_in_raises_an_alert() {
    let mut r = replica("phone");
    let baseline = check_in(&mut r, InstrumentKind::Phq9, vec![1, 1, 1, 1, 1, 1, 0, 0, 0], "2026-05-01T10:00:00Z");
    let plus_four = check_in(&mut r, InstrumentKind::Phq9, vec![2, 2, 2, 1, 1, 1, 1, 0, 0], "2026-05-08T10:00:00Z");
    let plus_five = check_in(&mut r, InstrumentKind::Phq9, vec![2, 2, 2, 2, 1, 1, 1, 0, 0], "2026-05-15T10:00:00Z");
    let pack = pack();
    assert_eq!(urgent_kind(&r, &pack, &baseline), None);
    assert_eq!(urgent_kind(&r, &pack, &plus_four), None);
    assert_eq!(urgent_kind(&r, &pack, &plus_five), Some(UrgentKind::ScoreWorsened));
    assert_eq!(r.score_baseline(InstrumentKind::Phq9).map(|b| (b.id, b.total)), Some((baseline.clone(), 6)));
    assert_eq!(r.score_baseline(InstrumentKind::Gad7), None);
    // The clinic derives the same from the changed entries alone.
    let keys: std::collections::BTreeSet<String> = [format!("c:{plus_five}")].into();
    let among = r.urgent_items_among(&pack, &keys);
    assert_eq!(among.iter().map(|i| i.kind).collect::<Vec<_>>(), [UrgentKind::ScoreWorsened]);
    // Item 9 outranks a score: one item per check-in, the crisis.
    let crisis = check_in(&mut r, InstrumentKind::Phq9, vec![3, 3, 3, 3, 3, 3, 3, 3, 1], "2026-05-16T10:00:00Z");
    assert_eq!(urgent_kind(&r, &pack, &crisis), Some(UrgentKind::CrisisCheckIn));
}

#[test]
fn a_writer_cannot_hide_a_severe_score_behind_its_stored_total() {
    // A modified app stores a total of 0 and no urgency for answers that
    // add up to 21 on the GAD-7: the reader re-scores the answers.
    let mut r = replica("hostile");
    let id = "00000000000000000000000000000001";
    let entry = json!({
        "completed_at": "2026-05-01T10:00:00Z",
        "kind": "instrument",
        "instrument": "gad7",
        "answers": [3, 3, 3, 3, 3, 3, 3],
        "total": 0,
        "band": "minimal",
        "urgent": false,
    });
    r.change(|tx| Ok(tx.put(ROOT, format!("c:{id}"), entry.to_string())?)).unwrap();
    assert_eq!(urgent_kind(&r, &pack(), id), Some(UrgentKind::SevereScore));
}

#[test]
fn an_intake_after_the_start_and_a_start_past_the_writable_years_are_refused() {
    let pack = pack();
    let mut r = replica("phone");
    let id = r.schedule_session(t("2026-05-01T15:00:00Z"), "UTC", Party::Client).unwrap();
    let now = utc("2026-05-01T10:00:00Z");
    let err = r.record_answer(&pack, &id, "last_liquid", &json!("2026-05-01T15:00:01Z"), now).unwrap_err();
    match &err {
        RecordError::InvalidInput { field, reason } => {
            assert_eq!(field, "answers.last_liquid");
            assert!(reason.contains("after the session's start"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(r.session_answers(&id).unwrap(), json!({}), "nothing was written");
    r.record_answer(&pack, &id, "last_liquid", &json!("2026-05-01T15:00:00Z"), now).unwrap();

    for start in ["9999-06-01T00:00:00Z", "0000-06-01T00:00:00Z", "9998-12-31T22:00:00-05:00"] {
        let err = r.schedule_session(t(start), "UTC", Party::Client).unwrap_err();
        assert!(matches!(&err, RecordError::InvalidInput { field, .. } if field == "start"), "{start}: {err}");
    }
    r.schedule_session(t("9998-12-31T23:00:00Z"), "UTC", Party::Client).unwrap();
    let err = r.move_session(&id, t("9999-01-01T00:00:00Z"), Party::Client).unwrap_err();
    assert!(matches!(&err, RecordError::InvalidInput { field, .. } if field == "start"), "{err}");
}
