//! Devices and a clinician editing offline, then syncing with a real clinic
//! server over real sockets: convergence in every order, access control,
//! revocation, packs, faults in the network, and backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};
use katcore::checklist::BloodPressureReading;
use katcore::device::DeviceError;
use katcore::instruments::InstrumentKind;
use katcore::record::{CheckInInput, JournalLinks, Severity};
use katcore::sync::{PackVersion, SyncError, SyncTrigger};
use katcore_e2e::fault_proxy::{Fault, FaultProxy};
use katcore_e2e::{Clinic, Device};
use serde_json::Value;

fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn sync(device: &Device) -> katcore::sync::SyncReport {
    device.sync(SyncTrigger::User).await.expect("sync")
}

fn count(record: &Value, part: &str) -> usize {
    record[part].as_array().map_or(0, Vec::len)
}

/// Both devices and the clinic edit while apart; the devices then sync in
/// the given order (each twice). Everything converges and nothing is lost
/// or duplicated.
async fn scenario(order: [usize; 2]) {
    let clinic = Clinic::start("converge").await;
    let client = clinic.api.create_client("client-001").await;
    let session = clinic.api.schedule_session(&client, "2026-12-02T15:00:00-05:00", "America/New_York").await;
    let phone = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    let tablet = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "tablet").await;
    sync(&phone).await;
    sync(&tablet).await;
    assert!(phone.store().read(|r| r.session(&session).is_some()), "the phone sees the clinic's session");

    // Offline: each replica edits.
    let pack = katcore::pack::Pack::default_pack();
    phone
        .store()
        .update(|r| r.record_answer(&pack, &session, "monitor_present", &serde_json::json!(true), now()))
        .unwrap();
    phone
        .store()
        .update(|r| r.add_vitals(&pack, BloodPressureReading { systolic: 124, diastolic: 80 }, now(), Some(&session)))
        .unwrap();
    phone.store().write_journal_entry("Phone: calm morning.", &JournalLinks::default(), false, now()).unwrap();
    phone.store().write_journal_entry("Phone: only for me.", &JournalLinks::default(), true, now()).unwrap();
    tablet.store().write_journal_entry("Tablet: evening thoughts.", &JournalLinks::default(), false, now()).unwrap();
    tablet.store().update(|r| r.add_check_in(CheckInInput::Mood(7), now())).unwrap();
    tablet
        .store()
        .update(|r| r.report_side_effect(&pack, "nausea_vomiting", Severity::Mild, now(), Some(&session)))
        .unwrap();
    clinic.api.move_session(&client, &session, "2026-12-03T15:00:00-05:00").await;
    clinic.api.add_note(&client, "Moved at the client's request.").await;

    let devices = [&phone, &tablet];
    for round in 0..2 {
        for &i in &order {
            let report = sync(devices[i]).await;
            assert_eq!(report.round_trips, 1, "round {round}: one round trip");
        }
    }

    let server = clinic.api.record(&client).await;
    let (p, t) = (phone.record_json(), tablet.record_json());
    assert_eq!(p, t, "phone and tablet agree");
    assert_eq!(p, server, "devices and clinic agree");
    assert_eq!(count(&server, "journal"), 2, "two shared entries, no duplicates");
    assert_eq!(count(&server, "vitals"), 1);
    assert_eq!(count(&server, "check_ins"), 1);
    assert_eq!(count(&server, "side_effects"), 1);
    assert_eq!(count(&server, "clinician_notes"), 1);
    assert_eq!(server["sessions"][0]["scheduled_start"], "2026-12-03T15:00:00-05:00");
    assert_eq!(server["sessions"][0]["answers"]["monitor_present"], true);
    assert!(!server.to_string().contains("only for me"), "the private entry stays on the phone");
    assert!(phone.store().journal().iter().any(|e| e.private && e.text == "Phone: only for me."));
    assert_eq!(phone.sync_status().pending_changes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_when_the_phone_syncs_first() {
    scenario([0, 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_when_the_tablet_syncs_first() {
    scenario([1, 0]).await;
}

/// The first view counts the changes the last sync did not send: none right
/// after a sync (the clinic's changes it brought are synced too), one more
/// per write until the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_view_counts_the_writes_no_sync_has_sent() {
    let clinic = Clinic::start("first-view").await;
    let client = clinic.api.create_client("client-fv").await;
    let session = clinic.api.schedule_session(&client, "2026-12-02T15:00:00-05:00", "America/New_York").await;
    let phone = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "first-view").await;
    let key = katcore::store::StoreKey::from_bytes(&[7; 32]).unwrap();
    let view =
        || katcore::device::Device::first_view(&phone.path, &key, "en", now()).unwrap().expect("a current state").sync;
    assert!(view().enrolled);

    sync(&phone).await;
    assert!(phone.store().read(|r| r.session(&session).is_some()), "the sync brought the clinic's session");
    assert_eq!(view().unsynced_writes, 0, "what the sync received is not the phone's to send");
    phone.write_journal("One.", &JournalLinks::default(), false, now()).unwrap();
    phone.write_journal("Two.", &JournalLinks::default(), false, now()).unwrap();
    assert_eq!(view().unsynced_writes, 2);
    sync(&phone).await;
    assert_eq!(view().unsynced_writes, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_restores_the_record_in_one_round_trip() {
    let clinic = Clinic::start("restore").await;
    let client = clinic.api.create_client("client-002").await;
    let phone = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    for i in 0..30 {
        phone.store().write_journal_entry(&format!("Entry {i}."), &JournalLinks::default(), false, now()).unwrap();
    }
    sync(&phone).await;
    let fresh = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "new-phone").await;
    let report = sync(&fresh).await;
    assert_eq!(report.round_trips, 1);
    assert!(report.received_changes);
    assert_eq!(fresh.record_json(), phone.record_json());
    // Each device sent its clock with the sync: on one machine, in step.
    for device in clinic.api.devices(&client).await {
        let offset = device["clock_offset_ms"].as_i64().unwrap_or_else(|| panic!("not measured: {device}"));
        assert!(offset.abs() < 5_000, "{device}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_isolated_between_clients_and_clinics() {
    let clinic = Clinic::start("isolation").await;
    let first = clinic.api.create_client("client-a").await;
    let second = clinic.api.create_client("client-b").await;
    let a = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&first).await, "a").await;
    let b = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&second).await, "b").await;
    a.store().write_journal_entry("A's words.", &JournalLinks::default(), false, now()).unwrap();
    sync(&a).await;
    sync(&b).await;
    assert!(!b.record_json().to_string().contains("A's words."), "B's device never receives A's record");
    assert!(!clinic.api.record(&second).await.to_string().contains("A's words."));

    // A clinician of another clinic on the same server cannot read A's record.
    let other = clinic.database.init_clinic("Other Clinic", "Dr. Stone").unwrap();
    let outsider = katcore_e2e::ClinicianApi::new(&clinic.url(), &other.clinician_token);
    let (status, body) = outsider.call(reqwest::Method::GET, &format!("/v1/clients/{first}/record"), None).await;
    assert!(status == 403 || status == 404, "{status}");
    assert!(!body.to_string().contains("A's words."));
    // And a device token is no clinician token.
    let (status, _) = katcore_e2e::ClinicianApi::new(&clinic.url(), "kd_not-a-clinician")
        .call(reqwest::Method::GET, "/v1/clients", None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_told_clearly_and_stops() {
    let clinic = Clinic::start("revoke").await;
    let client = clinic.api.create_client("client-003").await;
    let phone = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    sync(&phone).await;
    clinic.api.revoke_device(&phone.device_id).await;
    phone.store().write_journal_entry("Written after revocation.", &JournalLinks::default(), false, now()).unwrap();
    let err = phone.sync(SyncTrigger::User).await.unwrap_err();
    assert!(matches!(err, DeviceError::Sync(SyncError::Revoked)), "{err}");
    let status = phone.sync_status();
    assert!(status.stopped);
    assert!(status.last_error.unwrap().contains("disconnected"));
    // Automatic syncing stopped, and says why: revoked, not a generic refusal.
    assert!(matches!(phone.sync(SyncTrigger::Automatic).await, Err(DeviceError::Sync(SyncError::Revoked))));
    // The entry is still safe on the phone.
    assert_eq!(phone.store().journal().len(), 1);
}

fn stricter_pack(version: u32) -> Value {
    let mut pack: Value = serde_json::from_str(katcore::pack::Pack::default_pack_json()).unwrap();
    pack["id"] = "org.example.clinic".into();
    pack["version"] = version.into();
    pack["thresholds"]["bp_limit"]["systolic"] = 130.into();
    pack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_pack_arrives_once_and_a_tampered_one_is_refused() {
    let clinic = Clinic::start("packs").await;
    let client = clinic.api.create_client("client-004").await;
    // The device talks through a proxy that tampers with pack downloads on demand.
    let proxy = FaultProxy::start(clinic.server.addr(), |_| Fault::Pass).await;
    let phone = Device::enroll(&proxy.url(), &clinic.api.enrollment_code(&client).await, "phone").await;

    clinic.api.publish_pack(&clinic.sign(&stricter_pack(2))).await;
    let report = sync(&phone).await;
    assert_eq!(report.pack_activated, Some(PackVersion { id: "org.example.clinic".to_owned(), version: 2 }));
    assert_eq!(phone.pack().thresholds.bp_limit.systolic, 130);
    let report = sync(&phone).await;
    assert!(!report.pack_fetched, "an unchanged pack is not downloaded again");

    clinic.api.publish_pack(&clinic.sign(&stricter_pack(3))).await;
    fn tamper(response: Vec<u8>) -> Vec<u8> {
        // Only pack downloads (JSON); sync bodies pass untouched.
        if !response.windows(11).any(|w| w == b"signed-pack") {
            return response;
        }
        // Same length, different limit: the signature no longer matches.
        let text = String::from_utf8_lossy(&response).replace("\"systolic\": 130", "\"systolic\": 190");
        let text = text.replace("\"systolic\":130", "\"systolic\":190");
        text.into_bytes()
    }
    proxy.set_schedule(|_| Fault::Rewrite(tamper));
    let report = sync(&phone).await;
    assert!(report.pack_fetched);
    assert!(report.pack_activated.is_none());
    assert!(report.pack_refused.unwrap().contains("signature"));
    let active = phone.pack();
    assert_eq!((active.version, active.thresholds.bp_limit.systolic), (2, 130), "the old pack stays in force");
}

/// Syncs through a proxy that drops connections mid-request and
/// mid-response, delays and duplicates requests: everything still arrives
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_a_faulty_network() {
    let clinic = Clinic::start("faults").await;
    let client = clinic.api.create_client("client-005").await;
    let faults = [
        Fault::DropMidRequest,
        Fault::DropMidResponse,
        Fault::Duplicate,
        Fault::Delay(Duration::from_millis(50)),
        Fault::Pass,
    ];
    let proxy = FaultProxy::start(clinic.server.addr(), move |n| faults[n % faults.len()]).await;
    // Enroll directly (faults are for sync), then talk through the proxy.
    let code_a = clinic.api.enrollment_code(&client).await;
    let code_b = clinic.api.enrollment_code(&client).await;
    proxy.set_schedule(|_| Fault::Pass);
    let phone = Device::enroll(&proxy.url(), &code_a, "phone").await;
    let tablet = Device::enroll(&proxy.url(), &code_b, "tablet").await;
    proxy.set_schedule(move |n| faults[n % faults.len()]);

    let mut failures = 0;
    for i in 0..20 {
        phone.store().write_journal_entry(&format!("phone {i}"), &JournalLinks::default(), false, now()).unwrap();
        tablet.store().write_journal_entry(&format!("tablet {i}"), &JournalLinks::default(), false, now()).unwrap();
        if i % 5 == 0 {
            clinic.api.add_note(&client, &format!("note {i}")).await;
        }
        for device in [&phone, &tablet] {
            if device.sync(SyncTrigger::User).await.is_err() {
                failures += 1;
            }
        }
    }
    assert!(failures > 0, "the proxy did inject failures");
    proxy.set_schedule(|_| Fault::Pass);
    for device in [&phone, &tablet, &phone] {
        sync(device).await;
    }
    let server = clinic.api.record(&client).await;
    assert_eq!(phone.record_json(), server);
    assert_eq!(tablet.record_json(), server);
    let texts: Vec<&str> = server["journal"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), 40, "every entry exactly once");
    for i in 0..20 {
        assert!(texts.contains(&format!("phone {i}").as_str()) && texts.contains(&format!("tablet {i}").as_str()));
    }
    assert_eq!(count(&server, "clinician_notes"), 4);
    let injected = proxy.counts.injected.load(std::sync::atomic::Ordering::SeqCst);
    println!("faults injected: {injected}, failed syncs: {failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_honours_retry_after_and_a_user_sync_ignores_it() {
    let clinic = Clinic::start("backoff").await;
    let client = clinic.api.create_client("client-006").await;
    let proxy = FaultProxy::start(clinic.server.addr(), |_| Fault::Pass).await;
    let phone = Device::enroll(&proxy.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    phone.store().write_journal_entry("Waiting to be sent.", &JournalLinks::default(), false, now()).unwrap();

    proxy.set_schedule(|_| Fault::Unavailable(120));
    let before = Utc::now();
    let err = phone.sync(SyncTrigger::User).await.unwrap_err();
    assert!(matches!(err, DeviceError::Sync(SyncError::ServerBusy { status: 503, .. })), "{err}");
    let status = phone.sync_status();
    assert!(status.next_attempt.unwrap() >= before + chrono::Duration::seconds(119));
    assert_eq!(status.pending_changes, 1);
    assert!(matches!(phone.sync(SyncTrigger::Automatic).await, Err(DeviceError::Sync(SyncError::BackingOff { .. }))));

    // Offline: automatic syncs do not even try; back online, a sync is suggested.
    assert!(!phone.set_online(false));
    assert!(matches!(phone.sync(SyncTrigger::Automatic).await, Err(DeviceError::Sync(SyncError::Offline))));
    proxy.set_schedule(|_| Fault::Pass);
    assert!(phone.set_online(true), "back online with a pending change");
    sync(&phone).await;
    let status = phone.sync_status();
    assert_eq!((status.pending_changes, status.last_error), (0, None));
    assert!(status.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_check_in_raises_a_clinic_alert_on_sync() {
    let clinic = Clinic::start("alerts").await;
    let client = clinic.api.create_client("client-007").await;
    let phone = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    phone
        .store()
        .update(|r| {
            r.add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 1]), now())
        })
        .unwrap();
    assert!(phone.sync_status().urgent_pending);
    sync(&phone).await;
    assert!(!phone.sync_status().urgent_pending);
    let alerts = clinic.api.alerts("open").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "crisis_check_in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_the_server_that_do_not_read_are_a_protocol_error_never_a_damaged_store() {
    let clinic = Clinic::start("server-bytes").await;
    let client = clinic.api.create_client("client-009").await;
    let proxy = FaultProxy::start(clinic.server.addr(), |_| Fault::Pass).await;
    let phone = Device::enroll(&proxy.url(), &clinic.api.enrollment_code(&client).await, "phone").await;
    let tablet = Device::enroll(&clinic.url(), &clinic.api.enrollment_code(&client).await, "tablet").await;
    tablet.write_journal("Written on the tablet.", &JournalLinks::default(), false, now()).unwrap();
    sync(&tablet).await;

    fn corrupt_the_changes(mut response: Vec<u8>) -> Vec<u8> {
        // A sync answer ends with the changes: damage their last bytes (the
        // chunk's content, so its checksum no longer matches), same length.
        if response.windows(6).any(|w| w == b"katcor") {
            let len = response.len();
            for byte in &mut response[len - 8..] {
                *byte ^= 0x5a;
            }
        }
        response
    }
    proxy.set_schedule(|_| Fault::Rewrite(corrupt_the_changes));
    let before = phone.read(|r| r.heads());
    let error = phone.sync(SyncTrigger::User).await.unwrap_err();
    assert!(matches!(error, DeviceError::Sync(SyncError::Protocol { .. })), "{error:?}");
    assert_eq!(phone.read(|r| r.heads()), before, "nothing of the damaged answer was merged");

    proxy.set_schedule(|_| Fault::Pass);
    sync(&phone).await;
    assert!(phone.journal().iter().any(|e| e.text == "Written on the tablet."), "a clean answer heals it");
}
