//! The access-control matrix: every operation of the OpenAPI document ×
//! every kind of caller, on a real server over loopback, with only the right
//! principal succeeding. Also: no raw token or enrollment code in the
//! database file or in the server's logs (the real binary at `RUST_LOG=debug`),
//! and repeated failed authentication is answered `429` with `Retry-After`.
//!
//! The matrix is built from `katcore_clinic::openapi()`, and the test fails
//! if an operation of the document has no row, so a new endpoint cannot be
//! forgotten. Each cell is sent from its own loopback source address
//! (127.1.x.y), so the failed-attempt rate limit, which counts per peer, does
//! not turn the refusals the matrix expects into `429`s. Single use and expiry
//! of enrollment codes are the `/v1/enroll` row's "used code" and "expired
//! code" cells (and `tests/api/enrollment.rs`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use automerge::ChangeHash;
use base64::Engine as _;
use katcore::pack::{verify_pack, InstrumentKind, Pack, TrustedKeys};
use katcore::record::{CareRecord, CheckInInput};
use katcore::sync::wire::{SyncRequest, SyncResponse, CONTENT_TYPE};
use katcore_clinic::{new_token, serve, InitOutput, TestDatabase, TokenKind, MAX_FAILURES_PER_WINDOW};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("katcore-matrix-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP client whose connections come from a loopback address of their
/// own, so the server counts its failed attempts separately.
fn fresh_peer() -> reqwest::Client {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let [_, _, hi, lo] = n.to_be_bytes();
    let ip = IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo));
    reqwest::Client::builder().local_address(ip).build().unwrap()
}

/// Who calls. See [`expected`] for what each may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Principal {
    /// No `Authorization` header (for `/v1/enroll`: an empty code).
    None,
    /// A malformed header or token (for `/v1/enroll`: a malformed code).
    Malformed,
    /// A well-formed token (or code) the server never issued.
    Unknown,
    /// A revoked device's token (for `/v1/enroll`: a code already used).
    Revoked,
    /// An expired enrollment code (`/v1/enroll` only).
    Expired,
    /// The device of another client of the same clinic.
    OtherClient,
    /// A clinician of another clinic.
    OtherClinic,
    /// A valid token of the other kind: the clinic's clinician on device
    /// endpoints, the client's own device on clinician endpoints.
    WrongKind,
    /// The principal the endpoint is for.
    Right,
}

const PRINCIPALS: [Principal; 9] = [
    Principal::None,
    Principal::Malformed,
    Principal::Unknown,
    Principal::Revoked,
    Principal::Expired,
    Principal::OtherClient,
    Principal::OtherClinic,
    Principal::WrongKind,
    Principal::Right,
];

/// Who an operation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Anyone (health, metrics, the API document).
    Public,
    /// A holder of a valid enrollment code.
    Enroll,
    /// An enrolled device; the token selects the client.
    Device,
    /// A clinician, on one resource of their clinic named in the path.
    ClinicianResource,
    /// A clinician, on their clinic as a whole (lists, creating, the clinic's pack).
    ClinicianClinic,
}

/// What a cell must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// `2xx` or `304`.
    Success,
    /// Exactly this refusal.
    Refused(u16),
    /// Success on the caller's own clinic, mentioning nothing of the other.
    OwnClinicOnly,
}

/// One row: an operation, how it is reached and who may.
struct Operation {
    method: Method,
    template: &'static str,
    access: Access,
}

fn operations() -> Vec<Operation> {
    use Access::*;
    let op = |method: Method, template, access| Operation { method, template, access };
    vec![
        op(Method::GET, "/healthz", Public),
        op(Method::GET, "/readyz", Public),
        op(Method::GET, "/metrics", Public),
        op(Method::GET, "/openapi.json", Public),
        op(Method::POST, "/v1/enroll", Enroll),
        op(Method::POST, "/v1/sync", Device),
        op(Method::GET, "/v1/pack", Device),
        op(Method::PUT, "/v1/pack", ClinicianClinic),
        op(Method::POST, "/v1/clients", ClinicianClinic),
        op(Method::GET, "/v1/clients", ClinicianClinic),
        op(Method::GET, "/v1/alerts", ClinicianClinic),
        op(Method::POST, "/v1/clients/{client_id}/enrollment-codes", ClinicianResource),
        op(Method::GET, "/v1/clients/{client_id}/record", ClinicianResource),
        op(Method::GET, "/v1/clients/{client_id}/fhir", ClinicianResource),
        op(Method::GET, "/v1/clients/{client_id}/devices", ClinicianResource),
        op(Method::POST, "/v1/clients/{client_id}/sessions", ClinicianResource),
        op(Method::PUT, "/v1/clients/{client_id}/sessions/{session_id}", ClinicianResource),
        op(Method::POST, "/v1/clients/{client_id}/notes", ClinicianResource),
        op(Method::PUT, "/v1/clients/{client_id}/pack", ClinicianResource),
        op(Method::POST, "/v1/devices/{device_id}/revoke", ClinicianResource),
        op(Method::POST, "/v1/alerts/{alert_id}/ack", ClinicianResource),
        op(Method::POST, "/v1/alerts/{alert_id}/reopen", ClinicianResource),
    ]
}

/// The expected answer of a cell, or `None` where the principal does not apply.
fn expected(op: &Operation, principal: Principal) -> Option<Expect> {
    use Principal::*;
    Some(match (op.access, principal) {
        (Access::Enroll, None | Malformed | Unknown | Revoked | Expired) => Expect::Refused(400),
        // Only enrollment takes codes.
        (_, Expired) => return Option::None,
        (Access::Public, _) => Expect::Success,
        // Enrollment takes a code, not a token.
        (Access::Enroll, OtherClient | OtherClinic | WrongKind) => return Option::None,
        (_, None | Malformed | Unknown) => Expect::Refused(401),
        (_, Revoked) => Expect::Refused(410),
        // The other client's device uploads this client's history: its own
        // record lacks it, so it gets `409`, never the other record.
        (Access::Device, OtherClient) if op.method == Method::POST => Expect::Refused(409),
        // The pack is the clinic's: every device of the clinic receives it.
        (Access::Device, OtherClient) => Expect::Success,
        (Access::Device, OtherClinic | WrongKind) => Expect::Refused(403),
        (_, OtherClient | WrongKind) => Expect::Refused(403),
        (Access::ClinicianResource, OtherClinic) => Expect::Refused(404),
        // A pack signed by this clinic's key is not the other clinic's to publish.
        (Access::ClinicianClinic, OtherClinic) if op.method == Method::PUT && op.template == "/v1/pack" => {
            Expect::Refused(400)
        }
        (_, OtherClinic) => Expect::OwnClinicOnly,
        (_, Right) => Expect::Success,
    })
}

/// Everything the matrix needs: two clinics, clients, devices and their
/// resources, and every secret issued (for the database scan).
struct World {
    url: String,
    database: TestDatabase,
    http: reqwest::Client,
    clinic: InitOutput,
    other_clinic: InitOutput,
    client_id: String,
    other_client_id: String,
    device: Device,
    other_device: Device,
    revoked_device: Device,
    spare_device: Device,
    session_id: String,
    alert_id: String,
    used_code: String,
    expired_code: String,
    sync_body: Vec<u8>,
    secrets: Vec<String>,
    ids: Vec<String>,
    pack_version: u32,
}

#[derive(Default)]
struct Device {
    device_id: String,
    token: String,
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn call(&self, token: Option<&str>, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A call that must succeed, and its JSON answer.
    async fn json(&self, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.call(token, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    async fn new_code(&mut self, client_id: &str) -> String {
        let token = self.clinic.clinician_token.clone();
        let path = format!("/v1/clients/{client_id}/enrollment-codes");
        let code = self.json(Some(&token), Method::POST, &path, None).await["code"].as_str().unwrap().to_owned();
        self.secrets.push(code.clone());
        self.secrets.push(code.replace('-', ""));
        code
    }

    async fn enroll(&mut self, client_id: &str) -> Device {
        let code = self.new_code(client_id).await;
        let body = json!({"code": code, "device_label": "phone"});
        let body = self.json(None, Method::POST, "/v1/enroll", Some(body)).await;
        let token = body["device_token"].as_str().unwrap().to_owned();
        self.secrets.push(token.clone());
        let device_id = body["device_id"].as_str().unwrap().to_owned();
        self.ids.push(device_id.clone());
        self.used_code = code;
        Device { device_id, token }
    }

    async fn sync(&self, device: &Device, request: &SyncRequest) -> reqwest::Response {
        self.http
            .post(self.url("/v1/sync"))
            .bearer_auth(&device.token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(request.encode())
            .send()
            .await
            .unwrap()
    }

    /// A bare default pack one version above clinic A's current one, for `PUT /v1/pack`.
    fn next_pack(&self) -> Vec<u8> {
        let mut pack: Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
        pack["version"] = json!(self.pack_version + 1);
        let pack = Pack::from_json(pack.to_string().as_bytes()).unwrap();
        let key = self.clinic.pack_signing_key.as_ref().unwrap();
        serde_json::to_vec(&katcore::pack::sign_pack(&pack, key).unwrap()).unwrap()
    }

    /// Builds the world on a fresh server at `url` over `db`.
    async fn build(url: String, database: TestDatabase, clinic: InitOutput, other_clinic: InitOutput) -> World {
        let mut world = World {
            url,
            database,
            http: reqwest::Client::new(),
            secrets: vec![clinic.clinician_token.clone(), other_clinic.clinician_token.clone()],
            clinic,
            other_clinic,
            client_id: String::new(),
            other_client_id: String::new(),
            device: Device::default(),
            other_device: Device::default(),
            revoked_device: Device::default(),
            spare_device: Device::default(),
            session_id: String::new(),
            alert_id: String::new(),
            used_code: String::new(),
            expired_code: String::new(),
            sync_body: Vec::new(),
            ids: Vec::new(),
            pack_version: 1,
        };
        let token = world.clinic.clinician_token.clone();
        for label in ["client-a", "client-b"] {
            let body = world.json(Some(&token), Method::POST, "/v1/clients", Some(json!({"label": label}))).await;
            world.ids.push(body["client_id"].as_str().unwrap().to_owned());
        }
        world.client_id = world.ids[0].clone();
        world.other_client_id = world.ids[1].clone();
        let (a, b) = (world.client_id.clone(), world.other_client_id.clone());
        world.other_device = world.enroll(&b).await;
        world.revoked_device = world.enroll(&a).await;
        world.spare_device = world.enroll(&a).await;
        world.device = world.enroll(&a).await;
        let path = format!("/v1/devices/{}/revoke", world.revoked_device.device_id);
        assert_eq!(world.call(Some(&token), Method::POST, &path).send().await.unwrap().status(), 204);

        // An expired code: let 72 hours pass for it.
        world.expired_code = world.new_code(&a).await;
        let expired = execute(
            &world.database,
            "UPDATE enrollment_codes SET expires_at = expires_at - 73 * 3600 * 1000 WHERE used_at IS NULL",
        )
        .await;
        assert_eq!(expired, 1);

        // A session, a crisis check-in (an alert), a first sync, a published pack.
        let body = json!({"start": "2026-06-01T15:00:00-04:00", "time_zone": "America/New_York"});
        let created = world.json(Some(&token), Method::POST, &format!("/v1/clients/{a}/sessions"), Some(body)).await;
        world.session_id = created["session_id"].as_str().unwrap().to_owned();
        let mut record = CareRecord::default();
        let crisis = CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 2]);
        record.add_check_in(crisis, chrono::Utc::now()).unwrap();
        let first = SyncRequest { since: Vec::new(), heads: record.heads(), changes: record.save() };
        let response = world.sync(&world.device, &first).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer = SyncResponse::decode(&response.bytes().await.unwrap()).unwrap();
        record.merge_bytes(&answer.changes).unwrap();
        let server_heads: Vec<ChangeHash> = answer.heads;
        record.add_check_in(CheckInInput::Mood(7), chrono::Utc::now()).unwrap();
        world.sync_body = SyncRequest {
            since: server_heads.clone(),
            heads: record.heads(),
            changes: record.save_after(&server_heads),
        }
        .encode();
        let alerts = world.json(Some(&token), Method::GET, "/v1/alerts", None).await;
        world.alert_id = alerts[0]["alert_id"].as_str().unwrap().to_owned();
        let pack = world.next_pack();
        let response = world.call(Some(&token), Method::PUT, "/v1/pack").body(pack).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        world.pack_version += 1;
        world.ids.extend([world.session_id.clone(), world.alert_id.clone()]);
        world
    }

    /// The token (or `Authorization` value) a principal presents to `op`.
    fn authorization(&self, op: &Operation, principal: Principal, row: usize) -> Option<String> {
        let bearer = |token: &str| Some(format!("Bearer {token}"));
        let device_side = op.access == Access::Device;
        match principal {
            _ if op.access == Access::Enroll => None,
            Principal::None | Principal::Expired => None,
            Principal::Malformed => {
                let truncated = &self.device.token[..self.device.token.len() - 1];
                let shapes = [
                    "Bearer garbage".to_owned(),
                    format!("Bearer {truncated}"),
                    format!("Basic {}", self.clinic.clinician_token),
                    self.clinic.clinician_token.clone(),
                    format!("Bearer kc_{}", "!".repeat(43)),
                    format!("Bearer {}x", self.device.token),
                ];
                Some(shapes[row % shapes.len()].clone())
            }
            Principal::Unknown => {
                bearer(&new_token(if device_side { TokenKind::Device } else { TokenKind::Clinician }))
            }
            Principal::Revoked => bearer(&self.revoked_device.token),
            Principal::OtherClient => bearer(&self.other_device.token),
            Principal::OtherClinic => bearer(&self.other_clinic.clinician_token),
            Principal::WrongKind if device_side => bearer(&self.clinic.clinician_token),
            Principal::WrongKind => bearer(&self.device.token),
            Principal::Right if device_side => bearer(&self.device.token),
            Principal::Right if op.access == Access::Public => None,
            Principal::Right => bearer(&self.clinic.clinician_token),
        }
    }

    /// The concrete request of a cell.
    async fn request(&mut self, op: &Operation, principal: Principal, row: usize) -> RequestBuilder {
        let device_id = self.spare_device.device_id.clone();
        let path = op
            .template
            .replace("{client_id}", &self.client_id)
            .replace("{session_id}", &self.session_id)
            .replace("{device_id}", &device_id)
            .replace("{alert_id}", &self.alert_id);
        let mut request = fresh_peer().request(op.method.clone(), self.url(&path));
        if let Some(value) = self.authorization(op, principal, row) {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        match (op.method.as_str(), op.template) {
            ("POST", "/v1/enroll") => {
                let code = match principal {
                    Principal::None => String::new(),
                    Principal::Malformed => "not a code!".to_owned(),
                    Principal::Unknown => "0000-0000-0000".to_owned(),
                    Principal::Revoked => self.used_code.clone(),
                    Principal::Expired => self.expired_code.clone(),
                    _ => {
                        let client_id = self.client_id.clone();
                        self.new_code(&client_id).await
                    }
                };
                request.json(&json!({"code": code, "device_label": "matrix phone"}))
            }
            ("POST", "/v1/sync") => {
                request.header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE).body(self.sync_body.clone())
            }
            ("PUT", "/v1/pack") => {
                request.header(reqwest::header::CONTENT_TYPE, "application/json").body(self.next_pack())
            }
            ("POST", "/v1/clients") => request.json(&json!({"label": "matrix client"})),
            ("POST", "/v1/clients/{client_id}/sessions") => {
                request.json(&json!({"start": "2026-07-01T15:00:00-04:00", "time_zone": "America/New_York"}))
            }
            ("PUT", "/v1/clients/{client_id}/sessions/{session_id}") => {
                request.json(&json!({"start": "2026-06-02T15:00:00-04:00"}))
            }
            ("POST", "/v1/clients/{client_id}/notes") => request.json(&json!({"text": "matrix note"})),
            ("PUT", "/v1/clients/{client_id}/pack") => {
                request.json(&json!({"pack_id": "katcore-default", "version": 3}))
            }
            _ => request,
        }
    }
}

/// Every `(METHOD, path)` of the OpenAPI document.
fn documented_operations() -> BTreeSet<(String, String)> {
    let doc = katcore_clinic::openapi();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// Whether the bytes contain `needle`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The bytes of the database and its `-wal` / `-shm` / `-journal` files.
/// Runs one statement on the database; returns the rows it changed.
async fn execute(database: &TestDatabase, sql: &str) -> u64 {
    match database.url() {
        None => rusqlite::Connection::open(database.sqlite_path()).unwrap().execute(sql, []).unwrap() as u64,
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            let driver = tokio::spawn(connection);
            let changed = client.execute(sql, &[]).await.unwrap();
            drop(client);
            let _ = driver.await;
            changed
        }
    }
}

/// Everything the database holds: its files on SQLite, every row of every
/// table as text on PostgreSQL.
async fn database_bytes(database: &TestDatabase) -> Vec<u8> {
    let Some(url) = database.url() else { return file_bytes(&database.sqlite_path()) };
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let tables = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()", &[])
        .await
        .unwrap();
    let mut bytes = Vec::new();
    for table in tables {
        let name: String = table.get(0);
        for row in client.query(&format!("SELECT t::text FROM {name} t"), &[]).await.unwrap() {
            bytes.extend(row.get::<_, String>(0).into_bytes());
        }
    }
    drop(client);
    let _ = driver.await;
    assert!(bytes.len() > 4096, "the database's rows were not found");
    bytes
}

fn file_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let dir = db.parent().unwrap();
    let name = db.file_name().unwrap().to_str().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(name)) {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 4096, "the database files were not found");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_right_principal_reaches_each_operation() {
    let dir = TempDir::new("cells");
    let database = TestDatabase::new(&dir.0).unwrap();
    let clinic = database.init_clinic("Riverside Clinic", "Dr. Rivera").unwrap();
    let other_clinic = database.init_clinic("Other Clinic", "Dr. Other").unwrap();
    let server = serve(database.config()).await.unwrap();
    let mut world = World::build(server.url(), database.clone(), clinic, other_clinic).await;

    // Every documented operation has a row, and every row is documented.
    let rows = operations();
    let covered: BTreeSet<(String, String)> =
        rows.iter().map(|op| (op.method.to_string(), op.template.to_owned())).collect();
    assert_eq!(covered, documented_operations(), "the matrix and the OpenAPI document list different operations");
    assert_eq!(covered.len(), rows.len(), "an operation has two rows");

    let mut cells = 0;
    let mut failures = Vec::new();
    for (row, op) in rows.iter().enumerate() {
        for principal in PRINCIPALS {
            let Some(expect) = expected(op, principal) else { continue };
            cells += 1;
            let response = world.request(op, principal, row).await.send().await.unwrap();
            let status = response.status();
            let retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
            let body = response.bytes().await.unwrap();
            let ok = match expect {
                Expect::Success => status.is_success() || status == StatusCode::NOT_MODIFIED,
                Expect::Refused(code) => status.as_u16() == code && !retry_after,
                Expect::OwnClinicOnly => status.is_success() && world.ids.iter().all(|id| !contains(&body, id)),
            };
            if !ok {
                failures
                    .push(format!("{} {} as {principal:?}: expected {expect:?}, got {status}", op.method, op.template));
            }
            if let Expect::Refused(_) = expect {
                // A refusal never carries a token or record content.
                let text = String::from_utf8_lossy(&body);
                assert!(world.secrets.iter().all(|s| !text.contains(s.as_str())), "{}: {text}", op.template);
                let error: Value = serde_json::from_slice(&body).unwrap();
                assert!(error["error"].is_string() && error["message"].is_string(), "{}: {error}", op.template);
            }
            if op.template == "/v1/pack" && op.method == Method::PUT && principal == Principal::Right && ok {
                world.pack_version += 1;
            }
            if op.template == "/v1/enroll" && status.is_success() {
                let enrolled: Value = serde_json::from_slice(&body).unwrap();
                world.secrets.push(enrolled["device_token"].as_str().unwrap().to_owned());
            }
            if op.template == "/v1/clients/{client_id}/enrollment-codes" && status.is_success() {
                let created: Value = serde_json::from_slice(&body).unwrap();
                let code = created["code"].as_str().unwrap();
                world.secrets.extend([code.to_owned(), code.replace('-', "")]);
            }
        }
    }
    println!(
        "access matrix: {} operations × {} principals: {cells} cells checked, {} failed",
        rows.len(),
        PRINCIPALS.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cells >= 140, "only {cells} cells");

    // The other clinic's successes stayed in the other clinic.
    let token = world.clinic.clinician_token.clone();
    let clients = world.json(Some(&token), Method::GET, "/v1/clients", None).await;
    assert_eq!(clients.as_array().unwrap().len(), 3, "clinic A: its two clients and the matrix's: {clients}");
    let response = world.call(Some(&world.device.token), Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let key = base64::engine::general_purpose::STANDARD.decode(&world.clinic.pack_public_key).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
    let pack = verify_pack(&response.bytes().await.unwrap(), &TrustedKeys::new([key])).unwrap();
    assert_eq!((pack.version, world.pack_version), (3, 3), "clinic A's pack is its own latest");
    // The revoke row's right principal revoked the spare device; the others did not.
    let spare = world.spare_device.token.clone();
    assert_eq!(world.call(Some(&spare), Method::GET, "/v1/pack").send().await.unwrap().status(), StatusCode::GONE);

    // The database holds no raw token and no enrollment code.
    server.shutdown().await.unwrap();
    let bytes = database_bytes(&database).await;
    assert!(world.secrets.len() >= 16, "{} secrets", world.secrets.len());
    for secret in &world.secrets {
        assert!(!contains(&bytes, secret), "a raw secret ({}…) is in the database", &secret[..4]);
    }
}

#[tokio::test]
async fn repeated_failed_authentication_is_rate_limited() {
    let dir = TempDir::new("rate");
    let database = TestDatabase::new(&dir.0).unwrap();
    let clinic = database.init_clinic("Riverside Clinic", "Dr. Rivera").unwrap();
    let server = serve(database.config()).await.unwrap();
    let url = |path: &str| format!("{}{path}", server.url());
    let attacker = fresh_peer();
    // Failures on any endpoint and of any shape count together.
    for i in 0..MAX_FAILURES_PER_WINDOW {
        let request = match i % 4 {
            0 => attacker.get(url("/v1/clients")),
            1 => attacker.get(url("/v1/pack")).bearer_auth("garbage"),
            2 => attacker.post(url("/v1/sync")).bearer_auth(new_token(TokenKind::Device)).body(vec![1, 0, 0, 0, 0]),
            _ => attacker.get(url("/v1/alerts")).bearer_auth(new_token(TokenKind::Clinician)),
        };
        assert_eq!(request.send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for request in [
        attacker.get(url("/v1/clients")).bearer_auth(new_token(TokenKind::Clinician)),
        // Even the right token waits out the window from that peer.
        attacker.get(url("/v1/clients")).bearer_auth(&clinic.clinician_token),
        attacker.post(url("/v1/enroll")).json(&json!({"code": "0000-0000-0000", "device_label": "x"})),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()[reqwest::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "Retry-After: {retry_after}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited");
    }
    // Other peers are not affected.
    let response = fresh_peer().get(url("/v1/clients")).bearer_auth(&clinic.clinician_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await.unwrap();
}

/// The real server binary, its standard output and error collected as it runs.
struct ServerProcess {
    child: Child,
    url: String,
    readers: Vec<std::thread::JoinHandle<Vec<u8>>>,
}

impl ServerProcess {
    fn start(database: &TestDatabase) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_katcore-clinic"))
            .args(database.server_args().unwrap())
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drained as it comes, so the server never blocks on a full pipe.
        let mut stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        let output = std::thread::spawn(move || {
            let mut bytes = line.into_bytes();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        ServerProcess { child, url, readers: vec![errors, output] }
    }

    /// Stops the server and returns everything it printed.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bytes: Vec<u8> = self.readers.into_iter().flat_map(|reader| reader.join().unwrap()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[tokio::test]
async fn tokens_and_codes_never_reach_the_logs() {
    let dir = TempDir::new("logs");
    let database = TestDatabase::new(&dir.0).unwrap();
    let clinic = database.init_clinic("Riverside Clinic", "Dr. Rivera").unwrap();
    let server = ServerProcess::start(&database);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url);
    let clinician = |method: Method, path: &str| http.request(method, url(path)).bearer_auth(&clinic.clinician_token);
    let mut secrets = vec![clinic.clinician_token.clone()];

    let response = clinician(Method::POST, "/v1/clients").json(&json!({"label": "client-a"})).send().await.unwrap();
    let client_id = response.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned();
    let mut codes = Vec::new();
    for _ in 0..2 {
        let path = format!("/v1/clients/{client_id}/enrollment-codes");
        let response = clinician(Method::POST, &path).send().await.unwrap();
        let code = response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned();
        secrets.extend([code.clone(), code.replace('-', "")]);
        codes.push(code);
    }
    let enroll = |code: String| http.post(url("/v1/enroll")).json(&json!({"code": code, "device_label": "phone"}));
    let enrolled: Value = enroll(codes[0].clone()).send().await.unwrap().json().await.unwrap();
    let token = enrolled["device_token"].as_str().unwrap().to_owned();
    let device_id = enrolled["device_id"].as_str().unwrap().to_owned();
    secrets.push(token.clone());
    // The code again (used), and a near miss of the unused one.
    assert_eq!(enroll(codes[0].clone()).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let near_miss = format!("{}0", &codes[1][..codes[1].len() - 1]);
    let near_miss = if near_miss == codes[1] { format!("{}1", &codes[1][..codes[1].len() - 1]) } else { near_miss };
    assert_eq!(enroll(near_miss.clone()).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    secrets.push(near_miss);

    // Sync, the pack, a note, bad tokens, revocation.
    let mut record = CareRecord::default();
    record.add_check_in(CheckInInput::Mood(5), chrono::Utc::now()).unwrap();
    let body = SyncRequest { since: Vec::new(), heads: record.heads(), changes: record.save() }.encode();
    let sync = |token: &str| {
        http.post(url("/v1/sync"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.clone())
    };
    assert_eq!(sync(&token).send().await.unwrap().status(), StatusCode::OK);
    let signed = katcore::pack::sign_pack(&Pack::default_pack(), clinic.pack_signing_key.as_ref().unwrap()).unwrap();
    let response = clinician(Method::PUT, "/v1/pack").json(&signed).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(http.get(url("/v1/pack")).bearer_auth(&token).send().await.unwrap().status(), StatusCode::OK);
    let path = format!("/v1/clients/{client_id}/notes");
    let response = clinician(Method::POST, &path).json(&json!({"text": "a note"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let wrong = format!("{}{}", &token[..token.len() - 2], if token.ends_with("AA") { "BB" } else { "AA" });
    let wrong_clinician = new_token(TokenKind::Clinician);
    assert_eq!(sync(&wrong).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let response = http.get(url("/v1/clients")).bearer_auth(&wrong_clinician).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(clinician(Method::POST, "/v1/sync").send().await.unwrap().status(), StatusCode::FORBIDDEN);
    secrets.extend([wrong, wrong_clinician]);
    let path = format!("/v1/devices/{device_id}/revoke");
    assert_eq!(clinician(Method::POST, &path).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(sync(&token).send().await.unwrap().status(), StatusCode::GONE);

    let logs = server.stop();
    // The capture works: it has the debug-level refusals and the enrollment.
    assert!(logs.contains("device enrolled"), "{logs}");
    assert!(logs.contains("request refused"), "{logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret ({}…) is in the logs:\n{logs}", &secret[..4]);
    }
    // Nor is the database a place for them.
    let bytes = database_bytes(&database).await;
    for secret in &secrets {
        assert!(!contains(&bytes, secret), "a raw secret ({}…) is in the database", &secret[..4]);
    }
}
