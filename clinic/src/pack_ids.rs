//! Pack-bound ids: which ids in a client's record the clinic's packs do
//! not know, so that the dashboard and the FHIR export never show such an
//! entry as if it were valid.
//!
//! A device writes ids from the pack it holds: side-effect ids, checklist
//! item ids (its answers, and the items of a readiness decision) and, in a
//! decision, the pack's id and version. Every such entry is **accepted** at
//! sync and **marked** where it is shown, never refused:
//!
//! - A sync is all or nothing. Refusing one entry strands every other change
//!   of the device with it — an urgent reading among them — on every retry.
//! - An honest device can hold ids the server's pack in force lacks: a side
//!   effect or item dropped from the newest version, the built-in default
//!   pack of an app version newer than the server, a version the server lost
//!   in a database restore and can no longer accept again.
//! - What is urgent does not depend on these ids: a severe side effect, a
//!   blood pressure at the urgent limit and a blocked decision raise their
//!   alerts whatever they name.
//!
//! Side effects and checklist items are checked against the client's pack
//! in force (its assigned version, else the clinic's current pack, else the
//! built-in default): what the clinic sees its words from. A decision's
//! pack is checked against every version the clinic published, and the
//! built-in default pack (its id, at any version up to this server's), since
//! a device evaluates with one of them. A session started on `ready`
//! decisions of which one names any other pack raises the alert of a start
//! without a `ready` decision ([`starts_on_unpublished_packs`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use katcore::checklist::ReadinessStatus;
use katcore::pack::Pack;
use katcore::record::{deciding_decisions, CareRecord, RecordView, UrgentKind, SESSION_PREFIX};

use crate::storage::{ClinicStorage, NewAlert, StorageError};

/// How the dashboard and the FHIR export mark an id the pack does not know.
pub(crate) const NOT_IN_PACK: &str = "not in the clinic's pack";
/// How they mark a decision made with a pack the clinic never published.
pub(crate) const PACK_NOT_PUBLISHED: &str = "made with a pack this clinic never published";

/// The packs, by id and version, that `view`'s readiness decisions name and
/// neither the clinic published for `client_id` nor the built-in default is.
///
/// # Errors
/// [`StorageError`] on failure.
pub(crate) fn unpublished_decision_packs(
    storage: &dyn ClinicStorage,
    client_id: &str,
    view: &RecordView,
) -> Result<BTreeSet<(String, u32)>, StorageError> {
    let named: BTreeSet<(&str, u32)> = view
        .sessions
        .iter()
        .flat_map(|s| &s.readiness)
        .map(|decision| (decision.pack_id.as_str(), decision.pack_version))
        .collect();
    let mut unpublished = BTreeSet::new();
    for (pack_id, version) in named {
        if !published(storage, client_id, pack_id, version)? {
            unpublished.insert((pack_id.to_owned(), version));
        }
    }
    Ok(unpublished)
}

/// Whether a device may have evaluated with pack `pack_id` at `version`:
/// the clinic published it for `client_id`, or it is the built-in default.
///
/// # Errors
/// [`StorageError`] on failure.
pub(crate) fn published(
    storage: &dyn ClinicStorage,
    client_id: &str,
    pack_id: &str,
    version: u32,
) -> Result<bool, StorageError> {
    let built_in = Pack::default_pack();
    if pack_id == built_in.id && version <= built_in.version {
        return Ok(true);
    }
    // The client's clinic's pack of that version, when it was published (the
    // storage answers the current pack otherwise: hence the comparison).
    let stored = storage.client_pack(client_id, Some(version))?;
    Ok(stored.is_some_and(|p| p.pack_id == pack_id && p.version == version))
}

/// The sessions among `touched` (logical keys) that were started on `ready`
/// decisions of which one names a pack the device could not have held
/// ([`published`]), as alerts to raise at `now`: the same alert as a start
/// without a `ready` decision (`s:<id>/started`, `started_not_ready`), since
/// nothing vouches for that `ready`. The record's own rule
/// (`katcore::record`'s urgency) counts such a decision as `ready`: it
/// cannot know which packs the clinic published.
///
/// # Errors
/// [`StorageError`] on failure.
pub(crate) fn starts_on_unpublished_packs(
    storage: &dyn ClinicStorage,
    client_id: &str,
    record: &CareRecord,
    touched: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<Vec<NewAlert>, StorageError> {
    let mut alerts = Vec::new();
    for key in touched.range(SESSION_PREFIX.to_owned()..).take_while(|key| key.starts_with(SESSION_PREFIX)) {
        let id = &key[SESSION_PREFIX.len()..];
        let Some(started) = record.session(id).and_then(|s| s.started_at).map(|t| t.to_utc()) else { continue };
        let readiness = record.readiness_history(id);
        let deciding: Vec<_> = deciding_decisions(&readiness, id, started).collect();
        // None, or not all `ready`: the record's own rule raises the alert already.
        if deciding.is_empty() || !deciding.iter().all(|d| d.status == ReadinessStatus::Ready) {
            continue;
        }
        let mut vouched = true;
        for decision in deciding {
            vouched &= published(storage, client_id, &decision.pack_id, decision.pack_version)?;
        }
        if !vouched {
            let at = crate::clock::credible(started, now);
            alerts.push(NewAlert { key: format!("{key}/started"), kind: UrgentKind::StartedNotReady, at });
        }
    }
    Ok(alerts)
}

/// Whether `pack` has the checklist item or screening question `id`.
pub(crate) fn knows_item(pack: &Pack, id: &str) -> bool {
    pack.checklist.iter().any(|item| item.id == id) || pack.screening.iter().any(|q| q.id == id)
}
