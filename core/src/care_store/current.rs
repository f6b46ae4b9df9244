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
//! the changes on disk. Beside it, a small value names the last change it
//! reflects ([`SEQ_KEY`]), rewritten with every change; the state itself is
//! rewritten only when a change moved it. A copy left behind by a version of
//! the app that did not keep it is recognised as stale and never shown.
//!
//! [`touched_entries`]: crate::record::touched_entries
//! [`Store::append_change_with_meta`]: crate::store::Store::append_change_with_meta

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

use crate::checklist::{evaluate_in, Evaluation};
use crate::pack::{Pack, MAX_INTEGRATION_DAY};
use crate::record::{
    checklist_inputs_of, due_prompts_among, is_upcoming, read_session, CareRecord, DuePrompt, Fields, JournalEntry,
    Session, DUE_PROMPT_WINDOW, JOURNAL_PREFIX, SESSION_PREFIX,
};
use crate::store::{Store, StoreError};

/// The meta key the current state is sealed under.
pub(crate) const META_KEY: &str = "current_state";

/// The meta key of the seq of the last change the current state reflects
/// (in decimal), written in every change's transaction.
pub(crate) const SEQ_KEY: &str = "current_seq";

/// The layout of the stored value; another one is not read (the device
/// rebuilds it when it next opens the whole record).
const FORMAT: u64 = 1;

/// How long after its end a session is kept: its last integration prompt
/// falls at most [`MAX_INTEGRATION_DAY`] days (plus the rest of that day)
/// after the session and stays due for [`DUE_PROMPT_WINDOW`].
pub(crate) fn prompt_horizon() -> Duration {
    Duration::days(i64::from(MAX_INTEGRATION_DAY) + 2) + DUE_PROMPT_WINDOW
}

/// What a first screen is made from (module documentation). Kept in
/// vectors, not maps: they hold a handful of items, and every generic
/// collection weighs in the mobile library.
#[derive(Debug, Default)]
pub(crate) struct Current {
    /// The sessions a first screen can show.
    sessions: Vec<Live>,
    /// Journal entries answering a prompt of one of those sessions.
    answered: Vec<Answered>,
}

/// One session kept: its fields as the record holds them (its answer
/// entries left out), from which the session and its checklist are read
/// as the opened record reads them.
#[derive(Debug)]
struct Live {
    session: Session,
    fields: Fields,
}

/// A journal entry, shared or private, that answers an integration prompt.
#[derive(Debug)]
struct Answered {
    entry: String,
    session: String,
    prompt: String,
}

/// What a first screen shows, worked out from a [`Current`] at an instant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shown {
    /// The first of `upcoming_sessions`: the soonest scheduled still ahead.
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
        now: DateTime<Utc>,
    ) -> Current {
        let mut current = Current::default();
        for session in record.sessions() {
            current.put_session(record, &session.id);
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

    /// Follows a change that touched the entries `keys` (logical keys);
    /// returns whether the state moved. (Changed in place: when the change
    /// is not stored after all, the care store reloads the state from disk.)
    pub(crate) fn apply_change(&mut self, record: &CareRecord, keys: &BTreeSet<String>, now: DateTime<Utc>) -> bool {
        let mut moved = false;
        // Sessions first: a journal entry is kept only for a session kept.
        for id in keys.iter().filter_map(|key| key.strip_prefix(SESSION_PREFIX)) {
            moved |= self.put_session(record, id);
        }
        for id in keys.iter().filter_map(|key| key.strip_prefix(JOURNAL_PREFIX)) {
            moved |= self.note_entry(id, record.journal_entry(id).as_ref());
        }
        self.prune(now) || moved
    }

    /// Follows the journal entry `id` (shared or private) as it now is
    /// (`None`: gone); returns whether the state moved. Noting its earlier
    /// self undoes this.
    pub(crate) fn note_entry(&mut self, id: &str, entry: Option<&JournalEntry>) -> bool {
        let fresh = entry.and_then(JournalEntry::prompt_link).and_then(|(session, prompt)| {
            let kept = self.sessions.iter().any(|live| live.session.id == session);
            kept.then(|| Answered { entry: id.to_owned(), session, prompt })
        });
        let at = self.answered.iter().position(|a| a.entry == id);
        replace(&mut self.answered, at, fresh, |old, new| old.session == new.session && old.prompt == new.prompt)
    }

    /// The stored form: JSON, `{"format": 1, "sessions": [[id, fields], …],
    /// "answered": [[entry, session, prompt], …]}`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Values built directly, in loops: `json!` and iterator chains
        // instantiate generic code that weighs in the mobile library.
        let mut sessions = Vec::with_capacity(self.sessions.len());
        for live in &self.sessions {
            sessions.push(Value::Array(vec![Value::String(live.session.id.clone()), live.fields.to_json()]));
        }
        let mut answered = Vec::with_capacity(self.answered.len());
        for a in &self.answered {
            answered.push(Value::Array(vec![
                Value::String(a.entry.clone()),
                Value::String(a.session.clone()),
                Value::String(a.prompt.clone()),
            ]));
        }
        let mut object = Map::new();
        object.insert("format".to_owned(), Value::from(FORMAT));
        object.insert("sessions".to_owned(), Value::Array(sessions));
        object.insert("answered".to_owned(), Value::Array(answered));
        Value::Object(object).to_string().into_bytes()
    }

    /// The stored value of [`SEQ_KEY`] for the change `seq`.
    pub(crate) fn encode_seq(seq: i64) -> Vec<u8> {
        // `format!`, not `to_string`: smaller in the mobile library (sync.rs says why).
        format!("{seq}").into_bytes()
    }

    /// The state `store` holds, if it reflects the change `seq` (the last
    /// one on disk) and is in this version's layout.
    ///
    /// # Errors
    /// A stored value that does not authenticate (`Corrupt`), or SQLite's error.
    pub(crate) fn stored(store: &Store, seq: i64) -> Result<Option<Current>, StoreError> {
        if store.get_meta(SEQ_KEY)? != Some(Current::encode_seq(seq)) {
            return Ok(None);
        }
        Ok(store.get_meta(META_KEY)?.and_then(|bytes| Current::decode(&bytes)))
    }

    /// The state stored as `bytes`, if it is in this version's layout.
    fn decode(bytes: &[u8]) -> Option<Current> {
        let json: Value = serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
        if json.get("format")?.as_u64()? != FORMAT {
            return None;
        }
        let mut current = Current::default();
        for pair in json.get("sessions")?.as_array()? {
            let fields = Fields::from_json(pair.get(1)?)?;
            let session = read_session(pair.get(0)?.as_str()?, &fields)?;
            current.sessions.push(Live { session, fields });
        }
        for triple in json.get("answered")?.as_array()? {
            let text = |i: usize| triple.get(i).and_then(Value::as_str).map(str::to_owned);
            current.answered.push(Answered { entry: text(0)?, session: text(1)?, prompt: text(2)? });
        }
        Some(current)
    }

    /// The first screen at `now` under `pack`, in `locale`.
    pub(crate) fn shown(&self, pack: &Pack, locale: &str, now: DateTime<Utc>) -> Shown {
        let next =
            self.sessions.iter().filter(|live| is_upcoming(&live.session, now)).min_by(|a, b| {
                (a.session.scheduled_start, &a.session.id).cmp(&(b.session.scheduled_start, &b.session.id))
            });
        let checklist = next.map(|live| {
            let (start, zone, answers) = checklist_inputs_of(pack, &live.session, &live.fields);
            evaluate_in(pack, start, zone.as_ref(), &answers, locale)
        });
        let mut answered = HashSet::with_capacity(self.answered.len());
        for a in &self.answered {
            answered.insert((a.session.clone(), a.prompt.clone()));
        }
        let mut sessions = Vec::with_capacity(self.sessions.len());
        for live in &self.sessions {
            sessions.push(live.session.clone());
        }
        Shown {
            next_session: next.map(|live| live.session.clone()),
            checklist,
            due_prompts: due_prompts_among(pack, now, locale, &sessions, &answered),
        }
    }

    /// Reads the session `id` again from the record (kept unless it is gone
    /// or cancelled); returns whether the state moved.
    fn put_session(&mut self, record: &CareRecord, id: &str) -> bool {
        let fresh = record.session_state(id).and_then(|fields| {
            let session = read_session(id, &fields).filter(|session| session.cancelled.is_none())?;
            Some(Live { session, fields })
        });
        let at = self.sessions.iter().position(|live| live.session.id == id);
        // The session is read from its fields: equal fields, equal session.
        replace(&mut self.sessions, at, fresh, |old, new| old.fields == new.fields)
    }

    /// Drops what time has made irrelevant: sessions no first screen can
    /// show at `now` or later, and the answers to their prompts; returns
    /// whether anything was dropped. `now` is the clock at the write, but
    /// never later than the latest start or end the record holds (nothing
    /// is dropped before one): a record written with instants of its own (a
    /// test's, or a phone whose clock was wrong) keeps what they need, and
    /// what is dropped is what a session that has already begun made
    /// irrelevant.
    fn prune(&mut self, now: DateTime<Utc>) -> bool {
        let Some(latest) = self.sessions.iter().filter_map(|live| latest_event(&live.session)).max() else {
            return false;
        };
        let reference = latest.min(now);
        let before = (self.sessions.len(), self.answered.len());
        self.sessions.retain(|live| kept(&live.session, reference));
        let sessions = &self.sessions;
        self.answered.retain(|a| sessions.iter().any(|live| live.session.id == a.session));
        before != (self.sessions.len(), self.answered.len())
    }
}

/// Puts `fresh` where the item at `at` was (`None` for either: adds it, or
/// removes that item); returns whether anything changed. `same` tells an
/// item that `fresh` leaves as it was. Order does not matter in these lists.
fn replace<T>(items: &mut Vec<T>, at: Option<usize>, fresh: Option<T>, same: impl Fn(&T, &T) -> bool) -> bool {
    match (at, fresh) {
        (Some(i), Some(fresh)) if same(&items[i], &fresh) => false,
        (Some(i), Some(fresh)) => {
            items[i] = fresh;
            true
        }
        (Some(i), None) => {
            items.swap_remove(i);
            true
        }
        (None, Some(fresh)) => {
            items.push(fresh);
            true
        }
        (None, None) => false,
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
