//! Two server processes on one PostgreSQL database behind a round-robin
//! TCP balancer (as docs/deployment.md runs them): devices enroll and sync
//! through both, clinicians write through both, one instance's cache never
//! serves a record older than what the other stored, and one instance is
//! killed with SIGKILL under load: nothing either instance acknowledged is
//! lost, nothing is duplicated, and each alert is raised once.
//!
//! Also: the database going away and coming back.
//!
//! Runs where `KATCORE_TEST_POSTGRES` names a database
//! (`scripts/postgres-test.sh`); on SQLite (one process per database) it
//! says so and does nothing.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use katcore::device::Device as CoreDevice;
use katcore::record::JournalLinks;
use katcore::store::StoreKey;
use katcore::sync::SyncTrigger;
use katcore_clinic::{ClinicianClient, PgStorage, TestDatabase};

const DEVICES: usize = 6;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the real server binary on `port` and waits until it answers.
async fn start_instance(database: &TestDatabase, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_katcore-clinic"))
        .args(database.server_args().unwrap())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            if response.status().is_success() {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("instance on port {port} did not become ready");
}

/// A round-robin TCP balancer on loopback: each new connection goes to the
/// next backend, or to the one after it when that one refuses (a killed
/// instance), as a load balancer's health check would arrange. It can be
/// cut: every connection through it is dropped and new ones are closed at
/// once, as when the network to a backend fails.
struct Balancer {
    addr: SocketAddr,
    /// Connections made to each backend.
    served: Arc<[AtomicUsize]>,
    open: Arc<AtomicBool>,
    relays: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Balancer {
    async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served: Arc<[AtomicUsize]> = backends.iter().map(|_| AtomicUsize::new(0)).collect();
        let open = Arc::new(AtomicBool::new(true));
        let relays = Arc::new(Mutex::new(Vec::new()));
        let backends = Arc::new(Mutex::new(backends));
        let (counts, is_open, running) = (Arc::clone(&served), Arc::clone(&open), Arc::clone(&relays));
        let targets = Arc::clone(&backends);
        tokio::spawn(async move {
            let next = AtomicUsize::new(0);
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let first = next.fetch_add(1, Ordering::Relaxed);
                let (backends, counts) = (targets.lock().unwrap().clone(), Arc::clone(&counts));
                let relay = tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let which = (first + i) % backends.len();
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(backends[which]).await {
                            counts[which].fetch_add(1, Ordering::Relaxed);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
                running.lock().unwrap().push(relay.abort_handle());
            }
        });
        Balancer { addr, served, open, relays, backends }
    }

    /// Sends new connections to `backends` from now on (a changed DNS
    /// record, a moved server).
    fn retarget(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap() = backends;
    }

    /// Drops every connection and refuses new ones until [`Balancer::restore`].
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for relay in self.relays.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// `POST /v1/enroll` at `base` with `code`: the status and the JSON body
/// (`Null` when there is none).
async fn enroll(base: &str, code: &str, label: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = unpooled()
        .post(format!("{base}/v1/enroll"))
        .json(&serde_json::json!({"code": code, "device_label": label}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// The value of a counter in an instance's `/metrics`.
async fn metric(port: u16, name: &str) -> f64 {
    let text = unpooled().get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not in /metrics"))
}

/// A client that opens a new connection for every request, so that the
/// balancer spreads a device's syncs over both instances.
fn unpooled() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(10)).build().unwrap()
}

struct Phone {
    device: CoreDevice,
    client_id: String,
    /// Entries written; those before `acknowledged` were in a sync that succeeded.
    written: Mutex<usize>,
    acknowledged: Mutex<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_lose_nothing_when_one_is_killed() {
    let dir = std::env::temp_dir().join(format!("katcore-instances-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = TestDatabase::new(&dir).unwrap();
    if !database.is_postgres() {
        println!("two instances need PostgreSQL: set KATCORE_TEST_POSTGRES (scripts/postgres-test.sh)");
        return;
    }
    let init = database.init_clinic("Twin Clinic", "Dr. Rivera").unwrap();
    let ports = [free_port(), free_port()];
    let mut a = start_instance(&database, ports[0]).await;
    let b = start_instance(&database, ports[1]).await;
    let direct = |port: u16| ClinicianClient::new(&format!("http://127.0.0.1:{port}"), &init.clinician_token);
    let (api_a, api_b) = (direct(ports[0]), direct(ports[1]));
    let backends = ports.iter().map(|port| SocketAddr::from(([127, 0, 0, 1], *port))).collect();
    let balancer = Balancer::start(backends).await;
    let url = format!("http://{}", balancer.addr);

    // Clients made on one instance, codes on the other, enrolled through the balancer.
    let mut phones = Vec::new();
    for i in 0..DEVICES {
        let (maker, coder) = if i % 2 == 0 { (&api_a, &api_b) } else { (&api_b, &api_a) };
        let client_id = maker.create_client(&format!("client-{i}")).await.unwrap();
        let code = coder.enrollment_code(&client_id).await.unwrap();
        let key = StoreKey::from_bytes(&[i as u8 + 1; 32]).unwrap();
        let device = CoreDevice::open(&dir.join(format!("device-{i}.db")), &key, Some(Arc::new(unpooled()))).unwrap();
        device.enroll(&url, &code, "phone").await.unwrap();
        // The code is single-use on every instance.
        let (again, _) = enroll(&format!("http://127.0.0.1:{}", ports[(i + 1) % 2]), &code, "thief").await;
        assert_eq!(again, reqwest::StatusCode::BAD_REQUEST, "a used code on the other instance");
        phones.push(Arc::new(Phone { device, client_id, written: Mutex::new(0), acknowledged: Mutex::new(0) }));
    }

    // A revocation made on one instance holds on the other at once.
    let code = api_a.enrollment_code(&phones[1].client_id).await.unwrap();
    let (_, tablet) = enroll(&format!("http://127.0.0.1:{}", ports[0]), &code, "tablet").await;
    let token = tablet["device_token"].as_str().unwrap();
    let pack_status = |port: u16| {
        let request = unpooled().get(format!("http://127.0.0.1:{port}/v1/pack")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_ne!(pack_status(ports[1]).await, reqwest::StatusCode::GONE);
    api_b.revoke_device(tablet["device_id"].as_str().unwrap()).await.unwrap();
    for port in ports {
        assert_eq!(pack_status(port).await, reqwest::StatusCode::GONE, "revoked on the instance at {port}");
    }

    // A's cache never serves a record older than what B stored.
    let watched = &phones[0].client_id;
    api_a.record(watched).await.unwrap(); // cached on A
    api_b.add_note(watched, "written through B").await.unwrap();
    let seen_by_a = api_a.record(watched).await.unwrap();
    assert!(seen_by_a.to_string().contains("written through B"), "A served its stale copy");
    assert!(metric(ports[0], "katcore_clinic_record_stale_reloads_total").await >= 1.0, "A reloaded the record");

    // Load through the balancer: every phone writes and syncs; one urgent
    // reading each (the same item reaches both instances over time);
    // clinicians write notes through both instances.
    let running = Arc::new(AtomicBool::new(true));
    let mut workers = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        let (phone, running) = (Arc::clone(phone), Arc::clone(&running));
        workers.push(tokio::spawn(async move {
            let reading = katcore::checklist::BloodPressureReading { systolic: 190, diastolic: 125 };
            phone.device.record_blood_pressure(reading, None, chrono::Utc::now()).unwrap();
            let mut ok = 0usize;
            while running.load(Ordering::SeqCst) {
                let n = {
                    let mut written = phone.written.lock().unwrap();
                    let text = format!("phone {i} entry {}", *written);
                    phone.device.write_journal(&text, &JournalLinks::default(), false, chrono::Utc::now()).unwrap();
                    *written += 1;
                    *written
                };
                if phone.device.sync(SyncTrigger::User).await.is_ok() {
                    let mut acknowledged = phone.acknowledged.lock().unwrap();
                    *acknowledged = (*acknowledged).max(n);
                    ok += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            ok
        }));
    }
    let notes = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let note_writer = {
        let (running, notes) = (Arc::clone(&running), Arc::clone(&notes));
        let clients: Vec<String> = phones.iter().map(|p| p.client_id.clone()).collect();
        let apis = [direct(ports[0]), direct(ports[1])];
        tokio::spawn(async move {
            let mut n = 0usize;
            while running.load(Ordering::SeqCst) {
                let client = &clients[n % clients.len()];
                let text = format!("note {n}");
                // Only notes the server answered `201` for are acknowledged.
                if apis[n % 2].add_note(client, &text).await.is_ok() {
                    notes.lock().unwrap().push((client.clone(), text));
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill().unwrap(); // SIGKILL, mid-load
    a.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    running.store(false, Ordering::SeqCst);
    let mut syncs = 0;
    for worker in workers {
        syncs += worker.await.unwrap();
    }
    note_writer.await.unwrap();
    let served = &balancer.served;
    assert!(served.iter().all(|count| count.load(Ordering::Relaxed) > DEVICES), "both instances served the load");

    // Everything acknowledged by either instance is there, read through B.
    for (i, phone) in phones.iter().enumerate() {
        let record = api_b.record(&phone.client_id).await.unwrap();
        let texts: Vec<&str> =
            record["journal"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
        for n in 0..*phone.acknowledged.lock().unwrap() {
            let text = format!("phone {i} entry {n}");
            assert!(texts.contains(&text.as_str()), "acknowledged {text:?} lost");
        }
    }
    let acknowledged_notes = notes.lock().unwrap().clone();
    assert!(!acknowledged_notes.is_empty());
    for (client, text) in &acknowledged_notes {
        let record = api_b.record(client).await.unwrap();
        let found = record["clinician_notes"].as_array().unwrap().iter().filter(|n| n["text"] == text.as_str()).count();
        assert_eq!(found, 1, "acknowledged {text:?} once");
    }

    // A restarted A and B agree; the phones converge, every entry exactly once.
    a = start_instance(&database, ports[0]).await;
    for phone in &phones {
        phone.device.sync(SyncTrigger::User).await.unwrap();
        let (on_a, on_b) =
            (api_a.record(&phone.client_id).await.unwrap(), api_b.record(&phone.client_id).await.unwrap());
        assert_eq!(on_a, on_b, "both instances serve the same record");
        assert_eq!(phone.device.read(|r| r.to_json()), on_b, "the phone converges");
        let written = *phone.written.lock().unwrap();
        assert_eq!(on_b["journal"].as_array().unwrap().len(), written, "every entry exactly once");
    }
    // One alert per urgent reading, however many syncs carried it.
    let alerts = api_b.alerts("open").await.unwrap();
    let urgent = alerts.iter().filter(|a| a["kind"] == "urgent_blood_pressure").count();
    assert_eq!(urgent, DEVICES, "{alerts:?}");

    // Two clinicians acknowledge each alert at once, one through each
    // instance: one acknowledgement, and the alerts table names whoever the
    // record names.
    let nurse =
        katcore_clinic::add_clinician_in(database.open_unsealed().unwrap().as_ref(), &init.clinic_id, "Nurse Okafor")
            .unwrap();
    let nurse_b = ClinicianClient::new(&format!("http://127.0.0.1:{}", ports[1]), &nurse.clinician_token);
    let ack = |port: u16, token: String, alert: String| async move {
        let url = format!("http://127.0.0.1:{port}/v1/alerts/{alert}/ack");
        unpooled().post(url).bearer_auth(token).send().await.unwrap().status()
    };
    for alert in &alerts {
        let id = alert["alert_id"].as_str().unwrap().to_owned();
        let (first, second) = tokio::join!(
            ack(ports[0], init.clinician_token.clone(), id.clone()),
            ack(ports[1], nurse.clinician_token.clone(), id.clone()),
        );
        assert!(first.is_success() && second.is_success(), "{first} {second}");
    }
    for alert in nurse_b.alerts("all").await.unwrap() {
        let record = api_a.record(alert["client_id"].as_str().unwrap()).await.unwrap();
        let item = record["urgent_items"].as_array().unwrap().iter().find(|i| i["key"] == alert["key"]).unwrap();
        assert_eq!(alert["acknowledged_by"], item["acknowledged"]["by"], "the table and the record agree");
    }

    let redone = metric(ports[1], "katcore_clinic_record_conflicts_redone_total").await;
    let stale = metric(ports[1], "katcore_clinic_record_stale_reloads_total").await;
    for mut instance in [a, b] {
        instance.kill().unwrap();
        instance.wait().unwrap();
    }
    println!(
        "syncs acknowledged during the load: {syncs}; notes: {}; on B: {stale} stale records reloaded, \
         {redone} operations redone after a conflict",
        acknowledged_notes.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The database going away: requests that need it get `503` with
/// `Retry-After` (within the pool's bounded wait), `/readyz` says not
/// ready, `/healthz` stays live, and when the database is back the server
/// serves again, having lost nothing it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_503_and_not_ready_until_it_returns() {
    let dir = std::env::temp_dir().join(format!("katcore-db-outage-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = TestDatabase::new(&dir).unwrap();
    let Some(url) = database.url() else {
        println!("the database outage test needs PostgreSQL: set KATCORE_TEST_POSTGRES (scripts/postgres-test.sh)");
        return;
    };
    let init = database.init_clinic("Outage Clinic", "Dr. Rivera").unwrap();
    // The server reaches PostgreSQL only through a relay the test can cut.
    let target: url_parts::Target = url_parts::parse(url);
    let relay = Balancer::start(vec![target.addr]).await;
    let mut config = database.config();
    config.database_url = Some(katcore_clinic::DatabaseUrl::new(target.through(relay.addr)));
    let server = katcore_clinic::serve(config).await.unwrap();
    let base = server.url();
    let api = ClinicianClient::new(&base, &init.clinician_token);
    let client_id = api.create_client("client-1").await.unwrap();
    let code = api.enrollment_code(&client_id).await.unwrap();
    let key = StoreKey::from_bytes(&[9; 32]).unwrap();
    let phone = CoreDevice::open(&dir.join("phone.db"), &key, Some(Arc::new(unpooled()))).unwrap();
    phone.enroll(&base, &code, "phone").await.unwrap();
    phone.write_journal("before the outage", &JournalLinks::default(), false, chrono::Utc::now()).unwrap();
    phone.sync(SyncTrigger::User).await.unwrap();

    relay.cut();
    let http = unpooled();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key(reqwest::header::RETRY_AFTER));
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), reqwest::StatusCode::OK);
    let listed = http.get(format!("{base}/v1/clients")).bearer_auth(&init.clinician_token).send().await.unwrap();
    assert_eq!(listed.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(listed.headers().contains_key(reqwest::header::RETRY_AFTER));
    phone.write_journal("during the outage", &JournalLinks::default(), false, chrono::Utc::now()).unwrap();
    assert!(phone.sync(SyncTrigger::User).await.is_err(), "nothing is acknowledged without the database");

    relay.restore();
    let mut healed = false;
    for _ in 0..50 {
        if http.get(format!("{base}/readyz")).send().await.unwrap().status().is_success() {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed, "the server is ready again once the database is back");
    phone.sync(SyncTrigger::User).await.unwrap();
    let record = api.record(&client_id).await.unwrap().to_string();
    assert!(record.contains("before the outage") && record.contains("during the outage"));
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A clinic run on SQLite, copied with `PgStorage::copy_from_sqlite` to
/// PostgreSQL and served from there: the same clients, records, alerts
/// (acknowledged ones too), tokens and sign-ins; its phone syncs on through
/// the same address with the same token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_moves_from_sqlite_to_postgres_with_nothing_lost() {
    let dir = std::env::temp_dir().join(format!("katcore-move-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = TestDatabase::new(&dir.join("pg").tap_create()).unwrap();
    let Some(target_url) = target.url().map(str::to_owned) else {
        println!("the move to PostgreSQL needs PostgreSQL: set KATCORE_TEST_POSTGRES (scripts/postgres-test.sh)");
        return;
    };
    // The clinic on SQLite, its phone enrolled through a stable address.
    let sqlite = dir.join("clinic.db");
    let init = katcore_clinic::init_clinic(&sqlite, "Moving Clinic", "Dr. Rivera").unwrap();
    let on_sqlite = katcore_clinic::serve(katcore_clinic::Config::local(&sqlite)).await.unwrap();
    let address = Balancer::start(vec![on_sqlite.addr()]).await;
    let base = format!("http://{}", address.addr);
    let api = ClinicianClient::new(&base, &init.clinician_token);
    let client_id = api.create_client("client-moving").await.unwrap();
    let code = api.enrollment_code(&client_id).await.unwrap();
    let phone =
        CoreDevice::open(&dir.join("phone.db"), &StoreKey::from_bytes(&[5; 32]).unwrap(), Some(Arc::new(unpooled())))
            .unwrap();
    phone.enroll(&base, &code, "phone").await.unwrap();
    let urgent = katcore::checklist::BloodPressureReading { systolic: 195, diastolic: 126 };
    phone.record_blood_pressure(urgent, None, chrono::Utc::now()).unwrap();
    phone.write_journal("written on SQLite", &JournalLinks::default(), false, chrono::Utc::now()).unwrap();
    phone.sync(SyncTrigger::User).await.unwrap();
    api.add_note(&client_id, "a note on SQLite").await.unwrap();
    let second = api.create_client("client-unused").await.unwrap();
    let unused_code = api.enrollment_code(&second).await.unwrap();
    let alert = api.alerts("open").await.unwrap()[0]["alert_id"].as_str().unwrap().to_owned();
    let acked = unpooled()
        .post(format!("{base}/v1/alerts/{alert}/ack"))
        .bearer_auth(&init.clinician_token)
        .send()
        .await
        .unwrap();
    assert!(acked.status().is_success(), "{}", acked.status());
    let (record, alerts, clients) =
        (api.record(&client_id).await.unwrap(), api.alerts("all").await.unwrap(), api.clients().await.unwrap());
    on_sqlite.shutdown().await.unwrap();

    // The copy, with the server stopped; then the server on PostgreSQL with the same record key.
    let source = katcore_clinic::SqliteStorage::open(&sqlite).unwrap();
    let copied =
        PgStorage::connect(&target_url, &target.config().pg_options()).unwrap().copy_from_sqlite(&source).unwrap();
    let rows = |table: &str| copied.tables.iter().find(|(name, _)| name == table).map(|(_, n)| *n);
    assert_eq!(
        (rows("clinics"), rows("clients"), rows("devices"), rows("alerts")),
        (Some(1), Some(2), Some(1), Some(1))
    );
    assert!(
        rows("entry_receipts").is_some_and(|n| n >= 3),
        "the reading, the journal entry and the note were received"
    );
    let again = PgStorage::connect(&target_url, &target.config().pg_options()).unwrap().copy_from_sqlite(&source);
    assert!(again.is_err(), "a database that holds clinics is never copied into");
    let mut config = target.config();
    config.record_key = katcore_clinic::Config::local(&sqlite).record_key;
    let on_postgres = katcore_clinic::serve(config).await.unwrap();
    address.retarget(vec![on_postgres.addr()]);

    assert_eq!(api.record(&client_id).await.unwrap(), record, "the record, unchanged");
    assert_eq!(api.alerts("all").await.unwrap(), alerts, "the alerts and their acknowledgement");
    assert_eq!(api.clients().await.unwrap(), clients);
    // The phone's token, the unused code and new writes work as before.
    phone.write_journal("written on PostgreSQL", &JournalLinks::default(), false, chrono::Utc::now()).unwrap();
    phone.sync(SyncTrigger::User).await.unwrap();
    let after = api.record(&client_id).await.unwrap().to_string();
    assert!(after.contains("written on SQLite") && after.contains("written on PostgreSQL"));
    assert_eq!(phone.read(|r| r.to_json()), api.record(&client_id).await.unwrap());
    let (enrolled, _) = enroll(&base, &unused_code, "tablet").await;
    assert_eq!(enrolled, reqwest::StatusCode::OK, "an unused code stays usable");
    on_postgres.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Creates a directory and returns it.
trait TapCreate {
    fn tap_create(self) -> Self;
}

impl TapCreate for std::path::PathBuf {
    fn tap_create(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// Where a `postgres://user@host:port/db?…` URL points, and the same URL
/// through another address.
mod url_parts {
    use std::net::SocketAddr;

    pub(crate) struct Target {
        pub(crate) addr: SocketAddr,
        prefix: String,
        suffix: String,
    }

    impl Target {
        pub(crate) fn through(&self, relay: SocketAddr) -> String {
            format!("{}{relay}{}", self.prefix, self.suffix)
        }
    }

    pub(crate) fn parse(url: &str) -> Target {
        let at = url.find('@').expect("the test URL names a user") + 1;
        let end = url[at..].find('/').map_or(url.len(), |i| at + i);
        Target { addr: url[at..end].parse().expect("host:port"), prefix: url[..at].into(), suffix: url[end..].into() }
    }
}
