//! The clinic server killed with SIGKILL in the middle of concurrent syncs
//! and restarted on the same database: every change it acknowledged is still
//! there, and the devices converge with it afterwards.
//!
//! On SQLite, or on PostgreSQL when `KATCORE_TEST_POSTGRES` is set
//! (`scripts/postgres-test.sh`). `KATCORE_SERVER_KILLS` sets the number of kills (default 3; RELIABILITY.md
//! records a longer run).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use katcore::device::Device as CoreDevice;
use katcore::record::JournalLinks;
use katcore::store::StoreKey;
use katcore::sync::SyncTrigger;
use katcore_clinic::{ClinicianClient, TestDatabase};

const DEVICES: usize = 4;

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("katcore-server-crash-{}", katcore::record::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the real server binary and waits until it answers `/healthz`.
async fn start_server(database: &TestDatabase, port: u16) -> Child {
    let args = database.server_args().unwrap();
    for _ in 0..50 {
        let child = Command::new(env!("CARGO_BIN_EXE_katcore-clinic"))
            .args(&args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        for _ in 0..50 {
            if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
                if response.status().is_success() {
                    return child;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The port may still be held by the killed process; try again.
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not come up on port {port}");
}

struct Device {
    device: CoreDevice,
    /// Entries written and acknowledged by a successful sync.
    acknowledged: Mutex<usize>,
    written: Mutex<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_server_kills() {
    let kills: usize = std::env::var("KATCORE_SERVER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = temp_dir();
    let database = TestDatabase::new(&dir).unwrap();
    let init = database.init_clinic("Crash Clinic", "Dr. Rivera").unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(&database, port).await;
    let api = ClinicianClient::new(&url, &init.clinician_token);

    let mut devices = Vec::new();
    let mut clients = Vec::new();
    for i in 0..DEVICES {
        let client = api.create_client(&format!("client-{i}")).await.unwrap();
        let code = api.enrollment_code(&client).await.unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let key = StoreKey::from_bytes(&[i as u8; 32]).unwrap();
        let device = CoreDevice::open(&dir.join(format!("device-{i}.db")), &key, Some(Arc::new(http))).unwrap();
        device.enroll(&url, &code, "phone").await.unwrap();
        devices.push(Arc::new(Device { device, acknowledged: Mutex::new(0), written: Mutex::new(0) }));
        clients.push(client);
    }

    let mut acknowledged_syncs = 0usize;
    for round in 0..kills {
        // Load: every device writes and syncs as fast as it can.
        let running = Arc::new(AtomicBool::new(true));
        let workers: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let (device, running) = (Arc::clone(device), Arc::clone(&running));
                tokio::spawn(async move {
                    let mut ok = 0usize;
                    while running.load(Ordering::SeqCst) {
                        let n = {
                            let mut written = device.written.lock().unwrap();
                            let text = format!("device {i} entry {}", *written);
                            device
                                .device
                                .write_journal(&text, &JournalLinks::default(), false, chrono::Utc::now())
                                .unwrap();
                            *written += 1;
                            *written
                        };
                        if device.device.sync(SyncTrigger::User).await.is_ok() {
                            // Everything written before this sync started is acknowledged.
                            let mut acknowledged = device.acknowledged.lock().unwrap();
                            *acknowledged = (*acknowledged).max(n);
                            ok += 1;
                        } else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    ok
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300 + (round as u64 * 137) % 500)).await;
        server.kill().unwrap(); // SIGKILL, mid-load
        server.wait().unwrap();
        running.store(false, Ordering::SeqCst);
        for worker in workers {
            acknowledged_syncs += worker.await.unwrap();
        }

        // Restart on the same database; before any device syncs again, the
        // server must hold everything it acknowledged.
        server = start_server(&database, port).await;
        for (i, (device, client)) in devices.iter().zip(&clients).enumerate() {
            let acknowledged = *device.acknowledged.lock().unwrap();
            let record = api.record(client).await.unwrap();
            let texts: Vec<&str> =
                record["journal"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
            for n in 0..acknowledged {
                let text = format!("device {i} entry {n}");
                assert!(texts.contains(&text.as_str()), "round {round}: acknowledged {text:?} lost by the server");
            }
        }
    }

    // The devices converge with the restarted server, nothing duplicated.
    for (i, (device, client)) in devices.iter().zip(&clients).enumerate() {
        device.device.sync(SyncTrigger::User).await.unwrap();
        let server_view = api.record(client).await.unwrap();
        assert_eq!(device.device.read(|r| r.to_json()), server_view, "device {i} converges");
        let written = *device.written.lock().unwrap();
        assert_eq!(server_view["journal"].as_array().unwrap().len(), written, "device {i}: every entry exactly once");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(acknowledged_syncs > 0);
    println!("server kills survived: {kills}; acknowledged syncs during the load: {acknowledged_syncs}");
    let _ = std::fs::remove_dir_all(&dir);
}
