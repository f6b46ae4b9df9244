//! `Wellbeing`: blood pressure, side effects and check-ins (PHQ-9, GAD-7, mood).
//!
//! Urgent entries (a blood pressure at or above the clinic's urgent threshold,
//! a severe side effect, any non-zero PHQ-9 item 9) are flagged in what is
//! returned and raised with the clinic on the next sync. A check-in that is
//! urgent comes back with the pack's crisis message and contacts: show them at once.

use std::time::SystemTime;

use katcore::checklist::BloodPressureReading;
use katcore::device::Device;
use katcore::instruments::{Band, InstrumentKind, ScoreFlag};
use katcore::record::Vitals as CoreVitals;
use katcore::record::{CheckIn as CoreCheckIn, CheckInKind as CoreCheckInKind, Severity, SideEffectReport};

use crate::content::CrisisContact;
use crate::error::Result;
use crate::time::{or_now, Timestamp};

/// Vitals, side effects and check-ins. Calls block briefly: writes are durable (on disk)
/// when they return.
#[derive(uniffi::Object)]
pub struct Wellbeing {
    pub(crate) device: Device,
}

#[uniffi::export]
impl Wellbeing {
    /// Records a blood-pressure reading (mmHg) and returns it, flagged `urgent` at or above
    /// the clinic's urgent threshold. Blocking (a durable write).
    ///
    /// # Errors
    /// `InvalidInput` for an implausible reading or an unknown session.
    #[uniffi::method(default(session_id = None, at = None))]
    pub fn record_blood_pressure(
        &self,
        systolic: u16,
        diastolic: u16,
        session_id: Option<String>,
        at: Option<SystemTime>,
    ) -> Result<Vitals> {
        let reading = BloodPressureReading { systolic, diastolic };
        Ok(self.device.record_blood_pressure(reading, session_id.as_deref(), or_now("at", at)?)?.into())
    }

    /// Blood-pressure readings, oldest first.
    pub fn vitals(&self) -> Vec<Vitals> {
        self.device.vitals().into_iter().map(Vitals::from).collect()
    }

    /// Reports a side effect from `Content.sideEffects` and returns the report, flagged
    /// `urgent` when severe or when the pack says always to report it.
    ///
    /// # Errors
    /// `InvalidInput` for an effect the pack does not list or an unknown session.
    #[uniffi::method(default(session_id = None, at = None))]
    pub fn report_side_effect(
        &self,
        effect_id: String,
        severity: Severity,
        session_id: Option<String>,
        at: Option<SystemTime>,
    ) -> Result<SideEffectReport> {
        Ok(self.device.report_side_effect(&effect_id, severity, session_id.as_deref(), or_now("at", at)?)?)
    }

    /// Side-effect reports, oldest first.
    pub fn side_effects(&self) -> Vec<SideEffectReport> {
        self.device.side_effects()
    }

    /// Scores and records a questionnaire (answers 0–3, one per item). When the result is
    /// urgent it carries the crisis message and contacts in `locale`: show them at once.
    ///
    /// # Errors
    /// `InvalidInput` (field `answers`) for the wrong number of answers or one outside 0–3.
    #[uniffi::method(default(at = None))]
    pub fn check_in(
        &self,
        instrument: InstrumentKind,
        answers: Vec<u8>,
        locale: String,
        at: Option<SystemTime>,
    ) -> Result<CheckInResult> {
        let result = self.device.check_in(instrument, answers, &locale, or_now("at", at)?)?;
        let outcome = result.outcome;
        Ok(CheckInResult {
            check_in_id: result.check_in_id,
            total: outcome.score.total,
            band: outcome.score.band,
            urgent: outcome.score.urgent,
            crisis_message: outcome.crisis_message,
            crisis_contacts: outcome.crisis_contacts.into_iter().map(CrisisContact::from).collect(),
            review: outcome.review,
            review_message: outcome.review_message,
        })
    }

    /// Records a daily mood rating from 0 (worst) to 10 (best); returns the check-in's id.
    ///
    /// # Errors
    /// `InvalidInput` for a score above 10.
    #[uniffi::method(default(at = None))]
    pub fn record_mood(&self, score: u8, at: Option<SystemTime>) -> Result<String> {
        Ok(self.device.record_mood(score, or_now("at", at)?)?)
    }

    /// Check-ins, oldest first.
    pub fn check_ins(&self) -> Vec<CheckIn> {
        self.device.check_ins().into_iter().map(CheckIn::from).collect()
    }
}

/// A blood-pressure reading: core's `Vitals` with the reading's two numbers inline.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Vitals {
    /// Id.
    pub id: String,
    /// When it was taken.
    pub taken_at: Timestamp,
    /// Systolic, mmHg.
    pub systolic: u16,
    /// Diastolic, mmHg.
    pub diastolic: u16,
    /// The session it belongs to.
    pub session_id: Option<String>,
    /// At or above the clinic's urgent threshold: contact the clinic now.
    pub urgent: bool,
}

impl From<CoreVitals> for Vitals {
    fn from(v: CoreVitals) -> Self {
        let BloodPressureReading { systolic, diastolic } = v.reading;
        Vitals { id: v.id, taken_at: v.taken_at, systolic, diastolic, session_id: v.session_id, urgent: v.urgent }
    }
}

/// A reported side effect.
#[uniffi::remote(Record)]
pub struct SideEffectReport {
    /// Id.
    pub id: String,
    /// When it was reported.
    pub reported_at: Timestamp,
    /// The pack's side-effect id.
    pub effect_id: String,
    /// How bad.
    pub severity: Severity,
    /// The session it follows.
    pub session_id: Option<String>,
    /// Raised with the clinic as urgent.
    pub urgent: bool,
}

/// A scored questionnaire, with what to show the client (core's `CheckInResult`, flattened).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CheckInResult {
    /// The recorded check-in's id.
    pub check_in_id: String,
    /// Sum of the answers.
    pub total: u8,
    /// Severity band of the total.
    pub band: Band,
    /// Needs prompt clinical review (PHQ-9 item 9 above 0, whatever the total).
    pub urgent: bool,
    /// For an urgent result: the crisis message to show.
    pub crisis_message: Option<String>,
    /// For an urgent result: who to reach, in order.
    pub crisis_contacts: Vec<CrisisContact>,
    /// A severe total or a marked rise over the client's first check-in: the clinic is alerted.
    pub review: Option<ScoreFlag>,
    /// For a flagged result: a note to show the client.
    pub review_message: Option<String>,
}

/// A recorded check-in.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CheckIn {
    /// Id.
    pub id: String,
    /// When it was completed.
    pub completed_at: Timestamp,
    /// What was recorded.
    pub kind: CheckInKind,
    /// Needs prompt clinical review.
    pub urgent: bool,
}

/// What a check-in recorded (core's `CheckInKind`; `Questionnaire` is the app's name for `Instrument`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CheckInKind {
    /// A questionnaire.
    Questionnaire {
        /// Which one.
        instrument: InstrumentKind,
        /// The answers, 0–3 each.
        answers: Vec<u8>,
        /// Their sum.
        total: u8,
        /// Severity band.
        band: Band,
    },
    /// A daily mood rating, 0 (worst) to 10 (best).
    Mood {
        /// The rating.
        score: u8,
    },
}

impl From<CoreCheckIn> for CheckIn {
    fn from(c: CoreCheckIn) -> Self {
        let kind = match c.kind {
            CoreCheckInKind::Instrument { instrument, answers, total, band } => {
                CheckInKind::Questionnaire { instrument, answers, total, band }
            }
            CoreCheckInKind::Mood { score } => CheckInKind::Mood { score },
        };
        CheckIn { id: c.id, completed_at: c.completed_at, kind, urgent: c.urgent }
    }
}

/// How bad a side effect is, as the client judges it.
#[uniffi::remote(Enum)]
pub enum Severity {
    /// Noticeable, not troubling.
    Mild,
    /// Troubling.
    Moderate,
    /// Severe: raised with the clinic as urgent.
    Severe,
}

/// Why a questionnaire's total needs the clinic's prompt review (besides PHQ-9 item 9).
#[uniffi::remote(Enum)]
pub enum ScoreFlag {
    /// At or above the clinic's severe threshold (default PHQ-9 20, GAD-7 15).
    Severe,
    /// Risen over the client's first check-in by the clinic's margin (default 5) or more.
    Worsened,
}

/// Severity band of a questionnaire's total.
#[uniffi::remote(Enum)]
pub enum Band {
    /// 0–4.
    Minimal,
    /// 5–9.
    Mild,
    /// 10–14.
    Moderate,
    /// PHQ-9 15–19.
    ModeratelySevere,
    /// PHQ-9 20–27, GAD-7 15–21.
    Severe,
}
