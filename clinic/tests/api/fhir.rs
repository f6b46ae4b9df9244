//! `GET /v1/clients/{client_id}/fhir`: the record as a FHIR R4 transaction
//! bundle. The outside validation of the same export is scripts/fhir-test.sh.

use chrono::{Duration, Utc};
use katcore::checklist::BloodPressureReading;
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::{CheckInInput, JournalLinks, Party, Severity};
use katcore_clinic::{fhir_export, FhirOptions};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::TestServer;

/// The resources of a bundle of one type.
fn of_type<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == kind).collect()
}

/// The resource whose `code` has LOINC `code`.
fn by_loinc<'a>(bundle: &'a Value, code: &str) -> Vec<&'a Value> {
    of_type(bundle, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"].as_array().unwrap().iter().any(|c| c["code"] == code))
        .collect()
}

#[tokio::test]
async fn a_clients_record_exports_as_a_stable_fhir_r4_bundle() {
    let server = TestServer::start("fhir-export").await;
    let mut phone = server.client_with_device("client-0801").await;
    let pack = Pack::default_pack();
    let now = Utc::now();
    let start = (now - Duration::days(3)).fixed_offset();
    let session = phone.record.schedule_session(start, "America/New_York", Party::Client).unwrap();
    // An urgent checklist reading blocks the start; the client measures again.
    let high = serde_json::json!({"systolic": 182, "diastolic": 124});
    let answered = now - Duration::days(3) - Duration::minutes(20);
    phone.record.record_answer(&pack, &session, "blood_pressure", &high, answered).unwrap();
    phone.record.try_start_session(&pack, &session, "en", (answered + Duration::minutes(1)).fixed_offset()).unwrap();
    let bp = serde_json::json!({"systolic": 126, "diastolic": 80});
    phone.record.record_answer(&pack, &session, "blood_pressure", &bp, now - Duration::days(3)).unwrap();
    let reading = BloodPressureReading { systolic: 184, diastolic: 96 };
    let vitals = phone.record.add_vitals(&pack, reading, now - Duration::days(2), Some(&session)).unwrap();
    let phq9 = phone
        .record
        .add_check_in(CheckInInput::Instrument(InstrumentKind::Phq9, vec![2, 2, 1, 1, 1, 1, 0, 0, 2]), now)
        .unwrap();
    phone.record.add_check_in(CheckInInput::Instrument(InstrumentKind::Gad7, vec![1, 1, 1, 0, 0, 0, 1]), now).unwrap();
    phone.record.add_check_in(CheckInInput::Mood(6), now).unwrap();
    let effect = pack.side_effects[0].id.clone();
    phone.record.report_side_effect(&pack, &effect, Severity::Moderate, now, Some(&session)).unwrap();
    phone.record.write_journal_entry("A shared thought.", &JournalLinks::default(), now).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let note = server
        .clinician(Method::POST, &format!("/v1/clients/{}/notes", phone.client_id))
        .json(&serde_json::json!({"text": "Called; steadier."}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), StatusCode::CREATED);

    let path = format!("/v1/clients/{}/fhir", phone.client_id);
    let response = server.clinician(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/fhir+json");
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");

    // A pseudonymous patient: the clinic's id and label, nothing else.
    let patients = of_type(&bundle, "Patient");
    assert_eq!(patients.len(), 1);
    let patient = patients[0].as_object().unwrap();
    let mut fields: Vec<&str> = patient.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["active", "id", "identifier", "resourceType"]);
    assert_eq!(patient["identifier"][1]["value"], "client-0801");

    // Blood pressure: the urgent reading and both of the checklist's, by the BP profile.
    let readings = by_loinc(&bundle, "85354-9");
    assert_eq!(readings.len(), 3, "the replaced checklist reading is kept");
    let urgent = readings.iter().find(|o| o["id"] == vitals.as_str()).unwrap();
    assert_eq!(urgent["component"][0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(urgent["component"][0]["valueQuantity"]["value"], 184);
    assert_eq!(urgent["component"][1]["valueQuantity"]["code"], "mm[Hg]");
    assert_eq!(urgent["interpretation"][0]["coding"][0]["code"], "HH");
    assert_eq!(urgent["meta"]["profile"][0], "http://hl7.org/fhir/StructureDefinition/bp");
    let checklist: Vec<&&Value> = readings.iter().filter(|o| o["id"] != vitals.as_str()).collect();
    let systolic = |o: &Value| o["component"][0]["valueQuantity"]["value"].clone();
    let later = checklist.iter().find(|o| systolic(o) == 126).unwrap();
    assert!(later["interpretation"].is_null(), "126/80 is under the limit");
    let replaced = checklist.iter().find(|o| systolic(o) == 182).unwrap();
    assert_eq!(replaced["interpretation"][0]["coding"][0]["code"], "HH");
    assert!(replaced["id"].as_str().unwrap().starts_with("checklist-"));
    // The blocked decision names the reading it was made from.
    let decision = of_type(&bundle, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "readiness-decision")
        .unwrap();
    let entry_url = |id: &Value| {
        bundle["entry"].as_array().unwrap().iter().find(|e| &e["resource"]["id"] == id).unwrap()["fullUrl"].clone()
    };
    assert_eq!(decision["derivedFrom"][0]["reference"], entry_url(&replaced["id"]));

    // PHQ-9: the answers, the total derived from them, item 9 on its own.
    let responses = of_type(&bundle, "QuestionnaireResponse");
    assert_eq!(responses.len(), 2, "PHQ-9 and GAD-7; mood ratings are not exported");
    let total = by_loinc(&bundle, "44261-6");
    assert_eq!(total[0]["valueInteger"], 10);
    let item9 = by_loinc(&bundle, "44260-8");
    assert_eq!(item9[0]["id"], format!("{}-item9", phq9.id));
    assert_eq!(item9[0]["valueCodeableConcept"]["coding"][0]["code"], "LA6570-1");
    assert_eq!(item9[0]["interpretation"][0]["coding"][0]["code"], "AA");
    assert_eq!(by_loinc(&bundle, "70274-6")[0]["valueInteger"], 4);

    // The session, the side effect it may have caused, the note; no journal unless asked.
    let procedure = of_type(&bundle, "Procedure");
    assert_eq!(procedure[0]["status"], "preparation");
    let events = of_type(&bundle, "AdverseEvent");
    assert_eq!(events[0]["severity"]["coding"][0]["code"], "moderate");
    assert!(events[0]["suspectEntity"][0]["instance"]["reference"].as_str().unwrap().starts_with("urn:uuid:"));
    let documents = of_type(&bundle, "DocumentReference");
    assert_eq!(documents.len(), 1, "the clinician note only");
    assert_eq!(documents[0]["type"]["coding"][0]["code"], "11506-3");
    let with_journal: Value =
        server.clinician(Method::GET, &format!("{path}?include=journal")).send().await.unwrap().json().await.unwrap();
    assert_eq!(of_type(&with_journal, "DocumentReference").len(), 2);

    // Stable: a second export is the same but for its timestamp, and so is katctl's.
    let mut again: Value = server.clinician(Method::GET, &path).send().await.unwrap().json().await.unwrap();
    again["timestamp"] = bundle["timestamp"].clone();
    assert_eq!(again, bundle);
    let storage = server.storage();
    let mut batch = fhir_export(&*storage, &phone.client_id, FhirOptions::default(), Utc::now()).unwrap();
    batch["timestamp"] = bundle["timestamp"].clone();
    assert_eq!(batch, bundle);
}

#[tokio::test]
async fn the_export_is_for_the_clinics_clinicians_only() {
    let server = TestServer::start("fhir-access").await;
    let phone = server.client_with_device("client-0802").await;
    let path = format!("/v1/clients/{}/fhir", phone.client_id);
    let bad = server.clinician(Method::GET, &format!("{path}?include=everything")).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let as_device = server.as_token(&phone.token, Method::GET, &path).send().await.unwrap();
    assert_eq!(as_device.status(), StatusCode::FORBIDDEN);
    let unknown = server.clinician(Method::GET, "/v1/clients/0123/fhir").send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn what_the_clinics_packs_do_not_know_is_exported_marked() {
    let server = TestServer::start("fhir-pack-ids").await;
    let mut phone = server.client_with_device("client-0802").await;
    // The clinic publishes version 2 of its pack.
    let mut published: Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
    published["version"] = serde_json::json!(2);
    let response =
        server.clinician(Method::PUT, "/v1/pack").body(server.sign(&published.to_string())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let clinic_pack = Pack::from_json(published.to_string().as_bytes()).unwrap();
    // And a pack it never published, with a side effect its own lacks.
    let mut other = clinic_pack.clone();
    other.version = 7;
    let mut effect = other.side_effects[0].clone();
    effect.id = "made_up_effect".into();
    other.side_effects.push(effect);

    let now = Utc::now();
    let session =
        phone.record.schedule_session((now + Duration::hours(3)).fixed_offset(), "UTC", Party::Client).unwrap();
    phone.record.report_side_effect(&other, "made_up_effect", Severity::Mild, now, None).unwrap();
    for pack in [&clinic_pack, &other] {
        let evaluation = phone.record.evaluate_session(pack, &session, "en").unwrap();
        phone.record.record_readiness(&session, &evaluation, pack, now).unwrap();
    }
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let path = format!("/v1/clients/{}/fhir", phone.client_id);
    let bundle: Value = server.clinician(Method::GET, &path).send().await.unwrap().json().await.unwrap();
    let event = &of_type(&bundle, "AdverseEvent")[0];
    assert_eq!(event["event"]["coding"][0]["display"], "made_up_effect (not in the clinic's pack)");
    let decisions: Vec<&Value> = of_type(&bundle, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] == "readiness-decision")
        .collect();
    let version_of =
        |o: &Value| o["component"].as_array().unwrap().iter().find_map(|c| c["valueInteger"].as_u64()).unwrap();
    let notes = |o: &Value| o["note"].to_string();
    let unverified = decisions.iter().find(|o| version_of(o) == 7).unwrap();
    assert!(notes(unverified).contains("made with a pack this clinic never published"), "{}", notes(unverified));
    let verified = decisions.iter().find(|o| version_of(o) == 2).unwrap();
    assert!(!notes(verified).contains("never published"), "version 2 was published");
}
