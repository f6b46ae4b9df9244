//! The device side of clinic sync: enrollment, `sync_now`, backoff and status.
//!
//! The protocol is described in `docs/sync-protocol.md`: one `POST /v1/sync`
//! carries every change the server may lack and brings back every change the
//! device lacks. A [`SyncClient`] runs one sync at a time, persists what it
//! learns (the server's heads, the pack's ETag) in the encrypted store, and
//! keeps a status the app can show: pending changes, last success, next
//! attempt and the last error in plain words.
//!
//! Transient failures (no network, 408, 429, 5xx) back off exponentially with
//! jitter and never retry sooner than the server's `Retry-After`; permanent
//! ones (401, 403, 410) stop automatic syncing and say why. A sync the user
//! asks for ignores the backoff.
//!
//! Requests go out through a [`transport::Transport`]: `reqwest::Client`
//! (feature `reqwest`, see `http_client`) or the platform's HTTP stack,
//! which the mobile bindings pass in. The client needs no async runtime of
//! its own.

mod backoff;
pub mod transport;
pub mod wire;

use std::sync::{Arc, Mutex, RwLock};

use automerge::{ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::care_store::{CareStore, CareStoreError};
use crate::pack::{parse_verifying_key, Pack, PackRegistry};
use crate::record::{touched_entries, RecordError};
use crate::store::Store;
use backoff::{check_status, network};
pub use backoff::{next_attempt, parse_retry_after, INITIAL_BACKOFF, MAX_BACKOFF};
use transport::{HttpRequest, Method, Transport};
use wire::{EnrollRequest, EnrollResponse, SyncRequest, SyncResponse, CONTENT_TYPE};

/// Response header of `POST /v1/sync` naming the ETag of the clinic's
/// current pack, so the device fetches the pack only when it changed.
pub const PACK_ETAG_HEADER: &str = "katcore-pack-etag";

/// Request header of `POST /v1/sync` carrying the device's clock when it
/// sent the request, in Unix milliseconds: the clinic measures the
/// device's clock offset from it (`docs/sync-protocol.md`, "The device's
/// clock").
pub const DEVICE_TIME_HEADER: &str = "katcore-device-time";

const CREDENTIALS_META_KEY: &str = "sync.credentials";

/// Up to this many pending changes, [`SyncClient::status`] finds urgent
/// pending items by reading the changes; past it, by scanning the entries.
const STATUS_CHANGE_SCAN_LIMIT: usize = 256;
const PACK_META_KEY: &str = "sync.pack";

/// What the device learned at enrollment; kept encrypted in the store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL of the clinic server, e.g. `https://clinic.example`.
    pub server_url: String,
    /// The client this device belongs to.
    pub client_id: String,
    /// This device's id.
    pub device_id: String,
    /// Bearer token for this device; never logged.
    pub device_token: String,
    /// The clinic's name.
    pub clinic_name: String,
    /// The clinic's pack-signing public key (base64).
    pub pack_public_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server_url", &self.server_url)
            .field("client_id", &self.client_id)
            .field("device_id", &self.device_id)
            .field("device_token", &"…")
            .finish_non_exhaustive()
    }
}

/// Why enrollment or a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The device has not enrolled with a clinic yet.
    #[error("this device is not enrolled with a clinic")]
    NotEnrolled,
    /// The enrollment code is unknown, used or expired.
    #[error("the enrollment code is not valid (unknown, already used or expired)")]
    InvalidCode,
    /// The host reported no connectivity and the sync was not user-initiated.
    #[error("offline")]
    Offline,
    /// An automatic sync was asked for before the backoff elapsed.
    #[error("waiting until {until} before retrying")]
    BackingOff {
        /// When the next attempt is allowed.
        until: DateTime<Utc>,
    },
    /// The server could not be reached or the connection broke.
    #[error("network error: {reason}")]
    Network {
        /// What failed, without request content.
        reason: String,
    },
    /// The server is busy or failing, or the body arrived too slowly (408,
    /// 429, 5xx); retried later.
    #[error("the clinic server answered {status}; retrying later")]
    ServerBusy {
        /// HTTP status.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_after: Option<DateTime<Utc>>,
    },
    /// The device's token is not accepted (401).
    #[error("the clinic server does not accept this device's credentials")]
    Unauthorized,
    /// The token may not reach this resource (403).
    #[error("this device is not allowed to reach that record")]
    Forbidden,
    /// The device was revoked by the clinic (410).
    #[error("this device was removed by the clinic")]
    Revoked,
    /// The server refused the request as malformed or too large (400, 413).
    #[error("the clinic server refused the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server's answer did not follow the protocol.
    #[error("the clinic server's answer was not understood: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] CareStoreError),
}

impl SyncError {
    /// True for failures that a later automatic retry may fix.
    pub fn is_transient(&self) -> bool {
        matches!(self, SyncError::Network { .. } | SyncError::ServerBusy { .. })
    }

    /// True for failures that stop automatic syncing until the user acts.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SyncError::Unauthorized | SyncError::Forbidden | SyncError::Revoked | SyncError::Rejected { .. })
    }

    /// The same failure again, for a permanent one that stopped automatic
    /// syncing (`Protocol` for any other, which never stops it).
    fn repeat(&self) -> SyncError {
        match self {
            SyncError::Unauthorized => SyncError::Unauthorized,
            SyncError::Forbidden => SyncError::Forbidden,
            SyncError::Revoked => SyncError::Revoked,
            SyncError::Rejected { status, message } => {
                SyncError::Rejected { status: *status, message: message.clone() }
            }
            other => SyncError::Protocol { reason: other.to_string() },
        }
    }

    /// The failure in words for the client (no technical detail, no data).
    pub fn user_message(&self) -> &'static str {
        match self {
            SyncError::NotEnrolled => "This phone is not connected to a clinic yet.",
            SyncError::InvalidCode => "That code did not work. Check it, or ask your clinic for a new one.",
            SyncError::Offline | SyncError::Network { .. } => {
                "No connection. Everything is saved on this phone and will be sent when you are back online."
            }
            SyncError::BackingOff { .. } | SyncError::ServerBusy { .. } => {
                "The clinic's server is busy. Everything is saved on this phone; we will try again shortly."
            }
            SyncError::Unauthorized | SyncError::Forbidden => {
                "The clinic did not accept this phone. Please contact your clinic to reconnect it."
            }
            SyncError::Revoked => "This phone was disconnected by your clinic. Contact them to reconnect it.",
            SyncError::Rejected { .. } | SyncError::Protocol { .. } => {
                "Something went wrong sending your updates. Your entries are safe on this phone; please contact your clinic."
            }
            SyncError::Store(_) => "This phone could not read its saved data.",
        }
    }
}

/// Who asked for a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncTrigger {
    /// The user pulled to refresh or tapped "sync": ignores the backoff.
    User,
    /// A timer or connectivity change: respects backoff and offline state.
    Automatic,
}

/// What one sync moved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Sync exchanges (`POST /v1/sync`): 1, or 2 after a `409` full resend.
    pub round_trips: u32,
    /// Whether the pack was fetched (only when the server advertised a new ETag).
    pub pack_fetched: bool,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// Body bytes received.
    pub bytes_received: u64,
    /// Whether local changes were sent.
    pub sent_changes: bool,
    /// Whether changes from other replicas arrived.
    pub received_changes: bool,
    /// Whether the server had lost history and the whole record was resent.
    pub full_resend: bool,
    /// A newly activated pack (`id`, `version`), if any.
    pub pack_activated: Option<PackVersion>,
    /// Why an offered pack was refused, if one was.
    pub pack_refused: Option<String>,
}

/// A pack id and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackVersion {
    /// Pack id.
    pub id: String,
    /// Version.
    pub version: u32,
}

/// Where syncing stands, for the app to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Whether the device is enrolled.
    pub enrolled: bool,
    /// The host's last connectivity report.
    pub online: bool,
    /// Local changes the server has not acknowledged yet.
    pub pending_changes: u64,
    /// Whether any pending change is urgent (it goes first: the next sync carries it).
    pub urgent_pending: bool,
    /// When the last sync succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// When the next automatic attempt is allowed (after a failure).
    pub next_attempt: Option<DateTime<Utc>>,
    /// The last failure, in words for the client.
    pub last_error: Option<String>,
    /// True when automatic syncing stopped on a permanent failure.
    pub stopped: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PeerState {
    /// The server's heads after the last successful sync, hex.
    server_heads: Vec<String>,
    /// ETag of the last pack fetched.
    pack_etag: Option<String>,
    /// Keys of the urgent items the server has received.
    #[serde(default)]
    synced_urgent_keys: Vec<String>,
    /// The store's last change seq that the last successful sync had sent
    /// or received: later ones are writes the clinic has not had yet.
    #[serde(default)]
    synced_seq: Option<i64>,
}

#[derive(Debug)]
struct RunState {
    online: bool,
    failures: u32,
    last_success: Option<DateTime<Utc>>,
    next_attempt: Option<DateTime<Utc>>,
    last_error: Option<&'static str>,
    /// The permanent failure that stopped automatic syncing, repeated to
    /// automatic attempts until a sync the user asks for succeeds.
    stopped: Option<SyncError>,
}

/// The credentials saved by [`SyncClient::enroll`], if this device enrolled.
///
/// # Errors
/// A store error, or `Corrupt` for unreadable saved credentials.
pub fn saved_credentials(store: &CareStore) -> Result<Option<Credentials>, SyncError> {
    credentials_in(store.store())
}

/// [`saved_credentials`], read from the store itself.
fn credentials_in(store: &Store) -> Result<Option<Credentials>, SyncError> {
    let Some(bytes) = store.get_meta(CREDENTIALS_META_KEY).map_err(CareStoreError::from)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|_| {
        SyncError::Store(CareStoreError::Store(crate::store::StoreError::Corrupt { what: "saved sync credentials" }))
    })
}

/// Re-activates the last pack fetched from the clinic (saved in the store),
/// after checking its signature again. Returns whether one was activated.
///
/// # Errors
/// A store error; a saved pack that no longer verifies is ignored.
pub(crate) fn restore_saved_pack(store: &Store, packs: &RwLock<PackRegistry>) -> Result<bool, SyncError> {
    if let Some(credentials) = credentials_in(store)? {
        if let Ok(key) = parse_verifying_key(&credentials.pack_public_key) {
            write_lock(packs).trust(key);
        }
    }
    let Some(bytes) = store.get_meta(PACK_META_KEY).map_err(CareStoreError::from)? else {
        return Ok(false);
    };
    Ok(write_lock(packs).activate_signed(&bytes).is_ok())
}

/// What the store itself says of sync, read without the record: for a
/// device's first view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredSync {
    /// Whether the device is enrolled.
    pub(crate) enrolled: bool,
    /// The last change seq that sync had sent or received (0 before any).
    pub(crate) synced_seq: i64,
}

/// [`StoredSync`] of `store`.
///
/// # Errors
/// A store error, or `Corrupt` for unreadable saved credentials.
pub(crate) fn stored_sync(store: &Store) -> Result<StoredSync, SyncError> {
    let Some(credentials) = credentials_in(store)? else { return Ok(StoredSync::default()) };
    let state = saved_peer_state(store, &credentials.server_url).map_err(CareStoreError::from)?;
    Ok(StoredSync { enrolled: true, synced_seq: state.synced_seq.unwrap_or(0) })
}

/// The sync state saved for the server `server_url`; the default when there
/// is none or it does not read (the next sync rebuilds it).
fn saved_peer_state(store: &Store, server_url: &str) -> Result<PeerState, crate::store::StoreError> {
    Ok(store.get_sync_state(server_url)?.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default())
}

/// Runs syncs for one device against its clinic.
#[derive(Debug)]
pub struct SyncClient {
    store: CareStore,
    http: Arc<dyn Transport>,
    packs: Arc<RwLock<PackRegistry>>,
    run: Mutex<RunState>,
    /// The saved credentials and peer state, decrypted once and kept
    /// current by this client (the only writer of both).
    saved: Mutex<Saved>,
    in_flight: tokio::sync::Mutex<()>,
}

/// What the client read from the store, so a status costs no decryption.
#[derive(Debug, Default)]
struct Saved {
    /// `None` until first read.
    credentials: Option<Option<Credentials>>,
    /// The peer state of the enrolled server; `None` until first read.
    peer: Option<PeerState>,
}

impl SyncClient {
    /// A client for `store`, activating fetched packs in `packs`; only
    /// [`crate::device::Device::open`] assembles one, so every front end
    /// syncs through the device.
    ///
    /// `http` sends the requests: a `reqwest::Client` from `http_client`
    /// (with custom root certificates for a private clinic CA), or any other
    /// [`Transport`].
    pub(crate) fn new(store: CareStore, http: impl Transport + 'static, packs: Arc<RwLock<PackRegistry>>) -> Self {
        SyncClient {
            store,
            http: Arc::new(http),
            packs,
            run: Mutex::new(RunState {
                online: true,
                failures: 0,
                last_success: None,
                next_attempt: None,
                last_error: None,
                stopped: None,
            }),
            saved: Mutex::new(Saved::default()),
            in_flight: tokio::sync::Mutex::new(()),
        }
    }

    /// Enrolls this device with a clinic using a one-time code and keeps the
    /// credentials (encrypted) in the store.
    ///
    /// # Errors
    /// [`SyncError::InvalidCode`], a network or server error, or a store error.
    pub async fn enroll(&self, server_url: &str, code: &str, device_label: &str) -> Result<Credentials, SyncError> {
        let server_url = server_url.trim_end_matches('/').to_owned();
        let request = EnrollRequest { code: code.trim().to_owned(), device_label: device_label.to_owned() };
        let body = serde_json::to_vec(&request).map_err(|e| SyncError::Protocol { reason: e.to_string() })?;
        let request = HttpRequest::new(Method::Post, format!("{server_url}/v1/enroll"))
            .header("content-type", "application/json")
            .body(body);
        let response = self.http.send(request).await.map_err(network)?;
        if response.status == 400 {
            return Err(SyncError::InvalidCode);
        }
        let response = check_status(response)?;
        let enrolled: EnrollResponse = crate::json::from_slice(&response.body)
            .map_err(|e| SyncError::Protocol { reason: format!("enrollment answer: {e}") })?;
        parse_verifying_key(&enrolled.pack_public_key)
            .map_err(|_| SyncError::Protocol { reason: "enrollment answer: pack_public_key is not a key".into() })?;
        let credentials = Credentials {
            server_url,
            client_id: enrolled.client_id,
            device_id: enrolled.device_id,
            device_token: enrolled.device_token,
            clinic_name: enrolled.clinic_name,
            pack_public_key: enrolled.pack_public_key,
        };
        let bytes = serde_json::to_vec(&credentials).map_err(|e| SyncError::Protocol { reason: e.to_string() })?;
        self.store.store().put_meta(CREDENTIALS_META_KEY, &bytes).map_err(CareStoreError::from)?;
        *lock(&self.saved) = Saved { credentials: Some(Some(credentials.clone())), peer: None };
        Ok(credentials)
    }

    /// The host reports a connectivity change. Returns true when a sync is
    /// worth starting now (back online with changes pending).
    pub fn set_online(&self, online: bool) -> bool {
        let mut run = lock(&self.run);
        let was_online = run.online;
        run.online = online;
        if online && !was_online {
            // Backoff from network failures is moot once the network is back.
            run.next_attempt = None;
        }
        drop(run);
        online && !was_online && self.pending_changes() > 0
    }

    /// Runs one sync: sends pending changes, receives what the device lacks,
    /// and fetches the clinic's pack if it changed.
    ///
    /// # Errors
    /// See [`SyncError`]; on a transient error the next attempt is scheduled
    /// with backoff, on a permanent one automatic syncing stops.
    pub async fn sync_now(&self, trigger: SyncTrigger) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.in_flight.lock().await;
        {
            let run = lock(&self.run);
            if trigger == SyncTrigger::Automatic {
                if !run.online {
                    return Err(SyncError::Offline);
                }
                if let Some(stopped) = &run.stopped {
                    return Err(stopped.repeat());
                }
                if let Some(until) = run.next_attempt.filter(|t| *t > Utc::now()) {
                    return Err(SyncError::BackingOff { until });
                }
            }
        }
        let result = self.run_sync().await;
        let mut run = lock(&self.run);
        match &result {
            Ok(_) => {
                run.failures = 0;
                run.last_success = Some(Utc::now());
                run.next_attempt = None;
                run.last_error = None;
                run.stopped = None;
            }
            Err(error) => {
                run.last_error = Some(error.user_message());
                if error.is_permanent() {
                    run.stopped = Some(error.repeat());
                    run.next_attempt = None;
                } else if error.is_transient() {
                    run.failures = run.failures.saturating_add(1);
                    let retry_after = match error {
                        SyncError::ServerBusy { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    // A uniform jitter in [0, 1) (the middle if the generator fails).
                    let jitter = getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64);
                    run.next_attempt = Some(next_attempt(Utc::now(), run.failures, retry_after, jitter));
                }
            }
        }
        result
    }

    /// Where syncing stands. Cheap enough to call after every write: the
    /// credentials and peer state are read from memory, and the work is
    /// proportional to the pending changes, not to the record.
    pub fn status(&self) -> SyncStatus {
        let enrolled = matches!(self.credentials(), Ok(Some(_)));
        let (state, since) = self.server_state();
        let (pending, urgent_pending) = self.store.read(|record| {
            let doc = record.document();
            let pending = doc.get_changes_meta(&since).len();
            let urgent = pending > 0 && {
                // Few pending changes (the usual case: the writes since the
                // last sync) are read for the entries they touched; many (a
                // record never sent) cost less as one scan of the entries.
                let items = if pending <= STATUS_CHANGE_SCAN_LIMIT {
                    record.urgent_items_among(&Pack::default_pack(), &touched_entries(doc, &doc.get_changes(&since)))
                } else {
                    record.urgent_items()
                };
                items.iter().any(|item| !state.synced_urgent_keys.contains(&item.key))
            };
            (pending as u64, urgent)
        });
        let run = lock(&self.run);
        SyncStatus {
            enrolled,
            online: run.online,
            pending_changes: pending,
            urgent_pending,
            last_success: run.last_success,
            next_attempt: run.next_attempt,
            last_error: run.last_error.map(str::to_owned),
            stopped: run.stopped.is_some(),
        }
    }

    /// Number of local changes the server has not acknowledged.
    pub fn pending_changes(&self) -> usize {
        let (_, since) = self.server_state();
        self.store.read(|record| record.document().get_changes_meta(&since).len())
    }

    /// The enrolled server's peer state (the default when not enrolled) and
    /// those of its saved heads this record holds: what is pending is
    /// everything after them.
    fn server_state(&self) -> (PeerState, Vec<ChangeHash>) {
        let credentials = self.credentials().ok().flatten();
        let state = credentials.map(|c| self.peer_state(&c.server_url)).unwrap_or_default();
        let since = self.known_server_heads(&state);
        (state, since)
    }

    /// The saved credentials, read from the store once.
    ///
    /// # Errors
    /// As [`saved_credentials`].
    pub fn credentials(&self) -> Result<Option<Credentials>, SyncError> {
        let mut saved = lock(&self.saved);
        if let Some(credentials) = &saved.credentials {
            return Ok(credentials.clone());
        }
        let credentials = saved_credentials(&self.store)?;
        saved.credentials = Some(credentials.clone());
        Ok(credentials)
    }

    /// The saved server heads of `state` that this device's document contains.
    fn known_server_heads(&self, state: &PeerState) -> Vec<ChangeHash> {
        let heads: Vec<ChangeHash> = state.server_heads.iter().filter_map(|h| h.parse().ok()).collect();
        let all_known =
            self.store.read(|record| heads.iter().all(|h| record.document().get_change_by_hash(h).is_some()));
        if all_known {
            heads
        } else {
            Vec::new()
        }
    }

    fn peer_state(&self, server_url: &str) -> PeerState {
        let mut saved = lock(&self.saved);
        saved.peer.get_or_insert_with(|| saved_peer_state(self.store.store(), server_url).unwrap_or_default()).clone()
    }

    fn save_peer_state(&self, server_url: &str, state: &PeerState) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(state).map_err(|e| SyncError::Protocol { reason: e.to_string() })?;
        self.store.store().put_sync_state(server_url, &bytes).map_err(CareStoreError::from)?;
        lock(&self.saved).peer = Some(state.clone());
        Ok(())
    }

    async fn run_sync(&self) -> Result<SyncReport, SyncError> {
        let credentials = self.credentials()?.ok_or(SyncError::NotEnrolled)?;
        let mut report = SyncReport::default();
        let mut state = self.peer_state(&credentials.server_url);
        let since = self.known_server_heads(&state);
        // Every change through this one goes in the request (later writes
        // may too, but are counted as not yet sent).
        let sent_through = self.store.last_seq();

        let (response, urgent_keys, pack_etag) = match self.exchange(&credentials, since, &mut report).await {
            Err(SyncError::Rejected { status: 409, .. }) => {
                // The server lost history we assumed it had: send everything.
                report.full_resend = true;
                self.exchange(&credentials, Vec::new(), &mut report).await?
            }
            other => other?,
        };
        if !response.changes.is_empty() {
            report.received_changes = self.store.merge_remote(&response.changes).map_err(|e| match e {
                CareStoreError::Record(RecordError::Refused(violation)) => {
                    SyncError::Protocol { reason: format!("the server sent a change this device refuses: {violation}") }
                }
                // Bytes from the server that do not read are the server's
                // fault, never a damaged store: the record is unchanged.
                CareStoreError::Record(error) => {
                    SyncError::Protocol { reason: format!("the server sent changes that do not read: {error}") }
                }
                other => other.into(),
            })?;
        }
        let all_present =
            self.store.read(|record| response.heads.iter().all(|h| record.document().get_change_by_hash(h).is_some()));
        if !all_present {
            return Err(SyncError::Protocol { reason: "the server's heads are not all in its answer".into() });
        }
        state.server_heads = response.heads.iter().map(ToString::to_string).collect();
        state.synced_urgent_keys = urgent_keys;
        // The server's changes were appended as one more change; unless a
        // local write came in between, that one is synced too (the first
        // view counts what is after `synced_seq` as not yet sent).
        let last_seq = self.store.last_seq();
        state.synced_seq =
            Some(if last_seq == sent_through + 1 && report.received_changes { last_seq } else { sent_through });
        self.save_peer_state(&credentials.server_url, &state)?;

        if pack_etag.is_some() && pack_etag != state.pack_etag {
            self.fetch_pack(&credentials, &mut state, &mut report).await?;
        }
        Ok(report)
    }

    async fn exchange(
        &self,
        credentials: &Credentials,
        since: Vec<ChangeHash>,
        report: &mut SyncReport,
    ) -> Result<(SyncResponse, Vec<String>, Option<String>), SyncError> {
        let (heads, changes, urgent_keys) = self.store.read(|record| {
            let changes = if since.is_empty() { record.save() } else { record.save_after(&since) };
            (record.heads(), changes, record.urgent_items().into_iter().map(|i| i.key).collect::<Vec<_>>())
        });
        report.sent_changes |= !changes.is_empty();
        let body = SyncRequest { since, heads, changes }.encode();
        report.round_trips += 1;
        report.bytes_sent += body.len() as u64;
        let sent_at = Utc::now().timestamp_millis();
        let request = HttpRequest::new(Method::Post, format!("{}/v1/sync", credentials.server_url))
            .header("authorization", format!("Bearer {}", credentials.device_token))
            .header("content-type", CONTENT_TYPE)
            // `format!`, not `to_string`: the integer `to_string` fast path
            // is 1 KB more of the mobile library (BENCHMARKS.md).
            .header(DEVICE_TIME_HEADER, format!("{sent_at}"))
            .body(body);
        let response = check_status(self.http.send(request).await.map_err(network)?)?;
        let pack_etag = response.header(PACK_ETAG_HEADER).map(str::to_owned);
        report.bytes_received += response.body.len() as u64;
        let response =
            SyncResponse::decode(&response.body).map_err(|e| SyncError::Protocol { reason: e.to_string() })?;
        Ok((response, urgent_keys, pack_etag))
    }

    async fn fetch_pack(
        &self,
        credentials: &Credentials,
        state: &mut PeerState,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut request = HttpRequest::new(Method::Get, format!("{}/v1/pack", credentials.server_url))
            .header("authorization", format!("Bearer {}", credentials.device_token));
        if let Some(etag) = &state.pack_etag {
            request = request.header("if-none-match", etag.as_str());
        }
        report.pack_fetched = true;
        let response = self.http.send(request).await.map_err(network)?;
        match response.status {
            304 | 404 => return Ok(()),
            _ => {}
        }
        let response = check_status(response)?;
        let etag = response.header("etag").map(str::to_owned);
        let bytes = response.body;
        report.bytes_received += bytes.len() as u64;
        let activated = {
            let mut packs = write_lock(&self.packs);
            if let Ok(key) = parse_verifying_key(&credentials.pack_public_key) {
                packs.trust(key);
            }
            packs.activate_signed(&bytes)
        };
        match activated {
            Ok(pack) => {
                self.store.store().put_meta(PACK_META_KEY, &bytes).map_err(CareStoreError::from)?;
                report.pack_activated = Some(PackVersion { id: pack.id.clone(), version: pack.version });
                state.pack_etag = etag;
                self.save_peer_state(&credentials.server_url, state)?;
            }
            // A refused pack is reported, never activated; the current one stays.
            Err(error) => report.pack_refused = Some(error.to_string()),
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An HTTP client suited to sync: rustls with the bundled web PKI roots,
/// plus `extra_root_pem` (a clinic's private CA), with sane timeouts. It is a
/// [`Transport`] (crate feature `reqwest`).
///
/// An idle pooled connection is dropped after 5 s, before the clinic server
/// closes it (10 s by default, `docs/operations.md`): a request sent on a
/// connection the server is closing at that instant fails half-way.
///
/// # Errors
/// [`SyncError::Protocol`] when the certificate is not PEM or the client cannot be built.
#[cfg(feature = "reqwest")]
pub fn http_client(extra_root_pem: Option<&[u8]>) -> Result<reqwest::Client, SyncError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("katcore/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = extra_root_pem {
        let certificate = reqwest::Certificate::from_pem(pem)
            .map_err(|e| SyncError::Protocol { reason: format!("root certificate: {e}") })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| SyncError::Protocol { reason: format!("HTTP client: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_print_the_token() {
        let c = Credentials {
            server_url: "https://clinic.example".into(),
            client_id: "c".into(),
            device_id: "d".into(),
            device_token: "kd_secret".into(),
            clinic_name: "Clinic".into(),
            pack_public_key: "k".into(),
        };
        assert!(!format!("{c:?}").contains("kd_secret"));
    }
}
