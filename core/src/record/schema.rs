//! The JSON Schema of the care record's entries (`docs/record.schema.json`),
//! generated from the types readers decode them into.
//!
//! The schema describes the record as the JSON an Automerge document
//! exports: the root is a map of buckets (format v2, `<letter>/<hh>`, each a
//! map of entries by id) and of v1 entries at their own keys; sessions and
//! journal entries are maps of strings; every other entry is one string
//! holding JSON text, whose schema is its `contentSchema`.
//! `docs/record-format.md` is the prose.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{
    Acknowledgement, CheckIn, ClinicianNote, Deletion, PackAssignment, ReadinessRecord, SideEffectReport, Vitals,
    MAX_TEXT_CHARS,
};

/// The record format version this code reads and writes.
pub const RECORD_FORMAT_VERSION: u32 = 2;

/// Fields of a session map this version knows (besides current answers
/// `a:<item id>` and answer entries `h:<id>`: `answers.rs`).
pub(crate) const SESSION_FIELDS: [&str; 6] = ["start", "tz", "by", "cancelled", "started_at", "ended_at"];
/// Fields of a journal map this version knows.
pub(crate) const JOURNAL_FIELDS: [&str; 6] = ["created_at", "edited_at", "text", "prompt_id", "session_id", "deleted"];

/// The JSON Schema of the record format, generated from the entry types.
pub fn json_schema() -> Value {
    let mut generator = SchemaGenerator::default();
    let entry = |name: &str, schema: schemars::Schema| -> (String, Value) {
        let mut schema = schema.to_value();
        // The id is the logical key's suffix, not part of the stored JSON.
        if let Some(object) = schema.as_object_mut() {
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                properties.remove("id");
            }
            if let Some(Value::Array(required)) = object.get_mut("required") {
                required.retain(|field| field != "id");
            }
        }
        (name.to_owned(), schema)
    };
    let mut defs: Map<String, Value> = [
        entry("Vitals", Vitals::json_schema(&mut generator)),
        entry("SideEffectReport", SideEffectReport::json_schema(&mut generator)),
        entry("CheckIn", CheckIn::json_schema(&mut generator)),
        entry("ReadinessRecord", ReadinessRecord::json_schema(&mut generator)),
        entry("ClinicianNote", ClinicianNote::json_schema(&mut generator)),
        entry("Acknowledgement", Acknowledgement::json_schema(&mut generator)),
        entry("PackAssignment", PackAssignment::json_schema(&mut generator)),
        entry("Deletion", Deletion::json_schema(&mut generator)),
    ]
    .into_iter()
    .collect();
    for (name, schema) in generator.take_definitions(true) {
        defs.insert(name, schema);
    }
    let json_text = |def: &str| json!({"type": "string", "contentMediaType": "application/json", "contentSchema": {"$ref": format!("#/$defs/{def}")}});
    let instant = json!({"type": "string", "format": "date-time"});
    defs.insert(
        "StoredAnswer".into(),
        json!({
            "description": "One checklist answer: the value as the pack's item reads it, and when it was given. \
                            Of concurrent values the latest `at` wins.",
            "type": "object",
            "properties": {
                "value": {"description": "The answer; `null` clears it."},
                "at": instant,
                "item": {"description": "Written by format 2 (the same text as its answer entry); ignored here.", "type": "string"},
            },
            "required": ["value", "at"],
        }),
    );
    defs.insert(
        "AnswerEntry".into(),
        json!({
            "description": "One checklist answer kept for good (format 2): written once with its session's `a:<item>` field, never changed. \
                            An item's current answer is its latest by `at`.",
            "type": "object",
            "properties": {
                "item": {"description": "The checklist item it answers.", "type": "string", "minLength": 1, "maxLength": 200},
                "value": {"description": "The answer; `null` clears it."},
                "at": instant,
            },
            "required": ["item", "value", "at"],
        }),
    );
    defs.insert(
        "Session".into(),
        json!({
            "description": "A dosing session: an Automerge map of scalar strings.",
            "type": "object",
            "properties": {
                "start": {"description": "Scheduled start, RFC 3339 with the offset it was given in.", "type": "string", "format": "date-time"},
                "tz": {"description": "The client's IANA time zone for this session.", "type": "string"},
                "by": {"description": "Who scheduled it; written once, with the map.", "enum": ["client", "clinic"]},
                "cancelled": json_text("Deletion"),
                "started_at": instant,
                "ended_at": instant,
            },
            "patternProperties": {"^a:.+$": json_text("StoredAnswer"), "^h:[0-9a-f]{32}$": json_text("AnswerEntry")},
            "required": ["start", "tz", "by"],
            "additionalProperties": {"type": "string", "maxLength": super::MAX_UNKNOWN_FIELD_BYTES},
        }),
    );
    defs.insert(
        "JournalEntry".into(),
        json!({
            "description": "A shared journal entry: an Automerge map of scalar strings. Private entries never enter the record.",
            "type": "object",
            "properties": {
                "created_at": instant,
                "edited_at": instant,
                "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
                "prompt_id": {"type": "string", "maxLength": 200},
                "session_id": {"type": "string", "maxLength": 200},
                "deleted": json_text("Deletion"),
            },
            "required": ["created_at", "text"],
            "additionalProperties": {"type": "string", "maxLength": super::MAX_UNKNOWN_FIELD_BYTES},
        }),
    );
    let id = "[0-9a-f]{32}";
    let kinds = [
        ("s", json!({"$ref": "#/$defs/Session"})),
        ("j", json!({"$ref": "#/$defs/JournalEntry"})),
        ("v", json_text("Vitals")),
        ("e", json_text("SideEffectReport")),
        ("c", json_text("CheckIn")),
        ("r", json_text("ReadinessRecord")),
        ("n", json_text("ClinicianNote")),
    ];
    let mut keys = Map::new();
    for (letter, entry) in &kinds {
        // Format v2: a bucket of the entries whose id starts with its two digits.
        keys.insert(
            format!("^{letter}/[0-9a-f]{{2}}$"),
            json!({
                "description": "A bucket (format v2): the entries of this kind whose id starts with the key's two hex digits, by id.",
                "type": "object",
                "patternProperties": {format!("^{id}$"): entry},
                "additionalProperties": false,
            }),
        );
        // Format v1, still read and accepted: the entry at its own root key.
        keys.insert(format!("^{letter}:{id}$"), entry.clone());
    }
    keys.insert("^k:.+$".into(), json_text("Acknowledgement"));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("katcore care record, format version {RECORD_FORMAT_VERSION}"),
        "description": "The root map of a care record's Automerge document. See docs/record-format.md.",
        "type": "object",
        "properties": {"assigned_pack": json_text("PackAssignment")},
        "patternProperties": keys,
        "additionalProperties": false,
        "$defs": defs,
    })
}

/// The JSON Schema of the clinician's record view ([`super::RecordView`]),
/// with its definitions under `#/components/schemas/` for an OpenAPI document.
pub fn view_json_schema() -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "#/components/schemas/".into();
    let mut root = settings.into_generator().root_schema_for::<super::RecordView>();
    // The generator nests the definitions inside the root; an OpenAPI
    // document keeps them beside it, under `components/schemas`.
    root.remove("$schema");
    let definitions = root.remove("components").and_then(|mut c| c.get_mut("schemas").map(Value::take));
    json!({"root": root.to_value(), "definitions": definitions.unwrap_or_else(|| json!({}))})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published schema is generated with the `clinic` feature (the
    /// acknowledgement's clinic-only fields documented): compared in the
    /// workspace's test run, where the clinic turns the feature on.
    #[cfg(feature = "clinic")]
    #[test]
    fn the_published_schema_is_current() {
        let published: Value = serde_json::from_str(include_str!("../../../docs/record.schema.json"))
            .expect("docs/record.schema.json is JSON");
        assert_eq!(
            json_schema(),
            published,
            "docs/record.schema.json is stale: run `cargo run -p katctl -- record schema > docs/record.schema.json`"
        );
    }

    #[test]
    fn the_schema_lists_the_fields_the_checks_know() {
        let schema = json_schema();
        for (def, fields) in [("Session", &SESSION_FIELDS), ("JournalEntry", &JOURNAL_FIELDS)] {
            let mut listed: Vec<&str> =
                schema["$defs"][def]["properties"].as_object().unwrap().keys().map(String::as_str).collect();
            let mut known = fields.to_vec();
            listed.sort_unstable();
            known.sort_unstable();
            assert_eq!(listed, known, "{def}");
        }
        // Every entry the typed API writes has its schema's required fields, and no id.
        for def in ["Vitals", "SideEffectReport", "CheckIn", "ReadinessRecord", "ClinicianNote", "Acknowledgement"] {
            let entry = &schema["$defs"][def];
            assert!(entry.is_object(), "{def}");
            assert!(entry["properties"].get("id").is_none(), "{def}");
        }
    }
}
