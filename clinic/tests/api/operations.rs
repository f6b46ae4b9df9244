//! Health, metrics, the OpenAPI document, unknown routes, the plain-HTTP rule.

use katcore::record::CheckInInput;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestServer;

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let server = TestServer::start("operations").await;
    let response = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");

    let before = server.metrics().await;
    assert!(before.contains("katcore_clinic_syncs_total{result=\"ok\"} 0\n"));
    let mut phone = server.client_with_device("client-a").await;
    phone.record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let response = server.http.get(server.url("/v1/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "not_found");
    let response = server.http.delete(server.url("/v1/sync")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "method_not_allowed");

    let after = server.metrics().await;
    assert!(after.contains("katcore_clinic_syncs_total{result=\"ok\"} 1\n"), "{after}");
    assert!(after.contains("katcore_clinic_http_errors_total{status=\"404\"} 1\n"));
    assert!(after.contains("katcore_clinic_sync_duration_seconds_count 1\n"));
    let bytes_in = after
        .lines()
        .find_map(|line| line.strip_prefix("katcore_clinic_sync_bytes_received_total "))
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(bytes_in > 0);
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let server = TestServer::start("openapi").await;
    let doc: Value = server.http.get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/enroll",
        "/v1/sync",
        "/v1/pack",
        "/v1/clients",
        "/v1/clients/{client_id}/enrollment-codes",
        "/v1/clients/{client_id}/record",
        "/v1/clients/{client_id}/devices",
        "/v1/clients/{client_id}/sessions",
        "/v1/clients/{client_id}/sessions/{session_id}",
        "/v1/clients/{client_id}/notes",
        "/v1/clients/{client_id}/pack",
        "/v1/devices/{device_id}/revoke",
        "/v1/alerts",
        "/v1/alerts/{alert_id}/ack",
        "/v1/alerts/{alert_id}/reopen",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let sync_body = &paths["/v1/sync"]["post"]["requestBody"]["content"]["application/vnd.katcore.sync.v1"];
    assert_eq!(sync_body["schema"]["format"], "binary");
    assert_eq!(paths["/v1/alerts"]["get"]["parameters"][0]["in"], "query");
    assert!(paths["/v1/pack"]["put"].is_object());
    assert!(doc["components"]["schemas"]["EnrollResponse"].is_object());
    assert!(doc["components"]["securitySchemes"]["clinician_token"].is_object());
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let dir = crate::common::TempDir::new("plain-http");
    let mut config = katcore_clinic::Config::local(dir.path().join("clinic.db"));
    config.listen = "0.0.0.0:0".parse().unwrap();
    let error = katcore_clinic::serve(config).await.unwrap_err();
    assert!(error.to_string().contains("refusing plain HTTP"), "{error}");
}

#[tokio::test]
async fn the_app_answers_without_a_socket() {
    use tower::ServiceExt as _;
    let dir = crate::common::TempDir::new("oneshot");
    let storage = katcore_clinic::SqliteStorage::open(&dir.path().join("clinic.db")).unwrap();
    let app = katcore_clinic::app(katcore_clinic::AppState::new(std::sync::Arc::new(storage)));
    let request = axum::http::Request::builder().uri("/healthz").body(axum::body::Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK);
}
