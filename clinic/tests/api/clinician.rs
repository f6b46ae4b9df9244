//! The clinician API: clients, sessions, notes, pack assignment, record
//! JSON, alerts raised by synced urgent items and their acknowledgement,
//! and input validation.

use chrono::{DateTime, Duration, Utc};
use katcore::pack::InstrumentKind;
use katcore::record::CheckInInput;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn clients_sessions_notes_and_the_record() {
    let server = TestServer::start("clinician-api").await;
    let client_id = server.create_client("client-0100").await;
    // Clients list by creation time (milliseconds), then by id: two made in
    // one millisecond would list in their random ids' order.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let later = server.create_client("client-0101").await;

    let start = (Utc::now() + Duration::days(3)).with_timezone(&chrono::FixedOffset::west_opt(4 * 3600).unwrap());
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{client_id}/sessions"))
        .json(&json!({"start": start.to_rfc3339(), "time_zone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let session_id = json_of(response).await["session_id"].as_str().unwrap().to_owned();

    let moved = start + Duration::hours(2);
    let response = server
        .clinician(Method::PUT, &format!("/v1/clients/{client_id}/sessions/{session_id}"))
        .json(&json!({"start": moved.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{client_id}/notes"))
        .json(&json!({"text": "Intake complete."}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let note_id = json_of(response).await["note_id"].as_str().unwrap().to_owned();

    let response = server
        .clinician(Method::PUT, &format!("/v1/clients/{client_id}/pack"))
        .json(&json!({"pack_id": "org.katcore.default", "version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let record = server.record_json(&client_id).await;
    assert_eq!(record["sessions"][0]["id"], session_id.as_str());
    let stored_start =
        DateTime::parse_from_rfc3339(record["sessions"][0]["scheduled_start"].as_str().unwrap()).unwrap();
    assert_eq!(stored_start, moved);
    assert_eq!(record["sessions"][0]["scheduled_by"], "clinic");
    assert_eq!(record["clinician_notes"][0]["id"], note_id.as_str());
    assert_eq!(record["clinician_notes"][0]["author"], "Dr. Rivera");
    assert_eq!(record["assigned_pack"]["pack_id"], "org.katcore.default");

    let list = json_of(server.clinician(Method::GET, "/v1/clients").send().await.unwrap()).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["client_id"], client_id.as_str());
    assert_eq!(list[0]["label"], "client-0100");
    let next = DateTime::parse_from_rfc3339(list[0]["next_session"].as_str().unwrap()).unwrap();
    assert_eq!(next, moved);
    assert_eq!(list[0]["last_sync"], Value::Null);
    assert_eq!(list[0]["open_alerts"], 0);
    assert_eq!(list[1]["client_id"], later.as_str());
    assert_eq!(list[1]["next_session"], Value::Null);
}

#[tokio::test]
async fn invalid_input_is_refused_without_change() {
    let server = TestServer::start("clinician-invalid").await;
    let client_id = server.create_client("client-0200").await;
    let before = server.record_json(&client_id).await;
    let post = |path: String, body: Value| server.clinician(Method::POST, &path).json(&body).send();

    let cases = [
        (post("/v1/clients".into(), json!({"label": 5})).await.unwrap(), "invalid_body"),
        (post("/v1/clients".into(), json!({"label": ""})).await.unwrap(), "invalid_input"),
        (post("/v1/clients".into(), json!({"label": "x", "extra": 1})).await.unwrap(), "invalid_body"),
        (
            post(format!("/v1/clients/{client_id}/sessions"), json!({"start": "tomorrow", "time_zone": "UTC"}))
                .await
                .unwrap(),
            "invalid_body",
        ),
        (
            post(
                format!("/v1/clients/{client_id}/sessions"),
                json!({"start": "2026-06-01T15:00:00Z", "time_zone": "Mars/Olympus"}),
            )
            .await
            .unwrap(),
            "invalid_input",
        ),
        (post(format!("/v1/clients/{client_id}/notes"), json!({"text": "  "})).await.unwrap(), "invalid_input"),
    ];
    for (response, code) in cases {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json_of(response).await["error"], code);
    }

    let response = server
        .clinician(Method::PUT, &format!("/v1/clients/{client_id}/sessions/nope"))
        .json(&json!({"start": "2026-06-01T15:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = server
        .clinician(Method::PUT, &format!("/v1/clients/{client_id}/pack"))
        .json(&json!({"pack_id": "org.katcore.default", "version": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = server
        .clinician(Method::POST, "/v1/clients")
        .header("content-type", "text/plain")
        .body(r#"{"label": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = "x".repeat(katcore_clinic::MAX_PACK_BODY);
    let response = post(format!("/v1/clients/{client_id}/notes"), json!({"text": huge})).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(response).await["error"], "too_large");

    let response = server.clinician(Method::GET, "/v1/alerts?status=bogus").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    assert_eq!(server.record_json(&client_id).await, before);
    let list = json_of(server.clinician(Method::GET, "/v1/clients").send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn severe_and_worsening_scores_raise_alerts_at_the_clinic() {
    let server = TestServer::start("clinician-scores").await;
    let mut phone = server.client_with_device("client-0310").await;
    let now = Utc::now();
    let phq9 = |answers: Vec<u8>| CheckInInput::Instrument(InstrumentKind::Phq9, answers);
    // Baseline 4, then 8 (a rise of 4: nothing), then 9 (a rise of 5), then
    // 24 with item 9 at 0 (severe); a GAD-7 of 14 raises nothing.
    let baseline = phone.record.add_check_in(phq9(vec![1, 1, 1, 1, 0, 0, 0, 0, 0]), now - Duration::days(21)).unwrap();
    phone.record.add_check_in(phq9(vec![2, 2, 2, 2, 0, 0, 0, 0, 0]), now - Duration::days(14)).unwrap();
    let worse = phone.record.add_check_in(phq9(vec![2, 2, 2, 2, 1, 0, 0, 0, 0]), now - Duration::days(7)).unwrap();
    let severe = phone.record.add_check_in(phq9(vec![3, 3, 3, 3, 3, 3, 3, 3, 0]), now).unwrap();
    phone.record.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![2, 2, 2, 2, 2, 2, 2]), now).unwrap();
    assert!(!severe.urgent && !worse.urgent, "neither is a crisis");
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let alerts = json_of(server.clinician(Method::GET, "/v1/alerts").send().await.unwrap()).await;
    let mut kinds: Vec<(String, String)> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["kind"].as_str().unwrap().to_owned()))
        .collect();
    kinds.sort();
    let mut expected = vec![
        (format!("c:{}", severe.id), "severe_score".to_owned()),
        (format!("c:{}", worse.id), "score_worsened".to_owned()),
    ];
    expected.sort();
    assert_eq!(kinds, expected);
    assert!(alerts.as_array().unwrap().iter().all(|a| a["key"] != format!("c:{}", baseline.id).as_str()));
}

#[tokio::test]
async fn a_body_that_repeats_a_key_is_refused_naming_it() {
    let server = TestServer::start("clinician-duplicate-key").await;
    let client_id = server.create_client("client-0320").await;
    let before = server.record_json(&client_id).await;
    let body = r#"{"start": "2026-06-01T15:00:00Z", "time_zone": "UTC", "time_zone": "Europe/Madrid"}"#;
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{client_id}/sessions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = json_of(response).await;
    assert_eq!(error["error"], "invalid_body");
    assert!(error["message"].as_str().unwrap().contains(r#"duplicate key "time_zone""#), "{error}");
    // Not JSON at all is still told apart, and the record is untouched.
    let response = server
        .clinician(Method::POST, &format!("/v1/clients/{client_id}/sessions"))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(server.record_json(&client_id).await, before);
}

#[tokio::test]
async fn urgent_items_raise_alerts_that_clinicians_acknowledge() {
    let server = TestServer::start("clinician-alerts").await;
    let mut phone = server.client_with_device("client-0300").await;
    let now = Utc::now();
    phone.record.add_check_in(CheckInInput::Mood(6), now - Duration::hours(2)).unwrap();
    let crisis = phone
        .record
        .add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, vec![1, 1, 0, 0, 0, 0, 0, 0, 1]), now)
        .unwrap();
    assert!(crisis.urgent);
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    // A replay raises nothing twice.
    assert_eq!(phone.post(&server, phone.request().encode()).await.status(), StatusCode::OK);

    let alerts = json_of(server.clinician(Method::GET, "/v1/alerts").send().await.unwrap()).await;
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert["client_id"], phone.client_id.as_str());
    assert_eq!(alert["kind"], "crisis_check_in");
    assert_eq!(alert["key"], format!("c:{}", crisis.id));
    assert_eq!(alert["acknowledged_at"], Value::Null);
    let list = json_of(server.clinician(Method::GET, "/v1/clients").send().await.unwrap()).await;
    assert_eq!(list[0]["open_alerts"], 1);
    assert!(list[0]["last_sync"].is_string());

    let alert_id = alert["alert_id"].as_str().unwrap();
    let response = server.clinician(Method::POST, &format!("/v1/alerts/{alert_id}/ack")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Again: still 204, nothing changes.
    let response = server.clinician(Method::POST, &format!("/v1/alerts/{alert_id}/ack")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let open = json_of(server.clinician(Method::GET, "/v1/alerts?status=open").send().await.unwrap()).await;
    assert_eq!(open, json!([]));
    let all = json_of(server.clinician(Method::GET, "/v1/alerts?status=all").send().await.unwrap()).await;
    assert_eq!(all[0]["acknowledged_by"], "Dr. Rivera");
    assert!(all[0]["acknowledged_at"].is_string());

    // The acknowledgement is in the record and reaches the phone.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let items = phone.record.urgent_items();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].acknowledged.as_ref().unwrap().by, "Dr. Rivera");

    // A second urgent item comes first while open.
    phone
        .record
        .add_check_in(
            CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 2]),
            now - Duration::days(1),
        )
        .unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let all = json_of(server.clinician(Method::GET, "/v1/alerts?status=all").send().await.unwrap()).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["acknowledged_at"], Value::Null);
    assert!(all[1]["acknowledged_at"].is_string());

    let response = server.clinician(Method::POST, "/v1/alerts/unknown/ack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
