//! Enrollment codes: format, single use, expiry, wrong codes, rate limit.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestServer;

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_code_enrolls_one_device_once() {
    let server = TestServer::start("enroll-once").await;
    let client_id = server.create_client("client-0042").await;
    let code = server.enrollment_code(&client_id).await;
    assert_eq!(code.len(), 14);
    assert!(code.chars().enumerate().all(|(i, c)| if i == 4 || i == 9 { c == '-' } else { c.is_ascii_alphanumeric() }));

    let response = server.enroll(&code, "Ana's phone").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["client_id"], client_id.as_str());
    assert_eq!(body["clinic_name"], "Riverside Clinic");
    assert_eq!(body["pack_public_key"], server.clinic.pack_public_key.as_str());
    assert!(body["device_token"].as_str().unwrap().starts_with("kd_"));

    // Used: the same answer as an unknown code.
    let again = server.enroll(&code, "another phone").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(again).await, "invalid_code");

    // Codes are read leniently: lower case and no hyphens.
    let code = server.enrollment_code(&client_id).await;
    let typed = code.replace('-', "").to_lowercase();
    assert_eq!(server.enroll(&typed, "tablet").await.status(), StatusCode::OK);

    let devices: Value = server
        .clinician(reqwest::Method::GET, &format!("/v1/clients/{client_id}/devices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let labels: Vec<&str> = devices.as_array().unwrap().iter().map(|d| d["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Ana's phone", "tablet"]);
}

#[tokio::test]
async fn expired_and_wrong_codes_are_invalid() {
    let server = TestServer::start("enroll-expired").await;
    let client_id = server.create_client("client-7").await;
    let code = server.enrollment_code(&client_id).await;
    // Let 72 hours pass.
    server.sql("UPDATE enrollment_codes SET expires_at = expires_at - 73 * 3600 * 1000").await;
    let response = server.enroll(&code, "phone").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "invalid_code");

    for wrong in ["ABCD-EFGH-JKMN", "not a code", "", "ABCD-EFGH-JKMN-PQRS"] {
        let response = server.enroll(wrong, "phone").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{wrong}");
        assert_eq!(error_code(response).await, "invalid_code");
    }

    // Malformed requests are 400 too, with a clear code.
    let response =
        server.http.post(server.url("/v1/enroll")).json(&serde_json::json!({"code": 5})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "invalid_body");
    let code = server.enrollment_code(&client_id).await;
    let response = server.enroll(&code, "   ").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "invalid_input");
    // The refused request did not use the code up.
    assert_eq!(server.enroll(&code, "phone").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn guessing_codes_is_rate_limited() {
    let server = TestServer::start("enroll-rate").await;
    let client_id = server.create_client("client-9").await;
    let code = server.enrollment_code(&client_id).await;
    for _ in 0..katcore_clinic::MAX_FAILURES_PER_WINDOW {
        assert_eq!(server.enroll("ZZZZ-ZZZZ-ZZZZ", "phone").await.status(), StatusCode::BAD_REQUEST);
    }
    let response = server.enroll("ZZZZ-ZZZZ-ZZZZ", "phone").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(error_code(response).await, "rate_limited");
    // Even the right code waits, and bad tokens from the same peer too.
    assert_eq!(server.enroll(&code, "phone").await.status(), StatusCode::TOO_MANY_REQUESTS);
    let response = server.as_token("kd_nonsense", reqwest::Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
