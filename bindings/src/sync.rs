//! `ClinicSync`: enrollment with a clinic and sync of the care record.
//!
//! This is the only asynchronous part of the API. The host awaits each call
//! as a Kotlin `suspend fun` or a Swift `async` function and its executor
//! drives the Rust future; requests go out through the app's
//! [`HttpTransport`](crate::HttpTransport), so the library runs no async
//! runtime or network stack of its own. Everything else is a short blocking
//! call.
//!
//! Syncing never loses data: entries are saved locally first, and a failed
//! sync leaves them pending for the next one.

use std::sync::Arc;
use std::time::SystemTime;

use katcore::sync::{
    enroll, saved_credentials, SyncReport as CoreSyncReport, SyncStatus as CoreSyncStatus, SyncTrigger,
};

use crate::error::{KatcoreError, Result};
use crate::listeners::CareChange;
use crate::store::Inner;
use crate::time::to_system_time;

/// Enrollment and sync with the clinic.
#[derive(uniffi::Object)]
pub struct ClinicSync {
    inner: Arc<Inner>,
}

impl ClinicSync {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        ClinicSync { inner }
    }

    /// The app's transport, or the error that says it gave none.
    fn transport(&self) -> Result<&crate::transport::ForeignTransport> {
        self.inner.transport.as_ref().ok_or_else(|| {
            KatcoreError::invalid("transport", "CareStore.open was given no HTTP transport, which sync needs")
        })
    }

    async fn run(&self, trigger: SyncTrigger) -> Result<SyncReport> {
        self.transport()?;
        let result = self.inner.sync.sync_now(trigger).await;
        if let Ok(report) = &result {
            if report.received_changes {
                self.inner.listeners.each(|l| l.on_record_changed(CareChange::Received));
            }
            if report.pack_activated.is_some() {
                self.inner.listeners.each(|l| l.on_record_changed(CareChange::Content));
            }
        }
        self.inner.sync_status_changed();
        Ok(result?.into())
    }
}

#[uniffi::export]
impl ClinicSync {
    /// Enrolls this device with the clinic at `server_url` using the one-time `code`
    /// the clinician gave the client. The credentials are kept encrypted in the store.
    ///
    /// # Errors
    /// `InvalidCode` (unknown, used or expired), `Network`, `Server`, a store error, or
    /// `InvalidInput` (field `transport`) when the store was opened without a transport.
    pub async fn enroll(&self, server_url: String, code: String, device_label: String) -> Result<Enrollment> {
        let credentials = enroll(&self.inner.store, self.transport()?, &server_url, &code, &device_label).await?;
        self.inner.sync_status_changed();
        Ok(Enrollment {
            clinic_name: credentials.clinic_name,
            server_url: credentials.server_url,
            client_id: credentials.client_id,
            device_id: credentials.device_id,
        })
    }

    /// The clinic this device is enrolled with, if any.
    ///
    /// # Errors
    /// A store error.
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        Ok(saved_credentials(&self.inner.store)?.map(|c| Enrollment {
            clinic_name: c.clinic_name,
            server_url: c.server_url,
            client_id: c.client_id,
            device_id: c.device_id,
        }))
    }

    /// Syncs now because the user asked (pull to refresh, a button): sends pending
    /// changes, receives what the clinic and other devices wrote, and fetches the clinic's
    /// pack if it changed. Ignores the backoff of earlier failures.
    ///
    /// # Errors
    /// `NotEnrolled`, `Network`, `RetryLater` (server busy), `Unauthorized`, `Revoked`,
    /// `Server`, a store error, or `InvalidInput` (field `transport`) without a transport.
    /// Listeners get the new status either way.
    pub async fn sync_now(&self) -> Result<SyncReport> {
        self.run(SyncTrigger::User).await
    }

    /// Syncs if an automatic sync is due (call it from timers and on reconnect): like
    /// `syncNow`, but refuses while offline or while backing off after failures.
    ///
    /// # Errors
    /// As `syncNow`, plus `Offline` and `RetryLater` with the time the next attempt is allowed.
    pub async fn sync_if_due(&self) -> Result<SyncReport> {
        self.run(SyncTrigger::Automatic).await
    }

    /// The host reports connectivity (from `ConnectivityManager` / `NWPathMonitor`). Returns
    /// true when a sync is worth starting now: back online with changes pending.
    pub fn set_online(&self, online: bool) -> bool {
        let worth_syncing = self.inner.sync.set_online(online);
        self.inner.sync_status_changed();
        worth_syncing
    }

    /// Where syncing stands, for a status line or badge.
    pub fn status(&self) -> SyncStatus {
        self.inner.sync.status().into()
    }
}

/// The clinic a device is enrolled with.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Enrollment {
    /// The clinic's name.
    pub clinic_name: String,
    /// Its server.
    pub server_url: String,
    /// The client this device belongs to.
    pub client_id: String,
    /// This device's id.
    pub device_id: String,
}

/// Where syncing stands.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// The device is enrolled with a clinic.
    pub enrolled: bool,
    /// The host's last connectivity report.
    pub online: bool,
    /// Local changes the clinic has not received yet.
    pub pending_changes: u64,
    /// A pending change is urgent (it goes with the next sync).
    pub urgent_pending: bool,
    /// When the last sync succeeded (since the store was opened).
    pub last_success: Option<SystemTime>,
    /// When the next automatic attempt is allowed, after a failure.
    pub next_attempt: Option<SystemTime>,
    /// The last failure, in words for the client.
    pub last_error: Option<String>,
    /// Automatic syncing stopped on a permanent failure (revoked, unauthorized).
    pub stopped: bool,
}

impl From<CoreSyncStatus> for SyncStatus {
    fn from(s: CoreSyncStatus) -> Self {
        SyncStatus {
            enrolled: s.enrolled,
            online: s.online,
            pending_changes: s.pending_changes as u64,
            urgent_pending: s.urgent_pending,
            last_success: s.last_success.map(to_system_time),
            next_attempt: s.next_attempt.map(to_system_time),
            last_error: s.last_error,
            stopped: s.stopped,
        }
    }
}

/// What one sync did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Local changes were sent.
    pub sent_changes: bool,
    /// Changes from the clinic or other devices arrived.
    pub received_changes: bool,
    /// The clinic had lost history and the whole record was resent.
    pub full_resend: bool,
    /// A newly activated clinic pack.
    pub pack_activated: Option<PackVersion>,
    /// Why an offered pack was refused (the current one stays).
    pub pack_refused: Option<String>,
    /// HTTP requests made.
    pub round_trips: u32,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// Body bytes received.
    pub bytes_received: u64,
}

/// A pack id and version.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PackVersion {
    /// Pack id.
    pub id: String,
    /// Version.
    pub version: u32,
}

impl From<CoreSyncReport> for SyncReport {
    fn from(r: CoreSyncReport) -> Self {
        SyncReport {
            sent_changes: r.sent_changes,
            received_changes: r.received_changes,
            full_resend: r.full_resend,
            pack_activated: r.pack_activated.map(|(id, version)| PackVersion { id, version }),
            pack_refused: r.pack_refused,
            round_trips: r.round_trips,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
        }
    }
}
