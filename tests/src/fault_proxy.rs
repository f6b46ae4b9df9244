//! A fault-injecting HTTP proxy on loopback.
//!
//! It relays one HTTP/1.1 request per connection (it adds
//! `Connection: close` upstream) and, per request, applies the next fault of
//! a schedule: drop the connection half-way through the request or the
//! response, delay, deliver the request to the server twice, or answer
//! `503` with a `Retry-After` itself. It counts what it did so tests can
//! report the faults injected.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do to one request.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Relay faithfully.
    Pass,
    /// Send half of the request upstream, then close both sides.
    DropMidRequest,
    /// Relay the request, send half of the response back, then close.
    DropMidResponse,
    /// Wait before relaying the response.
    Delay(Duration),
    /// Deliver the request upstream twice; return the second response.
    Duplicate,
    /// Answer `503 Service Unavailable` with `Retry-After: <seconds>` without relaying.
    Unavailable(u32),
    /// Relay, but pass the response (head and body) through a rewrite
    /// that must keep its length: tampering in flight.
    Rewrite(fn(Vec<u8>) -> Vec<u8>),
}

/// Picks the fault for the n-th request.
type Schedule = Arc<Mutex<Box<dyn FnMut(usize) -> Fault + Send>>>;

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests relayed faithfully.
    pub passed: AtomicUsize,
    /// Faults injected (any kind but `Pass`).
    pub injected: AtomicUsize,
}

/// A running proxy.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    schedule: Schedule,
    /// What it did.
    pub counts: Arc<FaultCounts>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`; `schedule(n)` picks the fault for the n-th request.
    pub async fn start(upstream: SocketAddr, schedule: impl FnMut(usize) -> Fault + Send + 'static) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let schedule: Schedule = Arc::new(Mutex::new(Box::new(schedule)));
        let counts = Arc::new(FaultCounts::default());
        let next = Arc::new(AtomicUsize::new(0));
        {
            let (schedule, counts) = (Arc::clone(&schedule), Arc::clone(&counts));
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let fault = (schedule.lock().expect("schedule"))(n);
                    let counts = Arc::clone(&counts);
                    tokio::spawn(async move {
                        if matches!(fault, Fault::Pass) {
                            counts.passed.fetch_add(1, Ordering::SeqCst);
                        } else {
                            counts.injected.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = relay(client, upstream, fault).await;
                    });
                }
            });
        }
        FaultProxy { addr, schedule, counts }
    }

    /// Replaces the schedule.
    pub fn set_schedule(&self, schedule: impl FnMut(usize) -> Fault + Send + 'static) {
        *self.schedule.lock().expect("schedule") = Box::new(schedule);
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, fault: Fault) -> std::io::Result<()> {
    let request = read_request(&mut client).await?;
    if let Fault::Unavailable(seconds) = fault {
        let body = r#"{"error":"unavailable","message":"try later"}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {seconds}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return client.write_all(response.as_bytes()).await;
    }
    if matches!(fault, Fault::DropMidRequest) {
        let mut server = TcpStream::connect(upstream).await?;
        server.write_all(&request[..request.len() / 2]).await?;
        return Ok(());
    }
    let mut response = round_trip(upstream, &request).await?;
    if matches!(fault, Fault::Duplicate) {
        response = round_trip(upstream, &request).await?;
    }
    match fault {
        Fault::DropMidResponse => client.write_all(&response[..response.len() / 2]).await,
        Fault::Rewrite(rewrite) => client.write_all(&rewrite(response)).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            client.write_all(&response).await
        }
        _ => client.write_all(&response).await,
    }
}

async fn round_trip(upstream: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(request).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(response)
}

/// Reads one request (headers and `Content-Length` body) and rewrites it to
/// close the upstream connection after the response.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut rewritten: Vec<u8> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    rewritten.extend_from_slice(b"Connection: close\r\n\r\n");
    rewritten.extend_from_slice(&buf[header_end..]);
    Ok(rewritten)
}
