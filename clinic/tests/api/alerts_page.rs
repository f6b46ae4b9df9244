//! The landing page over a real server: every open alert described and
//! grouped by client with its count, the groups filtered by kind and client
//! and paginated, and acknowledging with an outcome, then reopening.

use chrono::{Duration, Utc};
use katcore::checklist::BloodPressureReading;
use katcore::pack::Pack;
use katcore::record::Severity;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestServer;
use crate::dashboard::{with_password, Browser, PASSWORD};

#[tokio::test]
async fn every_clients_alerts_are_described_when_one_client_has_many() {
    let server = TestServer::start("dashboard-many-alerts").await;
    with_password(&server, "rivera");
    let pack = Pack::default_pack();
    let now = Utc::now();
    let mut busy = server.client_with_device("client-0720").await;
    for minute in 0..55 {
        let reading = BloodPressureReading { systolic: 185, diastolic: 95 };
        busy.record.add_vitals(&pack, reading, now - Duration::minutes(minute), None).unwrap();
    }
    assert_eq!(busy.sync(&server).await, StatusCode::OK);
    // Another client's alert, older, so listed after the 55 above.
    let mut quiet = server.client_with_device("client-0721").await;
    let reading = BloodPressureReading { systolic: 201, diastolic: 121 };
    quiet.record.add_vitals(&pack, reading, now - Duration::days(2), None).unwrap();
    assert_eq!(quiet.sync(&server).await, StatusCode::OK);

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (html, _) = browser.page("/dashboard").await;
    assert_eq!(html.matches("185/95 mmHg").count(), 55, "every alert of the busy client is described");
    assert!(html.contains("201/121 mmHg"), "and so is the other client's, listed 56th");
    // Each Acknowledge button names its alert: kind, client and time.
    let names: Vec<&str> =
        html.split("aria-label=\"Acknowledge: ").skip(1).map(|rest| rest.split('"').next().unwrap()).collect();
    assert_eq!(names.len(), 56);
    assert_eq!(names.iter().collect::<std::collections::BTreeSet<_>>().len(), 56, "no two share a name: {names:?}");
    assert!(names.iter().any(|name| name.contains("client-0721")));
    // Each client's alerts are one group with its count, saying how current the client's data is.
    assert!(html.contains("client-0720</a> <span class=\"count\">55 open</span>"), "the busy client's count");
    assert!(
        html.contains(
            "client-0721</a> <span class=\"count\">1 open</span> <span class=\"muted\">(synced just now)</span>"
        ),
        "the sync's age"
    );
    assert!(html.find("201/121").unwrap() < html.find("185/95").unwrap(), "the newest receipt first: {html}");
    let (list, _) = browser.page("/dashboard/clients").await;
    let row = list.split("client-0720").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("(synced just now)"), "and each client row: {row}");
}

#[tokio::test]
async fn alerts_are_grouped_by_client_filtered_by_kind_and_client_and_paginated() {
    let server = TestServer::start("dashboard-alert-pages").await;
    with_password(&server, "rivera");
    let pack = Pack::default_pack();
    let now = Utc::now();
    // Seventeen clients with an urgent reading each, received in turn; the
    // last also reports a severe side effect.
    let mut ids = Vec::new();
    for n in 0..17 {
        let mut phone = server.client_with_device(&format!("client-{n:02}")).await;
        let reading = BloodPressureReading { systolic: 181 + n, diastolic: 95 };
        phone.record.add_vitals(&pack, reading, now - Duration::minutes(30), None).unwrap();
        if n == 16 {
            let effect = pack.side_effects[0].id.clone();
            phone.record.report_side_effect(&pack, &effect, Severity::Severe, now, None).unwrap();
        }
        assert_eq!(phone.sync(&server).await, StatusCode::OK);
        ids.push(phone.client_id.clone());
    }
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;

    let groups = |html: &str| html.matches("<section class=\"group\"").count();
    let (first, _) = browser.page("/dashboard").await;
    assert_eq!(groups(&first), 15, "fifteen clients a page");
    assert!(first.contains("18 open alerts for 17 clients, most urgent first; page 1 of 2."), "{first}");
    assert!(first.find("client-16<").unwrap() < first.find("client-02<").unwrap(), "newest receipt first");
    assert!(first.contains("href=\"/dashboard?page=2\" rel=\"next\""));
    assert!(first.contains("<span class=\"count\">2 open</span>"), "the client with two alerts says so");
    let (second, _) = browser.page("/dashboard?page=2").await;
    assert_eq!(groups(&second), 2);
    assert!(second.contains("181/95 mmHg") && second.contains("182/95 mmHg"), "the oldest two, described");
    assert!(second.contains("href=\"/dashboard\" rel=\"prev\""));
    let (past_the_end, _) = browser.page("/dashboard?page=9").await;
    assert_eq!(groups(&past_the_end), 2, "a page past the end shows the last");

    let (effects, _) = browser.page("/dashboard?kind=side_effect").await;
    assert_eq!(groups(&effects), 1);
    assert!(effects.contains("1 open alert for 1 client (filtered)"), "{effects}");
    assert!(!effects.contains("197/95 mmHg"), "only the kind asked for");
    assert!(effects.contains("<option value=\"side_effect\" selected>"));

    let (one, _) = browser.page(&format!("/dashboard?client={}", ids[3])).await;
    assert_eq!(groups(&one), 1);
    assert!(one.contains("184/95 mmHg") && !one.contains("185/95 mmHg"));
    let (none, _) = browser.page(&format!("/dashboard?client={}&kind=side_effect", ids[3])).await;
    assert!(none.contains("No open alerts match these filters."));
    let (unknown, _) = browser.page("/dashboard?kind=everything&client=%22%3E").await;
    assert_eq!(groups(&unknown), 15, "filters it does not know show everything");
}

#[tokio::test]
async fn an_acknowledgement_records_its_outcome_and_note_and_can_be_reopened() {
    let server = TestServer::start("alert-outcomes").await;
    with_password(&server, "rivera");
    let pack = Pack::default_pack();
    let mut phone = server.client_with_device("client-0730").await;
    let reading = BloodPressureReading { systolic: 188, diastolic: 96 };
    let vitals = phone.record.add_vitals(&pack, reading, Utc::now(), None).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let alerts: Value = server.clinician(Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    let alert_id = alerts[0]["alert_id"].as_str().unwrap().to_owned();
    let ack = format!("/v1/alerts/{alert_id}/ack");

    // Bad input changes nothing and says what was wrong.
    let unknown = server.clinician(Method::POST, &ack).json(&json!({"outcome": "shrugged"})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let long = "x".repeat(2_001);
    let too_long = server.clinician(Method::POST, &ack).json(&json!({"note": long})).send().await.unwrap();
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert!(too_long.text().await.unwrap().contains("2,000 characters"));
    let untyped = server.clinician(Method::POST, &ack).body(r#"{"outcome": "no_answer"}"#).send().await.unwrap();
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "a body must say it is JSON");
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (_, token) = browser.page("/dashboard").await;
    let dashboard_ack = format!("/dashboard/alerts/{alert_id}/ack");
    let no_outcome = browser.post(&dashboard_ack, &[("csrf", &token), ("outcome", ""), ("note", "")]).await;
    assert_eq!(no_outcome.status(), StatusCode::BAD_REQUEST, "the dashboard asks what was done");
    let open: Value = server.clinician(Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    assert_eq!(open.as_array().unwrap().len(), 1, "still open");

    // Acknowledged from the dashboard with an outcome and a note.
    let note = "Rang twice; voicemail full. Will try at 18:00.";
    let form = [
        ("csrf", token.as_str()),
        ("outcome", "no_answer"),
        ("note", note),
        ("list_kind", "urgent_blood_pressure"),
        ("list_client", ""),
        ("list_page", "2"),
    ];
    let acked = browser.post(&dashboard_ack, &form).await;
    assert_eq!(acked.status(), StatusCode::SEE_OTHER);
    let location = acked.headers()[reqwest::header::LOCATION].to_str().unwrap();
    assert_eq!(
        location, "/dashboard?kind=urgent_blood_pressure&page=2&done=acknowledged",
        "back to the list it came from"
    );
    let all: Value = server.clinician(Method::GET, "/v1/alerts?status=all").send().await.unwrap().json().await.unwrap();
    assert_eq!(all[0]["acknowledged_outcome"], "no_answer");
    assert_eq!(all[0]["acknowledged_by"], "Dr. Rivera");
    // The record holds the outcome and the note, and the phone gets them.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let item = phone.record.urgent_items().into_iter().find(|i| i.key == format!("v:{vitals}")).unwrap();
    let acknowledgement = item.acknowledged.unwrap();
    assert_eq!((acknowledgement.outcome.as_deref(), acknowledgement.note.as_deref()), (Some("no_answer"), Some(note)));
    let (client_page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    assert!(client_page.contains("by Dr. Rivera: Called, no answer"), "{client_page}");
    assert!(client_page.contains(note), "the note, from the record");

    // Reopened from the landing page's recently acknowledged list: open again at the clinic.
    let (landing, token) = browser.page("/dashboard").await;
    assert!(landing.contains(&format!("/dashboard/alerts/{alert_id}/reopen")));
    let reopened = browser.post(&format!("/dashboard/alerts/{alert_id}/reopen"), &[("csrf", &token)]).await;
    assert_eq!(reopened.status(), StatusCode::SEE_OTHER);
    let open: Value = server.clinician(Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    assert_eq!(open[0]["acknowledged_at"], Value::Null);
    assert_eq!(open[0]["acknowledged_outcome"], Value::Null);
    // The record's acknowledgement is written once: the phone keeps it, and syncs.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let item = phone.record.urgent_items().into_iter().find(|i| i.key == format!("v:{vitals}")).unwrap();
    assert_eq!(item.acknowledged.unwrap().outcome.as_deref(), Some("no_answer"));
    let again = server.clinician(Method::POST, &format!("/v1/alerts/{alert_id}/reopen")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "reopening an open alert changes nothing");

    // Acknowledged again through the API, with another outcome; the trail keeps all three.
    let body = json!({"outcome": "spoke_with_client", "note": "Reached on the third try; resting, reading repeated."});
    let acked = server.clinician(Method::POST, &ack).json(&body).send().await.unwrap();
    assert_eq!(acked.status(), StatusCode::NO_CONTENT);
    let (client_page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    let trail = client_page.split("History (3)").nth(1).expect("three lines of history").split("</ul>").next().unwrap();
    let lines: Vec<&str> = trail.split("<li>").skip(1).collect();
    assert!(lines[0].starts_with("Acknowledged") && lines[0].contains(": Called, no answer"), "{trail}");
    assert!(lines[1].starts_with("Reopened") && lines[1].contains("by Dr. Rivera"), "{trail}");
    assert!(lines[2].contains(": Spoke with the client"), "{trail}");
    assert!(!trail.contains("voicemail"), "notes stay in the record, not the trail");
    assert!(!client_page.contains("voicemail full"), "the first note is not shown beside the second acknowledgement");
    // The second note is a clinician note in the record, naming the alert's kind; the phone takes it.
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let notes = phone.record.view(&pack).clinician_notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].text,
        "Alert \u{201c}Urgent blood pressure\u{201d} acknowledged again: Reached on the third try; resting, reading repeated."
    );
    assert!(client_page.contains("Reached on the third try"), "listed with the notes");
}
