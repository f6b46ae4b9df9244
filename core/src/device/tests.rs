//! The device aggregate through its own API: the gate, typed answers,
//! observers and the check-in scored once.

use std::sync::Mutex;

use super::*;
use crate::checklist::LastTaken;

fn key() -> StoreKey {
    StoreKey::from_bytes(&[9; 32]).unwrap()
}

fn open(name: &str) -> (Device, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("katcore-device-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (Device::open(&dir.join("device.db"), &key(), None).unwrap(), dir)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// Answers every item of the default pack so that the session is ready
/// (the first view's tests use it too).
pub(in crate::device) fn answer_ready(device: &Device, session: &str, now: DateTime<Utc>) {
    let pack = device.pack();
    for item in &pack.checklist {
        let answer = match &item.rule {
            crate::pack::Rule::TimeWindow { .. } => Answer::Time(LastTaken::NotRecently),
            crate::pack::Rule::BloodPressure => {
                Answer::BloodPressure(BloodPressureReading { systolic: 118, diastolic: 76 })
            }
            crate::pack::Rule::Attestation => Answer::YesNo(true),
            crate::pack::Rule::Choice { options } => {
                let pass = options.iter().find(|o| o.outcome == crate::pack::Outcome::Pass).unwrap();
                Answer::Choice(pass.value.clone())
            }
            crate::pack::Rule::FreeText => Answer::Text("ok".into()),
        };
        device.answer(session, &item.id, Some(&answer), now).unwrap();
    }
    for question in &pack.screening {
        device.answer(session, &question.id, Some(&Answer::YesNo(false)), now).unwrap();
    }
}

#[test]
fn start_is_refused_unless_ready_and_the_decision_is_recorded_either_way() {
    let (device, dir) = open("gate");
    let now = t("2026-05-01T10:00:00-04:00");
    let session = device.schedule(t("2026-05-01T15:00:00-04:00"), "America/New_York").unwrap();
    let refused = device.start(&session.id, "en", t("2026-05-01T15:00:00-04:00")).unwrap_err();
    let DeviceError::NotReady { status, evaluation } = refused else { panic!("expected NotReady, got {refused:?}") };
    assert_eq!(status, ReadinessStatus::Incomplete);
    assert_eq!(evaluation.status, status);
    assert_eq!(device.session(&session.id).unwrap().started_at, None, "a refused start starts nothing");
    assert_eq!(device.read(|r| r.readiness_history(&session.id)).len(), 1, "the refusal is recorded");

    answer_ready(&device, &session.id, now);
    let evaluation = device.start(&session.id, "en", t("2026-05-01T15:00:00-04:00")).unwrap();
    assert_eq!(evaluation.status, ReadinessStatus::Ready);
    let started = device.session(&session.id).unwrap().started_at.unwrap();
    assert_eq!(started.to_rfc3339(), "2026-05-01T15:00:00-04:00", "started in the session's zone");
    assert_eq!(device.read(|r| r.readiness_history(&session.id)).len(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_blocking_answer_refuses_the_start_as_blocked_and_a_cancelled_session_records_nothing() {
    let (device, dir) = open("blocked");
    let now = t("2026-05-01T10:00:00-04:00");
    let session = device.schedule(t("2026-05-01T15:00:00-04:00"), "America/New_York").unwrap();
    answer_ready(&device, &session.id, now);
    let monitor = Answer::YesNo(false);
    device.answer(&session.id, "monitor_present", Some(&monitor), now).unwrap();
    match device.start(&session.id, "en", now) {
        Err(DeviceError::NotReady { status: ReadinessStatus::Blocked, .. }) => {}
        other => panic!("expected a blocked refusal, got {other:?}"),
    }
    device.cancel(&session.id, now).unwrap();
    let decisions = device.read(|r| r.readiness_history(&session.id)).len();
    assert!(matches!(device.start(&session.id, "en", now), Err(DeviceError::Record(RecordError::InvalidInput { .. }))));
    assert_eq!(device.read(|r| r.readiness_history(&session.id)).len(), decisions);
    std::fs::remove_dir_all(dir).unwrap();
}

#[derive(Default)]
struct Seen(Mutex<Vec<CareChange>>, Mutex<Vec<SyncStatus>>);

impl Observer for Seen {
    fn record_changed(&self, change: CareChange) {
        self.0.lock().unwrap().push(change);
    }
    fn sync_status_changed(&self, status: &SyncStatus) {
        self.1.lock().unwrap().push(status.clone());
    }
}

#[test]
fn observers_hear_each_durable_write_with_the_pending_count_and_urgency() {
    let (device, dir) = open("observers");
    let seen = Arc::new(Seen::default());
    let subscription = device.subscribe(seen.clone());
    let now = t("2026-05-01T10:00:00-04:00");
    device.record_blood_pressure(BloodPressureReading { systolic: 120, diastolic: 80 }, None, now).unwrap();
    device.record_blood_pressure(BloodPressureReading { systolic: 190, diastolic: 95 }, None, now).unwrap();
    device.write_journal("a private line", &JournalLinks::default(), true, now).unwrap();
    assert_eq!(*seen.0.lock().unwrap(), [CareChange::Wellbeing, CareChange::Wellbeing, CareChange::Journal]);
    let statuses = seen.1.lock().unwrap().clone();
    assert_eq!(statuses[0].pending_changes, 1);
    assert!(!statuses[0].urgent_pending, "a normal reading is not urgent");
    assert!(statuses[1].urgent_pending, "an urgent reading is pending");
    assert!(!statuses[1].enrolled);
    drop(subscription);
    device.record_mood(5, now).unwrap();
    assert_eq!(seen.0.lock().unwrap().len(), 3, "a dropped subscription hears nothing");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_urgent_check_in_carries_the_crisis_contacts_and_is_recorded_once() {
    let (device, dir) = open("check-in");
    let now = t("2026-05-01T10:00:00-04:00");
    let result = device.check_in(InstrumentKind::Phq9, vec![1, 1, 1, 1, 1, 1, 1, 1, 1], "en", now).unwrap();
    assert!(result.outcome.score.urgent);
    assert_eq!(result.outcome.score.total, 9);
    assert!(result.outcome.crisis_message.is_some());
    assert!(!result.outcome.crisis_contacts.is_empty());
    assert_eq!(device.check_ins().len(), 1);
    assert_eq!(device.check_ins()[0].id, result.check_in_id);
    let wrong = device.check_in(InstrumentKind::Gad7, vec![4; 7], "en", now).unwrap_err();
    assert!(matches!(wrong, DeviceError::Record(RecordError::InvalidInput { ref field, .. }) if field == "answers"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn without_a_transport_enrollment_and_sync_say_so() {
    let (device, dir) = open("no-transport");
    let error = futures_lite_block_on(device.sync(SyncTrigger::User)).unwrap_err();
    assert!(matches!(error, DeviceError::InvalidInput { ref field, .. } if field == "transport"));
    assert!(device.enrollment().unwrap().is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Polls a future that completes without waiting (the transport check).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}
