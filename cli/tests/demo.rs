//! `katctl demo` end to end: the real binary, a real clinic server on
//! loopback, real sync. The output's key facts are checked, not its wording.

use std::process::Command;

fn katctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_katctl")).args(args).output().expect("katctl runs")
}

#[test]
fn the_demo_walks_a_whole_session_and_converges() {
    let dir = std::env::temp_dir().join(format!("katctl-demo-test-{}", std::process::id()));
    let out = katctl(&["demo", "--plain", "--data-dir", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let position = |needle: &str| stdout.find(needle).unwrap_or_else(|| panic!("missing {needle:?} in:\n{stdout}"));
    // Step 2: reminders in the order they fire: the day-before ones, then food, then drink.
    let alcohol = position("No more alcohol or drugs before your session");
    let food = position("Time to stop eating solid food");
    let drink = position("Time to stop drinking liquids");
    assert!(alcohol < food && food < drink, "reminders out of time order:\n{stdout}");
    // Step 3: wait, then blocked and urgent, then ready — in that order.
    let wait = position("Readiness: WAIT — the earliest start is");
    let blocked = position("Readiness: BLOCKED — URGENT");
    let ready = position("Readiness: READY");
    assert!(wait < blocked && blocked < ready);
    // Step 6: the alert reached the clinic, all views agree, the private entry stayed home.
    position("Clinic alert: urgent blood pressure");
    // Its reading is kept though the client measured again (every answer is kept).
    position("for the reading 182/114");
    position("All three views agree: 2 sessions, 1 shared journal entry, 1 side effect, 1 clinician note");
    position("The private entry is on the phone only");
    position("(quiet hours)");
    // The clinic measured each device's clock when it synced.
    let clocks = stdout.lines().filter(|line| line.contains(".db (clock ") && line.ends_with(" the clinic's)"));
    assert_eq!(clocks.count(), 2, "both devices' clocks:\n{stdout}");
    position("demo finished: ok");
    assert!(!stdout.contains('\x1b'), "plain output has no colour codes");
    // --data-dir keeps the databases.
    for file in ["clinic.db", "phone.db", "tablet.db", "phone.key"] {
        assert!(dir.join(file).exists(), "{file} kept");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_demo_flags_exit_2_with_a_message() {
    let out = katctl(&["demo", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let out = katctl(&["demo", "--clinic", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2), "--clinic needs --token");
    let out = katctl(&["demo", "--plain", "--tz", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
}
