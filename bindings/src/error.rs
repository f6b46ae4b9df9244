//! The one error type of the bindings, and the only place core errors are
//! converted into it.
//!
//! Kotlin sees it as the sealed class `KatcoreException` (`KatcoreException.WrongKey`,
//! …), Swift as the enum `KatcoreError`. Every case is something an app can act on;
//! no message carries health data, because the core's errors name fields and ids,
//! never values.

use std::time::SystemTime;

use katcore::checklist::ReadinessStatus;
use katcore::device::DeviceError;
use katcore::record::RecordError;
use katcore::store::StoreError;
use katcore::sync::SyncError;

/// Why a katcore call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum KatcoreError {
    /// The store key is not 32 bytes long: a bug in the app's key handling.
    #[error("the store key must be exactly 32 bytes")]
    InvalidKey,
    /// The key does not open this store. Nothing was changed; retry with the right key.
    #[error("the store key is wrong for this file")]
    WrongKey,
    /// The store file is damaged (or not a katcore store). Restore it from a backup or
    /// re-sync from the clinic into a new store.
    #[error("the store is damaged: {what}")]
    Corrupt {
        /// What was found damaged.
        what: String,
    },
    /// The store was written by a newer version of the app: ask the user to update.
    #[error("the store has schema version {found}; this app reads up to {supported}")]
    StoreTooNew {
        /// The store's schema version.
        found: u32,
        /// The newest version this library reads.
        supported: u32,
    },
    /// The file system failed (disk full, permission denied, locked): retry later.
    #[error("the store could not be accessed: {reason}")]
    Storage {
        /// What the file system or SQLite reported.
        reason: String,
    },
    /// An argument was not acceptable; `field` names it, `reason` says why (never the value).
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which argument, e.g. `answers.blood_pressure` or `time_zone`.
        field: String,
        /// What was wrong.
        reason: String,
    },
    /// The session, journal entry, … does not exist (or was deleted).
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, e.g. `session 3f2a…`.
        what: String,
    },
    /// The session cannot start: its checklist is not `READY`. The decision was recorded;
    /// show `Sessions.evaluate` to the client.
    #[error("the session is not ready to start ({status:?})")]
    NotReady {
        /// The checklist's status.
        status: ReadinessStatus,
    },
    /// The device is not enrolled with a clinic: call `ClinicSync.enroll` first.
    #[error("this device is not enrolled with a clinic")]
    NotEnrolled,
    /// The enrollment code is unknown, used or expired: ask the clinic for a new one.
    #[error("the enrollment code is not valid")]
    InvalidCode,
    /// The host reported no connectivity and the sync was automatic; it runs when back online.
    #[error("offline")]
    Offline,
    /// The clinic server could not be reached; everything is kept and sent later.
    #[error("network error: {reason}")]
    Network {
        /// What failed, without request content.
        reason: String,
    },
    /// The server is busy, or an automatic retry is not due yet: try again at `retry_at`.
    #[error("try again later")]
    RetryLater {
        /// When the next attempt is allowed, if known.
        retry_at: Option<SystemTime>,
    },
    /// The clinic no longer accepts this device's credentials: the user must contact the clinic.
    #[error("the clinic server does not accept this device")]
    Unauthorized,
    /// The clinic removed this device: enroll again with a new code.
    #[error("this device was removed by the clinic")]
    Revoked,
    /// The clinic server refused a request or answered outside the protocol.
    #[error("the clinic server failed: {reason}")]
    Server {
        /// What went wrong.
        reason: String,
    },
}

/// Shorthand for the results of every exported call.
pub(crate) type Result<T, E = KatcoreError> = std::result::Result<T, E>;

impl KatcoreError {
    /// An invalid argument.
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        KatcoreError::InvalidInput { field: field.to_owned(), reason: reason.into() }
    }
}

impl From<StoreError> for KatcoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidKey => KatcoreError::InvalidKey,
            StoreError::WrongKey => KatcoreError::WrongKey,
            StoreError::Corrupt { what } => KatcoreError::Corrupt { what: what.to_owned() },
            StoreError::TooNew { found, supported } => KatcoreError::StoreTooNew { found, supported },
            StoreError::InvalidArgument { what } => KatcoreError::Storage { reason: what.to_owned() },
            StoreError::Storage { reason } => KatcoreError::Storage { reason },
        }
    }
}

impl From<RecordError> for KatcoreError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::NotFound { kind, id } => KatcoreError::NotFound { what: format!("{kind} {id}") },
            RecordError::InvalidInput { field, reason } | RecordError::NotPermitted { field, reason } => {
                KatcoreError::InvalidInput { field, reason }
            }
            RecordError::Malformed { reason } => KatcoreError::Corrupt { what: reason },
            RecordError::Refused(violation) => KatcoreError::Server { reason: violation.to_string() },
        }
    }
}

impl From<DeviceError> for KatcoreError {
    fn from(error: DeviceError) -> Self {
        match error {
            DeviceError::Store(error) => error.into(),
            DeviceError::Record(error) => error.into(),
            DeviceError::Sync(error) => error.into(),
            DeviceError::NotReady { status, .. } => KatcoreError::NotReady { status },
            DeviceError::InvalidInput { field, reason } => KatcoreError::InvalidInput { field, reason },
        }
    }
}

impl From<SyncError> for KatcoreError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::NotEnrolled => KatcoreError::NotEnrolled,
            SyncError::InvalidCode => KatcoreError::InvalidCode,
            SyncError::Offline => KatcoreError::Offline,
            SyncError::BackingOff { until } => KatcoreError::RetryLater { retry_at: Some(until.into()) },
            SyncError::ServerBusy { retry_after, .. } => {
                KatcoreError::RetryLater { retry_at: retry_after.map(SystemTime::from) }
            }
            SyncError::Network { reason } => KatcoreError::Network { reason },
            SyncError::Unauthorized | SyncError::Forbidden => KatcoreError::Unauthorized,
            SyncError::Revoked => KatcoreError::Revoked,
            SyncError::Rejected { status, message } => KatcoreError::Server { reason: format!("{status} {message}") },
            SyncError::Protocol { reason } => KatcoreError::Server { reason },
            SyncError::Store(error) => DeviceError::from(error).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_actionable_case() {
        assert!(matches!(KatcoreError::from(StoreError::WrongKey), KatcoreError::WrongKey));
        assert!(matches!(
            KatcoreError::from(DeviceError::Store(StoreError::Corrupt { what: "x" })),
            KatcoreError::Corrupt { what } if what == "x"
        ));
    }

    #[test]
    fn sync_errors_collapse_to_what_the_app_can_do() {
        assert!(matches!(KatcoreError::from(SyncError::Forbidden), KatcoreError::Unauthorized));
        assert!(matches!(
            KatcoreError::from(SyncError::ServerBusy { status: 503, retry_after: None }),
            KatcoreError::RetryLater { retry_at: None }
        ));
    }
}
