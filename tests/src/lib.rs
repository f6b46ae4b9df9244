//! Support for the end-to-end tests: a real clinic server on loopback, a
//! typed clinician client over HTTP, and devices with encrypted stores that
//! enroll and sync over real sockets.

pub mod fault_proxy;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use katcore::care_store::CareStore;
use katcore::pack::{PackRegistry, TrustedKeys};
use katcore::store::StoreKey;
use katcore::sync::{enroll, SyncClient};
use katcore_clinic::{init_clinic, serve, Config, InitOutput, ServerHandle};
use serde_json::{json, Value};

/// A fresh temporary directory (left behind for inspection on failure).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("katcore-e2e-{name}-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A clinic server running in-process on loopback, and its first clinician.
pub struct Clinic {
    /// The running server.
    pub server: ServerHandle,
    /// What `init_clinic` returned (clinician token, clinic id, pack key).
    pub init: InitOutput,
    /// The clinician's API client.
    pub api: ClinicianApi,
    /// Where the clinic's database lives.
    pub db: PathBuf,
}

impl Clinic {
    /// Initialises a clinic in a temporary directory and starts its server.
    pub async fn start(name: &str) -> Clinic {
        let db = temp_dir(name).join("clinic.db");
        let init = init_clinic(&db, name, "Dr. Rivera").expect("init clinic");
        let server = serve(Config::local(&db)).await.expect("serve");
        let api = ClinicianApi::new(&server.url(), &init.clinician_token);
        Clinic { server, init, api, db }
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// The clinician API over HTTP, as a clinic's web app would call it.
#[derive(Clone)]
pub struct ClinicianApi {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ClinicianApi {
    /// A client for the server at `base` with a clinician `token`.
    pub fn new(base: &str, token: &str) -> Self {
        ClinicianApi {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request and returns the status and JSON body (`Null` when empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("clinician request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {value}");
        value
    }

    /// Creates a client; returns its id.
    pub async fn create_client(&self, label: &str) -> String {
        let v = self.ok(reqwest::Method::POST, "/v1/clients", Some(json!({"label": label}))).await;
        v["client_id"].as_str().expect("client_id").to_owned()
    }

    /// A one-time enrollment code for a client.
    pub async fn enrollment_code(&self, client_id: &str) -> String {
        let v = self.ok(reqwest::Method::POST, &format!("/v1/clients/{client_id}/enrollment-codes"), None).await;
        v["code"].as_str().expect("code").to_owned()
    }

    /// Schedules a session; returns its id.
    pub async fn schedule_session(&self, client_id: &str, start: &str, time_zone: &str) -> String {
        let body = json!({"start": start, "time_zone": time_zone});
        let v = self.ok(reqwest::Method::POST, &format!("/v1/clients/{client_id}/sessions"), Some(body)).await;
        v["session_id"].as_str().expect("session_id").to_owned()
    }

    /// Moves a session.
    pub async fn move_session(&self, client_id: &str, session_id: &str, start: &str) {
        let path = format!("/v1/clients/{client_id}/sessions/{session_id}");
        self.ok(reqwest::Method::PUT, &path, Some(json!({"start": start}))).await;
    }

    /// Adds a note.
    pub async fn add_note(&self, client_id: &str, text: &str) {
        self.ok(reqwest::Method::POST, &format!("/v1/clients/{client_id}/notes"), Some(json!({"text": text}))).await;
    }

    /// The client's record as JSON.
    pub async fn record(&self, client_id: &str) -> Value {
        self.ok(reqwest::Method::GET, &format!("/v1/clients/{client_id}/record"), None).await
    }

    /// Alerts (`open` or `all`).
    pub async fn alerts(&self, status: &str) -> Vec<Value> {
        let v = self.ok(reqwest::Method::GET, &format!("/v1/alerts?status={status}"), None).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// The client's devices.
    pub async fn devices(&self, client_id: &str) -> Vec<Value> {
        let v = self.ok(reqwest::Method::GET, &format!("/v1/clients/{client_id}/devices"), None).await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Revokes a device.
    pub async fn revoke_device(&self, device_id: &str) {
        self.ok(reqwest::Method::POST, &format!("/v1/devices/{device_id}/revoke"), None).await;
    }

    /// Publishes a bare pack (the server signs it).
    pub async fn publish_pack(&self, pack: &Value) -> Value {
        self.ok(reqwest::Method::PUT, "/v1/pack", Some(pack.clone())).await
    }
}

/// A client's device: an encrypted store, its pack registry and a sync client.
pub struct Device {
    /// The device's store.
    pub store: CareStore,
    /// Packs the device trusts and uses.
    pub packs: Arc<RwLock<PackRegistry>>,
    /// The sync client.
    pub sync: SyncClient,
    /// The device id the server assigned.
    pub device_id: String,
    /// Where the store file lives.
    pub path: PathBuf,
}

/// An HTTP client for tests: no connection reuse, so a fault proxy sees
/// one request per connection.
pub fn test_http() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http client")
}

impl Device {
    /// Creates a store and enrolls it at `server_url` with `code`.
    pub async fn enroll(server_url: &str, code: &str, label: &str) -> Device {
        let path = temp_dir(label).join("device.db");
        let store = CareStore::open(&path, &StoreKey::from_bytes(&[7; 32]).expect("key")).expect("open store");
        let http = test_http();
        let credentials = enroll(&store, &http, server_url, code, label).await.expect("enroll");
        let packs = Arc::new(RwLock::new(PackRegistry::new(TrustedKeys::default())));
        let sync = SyncClient::new(store.clone(), http, Arc::clone(&packs));
        Device { store, packs, sync, device_id: credentials.device_id, path }
    }

    /// The device's record as the clinic's JSON view shows it.
    pub fn record_json(&self) -> Value {
        self.store.read(|r| r.to_json())
    }
}
