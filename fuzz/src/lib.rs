//! What the fuzz targets do with their input, and the seeds they start from.
//!
//! Shared by the `cargo fuzz` targets in `fuzz_targets/` (this crate's
//! library) and by the ordinary test `core/tests/fuzz_corpus.rs`, which
//! includes this file as a module and replays every committed seed and
//! regression input through the same functions, so the stable-toolchain test
//! suite catches a regression that fuzzing once found.
//!
//! Each target takes arbitrary bytes and must return (never panic); it
//! answers whether the input was accepted, which the seed test uses to check
//! that the seeds reach past the parsers:
//!
//! - [`pack_verify`]: `verify_pack` against a fixed trusted key and
//!   `Pack::from_json`; a pack that parses is evaluated, planned for and
//!   signed, and a signed pack must verify back to itself.
//! - [`sync_body`]: `SyncRequest::decode` / `SyncResponse::decode` (which
//!   must re-encode to the same bytes); a decodable request's changes are
//!   merged into a small record as the server does, then read back.
//! - [`record_load`]: `CareRecord::load` of the bytes and
//!   `CareRecord::load_parts` of the bytes read as length-prefixed parts
//!   (see [`frame_parts`]); a record that loads is read through every typed
//!   read and must survive save and reload.
//!
//! Automerge 0.12 panics on some malformed chunks; `katcore` contains those
//! panics (a typed `Malformed` error), and [`contain_known_panics`] keeps
//! libFuzzer from aborting on them before they reach that containment.
//!
//! Seeds are deterministic (fixed key, fixed instants, fixed ids where the
//! API allows) apart from the random ids the record API assigns.

use std::sync::OnceLock;

use automerge::{ActorId, ChangeHash, ReadDoc};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use ed25519_dalek::SigningKey;
use katcore::checklist::{evaluate, Answers, BloodPressureReading};
use katcore::pack::{sign_pack, verify_pack, InstrumentKind, Pack, TrustedKeys};
use katcore::record::{check_changes, CareRecord, CheckInInput, JournalLinks, Party, Severity, Writer};
use katcore::sync::wire::{SyncRequest, SyncResponse};

/// Source files whose panics `katcore` contains: Automerge 0.12 panics on
/// some malformed chunks (see `parse_untrusted` in `core/src/record.rs`), and
/// `CareRecord` turns those panics into `RecordError::Malformed`.
const CONTAINED_PANIC_SOURCES: [&str; 2] = ["/hexane-", "/automerge-"];

/// Lets a panic raised in [`CONTAINED_PANIC_SOURCES`] unwind instead of
/// aborting at once. libFuzzer's Rust glue installs a panic hook that aborts
/// on every panic, even one the code under test catches; with this filter
/// such a panic reaches `katcore`'s `catch_unwind` and the target goes on,
/// while a panic that escapes `katcore` still ends in libFuzzer's own
/// `catch_unwind`, which aborts: an uncontained panic is still a crash.
/// Installed once, by the first input of any target.
fn contain_known_panics() {
    static FILTER: std::sync::Once = std::sync::Once::new();
    FILTER.call_once(|| {
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let contained = info
                .location()
                .is_some_and(|at| CONTAINED_PANIC_SOURCES.iter().any(|source| at.file().contains(source)));
            if !contained {
                next(info);
            }
        }));
    });
}

/// The names of the fuzz targets, as `cargo fuzz list` shows them and as the
/// folders under `fuzz/seeds/` and `fuzz/regressions/` are named.
pub const TARGETS: [&str; 3] = ["pack_verify", "sync_body", "record_load"];

/// Runs the target called `name` on `data`; `None` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> Option<bool> {
    match name {
        "pack_verify" => Some(pack_verify(data)),
        "sync_body" => Some(sync_body(data)),
        "record_load" => Some(record_load(data)),
        _ => None,
    }
}

/// The clinic key the devices of these targets trust (a fixed seed).
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn trusted() -> &'static TrustedKeys {
    static TRUSTED: OnceLock<TrustedKeys> = OnceLock::new();
    TRUSTED.get_or_init(|| TrustedKeys::new([signing_key().verifying_key()]))
}

fn instant(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap_or_default()
}

fn now() -> DateTime<Utc> {
    instant("2026-05-02T18:00:00Z").with_timezone(&Utc)
}

fn actor() -> ActorId {
    ActorId::from(&[0xfa; 16][..])
}

/// Answers to the default pack's checklist, as the examples give them.
fn sample_answers() -> serde_json::Value {
    serde_json::json!({
        "last_solid_food": "2026-05-01T12:40:00-04:00",
        "last_liquid": "2026-05-01T13:45:00-04:00",
        "last_benzodiazepine": "none",
        "last_stimulant": "none",
        "last_alcohol": "2026-04-29T21:00:00-04:00",
        "blood_pressure": {"systolic": 126, "diastolic": 81},
        "monitor_present": true,
        "safe_setting": true,
        "no_driving_plan": true,
        "antihypertensive_taken": "not_prescribed",
        "intention_set": "Stay curious",
        "screen_ketamine_allergy": false,
        "screen_pregnancy": false,
    })
}

/// Everything a device does with a pack it accepted: evaluate a checklist
/// in every locale (and an unknown one), plan aftercare across a
/// daylight-saving change, and read the crisis texts.
fn use_pack(pack: &Pack) {
    let start = instant("2026-03-08T01:30:00-05:00");
    let answers = Answers::from_json(pack, &sample_answers()).unwrap_or_default();
    let zones = ["America/New_York", "Pacific/Chatham", "UTC"];
    for (i, locale) in pack.locales.iter().map(String::as_str).chain(["xx-YY", ""]).enumerate() {
        let evaluation = evaluate(pack, start, &answers, locale);
        let _ = serde_json::to_string(&evaluation);
        let _ = evaluate(pack, start, &Answers::new(), locale);
        if let Ok(tz) = katcore::aftercare::parse_time_zone(zones[i % zones.len()]) {
            let plan = katcore::aftercare::plan(pack, start.with_timezone(&Utc), &tz, locale);
            let _ = serde_json::to_string(&plan);
        }
    }
}

/// `verify_pack` with the fixed trusted key, and `Pack::from_json`.
/// True when either accepted the bytes.
pub fn pack_verify(data: &[u8]) -> bool {
    contain_known_panics();
    let verified = verify_pack(data, trusted());
    if let Ok(pack) = &verified {
        use_pack(pack);
    }
    let parsed = Pack::from_json(data);
    if let Ok(pack) = &parsed {
        use_pack(pack);
        // A valid pack signs, and the signature verifies back to the same pack.
        let signed = sign_pack(pack, &signing_key()).expect("a pack that parses is valid, so it signs");
        let bytes = serde_json::to_vec(&signed).expect("a signed pack serialises");
        assert_eq!(&verify_pack(&bytes, trusted()).expect("a pack just signed verifies"), pack);
    }
    verified.is_ok() || parsed.is_ok()
}

/// The record a device or the server holds before the fuzzed body arrives.
fn base_record() -> &'static CareRecord {
    static BASE: OnceLock<CareRecord> = OnceLock::new();
    BASE.get_or_init(|| sample_record(actor()))
}

/// Decodes the bytes as both sync bodies; merges a request's changes into
/// a copy of a small record the way the server does (`replica.rs`). True
/// when a body decoded.
pub fn sync_body(data: &[u8]) -> bool {
    contain_known_panics();
    let response = SyncResponse::decode(data);
    if let Ok(response) = &response {
        assert_eq!(response.encode(), data, "a decoded response re-encodes to its bytes");
        // What a device does with an answer: check what the server relays, then apply it.
        let mut record = base_record().clone();
        let merged = record.new_changes(&response.changes).is_ok_and(|changes| {
            check_changes(record.document(), &changes, Writer::Relayed).is_ok() && record.apply_changes(changes).is_ok()
        });
        if merged && record.heads() != base_record().heads() {
            read_everything(&record);
        }
    }
    let Ok(request) = SyncRequest::decode(data) else { return response.is_ok() };
    assert_eq!(request.encode(), data, "a decoded request re-encodes to its bytes");
    let mut record = base_record().clone();
    let has_all = |record: &CareRecord, hashes: &[ChangeHash]| {
        hashes.iter().all(|hash| record.document().get_change_meta_by_hash(hash).is_some())
    };
    if !has_all(&record, &request.since) {
        return true;
    }
    // What the server does: only changes a device may write are applied.
    let Ok(changes) = record.new_changes(&request.changes) else { return true };
    if check_changes(record.document(), &changes, Writer::Device).is_err() || record.apply_changes(changes).is_err() {
        return true;
    }
    if record.heads() != base_record().heads() {
        // Something new arrived (the base record's reads are no news).
        read_everything(&record);
    }
    let waiting = !record.document().get_missing_deps(&[]).is_empty();
    if !waiting && has_all(&record, &request.heads) {
        let changes = if request.heads.is_empty() { record.save() } else { record.save_after(&request.heads) };
        let answer = SyncResponse { heads: record.heads(), changes }.encode();
        // The answer is what a device then applies.
        let answer = SyncResponse::decode(&answer).expect("an encoded response decodes");
        let mut device = CareRecord::new(actor());
        if request.heads.is_empty() {
            device.merge_bytes(&answer.changes).expect("the server's whole document loads");
            assert_eq!(device.heads(), record.heads());
        }
    }
    true
}

/// Splits `data` into length-prefixed parts: each part is a big-endian
/// `u16` length and that many bytes (a short last part takes what is left).
/// The first part is the snapshot (`None` when empty), the rest the change
/// blobs, as `CareRecord::load_parts` takes them.
pub fn frame_parts(data: &[u8]) -> (Option<&[u8]>, Vec<&[u8]>) {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some((length, tail)) = rest.split_first_chunk::<2>() {
        let length = usize::from(u16::from_be_bytes(*length)).min(tail.len());
        let (part, tail) = tail.split_at(length);
        parts.push(part);
        rest = tail;
    }
    let mut parts = parts.into_iter();
    let snapshot = parts.next().filter(|s| !s.is_empty());
    (snapshot, parts.collect())
}

/// The inverse of [`frame_parts`] (parts longer than `u16::MAX` are cut).
pub fn join_parts(snapshot: Option<&[u8]>, changes: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in std::iter::once(snapshot.unwrap_or_default()).chain(changes.iter().copied()) {
        let part = &part[..part.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Every typed read of a record, as the apps and the clinic make them.
fn read_everything(record: &CareRecord) {
    let json = record.to_json();
    let _ = serde_json::to_string(&json);
    let pack = Pack::default_pack();
    for session in record.sessions() {
        let _ = record.session(&session.id);
        let _ = record.session_answers(&session.id);
        let _ = record.evaluate_session(&pack, &session.id, "en");
        let _ = record.readiness_history(&session.id);
    }
    for entry in record.journal() {
        let _ = record.journal_entry(&entry.id);
    }
    let _ = record.upcoming_sessions(now());
    let _ = record.open_urgent_items();
    let _ = record.due_integration_prompts(&pack, now(), "es", &[]);
    let _ = (record.vitals(), record.side_effects(), record.check_ins(), record.clinician_notes());
    let _ = record.assigned_pack();
}

/// A loaded record is read through, saved and reloaded to the same heads.
fn check_loaded(record: &CareRecord) {
    read_everything(record);
    let reloaded = CareRecord::load(&record.save(), actor()).expect("a saved record reloads");
    assert_eq!(reloaded.heads(), record.heads());
}

/// `CareRecord::load` of the bytes and `CareRecord::load_parts` of their
/// [`frame_parts`]. True when either loaded.
pub fn record_load(data: &[u8]) -> bool {
    contain_known_panics();
    let loaded = CareRecord::load(data, actor());
    if let Ok(record) = &loaded {
        check_loaded(record);
    }
    let (snapshot, changes) = frame_parts(data);
    let parts = CareRecord::load_parts(snapshot, changes, actor());
    if let Ok(record) = &parts {
        check_loaded(record);
    }
    loaded.is_ok() || parts.is_ok()
}

/// A small record with one of everything: a session with answers, a
/// readiness decision, started and ended; vitals (one urgent), a side
/// effect, check-ins (one crisis), journal entries (one edited, one
/// deleted), a clinician note, a pack assignment and an acknowledgement.
pub fn sample_record(actor: ActorId) -> CareRecord {
    let pack = Pack::default_pack();
    let mut record = CareRecord::new(actor);
    let at = now();
    let start = instant("2026-05-01T15:00:00-04:00");
    let session =
        record.schedule_session(start, "America/New_York", Party::Clinic).expect("the sample session is valid");
    if let Some(answers) = sample_answers().as_object() {
        for (item, value) in answers {
            let _ = record.record_answer(&pack, &session, item, value, at - Duration::days(2));
        }
    }
    // Through the gate: recorded either way, started only when ready.
    let _ = record.try_start_session(&pack, &session, "en", start);
    let _ = record.end_session(&session, start + Duration::hours(2));
    let _ = record.add_vitals(&pack, BloodPressureReading { systolic: 124, diastolic: 80 }, at, Some(&session));
    let _ = record.add_vitals(&pack, BloodPressureReading { systolic: 190, diastolic: 125 }, at, None);
    let _ = record.report_side_effect(&pack, "nausea_vomiting", Severity::Severe, at, Some(&session));
    let _ = record.add_check_in(CheckInInput::Mood(6), at);
    let crisis = CheckInInput::Instrument(InstrumentKind::Phq9, vec![0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let _ = record.add_check_in(crisis, at);
    let links = JournalLinks { prompt_id: None, session_id: Some(session.clone()) };
    if let Ok(id) = record.write_journal_entry("Felt calm; colours were vivid.", &links, at) {
        let _ = record.edit_journal_entry(&id, "Felt calm. Colours were vivid — écrit", at);
    }
    if let Ok(id) = record.write_journal_entry("To delete", &JournalLinks::default(), at) {
        let _ = record.delete_journal_entry(&id, Party::Client, at);
    }
    let _ = record.add_clinician_note("Dr. Rivera", "Follow up next week.", at);
    let _ = record.assign_pack("katcore-default", 2, at);
    if let Some(item) = record.urgent_items().first() {
        let key = item.key.clone();
        let _ = record.acknowledge(&key, "Dr. Rivera", at);
    }
    record
}

/// One seed input.
#[derive(Debug)]
pub struct Seed {
    /// The target it is for.
    pub target: &'static str,
    /// Its file name under `fuzz/seeds/<target>/`.
    pub name: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The seed corpus: a valid signed default pack, the bare default pack,
/// valid sync bodies (whole-document, incremental and empty requests, a
/// response), and a saved small record (whole, and as snapshot + changes).
pub fn seeds() -> Vec<Seed> {
    let pack = Pack::default_pack();
    let signed = sign_pack(&pack, &signing_key()).expect("the default pack signs");
    let signed = serde_json::to_vec(&signed).expect("a signed pack serialises");

    // A device with a few edits, and a server that has seen the first ones.
    let mut device = CareRecord::new(ActorId::from(&[0xd1; 16][..]));
    let _ = device.add_check_in(CheckInInput::Mood(4), now());
    let server_heads = device.heads();
    let _ = device.add_vitals(&pack, BloodPressureReading { systolic: 181, diastolic: 100 }, now(), None);
    let _ = device.write_journal_entry("Slept well.", &JournalLinks::default(), now());
    let whole = SyncRequest { since: Vec::new(), heads: device.heads(), changes: device.save() };
    let incremental =
        SyncRequest { since: server_heads.clone(), heads: device.heads(), changes: device.save_after(&server_heads) };
    let empty = SyncRequest { since: Vec::new(), heads: Vec::new(), changes: Vec::new() };
    let base = base_record();
    let response = SyncResponse { heads: base.heads(), changes: base.save() };

    let record = sample_record(ActorId::from(&[0xc1; 16][..]));
    let halfway = {
        let mut first = CareRecord::new(ActorId::from(&[0xc2; 16][..]));
        let _ = first.add_check_in(CheckInInput::Mood(3), now());
        first
    };
    let mut later = halfway.clone();
    let _ = later.add_clinician_note("Dr. Rivera", "Call on Monday.", now());
    let note = later.save_after(&halfway.heads());
    let _ = later.add_check_in(CheckInInput::Mood(8), now());
    let mood = later.save_after(&halfway.heads());
    let framed = join_parts(Some(&halfway.save()), &[&note, &mood]);
    let changes_only = join_parts(None, &[&later.save()]);

    vec![
        Seed { target: "pack_verify", name: "signed-default-pack.json", bytes: signed },
        Seed { target: "pack_verify", name: "bare-default-pack.json", bytes: Pack::default_pack_json().into() },
        Seed { target: "sync_body", name: "request-whole.bin", bytes: whole.encode() },
        Seed { target: "sync_body", name: "request-incremental.bin", bytes: incremental.encode() },
        Seed { target: "sync_body", name: "request-empty.bin", bytes: empty.encode() },
        Seed { target: "sync_body", name: "response-whole.bin", bytes: response.encode() },
        Seed { target: "record_load", name: "saved-record.automerge", bytes: record.save() },
        Seed { target: "record_load", name: "snapshot-and-changes.parts", bytes: framed },
        Seed { target: "record_load", name: "changes-only.parts", bytes: changes_only },
    ]
}
