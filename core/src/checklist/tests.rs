//! Rule boundaries, precedence and the "never a wrong ready" property.

use chrono::{DateTime, Duration, FixedOffset};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::pack::Pack;

const START: &str = "2026-05-01T15:00:00-04:00";

fn start() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(START).unwrap()
}

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// Answers under which the default pack's checklist is `ready`.
fn ready_answers() -> Value {
    json!({
        "last_solid_food": "2026-05-01T11:00:00-04:00",
        "last_liquid": "2026-05-01T13:30:00-04:00",
        "last_benzodiazepine": "none",
        "last_stimulant": "none",
        "last_alcohol": "2026-04-28T20:00:00-04:00",
        "blood_pressure": {"systolic": 128, "diastolic": 82},
        "monitor_present": true,
        "safe_setting": true,
        "no_driving_plan": true,
        "antihypertensive_taken": "not_prescribed",
        "intention_set": "Be kinder to myself",
        "screen_ketamine_allergy": false,
        "screen_psychosis_or_mania": false,
        "screen_uncontrolled_bp": false,
        "screen_heart_condition": false,
        "screen_breathing_problem": false,
        "screen_eye_or_brain_pressure": false,
        "screen_hyperthyroidism": false,
        "screen_pregnancy": false,
        "screen_new_serious_illness": false,
    })
}

fn eval_json(answers: &Value) -> Evaluation {
    let pack = Pack::default_pack();
    evaluate(&pack, start(), &Answers::from_json(&pack, answers).unwrap(), "en")
}

fn with(changes: Value) -> Evaluation {
    let mut answers = ready_answers();
    for (k, v) in changes.as_object().unwrap() {
        answers[k] = v.clone();
    }
    eval_json(&answers)
}

fn item<'a>(e: &'a Evaluation, id: &str) -> &'a ItemResult {
    e.items.iter().find(|i| i.id == id).unwrap()
}

fn parse_err(changes: Value) -> ChecklistError {
    let pack = Pack::default_pack();
    let mut answers = ready_answers();
    for (k, v) in changes.as_object().unwrap() {
        answers[k] = v.clone();
    }
    Answers::from_json(&pack, &answers).unwrap_err()
}

#[test]
fn all_good_answers_are_ready() {
    let e = eval_json(&ready_answers());
    assert_eq!(e.status, ReadinessStatus::Ready);
    assert_eq!((e.ready_at, e.urgent), (None, false));
    let pack = Pack::default_pack();
    assert_eq!(e.items.len(), pack.checklist.len() + pack.screening.len());
    assert!(e.items.iter().all(|i| i.state == ItemState::Pass), "{:#?}", e.items);
}

#[test]
fn solid_food_exactly_three_hours_before_passes() {
    let e = with(json!({"last_solid_food": "2026-05-01T12:00:00-04:00"}));
    assert_eq!(item(&e, "last_solid_food").state, ItemState::Pass);
    assert_eq!(e.status, ReadinessStatus::Ready);
}

#[test]
fn solid_food_two_hours_fifty_nine_minutes_before_waits_one_minute() {
    let e = with(json!({"last_solid_food": "2026-05-01T12:01:00-04:00"}));
    let food = item(&e, "last_solid_food");
    assert_eq!(food.state, ItemState::Wait);
    assert_eq!(food.until, Some(at("2026-05-01T15:01:00-04:00")));
    assert_eq!(e.status, ReadinessStatus::Wait);
    assert_eq!(e.ready_at, Some(at("2026-05-01T15:01:00-04:00")));
    assert!(food.message.contains("15:01"), "{}", food.message);
}

#[test]
fn ready_at_is_the_latest_window_and_uses_the_session_offset() {
    // Liquid given in UTC; the result is shown in the session's offset.
    let e = with(json!({
        "last_solid_food": "2026-05-01T13:00:00-04:00",
        "last_liquid": "2026-05-01T18:45:00Z",
    }));
    assert_eq!(item(&e, "last_solid_food").until, Some(at("2026-05-01T16:00:00-04:00")));
    assert_eq!(item(&e, "last_liquid").until.unwrap().to_rfc3339(), "2026-05-01T15:45:00-04:00");
    assert_eq!(e.ready_at.unwrap().to_rfc3339(), "2026-05-01T16:00:00-04:00");
}

#[test]
fn none_means_not_taken_and_passes() {
    let e = with(json!({"last_solid_food": "none", "last_liquid": "none", "last_alcohol": "none"}));
    assert_eq!(e.status, ReadinessStatus::Ready);
    assert!(item(&e, "last_solid_food").message.contains("3 h"));
}

#[test]
fn twenty_four_hour_windows_hold_at_the_boundary() {
    for id in ["last_benzodiazepine", "last_stimulant", "last_alcohol"] {
        let e = with(json!({ id: "2026-04-30T15:00:00-04:00" }));
        assert_eq!(item(&e, id).state, ItemState::Pass, "{id}");
        let e = with(json!({ id: "2026-04-30T15:01:00-04:00" }));
        assert_eq!(item(&e, id).state, ItemState::Wait, "{id}");
    }
}

#[test]
fn windows_are_measured_in_real_time_on_a_daylight_saving_day() {
    // US clocks spring forward at 02:00 on 8 March 2026. A drink at 10:30 EST
    // on 7 March is 22.5 real hours before a 10:00 EDT start the next day,
    // although the wall clocks read 23.5 hours apart.
    let pack = Pack::default_pack();
    let start = at("2026-03-08T10:00:00-04:00");
    let mut answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    for (id, value) in [
        ("last_solid_food", "2026-03-08T06:00:00-04:00"),
        ("last_liquid", "2026-03-08T08:00:00-04:00"),
        ("last_alcohol", "2026-03-07T10:30:00-05:00"),
    ] {
        answers.set(&pack, id, &json!(value)).unwrap();
    }
    let e = evaluate(&pack, start, &answers, "en");
    let alcohol = item(&e, "last_alcohol");
    assert_eq!(alcohol.state, ItemState::Wait);
    assert_eq!(alcohol.until.unwrap().to_rfc3339(), "2026-03-08T11:30:00-04:00");
    assert_eq!(e.status, ReadinessStatus::Wait);

    // And the reminder for a 24 h window lands on the previous day's wall
    // time minus the lost hour.
    let reminder = e.reminders.iter().find(|r| r.id == "last_alcohol").unwrap();
    assert_eq!(reminder.at.with_timezone(&chrono::Utc), start.with_timezone(&chrono::Utc) - Duration::hours(24));
}

#[test]
fn blood_pressure_boundaries() {
    for (sys, dia, state, urgent) in [
        (139, 89, ItemState::Pass, false),
        (140, 80, ItemState::Fail, false),
        (120, 90, ItemState::Fail, false),
        (179, 119, ItemState::Fail, false),
        (180, 100, ItemState::Fail, true),
        (150, 120, ItemState::Fail, true),
        (180, 120, ItemState::Fail, true),
    ] {
        let e = with(json!({"blood_pressure": {"systolic": sys, "diastolic": dia}}));
        let bp = item(&e, "blood_pressure");
        assert_eq!((bp.state, bp.urgent, e.urgent), (state, urgent, urgent), "{sys}/{dia}");
        let expected = if state == ItemState::Pass { ReadinessStatus::Ready } else { ReadinessStatus::Blocked };
        assert_eq!(e.status, expected, "{sys}/{dia}");
        assert_eq!(e.ready_at, None);
    }
}

#[test]
fn a_clinic_limit_from_the_pack_is_used() {
    let mut pack = Pack::default_pack().as_ref().clone();
    pack.thresholds.bp_limit.systolic = 130;
    let answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    assert_eq!(evaluate(&pack, start(), &answers, "en").status, ReadinessStatus::Ready);
    let mut answers = answers;
    answers.set(&pack, "blood_pressure", &json!({"systolic": 131, "diastolic": 70})).unwrap();
    let e = evaluate(&pack, start(), &answers, "en");
    assert_eq!(e.status, ReadinessStatus::Blocked);
    assert!(item(&e, "blood_pressure").message.contains("130/90"));
}

#[test]
fn attestations_must_be_true() {
    for id in ["monitor_present", "safe_setting", "no_driving_plan"] {
        let e = with(json!({ id: false }));
        assert_eq!((item(&e, id).state, e.status), (ItemState::Fail, ReadinessStatus::Blocked), "{id}");
    }
}

#[test]
fn antihypertensive_not_taken_is_a_warning_not_a_block() {
    let e = with(json!({"antihypertensive_taken": "no"}));
    assert_eq!(item(&e, "antihypertensive_taken").state, ItemState::Warn);
    assert_eq!(e.status, ReadinessStatus::Ready);
    let e = with(json!({"antihypertensive_taken": "yes"}));
    assert_eq!(item(&e, "antihypertensive_taken").state, ItemState::Pass);
}

#[test]
fn a_missing_or_blank_intention_is_a_warning() {
    let mut answers = ready_answers();
    answers.as_object_mut().unwrap().remove("intention_set");
    let e = eval_json(&answers);
    assert_eq!((item(&e, "intention_set").state, e.status), (ItemState::Warn, ReadinessStatus::Ready));
    let e = with(json!({"intention_set": "   "}));
    assert_eq!(item(&e, "intention_set").state, ItemState::Warn);
}

#[test]
fn every_screening_yes_blocks() {
    let pack = Pack::default_pack();
    for q in &pack.screening {
        let e = with(json!({ q.id.clone(): true }));
        assert_eq!((item(&e, &q.id).state, e.status), (ItemState::Fail, ReadinessStatus::Blocked), "{}", q.id);
    }
}

#[test]
fn each_missing_required_answer_leaves_the_checklist_incomplete() {
    let pack = Pack::default_pack();
    let required = pack
        .checklist
        .iter()
        .filter(|i| !i.optional)
        .map(|i| i.id.as_str())
        .chain(pack.screening.iter().map(|q| q.id.as_str()));
    for id in required {
        let mut answers = ready_answers();
        answers[id] = Value::Null; // null clears
        let e = eval_json(&answers);
        assert_eq!((item(&e, id).state, e.status), (ItemState::Unanswered, ReadinessStatus::Incomplete), "{id}");
    }
    assert_eq!(eval_json(&json!({})).status, ReadinessStatus::Incomplete);
}

#[test]
fn precedence_is_blocked_then_incomplete_then_wait() {
    let late_meal = "2026-05-01T14:00:00-04:00";
    let mut answers = ready_answers();
    answers["last_solid_food"] = json!(late_meal);
    answers["screen_pregnancy"] = Value::Null;
    assert_eq!(eval_json(&answers).status, ReadinessStatus::Incomplete);
    assert_eq!(eval_json(&answers).ready_at, None);
    answers["monitor_present"] = json!(false);
    assert_eq!(eval_json(&answers).status, ReadinessStatus::Blocked);
    let e = with(json!({"last_solid_food": late_meal, "antihypertensive_taken": "no"}));
    assert_eq!(e.status, ReadinessStatus::Wait);
}

#[test]
fn reminders_are_the_window_closing_times() {
    let e = eval_json(&json!({}));
    let reminders: Vec<(&str, String)> = e.reminders.iter().map(|r| (r.id.as_str(), r.at.to_rfc3339())).collect();
    assert_eq!(
        reminders,
        [
            ("last_solid_food", "2026-05-01T12:00:00-04:00".to_owned()),
            ("last_liquid", "2026-05-01T14:00:00-04:00".to_owned()),
            ("last_benzodiazepine", "2026-04-30T15:00:00-04:00".to_owned()),
            ("last_stimulant", "2026-04-30T15:00:00-04:00".to_owned()),
            ("last_alcohol", "2026-04-30T15:00:00-04:00".to_owned()),
        ]
    );
    assert!(e.reminders.iter().all(|r| !r.message.is_empty()));
}

#[test]
fn messages_follow_the_locale() {
    let pack = Pack::default_pack();
    let answers = Answers::from_json(&pack, &json!({"blood_pressure": {"systolic": 150, "diastolic": 80}})).unwrap();
    let en = evaluate(&pack, start(), &answers, "en-US");
    let es = evaluate(&pack, start(), &answers, "es-MX");
    assert!(item(&en, "blood_pressure").message.contains("clinic"));
    assert!(item(&es, "blood_pressure").message.contains("clínica"));
    assert_ne!(en.reminders[0].message, es.reminders[0].message);
}

#[test]
fn malformed_answers_are_refused_naming_the_item_not_the_value() {
    let cases = [
        (json!({"favourite_colour": "blue"}), "favourite_colour"),
        (json!({"last_solid_food": "yesterday lunch"}), "last_solid_food"),
        (json!({"last_solid_food": "2026-05-01 12:00"}), "last_solid_food"),
        (json!({"last_liquid": 1714575600}), "last_liquid"),
        (json!({"blood_pressure": "128/82"}), "blood_pressure"),
        (json!({"blood_pressure": [128, 82]}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": 128}}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": 128.5, "diastolic": 80}}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": 128, "diastolic": 80, "pulse": 70}}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": 80, "diastolic": 128}}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": 400, "diastolic": 80}}), "blood_pressure"),
        (json!({"blood_pressure": {"systolic": -1, "diastolic": 80}}), "blood_pressure"),
        (json!({"monitor_present": "yes"}), "monitor_present"),
        (json!({"screen_pregnancy": 0}), "screen_pregnancy"),
        (json!({"antihypertensive_taken": "sometimes"}), "antihypertensive_taken"),
        (json!({"antihypertensive_taken": true}), "antihypertensive_taken"),
        (json!({"intention_set": ["a"]}), "intention_set"),
    ];
    for (change, id) in cases {
        let err = parse_err(change.clone());
        let text = err.to_string();
        assert!(text.starts_with(&format!("answers.{id}: ")), "{text}");
        for secret in ["yesterday", "128/82", "sometimes", "blue"] {
            assert!(!text.contains(secret), "{text} leaks the value");
        }
    }
    let pack = Pack::default_pack();
    assert_eq!(Answers::from_json(&pack, &json!([1, 2])).unwrap_err(), ChecklistError::NotAnObject);
}

#[test]
fn a_failed_set_keeps_the_previous_answer() {
    let pack = Pack::default_pack();
    let mut answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    assert!(answers.set(&pack, "blood_pressure", &json!("high")).is_err());
    assert_eq!(
        answers.get("blood_pressure"),
        Some(&Answer::BloodPressure(BloodPressureReading { systolic: 128, diastolic: 82 }))
    );
}

#[test]
fn answers_round_trip_through_json() {
    let pack = Pack::default_pack();
    let answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    assert_eq!(Answers::from_json(&pack, &answers.to_json()).unwrap(), answers);
}

#[test]
fn an_answer_stored_under_another_pack_counts_as_unanswered() {
    // A pack where monitor_present took free text; under the default pack
    // that answer must not count as confirmation.
    let mut other = Pack::default_pack().as_ref().clone();
    other.checklist.iter_mut().find(|i| i.id == "monitor_present").unwrap().rule = crate::pack::Rule::FreeText;
    let mut raw = ready_answers();
    raw["monitor_present"] = json!("my sister");
    let answers = Answers::from_json(&other, &raw).unwrap();
    let e = evaluate(&Pack::default_pack(), start(), &answers, "en");
    assert_eq!(item(&e, "monitor_present").state, ItemState::Unanswered);
    assert_eq!(e.status, ReadinessStatus::Incomplete);
}

#[test]
fn evaluation_serializes_to_the_documented_shape() {
    let e = with(json!({"last_solid_food": "2026-05-01T13:00:00-04:00"}));
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["status"], "wait");
    assert_eq!(v["ready_at"], "2026-05-01T16:00:00-04:00");
    assert_eq!(v["urgent"], false);
    let food = v["items"].as_array().unwrap().iter().find(|i| i["id"] == "last_solid_food").unwrap();
    assert_eq!(food["state"], "wait");
    assert_eq!(food["until"], "2026-05-01T16:00:00-04:00");
    assert!(food["message"].is_string());
    assert_eq!(v["reminders"][0]["at"], "2026-05-01T12:00:00-04:00");
}

/// Any JSON value at all, to throw at the parser.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1000i32..1000).prop_map(|n| json!(f64::from(n) / 7.0)),
        prop_oneof![
            Just("none".to_owned()),
            Just("yes".to_owned()),
            Just("no".to_owned()),
            Just("not_prescribed".to_owned()),
            Just("2026-05-01T12:00:00-04:00".to_owned()),
            Just("2026-05-01T14:30:00Z".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
        (0u16..320, 0u16..320).prop_map(|(s, d)| json!({"systolic": s, "diastolic": d})),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every item id with a random JSON value, or left out.
fn any_answers() -> impl Strategy<Value = Value> {
    let pack = Pack::default_pack();
    let ids: Vec<String> =
        pack.checklist.iter().map(|i| i.id.clone()).chain(pack.screening.iter().map(|q| q.id.clone())).collect();
    let good = ready_answers();
    let per_item: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let good_value = good[&id].clone();
            prop_oneof![
                3 => Just(Some(good_value)),
                1 => Just(None),
                2 => any_json().prop_map(Some),
            ]
            .prop_map(move |v| (id.clone(), v))
        })
        .collect();
    per_item.prop_map(|pairs| Value::Object(pairs.into_iter().filter_map(|(id, v)| v.map(|v| (id, v))).collect()))
}

/// An independent reading of the default pack's safety rules on raw JSON:
/// true only when starting at `START` is plainly safe.
fn plainly_safe(raw: &Value) -> bool {
    let start = start();
    let window_ok = |id: &str, hours: i64| match raw.get(id).and_then(Value::as_str) {
        Some("none") => true,
        Some(s) => DateTime::parse_from_rfc3339(s).is_ok_and(|t| t + Duration::hours(hours) <= start),
        None => false,
    };
    let bp_ok = raw.get("blood_pressure").is_some_and(|bp| {
        matches!((bp["systolic"].as_u64(), bp["diastolic"].as_u64()), (Some(s), Some(d)) if s < 140 && d < 90 && d < s && s >= 50 && d >= 20)
    });
    let pack = Pack::default_pack();
    window_ok("last_solid_food", 3)
        && window_ok("last_liquid", 1)
        && ["last_benzodiazepine", "last_stimulant", "last_alcohol"].iter().all(|id| window_ok(id, 24))
        && bp_ok
        && ["monitor_present", "safe_setting", "no_driving_plan"].iter().all(|id| raw.get(*id) == Some(&json!(true)))
        && matches!(raw.get("antihypertensive_taken").and_then(Value::as_str), Some("yes" | "no" | "not_prescribed"))
        && pack.screening.iter().all(|q| raw.get(&q.id) == Some(&json!(false)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The safety property: whatever the input, `ready` only ever comes out
    /// when an independent reading of the rules agrees it is safe.
    #[test]
    fn ready_only_when_plainly_safe(raw in any_answers()) {
        let pack = Pack::default_pack();
        if let Ok(answers) = Answers::from_json(&pack, &raw) {
            let e = evaluate(&pack, start(), &answers, "en");
            if e.status == ReadinessStatus::Ready {
                prop_assert!(plainly_safe(&raw), "ready for unsafe answers {raw:#}");
            }
            // Status is derived from item states by the documented precedence.
            let has = |s| e.items.iter().any(|i| i.state == s);
            let expected = if has(ItemState::Fail) { ReadinessStatus::Blocked }
                else if has(ItemState::Unanswered) { ReadinessStatus::Incomplete }
                else if has(ItemState::Wait) { ReadinessStatus::Wait }
                else { ReadinessStatus::Ready };
            prop_assert_eq!(e.status, expected);
            prop_assert_eq!(e.ready_at.is_some(), e.status == ReadinessStatus::Wait);
            if let Some(ready_at) = e.ready_at {
                prop_assert!(ready_at > start());
            }
        }
    }

    /// Waiting until `ready_at` really is enough: re-evaluating at that start
    /// makes every window pass.
    #[test]
    fn starting_at_ready_at_clears_every_window(food in 0i64..600, liquid in 0i64..240, alcohol in 0i64..3000) {
        let pack = Pack::default_pack();
        let mut raw = ready_answers();
        let t = |minutes_before: i64| (start() - Duration::minutes(minutes_before)).to_rfc3339();
        raw["last_solid_food"] = json!(t(food));
        raw["last_liquid"] = json!(t(liquid));
        raw["last_alcohol"] = json!(t(alcohol));
        let answers = Answers::from_json(&pack, &raw).unwrap();
        let e = evaluate(&pack, start(), &answers, "en");
        let all_met = food >= 180 && liquid >= 60 && alcohol >= 1440;
        prop_assert_eq!(e.status == ReadinessStatus::Ready, all_met);
        if let Some(ready_at) = e.ready_at {
            let later = evaluate(&pack, ready_at, &answers, "en");
            prop_assert_eq!(later.status, ReadinessStatus::Ready);
            let a_minute_sooner = evaluate(&pack, ready_at - Duration::minutes(1), &answers, "en");
            prop_assert_eq!(a_minute_sooner.status, ReadinessStatus::Wait);
        }
    }
}

fn zone(name: &str) -> crate::zone::Zone {
    crate::zone::Zone::named(name).unwrap()
}

#[test]
fn an_intake_after_the_start_is_refused_naming_the_item() {
    let pack = Pack::default_pack();
    let mut answers = Answers::new();
    let after = json!("2026-05-01T15:01:00-04:00");
    answers.set(&pack, "last_liquid", &after).unwrap();
    assert_eq!(answers.check_before(start()).unwrap_err(), ChecklistError::AfterStart { id: "last_liquid".into() });
    // The start itself is before-or-at: it is a real answer (and waits).
    let mut answers = Answers::new();
    answers.set(&pack, "last_liquid", &json!(START)).unwrap();
    answers.check_before(start()).unwrap();
    // A stored answer that the start was since moved before counts as unanswered.
    let e = with(json!({"last_liquid": "2026-05-01T15:01:00-04:00"}));
    let liquid = item(&e, "last_liquid");
    assert_eq!((liquid.state, e.status), (ItemState::Unanswered, ReadinessStatus::Incomplete));
    assert!(liquid.message.contains("after the session's start"), "{}", liquid.message);
    assert_eq!(with(json!({"last_liquid": START})).status, ReadinessStatus::Wait);
}

#[test]
fn instants_outside_rfc_3339_years_are_refused() {
    for text in ["9999-12-31T23:00:00-05:00", "0000-01-01T00:30:00+01:00"] {
        let err = parse_err(json!({"last_alcohol": text}));
        assert!(matches!(&err, ChecklistError::InvalidAnswer { id, .. } if id == "last_alcohol"), "{err}");
        assert!(err.to_string().contains("0000-9999"), "{err}");
    }
    // The last instants that can be written are read.
    for text in ["9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "9999-12-31T18:00:00-05:00"] {
        let pack = Pack::default_pack();
        Answers::new().set(&pack, "last_alcohol", &json!(text)).unwrap();
    }
}

#[test]
fn explanations_show_the_clients_wall_clock_on_a_new_york_daylight_saving_day() {
    // A 10:00 EST drink on 7 March, before a 10:00 EDT start on 8 March
    // (clocks went forward at 02:00): the explanation says 10:00, with its
    // date, as the client entered it, and the earliest start in EDT.
    let pack = Pack::default_pack();
    let start = at("2026-03-08T10:00:00-04:00");
    let mut answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    answers.set(&pack, "last_solid_food", &json!("2026-03-08T06:00:00-04:00")).unwrap();
    answers.set(&pack, "last_liquid", &json!("2026-03-08T08:00:00-04:00")).unwrap();
    // The phone sends instants in UTC: 15:00Z is 10:00 EST.
    answers.set(&pack, "last_alcohol", &json!("2026-03-07T15:00:00Z")).unwrap();
    let ny = zone("America/New_York");
    let e = evaluate_in(&pack, start, Some(&ny), &answers, "en");
    let alcohol = item(&e, "last_alcohol");
    assert_eq!(
        alcohol.message,
        "Last on 2026-03-07 at 10:00, less than 24 h before the start. You can start from 11:00."
    );
    assert_eq!(alcohol.until.unwrap().to_rfc3339(), "2026-03-08T11:00:00-04:00");
    let es = evaluate_in(&pack, start, Some(&ny), &answers, "es");
    assert_eq!(
        item(&es, "last_alcohol").message,
        "Última vez el 2026-03-07 a las 10:00, menos de 24 h antes del inicio. Puedes empezar a partir de las 11:00."
    );
    // Without the zone, the instant is shown in the offset it was entered with.
    let e = evaluate(&pack, start, &answers, "en");
    assert!(
        item(&e, "last_alcohol").message.starts_with("Last on 2026-03-07 at 15:00"),
        "{}",
        item(&e, "last_alcohol").message
    );
}

#[test]
fn explanations_in_madrid_never_show_a_wall_time_that_did_not_exist() {
    // Madrid goes from 02:00 CET to 03:00 CEST on 29 March 2026. A meal at
    // 01:30 CET that night is 01:30 on the clock, not 02:30 (which never
    // happened); the session starts 03:30 CEST, so food is 1 real hour back.
    let pack = Pack::default_pack();
    let start = at("2026-03-29T03:30:00+02:00");
    let mut answers = Answers::from_json(&pack, &ready_answers()).unwrap();
    answers.set(&pack, "last_solid_food", &json!("2026-03-29T01:30:00+01:00")).unwrap();
    answers.set(&pack, "last_liquid", &json!("2026-03-28T23:00:00+01:00")).unwrap();
    answers.set(&pack, "last_alcohol", &json!("none")).unwrap();
    let madrid = zone("Europe/Madrid");
    let es = evaluate_in(&pack, start, Some(&madrid), &answers, "es");
    assert_eq!(
        item(&es, "last_solid_food").message,
        "Última vez a la 01:30, menos de 3 h antes del inicio. Puedes empezar a partir de las 05:30."
    );
    assert_eq!(
        item(&es, "last_liquid").message,
        "Última vez el 2026-03-28 a las 23:00: al menos 1 h antes del inicio."
    );
    let en = evaluate_in(&pack, start, Some(&madrid), &answers, "en");
    assert_eq!(
        item(&en, "last_solid_food").message,
        "Last at 01:30, less than 3 h before the start. You can start from 05:30."
    );
    assert_eq!(en.ready_at.unwrap().to_rfc3339(), "2026-03-29T05:30:00+02:00");
    // Reminders carry the offset in force at their own instant: 3 real
    // hours before 03:30 CEST is 23:30 CET the evening before.
    let food = en.reminders.iter().find(|r| r.id == "last_solid_food").unwrap();
    assert_eq!(food.at.to_rfc3339(), "2026-03-28T23:30:00+01:00");
}
