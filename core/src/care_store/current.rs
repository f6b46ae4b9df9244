//! The record's current state as a first screen needs it, kept in the
//! store beside the change log so that a device can show that screen
//! without loading the history (`crate::device::first_view`).
//!
//! [`Current`] holds the sessions a first screen can show (upcoming, in
//! progress, or ended recently enough for an integration prompt to be due)
//! with their current checklist answers, and which journal entries, shared
//! or private, answer those sessions' prompts. It is updated from the
//! entries each change touched ([`touched_entries`]), so keeping it costs
//! what the change touched, never the history, and it is sealed into the
//! store's `meta` in the same transaction as the change
//! ([`Store::append_change_with_meta`]): it is never older or newer than
//! the changes on disk. It names the last change it reflects, so a copy
//! left behind by a version of the app that did not keep it is recognised
//! as stale and never shown.
//!
//! [`touched_entries`]: crate::record::touched_entries
//! [`Store::append_change_with_meta`]: crate::store::Store::append_change_with_meta

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::checklist::{evaluate_in, Answers, Evaluation};
use crate::pack::{Pack, MAX_INTEGRATION_DAY};
use crate::record::{
    due_prompts_among, is_upcoming, CareRecord, DuePrompt, JournalEntry, Session, DUE_PROMPT_WINDOW, SESSION_PREFIX,
};
use crate::zone::Zone;

/// The meta key the current state is sealed under.
pub(crate) const META_KEY: &str = "current_state";

/// The layout of the stored value; another one is not read (the device
/// rebuilds it when it next opens the whole record).
const FORMAT: u32 = 1;

/// How long after its end a session is kept: its last integration prompt
/// falls at most [`MAX_INTEGRATION_DAY`] days (plus the rest of that day)
/// after the session and stays due for [`DUE_PROMPT_WINDOW`].
pub(crate) fn prompt_horizon() -> Duration {
    Duration::days(i64::from(MAX_INTEGRATION_DAY) + 2) + DUE_PROMPT_WINDOW
}

/// The journal kind's key prefix (`record.rs`).
const JOURNAL_PREFIX: &str = "j:";

/// What a first screen is made from (module documentation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Current {
    /// [`FORMAT`].
    format: u32,
    /// The seq of the last change this state reflects.
    seq: i64,
    /// The sessions a first screen can show, by id.
    sessions: BTreeMap<String, Live>,
    /// Journal entries answering a prompt of one of those sessions: entry
    /// id → (session id, prompt id).
    answered: BTreeMap<String, (String, String)>,
}

/// One session kept, with its current checklist answers (item id → value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Live {
    session: Session,
    answers: Map<String, Value>,
}

/// What a first screen shows, worked out from a [`Current`] at an instant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shown {
    /// The next session (an unfinished one first), as `upcoming_sessions` orders them.
    pub(crate) next_session: Option<Session>,
    /// Its checklist, evaluated.
    pub(crate) checklist: Option<Evaluation>,
    /// Integration prompts due and not answered.
    pub(crate) due_prompts: Vec<DuePrompt>,
}

impl Current {
    /// Builds the state from the whole record and the private journal
    /// entries: on open, when the stored one is missing or stale.
    pub(crate) fn build<'a>(
        record: &CareRecord,
        private: impl Iterator<Item = &'a JournalEntry>,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Current {
        let mut current = Current { format: FORMAT, seq, ..Current::default() };
        for session in record.sessions() {
            current.put_session(record, session);
        }
        for entry in &record.journal() {
            current.note_entry(&entry.id, Some(entry));
        }
        for entry in private {
            current.note_entry(&entry.id, Some(entry));
        }
        current.prune(now);
        current
    }

    /// The state after a change that touched the entries `keys` (logical
    /// keys) and was stored as `seq`.
    pub(crate) fn after_change(
        &self,
        record: &CareRecord,
        keys: &BTreeSet<String>,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Current {
        let mut next = self.clone();
        next.seq = seq;
        // Sessions first: a journal entry is kept only for a session kept.
        for id in keys.iter().filter_map(|key| key.strip_prefix(SESSION_PREFIX)) {
            match record.session(id) {
                Some(session) => next.put_session(record, session),
                None => {
                    next.sessions.remove(id);
                }
            }
        }
        for id in keys.iter().filter_map(|key| key.strip_prefix(JOURNAL_PREFIX)) {
            next.note_entry(id, record.journal_entry(id).as_ref());
        }
        next.prune(now);
        next
    }

    /// The state after a private journal entry was written (`Some`) or erased (`None`).
    pub(crate) fn after_private(&self, id: &str, entry: Option<&JournalEntry>) -> Current {
        let mut next = self.clone();
        next.note_entry(id, entry);
        next
    }

    /// The stored form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A map of strings and plain values always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The state stored as `bytes`, if it is in this version's layout and
    /// reflects the change `seq` (the last one on disk).
    pub(crate) fn decode(bytes: &[u8], seq: i64) -> Option<Current> {
        serde_json::from_slice::<Current>(bytes).ok().filter(|current| current.format == FORMAT && current.seq == seq)
    }

    /// The seq of the last change it reflects.
    pub(crate) fn seq(&self) -> i64 {
        self.seq
    }

    /// The first screen at `now` under `pack`, in `locale`.
    pub(crate) fn shown(&self, pack: &Pack, locale: &str, now: DateTime<Utc>) -> Shown {
        let mut sessions: Vec<&Live> = self.sessions.values().collect();
        sessions.sort_unstable_by(|a, b| {
            (a.session.scheduled_start, &a.session.id).cmp(&(b.session.scheduled_start, &b.session.id))
        });
        let next = sessions.iter().find(|live| is_upcoming(&live.session, now));
        let checklist = next.map(|live| {
            let mut answers = Answers::new();
            for (item, value) in &live.answers {
                // An answer that does not fit the pack counts as unanswered,
                // as in `CareRecord::checklist_inputs`.
                let _ = answers.set(pack, item, value);
            }
            let zone = Zone::named(&live.session.time_zone);
            evaluate_in(pack, live.session.scheduled_start, zone.as_ref(), &answers, locale)
        });
        let answered: HashSet<(String, String)> = self.answered.values().cloned().collect();
        let ended: Vec<Session> = sessions.iter().map(|live| live.session.clone()).collect();
        Shown {
            next_session: next.map(|live| live.session.clone()),
            checklist,
            due_prompts: due_prompts_among(pack, now, locale, &ended, &answered),
        }
    }

    fn put_session(&mut self, record: &CareRecord, session: Session) {
        if session.cancelled.is_some() {
            self.sessions.remove(&session.id);
            return;
        }
        // An ended session's checklist is never shown again.
        let answers = match record.session_answers(&session.id) {
            Some(Value::Object(answers)) if session.ended_at.is_none() => answers,
            _ => Map::new(),
        };
        self.sessions.insert(session.id.clone(), Live { session, answers });
    }

    fn note_entry(&mut self, id: &str, entry: Option<&JournalEntry>) {
        match entry.and_then(JournalEntry::prompt_link) {
            Some(link) if self.sessions.contains_key(&link.0) => {
                self.answered.insert(id.to_owned(), link);
            }
            _ => {
                self.answered.remove(id);
            }
        }
    }

    /// Drops what time has made irrelevant: sessions no first screen can
    /// show at `now` or later, and the answers to their prompts. `now` is
    /// the clock at the write, but never later than the latest start or
    /// end the record holds (nothing is dropped before one): a record
    /// written with instants of its own (a test's, or a phone whose clock
    /// was wrong) keeps what they need, and what is dropped is what a
    /// session that has already begun made irrelevant.
    fn prune(&mut self, now: DateTime<Utc>) {
        let Some(latest) = self.sessions.values().filter_map(|live| latest_event(&live.session)).max() else {
            return;
        };
        let reference = latest.min(now);
        self.sessions.retain(|_, live| kept(&live.session, reference));
        let sessions = &self.sessions;
        self.answered.retain(|_, (session, _)| sessions.contains_key(session));
    }
}

/// The latest thing that happened to `session`: its end, else its start.
fn latest_event(session: &Session) -> Option<DateTime<Utc>> {
    session.ended_at.or(session.started_at).map(|at| at.with_timezone(&Utc))
}

/// Whether a first screen can show `session` at `now` or later: it is
/// upcoming, or it ended within the [`prompt_horizon`].
fn kept(session: &Session, now: DateTime<Utc>) -> bool {
    match session.ended_at {
        Some(ended) => session.cancelled.is_none() && ended.with_timezone(&Utc) + prompt_horizon() >= now,
        None => is_upcoming(session, now),
    }
}
