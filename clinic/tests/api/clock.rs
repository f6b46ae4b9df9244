//! The clinic's own time (docs/record-format.md, "The clinic's own time";
//! docs/sync-protocol.md, "The device's clock"): a receipt time for every
//! entry, the device's clock offset measured at each sync, and a score
//! baseline a backdated check-in cannot take over.

use chrono::{DateTime, Duration, Utc};
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::CheckInInput;
use katcore::sync::wire::CONTENT_TYPE;
use katcore::sync::DEVICE_TIME_HEADER;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Device, TestServer};

/// The open alerts of the clinic as (key, kind).
async fn alert_kinds(server: &TestServer) -> Vec<(String, String)> {
    let alerts: Value = server.clinician(Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    let mut kinds: Vec<(String, String)> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["kind"].as_str().unwrap().to_owned()))
        .collect();
    kinds.sort();
    kinds
}

/// One sync of `phone` that sends `device_time` as its clock.
async fn sync_at(server: &TestServer, phone: &mut Device, device_time: DateTime<Utc>) -> StatusCode {
    let response = server
        .http
        .post(server.url("/v1/sync"))
        .bearer_auth(&phone.token)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(DEVICE_TIME_HEADER, device_time.timestamp_millis().to_string())
        .body(phone.request().encode())
        .send()
        .await
        .unwrap();
    phone.apply(response).await
}

#[tokio::test]
async fn a_backdated_check_in_never_becomes_the_baseline() {
    let mut server = TestServer::start("clock-baseline").await;
    let mut phone = server.client_with_device("client-1101").await;
    let now = Utc::now();
    let phq9 = |answers: Vec<u8>| CheckInInput::Instrument(InstrumentKind::Phq9, answers);
    // The first check-in the clinic receives: total 4.
    phone.record.add_check_in(phq9(vec![1, 1, 1, 1, 0, 0, 0, 0, 0]), now - Duration::days(7)).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    // A restart: the baseline comes back from the stored receipts, not the phones' times.
    server.restart().await;

    // A check-in of 12 the phone dates a year before the first. By its own
    // time it would be the baseline, and the 14 below no rise at all.
    let backdated =
        phone.record.add_check_in(phq9(vec![2, 2, 2, 2, 2, 1, 1, 0, 0]), now - Duration::days(400)).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let later = phone.record.add_check_in(phq9(vec![2, 2, 2, 2, 2, 2, 1, 1, 0]), now).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    assert_eq!(
        alert_kinds(&server).await,
        {
            let mut expected = vec![
                (format!("c:{}", backdated.id), "score_worsened".to_owned()),
                (format!("c:{}", later.id), "score_worsened".to_owned()),
            ];
            expected.sort();
            expected
        },
        "both rose 5 or more over the first check-in received (4)"
    );
    // The phone's own view is by its times: there, the backdated one is the baseline.
    assert_eq!(phone.record.score_baseline(InstrumentKind::Phq9).map(|b| b.id), Some(backdated.id));
}

#[tokio::test]
async fn every_entry_gets_the_time_the_clinic_first_received_it() {
    let server = TestServer::start("clock-receipts").await;
    let mut phone = server.client_with_device("client-1102").await;
    let pack = Pack::default_pack();
    let before = Utc::now();
    let start = (before + Duration::days(2)).fixed_offset();
    let session = phone.record.schedule_session(start, "UTC", katcore::record::Party::Client).unwrap();
    phone.record.record_answer(&pack, &session, "monitor_present", &serde_json::json!(true), before).unwrap();
    let reading = katcore::checklist::BloodPressureReading { systolic: 128, diastolic: 82 };
    // Dated two years ahead: the receipt is the clinic's time all the same.
    let vitals = phone.record.add_vitals(&pack, reading, before + Duration::days(730), None).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let after = Utc::now();

    let storage = server.storage();
    let receipts = storage.entry_receipts(&phone.client_id, "").unwrap();
    let answer = phone.record.answer_history(&session)[0].id.clone().unwrap();
    let keys = [format!("v:{vitals}"), format!("s:{session}"), format!("s:{session}/h:{answer}")];
    for key in &keys {
        let received = receipts.get(key).unwrap_or_else(|| panic!("{key} has no receipt: {receipts:?}"));
        assert!(before <= *received && *received <= after, "{key}: {received}");
    }
    assert_eq!(storage.entry_receipts(&phone.client_id, "v:").unwrap().len(), 1, "the prefix selects");

    // Receipt is the first time only: a later change to the session leaves it.
    let first = receipts[&format!("s:{session}")];
    phone.record.record_answer(&pack, &session, "monitor_present", &serde_json::json!(false), Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let again = storage.entry_receipts(&phone.client_id, "").unwrap();
    assert_eq!(again[&format!("s:{session}")], first);
    assert_eq!(again.len(), receipts.len() + 1, "the second answer is a new entry with its own receipt");
}

#[tokio::test]
async fn the_device_clock_offset_is_measured_at_each_sync_and_shown() {
    let server = TestServer::start("clock-offset").await;
    let mut phone = server.client_with_device("client-1103").await;
    let devices = |server: &TestServer, client_id: String| {
        let request = server.clinician(Method::GET, &format!("/v1/clients/{client_id}/devices"));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let listed = devices(&server, phone.client_id.clone()).await;
    assert!(listed[0].get("clock_offset_ms").is_none(), "an app that sends no time is not measured: {listed}");

    assert_eq!(sync_at(&server, &mut phone, Utc::now() + Duration::hours(3)).await, StatusCode::OK);
    let offset = devices(&server, phone.client_id.clone()).await[0]["clock_offset_ms"].as_i64().unwrap();
    assert!((offset - 3 * 3_600_000).abs() < 60_000, "about three hours ahead: {offset}");
    let metrics = server.metrics().await;
    assert!(metrics.contains("katcore_clinic_device_clocks_ahead_total 1\n"), "{metrics}");
    assert!(metrics.contains("katcore_clinic_device_clock_offset_seconds_count 1\n"));

    // A sync without the time keeps the last measurement; one with it replaces it.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let kept = devices(&server, phone.client_id.clone()).await[0]["clock_offset_ms"].as_i64().unwrap();
    assert_eq!(kept, offset);
    assert_eq!(sync_at(&server, &mut phone, Utc::now() - Duration::seconds(40)).await, StatusCode::OK);
    let behind = devices(&server, phone.client_id.clone()).await[0]["clock_offset_ms"].as_i64().unwrap();
    assert!((-100_000..=-39_000).contains(&behind), "about 40 s behind: {behind}");

    // A time that is not one is ignored, and the sync goes on.
    let response = server
        .http
        .post(server.url("/v1/sync"))
        .bearer_auth(&phone.token)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(DEVICE_TIME_HEADER, "tomorrow")
        .body(phone.request().encode())
        .send()
        .await
        .unwrap();
    assert_eq!(phone.apply(response).await, StatusCode::OK);
    assert_eq!(devices(&server, phone.client_id.clone()).await[0]["clock_offset_ms"].as_i64(), Some(behind));
}
