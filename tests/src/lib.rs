//! Support for the end-to-end tests: a real clinic server on loopback, a
//! typed clinician client over HTTP, and devices with encrypted stores that
//! enroll and sync over real sockets.

pub mod fault_proxy;

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use katcore::store::StoreKey;
use katcore_clinic::{serve, ClinicianClient, InitOutput, ServerHandle, TestDatabase};
use serde_json::Value;

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
    /// Where the clinic's database lives (the SQLite file; meaningless on
    /// PostgreSQL, see `database`).
    pub db: PathBuf,
    /// The clinic's database: SQLite, or a fresh PostgreSQL schema when
    /// `KATCORE_TEST_POSTGRES` is set.
    pub database: TestDatabase,
}

impl Clinic {
    /// Initialises a clinic in a temporary directory (or a fresh schema of
    /// the PostgreSQL database `KATCORE_TEST_POSTGRES` names) and starts its server.
    pub async fn start(name: &str) -> Clinic {
        let database = TestDatabase::new(&temp_dir(name)).expect("a database");
        let init = database.init_clinic(name, "Dr. Rivera").expect("init clinic");
        let server = serve(database.config()).await.expect("serve");
        let api = ClinicianApi::new(&server.url(), &init.clinician_token);
        Clinic { server, init, api, db: database.sqlite_path(), database }
    }

    /// `pack` signed offline with the clinic's private key, ready to publish.
    pub fn sign(&self, pack: &Value) -> Value {
        let pack = katcore::pack::Pack::from_json(pack.to_string().as_bytes()).expect("a valid pack");
        let key = self.init.pack_signing_key.as_ref().expect("init_clinic returns the private key");
        serde_json::to_value(katcore::pack::sign_pack(&pack, key).expect("signed")).expect("JSON")
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// The clinician API for tests: [`katcore_clinic::ClinicianClient`], with
/// failures turned into test panics.
#[derive(Clone)]
pub struct ClinicianApi(pub ClinicianClient);

impl ClinicianApi {
    /// A client for the server at `base` with a clinician `token`.
    pub fn new(base: &str, token: &str) -> Self {
        ClinicianApi(ClinicianClient::new(base, token))
    }

    /// Sends a request and returns the status and JSON body (`Null` when empty).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.0.call(method, path, body).await.expect("clinician request")
    }

    /// Creates a client; returns its id.
    pub async fn create_client(&self, label: &str) -> String {
        self.0.create_client(label).await.expect("create client")
    }

    /// A one-time enrollment code for a client.
    pub async fn enrollment_code(&self, client_id: &str) -> String {
        self.0.enrollment_code(client_id).await.expect("enrollment code")
    }

    /// Schedules a session; returns its id.
    pub async fn schedule_session(&self, client_id: &str, start: &str, time_zone: &str) -> String {
        self.0.schedule_session(client_id, start, time_zone).await.expect("schedule session")
    }

    /// Moves a session.
    pub async fn move_session(&self, client_id: &str, session_id: &str, start: &str) {
        self.0.move_session(client_id, session_id, start).await.expect("move session");
    }

    /// Adds a note.
    pub async fn add_note(&self, client_id: &str, text: &str) {
        self.0.add_note(client_id, text).await.expect("add note");
    }

    /// The client's record as JSON.
    pub async fn record(&self, client_id: &str) -> Value {
        self.0.record(client_id).await.expect("record")
    }

    /// Alerts (`open` or `all`).
    pub async fn alerts(&self, status: &str) -> Vec<Value> {
        self.0.alerts(status).await.expect("alerts")
    }

    /// The client's devices.
    pub async fn devices(&self, client_id: &str) -> Vec<Value> {
        self.0.devices(client_id).await.expect("devices")
    }

    /// Revokes a device.
    pub async fn revoke_device(&self, device_id: &str) {
        self.0.revoke_device(device_id).await.expect("revoke device");
    }

    /// Publishes a bare pack (the server signs it).
    pub async fn publish_pack(&self, pack: &Value) -> Value {
        self.0.publish_pack(pack).await.expect("publish pack")
    }
}

/// A client's device, enrolled: core's [`katcore::device::Device`] (what
/// every front end drives) with where it lives and the id the server gave it.
pub struct Device {
    /// The device.
    pub device: katcore::device::Device,
    /// The device id the server assigned.
    pub device_id: String,
    /// Where the store file lives.
    pub path: PathBuf,
}

impl Deref for Device {
    type Target = katcore::device::Device;

    fn deref(&self) -> &Self::Target {
        &self.device
    }
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
        let key = StoreKey::from_bytes(&[7; 32]).expect("key");
        let device = katcore::device::Device::open(&path, &key, Some(Arc::new(test_http()))).expect("open store");
        let enrollment = device.enroll(server_url, code, label).await.expect("enroll");
        Device { device, device_id: enrollment.device_id, path }
    }

    /// The device's record as the clinic's JSON view shows it.
    pub fn record_json(&self) -> Value {
        self.read(|r| r.to_json())
    }
}
