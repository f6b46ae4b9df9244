//! The care team's dashboard over a real server: sign-in, sessions, CSRF,
//! clinic isolation, the alert order and the pages' protections. The same
//! journey in a real browser is `tests/dashboard/dashboard.test.mjs`.

use chrono::{DateTime, Duration, Utc};
use katcore::checklist::BloodPressureReading;
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::{CheckInInput, Party};
use katcore_clinic::{add_clinician_in, set_password, WebSession};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use crate::common::TestServer;

pub(crate) const PASSWORD: &str = "a long enough password";

/// A browser-like client that keeps the cookies it is given.
pub(crate) struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new(server: &TestServer) -> Browser {
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        Browser { http, base: server.url.clone(), cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> reqwest::Response {
        let response =
            self.http.get(format!("{}{path}", self.base)).header(COOKIE, self.cookie_header()).send().await.unwrap();
        self.keep(&response);
        response
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }

    /// The value of the first hidden `csrf` field of `html`.
    pub(crate) fn csrf(html: &str) -> String {
        let start = html.find("name=\"csrf\" value=\"").expect("a form with a token") + 19;
        html[start..].split('"').next().unwrap().to_owned()
    }

    pub(crate) async fn sign_in(&mut self, login: &str, password: &str) -> reqwest::Response {
        let page = self.get("/dashboard/signin").await.text().await.unwrap();
        let token = Browser::csrf(&page);
        self.post("/dashboard/signin", &[("csrf", &token), ("login", login), ("password", password)]).await
    }

    /// A page's HTML and its form token, asserting `200`.
    pub(crate) async fn page(&mut self, path: &str) -> (String, String) {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().await.unwrap();
        let token = Browser::csrf(&html);
        (html, token)
    }
}

pub(crate) fn with_password(server: &TestServer, login: &str) {
    let storage = server.storage();
    set_password(storage.as_ref(), &server.clinic.clinician_id, login, PASSWORD).unwrap();
}

#[tokio::test]
async fn a_clinician_signs_in_and_the_session_cookie_is_locked_down() {
    let server = TestServer::start("dashboard-signin").await;
    with_password(&server, "Rivera");
    let mut browser = Browser::new(&server);

    // Not signed in: every page sends to the sign-in page.
    let response = browser.get("/dashboard").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/dashboard/signin");

    let wrong = browser.sign_in("rivera", "not the password at all").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("do not match"));
    assert!(!browser.cookies.iter().any(|(k, _)| k == "katcore_session"));

    let right = browser.sign_in(" RIVERA ", PASSWORD).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/dashboard");
    let cookie = right
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("katcore_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback cannot keep a Secure cookie");

    let landing = browser.get("/dashboard").await;
    assert_eq!(landing.status(), StatusCode::OK);
    let headers = landing.headers().clone();
    assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = landing.text().await.unwrap();
    assert!(html.contains("Dr. Rivera") && html.contains("No open alerts"));

    // Signing out ends the session on the server, not only in the browser.
    let session = browser.cookies.iter().find(|(k, _)| k == "katcore_session").unwrap().clone();
    let token = Browser::csrf(&html);
    assert_eq!(browser.post("/dashboard/signout", &[("csrf", &token)]).await.status(), StatusCode::SEE_OTHER);
    browser.cookies.push(session);
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_sign_in_form_needs_its_own_token_and_failures_are_rate_limited() {
    let server = TestServer::start("dashboard-limits").await;
    with_password(&server, "rivera");
    let mut browser = Browser::new(&server);
    // A sign-in posted from elsewhere has no matching cookie.
    let forged =
        browser.post("/dashboard/signin", &[("csrf", "guessed"), ("login", "rivera"), ("password", PASSWORD)]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    for _ in 0..katcore_clinic::MAX_FAILURES_PER_WINDOW {
        assert_eq!(browser.sign_in("rivera", "wrong wrong wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = browser.sign_in("rivera", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(browser.cookies.iter().all(|(k, _)| k != "katcore_session"));
}

#[tokio::test]
async fn forms_without_the_session_token_change_nothing() {
    let server = TestServer::start("dashboard-csrf").await;
    with_password(&server, "rivera");
    let client_id = server.create_client("client-0701").await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("rivera", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let path = format!("/dashboard/clients/{client_id}/notes");

    let missing = browser.post(&path, &[("text", "no token")]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = browser.post(&path, &[("csrf", "not-the-token"), ("text", "wrong token")]).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(server.record_json(&client_id).await["clinician_notes"].as_array().unwrap().is_empty());

    let (_, token) = browser.page(&format!("/dashboard/clients/{client_id}")).await;
    let written = browser.post(&path, &[("csrf", &token), ("text", "Called; feeling steadier.")]).await;
    assert_eq!(written.status(), StatusCode::SEE_OTHER);
    assert_eq!(written.headers()[LOCATION], format!("/dashboard/clients/{client_id}?done=noted"));
    let notes = server.record_json(&client_id).await["clinician_notes"].clone();
    assert_eq!(notes[0]["text"], "Called; feeling steadier.");
    assert_eq!(notes[0]["author"], "Dr. Rivera");
}

#[tokio::test]
async fn the_landing_page_lists_the_most_urgent_open_alert_first_and_acknowledges_it() {
    let server = TestServer::start("dashboard-alerts").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0702").await;
    let now = Utc::now();
    // The crisis check-in is the oldest and must still come first, then the
    // urgent blood pressure, then the (newer than the crisis) side effect.
    phone
        .record
        .add_check_in(
            CheckInInput::Instrument(InstrumentKind::Phq9, vec![1, 1, 1, 0, 0, 0, 0, 0, 2]),
            now - Duration::hours(3),
        )
        .unwrap();
    let pack = Pack::default_pack();
    let effect = pack.side_effects[0].id.clone();
    phone
        .record
        .report_side_effect(&pack, &effect, katcore::record::Severity::Severe, now - Duration::hours(1), None)
        .unwrap();
    phone.record.add_vitals(&pack, BloodPressureReading { systolic: 186, diastolic: 104 }, now, None).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (page, token) = browser.page("/dashboard").await;
    // The list, after the filters (whose options name every kind).
    let html = &page[page.find("id=\"alerts-summary\"").unwrap()..];
    let crisis = html.find("PHQ-9 item 9").unwrap();
    let pressure = html.find("Urgent blood pressure").unwrap();
    let effect_at = html.find("Side effect to review").unwrap();
    assert!(crisis < pressure && pressure < effect_at, "crisis, then blood pressure, then the side effect");
    assert!(html.contains("186/104 mmHg"), "the reading is on the alert");
    assert!(html.contains("Item 9 answered 2 of 3"));
    assert!(html.contains("client-0702"));

    // Acknowledge the first one, saying what was done.
    let action = html[crisis..].find("/dashboard/alerts/").map(|i| &html[crisis + i..]).unwrap();
    let action = action.split('"').next().unwrap().to_owned();
    let acked = browser.post(&action, &[("csrf", &token), ("outcome", "spoke_with_client"), ("note", "")]).await;
    assert_eq!(acked.status(), StatusCode::SEE_OTHER);
    let (after, _) = browser.page("/dashboard?done=acknowledged").await;
    assert!(after.contains("Alert acknowledged."));
    let open = after.split("id=\"alerts-summary\"").nth(1).unwrap().split("Recently acknowledged").next().unwrap();
    assert!(!open.contains("PHQ-9 item 9"), "no longer open");
    assert!(after.contains("by Dr. Rivera: Spoke with the client"));

    // The client page draws the reading with both limit lines.
    let (client, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    assert!(client.contains("id=\"bp-plot\""));
    for line in ["Limit 140", "Limit 90", "Urgent 180", "Urgent 120"] {
        assert!(client.contains(&format!(">\n{line}\n<")), "every line labelled: {line}");
    }
    assert!(client.contains("186/104 mmHg (urgent)"));
    assert!(client.contains("id=\"phq9-plot\""));
}

#[tokio::test]
async fn a_clinician_of_another_clinic_sees_nothing_of_this_one() {
    let server = TestServer::start("dashboard-isolation").await;
    let client_id = server.create_client("client-0703").await;
    {
        let storage = server.storage();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let other = katcore_clinic::init_clinic_in(storage.as_ref(), "Other Clinic", "Dr. Other", &key.verifying_key())
            .unwrap();
        set_password(storage.as_ref(), &other.clinician_id, "other", PASSWORD).unwrap();
    }
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in("other", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let (list, token) = browser.page("/dashboard/clients").await;
    assert!(!list.contains("client-0703"));
    let page = browser.get(&format!("/dashboard/clients/{client_id}")).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let export = browser.get(&format!("/dashboard/clients/{client_id}/record.json")).await;
    assert_eq!(export.status(), StatusCode::NOT_FOUND);
    let fhir = browser.get(&format!("/dashboard/clients/{client_id}/fhir.json")).await;
    assert_eq!(fhir.status(), StatusCode::NOT_FOUND);
    let note = browser.post(&format!("/dashboard/clients/{client_id}/notes"), &[("csrf", &token), ("text", "x")]).await;
    assert_eq!(note.status(), StatusCode::NOT_FOUND);
    let schedule = browser
        .post(
            &format!("/dashboard/clients/{client_id}/sessions"),
            &[("csrf", &token), ("date", "2030-01-02"), ("time", "09:00"), ("time_zone", "UTC")],
        )
        .await;
    assert_eq!(schedule.status(), StatusCode::NOT_FOUND);
    assert!(server.record_json(&client_id).await["sessions"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn sessions_end_when_idle_and_when_the_password_changes() {
    let server = TestServer::start("dashboard-expiry").await;
    with_password(&server, "rivera");
    let storage = server.storage();
    let now = Utc::now();
    let hash = katcore_clinic::hash_secret("a cookie value");
    let session = WebSession {
        id_hash: hash,
        clinician_id: server.clinic.clinician_id.clone(),
        csrf_token: "t".into(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::hours(12),
    };
    storage.insert_web_session(&session).unwrap();
    let idle = Duration::minutes(30);
    assert!(storage.web_session(&hash, now + Duration::minutes(29), idle).unwrap().is_some());
    // That request moved its last-seen time on; 29 minutes after it, still live.
    assert!(storage.web_session(&hash, now + Duration::minutes(58), idle).unwrap().is_some());
    assert!(storage.web_session(&hash, now + Duration::minutes(89), idle).unwrap().is_none(), "idle too long");

    let fresh =
        WebSession { id_hash: katcore_clinic::hash_secret("another"), created_at: now, last_seen_at: now, ..session };
    storage.insert_web_session(&fresh).unwrap();
    assert!(storage.web_session(&fresh.id_hash, now, idle).unwrap().is_some());
    set_password(storage.as_ref(), &server.clinic.clinician_id, "rivera", "an entirely new password").unwrap();
    assert!(storage.web_session(&fresh.id_hash, now, idle).unwrap().is_none(), "a new password ends old sessions");

    // Logins are one per clinician across clinics; weak passwords are refused.
    let added = add_clinician_in(storage.as_ref(), &server.clinic.clinic_id, "Nurse N").unwrap();
    assert!(set_password(storage.as_ref(), &added.clinician_id, "RIVERA", PASSWORD).is_err());
    assert!(set_password(storage.as_ref(), &added.clinician_id, "nurse", "short").is_err());
}

#[tokio::test]
async fn every_form_does_what_its_api_twin_does() {
    let server = TestServer::start("dashboard-forms").await;
    with_password(&server, "rivera");
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;

    // Add a client from the list page.
    let (_, token) = browser.page("/dashboard/clients").await;
    let created = browser.post("/dashboard/clients", &[("csrf", &token), ("label", "client-0704")]).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()[LOCATION].to_str().unwrap().to_owned();
    let client_id = location.trim_start_matches("/dashboard/clients/").split('?').next().unwrap().to_owned();
    let (filtered, _) = browser.page("/dashboard/clients?q=0704").await;
    assert!(filtered.contains("client-0704"));
    let (filtered, _) = browser.page("/dashboard/clients?q=nobody").await;
    assert!(!filtered.contains("client-0704"));

    // Schedule (local time in the client's zone), then move.
    let base = format!("/dashboard/clients/{client_id}");
    let schedule =
        [("csrf", token.as_str()), ("date", "2030-03-10"), ("time", "09:30"), ("time_zone", "Europe/Madrid")];
    assert_eq!(browser.post(&format!("{base}/sessions"), &schedule).await.status(), StatusCode::SEE_OTHER);
    let record = server.record_json(&client_id).await;
    let session = record["sessions"][0].clone();
    assert_eq!(session["scheduled_start"], "2030-03-10T09:30:00+01:00");
    assert_eq!(session["scheduled_by"], "clinic");
    let moved = browser
        .post(
            &format!("{base}/sessions/{}", session["id"].as_str().unwrap()),
            &[("csrf", &token), ("date", "2030-03-11"), ("time", "10:00"), ("time_zone", "Europe/Madrid")],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.record_json(&client_id).await["sessions"][0]["scheduled_start"], "2030-03-11T10:00:00+01:00");

    // A field that does not read is a 400 that names it, not a CSRF refusal.
    let missing = browser.post(&format!("{base}/sessions"), &[("csrf", &token), ("date", "2030-03-10")]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.text().await.unwrap().contains("time"));
    let skipped = [("csrf", token.as_str()), ("date", "2030-03-31"), ("time", "02:30"), ("time_zone", "Europe/Madrid")];
    let skipped = browser.post(&format!("{base}/sessions"), &skipped).await;
    assert_eq!(skipped.status(), StatusCode::BAD_REQUEST, "02:30 does not exist in Madrid that night");

    // An enrollment code, shown once, works once; revoking the device stops its token.
    let page = browser.post(&format!("{base}/enrollment-code"), &[("csrf", &token)]).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    let code = html.split("id=\"enrollment-code\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(html.contains("katcore://enroll?server=http%3A%2F%2F127.0.0.1%3A"), "the QR link names this server");
    assert!(html.contains("aria-label=\"Enrollment QR code\""));
    let enrolled = server.enroll(&code, "phone").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    let device: serde_json::Value = enrolled.json().await.unwrap();
    let device_id = device["device_id"].as_str().unwrap();
    let device_token = device["device_token"].as_str().unwrap();
    let revoke = browser.post(&format!("{base}/devices/{device_id}/revoke"), &[("csrf", &token)]).await;
    assert_eq!(revoke.status(), StatusCode::SEE_OTHER);
    let pack = server.as_token(device_token, reqwest::Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(pack.status(), StatusCode::GONE, "a revoked device is refused");

    // Publishing: a bare pack is refused with the reason, a signed one published.
    let bare = Pack::default_pack_json();
    let refused = browser.post("/dashboard/packs", &[("csrf", &token), ("pack", bare)]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("not signed"));
    let mut next: serde_json::Value = serde_json::from_str(bare).unwrap();
    next["version"] = 2.into();
    let signed = server.sign(&next.to_string());
    let published = browser.post("/dashboard/packs", &[("csrf", &token), ("pack", &signed)]).await;
    assert_eq!(published.status(), StatusCode::SEE_OTHER);
    let (packs, _) = browser.page("/dashboard/packs?done=published").await;
    assert!(packs.contains("Pack published.") && packs.contains(" v2</strong>"));

    // The packs page says which version each active device has fetched.
    let tablet = server.new_device(&client_id).await;
    let (listed, _) = browser.page("/dashboard/packs").await;
    assert!(listed.contains("<td>built-in <span class=\"status wait\">not current</span>"), "not fetched yet");
    let fetched = server.as_token(&tablet.token, reqwest::Method::GET, "/v1/pack").send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    let (listed, _) = browser.page("/dashboard/packs").await;
    assert!(listed.contains("<td>v2</td>"), "the tablet has v2 now");
    let devices =
        server.clinician(reqwest::Method::GET, &format!("/v1/clients/{client_id}/devices")).send().await.unwrap();
    let devices: serde_json::Value = devices.json().await.unwrap();
    let tablet_view = devices.as_array().unwrap().iter().find(|d| d["device_id"] == tablet.device_id.as_str()).unwrap();
    assert_eq!(tablet_view["pack_version"], 2, "and the API says so too");
}

#[tokio::test]
async fn a_blocked_starts_alert_shows_the_reading_even_after_the_client_measured_again() {
    let server = TestServer::start("dashboard-reading").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0708").await;
    let pack = Pack::default_pack();
    let now = Utc::now();
    let session =
        phone.record.schedule_session((now + Duration::hours(2)).fixed_offset(), "UTC", Party::Client).unwrap();
    let high = serde_json::json!({"systolic": 182, "diastolic": 124});
    phone.record.record_answer(&pack, &session, "blood_pressure", &high, now - Duration::minutes(30)).unwrap();
    let yes = serde_json::json!(true);
    phone.record.record_answer(&pack, &session, "screen_ketamine_allergy", &yes, now - Duration::minutes(30)).unwrap();
    let evaluation =
        phone.record.try_start_session(&pack, &session, "en", (now - Duration::minutes(29)).fixed_offset()).unwrap();
    assert_eq!(evaluation.status, katcore::checklist::ReadinessStatus::Blocked);
    // Measured again, calmer; an urgent reading no decision covered, given and replaced, too.
    let calm = serde_json::json!({"systolic": 128, "diastolic": 82});
    phone.record.record_answer(&pack, &session, "blood_pressure", &calm, now - Duration::minutes(20)).unwrap();
    let unchecked = serde_json::json!({"systolic": 190, "diastolic": 100});
    phone.record.record_answer(&pack, &session, "blood_pressure", &unchecked, now - Duration::minutes(10)).unwrap();
    phone.record.record_answer(&pack, &session, "blood_pressure", &calm, now - Duration::minutes(5)).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (html, _) = browser.page("/dashboard").await;
    assert!(
        html.contains("182/124 mmHg in the pre-session checklist (urgent limit 180/120)"),
        "the decision's reading"
    );
    assert!(html.contains("190/100 mmHg in the pre-session checklist"), "the replaced reading no decision covered");
    assert!(!html.contains("A reading at or above the urgent limit"), "no alert without its number");
    // The decision's alert names the rest of what was not met, failed
    // screening included, as a clinician would name it (not with the client's questions).
    let decision = html.split("182/124 mmHg in the pre-session checklist").nth(1).unwrap();
    let detail = decision.split("</div>").next().unwrap();
    assert!(detail.starts_with(" (urgent limit 180/120). Also: "), "{detail}");
    assert!(detail.contains("Screening (ketamine allergy): answered yes"), "{detail}");
    assert!(!detail.contains('?'), "no question put to the client: {detail}");
}

#[tokio::test]
async fn ids_the_clinics_packs_do_not_know_are_shown_as_such() {
    let server = TestServer::start("dashboard-pack-ids").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0709").await;
    let pack = Pack::default_pack();
    // A pack this clinic never published (another app's, or a forged one),
    // with a side effect and a checklist item the clinic's pack lacks.
    let mut other = (*pack).clone();
    other.id = "org.example.elsewhere".into();
    other.version = 9;
    let mut effect = other.side_effects[0].clone();
    effect.id = "made_up_effect".into();
    other.side_effects.push(effect);
    let mut item = other.checklist[0].clone();
    item.id = "made_up_item".into();
    other.checklist.push(item);
    let now = Utc::now();
    let session =
        phone.record.schedule_session((now + Duration::hours(3)).fixed_offset(), "UTC", Party::Client).unwrap();
    phone.record.report_side_effect(&other, "made_up_effect", katcore::record::Severity::Severe, now, None).unwrap();
    let evaluation = phone.record.evaluate_session(&other, &session, "en").unwrap();
    phone.record.record_readiness(&session, &evaluation, &other, now).unwrap();
    let evaluation = phone.record.evaluate_session(&pack, &session, "en").unwrap();
    phone.record.record_readiness(&session, &evaluation, &pack, now).unwrap();
    // Accepted (a sync is all or nothing: refusing would strand the rest).
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (alerts, _) = browser.page("/dashboard").await;
    assert!(alerts.contains("made_up_effect (not in the clinic&#39;s pack), severe"), "the severe one still alerts");
    let (page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    assert!(page.contains("org.example.elsewhere v9 (made with a pack this clinic never published)"));
    assert!(page.contains("made_up_item (not in the clinic&#39;s pack): not answered"));
    let built_in = format!("{} v{}", pack.id, pack.version);
    assert!(page.contains(&format!("pack {built_in}. ")), "the built-in pack's decision is shown plainly");
    assert!(!page.contains(&format!("{built_in} (made")));
}

#[tokio::test]
async fn an_unknown_dashboard_address_is_the_dashboards_own_404_with_its_headers() {
    let server = TestServer::start("dashboard-unknown").await;
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    for path in ["/dashboard/nope", "/dashboard/clients/x/y/z", "/dashboard/static/other.css"] {
        let response = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(response.text().await.unwrap().contains("404"), "{path}");
    }
    // The API keeps its JSON 404.
    let response = http.get(server.url("/v1/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
}

#[tokio::test]
async fn bidirectional_controls_in_device_text_cannot_reorder_what_a_nurse_reads() {
    let server = TestServer::start("dashboard-bidi").await;
    with_password(&server, "rivera");
    let client_id = server.create_client("client-0723").await;
    // "\u{202E}exe.live" displays as "evil.exe" where the override is obeyed.
    let enrolled = server.enroll(&server.enrollment_code(&client_id).await, "\u{202E}exe.live").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    for path in [format!("/dashboard/clients/{client_id}"), "/dashboard/packs".to_owned()] {
        let (html, _) = browser.page(&path).await;
        assert!(html.contains("<bdi>exe.live</bdi>"), "{path}: shown in its own order, isolated");
        assert!(!html.contains('\u{202E}'), "{path}: the override is gone");
    }
}

#[tokio::test]
async fn a_long_entry_is_collapsed_behind_show_all() {
    let server = TestServer::start("dashboard-long").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0724").await;
    let long = "x".repeat(100_000);
    let links = katcore::record::JournalLinks::default();
    phone.record.write_journal_entry(&long, &links, Utc::now()).unwrap();
    phone.record.write_journal_entry("A short one.", &links, Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (html, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    let preview = format!("<details><summary><bdi>{}</bdi>…", "x".repeat(400));
    assert!(html.contains(&preview), "the long entry opens on its first 400 characters");
    assert!(html.contains(&long), "and holds the whole text behind them");
    assert!(html.contains("<p><bdi>A short one.</bdi></p>"), "a short one is shown as it is");
    assert!(html.contains("id=\"devices-h\""), "the devices section is still on the page");
}

#[tokio::test]
async fn a_note_posted_after_the_sign_in_expired_is_handed_back_not_lost_without_a_word() {
    let server = TestServer::start("dashboard-expired-note").await;
    with_password(&server, "rivera");
    let client_id = server.create_client("client-0725").await;
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (page, _) = browser.page(&format!("/dashboard/clients/{client_id}")).await;
    let csrf = Browser::csrf(&page);
    // The session ends while the nurse is typing.
    server.sql("DELETE FROM web_sessions").await;
    let note = "Called at 14:10 <b>no answer</b>; will try again at 16:00.";
    let post = |origin: &str| {
        browser
            .http
            .post(format!("{}/dashboard/clients/{client_id}/notes", browser.base))
            .header(COOKIE, browser.cookie_header())
            .header("origin", origin)
            .form(&[("csrf", csrf.as_str()), ("text", note)])
            .send()
    };
    // From another site: told, but no text of theirs is put on the page.
    let elsewhere = post("https://elsewhere.example").await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::UNAUTHORIZED);
    assert!(!elsewhere.text().await.unwrap().contains("Called at 14:10"));
    let response = post(&browser.base.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(html.contains("Your sign-in had expired, so nothing was saved."), "{html}");
    assert!(
        html.contains("Called at 14:10 &#60;b&#62;no answer&#60;/b&#62;; will try again at 16:00."),
        "handed back, escaped: {html}"
    );
    assert!(html.contains("action=\"/dashboard/signin\""), "with the sign-in form");
    let record = server.record_json(&client_id).await;
    assert_eq!(record["clinician_notes"], serde_json::json!([]), "and nothing was saved");
}

#[tokio::test]
async fn with_no_pack_published_a_device_on_the_built_in_pack_is_current() {
    let server = TestServer::start("dashboard-no-pack").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0722").await;
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (html, _) = browser.page("/dashboard/packs").await;
    assert!(html.contains("client-0722"), "the device is listed");
    assert!(html.contains("built-in"));
    assert!(!html.contains("not current"), "nothing newer exists for it to fetch");
}

#[tokio::test]
async fn a_reading_dated_years_ahead_is_placed_at_receipt_and_marked() {
    let server = TestServer::start("dashboard-ahead").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0710").await;
    let pack = Pack::default_pack();
    let now = Utc::now();
    // A phone whose clock ran two years ahead, then a reading from the right clock.
    let ahead = now + Duration::days(730);
    phone.record.add_vitals(&pack, BloodPressureReading { systolic: 190, diastolic: 100 }, ahead, None).unwrap();
    phone.record.add_vitals(&pack, BloodPressureReading { systolic: 128, diastolic: 82 }, now, None).unwrap();
    phone
        .record
        .add_vitals(&pack, BloodPressureReading { systolic: 185, diastolic: 95 }, now - Duration::hours(2), None)
        .unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    // The alert is dated when it was raised, not two years ahead, and so sorts among the others.
    let alerts: serde_json::Value =
        server.clinician(reqwest::Method::GET, "/v1/alerts").send().await.unwrap().json().await.unwrap();
    let times: Vec<DateTime<Utc>> =
        alerts.as_array().unwrap().iter().map(|a| a["at"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(times.len(), 2, "{alerts}");
    assert!(times.iter().all(|at| *at <= Utc::now()), "{times:?}");

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (html, _) = browser.page("/dashboard").await;
    assert!(html.contains("190/100 mmHg"));
    assert!(html.contains(&format!(
        "dated ahead of the clinic&#39;s clock by the client&#39;s device: {}",
        ahead.format("%a %-d %b %Y")
    )));
    let (page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    // Listed at its receipt (today), with the time its device gave.
    let line = page.split("190/100 mmHg (urgent)").next().unwrap().rsplit("<tr>").next().unwrap();
    assert!(line.contains(&now.format("%-d %b %Y").to_string()), "placed at its receipt: {line}");
    assert!(page.contains(&format!(
        "190/100 mmHg (urgent) (dated ahead of the clinic&#39;s clock by the client&#39;s device: {}; shown when received)",
        ahead.format("%a %-d %b %Y %H:%M UTC")
    )));
    assert!(page.contains("128/82 mmHg</td>"), "the real readings are listed as written");
    // The plots say what they leave off, and where it is instead.
    let note = page.split("id=\"not-plotted\">").nth(1).expect("a note on what is not plotted");
    assert!(note.starts_with("Not plotted: 1 entry dated ahead of the clinic&#39;s clock"), "{note}");
}

#[tokio::test]
async fn the_next_sessions_checklist_is_shown_from_the_answers_synced_so_far() {
    let server = TestServer::start("dashboard-readiness").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0705").await;
    let pack = Pack::default_pack();
    let start = (Utc::now() + Duration::days(2)).fixed_offset();
    let session = phone.record.schedule_session(start, "UTC", katcore::record::Party::Client).unwrap();
    phone.record.record_answer(&pack, &session, "monitor_present", &serde_json::json!(false), Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (list, _) = browser.page("/dashboard/clients").await;
    let row = list.split("client-0705").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("status blocked"), "no monitor blocks the next session: {row}");
    let (page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    assert!(page.contains("Checklist from the answers synced so far: <span class=\"status blocked\">"));
    assert!(page.contains("No decision recorded on the client's device yet."));

    // The phone fixes the answer; the list follows the record.
    phone.record.record_answer(&pack, &session, "monitor_present", &serde_json::json!(true), Utc::now()).unwrap();
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let (list, _) = browser.page("/dashboard/clients").await;
    let row = list.split("client-0705").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(row.contains("status incomplete"), "the other items are still unanswered: {row}");
}

#[tokio::test]
async fn long_lists_show_the_most_recent_and_all_on_request() {
    let server = TestServer::start("dashboard-lists").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0706").await;
    let now = Utc::now();
    for day in 0..31 {
        let text = format!("Shared entry number {day:02}.");
        let links = katcore::record::JournalLinks::default();
        phone.record.write_journal_entry(&text, &links, now - Duration::days(day)).unwrap();
    }
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let path = format!("/dashboard/clients/{}", phone.client_id);
    let (page, _) = browser.page(&path).await;
    assert!(page.contains("Shared entry number 00.") && page.contains("Shared entry number 29."));
    assert!(!page.contains("Shared entry number 30."), "the oldest is left for `Show all`");
    assert!(page.contains("The 30 most recent of 31."));
    let (all, _) = browser.page(&format!("{path}?all=1")).await;
    assert!(all.contains("Shared entry number 30."));
    assert!(!all.contains("most recent of"));

    // The FHIR download is the API's bundle; the journal only when asked for.
    let journal_documents = |bundle: &serde_json::Value| {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "DocumentReference")
            .count()
    };
    let fhir = browser.get(&format!("{path}/fhir.json")).await;
    assert_eq!(fhir.status(), StatusCode::OK);
    assert_eq!(fhir.headers()["content-type"], "application/fhir+json");
    assert!(fhir.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let bundle: serde_json::Value = fhir.json().await.unwrap();
    assert_eq!(bundle["type"], "transaction");
    assert_eq!(journal_documents(&bundle), 0);
    let with_journal: serde_json::Value =
        browser.get(&format!("{path}/fhir.json?journal=1")).await.json().await.unwrap();
    assert_eq!(journal_documents(&with_journal), 31);
}

#[tokio::test]
async fn a_session_id_a_hostile_device_chose_cannot_redirect_a_form() {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ObjType, ROOT};
    let server = TestServer::start("dashboard-hostile-id").await;
    with_password(&server, "rivera");
    let mut phone = server.client_with_device("client-0707").await;
    assert_eq!(phone.sync(&server).await, StatusCode::OK);
    // A session whose id is a path to another form's action.
    let hostile = "../../../alerts/x/ack";
    let start = (Utc::now() + Duration::days(3)).fixed_offset().to_rfc3339();
    let mut doc = phone.record.document().clone().with_actor(ActorId::random());
    let before = doc.get_heads();
    doc.transact(|tx| {
        let obj = tx.put_object(ROOT, format!("s:{hostile}"), ObjType::Map)?;
        tx.put(&obj, "start", start.as_str())?;
        tx.put(&obj, "tz", "UTC")?;
        tx.put(&obj, "by", "client")
    })
    .map_err(|failure| failure.error)
    .unwrap();
    let request = katcore::sync::wire::SyncRequest {
        since: phone.server_heads.clone(),
        heads: doc.get_heads(),
        changes: doc.save_after(&before),
    };
    assert_eq!(phone.post(&server, request.encode()).await.status(), StatusCode::OK, "a session a device may write");

    let mut browser = Browser::new(&server);
    browser.sign_in("rivera", PASSWORD).await;
    let (page, _) = browser.page(&format!("/dashboard/clients/{}", phone.client_id)).await;
    assert!(page.contains("/sessions/..%2F..%2F..%2Falerts%2Fx%2Fack\""), "the id is one path segment");
    assert!(!page.contains("/sessions/../"), "never a path of its own");
}
