//! `katctl checklist evaluate`, `katctl score` and `katctl aftercare`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use katcore::checklist::{evaluate_in as evaluate_checklist, Answers};
use katcore::instruments::{check_in, InstrumentKind};
use katcore::pack::{verify_pack, Pack, PackError, TrustedKeys};
use katcore::zone::Zone;
use serde_json::Value;

use crate::input::{read_input, read_text, to_json};

/// Which pack to use and in which language to answer.
#[derive(clap::Args, Debug)]
pub(crate) struct PackArgs {
    /// A signed pack file to use instead of the built-in default pack.
    #[arg(long, value_name = "FILE")]
    pack: Option<PathBuf>,
    /// Public key file(s) the signed pack must verify against.
    #[arg(long = "trust", value_name = "KEYFILE")]
    trust: Vec<PathBuf>,
    /// Accept an unsigned pack given with --pack (for authoring drafts only).
    #[arg(long)]
    allow_unsigned: bool,
    /// Locale of the messages, e.g. en or es.
    #[arg(long, default_value = "en")]
    locale: String,
}

impl PackArgs {
    /// Loads the chosen pack: the built-in default, a verified signed pack,
    /// or with `--allow-unsigned` a bare draft.
    pub(crate) fn load(&self) -> Result<Arc<Pack>, String> {
        let Some(path) = &self.pack else { return Ok(Pack::default_pack()) };
        let bytes = read_input(path)?;
        let mut trusted = TrustedKeys::default();
        for key in &self.trust {
            trusted.add(
                katcore::pack::parse_verifying_key(&read_text(key)?).map_err(|e| format!("{}: {e}", key.display()))?,
            );
        }
        let pack = match verify_pack(&bytes, &trusted) {
            Err(PackError::Unsigned) if self.allow_unsigned => Pack::from_json(&bytes),
            Err(PackError::UntrustedKey { .. }) if trusted.is_empty() => {
                return Err(format!("{}: pack is signed; give --trust KEYFILE to verify it", path.display()))
            }
            Err(PackError::Unsigned) => {
                return Err(format!("{}: pack is not signed (use --allow-unsigned for a draft)", path.display()))
            }
            other => other,
        };
        pack.map(Arc::new).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// `katctl checklist evaluate`.
pub(crate) fn evaluate(input: &Path, args: &PackArgs) -> Result<String, String> {
    let pack = args.load()?;
    let value: Value = katcore::json::from_slice(&read_input(input)?).map_err(|e| format!("input: not JSON: {e}"))?;
    let object = value.as_object().ok_or("input: must be a JSON object with session_start and answers")?;
    if let Some(unknown) = object.keys().find(|k| !matches!(k.as_str(), "session_start" | "time_zone" | "answers")) {
        return Err(format!("{unknown}: unknown field (expected session_start, time_zone and answers)"));
    }
    let start = object
        .get("session_start")
        .ok_or("session_start: missing")?
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .filter(katcore::checklist::in_rfc3339_range)
        .ok_or("session_start: expected an RFC 3339 instant, e.g. 2026-05-01T15:00:00-04:00")?;
    let zone = match object.get("time_zone") {
        None => None,
        Some(name) => Some(
            name.as_str()
                .and_then(Zone::named)
                .ok_or("time_zone: expected an IANA time zone name, e.g. America/New_York")?,
        ),
    };
    let answers =
        Answers::from_json(&pack, object.get("answers").ok_or("answers: missing")?).map_err(|e| e.to_string())?;
    answers.check_before(start).map_err(|e| e.to_string())?;
    to_json(&evaluate_checklist(&pack, start, zone.as_ref(), &answers, &args.locale))
}

/// `katctl score`.
pub(crate) fn score(instrument: &str, answers: &str, baseline: Option<u8>, args: &PackArgs) -> Result<String, String> {
    let kind = InstrumentKind::parse(instrument).map_err(|e| e.to_string())?;
    let values = parse_answers(answers).map_err(|e| format!("{}: {e}", kind.as_str()))?;
    if baseline.is_some_and(|b| b > kind.max_total()) {
        return Err(format!("baseline: must be a {} total, 0 to {}", kind.as_str(), kind.max_total()));
    }
    let pack = args.load()?;
    to_json(&check_in(&pack, kind, &values, baseline, &args.locale).map_err(|e| e.to_string())?)
}

/// Questionnaire answers given as `0,1,2,…`.
pub(crate) fn parse_answers(answers: &str) -> Result<Vec<u8>, String> {
    answers
        .split(',')
        .enumerate()
        .map(|(i, a)| a.trim().parse::<u8>().map_err(|_| format!("item {}: answers must be 0, 1, 2 or 3", i + 1)))
        .collect()
}

/// `katctl aftercare`.
pub(crate) fn aftercare(end: &str, tz: &str, args: &PackArgs) -> Result<String, String> {
    let end = DateTime::parse_from_rfc3339(end)
        .map_err(|_| "--end: expected an RFC 3339 instant, e.g. 2026-05-01T17:00:00-04:00".to_owned())?
        .with_timezone(&Utc);
    let tz = katcore::aftercare::parse_time_zone(tz).map_err(|e| format!("--tz: {e}"))?;
    let pack = args.load()?;
    to_json(&katcore::aftercare::plan(&pack, end, &tz, &args.locale))
}
