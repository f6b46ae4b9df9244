//! `katcore-load`: a load generator for the clinic server's sync endpoint
//! (issue 4, "server throughput").
//!
//! It starts a clinic server in-process on `127.0.0.1` (its database on the
//! real disk, in its own Tokio runtime on threads named `clinic`), or targets
//! `--url` with a clinician `--token` (loopback addresses only). It enrolls
//! as many devices as the largest level asks for, one client each, gives each
//! a small record (a few journal entries and mood check-ins) and syncs it
//! once. Then, for each level N, it runs N devices concurrently for a fixed
//! time; each device loops: write one short journal entry, then
//! `sync_now(SyncTrigger::User)`. Only the `sync_now` call is timed. Syncs
//! that complete inside the measuring window (after a warm-up) count.
//!
//! The devices are real [`CareStore`](katcore::CareStore)s and [`SyncClient`](katcore::SyncClient)s sharing one
//! production HTTP client (keep-alive connections); their stores are on
//! `/dev/shm` by default, so that the load generator's own `fsync`s do not
//! compete with the server's for the disk.
//!
//! ```text
//! cargo run --release -p katcore-e2e --bin katcore-load -- [--levels 50,200,1000] [--seconds 10]
//!     [--warmup 1] [--runs 3] [--max-syncs 100000] [--rate SYNCS_PER_SECOND] [--device-dir DIR]
//!     [--server-db-dir DIR] [--database-url postgres://… [--instances N]] [--url URL[,URL…] --token TOKEN]
//! ```
//!
//! With `--database-url` the in-process server runs on PostgreSQL (a fresh
//! schema of that database), as `--instances` separate servers (each its
//! own cache, limiter and Automerge actor, sharing the database); device i
//! enrolls with, and syncs through, instance i mod N, as a sticky load
//! balancer would place it. `--url` may likewise list several servers.
//!
//! Without `--rate` the devices run in a closed loop (each syncs again as soon
//! as its last sync returned), which measures the server's saturation
//! throughput; latency is then N divided by the throughput. With `--rate` the
//! devices together offer that many syncs per second, each starting a sync
//! every N/rate seconds from a random phase, which measures latency at a
//! given load.
//!
//! Prints one Markdown row per level (median of the runs) and every run on stderr.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use katcore::device::Device;
use katcore::record::JournalLinks;
use katcore::store::StoreKey;
use katcore::sync::{http_client, SyncTrigger};
use katcore_clinic::{serve, ServerHandle, TestDatabase};
use katcore_e2e::ClinicianApi;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Goals from the issue, at 200 concurrent devices.
const GOAL_LEVEL: usize = 200;
const GOAL_SYNCS_PER_SECOND: f64 = 500.0;
const GOAL_P99_MS: f64 = 100.0;

/// Devices enrolled at the same time during setup.
const ENROLL_PARALLELISM: usize = 32;

const USAGE: &str = "\
katcore-load: concurrent incremental syncs against a katcore clinic server

USAGE:
    katcore-load [--levels 50,200,1000] [--seconds 10] [--warmup 1] [--runs 3] [--max-syncs 100000]
                 [--rate SYNCS_PER_SECOND] [--device-dir DIR] [--server-db-dir DIR]
                 [--database-url postgres://... [--instances N]] [--url URL[,URL...] --token CLINICIAN_TOKEN]

Without --rate every device syncs again as soon as its last sync returned (closed loop: the server's
saturation throughput). With --rate the devices together offer that many syncs per second, each device
starting a sync every N/rate seconds (a device never has two syncs in flight).
Without --url it starts a clinic server in-process on 127.0.0.1, its database in a temporary directory
on the real disk (or in --server-db-dir, e.g. /dev/shm, to see what the server does without disk flushes).
--database-url runs the in-process server on PostgreSQL (a fresh schema), as --instances servers on one
database; device i syncs through instance i mod N. --url may list several servers, comma-separated.
--url must be a loopback address (127.0.0.1, ::1 or localhost).";

/// The command line.
#[derive(Debug)]
struct Options {
    levels: Vec<usize>,
    seconds: f64,
    warmup: f64,
    runs: usize,
    max_syncs: u64,
    device_dir: Option<PathBuf>,
    server_db_dir: Option<PathBuf>,
    rate: Option<f64>,
    url: Option<String>,
    database_url: Option<String>,
    instances: usize,
    token: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        levels: vec![50, 200, 1000],
        seconds: 10.0,
        warmup: 1.0,
        runs: 3,
        max_syncs: 100_000,
        device_dir: None,
        server_db_dir: None,
        rate: None,
        url: None,
        database_url: None,
        instances: 1,
        token: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_owned());
        }
        let mut value = || args.next().ok_or_else(|| format!("`{arg}` needs a value\n\n{USAGE}"));
        let number = |v: String| v.parse::<f64>().map_err(|_| format!("`{arg}`: `{v}` is not a number"));
        match arg.as_str() {
            "--levels" => {
                options.levels = value()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|_| format!("--levels: `{n}` is not a count")))
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => options.seconds = number(value()?)?,
            "--warmup" => options.warmup = number(value()?)?,
            "--runs" => options.runs = number(value()?)?.max(1.0) as usize,
            "--max-syncs" => options.max_syncs = number(value()?)?.max(1.0) as u64,
            "--device-dir" => options.device_dir = Some(PathBuf::from(value()?)),
            "--server-db-dir" => options.server_db_dir = Some(PathBuf::from(value()?)),
            "--rate" => options.rate = Some(number(value()?)?).filter(|r| *r > 0.0),
            "--url" => options.url = Some(value()?.trim_end_matches('/').to_owned()),
            "--token" => options.token = Some(value()?),
            "--database-url" => options.database_url = Some(value()?),
            "--instances" => options.instances = number(value()?)?.clamp(1.0, 16.0) as usize,
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if options.levels.is_empty() || options.levels.contains(&0) {
        return Err("--levels needs positive counts".into());
    }
    if !(options.seconds > 0.0 && options.seconds <= 600.0 && options.warmup >= 0.0 && options.warmup <= 60.0) {
        return Err("--seconds must be in (0, 600] and --warmup in [0, 60]".into());
    }
    if options.instances > 1 && options.database_url.is_none() {
        return Err("--instances needs --database-url: several servers share only a PostgreSQL database".into());
    }
    for url in options.url.iter().flat_map(|list| list.split(',')) {
        if options.token.is_none() {
            return Err("--url needs --token (a clinician token)".into());
        }
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .and_then(|rest| rest.split('/').next())
            .ok_or("--url must start with http:// or https://")?;
        let host = host.rsplit_once(':').map_or(host, |(h, port)| if port.parse::<u16>().is_ok() { h } else { host });
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!("--url must be a loopback address, not `{host}`"));
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // The server (when in-process) and the load run in separate runtimes, so
    // that the devices' synchronous store calls never block the server's workers.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clinic")
        .enable_all()
        .build()
        .expect("server runtime");
    let load_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("load runtime");

    let mut probe_dir = std::env::temp_dir();
    let mut server_dir: Option<PathBuf> = None;
    let mut local_servers: Vec<ServerHandle> = Vec::new();
    let (urls, token) = match (&options.url, &options.token) {
        (Some(url), Some(token)) => {
            (url.split(',').map(|u| u.trim_end_matches('/').to_owned()).collect(), token.clone())
        }
        _ => {
            let dir = match &options.server_db_dir {
                Some(parent) => {
                    let dir = parent.join(format!("katcore-load-clinic-{}", katcore::record::new_id()));
                    std::fs::create_dir_all(&dir).expect("server database directory");
                    dir
                }
                None => katcore_e2e::temp_dir("load-clinic"),
            };
            let database = match &options.database_url {
                Some(url) => TestDatabase::postgres(url, &dir).expect("a fresh PostgreSQL schema"),
                None => TestDatabase::new(&dir).expect("a SQLite database"),
            };
            let init = database.init_clinic("Load Test Clinic", "Dr. Load").expect("init clinic");
            let mut urls = Vec::new();
            for _ in 0..options.instances {
                // Every simulated device connects from 127.0.0.1: the per-address
                // connection bound, meant for strangers, is lifted to the total.
                let mut config = database.config();
                config.limits.max_connections = 4096;
                config.limits.max_connections_per_ip = 4096;
                let server = server_runtime.block_on(serve(config)).expect("start the clinic server");
                let backend = if database.is_postgres() { "PostgreSQL" } else { "SQLite" };
                eprintln!("clinic server on {} ({backend}, in {}, removed at exit)", server.url(), dir.display());
                urls.push(server.url());
                local_servers.push(server);
            }
            probe_dir = dir.clone();
            server_dir = Some(dir);
            (urls, init.clinician_token)
        }
    };

    let results = load_runtime.block_on(run(&options, &urls, &token, &probe_dir));
    print_results(&options, &results);

    for server in local_servers {
        let _ = server_runtime.block_on(server.shutdown());
    }
    if let Some(dir) = server_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// One simulated device.
type LoadDevice = Device;

/// What one run at one level measured.
#[derive(Clone, Debug)]
struct RunResult {
    syncs: u64,
    errors: u64,
    window: Duration,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU seconds used by the server's threads and the load generator's, during the run.
    cpu_server: f64,
    cpu_load: f64,
    /// Threads of the in-process server at the end of the window (workers and blocking threads).
    server_threads: usize,
    /// Latency of a 4 KiB write and `fdatasync` next to the server's database, sampled
    /// ten times a second during the window: how fast the disk flushed at the time.
    flush_p50_ms: f64,
    flush_p99_ms: f64,
}

impl RunResult {
    fn per_second(&self) -> f64 {
        self.syncs as f64 / self.window.as_secs_f64()
    }
}

async fn run(options: &Options, urls: &[String], token: &str, probe_dir: &Path) -> Vec<(usize, Vec<RunResult>)> {
    let api = ClinicianApi::new(&urls[0], token);
    let http = http_client(None).expect("HTTP client");
    let max = options.levels.iter().copied().max().unwrap_or(1);
    let base = options.device_dir.clone().unwrap_or_else(default_device_dir);
    std::fs::create_dir_all(&base).expect("device directory");
    let remove_base = options.device_dir.is_none();
    eprintln!("enrolling {max} devices (one client each, stores under {}) …", base.display());
    let started = Instant::now();
    let devices = enroll_devices(&api, &http, urls, &base, max).await;
    eprintln!(
        "  {max} devices enrolled, given a small record and synced once in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    for &level in &options.levels {
        let mut runs = Vec::new();
        for run in 0..options.runs {
            let result = run_level(&devices[..level], options, probe_dir).await;
            eprintln!(
                "  N={level} run {}: {} syncs in {:.1} s = {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors; \
                 CPU: server {:.2} s ({:.0}%, {} threads), load generator {:.2} s ({:.0}%); \
                 disk flush p50 {:.2} ms, p99 {:.2} ms",
                run + 1,
                result.syncs,
                result.window.as_secs_f64(),
                result.per_second(),
                result.p50_ms,
                result.p99_ms,
                result.max_ms,
                result.errors,
                result.cpu_server,
                100.0 * result.cpu_server / result.window.as_secs_f64(),
                result.server_threads,
                result.cpu_load,
                100.0 * result.cpu_load / result.window.as_secs_f64(),
                result.flush_p50_ms,
                result.flush_p99_ms,
            );
            runs.push(result);
        }
        results.push((level, runs));
    }
    drop(devices);
    if remove_base {
        let _ = std::fs::remove_dir_all(&base);
    }
    results
}

fn default_device_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    parent.join(format!("katcore-load-{}", katcore::record::new_id()))
}

async fn enroll_devices(
    api: &ClinicianApi,
    http: &reqwest::Client,
    urls: &[String],
    base: &Path,
    count: usize,
) -> Vec<Arc<LoadDevice>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(ENROLL_PARALLELISM));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let url = urls[i % urls.len()].clone();
        let (api, http, path) = (api.clone(), http.clone(), base.join(format!("device-{i}.db")));
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore");
            let client = api.create_client(&format!("load-{i:04}")).await;
            let code = api.enrollment_code(&client).await;
            let key = StoreKey::from_bytes(&[7; 32]).expect("key");
            let device = Device::open(&path, &key, Some(Arc::new(http))).expect("device store");
            device.enroll(&url, &code, &format!("load-device-{i}")).await.expect("enroll");
            let mut rng = StdRng::seed_from_u64(i as u64);
            for day in 0..3 {
                let at = Utc::now() - chrono::Duration::days(3 - day);
                device.write_journal(&prose(&mut rng, 300), &JournalLinks::default(), false, at).expect("entry");
                device.record_mood(rng.gen_range(3..=9), at).expect("check-in");
            }
            device.sync(SyncTrigger::User).await.expect("first sync");
            (i, Arc::new(device))
        });
    }
    let mut devices: Vec<(usize, Arc<LoadDevice>)> = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        devices.push(done.expect("enrollment task"));
    }
    devices.sort_by_key(|(i, _)| *i);
    devices.into_iter().map(|(_, d)| d).collect()
}

/// Words for short journal entries.
const WORDS: &[&str] = &[
    "today",
    "I",
    "felt",
    "calm",
    "after",
    "the",
    "session",
    "walked",
    "slept",
    "well",
    "anxious",
    "morning",
    "noticed",
    "breathing",
    "slower",
    "talked",
    "with",
    "my",
    "sister",
    "about",
    "memories",
    "lighter",
    "tired",
    "but",
    "hopeful",
    "music",
    "helped",
    "wrote",
    "down",
    "thoughts",
    "evening",
    "quiet",
    "heavy",
    "clearer",
    "kinder",
    "to",
    "myself",
];

/// A short text of varied words, about `chars` long.
fn prose(rng: &mut StdRng, chars: usize) -> String {
    let mut text = String::with_capacity(chars + 16);
    while text.len() < chars {
        if !text.is_empty() {
            text.push(if rng.gen_bool(0.1) { '.' } else { ',' });
            text.push(' ');
        }
        for k in 0..rng.gen_range(3..9) {
            if k > 0 {
                text.push(' ');
            }
            text.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
        }
    }
    text.push('.');
    text
}

async fn run_level(devices: &[Arc<LoadDevice>], options: &Options, probe_dir: &Path) -> RunResult {
    let warmup = Duration::from_secs_f64(options.warmup);
    let window = Duration::from_secs_f64(options.seconds);
    let started = Instant::now();
    let measure_from = started + warmup;
    let measure_until = measure_from + window;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, device) in devices.iter().enumerate() {
        let (device, issued, errors, stop) =
            (Arc::clone(device), Arc::clone(&issued), Arc::clone(&errors), Arc::clone(&stop));
        let max_syncs = options.max_syncs;
        let interval = options.rate.map(|rate| Duration::from_secs_f64(devices.len() as f64 / rate));
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(0x10ad_0000 + i as u64);
            let mut latencies: Vec<u32> = Vec::new();
            let mut next_start = started + interval.map_or(Duration::ZERO, |every| every.mul_f64(rng.gen::<f64>()));
            while !stop.load(Ordering::Relaxed) && Instant::now() < measure_until {
                if let Some(every) = interval {
                    tokio::time::sleep_until(next_start.into()).await;
                    next_start += every;
                    if Instant::now() >= measure_until {
                        break;
                    }
                }
                if issued.fetch_add(1, Ordering::Relaxed) >= max_syncs {
                    break;
                }
                let text = prose(&mut rng, 200);
                device.write_journal(&text, &JournalLinks::default(), false, Utc::now()).expect("entry");
                let begun = Instant::now();
                let outcome = device.sync(SyncTrigger::User).await;
                let done = Instant::now();
                if outcome.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                } else if done >= measure_from && done <= measure_until {
                    latencies.push(u32::try_from((done - begun).as_micros()).unwrap_or(u32::MAX));
                }
            }
            latencies
        });
    }
    // CPU and the disk's flush latency are sampled over the measuring window only.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_start = thread_cpu();
    let probe = flush_probe(probe_dir, Arc::clone(&stop));
    tokio::time::sleep_until(measure_until.into()).await;
    let cpu_end = thread_cpu();
    stop.store(true, Ordering::Relaxed);
    let mut flushes = probe.join().expect("flush probe");
    flushes.sort_unstable_by(f64::total_cmp);
    let mut latencies: Vec<u32> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.expect("load task"));
    }
    latencies.sort_unstable();
    let millis: Vec<f64> = latencies.iter().map(|&micros| f64::from(micros) / 1000.0).collect();
    let pick = |q: f64| quantile(&millis, q);
    RunResult {
        syncs: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        window,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
        cpu_server: cpu_end.0 - cpu_start.0,
        cpu_load: cpu_end.1 - cpu_start.1,
        server_threads: cpu_end.2,
        flush_p50_ms: quantile(&flushes, 0.50),
        flush_p99_ms: quantile(&flushes, 0.99),
    }
}

/// Every 100 ms until `stop`: rewrites 4 KiB of a file in `dir` and flushes it
/// (`fdatasync`), timing the flush. Returns the latencies in milliseconds.
fn flush_probe(dir: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<f64>> {
    let path = dir.join(format!("flush-probe-{}", katcore::record::new_id()));
    std::thread::Builder::new()
        .name("flush-probe".into())
        .spawn(move || {
            use std::io::{Seek, SeekFrom, Write};
            let mut latencies = Vec::new();
            let Ok(mut file) = std::fs::File::create(&path) else { return latencies };
            let block = [0x5a_u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                let flushed =
                    file.seek(SeekFrom::Start(0)).and_then(|_| file.write_all(&block)).and_then(|()| file.sync_data());
                if flushed.is_ok() {
                    latencies.push(begun.elapsed().as_secs_f64() * 1e3);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::remove_file(&path);
            latencies
        })
        .expect("flush probe thread")
}

/// The `q` quantile of sorted values (nearest rank), NaN when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// CPU seconds (user + system) of this process's threads named `clinic…`
/// (the in-process server's workers and blocking threads) and of the others,
/// and the number of `clinic…` threads.
fn thread_cpu() -> (f64, f64, usize) {
    let ticks = 100.0; // USER_HZ on Linux
    let (mut server, mut rest, mut threads) = (0.0, 0.0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return (f64::NAN, f64::NAN, 0) };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the name: state is field 3, utime field 14 and stime field 15 (1-based, man proc).
        let cpu = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let seconds = (cpu(14) + cpu(15)) / ticks;
        if name.starts_with("clinic") {
            server += seconds;
            threads += 1;
        } else {
            rest += seconds;
        }
    }
    (server, rest, threads)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn print_results(options: &Options, results: &[(usize, Vec<RunResult>)]) {
    println!();
    let mode = match options.rate {
        None => "closed loop (each device syncs again as soon as its sync returned)".to_owned(),
        Some(rate) => format!("paced: {rate} syncs/s offered in total"),
    };
    println!(
        "Sync throughput, {mode}: {} s per run after {} s warm-up, median of {} run(s); {}",
        options.seconds,
        options.warmup,
        options.runs,
        machine()
    );
    println!();
    println!(
        "| concurrent devices | syncs/s | p50 | p99 | errors | server CPU | disk flush p50 / p99 | goal | result |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (level, runs) in results {
        let rate = median(runs.iter().map(RunResult::per_second).collect());
        let p50 = median(runs.iter().map(|r| r.p50_ms).collect());
        let p99 = median(runs.iter().map(|r| r.p99_ms).collect());
        let errors: u64 = runs.iter().map(|r| r.errors).sum();
        let flush = format!(
            "{:.2} / {:.2} ms",
            median(runs.iter().map(|r| r.flush_p50_ms).collect()),
            median(runs.iter().map(|r| r.flush_p99_ms).collect())
        );
        let cpu = if options.url.is_some() {
            "—".to_owned()
        } else {
            format!("{:.0}%", median(runs.iter().map(|r| 100.0 * r.cpu_server / r.window.as_secs_f64()).collect()))
        };
        let (goal, result) = if *level == GOAL_LEVEL {
            let ok = |b: bool| if b { "pass" } else { "**miss**" };
            // Paced, the achieved rate can only approach the offered one: within 1% counts.
            let rate_ok = match options.rate {
                None => rate >= GOAL_SYNCS_PER_SECOND,
                Some(offered) => offered >= GOAL_SYNCS_PER_SECOND && rate >= 0.99 * offered,
            };
            (
                format!("≥ {GOAL_SYNCS_PER_SECOND:.0}/s, p99 ≤ {GOAL_P99_MS:.0} ms"),
                format!("{} / {}", ok(rate_ok), ok(p99 <= GOAL_P99_MS)),
            )
        } else {
            ("—".to_owned(), "—".to_owned())
        };
        println!(
            "| {level} | {rate:.0} | {p50:.1} ms | {p99:.1} ms | {errors} | {cpu} | {flush} | {goal} | {result} |"
        );
    }
}

/// `nproc`, CPU model and the date.
fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{nproc} CPUs ({cpu}), {}", Utc::now().format("%Y-%m-%d %H:%M UTC"))
}
