//! Publishing and fetching signed packs.

use katcore::pack::{parse_verifying_key, verify_pack, Pack, TrustedKeys};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{sign_with, TestServer};

#[tokio::test]
async fn packs_are_signed_published_and_cached_by_etag() {
    let server = TestServer::start("packs").await;
    let phone = server.client_with_device("client-a").await;
    let get = |etag: Option<&str>| {
        let request = server.as_token(&phone.token, Method::GET, "/v1/pack");
        match etag {
            Some(etag) => request.header("if-none-match", etag),
            None => request,
        }
        .send()
    };
    let response = get(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "no_pack");

    let bare = Pack::default_pack_json();
    // The server holds no private key: a bare pack, one signed by another
    // key, and one altered after signing are refused.
    let response = server.clinician(Method::PUT, "/v1/pack").body(bare).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unsigned_pack");
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let response = server.clinician(Method::PUT, "/v1/pack").body(sign_with(bare, &stranger)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "bad_signature");
    let mut altered: Value = serde_json::from_str(&server.sign(bare)).unwrap();
    altered["pack"]["thresholds"]["bp_urgent"]["systolic"] = serde_json::json!(250);
    let response = server.clinician(Method::PUT, "/v1/pack").body(altered.to_string()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "bad_signature");
    assert_eq!(get(None).await.unwrap().status(), StatusCode::NOT_FOUND, "nothing was published");

    let signed = server.sign(bare);
    let response = server.clinician(Method::PUT, "/v1/pack").body(signed.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["pack_id"], "org.katcore.default");
    assert_eq!(body["version"], 1);
    assert_eq!(body["key_id"], server.clinic.key_id.as_str());

    let response = get(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let signed = response.bytes().await.unwrap();
    let trusted = TrustedKeys::new([parse_verifying_key(&phone.pack_public_key).unwrap()]);
    let pack = verify_pack(&signed, &trusted).unwrap();
    assert_eq!(&pack, Pack::default_pack().as_ref());

    let response = get(Some(&etag)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(get(Some("\"stale\"")).await.unwrap().status(), StatusCode::OK);

    // The same version again, or an invalid pack: refused, nothing changes.
    let response = server.clinician(Method::PUT, "/v1/pack").body(signed).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "version_not_newer");
    for invalid in ["not json", "{}", "{\"format\": \"katcore.signed-pack/1\"}"] {
        let response = server.clinician(Method::PUT, "/v1/pack").body(invalid.to_owned()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_pack");
    }
    assert_eq!(get(Some(&etag)).await.unwrap().status(), StatusCode::NOT_MODIFIED);

    // A newer version replaces it.
    let newer = bare.replace("\"version\": 1", "\"version\": 2");
    let response = server.clinician(Method::PUT, "/v1/pack").body(server.sign(&newer)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = get(Some(&etag)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(verify_pack(&response.bytes().await.unwrap(), &trusted).unwrap().version, 2);
}

#[tokio::test]
async fn a_pack_with_a_prompt_in_the_clients_night_is_not_published() {
    let server = TestServer::start("packs-night").await;
    let key = server.clinic.pack_signing_key.as_ref().expect("init_clinic returns the private key");
    let mut pack: Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
    pack["integration"][0]["local_time"] = serde_json::json!("23:15");
    // `katctl pack sign` refuses it, so sign it as another tool would: the
    // domain, then the canonical JSON (for this pack, integers and plain
    // strings under ASCII keys, serde_json's sorted compact form is RFC 8785).
    let mut message = b"katcore signed pack v1\n".to_vec();
    message.extend(serde_json::to_vec(&pack).unwrap());
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&message).to_bytes());
    let envelope = serde_json::json!({
        "format": katcore::pack::SIGNED_PACK_FORMAT,
        "key_id": server.clinic.key_id,
        "signature": signature,
        "pack": pack,
    });
    let trusted = TrustedKeys::new([key.verifying_key()]);
    let read = verify_pack(envelope.to_string().as_bytes(), &trusted).expect("a device reads it");
    assert!(read.check_authoring().is_err());
    let response = server.clinician(Method::PUT, "/v1/pack").body(envelope.to_string()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_pack");
    assert!(error["message"].as_str().unwrap().contains("integration[0].local_time"), "{error}");
    let phone = server.client_with_device("client-night").await;
    let response = server.as_token(&phone.token, Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "nothing was published");
}
