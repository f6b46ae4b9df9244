//! One-entry sync latency on a large record against a fresh one.
//!
//! A real clinic server on loopback (`Clinic::start`, release build); two
//! clients, each with one enrolled device speaking the wire format
//! directly. One device first uploads a record of `KATCORE_GROWTH_ENTRIES`
//! entries (default 50,000 check-ins, one Automerge change each, as a phone
//! writes them), in uploads of at most 10,000 entries; then both devices
//! alternately add one entry and sync, `KATCORE_GROWTH_SYNCS` times each
//! (default 200), and the latencies are compared. Goal (BENCHMARKS.md): the
//! large record's p50 within 2× the fresh one's.
//!
//! `cargo bench -p katcore-e2e --bench sync_growth`

use std::time::{Duration, Instant};

use automerge::ChangeHash;
use katcore::record::{CareRecord, CheckInInput};
use katcore::sync::wire::{SyncRequest, SyncResponse, CONTENT_TYPE};
use katcore_e2e::Clinic;
use serde_json::{json, Value};

const ENTRIES_ENV: &str = "KATCORE_GROWTH_ENTRIES";
const SYNCS_ENV: &str = "KATCORE_GROWTH_SYNCS";

/// A device speaking the wire format: its record and the server heads it saw.
struct WireDevice {
    token: String,
    record: CareRecord,
    server_heads: Vec<ChangeHash>,
}

impl WireDevice {
    async fn enroll(clinic: &Clinic, http: &reqwest::Client, label: &str) -> WireDevice {
        let client = clinic.api.create_client(label).await;
        let code = clinic.api.enrollment_code(&client).await;
        let enrolled: Value = http
            .post(format!("{}/v1/enroll", clinic.url()))
            .json(&json!({"code": code, "device_label": "bench phone"}))
            .send()
            .await
            .expect("enroll")
            .json()
            .await
            .expect("enrollment answer");
        WireDevice {
            token: enrolled["device_token"].as_str().expect("a token").to_owned(),
            record: CareRecord::default(),
            server_heads: Vec::new(),
        }
    }

    /// One protocol-conformant sync; panics unless it is `200`.
    async fn sync(&mut self, clinic: &Clinic, http: &reqwest::Client) -> Duration {
        let since = self.server_heads.clone();
        let changes = if since.is_empty() { self.record.save() } else { self.record.save_after(&since) };
        let body = SyncRequest { since, heads: self.record.heads(), changes }.encode();
        let started = Instant::now();
        let response = http
            .post(format!("{}/v1/sync", clinic.url()))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .expect("sync");
        let status = response.status();
        let bytes = response.bytes().await.expect("sync answer");
        let elapsed = started.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        let answer = SyncResponse::decode(&bytes).expect("a sync answer");
        self.record.merge_bytes(&answer.changes).expect("merge the answer");
        self.server_heads = answer.heads;
        elapsed
    }

    fn add_entry(&mut self, n: usize) {
        self.record.add_check_in(CheckInInput::Mood((n % 10) as u8), chrono::Utc::now()).expect("a check-in");
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries: usize = std::env::var(ENTRIES_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(50_000);
    let syncs: usize = std::env::var(SYNCS_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let clinic = Clinic::start("sync-growth").await;
    let http = reqwest::Client::new();
    let mut large = WireDevice::enroll(&clinic, &http, "large").await;
    let mut fresh = WireDevice::enroll(&clinic, &http, "fresh").await;

    eprintln!("== sync_growth: uploading {entries} entries …");
    let started = Instant::now();
    for n in 0..entries {
        large.add_entry(n);
        if (n + 1) % 10_000 == 0 || n + 1 == entries {
            large.sync(&clinic, &http).await;
        }
    }
    eprintln!("   uploaded in {:.1} s", started.elapsed().as_secs_f64());
    large.sync(&clinic, &http).await;
    fresh.add_entry(0);
    fresh.sync(&clinic, &http).await;

    let (mut on_large, mut on_fresh) = (Vec::new(), Vec::new());
    for n in 0..syncs {
        large.add_entry(n);
        on_large.push(large.sync(&clinic, &http).await.as_secs_f64() * 1000.0);
        fresh.add_entry(n);
        on_fresh.push(fresh.sync(&clinic, &http).await.as_secs_f64() * 1000.0);
    }
    on_large.sort_by(f64::total_cmp);
    on_fresh.sort_by(f64::total_cmp);
    let (large_p50, fresh_p50) = (quantile(&on_large, 0.5), quantile(&on_fresh, 0.5));
    println!("sync_growth: one-entry sync, {syncs} syncs each");
    println!("  record of {entries} entries: p50 {large_p50:.2} ms, p99 {:.2} ms", quantile(&on_large, 0.99));
    println!("  fresh record:            p50 {fresh_p50:.2} ms, p99 {:.2} ms", quantile(&on_fresh, 0.99));
    println!("  ratio (p50): {:.2}× (goal ≤ 2×)", large_p50 / fresh_p50);
    clinic.server.shutdown().await.expect("shutdown");
}
