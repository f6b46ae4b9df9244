//! `katcore-hostile`: a recorded run of hostile traffic against the real
//! server binary on loopback, for RELIABILITY.md ("Hostile traffic").
//!
//! It starts `katcore-clinic` (release, default limits) as a child process,
//! enrolls an honest device and keeps it syncing one entry every 200 ms
//! throughout, and in turn:
//! 1. posts decompression bombs (a 1 MiB compressed change that inflates to
//!    1 GiB) with a valid device token;
//! 2. opens a slowloris flood: connections from 127.0.0.2–127.0.0.9 that
//!    never finish their headers;
//! 3. opens a slow-body flood: authenticated syncs announcing 16 MiB and
//!    sending a byte a second;
//! 4. scans the database files for the text the honest device synced.
//!
//! For each it prints the server's peak resident memory (`VmHWM`), when the
//! flood's connections were dropped, and the honest syncs' latency.
//!
//! ```text
//! cargo build --release -p katcore-clinic -p katcore-e2e
//! target/release/katcore-hostile [--server target/release/katcore-clinic] [--flood 900]
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::ChangeHash;
use katcore::record::{CareRecord, CheckInInput, JournalLinks};
use katcore::sync::wire::{SyncRequest, SyncResponse, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The text the honest device writes, looked for in the database files.
const MARKER: &str = "hostile-run-marker: the drive home felt long";

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's peak resident memory so far, in MiB.
    fn peak_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

fn start(binary: &Path, dir: &Path) -> (Server, Value) {
    let db = dir.join("clinic.db");
    let key = dir.join("record.key");
    let init = Command::new(binary.with_file_name("katctl"))
        .args(["clinic", "init", "--db"])
        .arg(&db)
        .args(["--name", "Hostile Run Clinic", "--clinician", "Dr. Rivera", "--signing-key-out"])
        .arg(dir.join("signing.pem"))
        .arg("--record-key-out")
        .arg(&key)
        .output()
        .expect("katctl clinic init (build katctl in the same profile)");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let init: Value = serde_json::from_slice(&init.stdout).expect("init JSON");
    let mut child = Command::new(binary)
        .arg("--db")
        .arg(&db)
        .arg("--record-key")
        .arg(&key)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start katcore-clinic");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line)
        .expect("the listening line");
    let url = line.trim().rsplit(' ').next().expect("a URL").trim_start_matches("http://").to_owned();
    (Server { child, addr: url.parse().expect("an address") }, init)
}

struct Honest {
    token: String,
    record: CareRecord,
    server_heads: Vec<ChangeHash>,
}

impl Honest {
    async fn sync(&mut self, http: &reqwest::Client, url: &str) -> Result<Duration, String> {
        let since = self.server_heads.clone();
        let changes = if since.is_empty() { self.record.save() } else { self.record.save_after(&since) };
        let body = SyncRequest { since, heads: self.record.heads(), changes }.encode();
        let started = Instant::now();
        let response = http
            .post(format!("{url}/v1/sync"))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if status != 200 {
            return Err(format!("status {status}"));
        }
        let answer = SyncResponse::decode(&bytes).map_err(|e| e.to_string())?;
        self.record.merge_bytes(&answer.changes).map_err(|e| e.to_string())?;
        self.server_heads = answer.heads;
        Ok(elapsed)
    }
}

/// Syncs one new entry every 200 ms until `stop`; returns the latencies in
/// ms and the number of failed syncs.
async fn honest_loop(mut device: Honest, url: String, stop: Arc<AtomicBool>) -> (Vec<f64>, usize, Honest) {
    let http = reqwest::Client::new();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    let mut n = 0u8;
    while !stop.load(Ordering::Relaxed) {
        device.record.add_check_in(CheckInInput::Mood(n % 10), chrono::Utc::now()).expect("a check-in");
        n = n.wrapping_add(1);
        match device.sync(&http, &url).await {
            Ok(elapsed) => latencies.push(elapsed.as_secs_f64() * 1000.0),
            Err(_) => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (latencies, failures, device)
}

fn summary(latencies: &mut [f64]) -> String {
    if latencies.is_empty() {
        return "no syncs".into();
    }
    latencies.sort_by(f64::total_cmp);
    let q = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    format!("{} syncs, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", latencies.len(), q(0.5), q(0.99), q(1.0))
}

async fn connect_from(addr: SocketAddr, last: u8) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from(([127, 0, 0, last], 0))).ok()?;
    socket.connect(addr).await.ok()
}

/// Waits until every stream is closed by the server (or `limit` passes);
/// returns how long the last one took and how many were still open.
async fn time_to_drop<R>(streams: Vec<R>, since: Instant, limit: Duration) -> (Duration, usize)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in streams {
        tasks.spawn(async move {
            let mut buffer = [0u8; 512];
            let deadline = tokio::time::Instant::from_std(since + limit);
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                    Err(_) => return None,
                    Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
                    Ok(Ok(_)) => {}
                }
            }
        });
    }
    let (mut last, mut open) = (Duration::ZERO, 0);
    while let Some(done) = tasks.join_next().await {
        match done.ok().flatten() {
            Some(at) => last = last.max(at),
            None => open += 1,
        }
    }
    (last, open)
}

/// Creates a client and enrolls one device for it; returns the device token.
async fn enroll_device(http: &reqwest::Client, url: &str, clinician: &str, label: &str) -> String {
    let call = |request: reqwest::RequestBuilder| async move {
        request.send().await.expect("the server answers").json::<Value>().await.expect("a JSON answer")
    };
    let client =
        call(http.post(format!("{url}/v1/clients")).bearer_auth(clinician).json(&json!({"label": label}))).await;
    let client_id = client["client_id"].as_str().expect("a client id");
    let code = call(http.post(format!("{url}/v1/clients/{client_id}/enrollment-codes")).bearer_auth(clinician)).await;
    let body = json!({"code": code["code"], "device_label": label});
    let enrolled = call(http.post(format!("{url}/v1/enroll")).json(&body)).await;
    enrolled["device_token"].as_str().expect("a device token").to_owned()
}

/// A compressed change chunk (type 2) whose data inflates to `size` zeros.
fn bomb(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..size / block.len() {
        encoder.write_all(&block).expect("deflate");
    }
    let data = encoder.finish().expect("deflate");
    let mut length = Vec::new();
    let mut value = data.len() as u64;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            length.push(byte);
            break;
        }
        length.push(byte | 0x80);
    }
    [&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2][..], &length, &data].concat()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let binary = PathBuf::from(arg("--server").unwrap_or_else(|| "target/release/katcore-clinic".into()));
    let flood: usize = arg("--flood").and_then(|v| v.parse().ok()).unwrap_or(900);
    let dir = std::env::temp_dir().join(format!("katcore-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a work directory");
    let (server, init) = start(&binary, &dir);
    let url = server.url();
    let http = reqwest::Client::new();
    let clinician = init["clinician_token"].as_str().expect("a clinician token").to_owned();
    let token = enroll_device(&http, &url, &clinician, "hostile-run").await;
    // The attacker: another client's device token, in hostile hands.
    let attacker_token = enroll_device(&http, &url, &clinician, "stolen-phone").await;
    let mut honest = Honest { token: token.clone(), record: CareRecord::default(), server_heads: Vec::new() };
    honest.record.write_journal_entry(MARKER, &JournalLinks::default(), chrono::Utc::now()).expect("an entry");
    honest.sync(&http, &url).await.expect("the first honest sync");
    println!("katcore-hostile: server {url}, baseline peak {:.1} MiB", server.peak_mib());

    // 1. Bombs.
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(honest_loop(honest, url.clone(), Arc::clone(&stop)));
    let payload = bomb(1024 * 1024 * 1024);
    let mut statuses = Vec::new();
    let started = Instant::now();
    for _ in 0..10 {
        let body = SyncRequest { since: Vec::new(), heads: Vec::new(), changes: payload.clone() }.encode();
        let response = http
            .post(format!("{url}/v1/sync"))
            .bearer_auth(&attacker_token)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .expect("a bomb");
        statuses.push(response.status().as_u16());
    }
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failures, honest) = running.await.expect("honest loop");
    println!(
        "1. bombs: 10 × {} B inflating to 1 GiB each → statuses {:?} in {:.2} s; server peak {:.1} MiB; \
         honest: {} ({failures} failed)",
        payload.len(),
        statuses,
        started.elapsed().as_secs_f64(),
        server.peak_mib(),
        summary(&mut latencies)
    );

    // 2. Slowloris.
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(honest_loop(honest, url.clone(), Arc::clone(&stop)));
    let started = Instant::now();
    let mut streams = Vec::new();
    for i in 0..flood {
        if let Some(mut stream) = connect_from(server.addr, 2 + (i % 8) as u8).await {
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: clin").await;
            streams.push(stream);
        }
    }
    let opened = streams.len();
    let (last, open) = time_to_drop(streams, started, Duration::from_secs(40)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failures, honest) = running.await.expect("honest loop");
    println!(
        "2. slowloris: {opened} connections from 8 addresses that never finish their headers → all but {open} \
         closed, the last {:.1} s after the flood began; server peak {:.1} MiB; honest: {} ({failures} failed)",
        last.as_secs_f64(),
        server.peak_mib(),
        summary(&mut latencies)
    );

    // 3. Slow bodies.
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(honest_loop(honest, url.clone(), Arc::clone(&stop)));
    let started = Instant::now();
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: clinic\r\nAuthorization: Bearer {attacker_token}\r\n\
         Content-Type: {CONTENT_TYPE}\r\nContent-Length: 16777216\r\n\r\n"
    );
    let mut streams = Vec::new();
    for i in 0..flood.min(200) {
        if let Some(mut stream) = connect_from(server.addr, 2 + (i % 8) as u8).await {
            let _ = stream.write_all(head.as_bytes()).await;
            streams.push(stream);
        }
    }
    let opened = streams.len();
    let (readers, mut writers): (Vec<_>, Vec<_>) = streams.into_iter().map(TcpStream::into_split).unzip();
    let trickle = tokio::spawn(async move {
        for _ in 0..45 {
            for writer in &mut writers {
                let _ = writer.write_all(&[1u8; 1024]).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let (last, open) = time_to_drop(readers, started, Duration::from_secs(50)).await;
    trickle.abort();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, failures, _) = running.await.expect("honest loop");
    println!(
        "3. slow bodies: {opened} syncs with one stolen device token, announcing 16 MiB, sending 1 KiB a second → \
         all but {open} answered and closed, the last {:.1} s after the flood began; server peak {:.1} MiB; honest: {} \
         ({failures} failed)",
        last.as_secs_f64(),
        server.peak_mib(),
        summary(&mut latencies)
    );

    // 4. Plaintext at rest.
    drop(server);
    let mut hits = 0;
    let mut scanned = 0;
    for file in std::fs::read_dir(&dir).expect("the work directory").map(|e| e.expect("an entry").path()) {
        if file.file_name().is_some_and(|name| name.to_string_lossy().starts_with("clinic.db")) {
            let bytes = std::fs::read(&file).expect("a database file");
            scanned += bytes.len();
            hits += bytes.windows(MARKER.len()).filter(|w| *w == MARKER.as_bytes()).count();
        }
    }
    println!("4. at rest: {scanned} B of database files scanned for the synced journal text → {hits} hits");
    let _ = std::fs::remove_dir_all(&dir);
}
