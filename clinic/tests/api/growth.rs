//! Bounded memory and work as records grow: the record cache's budget, a
//! `409` that keeps the cached record, the per-record size cap, and the
//! clinician's record view in windows.

use katcore::record::CheckInInput;
use katcore::sync::wire::SyncRequest;
use katcore_clinic::Limits;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestServer;

/// The value of an unlabelled series in the metrics text.
async fn gauge(server: &TestServer, name: &str) -> u64 {
    let text = server.metrics().await;
    let line = text.lines().find(|line| line.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_record_cache_keeps_to_its_budget_and_reloads_what_it_dropped() {
    let server = TestServer::start_with("cache-budget", |config| {
        config.limits = Limits { record_cache_bytes: 1, ..Limits::default() };
    })
    .await;
    let mut devices = Vec::new();
    for label in ["A", "B", "C"] {
        let mut device = server.client_with_device(label).await;
        device.record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
        assert_eq!(device.sync(&server).await, StatusCode::OK);
        devices.push(device);
    }
    // Only the record used last stays loaded.
    assert_eq!(gauge(&server, "katcore_clinic_record_cache_records").await, 1);
    // The dropped ones load again, whole.
    for device in &mut devices {
        device.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
        assert_eq!(device.sync(&server).await, StatusCode::OK);
        let record = server.record_json(&device.client_id).await;
        assert_eq!(record["check_ins"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_change_missing_its_dependencies_gets_409_and_the_cached_record_stays() {
    let server = TestServer::start("missing-deps").await;
    let mut device = server.client_with_device("A").await;
    device.record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
    assert_eq!(device.sync(&server).await, StatusCode::OK);
    assert_eq!(gauge(&server, "katcore_clinic_record_cache_records").await, 1);
    // Two changes; only the second is sent, so its dependency is missing.
    let before = device.record.heads();
    device.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
    let middle = device.record.heads();
    device.record.add_check_in(CheckInInput::Mood(7), chrono::Utc::now()).unwrap();
    let body =
        SyncRequest { since: before.clone(), heads: device.record.heads(), changes: device.record.save_after(&middle) };
    let response = device.post(&server, body.encode()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(gauge(&server, "katcore_clinic_record_cache_records").await, 1, "the record was not dropped");
    // The protocol's recovery brings both.
    assert_eq!(device.sync_with_retry(&server).await, StatusCode::OK);
    let record = server.record_json(&device.client_id).await;
    assert_eq!(record["check_ins"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_record_past_its_size_cap_is_refused_with_413() {
    let server = TestServer::start_with("record-cap", |config| {
        config.limits = Limits { max_record_bytes: 4096, ..Limits::default() };
    })
    .await;
    let mut device = server.client_with_device("A").await;
    device.record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
    assert_eq!(device.sync(&server).await, StatusCode::OK);
    for n in 0..200 {
        device.record.add_check_in(CheckInInput::Mood(n % 10), chrono::Utc::now()).unwrap();
    }
    let response = device.post(&server, device.request().encode()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "record_full");
    // Nothing of it was stored.
    let record = server.record_json(&device.client_id).await;
    assert_eq!(record["check_ins"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_record_view_comes_in_windows_and_names_what_it_cut() {
    let server = TestServer::start("record-window").await;
    let mut device = server.client_with_device("A").await;
    let day = |d: u32| format!("2026-05-{d:02}T12:00:00Z").parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    for d in 1..=9 {
        device.record.add_check_in(CheckInInput::Mood(5), day(d)).unwrap();
    }
    assert_eq!(device.sync(&server).await, StatusCode::OK);
    let get = |query: &str| {
        let path = format!("/v1/clients/{}/record?{query}", device.client_id);
        server.clinician(Method::GET, &path).send()
    };
    let times = |record: &Value| -> Vec<String> {
        record["check_ins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["completed_at"].as_str().unwrap()[..10].to_owned())
            .collect()
    };
    let whole = get("").await.unwrap();
    assert!(whole.headers().get("katcore-truncated").is_none());
    assert_eq!(times(&whole.json().await.unwrap()).len(), 9);
    let window = get("since=2026-05-03T00:00:00Z&until=2026-05-06T00:00:00Z").await.unwrap();
    assert_eq!(times(&window.json().await.unwrap()), ["2026-05-03", "2026-05-04", "2026-05-05"]);
    let limited = get("limit=2").await.unwrap();
    assert_eq!(limited.headers()["katcore-truncated"], "check_ins");
    assert_eq!(times(&limited.json().await.unwrap()), ["2026-05-08", "2026-05-09"]);
    for bad in ["limit=0", "limit=10001", "since=2026-05-06T00:00:00Z&until=2026-05-03T00:00:00Z", "until=tuesday"] {
        assert_eq!(get(bad).await.unwrap().status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
