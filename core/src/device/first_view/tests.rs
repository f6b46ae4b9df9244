//! The first view against the opened device: the same next session,
//! checklist and due prompts at every step of a journey, after merges,
//! after reopening, and never from a state older than the changes.

use std::path::{Path, PathBuf};

use chrono::Duration;

use super::*;
use crate::checklist::{Answer, BloodPressureReading, ReadinessStatus};
use crate::device::tests::answer_ready;
use crate::record::{CareRecord, JournalLinks};
use crate::store::StoreError;

fn key() -> StoreKey {
    StoreKey::from_bytes(&[5; 32]).unwrap()
}

fn store_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("katcore-first-view-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("device.db")
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The first view at `now` is what the opened device shows at `now`.
fn assert_first_view_matches(device: &Device, path: &Path, now: DateTime<Utc>) -> FirstView {
    let view = Device::first_view(path, &key(), "en", now).unwrap().expect("the store holds a current state");
    let upcoming = device.upcoming(now);
    assert_eq!(view.next_session, upcoming.first().cloned(), "next session at {now}");
    assert_eq!(view.checklist, upcoming.first().map(|s| device.evaluate(&s.id, "en").unwrap()), "checklist at {now}");
    assert_eq!(view.due_prompts, device.due_prompts("en", now), "due prompts at {now}");
    view
}

#[test]
fn the_first_view_follows_every_step_of_a_journey_and_survives_reopening() {
    let path = store_path("journey");
    let device = Device::open(&path, &key(), None).unwrap();
    let day0 = t("2026-05-01T09:00:00-04:00");
    let empty = assert_first_view_matches(&device, &path, day0);
    assert_eq!(empty.next_session, None);
    assert_eq!(empty.sync, FirstViewSync { enrolled: false, unsynced_writes: 0 });

    let first = device.schedule(t("2026-05-02T15:00:00-04:00"), "America/New_York").unwrap();
    let second = device.schedule(t("2026-05-09T15:00:00-04:00"), "America/New_York").unwrap();
    let view = assert_first_view_matches(&device, &path, day0);
    assert_eq!(view.next_session.as_ref().map(|s| s.id.as_str()), Some(first.id.as_str()));
    assert_eq!(view.checklist.as_ref().unwrap().status, ReadinessStatus::Incomplete);
    assert_eq!(view.sync.unsynced_writes, 2, "two sessions scheduled, never synced");

    // A reading at the urgent limit blocks: the first view says so too.
    let urgent = Answer::BloodPressure(BloodPressureReading { systolic: 182, diastolic: 114 });
    device.answer(&first.id, "blood_pressure", Some(&urgent), day0).unwrap();
    assert_first_view_matches(&device, &path, day0);
    answer_ready(&device, &first.id, day0);
    let ready = assert_first_view_matches(&device, &path, day0 + Duration::hours(20));
    assert_eq!(ready.checklist.unwrap().status, ReadinessStatus::Ready);

    let started = t("2026-05-02T15:05:00-04:00");
    device.start(&first.id, "en", started).unwrap();
    let during = assert_first_view_matches(&device, &path, started + Duration::hours(1));
    assert_eq!(during.next_session.unwrap().id, first.id, "a started session comes first until it ends");
    device.end(&first.id, started + Duration::hours(3)).unwrap();

    // Its integration prompts fall due; one is answered in the shared
    // journal, one privately, and a deleted answer makes its prompt due again.
    let later = started + Duration::days(3);
    let due = assert_first_view_matches(&device, &path, later).due_prompts;
    assert!(due.len() >= 2, "the default pack's first prompts are due three days on: {due:?}");
    let answer = |prompt: &DuePrompt, private: bool| {
        let links = JournalLinks { prompt_id: Some(prompt.prompt_id.clone()), session_id: Some(first.id.clone()) };
        device.write_journal("thoughts", &links, private, later).unwrap()
    };
    let shared = answer(&due[0], false);
    let private = answer(&due[1], true);
    assert_eq!(assert_first_view_matches(&device, &path, later).due_prompts.len(), due.len() - 2);
    device.delete_journal(&shared, later).unwrap();
    assert_first_view_matches(&device, &path, later);
    device.delete_journal(&private, later).unwrap();
    assert_eq!(assert_first_view_matches(&device, &path, later).due_prompts, due);

    // Writes that do not move the state (an entry answering nothing) keep it current.
    device.write_journal("a quiet day", &JournalLinks::default(), false, later).unwrap();
    assert_first_view_matches(&device, &path, later);

    device.cancel(&second.id, later).unwrap();
    for now in [day0, started, later, later + Duration::days(10), later + Duration::days(45)] {
        assert_first_view_matches(&device, &path, now);
    }

    drop(device);
    let reopened = Device::open(&path, &key(), None).unwrap();
    assert_first_view_matches(&reopened, &path, later);
}

#[test]
fn changes_merged_from_another_device_reach_the_first_view() {
    let path = store_path("merged");
    let phone = Device::open(&path, &key(), None).unwrap();
    let tablet = Device::open(&store_path("merged-tablet"), &key(), None).unwrap();
    let session = tablet.schedule(t("2026-05-02T15:00:00-04:00"), "America/New_York").unwrap();
    answer_ready(&tablet, &session.id, t("2026-05-01T20:00:00-04:00"));

    assert!(phone.store().merge_remote(&tablet.read(CareRecord::save)).unwrap());
    let view = assert_first_view_matches(&phone, &path, t("2026-05-02T09:00:00-04:00"));
    assert_eq!(view.checklist.unwrap().status, ReadinessStatus::Ready);
}

#[test]
fn a_state_older_than_the_changes_is_never_shown_and_opening_rebuilds_it() {
    let path = store_path("stale");
    let device = Device::open(&path, &key(), None).unwrap();
    let now = t("2026-05-01T09:00:00-04:00");
    assert!(Device::first_view(&path, &key(), "en", now).unwrap().is_some());
    drop(device);

    // An earlier version of the app appends a change without the state.
    let other = Device::open(&store_path("stale-other"), &key(), None).unwrap();
    other.schedule(t("2026-05-02T15:00:00-04:00"), "America/New_York").unwrap();
    Store::open(&path, &key()).unwrap().append_change(&other.read(CareRecord::save)).unwrap();
    assert_eq!(Device::first_view(&path, &key(), "en", now).unwrap(), None, "a stale state must not be shown");

    let reopened = Device::open(&path, &key(), None).unwrap();
    let view = assert_first_view_matches(&reopened, &path, now);
    assert!(view.next_session.is_some(), "the rebuilt state has the session the old app wrote");
}

#[test]
fn no_store_means_no_first_view_and_nothing_is_created_and_a_wrong_key_is_typed() {
    let path = store_path("absent");
    assert_eq!(Device::first_view(&path, &key(), "en", Utc::now()).unwrap(), None);
    assert!(!path.exists(), "asking for a first view must not create a store");

    drop(Device::open(&path, &key(), None).unwrap());
    let wrong = StoreKey::from_bytes(&[6; 32]).unwrap();
    assert!(matches!(
        Device::first_view(&path, &wrong, "en", Utc::now()),
        Err(DeviceError::Store(StoreError::WrongKey))
    ));
}
