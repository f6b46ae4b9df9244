//! A client's record as a FHIR R4 (4.0.1) `Bundle`, for the clinic's EHR:
//! `GET /v1/clients/{client_id}/fhir` and `katctl clinic fhir`.
//!
//! The bundle is a `transaction` of `PUT`s with stable ids (each resource's
//! id comes from the record entry it maps), so sending a later export again
//! updates what the first one created instead of duplicating it. Entries
//! refer to each other by `urn:uuid:` full URLs, derived from the same ids.
//! The mapping, codes and what is left out, and why: docs/fhir.md.
//!
//! The JSON is written directly (`serde_json`): the mapping is a few dozen
//! fields of ten resource types, and CI checks every export against an
//! outside FHIR R4 validator (`tests/fhir/`), which a typed model crate
//! would not replace.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use katcore::checklist::{ItemState, ReadinessStatus};
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::{AnswerRecord, CheckIn, CheckInKind, Deletion, Party, RecordView, SessionView, Severity};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::auth::ClinicianAuth;
use crate::clinician::client_of_clinic;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::replica::Replica;
use crate::state::AppState;
use crate::storage::ClinicStorage;

/// The media type of the answer.
pub const FHIR_JSON: &str = "application/fhir+json";

/// LOINC.
const LOINC: &str = "http://loinc.org";
/// UCUM.
const UCUM: &str = "http://unitsofmeasure.org";
/// FHIR's observation categories.
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// HL7 v3 interpretation codes.
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
/// FHIR's adverse-event severities.
const AE_SEVERITY: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-severity";
/// katcore's own codes (the session, the readiness decision and its parts).
pub(crate) const KATCORE_CODES: &str = "urn:katcore:fhir:code";
/// A checklist or screening item of the client's pack, by its id.
pub(crate) const KATCORE_ITEMS: &str = "urn:katcore:fhir:checklist-item";
/// A side effect of the client's pack, by its id.
pub(crate) const KATCORE_SIDE_EFFECTS: &str = "urn:katcore:fhir:side-effect";
/// The identifier system of a client's id at the clinic.
pub(crate) const CLIENT_ID_SYSTEM: &str = "urn:katcore:client-id";
/// The identifier system of a client's label at the clinic.
pub(crate) const CLIENT_LABEL_SYSTEM: &str = "urn:katcore:client-label";
/// The core FHIR blood-pressure profile.
const BP_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/bp";

/// PHQ-9 items in order, LOINC (panel 44249-1).
const PHQ9_ITEMS: [&str; 9] =
    ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"];
/// GAD-7 items in order, LOINC (panel 69737-5).
const GAD7_ITEMS: [&str; 7] = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"];
/// The LOINC answers 0–3 of both questionnaires (answer list LL358-3).
const FREQUENCY_ANSWERS: [(&str, &str); 4] = [
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
];

/// What to put in an export besides the record's clinical entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FhirOptions {
    /// The client's shared journal entries (left out unless asked for).
    pub include_journal: bool,
}

/// Query of `GET /v1/clients/{client_id}/fhir`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FhirQuery {
    /// `journal` to include the client's shared journal entries.
    pub include: Option<String>,
}

/// `GET /v1/clients/{client_id}/fhir`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/clients/{client_id}/fhir", get(export))
}

/// A client's record as a FHIR R4 transaction bundle.
#[utoipa::path(
    get, path = "/v1/clients/{client_id}/fhir", tag = "clinician", security(("clinician_token" = [])),
    params(("client_id" = String, Path, description = "The client"), FhirQuery),
    responses(
        (status = 200, description = "A FHIR R4 `Bundle` (`transaction` of `PUT`s with stable ids; docs/fhir.md), \
                                      `application/fhir+json`", body = Object),
        (status = 400, description = "An unknown `include`", body = ErrorBody),
        (status = 404, description = "No such client in this clinic", body = ErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<AppState>,
    clinician: ClinicianAuth,
    ApiPath(client_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FhirQuery>,
) -> Result<Response, ApiError> {
    let options = match query.include.as_deref() {
        None | Some("") => FhirOptions::default(),
        Some("journal") => FhirOptions { include_journal: true },
        Some(_) => return Err(ApiError::bad_request("invalid_query", "include must be `journal`")),
    };
    let body = serde_json::to_vec(&client_bundle(&state, &clinician, &client_id, options).await?)
        .map_err(ApiError::internal)?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))], body).into_response())
}

/// The bundle of a client of the clinician's clinic (`404` for any other),
/// from the cached record: what the API route and the dashboard's download send.
pub(crate) async fn client_bundle(
    state: &AppState,
    clinician: &ClinicianAuth,
    client_id: &str,
    options: FhirOptions,
) -> Result<Value, ApiError> {
    let client = client_of_clinic(state, clinician, client_id).await?;
    state
        .with_replica(client_id, move |replica, storage| {
            let pack = replica.pack(storage)?;
            let view = replica.record().view(&pack);
            let unpublished = crate::pack_ids::unpublished_decision_packs(storage, &client.id, &view)?;
            Ok(bundle(&client.id, &client.label, &view, &pack, &unpublished, options, Utc::now()))
        })
        .await
}

/// `client_id`'s record, read straight from `storage`, as [`bundle`] makes
/// it: what `katctl clinic fhir` exports, with or without a running server.
///
/// # Errors
/// `404` for an unknown client, a storage failure, or a stored record that
/// does not load.
pub fn export_from_storage(
    storage: &dyn ClinicStorage,
    client_id: &str,
    options: FhirOptions,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let client = storage.client(client_id)?.ok_or_else(|| ApiError::not_found("client"))?;
    let mut replica = Replica::open(storage, client_id)?;
    let pack = replica.pack(storage)?;
    let view = replica.record().view(&pack);
    let unpublished = crate::pack_ids::unpublished_decision_packs(storage, &client.id, &view)?;
    Ok(bundle(&client.id, &client.label, &view, &pack, &unpublished, options, now))
}

/// An instant as FHIR writes it (UTC, seconds, `Z`).
fn instant(at: DateTime<impl TimeZone>) -> String {
    at.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A CodeableConcept of one coding.
fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

/// A quantity in mm[Hg].
fn mm_hg(value: u16) -> Value {
    json!({"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"})
}

/// The bundle under construction.
struct Bundle {
    entries: Vec<Value>,
}

impl Bundle {
    /// Adds `resource` (whose `resourceType` and `id` are set) as a `PUT`;
    /// returns a reference to it.
    fn put(&mut self, mut resource: Value) -> Value {
        let kind = resource["resourceType"].as_str().unwrap_or_default().to_owned();
        let id = fhir_id(resource["id"].as_str().unwrap_or_default());
        resource["id"] = json!(id);
        let full_url = full_url(&kind, &id);
        self.entries.push(json!({
            "fullUrl": full_url,
            "resource": resource,
            "request": {"method": "PUT", "url": format!("{kind}/{id}")},
        }));
        json!({"reference": full_url})
    }
}

/// `raw` (a record entry's id, plus a suffix for derived resources) if it is
/// a FHIR id (1–64 of `A-Z a-z 0-9 - .`), else `x` and 32 hex digits of
/// its SHA-256: any other writer's ids, however long or odd, become valid
/// ids, stable from one export to the next, that cannot reach into a
/// `request.url` path.
fn fhir_id(raw: &str) -> String {
    let valid =
        (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        raw.to_owned()
    } else {
        let digest = Sha256::digest(raw.as_bytes());
        format!("x{}", digest[..16].iter().map(|b| format!("{b:02x}")).collect::<String>())
    }
}

/// `urn:uuid:` of a resource: a name-based UUID (SHA-256 of type and id,
/// version and variant bits set as for version 5), so the same resource
/// always has the same full URL.
fn full_url(kind: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("katcore:{kind}/{id}").as_bytes());
    let mut bytes: [u8; 16] = digest[..16].try_into().unwrap_or([0; 16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The client's record as a FHIR R4 `transaction` bundle, at `now`. See the
/// module documentation and docs/fhir.md.
///
/// `view` is the client's record as `pack` reads it
/// ([`katcore::record::CareRecord::view`]); `unpublished` the packs its
/// readiness decisions name that the clinic never published (each such
/// decision carries a note saying so).
pub fn bundle(
    client_id: &str,
    label: &str,
    view: &RecordView,
    pack: &Pack,
    unpublished: &BTreeSet<(String, u32)>,
    options: FhirOptions,
    now: DateTime<Utc>,
) -> Value {
    let mut bundle = Bundle { entries: Vec::new() };
    let patient = bundle.put(json!({
        "resourceType": "Patient",
        "id": client_id,
        "identifier": [
            {"system": CLIENT_ID_SYSTEM, "value": client_id},
            {"system": CLIENT_LABEL_SYSTEM, "value": label},
        ],
        "active": true,
    }));
    let mut sessions = std::collections::HashMap::new();
    for session in &view.sessions {
        let procedure = bundle.put(procedure(session, &patient));
        sessions.insert(session.session.id.clone(), procedure.clone());
        for decision in &session.readiness {
            let mut resource = readiness(decision, pack, &patient, &procedure);
            // The readings it was made from, as exported below.
            let derived: Vec<Value> = decision
                .answers
                .iter()
                .filter_map(|id| session.answer_history.iter().find(|a| a.id.as_ref() == Some(id)))
                .filter_map(|answer| checklist_reading(session, answer))
                .map(|(id, ..)| json!({"reference": full_url("Observation", &fhir_id(&id))}))
                .collect();
            if !derived.is_empty() {
                resource["derivedFrom"] = json!(derived);
            }
            if unpublished.contains(&(decision.pack_id.clone(), decision.pack_version)) {
                add_note(&mut resource, &format!("Not verified: {}.", crate::pack_ids::PACK_NOT_PUBLISHED));
            }
            bundle.put(resource);
        }
        // Every reading of the pre-session checklist, at the time it was
        // given: one the client later replaced (an urgent one, often) too.
        for answer in &session.answer_history {
            let Some((id, systolic, diastolic, at)) = checklist_reading(session, answer) else { continue };
            let mut observation = blood_pressure(&id, systolic, diastolic, instant(at), pack, &patient);
            observation["partOf"] = json!([procedure]);
            observation["note"] = json!([{"text": "Measured for the pre-session checklist."}]);
            if !crate::pack_ids::knows_item(pack, &answer.item_id) {
                add_note(&mut observation, &format!("Answer to an item {}.", crate::pack_ids::NOT_IN_PACK));
            }
            bundle.put(observation);
        }
    }
    for vitals in &view.vitals {
        let mut observation = blood_pressure(
            &vitals.id,
            vitals.reading.systolic,
            vitals.reading.diastolic,
            instant(vitals.taken_at),
            pack,
            &patient,
        );
        if let Some(procedure) = vitals.session_id.as_ref().and_then(|id| sessions.get(id)) {
            observation["partOf"] = json!([procedure]);
        }
        bundle.put(observation);
    }
    for check_in in &view.check_ins {
        questionnaire(&mut bundle, check_in, pack, &patient);
    }
    for effect in &view.side_effects {
        let label = crate::wording::side_effect_label(pack, &effect.effect_id);
        let severity = match effect.severity {
            Severity::Mild => ("mild", "Mild"),
            Severity::Moderate => ("moderate", "Moderate"),
            Severity::Severe => ("severe", "Severe"),
        };
        let mut event = json!({
            "resourceType": "AdverseEvent",
            "id": effect.id,
            "actuality": "actual",
            "event": concept(KATCORE_SIDE_EFFECTS, &effect.effect_id, &label),
            "subject": patient,
            "date": instant(effect.reported_at),
            "severity": concept(AE_SEVERITY, severity.0, severity.1),
        });
        if let Some(procedure) = effect.session_id.as_ref().and_then(|id| sessions.get(id)) {
            event["suspectEntity"] = json!([{"instance": procedure}]);
        }
        bundle.put(event);
    }
    for note in &view.clinician_notes {
        let mut document = text_document(&note.id, concept(LOINC, "11506-3", "Progress note"), &patient, &note.text);
        document["date"] = json!(instant(note.written_at));
        document["author"] = json!([{"display": note.author}]);
        document["description"] = json!("Clinician note");
        bundle.put(document);
    }
    if options.include_journal {
        for entry in &view.journal {
            let kind = concept(KATCORE_CODES, "shared-journal-entry", "Journal entry the client shared");
            let mut document = text_document(&entry.id, kind, &patient, &entry.text);
            document["date"] = json!(instant(entry.edited_at.unwrap_or(entry.created_at)));
            document["author"] = json!([patient]);
            document["content"][0]["attachment"]["creation"] = json!(instant(entry.created_at));
            bundle.put(document);
        }
    }
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": instant(now),
        "entry": bundle.entries,
    })
}

/// A `DocumentReference` of `text` (a plain-text attachment) about the patient.
fn text_document(id: &str, kind: Value, patient: &Value, text: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "type": kind,
        "subject": patient,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "data": BASE64.encode(text.as_bytes()),
        }}],
    })
}

/// Appends a note to a resource's `note` list.
fn add_note(resource: &mut Value, text: &str) {
    match resource["note"].as_array_mut() {
        Some(notes) => notes.push(json!({"text": text})),
        None => resource["note"] = json!([{"text": text}]),
    }
}

/// A checklist answer that is a blood-pressure reading given at a known
/// time: its `Observation` id, systolic, diastolic and time.
///
/// A FHIR id has at most 64 characters and no `_`. An answer entry is named
/// by its id; an answer without one (format 1) by its session and a digest
/// of its item id, as format 1's export named it, and of its time too when
/// format 1 left several of one item.
fn checklist_reading(session: &SessionView, answer: &AnswerRecord) -> Option<(String, u16, u16, DateTime<Utc>)> {
    let number = |name: &str| answer.value.get(name).and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok());
    let (systolic, diastolic, at) = (number("systolic")?, number("diastolic")?, answer.at?.with_timezone(&Utc));
    let id = match &answer.id {
        Some(id) => format!("checklist-{id}"),
        None => {
            let format_one = |a: &&AnswerRecord| a.id.is_none() && a.item_id == answer.item_id;
            let several = session.answer_history.iter().filter(format_one).count() > 1;
            let named =
                if several { format!("{}@{}", answer.item_id, at.to_rfc3339()) } else { answer.item_id.clone() };
            let digest: String = Sha256::digest(named.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}-{digest}", session.session.id)
        }
    };
    Some((id, systolic, diastolic, at))
}

/// A dosing session as a `Procedure`.
fn procedure(view: &SessionView, patient: &Value) -> Value {
    let session = &view.session;
    let status = match (&session.cancelled, session.started_at, session.ended_at) {
        (_, Some(_), Some(_)) => "completed",
        (_, Some(_), None) => "in-progress",
        (Some(_), None, _) => "not-done",
        (None, None, _) => "preparation",
    };
    let mut procedure = json!({
        "resourceType": "Procedure",
        "id": session.id,
        "status": status,
        "code": concept(KATCORE_CODES, "kat-dosing-session", "At-home ketamine-assisted therapy dosing session"),
        "subject": patient,
        "note": [{"text": format!(
            "Scheduled for {} ({}) by the {}.",
            session.scheduled_start.to_rfc3339_opts(SecondsFormat::Secs, true),
            session.time_zone,
            party(session.scheduled_by)
        )}],
    });
    if let Some(started) = session.started_at {
        let mut period = json!({"start": started.to_rfc3339_opts(SecondsFormat::Secs, true)});
        if let Some(ended) = session.ended_at {
            period["end"] = json!(ended.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
        procedure["performedPeriod"] = period;
    }
    if let Some(Deletion { at, by }) = &session.cancelled {
        procedure["statusReason"] = json!({"text": format!("Cancelled by the {} at {}", party(*by), instant(*at))});
    }
    procedure
}

fn party(party: Party) -> &'static str {
    match party {
        Party::Client => "client",
        Party::Clinic => "clinic",
    }
}

/// A readiness decision as an `Observation` that is part of its session's
/// `Procedure`: its status, the pack it was made with, and every item's state.
fn readiness(decision: &katcore::record::ReadinessRecord, pack: &Pack, patient: &Value, procedure: &Value) -> Value {
    let status = match decision.status {
        ReadinessStatus::Ready => ("ready", "Ready"),
        ReadinessStatus::Wait => ("wait", "Wait"),
        ReadinessStatus::Incomplete => ("incomplete", "Incomplete"),
        ReadinessStatus::Blocked => ("blocked", "Blocked"),
    };
    let mut components = vec![
        json!({"code": concept(KATCORE_CODES, "pack-id", "Content pack id"), "valueString": decision.pack_id}),
        json!({"code": concept(KATCORE_CODES, "pack-version", "Content pack version"),
               "valueInteger": decision.pack_version}),
    ];
    for (item, state) in &decision.items {
        let label = crate::wording::item_label(pack, item);
        let state = match state {
            ItemState::Pass => ("pass", "Met"),
            ItemState::Fail => ("fail", "Not met"),
            ItemState::Warn => ("warn", "Met, with a warning"),
            ItemState::Wait => ("wait", "A time window still open"),
            ItemState::Unanswered => ("unanswered", "Not answered"),
        };
        components.push(json!({
            "code": concept(KATCORE_ITEMS, item, &label),
            "valueCodeableConcept": concept(KATCORE_CODES, &format!("item-{}", state.0), state.1),
        }));
    }
    let mut observation = json!({
        "resourceType": "Observation",
        "id": decision.id,
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "survey", "Survey")],
        "code": concept(KATCORE_CODES, "readiness-decision", "Pre-session readiness decision"),
        "subject": patient,
        "partOf": [procedure],
        "effectiveDateTime": instant(decision.evaluated_at),
        "valueCodeableConcept": concept(KATCORE_CODES, status.0, status.1),
        "component": components,
    });
    if let Some(ready_at) = decision.ready_at {
        observation["note"] = json!([{"text": format!("May start from {}.", instant(ready_at))}]);
    }
    if decision.urgent {
        observation["interpretation"] = json!([concept(INTERPRETATION, "AA", "Critical abnormal")]);
    }
    observation
}

/// A blood-pressure reading as an `Observation` of the core FHIR
/// blood-pressure profile; flagged critical at or above the pack's urgent
/// limit, high at or above its limit.
fn blood_pressure(id: &str, systolic: u16, diastolic: u16, at: String, pack: &Pack, patient: &Value) -> Value {
    let t = &pack.thresholds;
    let mut observation = json!({
        "resourceType": "Observation",
        "id": id,
        "meta": {"profile": [BP_PROFILE]},
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "code": concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
        "subject": patient,
        "effectiveDateTime": at,
        "component": [
            {"code": concept(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": mm_hg(systolic)},
            {"code": concept(LOINC, "8462-4", "Diastolic blood pressure"), "valueQuantity": mm_hg(diastolic)},
        ],
    });
    if systolic >= t.bp_urgent.systolic || diastolic >= t.bp_urgent.diastolic {
        observation["interpretation"] = json!([concept(INTERPRETATION, "HH", "Critical high")]);
    } else if systolic >= t.bp_limit.systolic || diastolic >= t.bp_limit.diastolic {
        observation["interpretation"] = json!([concept(INTERPRETATION, "H", "High")]);
    }
    observation
}

/// A PHQ-9 or GAD-7 check-in as a `QuestionnaireResponse` with its
/// answers, a total-score `Observation` derived from it and, for PHQ-9,
/// item 9 as an `Observation` of its own. Mood ratings are not exported.
fn questionnaire(bundle: &mut Bundle, check_in: &CheckIn, pack: &Pack, patient: &Value) {
    let CheckInKind::Instrument { instrument, answers, total, band } = &check_in.kind else { return };
    let (panel, items, total_code, title): (&str, &[&str], (&str, &str), &str) = match instrument {
        InstrumentKind::Phq9 => ("44249-1", &PHQ9_ITEMS, ("44261-6", "PHQ-9 total score"), "PHQ-9"),
        InstrumentKind::Gad7 => ("69737-5", &GAD7_ITEMS, ("70274-6", "GAD-7 total score"), "GAD-7"),
    };
    let locale = pack.default_locale.as_str();
    let texts = pack.instrument(*instrument).map(|i| i.items.as_slice()).unwrap_or_default();
    let answer = |value: u8| {
        let (code, display) = FREQUENCY_ANSWERS[usize::from(value.min(3))];
        json!({"system": LOINC, "code": code, "display": display})
    };
    let response_items: Vec<Value> = answers
        .iter()
        .zip(items)
        .enumerate()
        .map(|(index, (value, code))| {
            let mut item = json!({"linkId": code, "answer": [{"valueCoding": answer(*value)}]});
            if let Some(text) = texts.get(index) {
                item["text"] = json!(text.get(locale, locale));
            }
            item
        })
        .collect();
    let completed = instant(check_in.completed_at);
    let response = bundle.put(json!({
        "resourceType": "QuestionnaireResponse",
        "id": check_in.id,
        "questionnaire": format!("http://loinc.org/q/{panel}"),
        "status": "completed",
        "subject": patient,
        "authored": completed,
        "author": patient,
        "item": response_items,
    }));
    let band = crate::wording::band_name(*band);
    bundle.put(json!({
        "resourceType": "Observation",
        "id": format!("{}-total", check_in.id),
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "survey", "Survey")],
        "code": concept(LOINC, total_code.0, total_code.1),
        "subject": patient,
        "effectiveDateTime": completed,
        "valueInteger": total,
        "interpretation": [{"text": format!("{title}: {band}")}],
        "derivedFrom": [response],
    }));
    if *instrument == InstrumentKind::Phq9 {
        let value = answers.get(8).copied().unwrap_or(0);
        let mut item9 = json!({
            "resourceType": "Observation",
            "id": format!("{}-item9", check_in.id),
            "status": "final",
            "category": [concept(OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": concept(LOINC, "44260-8", "PHQ-9 item 9: thoughts of death or of self-harm"),
            "subject": patient,
            "effectiveDateTime": completed,
            "valueCodeableConcept": {"coding": [answer(value)]},
            "derivedFrom": [response],
        });
        if value > 0 {
            item9["interpretation"] = json!([concept(INTERPRETATION, "AA", "Critical abnormal")]);
            item9["note"] = json!([{"text": "Any answer above 0 needs prompt clinical review."}]);
        }
        bundle.put(item9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_other_writers_chose_become_valid_fhir_ids() {
        assert_eq!(fhir_id("0123abcd-total"), "0123abcd-total");
        for odd in ["a_b", "../Patient/x", "", &"a".repeat(65), "ü"] {
            let id = fhir_id(odd);
            assert_eq!(id.len(), 33, "{odd:?} → {id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(id, fhir_id(odd), "stable");
        }
        assert_ne!(fhir_id("a_b"), fhir_id("a_c"));
    }

    #[test]
    fn full_urls_are_stable_version_5_style_uuids() {
        let a = full_url("Observation", "abc");
        assert_eq!(a, full_url("Observation", "abc"));
        assert_ne!(a, full_url("Procedure", "abc"));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
