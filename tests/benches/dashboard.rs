//! The clinic's views of a two-year record: how long the server takes to
//! answer a client's dashboard page (alerts, plots, every session with its
//! decisions, journal, notes, devices) and the landing page, what a sign-in
//! costs (Argon2id), and the record's FHIR R4 export (time and size).
//!
//! `cargo bench -p katcore-e2e --bench dashboard`: a release server on
//! loopback; the record is `two_year::build_record`'s (`KATCORE_BENCH_YEARS`
//! changes its length), seeded on the server as `sync_wire` does. Prints
//! medians and 95th percentiles of wall time at the client (reqwest over a
//! kept-alive connection) and the sizes. Figures: BENCHMARKS.md,
//! "Dashboard" and "FHIR export".

#[path = "../../core/benches/support/two_year.rs"]
#[allow(dead_code)]
mod two_year;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use katcore::device::Device;
use katcore::store::StoreKey;
use katcore::sync::{http_client, SyncTrigger};
use katcore_clinic::{set_password, RecordUpdate};
use katcore_e2e::Clinic;
use reqwest::header::{COOKIE, SET_COOKIE};

/// Requests timed per page.
const SAMPLES: usize = 40;
/// Sign-ins timed.
const SIGN_INS: usize = 10;
const PASSWORD: &str = "a benchmark's password";

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(run());
}

/// Median and 95th percentile of `samples`, in milliseconds.
fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    format!("p50 {:.1} ms, p95 {:.1} ms ({} samples)", at(0.5), at(0.95), samples.len())
}

/// The value of the first hidden `csrf` field of a page.
fn csrf(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
    html[start..].split('"').next().expect("a token").to_owned()
}

/// Signs in as `login`; returns the session cookie and how long the
/// `POST /dashboard/signin` took.
async fn sign_in(http: &reqwest::Client, url: &str, login: &str) -> (String, Duration) {
    let page = http.get(format!("{url}/dashboard/signin")).send().await.expect("sign-in page");
    let cookie = page.headers()[SET_COOKIE].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
    let token = csrf(&page.text().await.expect("page"));
    let started = Instant::now();
    let answer = http
        .post(format!("{url}/dashboard/signin"))
        .header(COOKIE, cookie)
        .form(&[("csrf", token.as_str()), ("login", login), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    let took = started.elapsed();
    assert_eq!(answer.status(), 303, "signed in");
    let session = answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("katcore_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    (session, took)
}

/// Times `SAMPLES` GETs of `path` (after one warm-up); returns the timings and the page's size.
async fn time_page(http: &reqwest::Client, url: &str, session: &str, path: &str) -> (Vec<Duration>, usize) {
    let mut size = 0;
    let mut samples = Vec::with_capacity(SAMPLES);
    for round in 0..=SAMPLES {
        let started = Instant::now();
        let page = http.get(format!("{url}{path}")).header(COOKIE, session).send().await.expect("page");
        assert_eq!(page.status(), 200, "{path}");
        size = page.bytes().await.expect("body").len();
        if round > 0 {
            samples.push(started.elapsed());
        }
    }
    (samples, size)
}

async fn run() {
    let years: f64 =
        std::env::var("KATCORE_BENCH_YEARS").ok().and_then(|v| v.parse().ok()).unwrap_or(two_year::DEFAULT_YEARS);
    eprintln!("== dashboard: building a {years}-year record …");
    let dir = katcore_e2e::temp_dir("dashboard-bench-phone");
    let transport = Arc::new(http_client(None).expect("an HTTP client"));
    let phone = Device::open(&dir.join("device.db"), &StoreKey::from_bytes(&[7; 32]).expect("key"), Some(transport))
        .expect("a device");
    let store = phone.store().clone();
    let built = tokio::task::block_in_place(|| two_year::build_record(&store, years));
    eprintln!(
        "   {} sessions, {} journal entries, {} check-ins, {} notes",
        built.sessions,
        built.journal_entries,
        built.mood_check_ins + built.phq9 + built.gad7,
        built.notes
    );

    let clinic = Clinic::start("dashboard-bench").await;
    let client_id = clinic.api.create_client("client-0427").await;
    let code = clinic.api.enrollment_code(&client_id).await;
    phone.enroll(&clinic.url(), &code, "phone").await.expect("enroll");
    let storage = clinic.database.open().expect("the clinic's database");
    // Every entry with its receipt, as the clinic keeps them (the page reads them all).
    let received: Vec<String> = store.read(|r| {
        let doc = r.document();
        katcore::record::received_entries(doc, &doc.get_changes(&[])).into_iter().collect()
    });
    eprintln!("   {} entry receipts", received.len());
    let update = RecordUpdate {
        change: &store.read(|r| r.save()),
        expected_seq: storage.record_seq(&client_id).expect("the record's seq"),
        planned_sessions: None,
        urgent: &[],
        at: Utc::now(),
        synced_device: None,
        new_actors: &[],
        device_clock_offset_ms: None,
        received: &received,
    };
    storage.append_record_change(&client_id, &update).expect("seed the record");
    let started = std::time::Instant::now();
    let read = storage.entry_receipts(&client_id, "").expect("receipts").len();
    eprintln!("   read {read} receipts in {:.2} ms", started.elapsed().as_secs_f64() * 1e3);
    phone.sync(SyncTrigger::User).await.expect("sync");
    set_password(storage.as_ref(), &clinic.init.clinician_id, "rivera", PASSWORD).expect("a sign-in");

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client");
    let url = clinic.url();
    let mut sign_ins = Vec::new();
    let mut session = String::new();
    for _ in 0..SIGN_INS {
        let (cookie, took) = sign_in(&http, &url, "rivera").await;
        sign_ins.push(took);
        session = cookie;
    }
    println!("sign-in (Argon2id check + session): {}", summary(sign_ins));
    let (client, client_size) = time_page(&http, &url, &session, &format!("/dashboard/clients/{client_id}")).await;
    println!("client page, {years}-year record: {} — {client_size} B", summary(client));
    let (alerts, alerts_size) = time_page(&http, &url, &session, "/dashboard").await;
    println!("alerts page: {} — {alerts_size} B", summary(alerts));
    let (clients, clients_size) = time_page(&http, &url, &session, "/dashboard/clients").await;
    println!("clients page: {} — {clients_size} B", summary(clients));
    let mut exports = Vec::with_capacity(SAMPLES);
    let mut export_size = 0;
    let mut resources = 0;
    let path = format!("{url}/v1/clients/{client_id}/fhir");
    for round in 0..=SAMPLES {
        let started = Instant::now();
        let answer = http.get(&path).bearer_auth(&clinic.init.clinician_token).send().await.expect("export");
        assert_eq!(answer.status(), 200, "export");
        let body = answer.bytes().await.expect("body");
        if round > 0 {
            exports.push(started.elapsed());
        }
        export_size = body.len();
        let bundle: serde_json::Value = serde_json::from_slice(&body).expect("a bundle");
        resources = bundle["entry"].as_array().map_or(0, Vec::len);
    }
    println!("FHIR export, {years}-year record: {} — {export_size} B, {resources} resources", summary(exports));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(clinic.db.parent().expect("the database's directory"));
}
