//! `Journal`: the client's journal and the integration prompts waiting for an answer.
//!
//! A shared entry joins the care record and syncs to the clinic; a private one
//! stays encrypted on this device only and never syncs. Both answer prompts.

use std::sync::Arc;
use std::time::SystemTime;

use katcore::record::{DuePrompt as CoreDuePrompt, JournalEntry as CoreJournalEntry, JournalLinks};

use crate::error::Result;
use crate::listeners::CareChange;
use crate::store::Inner;
use crate::time::{or_now, to_system_time};

/// The client's journal. Calls block briefly: writes are durable (on disk) when they return.
#[derive(uniffi::Object)]
pub struct Journal {
    inner: Arc<Inner>,
}

impl Journal {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Journal { inner }
    }
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
        let id = self.inner.store.write_journal_entry(&text, &links, private, or_now("at", at)?)?;
        self.inner.changed(CareChange::Journal);
        Ok(id)
    }

    /// Replaces an entry's text, shared or private.
    ///
    /// # Errors
    /// `NotFound`, or `InvalidInput` for empty or over-long text.
    #[uniffi::method(default(at = None))]
    pub fn edit(&self, entry_id: String, text: String, at: Option<SystemTime>) -> Result<()> {
        self.inner.store.edit_journal_entry(&entry_id, &text, or_now("at", at)?)?;
        self.inner.changed(CareChange::Journal);
        Ok(())
    }

    /// Deletes an entry: a shared one disappears on every device, a private one is erased.
    ///
    /// # Errors
    /// `NotFound`.
    #[uniffi::method(default(at = None))]
    pub fn delete(&self, entry_id: String, at: Option<SystemTime>) -> Result<()> {
        self.inner.store.delete_journal_entry(&entry_id, or_now("at", at)?)?;
        self.inner.changed(CareChange::Journal);
        Ok(())
    }

    /// Every entry, shared and private, newest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.inner.store.journal().into_iter().map(JournalEntry::from).collect()
    }

    /// Integration prompts due at `now` (default: the current time) that no entry answers yet.
    #[uniffi::method(default(now = None))]
    pub fn due_prompts(&self, locale: String, now: Option<SystemTime>) -> Result<Vec<DuePrompt>> {
        let prompts = self.inner.store.due_integration_prompts(&self.inner.pack(), or_now("now", now)?, &locale);
        Ok(prompts.into_iter().map(DuePrompt::from).collect())
    }
}

/// A journal entry.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct JournalEntry {
    /// Id.
    pub id: String,
    /// When it was written.
    pub created_at: SystemTime,
    /// When it was last edited.
    pub edited_at: Option<SystemTime>,
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

impl From<CoreJournalEntry> for JournalEntry {
    fn from(e: CoreJournalEntry) -> Self {
        JournalEntry {
            id: e.id,
            created_at: to_system_time(e.created_at),
            edited_at: e.edited_at.map(to_system_time),
            text: e.text,
            conflicting_texts: e.conflicting_texts,
            prompt_id: e.prompt_id,
            session_id: e.session_id,
            private: e.private,
        }
    }
}

/// An integration prompt that is due and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DuePrompt {
    /// The session it follows.
    pub session_id: String,
    /// The prompt id: pass it to `Journal.write` with the session id to answer it.
    pub prompt_id: String,
    /// When it became due.
    pub due_at: SystemTime,
    /// The prompt, localized.
    pub text: String,
}

impl From<CoreDuePrompt> for DuePrompt {
    fn from(p: CoreDuePrompt) -> Self {
        DuePrompt { session_id: p.session_id, prompt_id: p.prompt_id, due_at: to_system_time(p.due_at), text: p.text }
    }
}
