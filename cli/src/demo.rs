//! `katctl demo`: a whole at-home session, offline and back online.
//!
//! A clinic server starts in-process on loopback (or `--clinic URL` is
//! used), a client's phone and tablet enroll, the clinic schedules a
//! session, the phone goes offline and the client works through the
//! checklist (wait → blocked and urgent → ready), takes the session, reports
//! a side effect and journals on both devices while the clinic edits too;
//! then connectivity returns and everything converges. Every figure printed
//! comes from the real core, server and sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};
use katcore::checklist::{Answer, Evaluation, ItemState};
use katcore::device::DeviceError;
use katcore::pack::Pack;
use katcore::record::{JournalLinks, Severity};
use katcore::store::StoreKey;
use katcore::sync::{http_client, SyncReport, SyncTrigger};
use katcore::zone::Zone;
use katcore_clinic::{init_clinic, serve, ClinicianClient, Config, ServerHandle};
use serde_json::{json, Value};

use crate::ui::Ui;

/// `katctl demo` options.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Plain output for logs: no colour, no pacing, no spinner.
    #[arg(long)]
    plain: bool,
    /// Keep the databases (and their keys) in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run the device part against a separately started clinic server.
    #[arg(long, value_name = "URL", requires = "token")]
    clinic: Option<String>,
    /// A clinician token for `--clinic` (from `katctl clinic init`); also `KATCORE_CLINICIAN_TOKEN`.
    #[arg(long, env = "KATCORE_CLINICIAN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The client's IANA time zone.
    #[arg(long, default_value = "America/New_York", value_parser = parse_tz)]
    tz: Zone,
    /// After the demo, keep the clinic server running and print its dashboard's address and a
    /// sign-in for it; stop with Ctrl-C.
    #[arg(long, conflicts_with = "clinic")]
    keep_running: bool,
}

fn parse_tz(name: &str) -> Result<Zone> {
    katcore::aftercare::parse_time_zone(name).map_err(|e| e.to_string())
}

/// A device in the demo: core's device (the same aggregate the apps use), named.
struct Device {
    name: &'static str,
    device: katcore::device::Device,
    path: PathBuf,
}

type Result<T> = std::result::Result<T, String>;

/// Runs the demo.
pub(crate) fn run(args: DemoArgs) -> Result<()> {
    let tz = args.tz.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(demo(args, tz))
}

async fn demo(args: DemoArgs, tz: Zone) -> Result<()> {
    let ui = Ui::new(args.plain);
    let keep = args.data_dir.is_some();
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("katcore-demo-{}", katcore::record::new_id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let pack = Pack::default_pack();

    outln!("katcore demo — an at-home KAT session, offline and back online");

    // 1. Clinic, client, devices.
    ui.step(1, "A clinic, a client and the client's phone and tablet");
    let (url, token, server, clinic_db, clinician_id) = start_clinic(&ui, &args, &dir).await?;
    let api = ClinicianClient::new(&url, &token);
    let client_id = api.create_client("client-0427").await.map_err(|e| e.to_string())?;
    ui.good(&format!("Clinic server on {url}; client client-0427 created"));
    let mut rows = Vec::new();
    let mut devices = Vec::new();
    for name in ["phone", "tablet"] {
        let code = api.enrollment_code(&client_id).await.map_err(|e| e.to_string())?;
        let device = ui.busy(&format!("{name} enrolling"), enroll_device(name, &url, &code, &dir, keep)).await?;
        rows.push(vec![name.to_owned(), code, "enrolled; its store is encrypted at rest".to_owned()]);
        devices.push(device);
    }
    ui.table(&["device", "one-time code", "result"], &rows);
    let (phone, tablet) = (&devices[0], &devices[1]);

    // 2. A session for tomorrow afternoon.
    ui.step(2, "The clinic schedules a session for tomorrow afternoon");
    let today = Utc::now().with_timezone(&tz).date_naive();
    let start = local(&tz, today + Duration::days(1), 15, 0)?;
    let next_start = start + Duration::days(14);
    let session = api.schedule_session(&client_id, &start.to_rfc3339(), tz.name()).await.map_err(|e| e.to_string())?;
    let next_session =
        api.schedule_session(&client_id, &next_start.to_rfc3339(), tz.name()).await.map_err(|e| e.to_string())?;
    let report = sync(&ui, phone).await?;
    ui.good(&format!("Phone synced: {}", describe(&report)));
    let upcoming = phone.device.upcoming(Utc::now());
    let rows: Vec<Vec<String>> = upcoming
        .iter()
        .map(|s| vec![when(&s.scheduled_start), format!("{:?}", s.scheduled_by).to_lowercase(), s.time_zone.clone()])
        .collect();
    ui.table(&["upcoming session", "scheduled by", "time zone"], &rows);
    let titles: Vec<&str> = pack.guidelines.iter().map(|s| pack.text(&s.title, "en")).collect();
    ui.say(&format!("Guidelines from the clinic's pack: {}.", titles.join(" · ")));
    let plan = katcore::checklist::evaluate(&pack, start, &katcore::checklist::Answers::new(), "en");
    // In the order they will fire (the evaluation lists them in pack order).
    let mut reminders: Vec<&katcore::checklist::Reminder> = plan.reminders.iter().collect();
    reminders.sort_by_key(|r| r.at);
    let rows: Vec<Vec<String>> = reminders.iter().map(|r| vec![when(&r.at), r.message.clone()]).collect();
    ui.say("Reminders the phone schedules as local notifications, in the order they fire:");
    ui.table(&["at", "reminder"], &rows);

    // 3. Offline checklist.
    ui.step(3, "Offline, on the day: the pre-session checklist");
    for device in &devices {
        device.device.set_online(false);
    }
    let mut clock = start - Duration::minutes(100);
    ui.say(&format!("The phone is in airplane mode. It is {} and the client answers the checklist.", when(&clock)));
    let mut answers = good_answers(start);
    answers["last_solid_food"] = json!((start - Duration::minutes(120)).to_rfc3339());
    for (item, value) in answers.as_object().into_iter().flatten() {
        answer(phone, &session, item, value, clock)?;
    }
    let e = try_start(&ui, phone, &session, clock)?;
    let ready_at = e.ready_at.ok_or("the checklist should have said when the session can start")?;
    phone.device.reschedule(&session, ready_at.to_utc()).map_err(|e| e.to_string())?;
    ui.say(&format!("The client moves the start to {}, as the checklist suggests.", when(&ready_at)));

    clock += Duration::minutes(25);
    let high = json!({"systolic": 182, "diastolic": 114});
    answer(phone, &session, "blood_pressure", &high, clock)?;
    ui.say(&format!("{}: blood pressure 182/114.", when(&clock)));
    try_start(&ui, phone, &session, clock)?;

    clock += Duration::minutes(15);
    let calm = json!({"systolic": 128, "diastolic": 82});
    answer(phone, &session, "blood_pressure", &calm, clock)?;
    ui.say(&format!("{}: after resting, a second reading of 128/82.", when(&clock)));
    show_evaluation(&ui, &phone.device.evaluate(&session, "en").map_err(|e| e.to_string())?);

    // 4. The session and after, still offline.
    ui.step(4, "The session and the evening after (still offline)");
    let started = ready_at;
    let ended = started + Duration::minutes(130);
    let e = try_start(&ui, phone, &session, started)?;
    if e.status != katcore::checklist::ReadinessStatus::Ready {
        return Err("the session should have started once the checklist was ready".into());
    }
    phone.device.end(&session, ended.to_utc()).map_err(|e| e.to_string())?;
    ui.say(&format!("Session from {} to {}.", when(&started), when(&ended)));
    let reported = ended + Duration::minutes(20);
    phone
        .device
        .report_side_effect("nausea_vomiting", Severity::Moderate, Some(&session), reported.to_utc())
        .map_err(|e| e.to_string())?;
    ui.warn(&format!("{}: side effect reported — nausea, moderate.", when(&reported)));
    let after = katcore::checklist::BloodPressureReading { systolic: 134, diastolic: 86 };
    phone.device.record_blood_pressure(after, Some(&session), reported.to_utc()).map_err(|e| e.to_string())?;
    ui.say(&format!("{}: blood pressure after the session, 134/86.", when(&reported)));
    let aftercare = phone.device.aftercare(&session, "en").map_err(|e| e.to_string())?;
    ui.say(&format!("No driving until {} (after a full night's sleep).", when(&aftercare.driving_ok_from)));
    let check_ins: Vec<Vec<String>> = aftercare
        .side_effect_check_ins
        .iter()
        .map(|p| {
            let note = match (&p.moved_from, p.optional) {
                (Some(from), _) => format!("moved from {} (quiet hours)", when(from)),
                (None, true) => "optional: for the monitor, if awake".to_owned(),
                (None, false) => String::new(),
            };
            vec![when(&p.at), shorten(&p.text, 48), note]
        })
        .collect();
    ui.say("Side-effect check-ins, none in the client's night:");
    ui.table(&["due", "check-in", ""], &check_ins);
    let rows: Vec<Vec<String>> =
        aftercare.integration.iter().map(|p| vec![when(&p.at), shorten(&p.text, 72)]).collect();
    ui.say("Integration prompts for the next two weeks:");
    ui.table(&["due", "prompt"], &rows);
    let evening = ended + Duration::minutes(150);
    let first_prompt = aftercare.integration.first().map(|p| p.id.clone());
    let links = JournalLinks { prompt_id: first_prompt, session_id: Some(session.clone()) };
    let private_text = "Something I am not ready to share yet: I felt my father's voice in the music.";
    phone.device.write_journal(private_text, &links, true, evening.to_utc()).map_err(|e| e.to_string())?;
    let shared_text = "The colours came back to the room slowly. I want to keep the calm of the last hour.";
    tablet
        .device
        .write_journal(shared_text, &JournalLinks::default(), false, (evening + Duration::minutes(5)).to_utc())
        .map_err(|e| e.to_string())?;
    ui.good("Journal: a private entry on the phone, a shared one written at the same time on the tablet.");
    let morning = ended + Duration::hours(15);
    for (instrument, answers) in [
        (katcore::pack::InstrumentKind::Phq9, vec![1, 1, 1, 1, 0, 1, 0, 0, 0]),
        (katcore::pack::InstrumentKind::Gad7, vec![1, 1, 1, 0, 1, 0, 0]),
    ] {
        let result = phone.device.check_in(instrument, answers, "en", morning.to_utc()).map_err(|e| e.to_string())?;
        let name = if instrument == katcore::pack::InstrumentKind::Phq9 { "PHQ-9" } else { "GAD-7" };
        ui.say(&format!("{}: {name} check-in, total {}.", when(&morning), result.outcome.score.total));
    }

    // 5. The clinic edits too.
    ui.step(5, "Meanwhile at the clinic");
    let moved = next_start + Duration::days(2);
    api.move_session(&client_id, &next_session, &moved.to_rfc3339()).await.map_err(|e| e.to_string())?;
    api.add_note(&client_id, "Integration call booked for Thursday.").await.map_err(|e| e.to_string())?;
    ui.say(&format!("Dr. Rivera moves the next session to {} and adds a note.", when(&moved)));

    // 6. Back online.
    ui.step(6, "Connectivity returns");
    let mut rows = Vec::new();
    for device in [phone, tablet, phone] {
        device.device.set_online(true);
        let report = sync(&ui, device).await?;
        rows.push(vec![
            device.name.to_owned(),
            report.round_trips.to_string(),
            report.bytes_sent.to_string(),
            report.bytes_received.to_string(),
            if report.received_changes { "yes" } else { "no" }.to_owned(),
        ]);
    }
    ui.table(&["sync", "round trips", "bytes up", "bytes down", "received changes"], &rows);
    let alerts = api.alerts("open").await.map_err(|e| e.to_string())?;
    let clinic_view = api.record(&client_id).await.map_err(|e| e.to_string())?;
    for alert in &alerts {
        let kind = alert["kind"].as_str().unwrap_or_default().replace('_', " ");
        let at = alert["at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| when(&t.with_timezone(&tz).fixed_offset()))
            .unwrap_or_default();
        ui.stop(&format!("Clinic alert: {kind} at {at} — listed first for the care team"));
        let raised = alert["at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        let dated = alert["key"].as_str().and_then(|key| decision_time(&clinic_view, key));
        if dated.is_some() && raised != dated {
            // The demo's phone lives in tomorrow; the clinic does not take a future time as written.
            ui.say("  (dated when it reached the clinic: the phone's clock is ahead of the clinic's)");
        }
        if let Some(reading) = alert["key"].as_str().and_then(|key| decision_reading(&clinic_view, key)) {
            ui.say(&format!(
                "  for the reading {reading}: kept in the record though the client measured again, and on the alert"
            ));
        }
    }
    let (phone_view, tablet_view) = (phone.device.read(|r| r.to_json()), tablet.device.read(|r| r.to_json()));
    if phone_view == clinic_view && tablet_view == clinic_view {
        let decisions =
            clinic_view["sessions"].as_array().map_or(0, |s| s.iter().map(|s| count(s, "readiness")).sum::<usize>());
        ui.good(&format!(
            "All three views agree: {}, {}, {}, {}, {}.",
            plural(count(&clinic_view, "sessions"), "session", "sessions"),
            plural(count(&clinic_view, "journal"), "shared journal entry", "shared journal entries"),
            plural(count(&clinic_view, "side_effects"), "side effect", "side effects"),
            plural(count(&clinic_view, "clinician_notes"), "clinician note", "clinician notes"),
            plural(decisions, "readiness decision", "readiness decisions"),
        ));
    } else {
        return Err("the phone, the tablet and the clinic disagree after syncing".into());
    }
    let private_on_phone = phone.device.journal().iter().any(|e| e.private && e.text == private_text);
    let private_at_clinic = clinic_view.to_string().contains(private_text);
    if private_on_phone && !private_at_clinic {
        ui.good("The private entry is on the phone only; the clinic never received it.");
    } else {
        return Err("the private entry leaked or was lost".into());
    }
    let next = tablet.device.session(&next_session).map(|s| when(&s.scheduled_start)).unwrap_or_default();
    ui.good(&format!("The tablet shows the moved session: {next}."));

    // 7. Summary.
    ui.step(7, "Summary");
    ui.say(&format!(
        "Checklist: wait → blocked (urgent) → ready, every start through the gate; {}; {} converged with the clinic.",
        plural(alerts.len(), "open clinic alert", "open clinic alerts"),
        plural(devices.len(), "device", "devices"),
    ));
    // The clinic measured each device's clock at its syncs (docs/sync-protocol.md, "The device's clock").
    let listed = api.devices(&client_id).await.map_err(|e| e.to_string())?;
    for device in &devices {
        let offset = listed
            .iter()
            .find(|d| d["label"] == device.name)
            .and_then(|d| d["clock_offset_ms"].as_i64())
            .map_or_else(|| "clock not measured".to_owned(), clock_words);
        ui.say(&format!("{:<7} {} ({offset})", device.name, device.path.display()));
    }
    match &clinic_db {
        Some(db) => ui.say(&format!("clinic  {}", db.display())),
        None => ui.say(&format!("clinic  {url}")),
    }
    if keep {
        ui.say("The device keys are in <device>.key beside each store; an app keeps them in the OS keystore.");
    }
    if let (Some(server), Some(db), Some(clinician_id)) = (&server, &clinic_db, &clinician_id) {
        if args.keep_running {
            let password = dashboard_sign_in(db, clinician_id)?;
            ui.step(8, "The care team's dashboard");
            ui.say(&format!("Open {}/dashboard", server.url()));
            ui.say(&format!("Sign in as `rivera` with the password {password}"));
            ui.say("The server keeps running until Ctrl-C.");
            tokio::signal::ctrl_c().await.map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
        }
    }
    if let Some(server) = server {
        server.shutdown().await.map_err(|e| format!("stopping the clinic server: {e}"))?;
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
        ui.say("(Temporary files removed; pass --data-dir DIR to keep them.)");
    }
    outln!();
    outln!("demo finished: ok");
    Ok(())
}

/// The clinic's URL and a clinician token; for a clinic started here, its
/// server, database and the clinician's id.
type Clinic = (String, String, Option<ServerHandle>, Option<PathBuf>, Option<String>);

async fn start_clinic(ui: &Ui, args: &DemoArgs, dir: &Path) -> Result<Clinic> {
    if let (Some(url), Some(token)) = (&args.clinic, &args.token) {
        return Ok((url.trim_end_matches('/').to_owned(), token.clone(), None, None, None));
    }
    let db = dir.join("clinic.db");
    let init = init_clinic(&db, "Riverside KAT Clinic", "Dr. Rivera").map_err(|e| e.to_string())?;
    // The dashboard shows every time in the clinic's zone: the demo's clinic
    // is where its client is.
    let config = Config { time_zone: args.tz.name().to_owned(), ..Config::local(&db) };
    let server = ui.busy("starting the clinic server", serve(config)).await.map_err(|e| e.to_string())?;
    Ok((server.url(), init.clinician_token, Some(server), Some(db), Some(init.clinician_id)))
}

/// Gives the demo's clinician the dashboard login `rivera` with a fresh
/// random password, and returns the password.
fn dashboard_sign_in(db: &Path, clinician_id: &str) -> Result<String> {
    use base64::Engine as _;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
    let storage = katcore_clinic::SqliteStorage::open(db).map_err(|e| e.to_string())?;
    katcore_clinic::set_password(&storage, clinician_id, "rivera", &password).map_err(|e| e.to_string())?;
    Ok(password)
}

/// A device's clock offset as the clinic measured it, in words.
fn clock_words(offset_ms: i64) -> String {
    let seconds = offset_ms.unsigned_abs() as f64 / 1e3;
    match offset_ms {
        -999..=999 => "clock in step with the clinic's".to_owned(),
        1000.. => format!("clock {seconds:.1} s ahead of the clinic's"),
        _ => format!("clock {seconds:.1} s behind the clinic's"),
    }
}

async fn enroll_device(name: &'static str, url: &str, code: &str, dir: &Path, keep: bool) -> Result<Device> {
    let key: [u8; 32] = rand::random();
    let path = dir.join(format!("{name}.db"));
    if keep {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(dir.join(format!("{name}.key")), hex).map_err(|e| format!("{name}.key: {e}"))?;
    }
    let store_key = StoreKey::from_bytes(&key).map_err(|e| e.to_string())?;
    let http = http_client(None).map_err(|e| e.to_string())?;
    let device = katcore::device::Device::open(&path, &store_key, Some(Arc::new(http))).map_err(|e| e.to_string())?;
    device.enroll(url, code, name).await.map_err(|e| format!("{name}: {e}"))?;
    Ok(Device { name, device, path })
}

async fn sync(ui: &Ui, device: &Device) -> Result<SyncReport> {
    ui.busy(&format!("{} syncing", device.name), device.device.sync(SyncTrigger::User))
        .await
        .map_err(|e| format!("{}: {e}", device.name))
}

/// Records one answer given in the checklist's JSON form, typed against the pack in force.
fn answer(device: &Device, session: &str, item: &str, value: &Value, at: DateTime<FixedOffset>) -> Result<()> {
    let answer = Answer::parse_for(&device.device.pack(), item, value).map_err(|e| e.to_string())?;
    device.device.answer(session, item, answer.as_ref(), at.to_utc()).map_err(|e| e.to_string())
}

/// The client taps "start" at `at`: the device's gate evaluates afresh, records
/// the decision (the clinic sees it) and starts the session only when ready.
fn try_start(ui: &Ui, device: &Device, session: &str, at: DateTime<FixedOffset>) -> Result<Evaluation> {
    let evaluation = match device.device.start(session, "en", at.to_utc()) {
        Ok(evaluation) => evaluation,
        Err(DeviceError::NotReady { evaluation, .. }) => *evaluation,
        Err(other) => return Err(other.to_string()),
    };
    ui.say(&format!(
        "{}: the client taps Start — {}.",
        when(&at),
        if evaluation.status.as_str() == "ready" {
            "the session starts"
        } else {
            "refused, and the decision is recorded"
        }
    ));
    show_evaluation(ui, &evaluation);
    Ok(evaluation)
}

fn show_evaluation(ui: &Ui, e: &Evaluation) {
    let mut line = format!("Readiness: {}", ui.status(e.status.as_str()));
    if let Some(ready_at) = e.ready_at {
        line.push_str(&format!(" — the earliest start is {}", when(&ready_at)));
    }
    if e.urgent {
        line.push_str(" — URGENT: the clinic will be alerted");
    }
    ui.say(&line);
    for item in e.items.iter().filter(|i| matches!(i.state, ItemState::Fail | ItemState::Wait | ItemState::Unanswered))
    {
        ui.say(&format!("  {:<18} {}", item.id, item.message));
    }
    let passed = e.items.iter().filter(|i| i.state == ItemState::Pass).count();
    ui.say(&format!("  ({passed} of {} items pass)", e.items.len()));
}

/// Answers under which the default pack's checklist is ready for `start`.
fn good_answers(start: DateTime<FixedOffset>) -> Value {
    let mut answers = json!({
        "last_solid_food": (start - Duration::hours(4)).to_rfc3339(),
        "last_liquid": (start - Duration::minutes(90)).to_rfc3339(),
        "last_benzodiazepine": "none",
        "last_stimulant": "none",
        "last_alcohol": (start - Duration::days(3)).to_rfc3339(),
        "blood_pressure": {"systolic": 126, "diastolic": 80},
        "monitor_present": true,
        "safe_setting": true,
        "no_driving_plan": true,
        "antihypertensive_taken": "not_prescribed",
        "intention_set": "Stay curious about whatever comes up.",
    });
    for question in &Pack::default_pack().screening {
        answers[&question.id] = json!(false);
    }
    answers
}

fn local(tz: &Zone, date: chrono::NaiveDate, hour: u32, minute: u32) -> Result<DateTime<FixedOffset>> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).ok_or("bad time")?;
    tz.from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| "that local time does not exist in the time zone".to_owned())
}

fn when(t: &DateTime<FixedOffset>) -> String {
    t.format("%a %d %b %H:%M").to_string()
}

fn describe(report: &SyncReport) -> String {
    format!(
        "{}, {} bytes up, {} bytes down{}",
        plural(report.round_trips as usize, "round trip", "round trips"),
        report.bytes_sent,
        report.bytes_received,
        report.pack_activated.as_ref().map(|p| format!(", pack {} v{} activated", p.id, p.version)).unwrap_or_default()
    )
}

/// The blood pressure a readiness decision (`r:<id>`) was made from, from
/// the clinic's record view: the answer entries it names (format 2).
fn decision_reading(view: &serde_json::Value, key: &str) -> Option<String> {
    let id = key.strip_prefix("r:")?;
    let sessions = view["sessions"].as_array()?;
    sessions.iter().find_map(|session| {
        let decision = session["readiness"].as_array()?.iter().find(|d| d["id"] == id)?;
        let named = decision["answers"].as_array()?;
        session["answer_history"].as_array()?.iter().filter(|a| named.contains(&a["id"])).find_map(|answer| {
            let value = &answer["value"];
            Some(format!("{}/{}", value["systolic"].as_u64()?, value["diastolic"].as_u64()?))
        })
    })
}

/// When the readiness decision `r:<id>` says it was made.
fn decision_time(view: &serde_json::Value, key: &str) -> Option<DateTime<FixedOffset>> {
    let id = key.strip_prefix("r:")?;
    let decision = view["sessions"]
        .as_array()?
        .iter()
        .find_map(|session| session["readiness"].as_array()?.iter().find(|d| d["id"] == id).cloned())?;
    DateTime::parse_from_rfc3339(decision["evaluated_at"].as_str()?).ok()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn count(value: &Value, part: &str) -> usize {
    value[part].as_array().map_or(0, Vec::len)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{}…", cut.trim_end())
}
