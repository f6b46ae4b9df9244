//! Alerts as the pages list them: each kind's urgency and words, and what
//! the record holds behind each alert (the reading, the score and its
//! baseline, the side effect, the items not met), described from the
//! client's record view.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use katcore::checklist::ItemState;
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::{score_baseline_among, CheckInKind, RecordView, Severity, SideEffectReport, UrgentKind};
use katcore::zone::Zone;

use super::words::{readiness_label, shown, shown_in};
use crate::alerts::outcome_words;
use crate::state::AppState;
use crate::storage::{Alert, URGENT_KINDS};
use crate::wording::alert_kind_label;

/// How urgent a kind of alert is: lower first (its place in [`URGENT_KINDS`]).
pub(crate) fn priority(kind: UrgentKind) -> u8 {
    URGENT_KINDS.iter().position(|k| *k == kind).and_then(|i| u8::try_from(i).ok()).unwrap_or(u8::MAX)
}

/// The CSS class of a kind's badge.
pub(super) fn kind_class(kind: UrgentKind) -> &'static str {
    match priority(kind) {
        0 | 1 => "crisis",
        2..=4 => "urgent",
        _ => "review",
    }
}

/// One alert as the pages list it.
pub(crate) struct AlertRow {
    pub(super) id: String,
    pub(super) class: &'static str,
    pub(super) what: &'static str,
    pub(super) detail: String,
    pub(super) client_id: String,
    pub(super) client_label: String,
    pub(super) at: String,
    /// `datetime` attribute value (RFC 3339).
    pub(super) at_iso: String,
    /// "Tue 1 Dec 2026 14:05 EST by Dr. Rivera: Called, no answer".
    pub(super) acknowledged: Option<String>,
    /// The acknowledgement's note, where the page shows it (from the record).
    pub(super) note: Option<String>,
    /// Its audit trail, oldest first, where the page shows it.
    pub(super) trail: Vec<String>,
}

/// The urgent item behind an alert, in words, from the record (the keys
/// are those of docs/record-format.md); empty when the record does not
/// hold it (any more).
fn describe(view: &RecordView, pack: &Pack, zone: &Zone, key: &str, kind: UrgentKind) -> String {
    match kind {
        UrgentKind::UrgentBloodPressure => {
            if let Some(v) = key.strip_prefix("v:").and_then(|id| view.vitals.iter().find(|v| v.id == id)) {
                return format!(
                    "{}/{} mmHg (urgent limit {}/{})",
                    v.reading.systolic,
                    v.reading.diastolic,
                    pack.thresholds.bp_urgent.systolic,
                    pack.thresholds.bp_urgent.diastolic
                );
            }
            let reading = checklist_reading(view, pack, key)
                .unwrap_or_else(|| "A reading at or above the urgent limit, in the pre-session checklist".into());
            // A decision's other items not met (failed screening among them) come with it.
            let others = key
                .strip_prefix("r:")
                .and_then(|id| view.sessions.iter().flat_map(|s| &s.readiness).find(|r| r.id == id))
                .map(|decision| {
                    let readings = blood_pressure_items(pack);
                    let rest: Vec<(String, ItemState)> =
                        decision.items.iter().filter(|(id, _)| !readings.contains(&id.as_str())).cloned().collect();
                    explain(pack, &rest)
                })
                .filter(|rest| rest != EVERY_ITEM_MET);
            match others {
                Some(others) => format!("{reading}. Also: {others}"),
                None => reading,
            }
        }
        UrgentKind::CrisisCheckIn => key
            .strip_prefix("c:")
            .and_then(|id| view.check_ins.iter().find(|c| c.id == id))
            .and_then(|c| match &c.kind {
                CheckInKind::Instrument { answers, total, band, .. } => Some(format!(
                    "Item 9 answered {} of 3; total {total} ({})",
                    answers.get(8).copied().unwrap_or(0),
                    crate::wording::band_name(*band)
                )),
                CheckInKind::Mood { .. } => None,
            })
            .unwrap_or_default(),
        UrgentKind::SideEffect => key
            .strip_prefix("e:")
            .and_then(|id| view.side_effects.iter().find(|e| e.id == id))
            .map(|e| side_effect_text(pack, e))
            .unwrap_or_default(),
        UrgentKind::ChecklistBlocked => key
            .strip_prefix("r:")
            .and_then(|id| view.sessions.iter().flat_map(|s| &s.readiness).find(|r| r.id == id))
            .map(|r| explain(pack, &r.items))
            .unwrap_or_default(),
        UrgentKind::SevereScore | UrgentKind::ScoreWorsened => key
            .strip_prefix("c:")
            .and_then(|id| view.check_ins.iter().find(|c| c.id == id))
            .and_then(|c| match &c.kind {
                CheckInKind::Instrument { instrument, total, band, .. } => Some(format!(
                    "{} total {total} ({}){}",
                    crate::wording::instrument_name(*instrument),
                    crate::wording::band_name(*band),
                    baseline_text(view, zone, *instrument, &c.id)
                )),
                CheckInKind::Mood { .. } => None,
            })
            .unwrap_or_default(),
        UrgentKind::StartedNotReady => key
            .strip_prefix("s:")
            .and_then(|rest| rest.strip_suffix("/started"))
            .and_then(|id| view.sessions.iter().find(|s| s.session.id == id))
            .map(|s| match s.readiness.last() {
                Some(last) => format!(
                    "Latest decision before it: {} (pack {} v{})",
                    readiness_label(last.status),
                    last.pack_id,
                    last.pack_version
                ),
                None => "No checklist decision was recorded".into(),
            })
            .unwrap_or_default(),
    }
}

/// ", baseline 6 on 2026-05-01" for a check-in that is not the client's
/// first with `instrument` (the baseline the alert was derived from);
/// empty for the first.
fn baseline_text(view: &RecordView, zone: &Zone, instrument: InstrumentKind, id: &str) -> String {
    match score_baseline_among(&view.check_ins, instrument) {
        Some(baseline) if baseline.id != id => {
            let day = baseline.completed_at.with_timezone(zone).format("%-d %b %Y");
            format!(", baseline {} on {day}", baseline.total)
        }
        _ => String::new(),
    }
}

/// The checklist reading behind an urgent blood-pressure item, in words:
/// for a decision (`r:<id>`), the blood-pressure answer it names (or, for a
/// decision older than format 2, the latest given before it); for an answer
/// (`s:<session>/a:<item>@<at>`), the answer given at that instant. Every
/// answer is kept, so a reading the client later replaced still shows.
fn checklist_reading(view: &RecordView, pack: &Pack, key: &str) -> Option<String> {
    let bp_items = blood_pressure_items(pack);
    let answer =
        if let Some(id) = key.strip_prefix("r:") {
            let (session, decision) =
                view.sessions.iter().find_map(|s| s.readiness.iter().find(|r| r.id == id).map(|r| (s, r)))?;
            let mut named = decision
                .answers
                .iter()
                .filter_map(|id| session.answer_history.iter().find(|a| a.id.as_ref() == Some(id)))
                .filter(|a| bp_items.contains(&a.item_id.as_str()));
            named.next().or_else(|| {
                session.answer_history.iter().rev().find(|a| {
                    bp_items.contains(&a.item_id.as_str()) && a.at.is_some_and(|at| at <= decision.evaluated_at)
                })
            })?
        } else {
            let (session, rest) = key.strip_prefix("s:")?.split_once("/a:")?;
            let (item, at) = rest.split_once('@')?;
            let at = DateTime::parse_from_rfc3339(at).ok()?;
            let session = view.sessions.iter().find(|s| s.session.id == session)?;
            let given: Vec<&katcore::record::AnswerRecord> =
                session.answer_history.iter().filter(|a| a.item_id == item && a.at == Some(at)).collect();
            // Answers given at one instant share the key: name the urgent one.
            let limit = pack.thresholds.bp_urgent;
            let urgent = |a: &&&katcore::record::AnswerRecord| {
                let number = |name| a.value.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
                number("systolic") >= u64::from(limit.systolic) || number("diastolic") >= u64::from(limit.diastolic)
            };
            given.iter().rev().find(urgent).or(given.last()).copied()?
        };
    Some(format!(
        "{}/{} mmHg in the pre-session checklist (urgent limit {}/{})",
        answer.value.get("systolic")?,
        answer.value.get("diastolic")?,
        pack.thresholds.bp_urgent.systolic,
        pack.thresholds.bp_urgent.diastolic
    ))
}

/// The ids of the pack's blood-pressure checklist items.
fn blood_pressure_items(pack: &Pack) -> Vec<&str> {
    pack.checklist
        .iter()
        .filter(|item| matches!(item.rule, katcore::pack::Rule::BloodPressure))
        .map(|item| item.id.as_str())
        .collect()
}

/// A side-effect report in words: the pack's name for it and its severity.
pub(super) fn side_effect_text(pack: &Pack, report: &SideEffectReport) -> String {
    let label = crate::wording::side_effect_label(pack, &report.effect_id);
    format!("{label}, {}", severity_label(report.severity))
}

/// A severity in words.
fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Mild => "mild",
        Severity::Moderate => "moderate",
        Severity::Severe => "severe",
    }
}

/// The items of a decision that were not met, named for a clinician
/// ([`crate::wording::item_name`]).
pub(super) fn explain(pack: &Pack, items: &[(String, ItemState)]) -> String {
    // What stands in the way first, by name; then the unanswered, by name
    // when few, else counted.
    let mut parts: Vec<String> = items
        .iter()
        .filter(|(_, state)| !matches!(state, ItemState::Pass | ItemState::Unanswered))
        .map(|(id, state)| {
            let label = crate::wording::item_name(pack, id);
            let state = match state {
                ItemState::Fail if crate::wording::is_screening(pack, id) => "answered yes",
                ItemState::Fail => "not met",
                ItemState::Warn => "met, with a warning",
                ItemState::Wait => "window still open",
                ItemState::Pass | ItemState::Unanswered => "",
            };
            format!("{label}: {state}")
        })
        .collect();
    // An id the pack does not know is always named, so it shows as such.
    let known = |id: &str| pack.checklist.iter().any(|i| i.id == id) || crate::wording::is_screening(pack, id);
    let (unanswered, unknown): (Vec<&str>, Vec<&str>) = items
        .iter()
        .filter(|(_, state)| *state == ItemState::Unanswered)
        .map(|(id, _)| id.as_str())
        .partition(|id| known(id));
    parts.extend(unknown.iter().map(|id| format!("{}: not answered", crate::wording::item_name(pack, id))));
    match unanswered.len() {
        0 => {}
        1 | 2 => {
            parts.extend(unanswered.iter().map(|id| format!("{}: not answered", crate::wording::item_name(pack, id))))
        }
        n => parts.push(format!("{n} items not answered")),
    }
    if parts.is_empty() {
        EVERY_ITEM_MET.into()
    } else {
        parts.join("; ")
    }
}

/// [`explain`] of a decision with nothing unmet.
const EVERY_ITEM_MET: &str = "Every item met";

/// Open alerts first (most urgent kind, then the newest by the clinic's
/// receipt: when the server raised them), then acknowledged ones, latest
/// acknowledged first.
pub(super) fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| {
        let open = |alert: &Alert| alert.acknowledged_at.is_some();
        open(a)
            .cmp(&open(b))
            .then_with(|| match (a.acknowledged_at, b.acknowledged_at) {
                (None, None) => {
                    priority(a.kind).cmp(&priority(b.kind)).then(b.raised_at.cmp(&a.raised_at)).then(b.at.cmp(&a.at))
                }
                (Some(x), Some(y)) => y.cmp(&x),
                _ => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// What each of `wanted` (alert id, urgent key, kind) is, from one client's
/// record view, by alert id.
pub(super) fn describe_open(
    view: &RecordView,
    pack: &Pack,
    zone: &Zone,
    wanted: impl IntoIterator<Item = (String, String, UrgentKind, DateTime<Utc>)>,
) -> HashMap<String, String> {
    wanted
        .into_iter()
        .map(|(id, key, kind, at)| {
            let mut detail = describe(view, pack, zone, &key, kind);
            // The alert was dated when it was raised: its item's own time was not credible.
            if let Some(dated) = entry_time(view, &key).filter(|dated| crate::clock::ahead(*dated, at)) {
                detail = crate::clock::marked_ahead(&detail, &shown_in(zone, dated));
            }
            (id, detail)
        })
        .collect()
}

/// The time the writer gave the entry behind urgent key `key`, when the view holds it.
fn entry_time(view: &RecordView, key: &str) -> Option<DateTime<Utc>> {
    let (prefix, id) = key.split_at_checked(2)?;
    match prefix {
        "v:" => view.vitals.iter().find(|v| v.id == id).map(|v| v.taken_at),
        "e:" => view.side_effects.iter().find(|e| e.id == id).map(|e| e.reported_at),
        "c:" => view.check_ins.iter().find(|c| c.id == id).map(|c| c.completed_at),
        "r:" => view.sessions.iter().flat_map(|s| &s.readiness).find(|r| r.id == id).map(|r| r.evaluated_at),
        "s:" => match id.split_once("/a:") {
            Some((_, rest)) => DateTime::parse_from_rfc3339(rest.split_once('@')?.1).ok().map(|t| t.to_utc()),
            None => {
                let session = id.strip_suffix("/started")?;
                view.sessions.iter().find(|s| s.session.id == session)?.session.started_at.map(|t| t.to_utc())
            }
        },
        _ => None,
    }
}

/// Alert rows for `alerts`, with the descriptions in `details` (by alert id).
pub(super) fn rows_of(
    state: &AppState,
    alerts: Vec<Alert>,
    labels: &HashMap<String, String>,
    mut details: HashMap<String, String>,
) -> Vec<AlertRow> {
    alerts
        .into_iter()
        .map(|a| AlertRow {
            class: kind_class(a.kind),
            what: alert_kind_label(a.kind),
            detail: details.remove(&a.id).unwrap_or_default(),
            client_label: labels.get(&a.client_id).cloned().unwrap_or_default(),
            at: shown(state, a.at),
            at_iso: a.at.to_rfc3339(),
            acknowledged: a.acknowledged_at.map(|at| {
                let outcome = a.acknowledged_outcome.as_deref().map(|code| format!(": {}", outcome_words(code)));
                format!(
                    "{} by {}{}",
                    shown(state, at),
                    a.acknowledged_by.unwrap_or_default(),
                    outcome.unwrap_or_default()
                )
            }),
            note: None,
            trail: Vec::new(),
            id: a.id,
            client_id: a.client_id,
        })
        .collect()
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn alert(id: &str, kind: UrgentKind, hour: u32, acknowledged: bool) -> Alert {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap();
        Alert {
            id: id.into(),
            client_id: "c".into(),
            key: format!("k:{id}"),
            kind,
            at,
            raised_at: at,
            acknowledged_at: acknowledged.then_some(at),
            acknowledged_by: acknowledged.then(|| "N".into()),
            acknowledged_outcome: None,
        }
    }

    #[test]
    fn open_alerts_come_first_by_urgency_then_newest() {
        let mut alerts = vec![
            alert("blocked-new", UrgentKind::ChecklistBlocked, 12, false),
            alert("bp-old", UrgentKind::UrgentBloodPressure, 8, false),
            alert("crisis-acked", UrgentKind::CrisisCheckIn, 13, true),
            alert("bp-new", UrgentKind::UrgentBloodPressure, 10, false),
            alert("crisis", UrgentKind::CrisisCheckIn, 7, false),
            alert("effect", UrgentKind::SideEffect, 11, false),
            alert("worse", UrgentKind::ScoreWorsened, 14, false),
            alert("severe", UrgentKind::SevereScore, 6, false),
        ];
        sort_alerts(&mut alerts);
        let order: Vec<&str> = alerts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(order, ["crisis", "bp-new", "bp-old", "severe", "effect", "worse", "blocked-new", "crisis-acked"]);

        // Among alerts of one kind, the clinic's receipt decides, not the writer's clock.
        let mut backdated = alert("received-last", UrgentKind::SideEffect, 1, false);
        backdated.raised_at = Utc.with_ymd_and_hms(2026, 12, 1, 20, 0, 0).unwrap();
        let mut alerts = vec![alert("received-first", UrgentKind::SideEffect, 9, false), backdated];
        sort_alerts(&mut alerts);
        assert_eq!(alerts[0].id, "received-last");
        assert_eq!((kind_class(UrgentKind::SevereScore), kind_class(UrgentKind::ScoreWorsened)), ("urgent", "review"));
    }

    #[test]
    fn a_score_alert_names_the_total_and_the_baseline_it_rose_from() {
        use katcore::record::{CareRecord, CheckInInput};
        let mut record = CareRecord::new(automerge::ActorId::from(&b"phone"[..]));
        let at = |day| Utc.with_ymd_and_hms(2026, 5, day, 10, 0, 0).unwrap();
        let phq9 = |answers: Vec<u8>| CheckInInput::Instrument(InstrumentKind::Phq9, answers);
        let first = record.add_check_in(phq9(vec![1, 1, 1, 1, 0, 0, 0, 0, 0]), at(1)).unwrap();
        let worse = record.add_check_in(phq9(vec![2, 2, 2, 2, 1, 0, 0, 0, 0]), at(8)).unwrap();
        let pack = Pack::default_pack();
        let view = record.view(&pack);
        let zone = Zone::named("America/New_York").unwrap();
        let text = describe(&view, &pack, &zone, &format!("c:{}", worse.id), UrgentKind::ScoreWorsened);
        assert_eq!(text, "PHQ-9 total 9 (mild), baseline 4 on 1 May 2026");
        let text = describe(&view, &pack, &zone, &format!("c:{}", first.id), UrgentKind::SevereScore);
        assert_eq!(text, "PHQ-9 total 4 (minimal)", "the first check-in is its own baseline");
    }

    #[test]
    fn a_decision_is_explained_by_what_stands_in_the_way_then_what_is_unanswered() {
        let pack = Pack::default_pack();
        let item = |id: &str, state| (id.to_owned(), state);
        let items = [
            item("blood_pressure", ItemState::Pass),
            item("screen_pregnancy", ItemState::Fail),
            item("last_solid_food", ItemState::Wait),
            item("intention_set", ItemState::Unanswered),
            item("safe_setting", ItemState::Unanswered),
            item("monitor_present", ItemState::Unanswered),
            item("made_up_item", ItemState::Unanswered),
        ];
        assert_eq!(
            explain(&pack, &items),
            "Screening (pregnancy): answered yes; Last solid food: window still open; \
             made_up_item (not in the clinic's pack): not answered; 3 items not answered"
        );
        assert_eq!(explain(&pack, &items[3..5]), "Intention set: not answered; Safe setting: not answered");
        assert_eq!(explain(&pack, &items[..1]), EVERY_ITEM_MET);
    }
}
