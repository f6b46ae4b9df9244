//! Every answer kept: the history, the current answer, what a decision
//! names, what a format-1 app's writes look like, and who may write what.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::checklist::ReadinessStatus;
use crate::pack::Pack;
use crate::record::{check_changes, place, CareRecord, Party, Rule, UrgentKind, Writer};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn bp(systolic: u16, diastolic: u16) -> Value {
    json!({"systolic": systolic, "diastolic": diastolic})
}

/// A phone's record with one session of the client's, a day ahead.
fn phone() -> (CareRecord, String) {
    let mut r = CareRecord::new(ActorId::from(&b"phone"[..]));
    let session = r.schedule_session(at("2026-05-02T15:00:00Z").fixed_offset(), "UTC", Party::Client).unwrap();
    (r, session)
}

/// What a format-1 app writes for an answer: only the `a:<item>` field.
fn format_one_answer(base: &CareRecord, session: &str, item: &str, value: &Value, when: DateTime<Utc>) -> Vec<Change> {
    let mut doc = AutoCommit::load(&base.save()).unwrap().with_actor(ActorId::from(&b"old-app"[..]));
    let obj = place::find(doc.document(), &format!("s:{session}")).unwrap().1;
    let before = doc.get_heads();
    doc.put(&obj, format!("a:{item}"), json!({"value": value, "at": when}).to_string()).unwrap();
    doc.commit();
    doc.get_changes(&before)
}

/// The changes `edit` makes with raw Automerge calls on a device replica.
fn raw(base: &CareRecord, edit: impl FnOnce(&mut AutoCommit, &automerge::ObjId)) -> Vec<Change> {
    let mut doc = AutoCommit::load(&base.save()).unwrap().with_actor(ActorId::from(&b"forger"[..]));
    let before = doc.get_heads();
    let session = base.sessions()[0].id.clone();
    let obj = place::find(doc.document(), &format!("s:{session}")).unwrap().1;
    edit(&mut doc, &obj);
    doc.commit();
    doc.get_changes(&before)
}

#[test]
fn a_replaced_reading_is_kept_and_the_latest_is_current() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    r.record_answer(&pack, &session, "blood_pressure", &bp(182, 114), at("2026-05-02T10:00:00Z")).unwrap();
    r.record_answer(&pack, &session, "blood_pressure", &bp(128, 82), at("2026-05-02T10:20:00Z")).unwrap();
    r.record_answer(&pack, &session, "monitor_present", &json!(true), at("2026-05-02T10:05:00Z")).unwrap();
    r.record_answer(&pack, &session, "monitor_present", &Value::Null, at("2026-05-02T10:06:00Z")).unwrap();

    let history = r.answer_history(&session);
    let values: Vec<(&str, &Value)> = history.iter().map(|a| (a.item_id.as_str(), &a.value)).collect();
    assert_eq!(
        values,
        [
            ("blood_pressure", &bp(182, 114)),
            ("monitor_present", &json!(true)),
            ("monitor_present", &Value::Null),
            ("blood_pressure", &bp(128, 82)),
        ],
        "every answer, oldest first, each once"
    );
    assert!(history.iter().all(|a| a.id.as_deref().is_some_and(place::is_v2_id)));
    assert_eq!(r.session_answers(&session).unwrap(), json!({"blood_pressure": bp(128, 82)}));
    let view = r.view(&pack);
    assert_eq!(view.sessions[0].answer_history, history);
}

#[test]
fn a_decision_names_the_answers_it_was_made_from() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    r.record_answer(&pack, &session, "blood_pressure", &bp(182, 114), at("2026-05-02T10:00:00Z")).unwrap();
    let evaluation = r.try_start_session(&pack, &session, "en", at("2026-05-02T10:01:00Z").fixed_offset()).unwrap();
    assert_eq!(evaluation.status, ReadinessStatus::Blocked);
    r.record_answer(&pack, &session, "blood_pressure", &bp(128, 82), at("2026-05-02T10:20:00Z")).unwrap();

    let first = r.answer_history(&session)[0].clone();
    let decision = &r.readiness_history(&session)[0];
    assert_eq!(decision.answers, [first.id.unwrap()], "the urgent reading, not the later one");
    // The decision's alert stays, and the reading it was made from is still in the record.
    let urgent = r.urgent_items();
    assert_eq!(urgent.len(), 1, "{urgent:?}");
    assert_eq!(
        (urgent[0].key.as_str(), urgent[0].kind),
        (format!("r:{}", decision.id).as_str(), UrgentKind::UrgentBloodPressure)
    );
}

#[test]
fn an_urgent_reading_answered_again_stays_urgent() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    let first = at("2026-05-02T10:00:00Z");
    r.record_answer(&pack, &session, "blood_pressure", &bp(182, 114), first).unwrap();
    r.record_answer(&pack, &session, "blood_pressure", &bp(128, 82), first + Duration::minutes(20)).unwrap();
    // No decision covered it: the reading is still an urgent item, under the key format 1 gave it.
    let keys: Vec<String> = r.urgent_items().into_iter().map(|item| item.key).collect();
    assert_eq!(keys, [format!("s:{session}/a:blood_pressure@{}", first.to_rfc3339())]);
}

#[test]
fn a_format_one_apps_answers_are_read_and_its_writes_accepted() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    r.record_answer(&pack, &session, "blood_pressure", &bp(130, 84), at("2026-05-02T09:00:00Z")).unwrap();
    let old = format_one_answer(&r, &session, "blood_pressure", &bp(126, 80), at("2026-05-02T09:30:00Z"));
    check_changes(r.document(), &old, Writer::Device).unwrap();
    r.apply_changes(old).unwrap();

    let history = r.answer_history(&session);
    assert_eq!(history.len(), 2, "the v2 answer, and the format-1 one that overwrote its `a:` field: {history:?}");
    assert_eq!((history[0].value.clone(), history[0].id.is_some()), (bp(130, 84), true));
    assert_eq!((history[1].value.clone(), history[1].id.clone()), (bp(126, 80), None));
    assert_eq!(r.session_answers(&session).unwrap()["blood_pressure"], bp(126, 80), "the latest is current");
    // A decision made now names no entry for an item whose current answer has none.
    let evaluation = r.evaluate_session(&pack, &session, "en").unwrap();
    r.record_readiness(&session, &evaluation, &pack, at("2026-05-02T09:40:00Z")).unwrap();
    assert!(r.readiness_history(&session)[0].answers.is_empty());
}

#[test]
fn the_latest_wins_whichever_form_it_was_written_in() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    // A format-1 app answered later than this device, concurrently.
    let old = format_one_answer(&r, &session, "blood_pressure", &bp(150, 90), at("2026-05-02T11:00:00Z"));
    r.record_answer(&pack, &session, "blood_pressure", &bp(120, 80), at("2026-05-02T10:00:00Z")).unwrap();
    r.apply_changes(old).unwrap();
    assert_eq!(r.session_answers(&session).unwrap()["blood_pressure"], bp(150, 90));
    assert_eq!(r.answer_history(&session).len(), 2);
}

#[test]
fn answer_entries_are_the_devices_and_never_change() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    r.record_answer(&pack, &session, "blood_pressure", &bp(182, 114), at("2026-05-02T10:00:00Z")).unwrap();
    let id = r.answer_history(&session)[0].id.clone().unwrap();
    let field = format!("h:{id}");
    let path = format!("s:{session}/{field}");
    let entry =
        |item: &str, value: Value| json!({"item": item, "value": value, "at": at("2026-05-02T10:30:00Z")}).to_string();
    let fresh = format!("h:{}", "ab".repeat(16));

    // A new entry with a fresh id passes; the device's own typed writes pass (tested in authority/tests.rs).
    let good =
        raw(&r, |doc, obj| doc.put(obj, fresh.as_str(), entry("blood_pressure", bp(120, 80))).map(drop).unwrap());
    check_changes(r.document(), &good, Writer::Device).unwrap();

    let refusal = |changes: Vec<Change>, writer| {
        let violation = check_changes(r.document(), &changes, writer).expect_err("refused");
        (violation.key, violation.rule)
    };
    // Rewriting a kept reading (to hide it) is refused...
    let rewrite =
        raw(&r, |doc, obj| doc.put(obj, field.as_str(), entry("blood_pressure", bp(120, 80))).map(drop).unwrap());
    assert_eq!(refusal(rewrite, Writer::Device), (path.clone(), Rule::Immutable));
    // ...and so is deleting it.
    let delete = raw(&r, |doc, obj| doc.delete(obj, field.as_str()).unwrap());
    assert_eq!(refusal(delete, Writer::Device), (path, Rule::DeleteOp));
    // Only the client's devices answer the checklist.
    let by_clinic =
        raw(&r, |doc, obj| doc.put(obj, fresh.as_str(), entry("blood_pressure", bp(120, 80))).map(drop).unwrap());
    assert_eq!(refusal(by_clinic, Writer::Clinic).1, Rule::NotPermitted);
    // The id is a fresh 32-hex id, and the value names its item and time.
    let bad_id = raw(&r, |doc, obj| doc.put(obj, "h:latest", entry("blood_pressure", bp(120, 80))).map(drop).unwrap());
    assert_eq!(refusal(bad_id, Writer::Device), (format!("s:{session}/h:latest"), Rule::WrongShape));
    let no_item = raw(&r, |doc, obj| {
        doc.put(obj, fresh.as_str(), json!({"value": true, "at": at("2026-05-02T10:30:00Z")}).to_string())
            .map(drop)
            .unwrap()
    });
    assert_eq!(refusal(no_item, Writer::Device).1, Rule::InvalidValue);
    // Two entries with one id in one exchange: the second is a rewrite.
    let twice = raw(&r, |doc, obj| {
        doc.put(obj, fresh.as_str(), entry("blood_pressure", bp(120, 80))).unwrap();
        doc.commit();
        doc.put(obj, fresh.as_str(), entry("blood_pressure", bp(190, 120))).unwrap();
    });
    assert_eq!(refusal(twice, Writer::Device).1, Rule::Immutable);
}

#[test]
fn the_last_answer_written_is_current_even_when_the_clock_went_back() {
    let pack = Pack::default_pack();
    let (mut r, session) = phone();
    let now = at("2026-05-02T10:00:00Z");
    r.record_answer(&pack, &session, "monitor_present", &json!(true), now).unwrap();
    r.record_answer(&pack, &session, "monitor_present", &json!(false), now).unwrap();
    r.record_answer(&pack, &session, "blood_pressure", &bp(150, 95), now).unwrap();
    r.record_answer(&pack, &session, "blood_pressure", &bp(120, 80), now - Duration::hours(1)).unwrap();
    let current = r.session_answers(&session).unwrap();
    assert_eq!(current, json!({"monitor_present": false, "blood_pressure": bp(120, 80)}));
    assert_eq!(r.answer_history(&session).len(), 4);
    let ids = &r.answer_history(&session);
    let evaluation = r.evaluate_session(&pack, &session, "en").unwrap();
    let decision = r.record_readiness(&session, &evaluation, &pack, now).unwrap();
    let named = &r.readiness_history(&session).into_iter().find(|d| d.id == decision).unwrap().answers;
    let id_of = |item: &str, value: &Value| {
        ids.iter().find(|a| a.item_id == item && &a.value == value).and_then(|a| a.id.clone()).unwrap()
    };
    // By item id: blood_pressure, then monitor_present.
    assert_eq!(named, &[id_of("blood_pressure", &bp(120, 80)), id_of("monitor_present", &json!(false))]);
}
