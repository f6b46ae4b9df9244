//! Bounds on what peers may hold: connections, time and request bodies.
//!
//! A stranger who can reach the port, or a device token in hostile hands,
//! must not be able to take the server down for everyone. Every connection
//! is counted when accepted and refused (closed at once) past
//! [`Limits::max_connections`] in all or [`Limits::max_connections_per_ip`]
//! from one address (trusted proxies excepted); each one is closed when no
//! byte moves for [`Limits::idle_timeout`], when a request's headers take
//! longer than [`Limits::header_read_timeout`], or when a sync body takes
//! longer than [`Limits::body_read_timeout`]. Sync bodies are read only
//! after the token is accepted, and all bodies being read at once share
//! [`Limits::body_bytes_in_flight`] (`503` with `Retry-After` past it).
//! See `docs/operations.md` for the figures and why.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

/// The server's bounds; [`Limits::default`] is what `katcore-clinic` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a request's headers may take to arrive (also the longest an
    /// idle keep-alive connection waits for its next request).
    pub header_read_timeout: Duration,
    /// A connection on which no byte is read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Longest a sync body may take to arrive once its headers are in.
    pub body_read_timeout: Duration,
    /// Open connections in all; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Open connections from one address (not counted for trusted proxies).
    pub max_connections_per_ip: usize,
    /// Bytes of sync bodies being read at once, in all.
    pub body_bytes_in_flight: usize,
    /// Estimated memory of the records kept loaded between requests; the
    /// least recently used are dropped past it (and load again when needed).
    pub record_cache_bytes: u64,
    /// Most stored bytes (snapshot and appended changes) one client's record
    /// may reach: 32 MiB by default, about 70 times a two-year record. A
    /// sync that would pass it is refused with `413 record_full`.
    pub max_record_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1000,
            max_connections_per_ip: 128,
            body_bytes_in_flight: 256 * 1024 * 1024,
            record_cache_bytes: 1024 * 1024 * 1024,
            max_record_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Most sync bodies one device may have being read at once: a device syncs
/// one at a time, so a token opening many slow uploads gets `503` past this.
pub(crate) const MAX_BODIES_PER_DEVICE: u32 = 2;

/// Sync bodies being read, per device.
#[derive(Debug, Default)]
pub(crate) struct BodyTurns {
    reading: Mutex<HashMap<String, u32>>,
}

/// One body being read; the count drops with it.
pub(crate) struct Turn<'a> {
    turns: &'a BodyTurns,
    device_id: String,
}

impl BodyTurns {
    /// A turn for `device_id`, or `None` when it already has
    /// [`MAX_BODIES_PER_DEVICE`] bodies being read.
    pub(crate) fn enter(&self, device_id: &str) -> Option<Turn<'_>> {
        let mut reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let count = reading.entry(device_id.to_owned()).or_default();
        if *count >= MAX_BODIES_PER_DEVICE {
            return None;
        }
        *count += 1;
        Some(Turn { turns: self, device_id: device_id.to_owned() })
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut reading = self.turns.reading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = reading.get_mut(&self.device_id) {
            *count -= 1;
            if *count == 0 {
                reading.remove(&self.device_id);
            }
        }
    }
}

/// Counts open connections, in all and per address.
#[derive(Debug, Default)]
struct Counts {
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped (the connection closed).
#[derive(Debug)]
struct Slot {
    counts: Arc<Counts>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut per_ip = self.counts.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(open) = per_ip.get_mut(&ip) {
                *open -= 1;
                if *open == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// An acceptor that counts, bounds and times out connections, then hands
/// them to `inner` (plain or TLS).
#[derive(Clone, Debug)]
pub(crate) struct Guarded<A> {
    inner: A,
    limits: Arc<Limits>,
    trusted_proxies: Arc<[IpAddr]>,
    counts: Arc<Counts>,
}

impl<A> Guarded<A> {
    pub(crate) fn new(inner: A, limits: Limits, trusted_proxies: &[IpAddr]) -> Guarded<A> {
        Guarded {
            inner,
            limits: Arc::new(limits),
            trusted_proxies: trusted_proxies.into(),
            counts: Arc::new(Counts::default()),
        }
    }

    /// Counts a connection from `peer`, or `None` when it is one too many.
    fn admit(&self, peer: Option<SocketAddr>) -> Option<Slot> {
        let total = self.counts.total.fetch_add(1, Ordering::Relaxed);
        // From here the slot uncounts itself when dropped.
        let mut slot = Slot { counts: Arc::clone(&self.counts), ip: None };
        if total >= self.limits.max_connections {
            return None;
        }
        if let Some(ip) = peer.map(|peer| peer.ip()).filter(|ip| !self.trusted_proxies.contains(ip)) {
            let mut per_ip = self.counts.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            let open = per_ip.entry(ip).or_default();
            if *open >= self.limits.max_connections_per_ip {
                return None;
            }
            *open += 1;
            slot.ip = Some(ip);
        }
        Some(slot)
    }
}

impl<A, S> Accept<TcpStream, S> for Guarded<A>
where
    A: Accept<Bounded, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = self.admit(stream.peer_addr().ok());
        let inner = self.inner.clone();
        let idle = self.limits.idle_timeout;
        Box::pin(async move {
            let Some(slot) = admitted else {
                // Dropping the stream closes it: the peer sees a reset, not a wait.
                return Err(io::Error::other("too many connections"));
            };
            let _ = stream.set_nodelay(true);
            let mut timed = TimeoutStream::new(stream);
            timed.set_read_timeout(Some(idle));
            timed.set_write_timeout(Some(idle));
            inner.accept(Bounded { stream: Box::pin(timed), _slot: slot }, service).await
        })
    }
}

/// A counted connection that fails once no byte moves for the idle timeout.
#[derive(Debug)]
pub(crate) struct Bounded {
    stream: Pin<Box<TimeoutStream<TcpStream>>>,
    _slot: Slot,
}

impl AsyncRead for Bounded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, last], 40000)))
    }

    #[test]
    fn a_device_has_at_most_two_bodies_read_at_once() {
        let turns = BodyTurns::default();
        let first = turns.enter("phone").expect("first");
        let _second = turns.enter("phone").expect("second");
        assert!(turns.enter("phone").is_none());
        assert!(turns.enter("tablet").is_some());
        drop(first);
        assert!(turns.enter("phone").is_some());
    }

    #[test]
    fn connections_are_bounded_per_address_and_in_all_and_freed_when_closed() {
        let limits = Limits { max_connections: 5, max_connections_per_ip: 2, ..Limits::default() };
        let trusted = [addr(9).unwrap().ip()];
        let guard = Guarded::new((), limits, &trusted);
        let a1 = guard.admit(addr(1)).expect("first");
        let _a2 = guard.admit(addr(1)).expect("second");
        assert!(guard.admit(addr(1)).is_none(), "a third from one address");
        let _b = guard.admit(addr(2)).expect("another address");
        drop(a1);
        let _a3 = guard.admit(addr(1)).expect("a slot freed by a closed connection");
        // A trusted proxy is not bounded per address, only in all.
        let _p1 = guard.admit(addr(9)).expect("proxy");
        let _p2 = guard.admit(addr(9)).expect("proxy, past the per-address bound");
        assert!(guard.admit(addr(9)).is_none(), "past the total");
        assert!(guard.admit(addr(3)).is_none(), "past the total");
        assert_eq!(guard.counts.total.load(Ordering::Relaxed), 5);
        assert_eq!(guard.counts.per_ip.lock().unwrap().len(), 2);
    }
}
