//! A real server on 127.0.0.1 with a fresh database, and a minimal device
//! built from `CareRecord` and the sync wire format.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use automerge::ChangeHash;
use katcore::record::CareRecord;
use katcore::sync::wire::{SyncRequest, SyncResponse, CONTENT_TYPE};
use katcore_clinic::{serve, ClinicStorage, Config, InitOutput, ServerHandle, TestDatabase};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("katcore-clinic-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server with one clinic, on SQLite or, when
/// `KATCORE_TEST_POSTGRES` is set, on a fresh PostgreSQL schema.
pub(crate) struct TestServer {
    pub server: Option<ServerHandle>,
    pub url: String,
    /// The SQLite file (meaningless on PostgreSQL: see `database`).
    pub db: PathBuf,
    pub database: TestDatabase,
    pub clinic: InitOutput,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl TestServer {
    pub(crate) async fn start(name: &str) -> TestServer {
        TestServer::start_with(name, |_| {}).await
    }

    /// A server whose configuration `configure` adjusts first.
    pub(crate) async fn start_with(name: &str, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = TempDir::new(name);
        let database = TestDatabase::new(dir.path()).unwrap();
        let db = database.sqlite_path();
        let clinic = database.init_clinic("Riverside Clinic", "Dr. Rivera").unwrap();
        let mut config = database.config();
        configure(&mut config);
        let server = serve(config).await.unwrap();
        TestServer {
            url: server.url(),
            server: Some(server),
            db,
            database,
            clinic,
            // Pooled connections are dropped well before the shortest keep-alive
            // a test gives the server (1 s): reusing one the server is closing
            // at that instant fails the request half-way.
            http: reqwest::Client::builder().pool_idle_timeout(Duration::from_millis(400)).build().unwrap(),
            _dir: dir,
        }
    }

    /// The server's database, opened as the server opens it.
    pub(crate) fn storage(&self) -> std::sync::Arc<dyn ClinicStorage> {
        self.database.open().unwrap()
    }

    /// Runs SQL statements on the server's database (SQLite or PostgreSQL:
    /// the statements must read the same on both).
    pub(crate) async fn sql(&self, statements: &str) {
        match self.database.url() {
            None => rusqlite::Connection::open(&self.db).unwrap().execute_batch(statements).unwrap(),
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                let driver = tokio::spawn(connection);
                client.batch_execute(statements).await.unwrap();
                drop(client);
                let _ = driver.await;
            }
        }
    }

    /// The one integer a query returns, on either backend.
    pub(crate) async fn sql_count(&self, query: &str) -> i64 {
        match self.database.url() {
            None => rusqlite::Connection::open(&self.db).unwrap().query_row(query, [], |row| row.get(0)).unwrap(),
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                let driver = tokio::spawn(connection);
                let count: i64 = client.query_one(query, &[]).await.unwrap().get(0);
                drop(client);
                let _ = driver.await;
                count
            }
        }
    }

    /// Stops the server and starts a new one on the same database (a new
    /// process, as far as the server is concerned: empty cache, new actor).
    pub(crate) async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
        let server = serve(self.database.config()).await.unwrap();
        self.url = server.url();
        self.server = Some(server);
    }

    /// `bare` (a pack's JSON) signed offline with the clinic's private key.
    pub(crate) fn sign(&self, bare: &str) -> String {
        sign_with(bare, self.clinic.pack_signing_key.as_ref().expect("init_clinic returns the private key"))
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A request with the first clinician's token.
    pub(crate) fn clinician(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.as_token(&self.clinic.clinician_token, method, path)
    }

    pub(crate) fn as_token(&self, token: &str, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    pub(crate) async fn create_client(&self, label: &str) -> String {
        let response =
            self.clinician(reqwest::Method::POST, "/v1/clients").json(&json!({"label": label})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn enrollment_code(&self, client_id: &str) -> String {
        let response = self
            .clinician(reqwest::Method::POST, &format!("/v1/clients/{client_id}/enrollment-codes"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn enroll(&self, code: &str, label: &str) -> Response {
        self.http.post(self.url("/v1/enroll")).json(&json!({"code": code, "device_label": label})).send().await.unwrap()
    }

    /// A new client with one enrolled device.
    pub(crate) async fn client_with_device(&self, label: &str) -> Device {
        let client_id = self.create_client(label).await;
        self.new_device(&client_id).await
    }

    /// Enrolls another device for `client_id`.
    pub(crate) async fn new_device(&self, client_id: &str) -> Device {
        let code = self.enrollment_code(client_id).await;
        let response = self.enroll(&code, "phone").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["client_id"], client_id);
        Device {
            client_id: client_id.to_owned(),
            device_id: body["device_id"].as_str().unwrap().to_owned(),
            token: body["device_token"].as_str().unwrap().to_owned(),
            pack_public_key: body["pack_public_key"].as_str().unwrap().to_owned(),
            record: CareRecord::default(),
            server_heads: Vec::new(),
        }
    }

    pub(crate) async fn record_json(&self, client_id: &str) -> Value {
        let response =
            self.clinician(reqwest::Method::GET, &format!("/v1/clients/{client_id}/record")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub(crate) async fn metrics(&self) -> String {
        self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap()
    }
}

/// `bare` signed with `key`, as `katctl pack sign` writes it.
/// Where the entry at logical key `key` (`s:3f2a…`) is in `doc`: the
/// object holding it (its format v2 bucket, or the root for v1) and its key there.
pub(crate) fn entry_home(doc: &automerge::Automerge, key: &str) -> (automerge::ObjId, String) {
    use automerge::ReadDoc;
    match katcore::record::bucket_of(key) {
        Some(bucket) => (doc.get(automerge::ROOT, bucket.as_str()).unwrap().unwrap().1, key[2..].to_owned()),
        None => (automerge::ROOT, key.to_owned()),
    }
}

/// The object of the map entry (session, journal entry) at logical key `key` in `doc`.
pub(crate) fn entry_obj(doc: &automerge::Automerge, key: &str) -> automerge::ObjId {
    use automerge::ReadDoc;
    let (home, field) = entry_home(doc, key);
    doc.get(&home, field.as_str()).unwrap().unwrap().1
}

pub(crate) fn sign_with(bare: &str, key: &ed25519_dalek::SigningKey) -> String {
    let pack = katcore::pack::Pack::from_json(bare.as_bytes()).expect("a valid pack");
    serde_json::to_string(&katcore::pack::sign_pack(&pack, key).expect("signed")).unwrap()
}

/// A minimal device: its own replica and the server heads it last saw.
pub(crate) struct Device {
    pub client_id: String,
    pub device_id: String,
    pub token: String,
    pub pack_public_key: String,
    pub record: CareRecord,
    pub server_heads: Vec<ChangeHash>,
}

impl Device {
    /// The request the protocol prescribes for the device's current state.
    pub(crate) fn request(&self) -> SyncRequest {
        let doc = self.record.document();
        let known = self.server_heads.iter().all(|h| doc.get_change_meta_by_hash(h).is_some());
        let since = if known { self.server_heads.clone() } else { Vec::new() };
        let changes = if since.is_empty() { self.record.save() } else { self.record.save_after(&since) };
        SyncRequest { since, heads: self.record.heads(), changes }
    }

    /// Posts a raw body to `/v1/sync` with this device's token.
    pub(crate) async fn post(&self, server: &TestServer, body: Vec<u8>) -> Response {
        server
            .http
            .post(server.url("/v1/sync"))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// One sync; applies the answer on success and returns the status.
    pub(crate) async fn sync(&mut self, server: &TestServer) -> StatusCode {
        let response = self.post(server, self.request().encode()).await;
        self.apply(response).await
    }

    /// Applies a sync response (if 200) and returns its status.
    pub(crate) async fn apply(&mut self, response: Response) -> StatusCode {
        let status = response.status();
        if status == StatusCode::OK {
            assert_eq!(response.headers()[reqwest::header::CONTENT_TYPE], CONTENT_TYPE);
            let body = response.bytes().await.unwrap();
            let answer = SyncResponse::decode(&body).unwrap();
            self.record.merge_bytes(&answer.changes).unwrap();
            self.server_heads = answer.heads;
        }
        status
    }

    /// Syncs as the protocol says: on 409, once more with the whole document.
    pub(crate) async fn sync_with_retry(&mut self, server: &TestServer) -> StatusCode {
        match self.sync(server).await {
            StatusCode::CONFLICT => {
                self.server_heads.clear();
                self.sync(server).await
            }
            status => status,
        }
    }
}
