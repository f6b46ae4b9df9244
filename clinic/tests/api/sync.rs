//! The sync exchange: round trips, idempotent replays, history_missing,
//! restore, malformed and oversized bodies, persistence across restarts.

use automerge::ChangeHash;
use chrono::{DateTime, Utc};
use katcore::record::{CareRecord, CheckInInput, JournalLinks, Party};
use katcore::sync::wire::{SyncRequest, SyncResponse};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn changes_travel_both_ways_and_merge() {
    let server = TestServer::start("sync-round-trip").await;
    let mut phone = server.client_with_device("client-1").await;
    phone.record.add_check_in(CheckInInput::Mood(7), at("2026-05-02T09:00:00Z")).unwrap();
    phone.record.write_journal_entry("Slept well.", &JournalLinks::default(), at("2026-05-02T09:05:00Z")).unwrap();

    // First sync: everything goes up, nothing new comes back.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    assert_eq!(phone.server_heads, phone.record.heads());
    let record = server.record_json(&phone.client_id).await;
    assert_eq!(record["check_ins"][0]["score"], 7);
    assert_eq!(record["journal"][0]["text"], "Slept well.");

    // The clinic edits while the phone is offline and edits too.
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{}/sessions", phone.client_id))
        .json(&json!({"start": "2026-06-01T15:00:00-04:00", "time_zone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{}/notes", phone.client_id))
        .json(&json!({"text": "Discussed set and setting."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    phone.record.add_check_in(CheckInInput::Mood(4), at("2026-05-03T09:00:00Z")).unwrap();

    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    assert_eq!(phone.record.sessions().len(), 1);
    assert_eq!(phone.record.sessions()[0].scheduled_by, Party::Clinic);
    assert_eq!(phone.record.clinician_notes()[0].author, "Dr. Rivera");
    assert_eq!(phone.record.check_ins().len(), 2);
    assert_eq!(phone.server_heads, phone.record.heads());
    assert_eq!(server.record_json(&phone.client_id).await, phone.record.to_json());
}

#[tokio::test]
async fn a_replayed_request_changes_nothing() {
    let server = TestServer::start("sync-replay").await;
    let mut phone = server.client_with_device("client-2").await;
    phone.record.add_check_in(CheckInInput::Mood(5), at("2026-05-02T09:00:00Z")).unwrap();
    let body = phone.request().encode();

    let first = phone.post(&server, body.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = first.bytes().await.unwrap();
    let before = server.record_json(&phone.client_id).await;
    // The response was "lost": the same request again, twice.
    for _ in 0..2 {
        let again = phone.post(&server, body.clone()).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.bytes().await.unwrap(), first);
    }
    assert_eq!(server.record_json(&phone.client_id).await, before);
    assert_eq!(before["check_ins"].as_array().unwrap().len(), 1);
    let answer = SyncResponse::decode(&first).unwrap();
    assert_eq!(answer.heads, phone.record.heads());
}

#[tokio::test]
async fn unknown_history_is_409_and_a_full_resend_heals() {
    let mut server = TestServer::start("sync-409").await;
    let mut phone = server.client_with_device("client-3").await;
    phone.record.add_check_in(CheckInInput::Mood(6), at("2026-05-02T09:00:00Z")).unwrap();

    // `since` names a change the server never had.
    let mut request = phone.request();
    request.since = vec![ChangeHash([7; 32])];
    let response = phone.post(&server, request.encode()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "history_missing");
    assert_eq!(server.record_json(&phone.client_id).await["check_ins"], json!([]));

    // Changes whose dependencies the server lacks: 409, and nothing sticks
    // that could block later syncs.
    let base = phone.record.heads();
    phone.record.add_check_in(CheckInInput::Mood(8), at("2026-05-03T09:00:00Z")).unwrap();
    let request =
        SyncRequest { since: Vec::new(), heads: phone.record.heads(), changes: phone.record.save_after(&base) };
    assert_eq!(phone.post(&server, request.encode()).await.status(), StatusCode::CONFLICT);

    // A full sync heals that; then the server loses the record (restored
    // from an old backup): the phone's `since` is unknown → 409 → the
    // protocol's answer, one resend with the whole document, restores it.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    server.sql("DELETE FROM record_changes; DELETE FROM record_snapshots;").await;
    server.restart().await;
    assert_eq!(server.record_json(&phone.client_id).await["check_ins"], json!([]));
    assert_eq!(phone.sync(&server).await, StatusCode::CONFLICT);
    assert_eq!(phone.sync_with_retry(&server).await, StatusCode::OK);
    assert_eq!(server.record_json(&phone.client_id).await["check_ins"].as_array().unwrap().len(), 2);
    assert_eq!(phone.server_heads, phone.record.heads());
}

#[tokio::test]
async fn a_new_device_restores_the_whole_record_in_one_round_trip() {
    let server = TestServer::start("sync-restore").await;
    let mut phone = server.client_with_device("client-4").await;
    phone.record.add_check_in(CheckInInput::Mood(3), at("2026-05-02T09:00:00Z")).unwrap();
    phone.record.write_journal_entry("First entry.", &JournalLinks::default(), at("2026-05-02T10:00:00Z")).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let mut tablet = server.new_device(&phone.client_id).await;
    let request = SyncRequest { since: Vec::new(), heads: Vec::new(), changes: Vec::new() };
    let response = tablet.post(&server, request.encode()).await;
    assert_eq!(tablet.apply(response).await, StatusCode::OK);
    assert_eq!(tablet.record.heads(), phone.record.heads());
    assert_eq!(tablet.record.to_json(), phone.record.to_json());
    // The answer was a whole saved document: it loads on its own.
    assert!(CareRecord::load(&tablet.record.save(), automerge::ActorId::random()).is_ok());
}

#[tokio::test]
async fn malformed_and_oversized_bodies_change_nothing() {
    let server = TestServer::start("sync-malformed").await;
    let mut phone = server.client_with_device("client-5").await;
    phone.record.add_check_in(CheckInInput::Mood(5), at("2026-05-02T09:00:00Z")).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let before = server.record_json(&phone.client_id).await;

    for body in [vec![], vec![2, 0, 0, 0, 0], vec![1, 0, 1, 7], vec![1, 0xff, 0xff]] {
        let response = phone.post(&server, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "malformed_request");
    }
    // Automerge bytes that are not changes.
    let garbage = SyncRequest { since: Vec::new(), heads: Vec::new(), changes: b"\x85\x6f\x4a\x83garbage".to_vec() };
    assert_eq!(phone.post(&server, garbage.encode()).await.status(), StatusCode::BAD_REQUEST);

    // Wrong media type.
    let response = server
        .http
        .post(server.url("/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", "application/json")
        .body(phone.request().encode())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let oversized = vec![0u8; katcore_clinic::MAX_SYNC_BODY + 1];
    let response = phone.post(&server, oversized).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_large");

    assert_eq!(server.record_json(&phone.client_id).await, before);
    // And the device still syncs normally afterwards.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let metrics = server.metrics().await;
    assert!(metrics.contains("katcore_clinic_syncs_total{result=\"too_large\"} 1\n"), "{metrics}");
    assert!(metrics.contains("katcore_clinic_syncs_total{result=\"malformed\"}"));
}

/// A well-framed chunk (valid checksum) that made Automerge 0.12 panic while
/// decoding it, found by fuzzing (`fuzz/regressions/sync_body/`): `400`,
/// never `500`, and the record is unchanged.
#[tokio::test]
async fn a_chunk_automerge_cannot_decode_is_400() {
    let server = TestServer::start("sync-panic-chunk").await;
    let mut phone = server.client_with_device("client-6").await;
    phone.record.add_check_in(CheckInInput::Mood(5), at("2026-05-02T09:00:00Z")).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let before = server.record_json(&phone.client_id).await;
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/sync_body/bundle-chunk-with-valid-checksum.bin");
    let body = std::fs::read(path).unwrap();
    let response = phone.post(&server, body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "malformed_changes");
    assert_eq!(server.record_json(&phone.client_id).await, before);
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn records_survive_a_restart_and_compaction() {
    let mut server = TestServer::start("sync-restart").await;
    let mut phone = server.client_with_device("client-6").await;
    // Enough text to make the stored changes outgrow the compaction threshold.
    for i in 0..4 {
        let text = format!("{i} {}", "long reflection ".repeat(4_000));
        phone.record.write_journal_entry(&text, &JournalLinks::default(), at("2026-05-02T10:00:00Z")).unwrap();
        assert_eq!(phone.sync(&server).await, StatusCode::OK);
    }
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{}/notes", phone.client_id))
        .json(&json!({"text": "Before the restart."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let before = server.record_json(&phone.client_id).await;
    let snapshots = server.sql_count("SELECT count(*) FROM record_snapshots").await;
    assert_eq!(snapshots, 1, "the record was compacted");

    server.restart().await;
    assert_eq!(server.record_json(&phone.client_id).await, before);
    // The device's `since` is still known to the restarted server.
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{}/notes", phone.client_id))
        .json(&json!({"text": "After the restart."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    assert_eq!(phone.record.clinician_notes().len(), 2);
    assert_eq!(server.record_json(&phone.client_id).await, phone.record.to_json());
}

/// The device's last sync time, as the clinician's device list shows it.
async fn last_sync_at(server: &TestServer, client_id: &str) -> DateTime<Utc> {
    let path = format!("/v1/clients/{client_id}/devices");
    let devices: Value = server.clinician(Method::GET, &path).send().await.unwrap().json().await.unwrap();
    let at = devices[0]["last_sync_at"].as_str().expect("the device has synced");
    DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn last_sync_is_recorded_with_and_without_changes() {
    let server = TestServer::start("sync-last-sync").await;
    let mut phone = server.client_with_device("client-1").await;
    let before = Utc::now();

    // With a change: written in the change's transaction.
    phone.record.add_check_in(CheckInInput::Mood(6), at("2026-05-02T09:00:00Z")).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let with_change = last_sync_at(&server, &phone.client_id).await;
    assert!(with_change >= before - chrono::Duration::milliseconds(1), "{with_change} < {before}");

    // Nothing new: recorded on its own, and later.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let without_change = last_sync_at(&server, &phone.client_id).await;
    assert!(without_change > with_change, "{without_change} <= {with_change}");
}
