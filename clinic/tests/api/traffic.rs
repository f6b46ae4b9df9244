//! Hostile traffic on loopback: strangers' bodies, slowloris, stalled
//! bodies, floods of connections and failed attempts, a database that
//! cannot write. Each test uses short limits so it ends in seconds; the
//! figures at default limits are in RELIABILITY.md ("Hostile traffic").

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use katcore::record::CheckInInput;
use katcore::sync::wire::CONTENT_TYPE;
use katcore_clinic::{Limits, MAX_FAILURES_PER_WINDOW};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::TestServer;

/// Short bounds, so that dropped connections are seen within seconds.
fn short_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(1),
        max_connections: 64,
        max_connections_per_ip: 8,
        body_bytes_in_flight: 1024 * 1024,
        ..Limits::default()
    }
}

fn server_addr(server: &TestServer) -> SocketAddr {
    server.server.as_ref().unwrap().addr()
}

/// A TCP connection to the server from the loopback address `from`.
async fn connect_from(server: &TestServer, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server_addr(server)).await.unwrap()
}

/// Reads until the peer closes or `limit` passes; returns what was read and
/// whether the connection was closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

/// A reqwest client whose connections come from `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .pool_idle_timeout(Duration::from_millis(400))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_strangers_sync_body_is_refused_before_it_is_sent() {
    let server = TestServer::start("stranger-body").await;
    let mut stream = connect_from(&server, [127, 0, 0, 1]).await;
    // Headers announcing 16 MB, then nothing: the answer must not wait for the body.
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: clinic\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: 16000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn slowloris_connections_are_capped_and_dropped_while_a_device_syncs() {
    let server = TestServer::start_with("slowloris", |config| config.limits = short_limits()).await;
    let mut device = server.client_with_device("Client A").await;
    // 20 connections from one address that never finish their headers.
    let mut attackers = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from(&server, [127, 0, 0, 2]).await;
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: cli").await;
        attackers.push(stream);
    }
    // Meanwhile an honest device syncs.
    device.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
    assert_eq!(device.sync(&server).await, StatusCode::OK);
    // Past 8 from one address, connections were closed at once; the rest at
    // the 1 s header timeout. All are closed within a few seconds.
    let started = Instant::now();
    let mut answered = 0;
    for stream in &mut attackers {
        let (answer, closed) = read_until_closed(stream, Duration::from_secs(5)).await;
        assert!(closed, "a slowloris connection was still open after {:?}", started.elapsed());
        answered += usize::from(!answer.is_empty());
    }
    assert!(answered <= 8, "{answered} incomplete requests got an answer");
    // The honest device is still served.
    device.record.add_check_in(CheckInInput::Mood(7), chrono::Utc::now()).unwrap();
    assert_eq!(device.sync(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_bodies_share_a_byte_budget() {
    let server = TestServer::start_with("stalled-body", |config| config.limits = short_limits()).await;
    let device = server.client_with_device("Client A").await;
    let other = server.client_with_device("Client B").await;
    let head = |token: &str, length: usize| {
        format!(
            "POST /v1/sync HTTP/1.1\r\nHost: clinic\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // A body announcing 16 MB but sending one byte holds one KiB of the budget, not 16 MB…
    let mut slow = connect_from(&server, [127, 0, 0, 1]).await;
    slow.write_all(format!("{}\x01", head(&device.token, 16_000_000)).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = other.post(&server, vec![1u8; 200 * 1024]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "read (it names heads the server lacks)");
    // …while one that sent 900 KiB of its 1000 holds 900 KiB of the 1 MiB budget,
    let mut large = connect_from(&server, [127, 0, 0, 1]).await;
    large.write_all(head(&other.token, 1000 * 1024).as_bytes()).await.unwrap();
    large.write_all(&vec![1u8; 900 * 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // so another of 200 KiB is turned away with 503 and Retry-After.
    let response = other.post(&server, vec![1u8; 200 * 1024]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(reqwest::header::RETRY_AFTER));
    // A device has at most two bodies being read: a third is turned away.
    let mut second = connect_from(&server, [127, 0, 0, 1]).await;
    second.write_all(format!("{}\x01", head(&device.token, 1000)).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = device.post(&server, vec![1u8; 16]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The stalled ones are answered 408 at the body timeout, freeing everything.
    for stream in [&mut slow, &mut large, &mut second] {
        let (answer, _) = read_until_closed(stream, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let response = other.post(&server, vec![1u8; 200 * 1024]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = device.post(&server, vec![1u8; 16]).await;
    assert_ne!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let metrics = server.metrics().await;
    assert!(metrics.contains("katcore_clinic_syncs_total{result=\"timeout\"} 3"), "{metrics}");
    assert!(metrics.contains("katcore_clinic_syncs_total{result=\"busy\"} 2"), "{metrics}");
}

#[tokio::test]
async fn a_slow_json_body_is_cut_at_the_body_timeout() {
    let server = TestServer::start_with("slow-json", |config| config.limits = short_limits()).await;
    let mut stream = connect_from(&server, [127, 0, 0, 1]).await;
    let head =
        "POST /v1/enroll HTTP/1.1\r\nHost: clinic\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    // A byte every 0.5 s: never idle long enough for the idle timeout, but
    // the whole body is due within 1 s.
    let started = Instant::now();
    let mut answer = String::new();
    for _ in 0..10 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        let mut buffer = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 400"), "after {:?}: {answer}", started.elapsed());
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let server = TestServer::start_with("idle", |config| config.limits = short_limits()).await;
    let mut stream = connect_from(&server, [127, 0, 0, 1]).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: clinic\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "a kept-alive connection stayed open for {:?} without a request", started.elapsed());
}

#[tokio::test]
async fn a_limited_address_keeps_serving_known_tokens_and_proxies_name_the_client() {
    let server =
        TestServer::start_with("limiter", |config| config.trusted_proxies = vec![IpAddr::from([127, 0, 0, 4])]).await;
    let mut device = server.client_with_device("Client A").await;
    device.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
    assert_eq!(device.sync(&server).await, StatusCode::OK);
    let attacker = client_from([127, 0, 0, 3]);
    let bad = "kd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..MAX_FAILURES_PER_WINDOW {
        let response = attacker.post(server.url("/v1/sync")).bearer_auth(bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = attacker.post(server.url("/v1/sync")).bearer_auth(bad).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same address with a token the server accepted before is served.
    let body = device.request().encode();
    let response = attacker
        .post(server.url("/v1/sync"))
        .bearer_auth(&device.token)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Enrollment codes stay limited from that address.
    let response = attacker
        .post(server.url("/v1/enroll"))
        .json(&serde_json::json!({"code": "AAAA-AAAA-AAAA", "device_label": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy the forwarded address is limited, not the proxy.
    let proxy = client_from([127, 0, 0, 4]);
    let via = |client: &str| {
        proxy.post(server.url("/v1/sync")).bearer_auth(bad).header("X-Forwarded-For", format!("{client}, 127.0.0.4"))
    };
    for _ in 0..MAX_FAILURES_PER_WINDOW {
        assert_eq!(via("203.0.113.9").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(via("203.0.113.9").send().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(via("198.51.100.7").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // An untrusted peer cannot choose its address with the header.
    let forged = client_from([127, 0, 0, 3])
        .post(server.url("/v1/sync"))
        .bearer_auth(bad)
        .header("X-Forwarded-For", "198.51.100.8")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_database_that_cannot_write_answers_503_and_not_ready() {
    let server = TestServer::start("db-busy").await;
    if server.database.is_postgres() {
        // SQLite's write lock held by another process; PostgreSQL waits on
        // row locks instead (a lost PostgreSQL is
        // `instances::a_lost_database_is_503_and_not_ready_until_it_returns`).
        return;
    }
    let mut device = server.client_with_device("Client A").await;
    assert_eq!(server.http.get(server.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    // Another process holds the write lock.
    let holder = rusqlite::Connection::open(&server.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key(reqwest::header::RETRY_AFTER));
    assert_eq!(server.http.get(server.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    device.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
    let response = device.post(&server, device.request().encode()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(reqwest::header::RETRY_AFTER));
    holder.execute_batch("ROLLBACK").unwrap();
    // Nothing was lost: the device's retry goes through.
    assert_eq!(server.http.get(server.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(device.sync_with_retry(&server).await, StatusCode::OK);
    let record = server.record_json(&device.client_id).await;
    assert_eq!(record["check_ins"].as_array().map(Vec::len), Some(1), "{record}");
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let server =
        TestServer::start_with("metrics-token", |config| config.metrics_token = Some("scrape-secret".into())).await;
    let url = server.url("/metrics");
    assert_eq!(server.http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = server.http.get(&url).bearer_auth("scrape-secreT").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = server.http.get(&url).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("katcore_clinic_syncs_total"));
}
