//! Who may call what: token kinds, clinics, revocation, malformed tokens.

use katcore::record::CheckInInput;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

#[tokio::test]
async fn tokens_reach_only_their_own_kind_of_endpoint() {
    let server = TestServer::start("access-kinds").await;
    let mut phone = server.client_with_device("client-a").await;
    for (method, path) in [
        (Method::GET, "/v1/clients".to_owned()),
        (Method::POST, "/v1/clients".to_owned()),
        (Method::GET, format!("/v1/clients/{}/record", phone.client_id)),
        (Method::GET, "/v1/alerts".to_owned()),
        (Method::PUT, "/v1/pack".to_owned()),
    ] {
        let response = server.as_token(&phone.token, method, &path).json(&json!({"label": "x"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
    }
    let response = server.clinician(Method::POST, "/v1/sync").body(phone.request().encode()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server.clinician(Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401() {
    let server = TestServer::start("access-401").await;
    let phone = server.client_with_device("client-a").await;
    let unknown_device = katcore_clinic::new_token(katcore_clinic::TokenKind::Device);
    let unknown_clinician = katcore_clinic::new_token(katcore_clinic::TokenKind::Clinician);
    let truncated = &phone.token[..phone.token.len() - 1];
    for token in ["garbage", "kd_", truncated, &unknown_device, &unknown_clinician] {
        let response =
            server.as_token(token, Method::POST, "/v1/sync").body(phone.request().encode()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        let response = server.as_token(token, Method::GET, "/v1/clients").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = server.http.get(server.url("/v1/clients")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .http
        .get(server.url("/v1/clients"))
        .header("authorization", format!("Basic {}", server.clinic.clinician_token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn devices_reach_only_their_client() {
    let server = TestServer::start("access-devices").await;
    let mut phone_a = server.client_with_device("client-a").await;
    let mut phone_b = server.client_with_device("client-b").await;
    phone_a.record.add_check_in(CheckInInput::Mood(2), chrono::Utc::now()).unwrap();
    assert_eq!(phone_a.sync(&server).await, StatusCode::OK);
    assert_eq!(server.record_json(&phone_b.client_id).await["check_ins"], json!([]));
    // B restoring gets B's (empty) record, never A's.
    assert_eq!(phone_b.sync(&server).await, StatusCode::OK);
    assert!(phone_b.record.check_ins().is_empty());
    assert!(phone_b.server_heads.is_empty());
}

#[tokio::test]
async fn clinicians_reach_only_their_clinic() {
    let server = TestServer::start("access-clinics").await;
    let mut phone = server.client_with_device("client-a").await;
    phone
        .record
        .add_check_in(
            CheckInInput::Instrument(katcore::pack::InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 3]),
            chrono::Utc::now(),
        )
        .unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let alerts: Value = server.clinician(Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    let alert_id = alerts[0]["alert_id"].as_str().unwrap().to_owned();

    let other = server.database.init_clinic("Other Clinic", "Dr. Other").unwrap();
    let client = &phone.client_id;
    let as_other = |method: Method, path: String| server.as_token(&other.clinician_token, method, &path);
    for response in [
        as_other(Method::GET, format!("/v1/clients/{client}/record")).send().await.unwrap(),
        as_other(Method::GET, format!("/v1/clients/{client}/devices")).send().await.unwrap(),
        as_other(Method::POST, format!("/v1/clients/{client}/enrollment-codes")).send().await.unwrap(),
        as_other(Method::POST, format!("/v1/clients/{client}/notes"))
            .json(&json!({"text": "hi"}))
            .send()
            .await
            .unwrap(),
        as_other(Method::POST, format!("/v1/clients/{client}/sessions"))
            .json(&json!({"start": "2026-06-01T15:00:00Z", "time_zone": "UTC"}))
            .send()
            .await
            .unwrap(),
        as_other(Method::PUT, format!("/v1/clients/{client}/pack"))
            .json(&json!({"pack_id": "x", "version": 2}))
            .send()
            .await
            .unwrap(),
        as_other(Method::POST, format!("/v1/devices/{}/revoke", phone.device_id)).send().await.unwrap(),
        as_other(Method::POST, format!("/v1/alerts/{alert_id}/ack")).send().await.unwrap(),
        as_other(Method::POST, format!("/v1/alerts/{alert_id}/reopen")).send().await.unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{}", response.url());
    }
    let list: Value = as_other(Method::GET, "/v1/clients".into()).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, json!([]));
    let alerts: Value =
        as_other(Method::GET, "/v1/alerts?status=all".into()).send().await.unwrap().json().await.unwrap();
    assert_eq!(alerts, json!([]));
    // Nothing was changed by the attempts.
    let record = server.record_json(client).await;
    assert_eq!(record["clinician_notes"], json!([]));
    assert_eq!(record["sessions"], json!([]));
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_device_gets_410() {
    let server = TestServer::start("access-revoked").await;
    let mut phone = server.client_with_device("client-a").await;
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let response =
        server.clinician(Method::POST, &format!("/v1/devices/{}/revoke", phone.device_id)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(phone.sync(&server).await, StatusCode::GONE);
    let response = server.as_token(&phone.token, Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "device_revoked");
    let devices: Value = server
        .clinician(Method::GET, &format!("/v1/clients/{}/devices", phone.client_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(devices[0]["revoked_at"].is_string());
    assert!(devices[0]["last_sync_at"].is_string());
    let response = server.clinician(Method::POST, "/v1/devices/nope/revoke").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
