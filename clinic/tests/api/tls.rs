//! The server over TLS (rustls) with a self-signed certificate.

use katcore::record::CheckInInput;
use katcore_clinic::{init_clinic, serve, Config, TlsFiles};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Device, TempDir};

#[tokio::test]
async fn a_device_enrolls_and_syncs_over_tls() {
    let dir = TempDir::new("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let db = dir.path().join("clinic.db");
    let clinic = init_clinic(&db, "TLS Clinic", "Dr. Secure").unwrap();

    let mut config = Config::local(&db);
    config.tls = Some(TlsFiles { cert: cert_path, key: key_path });
    let server = serve(config).await.unwrap();
    assert!(server.url().starts_with("https://"));
    let base = format!("https://localhost:{}", server.addr().port());
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .https_only(true)
        .build()
        .unwrap();

    // Plain HTTP to the TLS port does not work.
    assert!(reqwest::get(format!("http://127.0.0.1:{}/healthz", server.addr().port())).await.is_err());
    // A client that does not trust the certificate is refused.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());

    let response = http
        .post(format!("{base}/v1/clients"))
        .bearer_auth(&clinic.clinician_token)
        .json(&json!({"label": "client-tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let client_id = response.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned();
    let response = http
        .post(format!("{base}/v1/clients/{client_id}/enrollment-codes"))
        .bearer_auth(&clinic.clinician_token)
        .send()
        .await
        .unwrap();
    let code = response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned();
    let enrolled: Value = http
        .post(format!("{base}/v1/enroll"))
        .json(&json!({"code": code, "device_label": "phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let mut phone = Device {
        client_id: client_id.clone(),
        device_id: enrolled["device_id"].as_str().unwrap().to_owned(),
        token: enrolled["device_token"].as_str().unwrap().to_owned(),
        pack_public_key: enrolled["pack_public_key"].as_str().unwrap().to_owned(),
        record: Default::default(),
        server_heads: Vec::new(),
    };
    phone.record.add_check_in(CheckInInput::Mood(9), chrono::Utc::now()).unwrap();
    let response = http
        .post(format!("{base}/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", katcore::sync::wire::CONTENT_TYPE)
        .body(phone.request().encode())
        .send()
        .await
        .unwrap();
    assert_eq!(phone.apply(response).await, StatusCode::OK);
    assert_eq!(phone.server_heads, phone.record.heads());

    let record: Value = http
        .get(format!("{base}/v1/clients/{client_id}/record"))
        .bearer_auth(&clinic.clinician_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["check_ins"][0]["score"], 9);
    server.shutdown().await.unwrap();
}
