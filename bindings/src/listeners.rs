//! Observation: the app's listener, and the handle that keeps it registered.
//!
//! An app implements [`CareListener`] (a Kotlin interface / Swift protocol) and
//! registers it with `CareStore.addListener`, which returns a [`ListenerHandle`].
//! The listener stays registered until the handle is cancelled or dropped
//! (closed or garbage-collected in Kotlin, released in Swift): keep the handle
//! for as long as you want events. Delivery is core's
//! ([`katcore::device::observers`]): on the thread that caused the change,
//! after it is durable, never under a lock; a listener that throws is skipped.

use std::sync::{Arc, Mutex};

use katcore::device::{CareChange, Device, Observer, Subscription};
use katcore::sync::SyncStatus;

use crate::time::Timestamp;

/// Receives change notifications; implemented by the app.
///
/// Do not keep a strong reference from the listener to the `CareStore` that
/// holds it without cancelling its handle: that is a reference cycle.
#[uniffi::export(foreign)]
pub trait CareListener: Send + Sync {
    /// Something in the record changed and is saved; re-read what you show.
    fn on_record_changed(&self, change: CareChange);
    /// The sync status changed (a sync ran, connectivity changed, a change is pending).
    fn on_sync_status_changed(&self, status: SyncStatus);
}

/// Keeps a listener registered; cancelling it (or dropping it) unregisters the listener.
#[derive(uniffi::Object)]
pub struct ListenerHandle {
    subscription: Mutex<Option<Subscription>>,
}

#[uniffi::export]
impl ListenerHandle {
    /// Unregisters the listener. Calling it again does nothing.
    pub fn cancel(&self) {
        let taken = self.subscription.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        drop(taken);
    }
}

/// The app's listener as a core observer.
struct Forward(Arc<dyn CareListener>);

impl Observer for Forward {
    fn record_changed(&self, change: CareChange) {
        self.0.on_record_changed(change);
    }

    fn sync_status_changed(&self, status: &SyncStatus) {
        self.0.on_sync_status_changed(status.clone());
    }
}

/// Registers `listener` with `device` until the handle is cancelled or dropped.
pub(crate) fn register(device: &Device, listener: Arc<dyn CareListener>) -> ListenerHandle {
    ListenerHandle { subscription: Mutex::new(Some(device.subscribe(Arc::new(Forward(listener))))) }
}

/// What part of the care record changed.
#[uniffi::remote(Enum)]
pub enum CareChange {
    /// Sessions: scheduled, moved, cancelled, started, ended, or a checklist answer.
    Sessions,
    /// Journal entries, shared or private.
    Journal,
    /// Vitals, side-effect reports or check-ins.
    Wellbeing,
    /// Changes from the clinic or the client's other devices arrived: anything may differ.
    Received,
    /// The clinic's content pack (guidelines, checklist, contacts) was replaced.
    Content,
}

/// Where syncing stands.
#[uniffi::remote(Record)]
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
    pub last_success: Option<Timestamp>,
    /// When the next automatic attempt is allowed, after a failure.
    pub next_attempt: Option<Timestamp>,
    /// The last failure, in words for the client.
    pub last_error: Option<String>,
    /// Automatic syncing stopped on a permanent failure (revoked, unauthorized).
    pub stopped: bool,
}
