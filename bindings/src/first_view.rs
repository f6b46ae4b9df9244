//! `firstView`: what the app shows the moment it starts, read from the
//! store without loading the record's history (core's
//! [`katcore::device::first_view`]). Show it at once, then open
//! [`crate::CareStore`] off the main thread; every write goes through the
//! opened store.

use std::path::Path;
use std::time::SystemTime;

use katcore::device::Device;

use crate::error::Result;
use crate::sessions::Session;
use crate::store::store_key;
use crate::time::or_now;
use crate::{DuePrompt, Evaluation};

/// What the app shows first.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FirstView {
    /// The first of `upcoming`.
    pub next_session: Option<Session>,
    /// Its checklist, evaluated.
    pub checklist: Option<Evaluation>,
    /// Prompts due, soonest first.
    pub due_prompts: Vec<DuePrompt>,
    /// Enrolled with a clinic.
    pub enrolled: bool,
    /// Changes saved since the last sync began.
    pub unsynced_writes: u64,
}

/// The store's first view, without loading its history; null until
/// `CareStore.open` has run once (docs/mobile.md). Errors as `open`.
#[uniffi::export(default(now = None))]
pub fn first_view(path: String, key: Vec<u8>, locale: String, now: Option<SystemTime>) -> Result<Option<FirstView>> {
    let view = Device::first_view(Path::new(&path), &store_key(key)?, &locale, or_now("now", now)?)?;
    Ok(view.map(|view| FirstView {
        next_session: view.next_session.map(Session::from),
        checklist: view.checklist,
        due_prompts: view.due_prompts,
        enrolled: view.sync.enrolled,
        unsynced_writes: view.sync.unsynced_writes,
    }))
}
