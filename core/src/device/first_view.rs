//! A device's first view: what the app shows the moment it opens (the next
//! session and its checklist with reminders, the integration prompts due,
//! and where sync stands), read from the store without loading the
//! record's history.
//!
//! The store keeps the record's current state beside the change log,
//! written in the same transaction as each change
//! (`crate::care_store`'s `current` module), so reading it costs the same
//! after ten years as after one day. An app shows [`Device::first_view`]
//! at once and opens the [`Device`] (which loads the whole record) in the
//! background; every write, and [`Device::start`]'s safety gate, goes
//! through the opened device, never through this view.

use std::path::Path;
use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Device, DeviceError};
use crate::care_store::Current;
use crate::checklist::Evaluation;
use crate::pack::{PackRegistry, TrustedKeys};
use crate::record::{DuePrompt, Session};
use crate::store::{Store, StoreKey};
use crate::sync::{restore_saved_pack, stored_sync};

#[cfg(test)]
mod tests;

/// What the app shows first, read without loading the record's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FirstView {
    /// The first of [`Device::upcoming`]: the soonest scheduled session
    /// still ahead (a started one counts until it ends).
    pub next_session: Option<Session>,
    /// That session's checklist, evaluated as [`Device::evaluate`] would,
    /// with its reminders.
    pub checklist: Option<Evaluation>,
    /// Integration prompts due and not answered, soonest first.
    pub due_prompts: Vec<DuePrompt>,
    /// Where sync stands.
    pub sync: FirstViewSync,
}

/// Where sync stands, as the store records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FirstViewSync {
    /// Whether the device is enrolled with a clinic.
    pub enrolled: bool,
    /// Changes saved on this device since the last successful sync began
    /// (every change when it never synced): what the clinic may not have
    /// yet. [`Device::sync_status`] counts them exactly once the device is open.
    pub unsynced_writes: u64,
}

impl Device {
    /// The first view of the store at `path` at `now`, in `locale`, read
    /// without loading the record's history. `None` when there is nothing
    /// to show from the store alone: no store at `path` (nothing is
    /// created), or a store whose current state is missing or older than
    /// its changes (one written by an earlier version of the app); opening
    /// the [`Device`] shows everything and stores the state for next time.
    ///
    /// # Errors
    /// The store's errors of opening (`WrongKey`, `Corrupt`, `TooNew`, …).
    pub fn first_view(
        path: &Path,
        key: &StoreKey,
        locale: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<FirstView>, DeviceError> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(None);
        }
        let store = Store::open(path, key)?;
        let seq = store.last_seq()?;
        let Some(current) = Current::stored(&store, seq)? else {
            return Ok(None);
        };
        let packs = RwLock::new(PackRegistry::new(TrustedKeys::default()));
        restore_saved_pack(&store, &packs)?;
        let pack = packs.read().unwrap_or_else(PoisonError::into_inner).active();
        let shown = current.shown(&pack, locale, now);
        let sync = stored_sync(&store)?;
        Ok(Some(FirstView {
            next_session: shown.next_session,
            checklist: shown.checklist,
            due_prompts: shown.due_prompts,
            sync: FirstViewSync {
                enrolled: sync.enrolled,
                unsynced_writes: u64::try_from(seq - sync.synced_seq).unwrap_or(0),
            },
        }))
    }
}
