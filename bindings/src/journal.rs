//! `Journal`: the client's journal and the integration prompts waiting for an answer.
//!
//! A shared entry joins the care record and syncs to the clinic; a private one
//! stays encrypted on this device only and never syncs. Both answer prompts.
//! The care team's notes to the client are read here too.

use std::time::SystemTime;

use katcore::device::Device;
use katcore::record::{ClinicianNote, DuePrompt, JournalEntry, JournalLinks};

use crate::error::Result;
use crate::time::{or_now, Timestamp, ZonedTimestamp};

/// The client's journal. Calls block briefly: writes are durable (on disk) when they return.
#[derive(uniffi::Object)]
pub struct Journal {
    pub(crate) device: Device,
}

#[uniffi::export]
impl Journal {
    /// Writes an entry and returns its id; `private` keeps it on this device only.
    /// `prompt_id` and `session_id` link it to the integration prompt it answers.
    /// Blocking (a durable write).
    ///
    /// # Errors
    /// `InvalidInput` for empty or over-long text or an unknown session.
    #[uniffi::method(default(private = false, prompt_id = None, session_id = None, at = None))]
    pub fn write(
        &self,
        text: String,
        private: bool,
        prompt_id: Option<String>,
        session_id: Option<String>,
        at: Option<SystemTime>,
    ) -> Result<String> {
        let links = JournalLinks { prompt_id, session_id };
        Ok(self.device.write_journal(&text, &links, private, or_now("at", at)?)?)
    }

    /// Replaces an entry's text, shared or private.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` for empty or over-long text.
    #[uniffi::method(default(at = None))]
    pub fn edit(&self, entry_id: String, text: String, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.edit_journal(&entry_id, &text, or_now("at", at)?)?)
    }

    /// Deletes an entry: a shared one disappears on every device, a private one is erased.
    ///
    /// # Errors
    /// `NotFound`.
    #[uniffi::method(default(at = None))]
    pub fn delete(&self, entry_id: String, at: Option<SystemTime>) -> Result<()> {
        Ok(self.device.delete_journal(&entry_id, or_now("at", at)?)?)
    }

    /// Every entry, shared and private, newest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.device.journal()
    }

    /// The notes the care team wrote to the client, oldest first. They arrive by sync
    /// (`CareChange.RECEIVED`); the device cannot write or change them.
    pub fn care_team_notes(&self) -> Vec<ClinicianNote> {
        self.device.clinician_notes()
    }

    /// Integration prompts due at `now` (default: the current time) that no entry answers yet.
    #[uniffi::method(default(now = None))]
    pub fn due_prompts(&self, locale: String, now: Option<SystemTime>) -> Result<Vec<DuePrompt>> {
        Ok(self.device.due_prompts(&locale, or_now("now", now)?))
    }
}

/// A journal entry.
#[uniffi::remote(Record)]
pub struct JournalEntry {
    /// Id.
    pub id: String,
    /// When it was written.
    pub created_at: Timestamp,
    /// When it was last edited.
    pub edited_at: Option<Timestamp>,
    /// The text.
    pub text: String,
    /// Texts written concurrently on other devices; the next edit settles the entry.
    pub conflicting_texts: Vec<String>,
    /// The integration prompt it answers.
    pub prompt_id: Option<String>,
    /// The session it relates to.
    pub session_id: Option<String>,
    /// Kept on this device only; never synced.
    pub private: bool,
}

/// An integration prompt that is due and not yet answered.
#[uniffi::remote(Record)]
pub struct DuePrompt {
    /// The session it follows.
    pub session_id: String,
    /// The prompt id: pass it to `Journal.write` with the session id to answer it.
    pub prompt_id: String,
    /// When it became due.
    pub due_at: ZonedTimestamp,
    /// The prompt, localized.
    pub text: String,
}

/// A note from the client's care team.
#[uniffi::remote(Record)]
pub struct ClinicianNote {
    /// Id.
    pub id: String,
    /// When it was written.
    pub written_at: Timestamp,
    /// The clinician's display name.
    pub author: String,
    /// The note.
    pub text: String,
}
