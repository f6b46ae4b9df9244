//! Where each entry lives in the document: format v2's buckets, and v1's
//! root keys, which every reader still reads.
//!
//! Every rule above this module names an entry by its **logical key**,
//! `<prefix><id>` (`c:3f2a…`), whatever its place. Format v1 kept each
//! entry under that key at the root; Automerge 0.12 applies a change by
//! walking every operation of each map the change writes, so adding one
//! entry to a root of 50,000 cost milliseconds and grew with the history
//! (BENCHMARKS.md, "Record layout"). Format v2 writes each entry of the
//! kinds that grow with use into a **bucket**: a map at the root key
//! `<letter>/<hh>`, where `<hh>` is the first two hex digits of the entry's
//! id, under the id itself (`c/3f` → `3f2a…`). A one-entry change then
//! walks one bucket of a 256th of the kind's entries.
//!
//! - Two replicas that create the same bucket concurrently leave two maps
//!   at one root key; readers read every one of them ([`buckets`]), and a
//!   writer adds to the winning one.
//! - v1 entries stay where they were: a v1 record is read as it is, without
//!   copying anything, and an app not yet upgraded may keep writing v1
//!   entries, which every reader finds. Acknowledgements (`k:`) and the
//!   pack assignment stay at the root in both versions.

use automerge::{Automerge, ObjId, ObjType, Parent, Prop, ReadDoc, ValueRef, ROOT};

/// The kinds of entry written into buckets (every kind that grows with use).
pub(crate) const BUCKETED: [&str; 7] = ["s:", "j:", "v:", "e:", "c:", "r:", "n:"];

/// Hex digits of an id that name its bucket: 256 buckets per kind.
pub(crate) const BUCKET_DIGITS: usize = 2;

/// The length of an id written by this version: 32 lowercase hex digits.
pub(crate) const ID_LEN: usize = 32;

/// Whether `prefix` (`c:`) is a kind whose entries format v2 writes into buckets.
pub(crate) fn is_bucketed(prefix: &str) -> bool {
    BUCKETED.contains(&prefix)
}

/// Whether `id` is 32 lowercase hex digits, as v2 bucket entries' ids must be.
pub(crate) fn is_v2_id(id: &str) -> bool {
    id.len() == ID_LEN && is_lower_hex(id)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether an entry keyed `id` belongs in the bucket of `digits`.
pub(crate) fn in_bucket(id: &str, digits: &str) -> bool {
    is_v2_id(id) && id.starts_with(digits)
}

/// The bucket's root key for the entry `<prefix><id>`, when its kind is
/// bucketed and its id is a v2 id.
pub(crate) fn bucket_key(prefix: &str, id: &str) -> Option<String> {
    (is_bucketed(prefix) && is_v2_id(id)).then(|| format!("{}/{}", &prefix[..1], &id[..BUCKET_DIGITS]))
}

/// The root key of the bucket where format v2 writes the entry at logical
/// key `key` (`c:3f2a…` → `c/3f`): for writers using Automerge directly.
/// `None` for kinds that stay at the root (`k:`, `assigned_pack`) and for
/// ids that are not 32 lowercase hex digits.
pub fn bucket_of(key: &str) -> Option<String> {
    let (prefix, id) = key.split_at_checked(2)?;
    bucket_key(prefix, id)
}

/// The kind prefix (`c:`) and digits of a bucket's root key (`c/3f`).
pub(crate) fn parse_bucket_key(key: &str) -> Option<(&'static str, &str)> {
    let (letter, digits) = key.split_once('/')?;
    let prefix = BUCKETED.into_iter().find(|p| &p[..1] == letter)?;
    (digits.len() == BUCKET_DIGITS && is_lower_hex(digits)).then_some((prefix, digits))
}

/// The root-key range of one kind's buckets (`c/` up to `c0`, `0` being
/// the character after `/`).
fn bucket_range(prefix: &str) -> std::ops::Range<String> {
    format!("{}/", &prefix[..1])..format!("{}0", &prefix[..1])
}

/// Every bucket map of kind `prefix` with its digits, each conflicting map
/// of a key included (the winning one first), in key order.
pub(crate) fn buckets(doc: &Automerge, prefix: &str) -> Vec<(ObjId, String)> {
    let mut maps = Vec::new();
    for item in doc.map_range(ROOT, bucket_range(prefix)) {
        let Some((_, digits)) = parse_bucket_key(&item.key) else { continue };
        if item.conflict {
            maps.extend(bucket_maps(doc, &item.key).into_iter().map(|obj| (obj, digits.to_owned())));
        } else if matches!(item.value, ValueRef::Object(ObjType::Map)) {
            maps.push((item.id(), digits.to_owned()));
        }
    }
    maps
}

/// The maps at bucket key `key`: one, or several after concurrent creation.
pub(crate) fn bucket_maps(doc: &Automerge, key: &str) -> Vec<ObjId> {
    doc.get_all(ROOT, key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(value, obj)| matches!(value, automerge::Value::Object(ObjType::Map)).then_some(obj))
        .collect()
}

/// The value of the entry at logical key `key` and its object id, if the
/// record holds it.
pub(crate) fn find(doc: &Automerge, key: &str) -> Option<(automerge::Value<'static>, ObjId)> {
    find_all(doc, key).into_iter().next()
}

/// Every value of the entry at logical key `key` (several when concurrent
/// writes conflict), winning value first, from the first place holding it:
/// its bucket (each map of a conflicting bucket in turn), then v1's root key.
pub(crate) fn find_all(doc: &Automerge, key: &str) -> Vec<(automerge::Value<'static>, ObjId)> {
    let (prefix, id) = key.split_at_checked(2).unwrap_or((key, ""));
    let buckets = bucket_key(prefix, id).map(|bucket| bucket_maps(doc, &bucket)).unwrap_or_default();
    let places = buckets.into_iter().map(|map| (map, id)).chain(std::iter::once((ROOT, key)));
    for (obj, field) in places {
        let values = doc.get_all(&obj, field).unwrap_or_default();
        if !values.is_empty() {
            return values.into_iter().map(|(value, id)| (value.into_owned(), id)).collect();
        }
    }
    Vec::new()
}

/// What an object of the document is, by where it hangs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Located {
    /// The root map.
    Root,
    /// A bucket (a map at a bucket's root key): its root key.
    Bucket(String),
    /// An entry's own object (a session or journal map, or anything a
    /// non-conforming writer nested there): its logical key.
    Entry(String),
    /// Deeper than any entry, or under a key that names no entry.
    Elsewhere,
}

/// What the object `id` (`counter@actor`, as a change names it) of `doc` is,
/// and its type, if `doc` holds it.
pub(crate) fn locate(doc: &Automerge, id: &str) -> Option<(Located, ObjType)> {
    let (obj, obj_type) = super::chunks::contained(|| doc.import(id).map_err(|e| e.to_string())).ok()?;
    Some((classify(doc, &obj), obj_type))
}

/// What `obj` is, read from its parents in `doc`.
pub(crate) fn classify(doc: &Automerge, obj: &ObjId) -> Located {
    if *obj == ROOT {
        return Located::Root;
    }
    let Ok(parents) = doc.parents(obj) else { return Located::Elsewhere };
    let path: Vec<Parent> = parents.take(3).collect();
    match path.as_slice() {
        [Parent { prop: Prop::Map(key), .. }] => match parse_bucket_key(key) {
            Some(_) => Located::Bucket(key.clone()),
            None => Located::Entry(key.clone()),
        },
        [Parent { prop: Prop::Map(id), .. }, Parent { prop: Prop::Map(bucket), .. }] => {
            match parse_bucket_key(bucket) {
                Some((prefix, _)) => Located::Entry(format!("{prefix}{id}")),
                None => Located::Elsewhere,
            }
        }
        _ => Located::Elsewhere,
    }
}
