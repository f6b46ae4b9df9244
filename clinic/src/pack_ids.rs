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
//! a device evaluates with one of them.

use std::collections::BTreeSet;

use katcore::pack::Pack;
use katcore::record::RecordView;

use crate::storage::{ClinicStorage, StorageError};

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
    let built_in = Pack::default_pack();
    let mut unpublished = BTreeSet::new();
    for (pack_id, version) in named {
        if pack_id == built_in.id && version <= built_in.version {
            continue;
        }
        // The client's clinic's pack of that version, when it was published
        // (the storage answers the current pack otherwise: compared below).
        let published = storage.client_pack(client_id, Some(version))?;
        if !published.is_some_and(|p| p.pack_id == pack_id && p.version == version) {
            unpublished.insert((pack_id.to_owned(), version));
        }
    }
    Ok(unpublished)
}

/// Whether `pack` has the checklist item or screening question `id`.
pub(crate) fn knows_item(pack: &Pack, id: &str) -> bool {
    pack.checklist.iter().any(|item| item.id == id) || pack.screening.iter().any(|q| q.id == id)
}
