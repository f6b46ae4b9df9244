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

use katcore::device::{Device, Enrollment};
use katcore::sync::{PackVersion, SyncReport, SyncStatus, SyncTrigger};

use crate::error::Result;

/// Enrollment and sync with the clinic.
#[derive(uniffi::Object)]
pub struct ClinicSync {
    pub(crate) device: Device,
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
        Ok(self.device.enroll(&server_url, &code, &device_label).await?)
    }

    /// The clinic this device is enrolled with, if any.
    ///
    /// # Errors
    /// A store error.
    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        Ok(self.device.enrollment()?)
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
        Ok(self.device.sync(SyncTrigger::User).await?)
    }

    /// Syncs if an automatic sync is due (call it from timers and on reconnect): like
    /// `syncNow`, but refuses while offline or while backing off after failures, and
    /// repeats the permanent failure (`Revoked`, `Unauthorized`) that stopped it.
    ///
    /// # Errors
    /// As `syncNow`, plus `Offline` and `RetryLater` with the time the next attempt is allowed.
    pub async fn sync_if_due(&self) -> Result<SyncReport> {
        Ok(self.device.sync(SyncTrigger::Automatic).await?)
    }

    /// The host reports connectivity (from `ConnectivityManager` / `NWPathMonitor`). Returns
    /// true when a sync is worth starting now: back online with changes pending.
    pub fn set_online(&self, online: bool) -> bool {
        self.device.set_online(online)
    }

    /// Where syncing stands, for a status line or badge.
    pub fn status(&self) -> SyncStatus {
        self.device.sync_status()
    }
}

/// The clinic a device is enrolled with.
#[uniffi::remote(Record)]
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

/// What one sync did.
#[uniffi::remote(Record)]
pub struct SyncReport {
    /// HTTP requests made.
    pub round_trips: u32,
    /// Whether the pack was fetched (only when the clinic advertised a new one).
    pub pack_fetched: bool,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// Body bytes received.
    pub bytes_received: u64,
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
}

/// A pack id and version.
#[uniffi::remote(Record)]
pub struct PackVersion {
    /// Pack id.
    pub id: String,
    /// Version.
    pub version: u32,
}
