//! The hostile-replica property: a device sends random well-formed
//! Automerge changes against a record holding clinic content, mixed with
//! honest writes. Whatever it sends, after the receiver's check:
//! - the clinic's content is never altered (notes, acknowledgements, the pack
//!   assignment, the clinic session's zone, scheduler and cancellation; its
//!   start only ever postponed) and no entry disappears;
//! - every value that is urgent under the pack, read here independently from
//!   the stored JSON, has an open urgent item (a device cannot acknowledge);
//! - every honest write is still accepted.
//!
//! Cases: `KATCORE_HOSTILE_CASES` (default 64); the counts of what was tried
//! are printed with `--nocapture` (RELIABILITY.md, "Hostile replica").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue, ROOT};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::{fixture, now, raw, t};
use super::*;
use crate::checklist::BloodPressureReading;
use crate::pack::Pack;
use crate::record::{CareRecord, CheckInInput, JournalLinks, Severity};

fn hostile_cases() -> u32 {
    std::env::var("KATCORE_HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// One raw operation a hostile device may try.
#[derive(Clone, Debug)]
enum Raw {
    /// Put a string at a root key.
    PutRoot(Target, Payload),
    /// Put a non-string scalar at a root key.
    PutNumber(Target),
    /// Delete a root key.
    Delete(Target),
    /// Create an object at a root key.
    Make(Target, bool),
    /// Put a string at the entry's place in its bucket (format v2),
    /// creating the bucket when the record lacks it.
    PutInBucket(Target, Payload),
    /// Delete the entry from its bucket.
    DeleteInBucket(Target),
    /// Replace the entry's bucket with a new, empty map (hiding every entry in it).
    ReplaceBucket(Target),
    /// Put a string in a field of the clinic's session.
    SessionField(&'static str, Payload),
    /// Delete a field of the clinic's session.
    SessionDelete(&'static str),
}

/// Which root key.
#[derive(Clone, Debug)]
enum Target {
    Note,
    Ack,
    PackAssignment,
    ClinicSession,
    ExistingVitals,
    New(&'static str, u16),
}

/// What to write.
#[derive(Clone, Debug)]
enum Payload {
    Vitals(u16, u16, bool),
    /// A PHQ-9 (item 9, the answer to items 1–8, urgent flag) or, with
    /// `None` for item 9, a GAD-7 whose every item has that answer.
    CheckIn(Option<u8>, u8, bool),
    SideEffect(Severity, bool),
    Note,
    Ack,
    Assignment,
    Answer(u16, u16),
    /// A format-2 answer entry (`h:<id>`) to the blood-pressure item.
    AnswerEntry(u16, u16),
    Instant(i64),
    Cancellation,
    Party(bool),
    Garbage,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Note),
        Just(Target::Ack),
        Just(Target::PackAssignment),
        Just(Target::ClinicSession),
        Just(Target::ExistingVitals),
        (prop::sample::select(vec!["v:", "e:", "c:", "r:", "n:", "k:", "s:", "j:", "x:"]), any::<u16>())
            .prop_map(|(prefix, n)| Target::New(prefix, n)),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (90u16..230, 50u16..150, any::<bool>()).prop_map(|(s, d, u)| Payload::Vitals(s, d, u)),
        (prop::option::of(0u8..4), 0u8..4, any::<bool>()).prop_map(|(i, rest, u)| Payload::CheckIn(i, rest, u)),
        (prop::sample::select(vec![Severity::Mild, Severity::Moderate, Severity::Severe]), any::<bool>())
            .prop_map(|(s, u)| Payload::SideEffect(s, u)),
        Just(Payload::Note),
        Just(Payload::Ack),
        Just(Payload::Assignment),
        (90u16..230, 50u16..150).prop_map(|(s, d)| Payload::Answer(s, d)),
        (90u16..230, 50u16..150).prop_map(|(s, d)| Payload::AnswerEntry(s, d)),
        (-48i64..48).prop_map(Payload::Instant),
        Just(Payload::Cancellation),
        any::<bool>().prop_map(Payload::Party),
        Just(Payload::Garbage),
    ]
}

fn raw_op() -> impl Strategy<Value = Raw> {
    let field = prop::sample::select(vec![
        "start",
        "tz",
        "by",
        "cancelled",
        "started_at",
        "a:blood_pressure",
        ANSWER_FIELD,
        "h:latest",
        "extra",
    ]);
    prop_oneof![
        (target(), payload()).prop_map(|(t, p)| Raw::PutRoot(t, p)),
        target().prop_map(Raw::PutNumber),
        target().prop_map(Raw::Delete),
        (target(), any::<bool>()).prop_map(|(t, text)| Raw::Make(t, text)),
        (target(), payload()).prop_map(|(t, p)| Raw::PutInBucket(t, p)),
        target().prop_map(Raw::DeleteInBucket),
        target().prop_map(Raw::ReplaceBucket),
        (field.clone(), payload()).prop_map(|(f, p)| Raw::SessionField(f, p)),
        field.prop_map(Raw::SessionDelete),
    ]
}

/// One step: a hostile change of a few raw ops, or an honest write.
#[derive(Clone, Debug)]
enum Step {
    Hostile(Vec<Raw>),
    Honest(u8, u16, u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec(raw_op(), 1..4).prop_map(Step::Hostile),
        1 => (0u8..5, 90u16..230, 50u16..150).prop_map(|(k, s, d)| Step::Honest(k, s, d)),
    ]
}

impl Payload {
    fn text(&self, session: &str) -> String {
        match self {
            Payload::Vitals(s, d, urgent) => json!({"taken_at": now(), "reading": {"systolic": s, "diastolic": d},
                "session_id": null, "urgent": urgent})
            .to_string(),
            Payload::CheckIn(item9, level, urgent) => {
                use crate::instruments::{score, InstrumentKind};
                let (kind, answers) = match item9 {
                    Some(item9) => (InstrumentKind::Phq9, [vec![*level; 8], vec![*item9]].concat()),
                    None => (InstrumentKind::Gad7, vec![*level; 7]),
                };
                // The total and band must match (the write rules check them); the flag is the writer's word.
                let scored = score(kind, &answers).expect("answers 0-3 of the right count");
                json!({"completed_at": now(), "kind": "instrument", "instrument": kind.as_str(), "answers": answers,
                    "total": scored.total, "band": scored.band, "urgent": urgent})
                .to_string()
            }
            Payload::SideEffect(severity, urgent) => json!({"reported_at": now(), "effect_id": "dizziness",
                "severity": severity, "session_id": session, "urgent": urgent})
            .to_string(),
            Payload::Note => json!({"written_at": now(), "author": "Dr. Rivera", "text": "forged"}).to_string(),
            Payload::Ack => json!({"at": now(), "by": "Dr. Rivera"}).to_string(),
            Payload::Assignment => json!({"pack_id": "org.evil", "version": 9, "assigned_at": now()}).to_string(),
            Payload::Answer(s, d) => json!({"value": {"systolic": s, "diastolic": d}, "at": now()}).to_string(),
            Payload::AnswerEntry(s, d) => {
                json!({"item": "blood_pressure", "value": {"systolic": s, "diastolic": d}, "at": now()}).to_string()
            }
            Payload::Instant(hours) => (t("2026-05-03T15:00:00-04:00") + chrono::Duration::hours(*hours)).to_rfc3339(),
            Payload::Cancellation => json!({"at": now(), "by": "client"}).to_string(),
            Payload::Party(clinic) => (if *clinic { "clinic" } else { "client" }).to_owned(),
            Payload::Garbage => "{not json".to_owned(),
        }
    }
}

/// What the clinic wrote, as a device must never change it.
fn clinic_content(record: &CareRecord, session: &str) -> Value {
    let s = record.session(session);
    let acks: Vec<(String, Value)> = record
        .document()
        .map_range(ROOT, "k:".to_owned().."k;".to_owned())
        .map(|item| (item.key.to_string(), json!(format!("{:?}", item.value))))
        .collect();
    json!({
        "notes": record.clinician_notes(),
        "assigned_pack": record.assigned_pack(),
        "acks": acks,
        "tz": s.as_ref().map(|s| s.time_zone.clone()),
        "by": s.as_ref().map(|s| s.scheduled_by),
        "cancelled": s.as_ref().map(|s| s.cancelled.clone()),
    })
}

/// Every entry of the record: its logical key and, for a string, the
/// string — v1's root keys and every bucket's entries, read with Automerge
/// alone.
fn stored_entries(record: &CareRecord) -> Vec<(String, Option<String>)> {
    let doc = record.document();
    let mut entries = Vec::new();
    let string = |value: &automerge::ValueRef<'_>| match value {
        automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(text)) => Some(text.to_string()),
        _ => None,
    };
    for item in doc.map_range(ROOT, ..) {
        let Some((prefix, _)) = crate::record::place::parse_bucket_key(&item.key) else {
            entries.push((item.key.to_string(), string(&item.value)));
            continue;
        };
        for (_, bucket) in doc.get_all(ROOT, item.key.as_ref()).unwrap() {
            for entry in doc.map_range(&bucket, ..) {
                entries.push((format!("{prefix}{}", entry.key), string(&entry.value)));
            }
        }
    }
    entries
}

/// Logical keys of every urgent value, read from the stored JSON without
/// the record's own urgency code, with the pack's limits.
fn urgent_values(record: &CareRecord, pack: &Pack) -> Vec<String> {
    let limit = pack.thresholds.bp_urgent;
    let mut keys = Vec::new();
    for (key, text) in stored_entries(record) {
        let Some(text) = text else { continue };
        let Ok(json) = serde_json::from_str::<Value>(&text) else { continue };
        let urgent = match &key[..2] {
            "v:" => {
                json["reading"]["systolic"].as_u64().is_some_and(|s| s >= u64::from(limit.systolic))
                    || json["reading"]["diastolic"].as_u64().is_some_and(|d| d >= u64::from(limit.diastolic))
            }
            "c:" => {
                let answers: Vec<u64> = json["answers"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default();
                let total: u64 = answers.iter().sum();
                let alerts = &pack.thresholds.score_alerts;
                match json["instrument"].as_str() {
                    Some("phq9") => {
                        answers.get(8).is_some_and(|a| *a > 0) || total >= u64::from(alerts.phq9.total_at_least)
                    }
                    Some("gad7") => total >= u64::from(alerts.gad7.total_at_least),
                    _ => false,
                }
            }
            "e:" => json["severity"] == "severe",
            _ => false,
        };
        if urgent && record.unreadable_entries().iter().all(|e| e.key != key) {
            keys.push(key);
        }
    }
    keys
}

/// The bucket map of logical key `key` in `tx` (created when missing) and
/// the entry's key in it (its id; a malformed key goes to bucket `00`).
fn bucket_of(
    tx: &mut automerge::transaction::Transaction<'_>,
    key: &str,
) -> Result<(automerge::ObjId, String), automerge::AutomergeError> {
    let (prefix, id) = key.split_at_checked(2).unwrap_or(("x:", key));
    let bucket = format!("{}/{}", &prefix[..1], id.get(..2).unwrap_or("00"));
    let obj = match tx.get(ROOT, bucket.as_str())? {
        Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
        _ => tx.put_object(ROOT, bucket, ObjType::Map)?,
    };
    Ok((obj, id.to_owned()))
}

/// The answer entry field hostile steps write (a valid id, so a second
/// write of it is a rewrite).
const ANSWER_FIELD: &str = "h:0123456789abcdef0123456789abcdef";

/// Every answer entry of the session (`h:` fields) with each of its values.
fn answer_entries(record: &CareRecord, session: &automerge::ObjId) -> Vec<(String, String)> {
    let doc = record.document();
    doc.map_range(session, "h:".to_owned().."h;".to_owned())
        .flat_map(|item| {
            let key = item.key.to_string();
            doc.get_all(session, key.as_str())
                .unwrap()
                .into_iter()
                .map(move |(value, _)| (key.clone(), value.to_string()))
        })
        .collect()
}

static TRIED: AtomicUsize = AtomicUsize::new(0);
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static HONEST: AtomicUsize = AtomicUsize::new(0);
static REFUSED: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(hostile_cases()))]

    #[test]
    fn a_hostile_device_cannot_alter_clinic_content_or_hide_an_urgent_value(
        steps in prop::collection::vec(step(), 1..24),
    ) {
        let pack = Pack::default_pack();
        let f = fixture();
        let mut server = f.clinic.clone();
        let vitals = server.add_vitals(&pack, BloodPressureReading { systolic: 120, diastolic: 80 }, now(), None).unwrap();
        let keys = |target: &Target| match target {
            Target::Note => format!("n:{}", f.note),
            Target::Ack => format!("k:{}", f.crisis_key),
            Target::PackAssignment => "assigned_pack".to_owned(),
            Target::ClinicSession => format!("s:{}", f.session),
            Target::ExistingVitals => format!("v:{vitals}"),
            Target::New(prefix, n) => format!("{prefix}{n:032x}"),
        };
        let original = clinic_content(&server, &f.session);
        let original_start = server.session(&f.session).unwrap().scheduled_start;
        let session_obj = crate::record::place::find(server.document(), &format!("s:{}", f.session)).unwrap().1;
        let mut device = CareRecord::new(automerge::ActorId::from(&b"honest-tablet"[..]));
        for step in steps {
            let before: Vec<String> = stored_entries(&server).into_iter().map(|(key, _)| key).collect();
            let answers_before = answer_entries(&server, &session_obj);
            match step {
                Step::Hostile(ops) => {
                    let changes = raw(&server, "thief", |tx| {
                        for op in &ops {
                            match op {
                                Raw::PutRoot(target, payload) => tx.put(ROOT, keys(target), payload.text(&f.session))?,
                                Raw::PutNumber(target) => tx.put(ROOT, keys(target), ScalarValue::Uint(7))?,
                                Raw::Delete(target) => tx.delete(ROOT, keys(target))?,
                                Raw::Make(target, text) => {
                                    let kind = if *text { ObjType::Text } else { ObjType::Map };
                                    tx.put_object(ROOT, keys(target), kind)?;
                                }
                                Raw::PutInBucket(target, payload) => {
                                    let (bucket, id) = bucket_of(tx, &keys(target))?;
                                    tx.put(&bucket, id, payload.text(&f.session))?;
                                }
                                Raw::DeleteInBucket(target) => {
                                    let (bucket, id) = bucket_of(tx, &keys(target))?;
                                    tx.delete(&bucket, id)?;
                                }
                                Raw::ReplaceBucket(target) => {
                                    let key = keys(target);
                                    let bucket = format!("{}/{}", &key[..1], key.get(2..4).unwrap_or("00"));
                                    tx.put_object(ROOT, bucket, ObjType::Map)?;
                                }
                                Raw::SessionField(field, payload) => tx.put(&session_obj, *field, payload.text(&f.session))?,
                                Raw::SessionDelete(field) => tx.delete(&session_obj, *field)?,
                            }
                        }
                        Ok(())
                    });
                    TRIED.fetch_add(1, Ordering::Relaxed);
                    match check_changes(server.document(), &changes, Writer::Device) {
                        Ok(()) => {
                            ACCEPTED.fetch_add(1, Ordering::Relaxed);
                            server.apply_changes(changes).unwrap();
                        }
                        Err(violation) => {
                            *REFUSED.lock().unwrap().entry(violation.rule.code()).or_default() += 1;
                        }
                    }
                }
                Step::Honest(kind, systolic, diastolic) => {
                    device.merge(&server).unwrap();
                    let start = device.heads();
                    let reading = BloodPressureReading { systolic, diastolic: diastolic.min(systolic - 1) };
                    match kind {
                        0 => { device.add_vitals(&pack, reading, now(), None).unwrap(); }
                        1 => {
                            let answer = json!({"systolic": reading.systolic, "diastolic": reading.diastolic});
                            device.record_answer(&pack, &f.session, "blood_pressure", &answer, now()).unwrap();
                        }
                        2 => { device.add_check_in(CheckInInput::Instrument(crate::instruments::InstrumentKind::Phq9,
                            vec![0, 0, 0, 0, 0, 0, 0, 0, (systolic % 4) as u8]), now()).unwrap(); }
                        3 => { device.report_side_effect(&pack, "dizziness", Severity::Severe, now(), None).unwrap(); }
                        _ => { device.write_journal_entry("A quiet evening.", &JournalLinks::default(), now()).unwrap(); }
                    }
                    let changes = device.document().get_changes(&start);
                    HONEST.fetch_add(1, Ordering::Relaxed);
                    prop_assert_eq!(check_changes(server.document(), &changes, Writer::Device), Ok(()));
                    server.apply_changes(changes).unwrap();
                }
            }
            // Clinic content unchanged; the clinic's start only ever postponed.
            prop_assert_eq!(clinic_content(&server, &f.session), original.clone());
            let session = server.session(&f.session).unwrap();
            for start in std::iter::once(session.scheduled_start).chain(session.conflicting_starts) {
                prop_assert!(start >= original_start);
            }
            // Nothing disappears.
            let after: Vec<String> = stored_entries(&server).into_iter().map(|(key, _)| key).collect();
            prop_assert!(before.iter().all(|key| after.contains(key)));
            // Every urgent value has an urgent item, open unless the clinic
            // acknowledged it (only the fixture's crisis check-in).
            let open: Vec<String> = server.urgent_items_with(&pack).into_iter()
                .filter(|item| item.acknowledged.is_none() || item.key == f.crisis_key).map(|item| item.key).collect();
            for key in urgent_values(&server, &pack) {
                prop_assert!(open.contains(&key), "{} is urgent without an open item", key);
            }
            let limit = pack.thresholds.bp_urgent;
            // An answer entry, once accepted, is never changed or removed.
            let answers_after = answer_entries(&server, &session_obj);
            prop_assert!(answers_before.iter().all(|entry| answers_after.contains(entry)));
            let mut answers = server.document().get_all(&session_obj, "a:blood_pressure").unwrap();
            answers.extend(server.document().get_all(&session_obj, ANSWER_FIELD).unwrap());
            let urgent_answer = answers.iter().any(|(value, _)| {
                let json: Value = value.as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
                json["value"]["systolic"].as_u64().is_some_and(|s| s >= u64::from(limit.systolic))
                    || json["value"]["diastolic"].as_u64().is_some_and(|d| d >= u64::from(limit.diastolic))
            });
            if urgent_answer {
                prop_assert!(server.urgent_items_with(&pack).iter().any(|item| item.acknowledged.is_none()
                    && item.session_id.as_deref() == Some(f.session.as_str())));
            }
        }
    }
}

/// Prints what the property tried (run after it, with `--nocapture`).
#[test]
fn zz_hostile_replica_counts() {
    // Only meaningful after the property test in the same process; tests of
    // one binary run in one process under `cargo test`, each in its own under
    // nextest, where this prints zeros.
    let refused = REFUSED.lock().unwrap().clone();
    eprintln!(
        "[hostile] changes tried {} accepted {} refused {:?}; honest writes {} (all accepted)",
        TRIED.load(Ordering::Relaxed),
        ACCEPTED.load(Ordering::Relaxed),
        refused,
        HONEST.load(Ordering::Relaxed)
    );
}
