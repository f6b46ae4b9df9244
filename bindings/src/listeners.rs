//! Observation: the app's listener, and the handle that keeps it registered.
//!
//! An app implements [`CareListener`] (a Kotlin interface / Swift protocol) and
//! registers it with `CareStore.addListener`, which returns a [`ListenerHandle`].
//! The listener stays registered until the handle is cancelled or dropped
//! (closed or garbage-collected in Kotlin, released in Swift): keep the handle
//! for as long as you want events.
//!
//! Events are delivered on the thread that caused them (the caller's thread for
//! local writes, a sync worker thread for sync), after the change is durable,
//! and never while a lock is held, so a listener may call back into katcore.
//! Hop to the UI thread yourself. A listener that throws is skipped: the change
//! it was told about is already saved.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::sync::SyncStatus;

/// What part of the care record changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
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
    id: u64,
    listeners: Weak<Listeners>,
}

#[uniffi::export]
impl ListenerHandle {
    /// Unregisters the listener. Calling it again does nothing.
    pub fn cancel(&self) {
        if let Some(listeners) = self.listeners.upgrade() {
            listeners.remove(self.id);
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The registered listeners of one store.
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: AtomicU64,
    registered: Mutex<Vec<(u64, Arc<dyn CareListener>)>>,
}

impl Listeners {
    /// Registers `listener` until the returned handle is cancelled or dropped.
    pub(crate) fn add(self: &Arc<Self>, listener: Arc<dyn CareListener>) -> ListenerHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, listener));
        ListenerHandle { id, listeners: Arc::downgrade(self) }
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|(registered, _)| *registered != id);
    }

    /// True when no one listens, so callers can skip building events.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Calls `notify` on every listener, outside the lock; a failing listener is skipped.
    pub(crate) fn each(&self, notify: impl Fn(&dyn CareListener)) {
        let listeners: Vec<Arc<dyn CareListener>> = self.lock().iter().map(|(_, l)| Arc::clone(l)).collect();
        for listener in listeners {
            // A foreign listener that throws surfaces here as a panic; the change is saved either way.
            let _ = catch_unwind(AssertUnwindSafe(|| notify(listener.as_ref())));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<dyn CareListener>)>> {
        self.registered.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(Mutex<Vec<CareChange>>);

    impl CareListener for Counter {
        fn on_record_changed(&self, change: CareChange) {
            self.0.lock().unwrap().push(change);
        }
        fn on_sync_status_changed(&self, _status: SyncStatus) {}
    }

    /// Stands for a foreign listener that throws.
    struct Throwing;

    impl CareListener for Throwing {
        fn on_record_changed(&self, _change: CareChange) {
            panic!("the listener threw");
        }
        fn on_sync_status_changed(&self, _status: SyncStatus) {}
    }

    #[test]
    fn a_handle_unregisters_on_cancel_and_on_drop_and_a_throwing_listener_is_skipped() {
        let listeners = Arc::new(Listeners::default());
        let counter = Arc::new(Counter::default());
        let throwing = listeners.add(Arc::new(Throwing));
        let first = listeners.add(counter.clone());
        let second = listeners.add(counter.clone());
        listeners.each(|l| l.on_record_changed(CareChange::Journal));
        first.cancel();
        first.cancel();
        listeners.each(|l| l.on_record_changed(CareChange::Sessions));
        drop(second);
        drop(throwing);
        listeners.each(|l| l.on_record_changed(CareChange::Wellbeing));
        assert!(listeners.is_empty());
        assert_eq!(*counter.0.lock().unwrap(), [CareChange::Journal, CareChange::Journal, CareChange::Sessions]);
    }
}
