//! Content packs: a clinic's protocol as signed, versioned, localizable data.
//!
//! A [`Pack`] holds everything the app shows or decides from: the at-home
//! guidelines, the pre-session checklist and its rules, the contraindication
//! screening, post-session safety guidance, the side effects to ask about,
//! the integration prompt schedule, the check-in instruments, crisis contacts
//! and the clinic's thresholds. Clinics author packs as JSON (see
//! `docs/pack-format.md` and the JSON Schema from [`json_schema`]), sign them
//! with Ed25519 ([`sign_pack`]) and the app activates a pack only when its
//! signature verifies against the clinic keys it trusts ([`PackRegistry`]).
//!
//! A safe default pack, written from the clinical facts, is built into the
//! library ([`Pack::default_pack`]) and is active until a clinic pack is.

mod canonical;
mod registry;
mod signing;
mod validate;

pub use validate::parse_local_time;
pub(crate) use validate::MAX_INTEGRATION_DAY;

use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::locale::{negotiate, Text};

pub use registry::PackRegistry;
pub use signing::{
    key_id, parse_signing_key, parse_verifying_key, sign_pack, verify_pack, SignedPack, TrustedKeys, SIGNED_PACK_FORMAT,
};

/// The pack format version this library reads and writes.
pub const PACK_FORMAT: u32 = 1;

/// Why a pack was not accepted.
///
/// Messages name what was wrong (a field path, a key id) and never carry
/// client data: packs hold no health data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PackError {
    /// The bytes are not JSON of the expected shape.
    #[error("pack is malformed: {reason}")]
    Malformed {
        /// What the parser reported (position and expectation).
        reason: String,
    },
    /// The pack or envelope declares a format this library does not read.
    #[error("pack format {found} is not supported (this library reads format {PACK_FORMAT})")]
    UnsupportedFormat {
        /// The format found in the file.
        found: String,
    },
    /// A bare pack was offered where a signed one is required.
    #[error("pack is not signed")]
    Unsigned,
    /// The pack was signed by a key that is not among the trusted clinic keys.
    #[error("pack is signed by key {key_id}, which is not a trusted clinic key")]
    UntrustedKey {
        /// Identifier of the signing key, see [`key_id`].
        key_id: String,
    },
    /// The signature does not match the pack's content: it was altered or
    /// the signature was forged.
    #[error("pack signature does not verify: the pack was altered or not signed by its key")]
    BadSignature,
    /// The pack parsed but breaks a rule (a missing translation, a duplicate
    /// id, an impossible threshold, …).
    #[error("pack is invalid at {path}: {reason}")]
    Invalid {
        /// JSON-path-like location of the problem, e.g. `checklist[2].prompt`.
        path: String,
        /// What is wrong there.
        reason: String,
    },
    /// The pack is an older version of the pack already active.
    #[error("pack {id} version {offered} is older than the active version {active}")]
    Downgrade {
        /// The pack id.
        id: String,
        /// Version currently active.
        active: u32,
        /// Version offered.
        offered: u32,
    },
    /// A signing or verifying key could not be read.
    #[error("key is unusable: {reason}")]
    Key {
        /// What was wrong with it.
        reason: String,
    },
}

impl PackError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        PackError::Invalid { path: path.into(), reason: reason.into() }
    }
}

/// A clinic's protocol: the whole content the app works from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// Pack format version; must be [`PACK_FORMAT`].
    pub format: u32,
    /// Stable identifier of the pack, e.g. `org.example-clinic.kat`
    /// (lowercase letters, digits, `.`, `-`, `_`).
    pub id: String,
    /// Version of this pack; a device never moves to a lower version of the same id.
    pub version: u32,
    /// Who publishes the pack (clinic name).
    pub publisher: String,
    /// Title shown to the client.
    pub title: Text,
    /// Locale used when the device's locale is not supported.
    pub default_locale: String,
    /// Locales every text in the pack is written in.
    pub locales: Vec<String>,
    /// The clinic's numeric settings.
    pub thresholds: Thresholds,
    /// At-home guidelines, in reading order.
    pub guidelines: Vec<Section>,
    /// The pre-session checklist, in the order it is asked.
    pub checklist: Vec<ChecklistItem>,
    /// Contraindication screening asked before every session.
    pub screening: Vec<ScreeningQuestion>,
    /// Safety guidance for after the session.
    pub post_session: Vec<Section>,
    /// Side effects the client can report.
    pub side_effects: Vec<SideEffect>,
    /// Prompts to check for side effects, timed from the session's end.
    pub side_effect_check_ins: Vec<CheckInPrompt>,
    /// Integration prompts over the days after a session.
    pub integration: Vec<IntegrationPrompt>,
    /// Check-in questionnaires (PHQ-9 and GAD-7).
    pub instruments: Vec<Instrument>,
    /// What to show when a check-in or report signals a crisis.
    pub crisis: Crisis,
}

/// The clinic's settings that are not tied to one checklist item.
///
/// The fields after `driving_local_hour` came with issue 19; a pack that
/// leaves them out gets the defaults named on each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Do not start at or above this blood pressure (either value).
    pub bp_limit: BloodPressureLimit,
    /// At or above this blood pressure (either value) the reading is urgent.
    pub bp_urgent: BloodPressureLimit,
    /// Local hour (0–23) from which driving is acceptable: the first time
    /// this hour comes after the session's end (see also `driving_min_hours`).
    pub driving_local_hour: u8,
    /// Driving is acceptable no sooner than this many hours of real time
    /// after the session's end, whatever the clock says (1–48; default 8).
    #[serde(default = "default_driving_min_hours")]
    pub driving_min_hours: u8,
    /// The client's night, in local time: check-ins and integration prompts
    /// are not due inside it (default 22:00–07:00; `null` turns it off).
    #[serde(default = "default_quiet_hours")]
    pub quiet_hours: Option<QuietHours>,
    /// PHQ-9 and GAD-7 scores that raise a clinic alert besides PHQ-9 item 9.
    #[serde(default)]
    pub score_alerts: ScoreAlerts,
}

/// The default of [`Thresholds::driving_min_hours`]: 8 hours.
pub const DEFAULT_DRIVING_MIN_HOURS: u8 = 8;

fn default_driving_min_hours() -> u8 {
    DEFAULT_DRIVING_MIN_HOURS
}

fn default_quiet_hours() -> Option<QuietHours> {
    Some(QuietHours::default())
}

/// A nightly period in the client's local time, `start` to `end`
/// (`HH:MM`); it wraps past midnight when `end` is not after `start`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// When the quiet period begins, `HH:MM` local time.
    pub start: String,
    /// When it ends, `HH:MM` local time: prompts moved out of it are due then.
    pub end: String,
}

impl Default for QuietHours {
    /// 22:00 to 07:00.
    fn default() -> Self {
        QuietHours { start: "22:00".into(), end: "07:00".into() }
    }
}

impl QuietHours {
    /// `start` and `end` as times of day; `None` when either is not `HH:MM`
    /// or they are equal (validation refuses both).
    pub fn bounds(&self) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
        let (start, end) = (parse_local_time(&self.start)?, parse_local_time(&self.end)?);
        (start != end).then_some((start, end))
    }

    /// Whether the local time of day `time` falls inside the quiet hours:
    /// `start` inclusive, `end` exclusive, wrapping past midnight when `end`
    /// is not after `start`.
    pub fn contains(&self, time: chrono::NaiveTime) -> bool {
        self.bounds().is_some_and(|(start, end)| QuietHours::covers(start, end, time))
    }

    /// [`QuietHours::contains`] for bounds already read with [`QuietHours::bounds`].
    pub(crate) fn covers(start: chrono::NaiveTime, end: chrono::NaiveTime, time: chrono::NaiveTime) -> bool {
        if start < end {
            start <= time && time < end
        } else {
            time >= start || time < end
        }
    }
}

/// Check-in scores that need the clinic's prompt review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreAlerts {
    /// For the PHQ-9 (default: a total of 20 or more, or a rise of 5 or more).
    #[serde(default = "ScoreAlert::phq9_default")]
    pub phq9: ScoreAlert,
    /// For the GAD-7 (default: a total of 15 or more, or a rise of 5 or more).
    #[serde(default = "ScoreAlert::gad7_default")]
    pub gad7: ScoreAlert,
}

impl Default for ScoreAlerts {
    fn default() -> Self {
        ScoreAlerts { phq9: ScoreAlert::phq9_default(), gad7: ScoreAlert::gad7_default() }
    }
}

impl ScoreAlerts {
    /// The setting for one instrument.
    pub fn of(&self, kind: InstrumentKind) -> ScoreAlert {
        match kind {
            InstrumentKind::Phq9 => self.phq9,
            InstrumentKind::Gad7 => self.gad7,
        }
    }
}

/// When a questionnaire's score raises an alert; `0` turns a rule off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreAlert {
    /// A total at or above this is severe (PHQ-9 20 and GAD-7 15 begin their
    /// "severe" bands).
    pub total_at_least: u8,
    /// A total this many points or more above the client's baseline (their
    /// first check-in with this questionnaire) is a marked worsening.
    pub rise_from_baseline: u8,
}

impl ScoreAlert {
    fn phq9_default() -> Self {
        ScoreAlert { total_at_least: 20, rise_from_baseline: 5 }
    }

    fn gad7_default() -> Self {
        ScoreAlert { total_at_least: 15, rise_from_baseline: 5 }
    }
}

/// A blood-pressure threshold in mmHg; a reading meets it when either value does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BloodPressureLimit {
    /// Systolic pressure, mmHg.
    pub systolic: u16,
    /// Diastolic pressure, mmHg.
    pub diastolic: u16,
}

/// A titled block of short paragraphs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Stable identifier.
    pub id: String,
    /// Heading.
    pub title: Text,
    /// Paragraphs or bullet points, in order.
    pub body: Vec<Text>,
}

/// One question of the pre-session checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Stable identifier; clinics and apps depend on it.
    pub id: String,
    /// The question as the client sees it.
    pub prompt: Text,
    /// How the answer is judged.
    pub rule: Rule,
    /// When true, a missing answer is a warning instead of leaving the
    /// checklist incomplete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// How a checklist answer is judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// The answer is when something was last taken (an RFC 3339 instant) or
    /// `"none"`; it must be at least `window_minutes` before the session starts.
    TimeWindow {
        /// Minimum time between the last intake and the session start.
        window_minutes: u32,
        /// Reminder text for the moment the window closes ("Last solid food").
        reminder: Text,
    },
    /// The answer is a reading `{"systolic": n, "diastolic": n}`, judged
    /// against [`Thresholds::bp_limit`] and [`Thresholds::bp_urgent`].
    BloodPressure,
    /// The answer is a boolean that must be `true` (e.g. "a monitor is with you").
    Attestation,
    /// The answer is one of the listed option values.
    Choice {
        /// The options and what each one means.
        options: Vec<ChoiceOption>,
    },
    /// The answer is free text; any non-blank text passes.
    FreeText,
}

/// One option of a [`Rule::Choice`] item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// The answer value (`yes`, `no`, `not_prescribed`, …).
    pub value: String,
    /// Label shown for the option.
    pub label: Text,
    /// What choosing it means for readiness.
    pub outcome: Outcome,
    /// Explanation shown when this option is chosen.
    pub note: Text,
}

/// The effect of an answer on readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fine.
    Pass,
    /// Allowed, but worth attention.
    Warn,
    /// Do not start; contact the clinic.
    Fail,
}

/// A contraindication question; answered with a boolean, `true` meaning "yes, this applies".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreeningQuestion {
    /// Stable identifier.
    pub id: String,
    /// The question.
    pub prompt: Text,
    /// What a "yes" means; contraindications block (`fail`), cautions warn.
    #[serde(default = "fail_outcome")]
    pub if_yes: Outcome,
}

fn fail_outcome() -> Outcome {
    Outcome::Fail
}

/// A side effect the client can report after a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SideEffect {
    /// Stable identifier.
    pub id: String,
    /// Name shown to the client.
    pub label: Text,
    /// When true, any report of it is raised with the clinic whatever its severity.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub always_report: bool,
}

/// A prompt timed in minutes after a session ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInPrompt {
    /// Stable identifier.
    pub id: String,
    /// Minutes after the session's end.
    pub after_minutes: u32,
    /// What the app asks.
    pub text: Text,
}

/// An integration prompt on a day after the session, at a local time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationPrompt {
    /// Stable identifier.
    pub id: String,
    /// Days after the session's local date (0 = the same day).
    pub day: u8,
    /// Local wall-clock time, `HH:MM`.
    pub local_time: String,
    /// The prompt.
    pub text: Text,
}

/// Which standard questionnaire an [`Instrument`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// Patient Health Questionnaire, 9 items (depression).
    Phq9,
    /// Generalized Anxiety Disorder scale, 7 items (anxiety).
    Gad7,
}

impl InstrumentKind {
    /// Number of items of the questionnaire.
    pub fn item_count(self) -> usize {
        match self {
            InstrumentKind::Phq9 => 9,
            InstrumentKind::Gad7 => 7,
        }
    }

    /// The highest possible total (3 per item).
    pub fn max_total(self) -> u8 {
        // 9 or 7 items: the product always fits.
        u8::try_from(3 * self.item_count()).unwrap_or(u8::MAX)
    }

    /// The identifier used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            InstrumentKind::Phq9 => "phq9",
            InstrumentKind::Gad7 => "gad7",
        }
    }
}

/// The localized wording of a check-in questionnaire; scoring lives in
/// [`crate::instruments`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instrument {
    /// Which questionnaire.
    pub kind: InstrumentKind,
    /// Title shown to the client.
    pub title: Text,
    /// The lead-in shared by all items ("Over the last two weeks, …").
    pub stem: Text,
    /// The items, in order.
    pub items: Vec<Text>,
    /// Answer labels for the values 0, 1, 2 and 3.
    pub options: Vec<Text>,
}

/// What to show when a client may be in crisis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Crisis {
    /// Message shown above the contacts.
    pub message: Text,
    /// Who to reach, in order of preference.
    pub contacts: Vec<CrisisContact>,
}

/// A crisis line or emergency number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisContact {
    /// Stable identifier.
    pub id: String,
    /// Name shown to the client.
    pub label: Text,
    /// Number to call, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Number to text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
}

/// The built-in default pack, as JSON.
const DEFAULT_PACK_JSON: &str = include_str!("pack/default.json");

impl Pack {
    /// Parses a bare (unsigned) pack from JSON and validates it.
    ///
    /// Use this for authoring and tooling; apps activate packs through
    /// [`PackRegistry`], which requires a signature.
    ///
    /// # Errors
    /// [`PackError::Malformed`] for JSON that does not fit the format,
    /// [`PackError::UnsupportedFormat`] for another format version and
    /// [`PackError::Invalid`] for a pack that breaks a rule.
    pub fn from_json(bytes: &[u8]) -> Result<Pack, PackError> {
        let value: serde_json::Value = crate::json::from_slice(bytes).map_err(malformed)?;
        Pack::from_value(value)
    }

    pub(crate) fn from_value(value: serde_json::Value) -> Result<Pack, PackError> {
        if let Some(format) = value.get("format") {
            if format.as_u64() != Some(u64::from(PACK_FORMAT)) {
                return Err(PackError::UnsupportedFormat { found: format.to_string() });
            }
        }
        let pack: Pack = serde_json::from_value(value).map_err(malformed)?;
        pack.validate()?;
        Ok(pack)
    }

    /// The default pack built into the library, shared and parsed once.
    pub fn default_pack() -> Arc<Pack> {
        static DEFAULT: OnceLock<Arc<Pack>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Arc::new(
                    // The embedded pack is checked by unit tests; failing here
                    // would mean the library was built from a broken tree. (No
                    // `expect`: it would link the error's `Debug` for a message
                    // that cannot be printed.)
                    Pack::from_json(DEFAULT_PACK_JSON.as_bytes())
                        .unwrap_or_else(|_| panic!("the built-in default pack is valid")),
                )
            })
            .clone()
    }

    /// The default pack's JSON text, a starting point for clinics.
    pub fn default_pack_json() -> &'static str {
        DEFAULT_PACK_JSON
    }

    /// The supported locale that best matches `requested` (see [`negotiate`]).
    pub fn locale_for<'a>(&'a self, requested: &str) -> &'a str {
        negotiate(requested, &self.locales, &self.default_locale)
    }

    /// Looks `text` up in `locale`, falling back to the pack's default locale.
    pub fn text<'a>(&'a self, text: &'a Text, locale: &str) -> &'a str {
        text.get(self.locale_for(locale), &self.default_locale)
    }

    /// The checklist item with this id.
    pub fn checklist_item(&self, id: &str) -> Option<&ChecklistItem> {
        self.checklist.iter().find(|item| item.id == id)
    }

    /// The wording of one instrument.
    pub fn instrument(&self, kind: InstrumentKind) -> Option<&Instrument> {
        self.instruments.iter().find(|i| i.kind == kind)
    }

    /// The pack as pretty JSON (bare, unsigned).
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data structures to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

pub(crate) fn malformed(e: serde_json::Error) -> PackError {
    PackError::Malformed { reason: e.to_string() }
}

/// The JSON Schema of the bare pack format, generated from these types.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Pack)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pack_parses_and_validates() {
        let pack = Pack::default_pack();
        assert_eq!(pack.format, PACK_FORMAT);
        assert!(pack.locales.iter().any(|l| l == "en"));
        assert!(pack.locales.iter().any(|l| l == "es"));
    }

    #[test]
    fn default_pack_has_the_stable_item_ids() {
        let pack = Pack::default_pack();
        let ids: Vec<&str> =
            pack.checklist.iter().map(|i| i.id.as_str()).chain(pack.screening.iter().map(|q| q.id.as_str())).collect();
        for id in [
            "last_solid_food",
            "last_liquid",
            "last_benzodiazepine",
            "last_stimulant",
            "last_alcohol",
            "blood_pressure",
            "monitor_present",
            "safe_setting",
            "no_driving_plan",
            "antihypertensive_taken",
            "intention_set",
            "screen_ketamine_allergy",
            "screen_psychosis_or_mania",
            "screen_uncontrolled_bp",
            "screen_heart_condition",
            "screen_breathing_problem",
            "screen_eye_or_brain_pressure",
            "screen_hyperthyroidism",
            "screen_pregnancy",
            "screen_new_serious_illness",
        ] {
            assert!(ids.contains(&id), "default pack lacks {id}");
        }
    }

    #[test]
    fn default_pack_carries_the_clinical_defaults() {
        let pack = Pack::default_pack();
        let window = |id: &str| match &pack.checklist_item(id).unwrap().rule {
            Rule::TimeWindow { window_minutes, .. } => *window_minutes,
            other => panic!("{id} is {other:?}"),
        };
        assert_eq!(window("last_solid_food"), 180);
        assert_eq!(window("last_liquid"), 60);
        assert_eq!(window("last_benzodiazepine"), 24 * 60);
        assert_eq!(window("last_stimulant"), 24 * 60);
        assert_eq!(window("last_alcohol"), 24 * 60);
        assert_eq!(pack.thresholds.bp_limit, BloodPressureLimit { systolic: 140, diastolic: 90 });
        assert_eq!(pack.thresholds.bp_urgent, BloodPressureLimit { systolic: 180, diastolic: 120 });
        assert!(pack.checklist_item("intention_set").unwrap().optional);
        assert!(pack.crisis.contacts.iter().any(|c| c.phone.as_deref() == Some("988")));
        assert!(pack.crisis.contacts.iter().any(|c| c.phone.as_deref() == Some("911")));
        let days: Vec<u8> = pack.integration.iter().map(|p| p.day).collect();
        for day in [0, 1, 3, 7, 14] {
            assert!(days.contains(&day), "no integration prompt on day {day}");
        }
    }

    #[test]
    fn unknown_fields_and_other_formats_are_refused() {
        let mut value: serde_json::Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
        value["surprise"] = serde_json::json!(1);
        let err = Pack::from_value(value.clone()).unwrap_err();
        assert!(matches!(err, PackError::Malformed { ref reason } if reason.contains("surprise")), "{err}");

        value.as_object_mut().unwrap().remove("surprise");
        value["format"] = serde_json::json!(2);
        assert!(matches!(Pack::from_value(value).unwrap_err(), PackError::UnsupportedFormat { .. }));
        assert!(matches!(Pack::from_json(b"{not json").unwrap_err(), PackError::Malformed { .. }));
    }

    #[test]
    fn schema_names_the_top_level_sections() {
        let schema = json_schema();
        let props = schema["properties"].as_object().expect("schema has properties");
        for key in ["checklist", "screening", "thresholds", "integration", "crisis", "instruments"] {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
    }
}
