//! Change notification: what a front end registers to hear about the
//! device's record and sync status, and the subscription that keeps it
//! registered.
//!
//! Events are delivered on the thread that caused them (the caller's for
//! local writes, the sync's for sync), after the change is durable and never
//! while a lock is held, so an observer may call back into the device. An
//! observer that panics (a foreign listener that threw) is skipped: the
//! change it was told about is saved either way.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::sync::SyncStatus;

/// What part of the care record changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CareChange {
    /// Sessions: scheduled, moved, cancelled, started, ended, or a checklist answer.
    Sessions,
    /// Journal entries, shared or private.
    Journal,
    /// Vitals, side-effect reports or check-ins.
    Wellbeing,
    /// Changes from the clinic or the client's other devices arrived: anything may differ.
    Received,
    /// The clinic's content pack was replaced.
    Content,
}

/// Hears about changes; implemented by a front end (the mobile bindings
/// forward to the app's listener).
pub trait Observer: Send + Sync {
    /// Something in the record changed and is saved.
    fn record_changed(&self, change: CareChange);
    /// The sync status changed (a sync ran, connectivity changed, a change is pending).
    fn sync_status_changed(&self, status: &SyncStatus);
}

/// Keeps an observer registered; cancelling or dropping it unregisters the observer.
#[must_use = "the observer is unregistered when the subscription is dropped"]
pub struct Subscription {
    id: u64,
    observers: Weak<Observers>,
}

impl Subscription {
    /// Unregisters the observer. Calling it again does nothing.
    pub fn cancel(&self) {
        if let Some(observers) = self.observers.upgrade() {
            observers.lock().retain(|(registered, _)| *registered != self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

/// The registered observers of one device.
#[derive(Default)]
pub(crate) struct Observers {
    next_id: AtomicU64,
    registered: Mutex<Vec<(u64, Arc<dyn Observer>)>>,
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers").field("registered", &self.lock().len()).finish()
    }
}

impl Observers {
    /// Registers `observer` until the returned subscription is cancelled or dropped.
    pub(crate) fn add(self: &Arc<Self>, observer: Arc<dyn Observer>) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, observer));
        Subscription { id, observers: Arc::downgrade(self) }
    }

    /// True when no one observes, so callers can skip building events.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Calls `notify` on every observer, outside the lock; one that panics is skipped.
    pub(crate) fn each(&self, notify: impl Fn(&dyn Observer)) {
        let observers: Vec<Arc<dyn Observer>> = self.lock().iter().map(|(_, o)| Arc::clone(o)).collect();
        for observer in observers {
            let _ = catch_unwind(AssertUnwindSafe(|| notify(observer.as_ref())));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Arc<dyn Observer>)>> {
        self.registered.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counter(Mutex<Vec<CareChange>>);

    impl Observer for Counter {
        fn record_changed(&self, change: CareChange) {
            self.0.lock().unwrap().push(change);
        }
        fn sync_status_changed(&self, _status: &SyncStatus) {}
    }

    /// Stands for a foreign listener that throws.
    struct Throwing;

    impl Observer for Throwing {
        fn record_changed(&self, _change: CareChange) {
            panic!("the listener threw");
        }
        fn sync_status_changed(&self, _status: &SyncStatus) {}
    }

    #[test]
    fn a_subscription_unregisters_on_cancel_and_on_drop_and_a_panicking_observer_is_skipped() {
        let observers = Arc::new(Observers::default());
        let counter = Arc::new(Counter::default());
        let throwing = observers.add(Arc::new(Throwing));
        let first = observers.add(counter.clone());
        let second = observers.add(counter.clone());
        observers.each(|o| o.record_changed(CareChange::Journal));
        first.cancel();
        first.cancel();
        observers.each(|o| o.record_changed(CareChange::Sessions));
        drop(second);
        drop(throwing);
        observers.each(|o| o.record_changed(CareChange::Wellbeing));
        assert!(observers.is_empty());
        assert_eq!(*counter.0.lock().unwrap(), [CareChange::Journal, CareChange::Journal, CareChange::Sessions]);
    }
}
