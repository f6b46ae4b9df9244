//! A byte-counting TCP proxy on loopback, for measuring what a sync puts on
//! the wire.
//!
//! Every byte is relayed unchanged and as soon as it arrives, in both
//! directions, and counted: request heads and bodies upstream, response heads
//! and bodies downstream (TCP payload; IP and TCP headers are not counted).
//! The upstream direction is also parsed just enough (head up to the blank
//! line, then `Content-Length` body bytes) to count HTTP/1.1 requests and
//! keep their request lines, so requests over a kept-alive connection are
//! counted one by one. Bytes are counted before they are forwarded, so once
//! a client has its response the counters include it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What crossed the proxy since the last [`CountingProxy::take`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// Bytes from clients to the server (request heads and bodies).
    pub up: u64,
    /// Bytes from the server to clients (response heads and bodies).
    pub down: u64,
    /// TCP connections opened.
    pub connections: u64,
    /// HTTP requests seen.
    pub requests: u64,
    /// Their request lines (`POST /v1/sync HTTP/1.1`), in order.
    pub request_lines: Vec<String>,
}

impl Traffic {
    /// Bytes in both directions.
    pub(crate) fn total(&self) -> u64 {
        self.up + self.down
    }
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicU64,
    requests: AtomicU64,
    request_lines: Mutex<Vec<String>>,
}

/// A running proxy; it stops with the runtime.
pub(crate) struct CountingProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl CountingProxy {
    /// Starts a proxy on `127.0.0.1` relaying to `upstream`.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub(crate) async fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the counting proxy");
        let addr = listener.local_addr().expect("proxy address");
        let counters = Arc::new(Counters::default());
        let accepting = Arc::clone(&counters);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                accepting.connections.fetch_add(1, Ordering::SeqCst);
                let counters = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = relay_requests(client_read, server_write, Arc::clone(&counters));
                    let down = relay_responses(server_read, client_write, counters);
                    let _ = tokio::join!(up, down);
                });
            }
        });
        CountingProxy { addr, counters }
    }

    /// The proxy's base URL, `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns what crossed the proxy since the last call and starts counting afresh.
    pub(crate) fn take(&self) -> Traffic {
        let c = &self.counters;
        Traffic {
            up: c.up.swap(0, Ordering::SeqCst),
            down: c.down.swap(0, Ordering::SeqCst),
            connections: c.connections.swap(0, Ordering::SeqCst),
            requests: c.requests.swap(0, Ordering::SeqCst),
            request_lines: std::mem::take(&mut *c.request_lines.lock().expect("request lines")),
        }
    }
}

/// Where the request parser is in the upstream byte stream.
enum Parse {
    /// Collecting a request head.
    Head(Vec<u8>),
    /// Skipping this many body bytes.
    Body(u64),
}

/// Client to server: forward, count bytes, count requests.
async fn relay_requests(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut state = Parse::Head(Vec::new());
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counters.up.fetch_add(n as u64, Ordering::SeqCst);
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            state = match state {
                Parse::Body(left) => {
                    let take = left.min(rest.len() as u64);
                    rest = &rest[take as usize..];
                    if left == take {
                        Parse::Head(Vec::new())
                    } else {
                        Parse::Body(left - take)
                    }
                }
                Parse::Head(mut head) => {
                    let before = head.len();
                    head.extend_from_slice(rest);
                    match head.windows(4).position(|w| w == b"\r\n\r\n") {
                        None => {
                            rest = &[];
                            Parse::Head(head)
                        }
                        Some(end) => {
                            rest = &rest[end + 4 - before..];
                            let text = String::from_utf8_lossy(&head[..end]);
                            counters.requests.fetch_add(1, Ordering::SeqCst);
                            let line = text.lines().next().unwrap_or_default().to_owned();
                            counters.request_lines.lock().expect("request lines").push(line);
                            let length = text
                                .lines()
                                .find_map(|l| {
                                    let (name, value) = l.split_once(':')?;
                                    name.trim()
                                        .eq_ignore_ascii_case("content-length")
                                        .then(|| value.trim().parse().ok())?
                                })
                                .unwrap_or(0u64);
                            if length == 0 {
                                Parse::Head(Vec::new())
                            } else {
                                Parse::Body(length)
                            }
                        }
                    }
                }
            };
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Server to client: forward and count bytes.
async fn relay_responses(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counters: Arc<Counters>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counters.down.fetch_add(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
