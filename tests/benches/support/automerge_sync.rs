//! Automerge's own sync protocol (`automerge::sync`) over HTTP, for comparing
//! with the katcore protocol on the same transport.
//!
//! The server side is a minimal axum endpoint, `POST /automerge-sync`, that
//! holds one Automerge document in memory and a sync [`State`] per peer (the
//! peer is the bearer token). The body of a request is one encoded sync
//! [`Message`], or empty when the device has nothing to say; the response body
//! is the server's next message, or empty when it has none. So one message
//! round trip is one HTTP `POST`.
//!
//! States are kept as Automerge intends for peers that meet in separate
//! sessions: after every message each side keeps `State::encode()` (only the
//! shared heads), and a session begins from `State::decode()` of what was
//! kept. A request carrying the header `Sync-Session: new` begins a session
//! on the server; without it the server continues with the live state of the
//! current session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use automerge::sync::{Message, State, SyncDoc};
use automerge::Automerge;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

/// Header that starts a new sync session on the server.
pub(crate) const SESSION_HEADER: &str = "sync-session";

/// One peer's sync state on the server.
#[derive(Clone, Default)]
pub(crate) struct PeerSync {
    /// `State::encode()` after the last message: what survives between sessions.
    pub persisted: Vec<u8>,
    /// The state of the current session.
    pub live: Option<State>,
}

/// The server's document and its peers.
#[derive(Clone, Default)]
pub(crate) struct Replica {
    /// The document.
    pub doc: Automerge,
    /// Sync state per peer (bearer token).
    pub peers: HashMap<String, PeerSync>,
}

/// A running endpoint; the replica can be inspected or replaced between runs.
pub(crate) struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server's side.
    pub replica: Arc<Mutex<Replica>>,
}

impl Endpoint {
    /// Serves `POST /automerge-sync` on a free loopback port, starting from an empty document.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub(crate) async fn start() -> Endpoint {
        let replica = Arc::new(Mutex::new(Replica::default()));
        let app = Router::new().route("/automerge-sync", post(exchange)).with_state(Arc::clone(&replica));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Automerge endpoint");
        let addr = listener.local_addr().expect("endpoint address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Endpoint { addr, replica }
    }
}

async fn exchange(
    AxumState(replica): AxumState<Arc<Mutex<Replica>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Vec<u8>, (StatusCode, String)> {
    let bad = |what: String| (StatusCode::BAD_REQUEST, what);
    let peer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| (StatusCode::UNAUTHORIZED, "no token".to_owned()))?
        .to_owned();
    let new_session = headers.get(SESSION_HEADER).is_some_and(|v| v == "new");
    let mut guard = replica.lock().expect("replica");
    let Replica { doc, peers } = &mut *guard;
    let sync = peers.entry(peer).or_default();
    if new_session || sync.live.is_none() {
        sync.live = Some(if sync.persisted.is_empty() {
            State::new()
        } else {
            State::decode(&sync.persisted).map_err(|e| bad(e.to_string()))?
        });
    }
    let state = sync.live.as_mut().expect("a live state");
    if !body.is_empty() {
        let message = Message::decode(&body).map_err(|e| bad(e.to_string()))?;
        doc.receive_sync_message(state, message).map_err(|e| bad(e.to_string()))?;
    }
    let reply = doc.generate_sync_message(state).map(Message::encode).unwrap_or_default();
    sync.persisted = state.encode();
    Ok(reply)
}

/// The device's side of a session.
pub(crate) struct Device {
    /// The device's document.
    pub doc: Automerge,
    /// Its state for the server: live within a session.
    pub state: State,
}

/// What one session moved, as the device saw it.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// HTTP round trips (`POST`s).
    pub round_trips: u32,
    /// Encoded message bytes the device sent.
    pub sent: u64,
    /// Encoded message bytes the device received.
    pub received: u64,
}

impl Device {
    /// Runs one session against `url` (the endpoint's base URL) with `token`:
    /// the device sends its next message (or an empty body the first time,
    /// when it has none, to hear the server), applies the answer, and stops
    /// once it has nothing more to send and the server answered with nothing,
    /// or it has nothing to send after the server's last answer (the server
    /// then has a message in flight and sends nothing until it hears back).
    /// When `new_session` is set, both sides start from their persisted state.
    ///
    /// # Panics
    /// On a transport or protocol failure.
    pub(crate) async fn sync(&mut self, http: &reqwest::Client, url: &str, token: &str, new_session: bool) -> Session {
        if new_session {
            self.state = State::decode(&self.state.encode()).expect("the device's persisted state");
        }
        let mut session = Session::default();
        loop {
            let message = self.doc.generate_sync_message(&mut self.state).map(Message::encode);
            if message.is_none() && session.round_trips > 0 {
                break;
            }
            let body = message.unwrap_or_default();
            session.sent += body.len() as u64;
            let mut request = http
                .post(format!("{url}/automerge-sync"))
                .bearer_auth(token)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
            if new_session && session.round_trips == 0 {
                request = request.header(SESSION_HEADER, "new");
            }
            let response = request.send().await.expect("Automerge sync request");
            assert!(response.status().is_success(), "Automerge sync: {}", response.status());
            let reply = response.bytes().await.expect("Automerge sync answer");
            session.round_trips += 1;
            session.received += reply.len() as u64;
            if reply.is_empty() {
                if self.doc.generate_sync_message(&mut self.state.clone()).is_none() {
                    break;
                }
                continue;
            }
            let reply = Message::decode(&reply).expect("an Automerge sync message");
            self.doc.receive_sync_message(&mut self.state, reply).expect("apply the server's message");
        }
        session
    }
}
