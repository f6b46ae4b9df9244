//! Urgent items, derived from the values in the record.
//!
//! What is urgent is decided by the reader, from the values and the pack it
//! trusts, never by the writer's `urgent` flag alone: the flag may add an
//! urgent item, never suppress one. The clinic server derives them with the
//! client's assigned pack and raises an alert for each new one.
//!
//! - a blood pressure (a vitals entry, or any checklist answer ever given
//!   to a blood-pressure item) at or above the pack's urgent limit;
//! - a side effect reported as severe, or one the pack says always to report;
//! - a PHQ-9 whose item 9 is above 0 (re-scored from the stored answers);
//! - otherwise, a PHQ-9 or GAD-7 whose re-scored total meets the pack's
//!   `score_alerts`: at or above its severe threshold, or risen by its
//!   margin over the client's baseline (their first check-in with the
//!   questionnaire) — see [`crate::instruments::score_flag`];
//! - a readiness decision that was `blocked` (or whose item states say so),
//!   or flagged urgent by its writer;
//! - a session started (`started_at`) without a `ready` decision: the
//!   latest decisions of its session at or before the start are not all
//!   `ready`, or there are none. Every front end of ours starts through the
//!   gate, so this is a tampered or non-conforming writer, and the clinic
//!   must know a session ran unchecked.
//!
//! A checklist answer is urgent on its own only when no readiness decision
//! of its session, evaluated at or after the answer, already raised it: an
//! honest device records that decision when the client tries to start, and
//! one alert per reading is enough. An answer a clinician already
//! acknowledged stays listed (with its acknowledgement) when a later
//! decision covers it, or once the client answered again: an acknowledged
//! item never drops out of the list.

use std::collections::BTreeSet;

use automerge::legacy::{Key, ObjectId};
use automerge::{Automerge, Change, ReadDoc, ROOT};
use chrono::{DateTime, Utc};

use super::authority::op_id_string;
use super::place::{self, Located};
use super::{AnswerRecord, CareRecord, ACK, CHECK_IN, READINESS, SESSION, SIDE_EFFECT, VITALS};
use crate::checklist::{overall_status, BloodPressureReading, ReadinessStatus};
use crate::instruments::{score, score_flag, ScoreFlag};
use crate::pack::{Pack, Rule};
use crate::record::{
    Acknowledgement, CheckIn, CheckInKind, ReadinessRecord, Severity, SideEffectReport, UrgentItem, UrgentKind, Vitals,
};

impl CareRecord {
    /// Every urgent item under the built-in default pack, acknowledged or not, newest first.
    pub fn urgent_items(&self) -> Vec<UrgentItem> {
        self.urgent_items_with(&Pack::default_pack())
    }

    /// Urgent items under the default pack that no clinician has acknowledged yet, newest first.
    pub fn open_urgent_items(&self) -> Vec<UrgentItem> {
        self.urgent_items().into_iter().filter(|i| i.acknowledged.is_none()).collect()
    }

    /// Every urgent item under `pack`'s thresholds, acknowledged or not,
    /// newest first (see the module documentation for the rules).
    pub fn urgent_items_with(&self, pack: &Pack) -> Vec<UrgentItem> {
        self.urgent_items_scoped(pack, None)
    }

    /// The urgent items of the entries at `keys` (logical keys, e.g. from
    /// [`touched_entries`]) under `pack`, by the same rules as
    /// [`CareRecord::urgent_items_with`] without reading the other entries
    /// (but for the readiness decisions of a touched session, which decide
    /// whether its answers are already covered). The clinic raises alerts
    /// from these after each change, so its work follows the change, not
    /// the record's size.
    pub fn urgent_items_among(&self, pack: &Pack, keys: &BTreeSet<String>) -> Vec<UrgentItem> {
        self.urgent_items_scoped(pack, Some(keys))
    }

    fn urgent_items_scoped(&self, pack: &Pack, only: Option<&BTreeSet<String>>) -> Vec<UrgentItem> {
        fn scoped<T: serde::de::DeserializeOwned>(
            record: &CareRecord,
            prefix: &str,
            only: Option<&BTreeSet<String>>,
        ) -> Vec<T> {
            match only {
                None => record.entries(prefix).collect(),
                Some(keys) => record.entries_among(prefix, keys),
            }
        }
        let limit = pack.thresholds.bp_urgent;
        let urgent_bp = |systolic: u64, diastolic: u64| {
            systolic >= u64::from(limit.systolic) || diastolic >= u64::from(limit.diastolic)
        };
        let mut items = Vec::new();
        let mut push = |key: String, kind, at, session_id: Option<&String>| {
            let acknowledged =
                self.get_string(&super::ROOT, &format!("{ACK}{key}")).and_then(|s| serde_json::from_str(&s).ok());
            items.push(UrgentItem { key, kind, at, session_id: session_id.cloned(), acknowledged });
        };

        let readiness: Vec<ReadinessRecord> = scoped(self, READINESS, only);
        for r in &readiness {
            let key = format!("{READINESS}{}", r.id);
            let blocked = r.status == ReadinessStatus::Blocked
                || overall_status(r.items.iter().map(|(_, state)| *state)) == ReadinessStatus::Blocked;
            if r.urgent {
                push(key, UrgentKind::UrgentBloodPressure, r.evaluated_at, Some(&r.session_id));
            } else if blocked {
                push(key, UrgentKind::ChecklistBlocked, r.evaluated_at, Some(&r.session_id));
            }
        }
        for v in scoped::<Vitals>(self, VITALS, only) {
            let BloodPressureReading { systolic, diastolic } = v.reading;
            if v.urgent || urgent_bp(systolic.into(), diastolic.into()) {
                let key = format!("{VITALS}{}", v.id);
                push(key, UrgentKind::UrgentBloodPressure, v.taken_at, v.session_id.as_ref());
            }
        }
        for e in scoped::<SideEffectReport>(self, SIDE_EFFECT, only) {
            let always = pack.side_effects.iter().any(|s| s.id == e.effect_id && s.always_report);
            if e.urgent || e.severity == Severity::Severe || always {
                push(format!("{SIDE_EFFECT}{}", e.id), UrgentKind::SideEffect, e.reported_at, e.session_id.as_ref());
            }
        }
        let check_ins: Vec<CheckIn> = scoped(self, CHECK_IN, only);
        // A rise is measured from the client's first check-in with the
        // questionnaire, wherever it is in the record: the memo kept change
        // by change (`baselines.rs`), seeded here when every check-in was read.
        if only.is_none() {
            self.remember_baselines(&check_ins);
        }
        let baselines = if check_ins.is_empty() { None } else { Some(self.baselines()) };
        for c in &check_ins {
            let kind = match &c.kind {
                CheckInKind::Instrument { instrument, answers, .. } => match score(*instrument, answers) {
                    Ok(s) if s.urgent => Some(UrgentKind::CrisisCheckIn),
                    Ok(s) => {
                        let baseline = baselines
                            .and_then(|baselines| baselines.of(*instrument))
                            .filter(|baseline| baseline.id != c.id)
                            .map(|baseline| baseline.total);
                        score_flag(pack.thresholds.score_alerts.of(*instrument), s.total, baseline).map(|flag| {
                            match flag {
                                ScoreFlag::Severe => UrgentKind::SevereScore,
                                ScoreFlag::Worsened => UrgentKind::ScoreWorsened,
                            }
                        })
                    }
                    Err(_) => None,
                },
                CheckInKind::Mood { .. } => None,
            };
            // The writer's flag can add an item, never lower one.
            let kind = if c.urgent { Some(UrgentKind::CrisisCheckIn) } else { kind };
            if let Some(kind) = kind {
                push(format!("{CHECK_IN}{}", c.id), kind, c.completed_at, None);
            }
        }
        let bp_items: Vec<&str> = pack
            .checklist
            .iter()
            .filter(|item| matches!(item.rule, Rule::BloodPressure))
            .map(|item| item.id.as_str())
            .collect();
        let sessions: Vec<(String, automerge::ObjId)> = match only {
            None => self.objects(SESSION),
            Some(keys) => keys
                .range(super::prefix_range(SESSION))
                .filter_map(|key| Some((key[SESSION.len()..].to_owned(), self.map_obj(key)?)))
                .collect(),
        };
        // Whether an answer is covered depends on every decision of its session.
        let all_readiness: Vec<ReadinessRecord> = match only {
            Some(_) if !sessions.is_empty() => self.entries(READINESS).collect(),
            _ => Vec::new(),
        };
        let readiness = if only.is_some() { &all_readiness } else { &readiness };
        for (session_id, obj) in sessions {
            let fields = self.fields(&obj);
            // One item per session, at the latest start without a `ready` decision.
            let unchecked = fields
                .all("started_at")
                .iter()
                .filter_map(|started| DateTime::parse_from_rfc3339(started).ok())
                .map(|started| started.with_timezone(&Utc))
                .filter(|started| !started_when_ready(readiness, &session_id, *started))
                .max();
            if let Some(started) = unchecked {
                push(
                    format!("{SESSION}{session_id}{STARTED_SUFFIX}"),
                    UrgentKind::StartedNotReady,
                    started,
                    Some(&session_id),
                );
            }
            let answers = super::answers::answer_log(&fields);
            let mut seen = BTreeSet::new();
            for item in &bp_items {
                for (at, systolic, diastolic) in blood_pressure_answers(&answers, item) {
                    let key = format!("{SESSION}{session_id}/a:{item}@{}", at.to_rfc3339());
                    let covered =
                        readiness.iter().any(|r| r.session_id == session_id && r.urgent && r.evaluated_at >= at);
                    let acknowledged = self.get_string(&super::ROOT, &format!("{ACK}{key}")).is_some();
                    // Answers given at one instant share a key: listed once.
                    if urgent_bp(systolic, diastolic) && (!covered || acknowledged) && seen.insert(key.clone()) {
                        push(key, UrgentKind::UrgentBloodPressure, at, Some(&session_id));
                    }
                }
            }
        }
        if only.is_none() {
            // An acknowledged answer stays listed even once the client
            // answered again (the reading it named is then no longer the
            // answer's value): an acknowledged item never drops out.
            let listed: BTreeSet<String> = items.iter().map(|item| item.key.clone()).collect();
            let acknowledged: Vec<(String, String)> = self
                .doc
                .map_range(ROOT, super::prefix_range(ACK))
                .map(|item| item.key[ACK.len()..].to_owned())
                .filter(|key| !listed.contains(key))
                .filter_map(|key| Some((key.clone(), self.get_string(&ROOT, &format!("{ACK}{key}"))?)))
                .collect();
            for (key, ack) in acknowledged {
                let acknowledged: Option<Acknowledgement> = serde_json::from_str(&ack).ok();
                if let Some(session) = key.strip_prefix(SESSION).and_then(|k| k.strip_suffix(STARTED_SUFFIX)) {
                    // A later `ready` decision or start no longer makes it urgent; it stays listed.
                    let Some(at) = acknowledged.as_ref().map(|a| a.at) else { continue };
                    let session_id = Some(session.to_owned());
                    items.push(UrgentItem { key, kind: UrgentKind::StartedNotReady, at, session_id, acknowledged });
                    continue;
                }
                let Some((session, rest)) = key.strip_prefix(SESSION).and_then(|k| k.split_once("/a:")) else {
                    continue;
                };
                let Some((item, at)) = rest.split_once('@') else { continue };
                let Ok(at) = DateTime::parse_from_rfc3339(at) else { continue };
                if !bp_items.contains(&item) {
                    continue;
                }
                items.push(UrgentItem {
                    key: key.clone(),
                    kind: UrgentKind::UrgentBloodPressure,
                    at: at.with_timezone(&Utc),
                    session_id: Some(session.to_owned()),
                    acknowledged,
                });
            }
        }
        items.sort_unstable_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
        items
    }
}

/// The urgent key of a session started without a `ready` decision is
/// `s:<session id>` followed by this.
const STARTED_SUFFIX: &str = "/started";

/// Whether the session's decision at `started` was `ready`: the decisions
/// that decided it ([`deciding_decisions`]) all say `ready` (a conforming
/// writer records that decision at the very instant it starts the session:
/// `CareRecord::try_start_session`).
fn started_when_ready(readiness: &[ReadinessRecord], session_id: &str, started: DateTime<Utc>) -> bool {
    let mut deciding = deciding_decisions(readiness, session_id, started).peekable();
    deciding.peek().is_some() && deciding.all(|r| r.status == ReadinessStatus::Ready)
}

/// The readiness decisions of `session_id` that decided its start at
/// `started`: of those evaluated at or before it, the latest (several when
/// recorded at one instant); none when no decision came before the start.
/// The `started_not_ready` rule reads them, and so does the clinic, which
/// also asks whether it published their pack.
pub fn deciding_decisions<'a>(
    readiness: &'a [ReadinessRecord],
    session_id: &'a str,
    started: DateTime<Utc>,
) -> impl Iterator<Item = &'a ReadinessRecord> + 'a {
    let of_session = move |r: &&ReadinessRecord| r.session_id == session_id && r.evaluated_at <= started;
    let latest = readiness.iter().filter(of_session).map(|r| r.evaluated_at).max();
    readiness.iter().filter(of_session).filter(move |r| Some(r.evaluated_at) == latest)
}

/// Every blood-pressure answer given to `item` (`answers.rs`: answers a
/// later one replaced, and concurrent ones, included), read leniently: any
/// object with numeric `systolic` and `diastolic`, whatever else it holds,
/// so that no reading escapes the urgency check by a detail of its form.
fn blood_pressure_answers(answers: &[AnswerRecord], item: &str) -> Vec<(DateTime<Utc>, u64, u64)> {
    answers
        .iter()
        .filter(|answer| answer.item_id == item)
        .filter_map(|answer| {
            let value = &answer.value;
            Some((answer.at?.with_timezone(&Utc), value.get("systolic")?.as_u64()?, value.get("diastolic")?.as_u64()?))
        })
        .collect()
}

/// The logical keys (`<prefix><id>`, `place.rs`) of the entries `changes`
/// write, read from their operations against `doc`, the record they were
/// applied to: a root or bucket write names its entry, a write into an
/// entry's map names that entry; creating a bucket names none. Changes that
/// do not decode, and objects `doc` does not hold, are skipped (the write
/// rules checked them before they were applied).
pub fn touched_entries(doc: &Automerge, changes: &[Change]) -> BTreeSet<String> {
    written_keys(doc, changes, |_, _, _| {})
}

/// [`touched_entries`], plus `<session key>/h:<answer id>` for each answer
/// entry written into a session (`answers.rs`): the keys the clinic records
/// its receipt times under, one per entry a clinician sees.
#[cfg(feature = "clinic")]
pub fn received_entries(doc: &Automerge, changes: &[Change]) -> BTreeSet<String> {
    written_keys(doc, changes, |keys, entry, field| {
        if field.starts_with(super::answers::ANSWER_ENTRY) {
            keys.insert(format!("{entry}/{field}"));
        }
    })
}

/// The keys of [`touched_entries`]; `within` is also told of each field
/// written into an entry's map (the keys so far, the entry's key, the field).
fn written_keys(
    doc: &Automerge,
    changes: &[Change],
    mut within: impl FnMut(&mut BTreeSet<String>, &str, &str),
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for change in changes {
        for op in change.decode().operations {
            let Key::Map(field) = &op.key else { continue };
            let home = match &op.obj {
                ObjectId::Root => Located::Root,
                ObjectId::Id(id) => match place::locate(doc, &op_id_string(id)) {
                    Some((located, _)) => located,
                    None => continue,
                },
            };
            match home {
                Located::Root if place::parse_bucket_key(field).is_none() => {
                    keys.insert(field.to_string());
                }
                Located::Bucket(bucket) => {
                    if let Some((prefix, _)) = place::parse_bucket_key(&bucket) {
                        keys.insert(format!("{prefix}{field}"));
                    }
                }
                Located::Entry(key) => {
                    within(&mut keys, &key, field);
                    keys.insert(key);
                }
                _ => {}
            }
        }
    }
    keys
}
