//! A device token in hostile hands, and third-party clients: every sync's
//! changes are checked before anything is stored, actors are bound to their
//! writer, and alerts come from values. Changes are made with raw Automerge
//! calls, as a modified app or another Automerge implementation would.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, AutomergeError, ObjType, ROOT};
use katcore::record::{CheckInInput, JournalLinks};
use katcore::sync::wire::SyncRequest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{entry_home, entry_obj, Device, TestServer};

/// Posts the changes `edit` makes on top of the device's replica, written
/// under `actor`, with the heads the server knows; returns status and body.
async fn post_raw(
    server: &TestServer,
    device: &Device,
    actor: ActorId,
    edit: impl FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
) -> (StatusCode, Value) {
    let mut doc: Automerge = device.record.document().clone().with_actor(actor);
    let before = doc.get_heads();
    doc.transact(|tx| edit(tx)).map_err(|failure| failure.error).unwrap();
    let request =
        SyncRequest { since: device.server_heads.clone(), heads: doc.get_heads(), changes: doc.save_after(&before) };
    let response = device.post(server, request.encode()).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A raw edit of a hostile or third-party replica.
type Edit = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>>;

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

async fn open_alerts(server: &TestServer) -> Vec<Value> {
    let response = server.clinician(Method::GET, "/v1/alerts?status=open").send().await.unwrap();
    response.json::<Vec<Value>>().await.unwrap()
}

/// A client whose record holds a clinic session and a clinician note, synced to the phone.
async fn client_with_clinic_content(server: &TestServer, label: &str) -> (Device, String, String) {
    let mut phone = server.client_with_device(label).await;
    let path = format!("/v1/clients/{}/sessions", phone.client_id);
    let response = server
        .clinician(Method::POST, &path)
        .json(&json!({"start": "2026-12-03T15:00:00-05:00", "time_zone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    let session = response.json::<Value>().await.unwrap()["session_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/clients/{}/notes", phone.client_id);
    let response = server.clinician(Method::POST, &path).json(&json!({"text": "Plan reviewed."})).send().await.unwrap();
    let note = response.json::<Value>().await.unwrap()["note_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.sync(server).await, StatusCode::OK);
    (phone, session, note)
}

#[tokio::test]
async fn forged_clinic_writes_are_refused_whole_naming_key_and_rule() {
    let server = TestServer::start("hostile-forgery").await;
    let (phone, session, note) = client_with_clinic_content(&server, "client-h1").await;
    let before = server.record_json(&phone.client_id).await;
    let thief = ActorId::random();
    let session_key = format!("s:{session}");
    let note_key = format!("n:{note}");
    let session_obj = entry_obj(phone.record.document(), &session_key);

    let cases: Vec<(&str, String, Edit)> = vec![
        (
            "not_permitted",
            "n:0000000000000000000000000000000f".to_owned(),
            Box::new(|tx: &mut Transaction<'_>| {
                // A harmless vitals entry first: the whole request is refused, not just the note.
                let vitals = json!({"taken_at": now(), "reading": {"systolic": 120, "diastolic": 80}, "session_id": null, "urgent": false});
                tx.put(ROOT, "v:0000000000000000000000000000000e", vitals.to_string())?;
                let note = json!({"written_at": now(), "author": "Dr. Rivera", "text": "Cleared for a double dose."});
                tx.put(ROOT, "n:0000000000000000000000000000000f", note.to_string())
            }),
        ),
        (
            "not_permitted",
            note_key.clone(),
            Box::new({
                let note_key = note_key.clone();
                move |tx: &mut Transaction<'_>| {
                    tx.put(
                        ROOT,
                        &note_key,
                        json!({"written_at": now(), "author": "Dr. Rivera", "text": "Changed."}).to_string(),
                    )
                }
            }),
        ),
        (
            "delete_op",
            note_key.clone(),
            Box::new({
                let (home, id) = entry_home(phone.record.document(), &note_key);
                move |tx: &mut Transaction<'_>| tx.delete(&home, id.as_str())
            }),
        ),
        (
            "delete_op",
            session_key.clone(),
            Box::new({
                let (home, id) = entry_home(phone.record.document(), &session_key);
                move |tx: &mut Transaction<'_>| tx.delete(&home, id.as_str())
            }),
        ),
        (
            "not_permitted",
            format!("{session_key}/start"),
            Box::new({
                let obj = session_obj.clone();
                move |tx: &mut Transaction<'_>| tx.put(&obj, "start", "2026-12-01T09:00:00-05:00")
            }),
        ),
        (
            "not_permitted",
            "assigned_pack".to_owned(),
            Box::new(|tx: &mut Transaction<'_>| {
                tx.put(
                    ROOT,
                    "assigned_pack",
                    json!({"pack_id": "org.evil", "version": 42, "assigned_at": now()}).to_string(),
                )
            }),
        ),
        (
            "not_permitted",
            "s:0000000000000000000000000000000d/by".to_owned(),
            Box::new(|tx: &mut Transaction<'_>| {
                let obj = tx.put_object(ROOT, "s:0000000000000000000000000000000d", ObjType::Map)?;
                tx.put(&obj, "start", "2026-12-05T15:00:00-05:00")?;
                tx.put(&obj, "tz", "America/New_York")?;
                tx.put(&obj, "by", "clinic")
            }),
        ),
        (
            "invalid_value",
            "r:0000000000000000000000000000000c".to_owned(),
            Box::new({
                let session = session.clone();
                move |tx: &mut Transaction<'_>| {
                    let decision = json!({"session_id": session, "evaluated_at": now(), "pack_id": "org.example.default",
                    "pack_version": 1, "status": "ready", "ready_at": null, "urgent": false,
                    "items": [["monitor_present", "fail"]]});
                    tx.put(ROOT, "r:0000000000000000000000000000000c", decision.to_string())
                }
            }),
        ),
        (
            "invalid_value",
            "j:0000000000000000000000000000000b/text".to_owned(),
            Box::new(|tx: &mut Transaction<'_>| {
                let obj = tx.put_object(ROOT, "j:0000000000000000000000000000000b", ObjType::Map)?;
                tx.put(&obj, "created_at", now())?;
                tx.put(&obj, "text", "w".repeat(2_000_000))
            }),
        ),
    ];
    let count = cases.len();
    for (rule, key, edit) in cases {
        let (status, body) = post_raw(&server, &phone, thief.clone(), edit).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {body}");
        assert_eq!(body["error"], "write_refused");
        assert_eq!(body["rule"], rule, "{body}");
        assert_eq!(body["key"], key.as_str(), "{body}");
        assert!(!body["message"].as_str().unwrap().contains("Cleared"), "no record content in errors");
    }
    assert_eq!(server.record_json(&phone.client_id).await, before, "nothing of a refused request is stored");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(&format!("katcore_clinic_syncs_total{{result=\"write_refused\"}} {count}\n")),
        "{metrics}"
    );
    assert!(metrics.contains("katcore_clinic_sync_writes_refused_total{rule=\"delete_op\"} 2\n"), "{metrics}");
    assert!(metrics.contains("katcore_clinic_sync_writes_refused_total{rule=\"not_permitted\"} 5\n"), "{metrics}");
}

#[tokio::test]
async fn alerts_come_from_values_and_only_clinicians_acknowledge() {
    let server = TestServer::start("hostile-alerts").await;
    let (mut phone, session, _) = client_with_clinic_content(&server, "client-h2").await;
    let device = ActorId::random();

    // A PHQ-9 of 27 with a self-written acknowledgement: refused whole.
    let (status, body) = post_raw(&server, &phone, device.clone(), |tx| {
        let phq = json!({"completed_at": now(), "kind": "instrument", "instrument": "phq9",
            "answers": [3, 3, 3, 3, 3, 3, 3, 3, 3], "total": 27, "band": "severe", "urgent": false});
        tx.put(ROOT, "c:00000000000000000000000000000001", phq.to_string())?;
        tx.put(ROOT, "k:c:00000000000000000000000000000001", json!({"at": now(), "by": "Dr. Rivera"}).to_string())
    })
    .await;
    assert_eq!((status, body["rule"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("not_permitted")));
    assert!(open_alerts(&server).await.is_empty());

    // Urgent values flagged `urgent: false`, a newer app's extra fields, and
    // an urgent checklist answer with no readiness decision: each an open alert.
    let session_obj = entry_obj(phone.record.document(), &format!("s:{session}"));
    let (status, body) = post_raw(&server, &phone, device.clone(), |tx| {
        let phq = json!({"completed_at": now(), "kind": "instrument", "instrument": "phq9",
            "answers": [0, 0, 0, 0, 0, 0, 0, 0, 3], "total": 3, "band": "minimal", "urgent": false});
        tx.put(ROOT, "c:00000000000000000000000000000002", phq.to_string())?;
        let vitals = json!({"taken_at": now(), "reading": {"systolic": 200, "diastolic": 130, "pulse": 90},
            "session_id": null, "urgent": false, "cuff": "model-2"});
        tx.put(ROOT, "v:00000000000000000000000000000003", vitals.to_string())?;
        let answer = json!({"value": {"systolic": 190, "diastolic": 125}, "at": now()});
        tx.put(&session_obj, "a:blood_pressure", answer.to_string())?;
        // A severe GAD-7 (21) whose writer says it is nothing urgent.
        let gad = json!({"completed_at": now(), "kind": "instrument", "instrument": "gad7",
            "answers": [3, 3, 3, 3, 3, 3, 3], "total": 21, "band": "severe", "urgent": false});
        tx.put(ROOT, "c:00000000000000000000000000000004", gad.to_string())
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alerts = open_alerts(&server).await;
    let keys: Vec<&str> = alerts.iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"c:00000000000000000000000000000002"), "{keys:?}");
    let severe =
        alerts.iter().find(|a| a["key"] == "c:00000000000000000000000000000004").expect("a severe score alert");
    assert_eq!(severe["kind"], "severe_score");
    assert!(keys.contains(&"v:00000000000000000000000000000003"), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&format!("s:{session}/a:blood_pressure@"))), "{keys:?}");
    let record = server.record_json(&phone.client_id).await;
    assert_eq!(record["vitals"][0]["reading"]["systolic"], 200, "an entry with unknown fields stays visible");

    // The phone catches up, then tries to close an open alert itself: refused.
    phone.server_heads.clear();
    assert_eq!(phone.sync_with_retry(&server).await, StatusCode::OK);
    let (status, body) = post_raw(&server, &phone, device, |tx| {
        tx.put(ROOT, "k:v:00000000000000000000000000000003", json!({"at": now(), "by": "Dr. Rivera"}).to_string())
    })
    .await;
    assert_eq!((status, body["rule"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("not_permitted")));
    assert_eq!(open_alerts(&server).await.len(), 4);
}

#[tokio::test]
async fn actors_are_bound_to_their_writer() {
    let server = TestServer::start("hostile-actors").await;
    let (mut phone, _, _) = client_with_clinic_content(&server, "client-h3").await;
    phone.record.add_check_in(CheckInInput::Mood(6), chrono::Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let mut tablet = server.new_device(&phone.client_id).await;
    assert_eq!(tablet.sync(&server).await, StatusCode::OK);

    // The tablet writes a harmless entry under the phone's actor: refused.
    let phone_actor = phone.record.actor().clone();
    let vitals = |tx: &mut Transaction<'_>| {
        let vitals = json!({"taken_at": now(), "reading": {"systolic": 120, "diastolic": 80}, "session_id": null, "urgent": false});
        tx.put(ROOT, "v:00000000000000000000000000000010", vitals.to_string())
    };
    let (status, body) = post_raw(&server, &tablet, phone_actor, vitals).await;
    assert_eq!(
        (status, body["rule"].as_str(), body["key"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("foreign_actor"), Some("(actor)"))
    );

    // Under the clinic's actor (the one that wrote the note): refused.
    let own = [phone.record.actor().clone(), tablet.record.actor().clone()];
    let clinic_actor = tablet
        .record
        .document()
        .get_changes(&[])
        .into_iter()
        .map(|change| change.actor_id().clone())
        .find(|actor| !own.contains(actor))
        .unwrap();
    let (status, body) = post_raw(&server, &tablet, clinic_actor, vitals).await;
    assert_eq!((status, body["rule"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("clinic_actor")));

    // Its own actor works, and stays its own.
    tablet.record.write_journal_entry("Fine today.", &JournalLinks::default(), chrono::Utc::now()).unwrap();
    assert_eq!(tablet.sync(&server).await, StatusCode::OK);
    let (status, _) = post_raw(&server, &phone, tablet.record.actor().clone(), vitals).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_third_party_client_gets_a_clear_refusal_for_a_text_object() {
    let server = TestServer::start("hostile-text").await;
    let phone = server.client_with_device("client-h4").await;
    // What Automerge JS writes for a plain JS string: a collaborative Text.
    let (status, body) = post_raw(&server, &phone, ActorId::random(), |tx| {
        let obj = tx.put_object(ROOT, "j:00000000000000000000000000000020", ObjType::Map)?;
        tx.put(&obj, "created_at", now())?;
        let text = tx.put_object(&obj, "text", ObjType::Text)?;
        tx.splice_text(&text, 0, 0, "BP was 190/125 this morning")
    })
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["rule"], "text_object");
    assert_eq!(body["key"], "j:00000000000000000000000000000020/text");
    assert!(body["message"].as_str().unwrap().contains("ImmutableString"), "{body}");
    assert!(!body["message"].as_str().unwrap().contains("190"));
}

#[tokio::test]
async fn alerts_follow_the_clinics_pack_and_its_changes() {
    let server = TestServer::start("hostile-pack").await;
    let mut phone = server.client_with_device("client-h5").await;
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let vitals = |n: u8, systolic: u16| {
        move |tx: &mut Transaction<'_>| {
            let vitals = json!({"taken_at": now(), "reading": {"systolic": systolic, "diastolic": 90},
                "session_id": null, "urgent": false});
            tx.put(ROOT, format!("v:{n:032x}"), vitals.to_string())
        }
    };
    // 165/90 is below the default pack's urgent limit (180/120): no alert.
    let (status, _) = post_raw(&server, &phone, phone.record.actor().clone(), vitals(1, 165)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(open_alerts(&server).await.is_empty());

    // The clinic publishes a pack whose urgent limit is 160/100: the next reading at 165 is urgent.
    let mut pack: Value = serde_json::from_str(katcore::pack::Pack::default_pack_json()).unwrap();
    pack["version"] = json!(2);
    pack["thresholds"]["bp_urgent"] = json!({"systolic": 160, "diastolic": 100});
    let response = server.clinician(Method::PUT, "/v1/pack").body(server.sign(&pack.to_string())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    phone.server_heads.clear();
    assert_eq!(phone.sync_with_retry(&server).await, StatusCode::OK);
    let (status, _) = post_raw(&server, &phone, phone.record.actor().clone(), vitals(2, 165)).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<String> = open_alerts(&server).await.iter().map(|a| a["key"].as_str().unwrap().to_owned()).collect();
    assert!(keys.contains(&format!("v:{:032x}", 2)), "{keys:?}");
}

#[tokio::test]
async fn a_session_started_around_the_gate_raises_an_alert() {
    let server = TestServer::start("hostile-started").await;
    let (phone, session, _) = client_with_clinic_content(&server, "client-h6").await;
    let session_obj = entry_obj(phone.record.document(), &format!("s:{session}"));
    // A modified app writes `started_at` with no readiness decision: well
    // formed, and a write a device may make, so it is stored, and the
    // clinic learns that the session ran unchecked.
    let started = "2026-12-03T15:05:00-05:00";
    let (status, body) =
        post_raw(&server, &phone, ActorId::random(), move |tx| tx.put(&session_obj, "started_at", started)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alerts = open_alerts(&server).await;
    let alert = alerts.iter().find(|a| a["key"] == format!("s:{session}/started").as_str()).expect("an alert");
    assert_eq!(alert["kind"], "started_not_ready");
    assert_eq!(alert["at"], "2026-12-03T20:05:00Z");
}

#[tokio::test]
async fn a_start_on_a_ready_from_an_unpublished_pack_raises_the_same_alert() {
    let server = TestServer::start("hostile-unpublished-ready").await;
    let (mut phone, session, _) = client_with_clinic_content(&server, "client-h7").await;
    // A `ready` decision that names a pack this clinic never published (a
    // modified app can write one for any answers), then the start.
    let mut forged = (*katcore::pack::Pack::default_pack()).clone();
    forged.id = "org.example.anything-goes".into();
    let mut evaluation = phone.record.evaluate_session(&forged, &session, "en").unwrap();
    evaluation.status = katcore::checklist::ReadinessStatus::Ready;
    evaluation.urgent = false;
    for item in &mut evaluation.items {
        item.state = katcore::checklist::ItemState::Pass;
    }
    let decided = chrono::DateTime::parse_from_rfc3339("2026-12-03T15:04:00-05:00").unwrap().to_utc();
    phone.record.record_readiness(&session, &evaluation, &forged, decided).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let session_obj = entry_obj(phone.record.document(), &format!("s:{session}"));
    let started = "2026-12-03T15:05:00-05:00";
    let (status, body) =
        post_raw(&server, &phone, ActorId::random(), move |tx| tx.put(&session_obj, "started_at", started)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alerts = open_alerts(&server).await;
    let alert = alerts.iter().find(|a| a["key"] == format!("s:{session}/started").as_str());
    assert_eq!(alert.map(|a| a["kind"].clone()), Some(json!("started_not_ready")), "{alerts:?}");
}
