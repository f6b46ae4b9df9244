//! `firstView`: what the app shows the moment it starts, read from the
//! store without loading the record's history (core's
//! [`katcore::device::first_view`]). Show it at once, then open
//! [`crate::CareStore`] off the main thread; every write goes through the
//! opened store.

use std::path::Path;
use std::time::SystemTime;

use katcore::device::Device;
use katcore::store::StoreKey;
use zeroize::Zeroize;

use crate::error::Result;
use crate::sessions::Session;
use crate::time::{or_now, Timestamp};
use crate::{DuePrompt, Evaluation};

/// What the app shows first: the next session, its checklist, the prompts
/// due and where sync stands.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FirstView {
    /// The next session: one started and not ended, else the soonest scheduled.
    pub next_session: Option<Session>,
    /// That session's checklist, evaluated (with its reminders).
    pub checklist: Option<Evaluation>,
    /// Integration prompts due and not answered, soonest first.
    pub due_prompts: Vec<DuePrompt>,
    /// Whether the device is enrolled with a clinic.
    pub enrolled: bool,
    /// When the last sync succeeded, by this phone's clock.
    pub last_synced_at: Option<Timestamp>,
    /// Changes saved on this phone since the last successful sync began:
    /// what the clinic may not have yet.
    pub unsynced_writes: u64,
}

/// The first view of the store at `path` at `now` (default: the current
/// time), in `locale`, without loading the record's history. `null`/`nil`
/// when the store alone cannot tell: no store at `path` (none is created),
/// or one last written by an earlier version of the app; then open
/// `CareStore` as usual, which stores what the next call needs.
///
/// # Errors
/// As `CareStore.open`: `WrongKey`, `InvalidKey`, `Corrupt`, `StoreTooNew`, `Storage`.
#[uniffi::export(default(now = None))]
pub fn first_view(path: String, key: Vec<u8>, locale: String, now: Option<SystemTime>) -> Result<Option<FirstView>> {
    let mut key = key;
    let store_key = StoreKey::from_bytes(&key);
    key.zeroize();
    let view = Device::first_view(Path::new(&path), &store_key?, &locale, or_now("now", now)?)?;
    Ok(view.map(|view| FirstView {
        next_session: view.next_session.map(Session::from),
        checklist: view.checklist,
        due_prompts: view.due_prompts,
        enrolled: view.sync.enrolled,
        last_synced_at: view.sync.last_synced_at,
        unsynced_writes: view.sync.unsynced_writes,
    }))
}
