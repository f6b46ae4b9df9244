//! `katctl` as a user runs it: the real binary, JSON in and out, exit codes
//! and one-line errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn katctl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_katctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("katctl runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn json_out(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Asserts a failure with exit code 1 and a single stderr line mentioning `needle`.
fn fails_naming(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{stderr} should name {needle}");
    assert!(out.stdout.is_empty());
}

fn ready_input() -> Value {
    json!({
        "session_start": "2026-05-01T15:00:00-04:00",
        "answers": {
            "last_solid_food": "2026-05-01T11:00:00-04:00",
            "last_liquid": "none",
            "last_benzodiazepine": "none",
            "last_stimulant": "none",
            "last_alcohol": "none",
            "blood_pressure": {"systolic": 122, "diastolic": 78},
            "monitor_present": true,
            "safe_setting": true,
            "no_driving_plan": true,
            "antihypertensive_taken": "yes",
            "intention_set": "Notice my breathing",
            "screen_ketamine_allergy": false,
            "screen_psychosis_or_mania": false,
            "screen_uncontrolled_bp": false,
            "screen_heart_condition": false,
            "screen_breathing_problem": false,
            "screen_eye_or_brain_pressure": false,
            "screen_hyperthyroidism": false,
            "screen_pregnancy": false,
            "screen_new_serious_illness": false
        }
    })
}

#[test]
fn evaluate_reads_stdin_and_reports_ready() {
    let out = katctl(&["checklist", "evaluate", "-"], Some(&ready_input().to_string()));
    let v = json_out(&out);
    assert_eq!(v["status"], "ready");
    assert_eq!(v["urgent"], false);
    assert_eq!(v["items"].as_array().unwrap().len(), 20);
    assert_eq!(
        v["reminders"][0],
        json!({"id": "last_solid_food", "at": "2026-05-01T12:00:00-04:00", "message": v["reminders"][0]["message"]})
    );
}

#[test]
fn evaluate_reads_a_file_and_reports_wait_with_ready_at() {
    let dir = tempdir();
    let mut input = ready_input();
    input["answers"]["last_solid_food"] = json!("2026-05-01T12:30:00-04:00");
    let path = dir.join("in.json");
    std::fs::write(&path, input.to_string()).unwrap();
    let v = json_out(&katctl(&["checklist", "evaluate", path.to_str().unwrap(), "--locale", "es"], None));
    assert_eq!(v["status"], "wait");
    assert_eq!(v["ready_at"], "2026-05-01T15:30:00-04:00");
    let food = v["items"].as_array().unwrap().iter().find(|i| i["id"] == "last_solid_food").unwrap();
    assert!(food["message"].as_str().unwrap().contains("15:30"));
}

#[test]
fn urgent_blood_pressure_blocks_and_is_flagged() {
    let mut input = ready_input();
    input["answers"]["blood_pressure"] = json!({"systolic": 185, "diastolic": 95});
    let v = json_out(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())));
    assert_eq!((v["status"].as_str(), v["urgent"].as_bool()), (Some("blocked"), Some(true)));
}

#[test]
fn bad_input_names_the_field_in_one_line() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"session_start": "tomorrow", "answers": {}}), "session_start"),
        (json!({"answers": {}}), "session_start"),
        (json!({"session_start": "2026-05-01T15:00:00Z"}), "answers"),
        (json!({"session_start": "2026-05-01T15:00:00Z", "answers": {}, "extra": 1}), "extra"),
        (json!({"session_start": "2026-05-01T15:00:00Z", "answers": {"last_meal": "none"}}), "answers.last_meal"),
        (
            json!({"session_start": "2026-05-01T15:00:00Z", "answers": {"monitor_present": "yes"}}),
            "answers.monitor_present",
        ),
        (json!({"session_start": "2026-05-01T15:00:00Z", "answers": {"last_liquid": "12:00"}}), "answers.last_liquid"),
        (
            json!({"session_start": "2026-05-01T15:00:00Z", "answers": {"blood_pressure": [120, 80]}}),
            "answers.blood_pressure",
        ),
    ];
    for (input, field) in cases {
        fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())), field);
    }
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some("{not json")), "input");
    fails_naming(&katctl(&["checklist", "evaluate", "/nonexistent/in.json"], None), "/nonexistent/in.json");
}

#[test]
fn a_key_given_twice_is_refused_not_read_as_its_last_value() {
    // The first `monitor_present` says no monitor: read as its last value,
    // this input was `ready`.
    let input = ready_input().to_string().replacen(
        r#""monitor_present":true"#,
        r#""monitor_present":false,"monitor_present":true"#,
        1,
    );
    assert!(input.contains(r#""monitor_present":false"#));
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input)), r#"duplicate key "monitor_present""#);
    let twice_at_the_top =
        r#"{"session_start": "2026-05-01T15:00:00Z", "session_start": "2026-05-01T10:00:00Z", "answers": {}}"#;
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(twice_at_the_top)), r#"duplicate key "session_start""#);
}

#[test]
fn an_intake_after_the_start_and_instants_past_rfc_3339_are_refused() {
    let mut input = ready_input();
    input["answers"]["last_liquid"] = json!("2026-05-01T15:05:00-04:00");
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())), "answers.last_liquid");
    let out = katctl(&["checklist", "evaluate", "-"], Some(&input.to_string()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("after the session's start"));
    // At the start itself it is an answer, and the session waits.
    input["answers"]["last_liquid"] = json!("2026-05-01T15:00:00-04:00");
    assert_eq!(json_out(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())))["status"], "wait");
    // Year 9999 in a negative offset is year 10000 in UTC.
    let mut input = ready_input();
    input["session_start"] = json!("9999-12-31T23:00:00-05:00");
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())), "session_start");
    let mut input = ready_input();
    input["answers"]["last_alcohol"] = json!("9999-12-31T23:00:00-05:00");
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())), "answers.last_alcohol");
}

#[test]
fn evaluate_explains_in_the_clients_zone_when_given_one() {
    // A drink at 10:00 EST the day before a spring-forward start at 10:00 EDT.
    let mut input = ready_input();
    input["session_start"] = json!("2026-03-08T10:00:00-04:00");
    input["answers"]["last_solid_food"] = json!("2026-03-08T06:00:00-04:00");
    input["answers"]["last_alcohol"] = json!("2026-03-07T15:00:00Z");
    input["time_zone"] = json!("America/New_York");
    let v = json_out(&katctl(&["checklist", "evaluate", "-", "--locale", "es"], Some(&input.to_string())));
    let alcohol = v["items"].as_array().unwrap().iter().find(|i| i["id"] == "last_alcohol").unwrap();
    assert_eq!(
        alcohol["message"],
        "Última vez el 2026-03-07 a las 10:00, menos de 24 h antes del inicio. Puedes empezar a partir de las 11:00."
    );
    input["time_zone"] = json!("Mars/Olympus");
    fails_naming(&katctl(&["checklist", "evaluate", "-"], Some(&input.to_string())), "time_zone");
}

#[test]
fn score_flags_a_severe_total_and_a_rise_over_the_baseline() {
    let v = json_out(&katctl(&["score", "phq9", "3,3,3,3,3,3,3,3,0"], None));
    assert_eq!(
        (v["total"].as_u64(), v["urgent"].as_bool(), v["review"].as_str()),
        (Some(24), Some(false), Some("severe"))
    );
    assert!(v["review_message"].is_string());
    let v = json_out(&katctl(&["score", "gad7", "2,2,2,1,1,1,1", "--baseline", "5"], None));
    assert_eq!((v["total"].as_u64(), v["review"].as_str()), (Some(10), Some("worsened")));
    let v = json_out(&katctl(&["score", "gad7", "2,2,2,1,1,1,0", "--baseline", "5"], None));
    assert!(v.get("review").is_none(), "a rise of 4 is not flagged: {v}");
    fails_naming(&katctl(&["score", "gad7", "0,0,0,0,0,0,0", "--baseline", "22"], None), "baseline");
}

#[test]
fn a_pack_with_a_prompt_in_the_clients_night_is_not_validated_or_signed() {
    let dir = tempdir();
    let mut pack: Value =
        serde_json::from_str(&String::from_utf8(katctl(&["pack", "default"], None).stdout).unwrap()).unwrap();
    pack["integration"][0]["local_time"] = json!("23:15");
    let path = dir.join("night.json");
    std::fs::write(&path, pack.to_string()).unwrap();
    fails_naming(&katctl(&["pack", "validate", path.to_str().unwrap()], None), "integration[0].local_time");
    let prefix = dir.join("clinic");
    json_out(&katctl(&["pack", "keygen", "--out", prefix.to_str().unwrap()], None));
    let key = dir.join("clinic.key");
    fails_naming(
        &katctl(&["pack", "sign", path.to_str().unwrap(), "--key", key.to_str().unwrap()], None),
        "integration[0].local_time",
    );
    // Turning the quiet hours off makes it the clinic's choice again.
    pack["thresholds"]["quiet_hours"] = Value::Null;
    std::fs::write(&path, pack.to_string()).unwrap();
    assert_eq!(json_out(&katctl(&["pack", "validate", path.to_str().unwrap()], None))["valid"], true);
}

#[test]
fn a_reader_that_goes_away_ends_katctl_quietly() {
    // The pipe's reading end is closed before katctl writes a byte, as
    // when `head` has read what it wanted.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_katctl"))
        .args(["pack", "schema"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no panic, no backtrace");
    assert_eq!(out.status.code(), Some(141));
}

#[test]
fn score_reports_total_band_and_crisis_contacts() {
    let v = json_out(&katctl(&["score", "phq9", "1,1,2,1,1,0,1,0,0"], None));
    assert_eq!((v["total"].as_u64(), v["band"].as_str(), v["urgent"].as_bool()), (Some(7), Some("mild"), Some(false)));
    assert!(v.get("crisis_contacts").is_none());
    let v = json_out(&katctl(&["score", "phq9", "0,0,0,0,0,0,0,0,2"], None));
    assert_eq!(v["urgent"], true);
    assert!(v["crisis_contacts"].as_array().unwrap().iter().any(|c| c["phone"] == "988"));
    let v = json_out(&katctl(&["score", "gad7", "3,3,3,3,3,0,0"], None));
    assert_eq!((v["total"].as_u64(), v["band"].as_str()), (Some(15), Some("severe")));
}

#[test]
fn score_errors_are_one_line() {
    fails_naming(&katctl(&["score", "phq9", "1,2,3"], None), "9 answers");
    fails_naming(&katctl(&["score", "gad7", "0,0,x,0,0,0,0"], None), "item 3");
    fails_naming(&katctl(&["score", "gad7", "0,0,0,4,0,0,0"], None), "item 4");
    fails_naming(&katctl(&["score", "beck", "1"], None), "phq9 or gad7");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(katctl(&["checklist"], None).status.code(), Some(2));
    assert_eq!(katctl(&["frobnicate"], None).status.code(), Some(2));
}

#[test]
fn aftercare_plans_in_the_client_time_zone() {
    let v = json_out(&katctl(&["aftercare", "--end", "2026-05-01T21:00:00Z", "--tz", "America/Los_Angeles"], None));
    assert_eq!(v["driving_ok_from"], "2026-05-02T08:00:00-07:00");
    assert!(!v["integration"].as_array().unwrap().is_empty());
    fails_naming(&katctl(&["aftercare", "--end", "2026-05-01T21:00:00Z", "--tz", "Nowhere/Land"], None), "--tz");
}

#[test]
fn a_clinic_can_keygen_sign_verify_and_use_a_pack() {
    let dir = tempdir();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let keys = json_out(&katctl(&["pack", "keygen", "--out", &path("clinic")], None));
    assert_eq!(keys["key_id"].as_str().unwrap().len(), 16);

    // Author a pack from the default with a stricter limit.
    let mut pack: Value = serde_json::from_slice(&katctl(&["pack", "default"], None).stdout).unwrap();
    pack["id"] = json!("org.example.clinic");
    pack["thresholds"]["bp_limit"]["systolic"] = json!(120);
    std::fs::write(path("draft.json"), pack.to_string()).unwrap();
    assert_eq!(json_out(&katctl(&["pack", "validate", &path("draft.json")], None))["valid"], true);

    json_out(&katctl(
        &["pack", "sign", &path("draft.json"), "--key", &path("clinic.key"), "--out", &path("signed.json")],
        None,
    ));
    let v = json_out(&katctl(&["pack", "verify", &path("signed.json"), "--trust", &path("clinic.pub")], None));
    assert_eq!((v["verified"].as_bool(), v["id"].as_str()), (Some(true), Some("org.example.clinic")));

    // The signed pack drives the engine; its stricter limit applies.
    let out = katctl(
        &["checklist", "evaluate", "-", "--pack", &path("signed.json"), "--trust", &path("clinic.pub")],
        Some(&ready_input().to_string()),
    );
    assert_eq!(json_out(&out)["status"], "blocked");

    // Tampering is caught; a draft needs --allow-unsigned.
    let tampered =
        std::fs::read_to_string(path("signed.json")).unwrap().replace("\"systolic\": 120", "\"systolic\": 200");
    std::fs::write(path("tampered.json"), tampered).unwrap();
    fails_naming(
        &katctl(&["pack", "verify", &path("tampered.json"), "--trust", &path("clinic.pub")], None),
        "does not verify",
    );
    fails_naming(&katctl(&["checklist", "evaluate", "-", "--pack", &path("draft.json")], Some("{}")), "not signed");
    let out = katctl(
        &["checklist", "evaluate", "-", "--pack", &path("draft.json"), "--allow-unsigned"],
        Some(&ready_input().to_string()),
    );
    assert_eq!(json_out(&out)["status"], "blocked");

    // An invalid draft is refused with the field's path, and never signed.
    pack["checklist"][0]["prompt"] = json!({"en": "Only English"});
    std::fs::write(path("bad.json"), pack.to_string()).unwrap();
    fails_naming(&katctl(&["pack", "validate", &path("bad.json")], None), "checklist[0].prompt");
    fails_naming(
        &katctl(&["pack", "sign", &path("bad.json"), "--key", &path("clinic.key")], None),
        "checklist[0].prompt",
    );
    // Keygen never overwrites a key.
    fails_naming(&katctl(&["pack", "keygen", "--out", &path("clinic")], None), "clinic.key");
}

#[test]
fn the_published_schema_matches_the_code() {
    let out = json_out(&katctl(&["pack", "schema"], None));
    let published: Value =
        serde_json::from_str(include_str!("../../docs/pack.schema.json")).expect("docs/pack.schema.json is JSON");
    assert_eq!(out, published, "docs/pack.schema.json is stale: run `katctl pack schema > docs/pack.schema.json`");
    let out = json_out(&katctl(&["record", "schema"], None));
    let published: Value =
        serde_json::from_str(include_str!("../../docs/record.schema.json")).expect("docs/record.schema.json is JSON");
    assert_eq!(
        out, published,
        "docs/record.schema.json is stale: run `katctl record schema > docs/record.schema.json`"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("katctl-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
