//! A client's page (`GET /dashboard/clients/{client_id}`): alerts, plots,
//! sessions with their checklists and decisions, the shared journal, notes
//! and devices; and the record as a download.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use katcore::checklist::{Evaluation, ItemState};
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::{CheckInKind, Severity};

use super::alert_rows::{describe_open, explain, rows_of, side_effect_text, sort_alerts, AlertRow};
use super::pages::{Chrome, Done};
use super::plots::{self, Reading, TimeAxis};
use super::session::SignedIn;
use super::words::{readiness_label, shown, shown_for_client};
use super::{render, WebError};
use crate::clinician::client_of_clinic;
// The acknowledgement form (ack_form.html) lists its outcomes.
use crate::alerts::{outcome_words, Outcome};
use crate::state::AppState;
use crate::storage::{AlertAction, AlertActionKind};
use crate::wording::without_bidi_controls;

/// A line of an alert's audit trail in words: "Acknowledged Tue 1 Dec 2026
/// 14:05 EST by Dr. Rivera: Called, no answer".
fn trail_line(state: &AppState, line: &AlertAction) -> String {
    let what = match line.action {
        AlertActionKind::Acknowledged => "Acknowledged",
        AlertActionKind::Reopened => "Reopened",
    };
    let outcome = line.outcome.as_deref().map(|code| format!(": {}", outcome_words(code))).unwrap_or_default();
    format!("{what} {} by {}{outcome}", shown(state, line.at), line.by)
}

/// The note under the plots' heading when they leave entries off:
/// (dated ahead of the clinic's clock, older than the plotted year).
fn not_plotted((ahead, older): (usize, usize)) -> Option<String> {
    let entries = |n: usize| if n == 1 { "1 entry".to_owned() } else { format!("{n} entries") };
    let mut parts = Vec::new();
    if ahead > 0 {
        parts.push(format!(
            "{} dated ahead of the clinic's clock (listed in the tables below at the time the clinic received it, marked)",
            entries(ahead)
        ));
    }
    if older > 0 {
        parts.push(format!("{} older than the plotted year (listed in the tables below)", entries(older)));
    }
    (!parts.is_empty()).then(|| format!("Not plotted: {}.", parts.join("; ")))
}

/// What an evaluation still lacks, item by item, in the pack's words.
fn explain_now(pack: &Pack, evaluation: &Evaluation) -> String {
    // What stands in the way first, then how much is still unanswered.
    let mut parts: Vec<String> = evaluation
        .items
        .iter()
        .filter(|item| !matches!(item.state, ItemState::Pass | ItemState::Unanswered))
        .map(|item| format!("{}: {}", crate::wording::item_name(pack, &item.id), item.message))
        .collect();
    match evaluation.items.iter().filter(|item| item.state == ItemState::Unanswered).count() {
        0 => {}
        1 => parts.push("1 item not answered yet".into()),
        n => parts.push(format!("{n} items not answered yet")),
    }
    if parts.is_empty() {
        "Every item met.".into()
    } else {
        parts.join(" · ")
    }
}

/// A readiness decision as the audit trail shows it.
pub(crate) struct DecisionRow {
    status: &'static str,
    at: String,
    pack: String,
    explanation: String,
}

/// A session on the client page.
pub(crate) struct SessionRow {
    id: String,
    start: String,
    state: &'static str,
    decisions: Vec<DecisionRow>,
    /// Can still be moved (not started, ended or cancelled).
    movable: bool,
    /// For a session still to come: its checklist's status from the answers
    /// synced so far, and what is not met yet.
    checklist: Option<(&'static str, String)>,
    /// The session's zone (the client's), in which the move form's date and time are.
    zone: String,
    /// The start's local date and time, to prefill the move form.
    date: String,
    time: String,
}

/// A device on the client page.
pub(crate) struct DeviceRow {
    id: String,
    label: String,
    enrolled: String,
    last_sync: String,
    /// Its clock against the clinic's at its latest sync ("40 s behind").
    clock: String,
    pack_version: String,
    revoked: Option<String>,
}

/// A dated line (journal entry, note, reading) on the client page.
pub(crate) struct Line {
    at: String,
    text: String,
    /// For a long text, its first [`PREVIEW_CHARS`] characters: the page
    /// shows them and the whole text behind "show all" (`<details>`).
    preview: Option<String>,
    by: String,
}

/// Past this many characters a line's text is collapsed, so that one long
/// entry cannot push the rest of the page (devices, revoke) out of reach.
const PREVIEW_CHARS: usize = 400;

impl Line {
    fn new(at: String, text: String, by: String) -> Line {
        let preview = (text.chars().count() > PREVIEW_CHARS).then(|| text.chars().take(PREVIEW_CHARS).collect());
        Line { at, text, preview, by }
    }
}

/// The most recent lines of a list, and how many it has in all.
pub(crate) struct Listed {
    lines: Vec<Line>,
    total: usize,
}

/// Lines kept of each list of a client's page unless `?all=1` asks for
/// every one (a two-year record's page is then a few hundred KB, not a few MB).
const LIST_LINES: usize = 30;

/// A client's page.
#[derive(Template)]
#[template(path = "client.html")]
pub(crate) struct ClientPage {
    chrome: Chrome,
    client_id: String,
    label: String,
    alerts: Vec<AlertRow>,
    upcoming: Vec<SessionRow>,
    past: Vec<SessionRow>,
    bp_plot: Option<String>,
    readings: Listed,
    phq9_plot: Option<String>,
    gad7_plot: Option<String>,
    scores: Listed,
    side_effect_plot: Option<String>,
    /// What the plots leave off, and where it is listed instead.
    not_plotted: Option<String>,
    side_effects: Listed,
    journal: Listed,
    notes: Listed,
    devices: Vec<DeviceRow>,
    pack: String,
    time_zone: String,
    unreadable: usize,
}

/// `GET /dashboard/clients/{client_id}`.
pub(crate) async fn client(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(client_id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, WebError> {
    let client = client_of_clinic(&state, &signed_in.clinician, &client_id).await?;
    let clinic_id = signed_in.clinician.clinic_id.clone();
    let id = client_id.clone();
    let (open_alerts, mut mine, devices, receipts, trail) = state
        .db(move |s| {
            let open = s.alerts_to_show(&clinic_id, None, 0)?.len();
            let mine = s.alerts_to_show(&clinic_id, Some(&id), 5)?;
            Ok((open, mine, s.devices(&id)?, s.entry_receipts(&id, "")?, s.alert_actions(&id)?))
        })
        .await?;
    sort_alerts(&mut mine);
    let owner = client_id.clone();
    let (view, pack, mut checklists, unpublished) = state
        .with_replica(&client_id, move |replica, storage| {
            let pack = replica.pack(storage)?;
            let record = replica.record();
            // Where each session still to come stands, from the answers synced so far.
            let checklists = record
                .sessions()
                .into_iter()
                .filter(|s| s.cancelled.is_none() && s.ended_at.is_none() && s.started_at.is_none())
                .filter_map(|s| Some((s.id.clone(), record.evaluate_session(&pack, &s.id, &pack.default_locale).ok()?)))
                .collect::<HashMap<String, Evaluation>>();
            let view = record.view(&pack);
            let unpublished = crate::pack_ids::unpublished_decision_packs(storage, &owner, &view)?;
            Ok((view, pack, checklists, unpublished))
        })
        .await?;
    // The alerts are described from the same view the page shows.
    let open = mine.iter().filter(|a| a.acknowledged_at.is_none()).map(|a| (a.id.clone(), a.key.clone(), a.kind, a.at));
    let details = describe_open(&view, &pack, state.time_zone(), open.collect::<Vec<_>>());
    let labels = HashMap::from([(client_id.clone(), client.label.clone())]);
    let acknowledged: HashMap<String, (String, Option<i64>)> =
        mine.iter().map(|a| (a.id.clone(), (a.key.clone(), a.acknowledged_at.map(|t| t.timestamp_millis())))).collect();
    let mut alert_rows = rows_of(&state, mine, &labels, details);
    for row in &mut alert_rows {
        // The note is in the record only, with the acknowledgement it
        // belongs to (not one from before the alert was reopened); the
        // trail is the alerts table's.
        row.note = acknowledged.get(&row.id).and_then(|(key, at)| {
            let item = view.urgent_items.iter().find(|item| item.key == *key)?;
            let ack = item.acknowledged.as_ref().filter(|ack| Some(ack.at.timestamp_millis()) == *at)?;
            ack.note.clone()
        });
        row.trail = trail.iter().filter(|line| line.alert_id == row.id).map(|line| trail_line(&state, line)).collect();
    }
    let now = Utc::now();
    let axis = TimeAxis::around(
        view.vitals
            .iter()
            .map(|v| v.taken_at)
            .chain(view.check_ins.iter().map(|c| c.completed_at))
            .chain(view.side_effects.iter().map(|e| e.reported_at)),
        now,
        state.time_zone().clone(),
    );
    let readings: Vec<Reading> = view
        .vitals
        .iter()
        .map(|v| Reading { at: v.taken_at, systolic: v.reading.systolic, diastolic: v.reading.diastolic })
        .collect();
    let limits = &pack.thresholds;
    let bp_plot = (!readings.is_empty())
        .then(|| {
            plots::blood_pressure(
                &readings,
                (limits.bp_limit.systolic, limits.bp_limit.diastolic),
                (limits.bp_urgent.systolic, limits.bp_urgent.diastolic),
                &axis,
            )
        })
        .flatten();
    let totals = |wanted: InstrumentKind| -> Vec<(DateTime<Utc>, u8)> {
        view.check_ins
            .iter()
            .filter_map(|c| match &c.kind {
                CheckInKind::Instrument { instrument, total, .. } if *instrument == wanted => {
                    Some((c.completed_at, *total))
                }
                _ => None,
            })
            .collect()
    };
    let (phq9, gad7) = (totals(InstrumentKind::Phq9), totals(InstrumentKind::Gad7));
    let phq9_plot = (!phq9.is_empty()).then(|| plots::scores(InstrumentKind::Phq9, &phq9, &axis)).flatten();
    let gad7_plot = (!gad7.is_empty()).then(|| plots::scores(InstrumentKind::Gad7, &gad7, &axis)).flatten();
    let effects: Vec<(DateTime<Utc>, Severity)> =
        view.side_effects.iter().map(|e| (e.reported_at, e.severity)).collect();
    let side_effect_plot = (!effects.is_empty()).then(|| plots::side_effects(&effects, &axis)).flatten();

    let mut upcoming = Vec::new();
    let mut past = Vec::new();
    for s in &view.sessions {
        let session = &s.session;
        let state_word = if session.cancelled.is_some() {
            "cancelled"
        } else if session.ended_at.is_some() {
            "ended"
        } else if session.started_at.is_some() {
            "started"
        } else {
            "scheduled"
        };
        let row = SessionRow {
            id: session.id.clone(),
            start: shown_for_client(&state, session.scheduled_start.to_utc(), &session.time_zone),
            state: state_word,
            decisions: s
                .readiness
                .iter()
                .rev()
                .map(|r| DecisionRow {
                    status: readiness_label(r.status),
                    at: shown(&state, r.evaluated_at),
                    pack: if unpublished.contains(&(r.pack_id.clone(), r.pack_version)) {
                        format!("{} v{} ({})", r.pack_id, r.pack_version, crate::pack_ids::PACK_NOT_PUBLISHED)
                    } else {
                        format!("{} v{}", r.pack_id, r.pack_version)
                    },
                    explanation: explain(&pack, &r.items),
                })
                .collect(),
            movable: state_word == "scheduled",
            checklist: checklists.remove(&session.id).map(|evaluation| {
                let ready_at =
                    evaluation.ready_at.map(|t| format!(" It may start from {}.", shown(&state, t.to_utc())));
                (readiness_label(evaluation.status), explain_now(&pack, &evaluation) + &ready_at.unwrap_or_default())
            }),
            zone: session.time_zone.clone(),
            date: session.scheduled_start.format("%Y-%m-%d").to_string(),
            time: session.scheduled_start.format("%H:%M").to_string(),
        };
        let is_past = session.cancelled.is_some()
            || session.ended_at.is_some()
            || (session.started_at.is_none()
                && session.scheduled_start.with_timezone(&Utc) + katcore::record::UPCOMING_GRACE < now);
        if is_past {
            past.push(row);
        } else {
            upcoming.push(row);
        }
    }
    past.reverse();
    let time_zone =
        view.sessions.last().map_or_else(|| state.time_zone().name().to_owned(), |s| s.session.time_zone.clone());
    let keep = if done.show_all() { usize::MAX } else { LIST_LINES };
    // An entry dated more than the tolerance ahead of the clinic's receipt
    // of it (or of now, for one received before receipts were kept) is
    // placed at its receipt and marked with the time its device gave, so
    // that it holds one line, not the top of the list for years (`clock.rs`).
    let lines_newest_first = |lines: Vec<(String, DateTime<Utc>, String, String)>| -> Listed {
        let total = lines.len();
        let mut placed: Vec<_> = lines
            .into_iter()
            .map(|(key, at, text, by)| {
                let received = receipts.get(&key).copied().unwrap_or(now);
                if crate::clock::ahead(at, received) {
                    (received, crate::clock::marked_ahead(&text, &shown(&state, at)), by)
                } else {
                    (at, text, by)
                }
            })
            .collect();
        placed.sort_by_key(|line| std::cmp::Reverse(line.0));
        let lines =
            placed.into_iter().take(keep).map(|(at, text, by)| Line::new(shown(&state, at), text, by)).collect();
        Listed { lines, total }
    };
    let page = ClientPage {
        chrome: Chrome::new(&state, &signed_in, "clients", open_alerts, &done),
        label: client.label,
        alerts: alert_rows,
        upcoming,
        past,
        bp_plot,
        readings: lines_newest_first(
            view.vitals
                .iter()
                .map(|v| {
                    let mark = if v.urgent { " (urgent)" } else { "" };
                    let text = format!("{}/{} mmHg{mark}", v.reading.systolic, v.reading.diastolic);
                    (format!("v:{}", v.id), v.taken_at, text, String::new())
                })
                .collect(),
        ),
        phq9_plot,
        gad7_plot,
        scores: lines_newest_first(
            view.check_ins
                .iter()
                .map(|c| {
                    let text = match &c.kind {
                        CheckInKind::Instrument { instrument, answers, total, band } => {
                            let name = match instrument {
                                InstrumentKind::Phq9 => {
                                    format!("PHQ-9, item 9: {}", answers.get(8).copied().unwrap_or(0))
                                }
                                InstrumentKind::Gad7 => "GAD-7".to_owned(),
                            };
                            format!("{name}; total {total} ({})", crate::wording::band_name(*band))
                        }
                        CheckInKind::Mood { score } => format!("Mood {score} of 10"),
                    };
                    (format!("c:{}", c.id), c.completed_at, text, String::new())
                })
                .collect(),
        ),
        side_effect_plot,
        not_plotted: not_plotted(axis.left_out()),
        side_effects: lines_newest_first(
            view.side_effects
                .iter()
                .map(|e| (format!("e:{}", e.id), e.reported_at, side_effect_text(&pack, e), String::new()))
                .collect(),
        ),
        journal: lines_newest_first(
            view.journal
                .iter()
                .map(|j| {
                    (format!("j:{}", j.id), j.created_at, without_bidi_controls(&j.text).into_owned(), String::new())
                })
                .collect(),
        ),
        notes: lines_newest_first(
            view.clinician_notes
                .iter()
                .map(|n| {
                    (format!("n:{}", n.id), n.written_at, without_bidi_controls(&n.text).into_owned(), n.author.clone())
                })
                .collect(),
        ),
        devices: devices
            .into_iter()
            .map(|d| DeviceRow {
                enrolled: shown(&state, d.enrolled_at),
                last_sync: d.last_sync_at.map_or_else(|| "never".into(), |t| shown(&state, t)),
                clock: d.clock_offset_ms.map_or_else(|| "not measured".into(), crate::clock::offset_text),
                pack_version: d.pack_version.map_or_else(|| "built-in".into(), |v| format!("v{v}")),
                revoked: d.revoked_at.map(|t| shown(&state, t)),
                id: d.id,
                label: without_bidi_controls(&d.label).into_owned(),
            })
            .collect(),
        pack: match &view.assigned_pack {
            Some(assigned) => {
                format!("{} v{} assigned; read with {} v{}", assigned.pack_id, assigned.version, pack.id, pack.version)
            }
            None => format!("read with {} v{}", pack.id, pack.version),
        },
        time_zone,
        unreadable: view.unreadable_entries.len(),
        client_id,
    };
    Ok(render(&page))
}

/// Whether the FHIR download carries the shared journal (`?journal=1`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct FhirDownload {
    journal: Option<String>,
}

/// `GET /dashboard/clients/{client_id}/fhir.json`: the client's FHIR R4
/// bundle as `GET /v1/clients/{client_id}/fhir` answers it (docs/fhir.md),
/// as a download; with the shared journal on `?journal=1`.
pub(crate) async fn fhir_json(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(client_id): Path<String>,
    Query(query): Query<FhirDownload>,
) -> Result<Response, WebError> {
    let options = crate::fhir::FhirOptions { include_journal: query.journal.is_some() };
    let bundle = crate::fhir::client_bundle(&state, &signed_in.clinician, &client_id, options).await?;
    let body = serde_json::to_vec_pretty(&bundle).map_err(|e| WebError::from(crate::error::ApiError::internal(e)))?;
    Ok(download(body, crate::fhir::FHIR_JSON, &format!("fhir-{client_id}.json")))
}

/// `body` as an attachment named `file`.
fn download(body: Vec<u8>, content_type: &'static str, file: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    ([(CONTENT_TYPE, HeaderValue::from_static(content_type)), (CONTENT_DISPOSITION, disposition)], body).into_response()
}

/// `GET /dashboard/clients/{client_id}/record.json`: the record as the API
/// answers it, as a download.
pub(crate) async fn record_json(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, WebError> {
    client_of_clinic(&state, &signed_in.clinician, &client_id).await?;
    let view = state
        .with_replica(&client_id, |replica, storage| {
            let pack = replica.pack(storage)?;
            Ok(replica.record().view(&pack))
        })
        .await?;
    let body = serde_json::to_vec_pretty(&view).map_err(|e| WebError::from(crate::error::ApiError::internal(e)))?;
    Ok(download(body, "application/json", &format!("record-{client_id}.json")))
}
