//! The client's score baselines, kept up to date change by change.
//!
//! A questionnaire's baseline is the client's first check-in with it
//! ([`score_baseline_among`]), wherever it sits in the history, so deriving
//! whether a new PHQ-9 rose over it would read every check-in of the record.
//! The clinic does that derivation on every sync that brings a check-in, and
//! a device whenever it asks whether its pending changes are urgent: on a
//! record of years, reading every check-in each time made one sync cost
//! O(history) (BENCHMARKS.md, "Sync latency on a large record").
//!
//! Check-ins are never changed or removed once written, so the baseline can
//! only move earlier: after a change it is the earlier of the old baseline
//! and the check-ins the change wrote. [`Baselines`] is computed once per
//! loaded record (on first need) and then folded forward with each change's
//! check-ins, a cost that follows the change. Whenever that reasoning might
//! not hold — a change rewrote the baseline's own key (a conflicting value
//! can change which one wins), changes were merged as bytes or waited for
//! missing dependencies, or a batch is large (over 64 changes) — the memo is dropped and the
//! next read scans again, so it is never stale.
//!
//! **At the clinic** (feature `clinic`), a writer's time does not decide
//! the baseline: a check-in backdated by a phone must not become the
//! baseline and hide a later rise. There the baseline is the check-in the
//! clinic *received* first, then the earliest by its own time among those
//! received together ([`CareRecord::order_baselines_by_receipt`],
//! docs/record-format.md, "The clinic's own time"). A check-in received
//! later never displaces it, whatever time it carries.

use std::collections::BTreeSet;

use automerge::Change;

use super::{touched_entries, CareRecord, CheckIn, CheckInKind, ScoreBaseline, CHECK_IN};
use crate::instruments::score;
use crate::pack::InstrumentKind;

/// Past this many changes in one batch, the memo is dropped instead of
/// decoding every change for its check-ins: a large batch (a restore, a
/// first upload) is rare, and the next read rescans once.
const MAX_FOLDED_CHANGES: usize = 64;

/// The baseline of each questionnaire at some state of the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Baselines {
    phq9: Option<ScoreBaseline>,
    gad7: Option<ScoreBaseline>,
}

impl Baselines {
    /// The baselines among `check_ins` (every check-in of the record).
    /// (ordered as `record` orders them: [`CareRecord::receipt_rank`]).
    pub(super) fn among(record: &CareRecord, check_ins: &[CheckIn]) -> Baselines {
        #[cfg(test)]
        SCANS.with(|scans| scans.set(scans.get() + 1));
        let rank = |id: &str| record.receipt_rank(id);
        Baselines {
            phq9: baseline_by(check_ins, InstrumentKind::Phq9, rank),
            gad7: baseline_by(check_ins, InstrumentKind::Gad7, rank),
        }
    }

    /// The baseline of `instrument`, if the client ever completed it.
    pub(super) fn of(&self, instrument: InstrumentKind) -> Option<&ScoreBaseline> {
        match instrument {
            InstrumentKind::Phq9 => self.phq9.as_ref(),
            InstrumentKind::Gad7 => self.gad7.as_ref(),
        }
    }

    /// Folds in the check-ins now stored at `keys` (logical keys a change
    /// wrote). Returns `false` when the memo must be recomputed instead: a
    /// key is a current baseline's own, whose value may have changed.
    fn fold(&mut self, record: &CareRecord, keys: &BTreeSet<String>) -> bool {
        let baseline_keys = [&self.phq9, &self.gad7].into_iter().flatten().map(|b| format!("{CHECK_IN}{}", b.id));
        if baseline_keys.into_iter().any(|key| keys.contains(&key)) {
            return false;
        }
        let written: Vec<CheckIn> = record.entries_among(CHECK_IN, keys);
        if written.is_empty() {
            return true;
        }
        for (slot, instrument) in [(&mut self.phq9, InstrumentKind::Phq9), (&mut self.gad7, InstrumentKind::Gad7)] {
            let candidate = baseline_by(&written, instrument, |id| record.receipt_rank(id));
            let earlier = match (&candidate, &*slot) {
                (Some(new), Some(old)) => {
                    (record.receipt_rank(&new.id), new.completed_at, &new.id)
                        < (record.receipt_rank(&old.id), old.completed_at, &old.id)
                }
                (Some(_), None) => true,
                (None, _) => false,
            };
            if earlier {
                *slot = candidate;
            }
        }
        true
    }
}

/// [`super::score_baseline_among`] with each check-in first ordered by `rank` of
/// its id (`baselines.rs`: when the clinic received it), then by its time.
pub(super) fn baseline_by(
    check_ins: &[CheckIn],
    instrument: InstrumentKind,
    rank: impl Fn(&str) -> Rank,
) -> Option<ScoreBaseline> {
    check_ins
        .iter()
        .filter_map(|c| match &c.kind {
            CheckInKind::Instrument { instrument: kind, answers, .. } if *kind == instrument => {
                Some((rank(&c.id), c, score(instrument, answers).ok()?.total))
            }
            _ => None,
        })
        .min_by(|(ra, a, _), (rb, b, _)| (ra, a.completed_at, &a.id).cmp(&(rb, b.completed_at, &b.id)))
        .map(|(_, c, total)| ScoreBaseline { id: c.id.clone(), completed_at: c.completed_at, total })
}

#[cfg(test)]
thread_local! {
    /// How many times this thread computed baselines from every check-in.
    pub(super) static SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A copy of `changes` to fold into the memo once applied, or `None` when
/// there are too many to decode for it.
pub(super) fn foldable(changes: &[Change]) -> Option<Vec<Change>> {
    (changes.len() <= MAX_FOLDED_CHANGES).then(|| changes.to_vec())
}

impl CareRecord {
    /// The score baselines of the record as it is now: the memo, or one
    /// scan of the check-ins that becomes the memo.
    pub(super) fn baselines(&self) -> &Baselines {
        self.baselines.get_or_init(|| Baselines::among(self, &self.entries(CHECK_IN).collect::<Vec<_>>()))
    }

    /// Keeps the memo as [`Baselines::among`] the check-ins of a full scan
    /// the caller already made, so later reads need not scan again.
    pub(super) fn remember_baselines(&self, check_ins: &[CheckIn]) {
        if self.baselines.get().is_none() {
            let _ = self.baselines.set(Baselines::among(self, check_ins));
        }
    }

    /// After `changes` were applied to the document: folds the check-ins
    /// they wrote into the memo, or drops it (`None`: changes whose effect
    /// is not known one by one, such as merged bytes, or too many).
    pub(super) fn baselines_after(&mut self, changes: Option<&[Change]>) {
        let Some(mut memo) = self.baselines.take() else { return };
        let keys = changes.map(|changes| {
            let mut keys = touched_entries(&self.doc, changes);
            keys.retain(|key| key.starts_with(CHECK_IN));
            keys
        });
        if keys.is_some_and(|keys| memo.fold(self, &keys)) {
            let _ = self.baselines.set(memo);
        }
    }
}

/// Where a check-in stands in the order baselines are chosen in, before
/// its own time: on a device every check-in stands equal.
#[cfg(not(feature = "clinic"))]
pub(super) type Rank = ();

/// Where a check-in stands in the order baselines are chosen in, before
/// its own time: when the clinic received it ([`CareRecord::order_baselines_by_receipt`]).
#[cfg(feature = "clinic")]
pub(super) type Rank = chrono::DateTime<chrono::Utc>;

impl CareRecord {
    /// Where check-in `id` stands before its own time: nowhere on a device.
    #[cfg(not(feature = "clinic"))]
    pub(super) fn receipt_rank(&self, _id: &str) -> Rank {}

    /// When the clinic received check-in `id`: its receipt time, or the
    /// start of time for one stored before receipts were kept; a check-in
    /// not yet noted ([`CareRecord::note_received`]) is being received now,
    /// after every noted one. Without receipts (a record not opened with
    /// [`CareRecord::order_baselines_by_receipt`]), every check-in stands
    /// equal, as on a device.
    #[cfg(feature = "clinic")]
    pub(super) fn receipt_rank(&self, id: &str) -> Rank {
        match &self.receipts {
            None => chrono::DateTime::<chrono::Utc>::MIN_UTC,
            Some(received) => received.get(id).copied().unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        }
    }

    /// Orders this record's score baselines as the clinic received its
    /// check-ins (the module documentation): `received` maps check-in ids
    /// to when the clinic first received each. A check-in the record holds
    /// now that `received` does not name was stored before receipts were
    /// kept, and counts as received first (by its own time among those).
    /// Check-ins applied later count as received after every other until
    /// [`CareRecord::note_received`] records their time.
    #[cfg(feature = "clinic")]
    pub fn order_baselines_by_receipt(&mut self, mut received: std::collections::HashMap<String, Rank>) {
        let check_ins: Vec<CheckIn> = self.entries(CHECK_IN).collect();
        for check_in in &check_ins {
            received.entry(check_in.id.clone()).or_insert(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        }
        self.receipts = Some(received);
        self.baselines.take();
        self.remember_baselines(&check_ins);
    }

    /// About how many bytes of memory the receipt times held for ordering
    /// take (a cache that bounds its memory counts them: a record of many
    /// check-ins holds one per check-in).
    #[cfg(feature = "clinic")]
    pub fn receipts_memory(&self) -> usize {
        // Per check-in: the map's slot (a String and a time), the id's 32
        // bytes on the heap, and the table's control byte, rounded up.
        const PER_RECEIPT: usize = std::mem::size_of::<String>() + std::mem::size_of::<Rank>() + 32 + 16;
        self.receipts.as_ref().map_or(0, |received| received.capacity() * PER_RECEIPT)
    }

    /// Records that the clinic received the check-ins `ids` at `at` (those
    /// it had not received before), once the change that brought them is
    /// stored. No-op on a record not ordered by receipt.
    #[cfg(feature = "clinic")]
    pub fn note_received<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>, at: Rank) {
        if let Some(received) = &mut self.receipts {
            for id in ids {
                received.entry(id.to_owned()).or_insert(at);
            }
        }
    }
}

#[cfg(test)]
mod tests;
