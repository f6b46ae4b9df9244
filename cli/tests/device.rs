//! `katctl device` end to end: the real binary acting as a client's phone
//! against a real clinic server on loopback. The start gate refuses a
//! session that is not ready (exit 3, naming the status) and records the
//! decision; once ready it starts, and everything reaches the clinic.

use std::path::Path;
use std::process::{Command, Output};

use katcore_clinic::{init_clinic, serve, ClinicianClient, Config};
use serde_json::{json, Value};

fn katctl(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_katctl"));
    command.arg("device").arg("--data-dir").arg(dir).args(args).env_remove("KATCORE_DEVICE_KEY");
    match stdin {
        None => command.output().expect("katctl runs"),
        Some(input) => {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("katctl runs");
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        }
    }
}

/// Runs a command that must succeed and returns its JSON.
fn ok(dir: &Path, args: &[&str]) -> Value {
    let out = katctl(dir, args, None);
    assert!(out.status.success(), "katctl device {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

/// Answers under which the default pack's checklist is ready for a start at `start`.
fn ready_answers(start: chrono::DateTime<chrono::FixedOffset>) -> Value {
    let mut answers = json!({
        "last_solid_food": (start - chrono::Duration::hours(7)).to_rfc3339(),
        "last_liquid": (start - chrono::Duration::hours(3)).to_rfc3339(),
        "last_benzodiazepine": "none",
        "last_stimulant": "none",
        "last_alcohol": "none",
        "blood_pressure": {"systolic": 124, "diastolic": 78},
        "monitor_present": true,
        "safe_setting": true,
        "no_driving_plan": true,
        "antihypertensive_taken": "not_prescribed",
        "intention_set": "Notice what comes up.",
    });
    for question in &katcore::pack::Pack::default_pack().screening {
        answers[&question.id] = json!(false);
    }
    answers
}

#[test]
fn a_command_line_device_is_gated_enrolls_and_syncs_with_a_real_clinic() {
    let dir = std::env::temp_dir().join(format!("katctl-device-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = dir.join("clinic.db");
    let init = init_clinic(&db, "Riverside", "Dr. Rivera").unwrap();
    let server = runtime.block_on(serve(Config::local(&db))).unwrap();
    let api = ClinicianClient::new(&server.url(), &init.clinician_token);
    let client = runtime.block_on(api.create_client("client-cli")).unwrap();
    let code = runtime.block_on(api.enrollment_code(&client)).unwrap();
    let phone = dir.join("phone");

    // A store must exist first; init writes a key readable only by its owner.
    let missing = katctl(&phone, &["status"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("katctl device init"));
    let created = ok(&phone, &["init"]);
    assert_eq!(created["key"]["created"], true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(phone.join("device.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let enrolled = ok(&phone, &["enroll", "--server", &server.url(), "--code", &code, "--label", "cli phone"]);
    assert_eq!(enrolled["client_id"], client.as_str());

    let start = chrono::Utc::now().fixed_offset() + chrono::Duration::hours(2);
    let session = ok(&phone, &["schedule", "--start", &start.to_rfc3339(), "--tz", "Europe/Madrid"]);
    let session_id = session["id"].as_str().unwrap().to_owned();
    let answered = ok(&phone, &["answer", "--session", &session_id, "--item", "monitor_present", "--value", "true"]);
    assert_eq!(answered["answered"], 1);

    // Not ready: refused with exit 3, the status named, the evaluation printed, nothing started.
    let refused = katctl(&phone, &["start", "--session", &session_id], None);
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("its checklist is incomplete"));
    let evaluation: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(evaluation["status"], "incomplete");
    assert_eq!(ok(&phone, &["evaluate", "--session", &session_id])["status"], "incomplete");

    // Ready answers from stdin; the start at the scheduled time goes through.
    let all = ready_answers(start).to_string();
    let out = katctl(&phone, &["answer", "--session", &session_id, "--answers", "-"], Some(&all));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ok(&phone, &["evaluate", "--session", &session_id])["status"], "ready");
    let started = ok(&phone, &["start", "--session", &session_id, "--at", &start.to_rfc3339()]);
    assert_eq!(started["status"], "ready");
    let end = (start + chrono::Duration::hours(2)).to_rfc3339();
    let ended = ok(&phone, &["end", "--session", &session_id, "--at", &end]);
    assert!(ended["aftercare"]["driving_ok_from"].is_string());

    // Wellbeing and the journal, then one sync carries it all to the clinic.
    let urgent = ok(&phone, &["vitals", "--systolic", "186", "--diastolic", "112"]);
    assert_eq!(urgent["urgent"], true);
    let phq9 = ok(&phone, &["check-in", "--instrument", "phq9", "--answers", "1,1,1,1,1,1,1,1,0"]);
    assert_eq!(phq9["total"], 8);
    ok(&phone, &["journal", "--text", "A shared line.", "--session", &session_id]);
    ok(&phone, &["journal", "--text", "A private line.", "--private"]);
    assert_eq!(ok(&phone, &["journal"]).as_array().unwrap().len(), 2);
    let before = ok(&phone, &["status"]);
    assert_eq!(before["sync"]["urgent_pending"], true);
    assert!(before["sync"]["pending_changes"].as_u64().unwrap() > 0);
    let report = ok(&phone, &["sync"]);
    assert_eq!(report["sent_changes"], true);
    let after = ok(&phone, &["status"]);
    assert_eq!(after["sync"]["pending_changes"], 0);
    assert_eq!(after["enrollment"]["device_id"], enrolled["device_id"]);

    let record = runtime.block_on(api.record(&client)).unwrap();
    let sessions = record["sessions"].as_array().unwrap();
    assert!(sessions[0]["started_at"].is_string(), "the clinic sees the started session");
    assert_eq!(sessions[0]["readiness"].as_array().unwrap().len(), 2, "the refusal and the start are both recorded");
    assert_eq!(record["journal"].as_array().unwrap().len(), 1, "only the shared entry reaches the clinic");
    let alerts = runtime.block_on(api.alerts("open")).unwrap();
    assert!(alerts.iter().any(|a| a["kind"] == "urgent_blood_pressure"), "{alerts:?}");

    // A wrong key is refused, naming where it came from and not its value.
    let wrong = Command::new(env!("CARGO_BIN_EXE_katctl"))
        .args(["device", "--data-dir"])
        .arg(&phone)
        .arg("status")
        .env("KATCORE_DEVICE_KEY", "00".repeat(32))
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains(&"00".repeat(32)));
    runtime.block_on(server.shutdown()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
