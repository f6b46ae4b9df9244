//! The care record: one client's whole history as an Automerge document.
//!
//! Everything a client does between visits (sessions, checklist answers and
//! readiness decisions, vitals, side effects, check-ins, journal entries) and
//! what the clinic adds (sessions, notes, a pack assignment, acknowledgements
//! of urgent items) lives in one [`CareRecord`]. Phone, tablet and clinic
//! each hold a replica, edit it offline and merge without conflicts.
//!
//! Callers use typed methods only. The document layout, for sync peers and
//! anyone reading the bytes with another Automerge implementation:
//!
//! - Every entry has a logical key, `<prefix>:<id>`, with a random 128-bit
//!   hex id, so replicas never collide on ids. Format v2 writes it into a
//!   bucket, the map at root key `<letter>/<first two hex digits>`, under
//!   its id, so applying a one-entry change walks one small map, not every
//!   entry; v1 kept it at the root key `<prefix>:<id>`, where readers still
//!   find it (`place.rs`).
//! - Entries that never change after they are written — vitals (`v:`), side
//!   effects (`e:`), check-ins (`c:`), clinician notes (`n:`), readiness
//!   decisions (`r:`) and acknowledgements (`k:<urgent key>`) — are a single
//!   JSON string. Few operations keep loading fast.
//! - Sessions (`s:`) and journal entries (`j:`) are maps whose fields change
//!   independently: the clinic can move a session while the phone records
//!   answers: each answer kept for good as `h:<answer id>` (`{"item",
//!   "value", "at"}`, never rewritten), the current one of each item in
//!   `a:<item id>` (`{"value", "at"}`), as format 1 stored it.
//! - Journal text is a string register, not an Automerge `Text` object (which
//!   loads an order of magnitude slower). Concurrent edits of one entry are
//!   all kept by Automerge as conflicting values; reads return the winner and
//!   the others as [`JournalEntry::conflicting_texts`], so no words are lost,
//!   and the next edit settles the entry.
//! - Nothing is ever removed by a merge: deletion and cancellation are
//!   recorded fields (`deleted`, `cancelled`).
//!
//! Where each rule lives: where entries are (`place.rs`) and how they are
//! read and written there (`layout.rs`); checklist answers, kept and
//! current (`answers.rs`); what each write checks
//! (`rules.rs`); who may write what, for changes from elsewhere
//! (`authority.rs`, value checks in `authority/values.rs`); what is urgent
//! (`urgency.rs`) and the score baselines it compares with, kept change by
//! change (`baselines.rs`); bytes from outside (`document.rs`, `chunks.rs`);
//! typed reads (`reads.rs`); entries that cannot be read (`unreadable.rs`);
//! the JSON Schema (`schema.rs`).

mod answers;
mod authority;
mod baselines;
mod chunks;
mod document;
mod layout;
mod model;
mod place;
mod reads;
mod rules;
mod schema;
mod unreadable;
mod urgency;

use std::collections::BTreeSet;
use std::collections::HashSet;
use std::ops::Range;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, Automerge, AutomergeError, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValueRef, ValueRef, ROOT,
};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::checklist::{evaluate_in, Answers, BloodPressureReading, Evaluation, ReadinessStatus};
use crate::instruments::score;
use crate::pack::Pack;
use crate::zone::Zone;
use answers::{ANSWER_ENTRY, CURRENT_ANSWER};
pub use authority::{
    check_changes, may_cancel, may_move, Rule, Violation, Writer, MAX_NEW_ENTRIES_PER_CHECK, MAX_OPS_PER_CHECK,
    MAX_UNKNOWN_FIELD_BYTES, MAX_VALUE_BYTES,
};
pub use chunks::{split_chunks, Chunk, ChunkKind, MAX_INFLATED_BYTES};
pub use layout::new_id;
pub(crate) use layout::sort_journal;
use layout::*;
pub(crate) use layout::{read_session, Fields};
pub use model::*;
pub use place::bucket_of;
pub(crate) use reads::{checklist_inputs_of, due_prompts_among, is_upcoming};
pub use reads::{score_baseline_among, ScoreBaseline};
pub use schema::{json_schema, view_json_schema, RECORD_FORMAT_VERSION};
pub use unreadable::UnreadableEntry;
#[cfg(feature = "clinic")]
pub use urgency::received_entries;
pub use urgency::{deciding_decisions, touched_entries};

/// Longest journal entry or note accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// How long an unanswered integration prompt stays due.
pub const DUE_PROMPT_WINDOW: Duration = Duration::days(7);
/// A session stays "upcoming" this long after its scheduled start if it was never started.
pub const UPCOMING_GRACE: Duration = Duration::hours(6);

const SESSION: &str = "s:";
/// The prefix of a session's logical key (`s:<id>`), for readers of
/// [`touched_entries`].
pub const SESSION_PREFIX: &str = SESSION;
const JOURNAL: &str = "j:";
/// The prefix of a journal entry's logical key (`j:<id>`), for readers of
/// [`touched_entries`].
pub(crate) const JOURNAL_PREFIX: &str = JOURNAL;
const VITALS: &str = "v:";
const SIDE_EFFECT: &str = "e:";
const CHECK_IN: &str = "c:";
const NOTE: &str = "n:";
const READINESS: &str = "r:";
/// The prefix of a readiness decision's key (`r:<id>`), for readers of
/// [`touched_entries`].
pub const READINESS_PREFIX: &str = READINESS;
/// The prefix of a check-in's key (`c:<id>`), for readers of
/// [`touched_entries`].
pub const CHECK_IN_PREFIX: &str = CHECK_IN;
const ACK: &str = "k:";
const PACK: &str = "assigned_pack";

/// Why a record operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The named entry does not exist (or was deleted).
    #[error("no {kind} with id {id}")]
    NotFound {
        /// `session`, `journal entry`, `urgent item`, …
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// An argument was not acceptable.
    #[error("{field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: String,
        /// What was wrong, without repeating the value.
        reason: String,
    },
    /// The writer may not make this change (see [`may_move`], [`may_cancel`]).
    #[error("{field}: {reason}")]
    NotPermitted {
        /// Which field.
        field: String,
        /// Why, without repeating a value.
        reason: String,
    },
    /// Changes from another replica make a write their writer may not make
    /// (see [`check_changes`]); none of them was applied.
    #[error("a change was refused: {0}")]
    Refused(Violation),
    /// The bytes are not a readable Automerge document.
    #[error("the record could not be read: {reason}")]
    Malformed {
        /// What Automerge reported.
        reason: String,
    },
}

impl From<AutomergeError> for RecordError {
    fn from(e: AutomergeError) -> Self {
        RecordError::Malformed { reason: e.to_string() }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> RecordError {
    RecordError::InvalidInput { field: field.to_owned(), reason: reason.into() }
}

fn not_found(kind: &'static str, id: &str) -> RecordError {
    RecordError::NotFound { kind, id: id.to_owned() }
}

pub(crate) fn check_text(field: &str, text: &str) -> Result<(), RecordError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(field, format!("must be at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(())
}

/// Drops the `answers.<id>: ` prefix of a checklist error, which the record
/// error's field already carries.
fn strip_field(message: &str) -> String {
    message.split_once(": ").map(|(_, reason)| reason.to_owned()).unwrap_or_else(|| message.to_owned())
}

/// One client's care record.
#[derive(Debug, Clone)]
pub struct CareRecord {
    doc: Automerge,
    /// The score baselines, computed on first need and kept up to date
    /// change by change (`baselines.rs`).
    baselines: std::sync::OnceLock<baselines::Baselines>,
    /// At the clinic, when it received each check-in, by id, once the
    /// record is ordered by receipt (`baselines.rs`).
    #[cfg(feature = "clinic")]
    receipts: Option<std::collections::HashMap<String, baselines::Rank>>,
}

impl Default for CareRecord {
    fn default() -> Self {
        CareRecord::new(ActorId::random())
    }
}

impl CareRecord {
    fn with_document(doc: Automerge) -> Self {
        CareRecord {
            doc,
            baselines: std::sync::OnceLock::new(),
            #[cfg(feature = "clinic")]
            receipts: None,
        }
    }

    /// An empty record whose changes are attributed to `actor`.
    pub fn new(actor: ActorId) -> Self {
        CareRecord::with_document(Automerge::new().with_actor(actor))
    }
}

#[cfg(test)]
mod tests;
