//! `Wellbeing`: blood pressure, side effects and check-ins (PHQ-9, GAD-7, mood).
//!
//! Urgent entries (a blood pressure at or above the clinic's urgent threshold,
//! a severe side effect, any non-zero PHQ-9 item 9) are flagged in what is
//! returned and raised with the clinic on the next sync. A check-in that is
//! urgent comes back with the pack's crisis message and contacts: show them at once.

use std::sync::Arc;
use std::time::SystemTime;

use katcore::checklist::BloodPressureReading;
use katcore::instruments::{self, Band, InstrumentKind};
use katcore::record::{
    CheckIn as CoreCheckIn, CheckInInput, CheckInKind as CoreCheckInKind, Severity, SideEffectReport as CoreSideEffect,
    Vitals as CoreVitals,
};

use crate::content::CrisisContact;
use crate::error::{KatcoreError, Result};
use crate::listeners::CareChange;
use crate::store::Inner;
use crate::time::{or_now, to_system_time};

/// Vitals, side effects and check-ins. Calls block briefly: writes are durable (on disk)
/// when they return.
#[derive(uniffi::Object)]
pub struct Wellbeing {
    inner: Arc<Inner>,
}

impl Wellbeing {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Wellbeing { inner }
    }
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
        let (pack, at) = (self.inner.pack(), or_now("at", at)?);
        let reading = BloodPressureReading { systolic, diastolic };
        let id =
            self.inner.update(CareChange::Wellbeing, |r| r.add_vitals(&pack, reading, at, session_id.as_deref()))?;
        let saved = self.inner.read(|r| r.vitals().into_iter().find(|v| v.id == id));
        saved.map(Vitals::from).ok_or_else(|| KatcoreError::NotFound { what: format!("vitals {id}") })
    }

    /// Blood-pressure readings, oldest first.
    pub fn vitals(&self) -> Vec<Vitals> {
        self.inner.read(|r| r.vitals()).into_iter().map(Vitals::from).collect()
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
        let (pack, at) = (self.inner.pack(), or_now("at", at)?);
        let id = self.inner.update(CareChange::Wellbeing, |r| {
            r.report_side_effect(&pack, &effect_id, severity, at, session_id.as_deref())
        })?;
        let saved = self.inner.read(|r| r.side_effects().into_iter().find(|e| e.id == id));
        saved.map(SideEffectReport::from).ok_or_else(|| KatcoreError::NotFound { what: format!("side effect {id}") })
    }

    /// Side-effect reports, oldest first.
    pub fn side_effects(&self) -> Vec<SideEffectReport> {
        self.inner.read(|r| r.side_effects()).into_iter().map(SideEffectReport::from).collect()
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
        let (pack, at) = (self.inner.pack(), or_now("at", at)?);
        let outcome = instruments::check_in(&pack, instrument, &answers, &locale)
            .map_err(|e| KatcoreError::invalid("answers", e.to_string()))?;
        let check_in = self
            .inner
            .update(CareChange::Wellbeing, |r| r.add_check_in(CheckInInput::Instrument(instrument, answers), at))?;
        Ok(CheckInResult {
            check_in_id: check_in.id,
            total: outcome.score.total,
            band: outcome.score.band,
            urgent: outcome.score.urgent,
            crisis_message: outcome.crisis_message,
            crisis_contacts: outcome
                .crisis_contacts
                .into_iter()
                .map(|c| CrisisContact { id: c.id, label: c.label, phone: c.phone, sms: c.sms })
                .collect(),
        })
    }

    /// Records a daily mood rating from 0 (worst) to 10 (best); returns the check-in's id.
    ///
    /// # Errors
    /// `InvalidInput` for a score above 10.
    #[uniffi::method(default(at = None))]
    pub fn record_mood(&self, score: u8, at: Option<SystemTime>) -> Result<String> {
        let at = or_now("at", at)?;
        Ok(self.inner.update(CareChange::Wellbeing, |r| r.add_check_in(CheckInInput::Mood(score), at))?.id)
    }

    /// Check-ins, oldest first.
    pub fn check_ins(&self) -> Vec<CheckIn> {
        self.inner.read(|r| r.check_ins()).into_iter().map(CheckIn::from).collect()
    }
}

/// A blood-pressure reading.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Vitals {
    /// Id.
    pub id: String,
    /// When it was taken.
    pub taken_at: SystemTime,
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
        Vitals {
            id: v.id,
            taken_at: to_system_time(v.taken_at),
            systolic: v.reading.systolic,
            diastolic: v.reading.diastolic,
            session_id: v.session_id,
            urgent: v.urgent,
        }
    }
}

/// A reported side effect.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SideEffectReport {
    /// Id.
    pub id: String,
    /// When it was reported.
    pub reported_at: SystemTime,
    /// The pack's side-effect id.
    pub effect_id: String,
    /// How bad.
    pub severity: Severity,
    /// The session it follows.
    pub session_id: Option<String>,
    /// Raised with the clinic as urgent.
    pub urgent: bool,
}

impl From<CoreSideEffect> for SideEffectReport {
    fn from(e: CoreSideEffect) -> Self {
        SideEffectReport {
            id: e.id,
            reported_at: to_system_time(e.reported_at),
            effect_id: e.effect_id,
            severity: e.severity,
            session_id: e.session_id,
            urgent: e.urgent,
        }
    }
}

/// A scored questionnaire, with what to show the client.
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
}

/// A recorded check-in.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CheckIn {
    /// Id.
    pub id: String,
    /// When it was completed.
    pub completed_at: SystemTime,
    /// What was recorded.
    pub kind: CheckInKind,
    /// Needs prompt clinical review.
    pub urgent: bool,
}

/// What a check-in recorded.
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
        CheckIn { id: c.id, completed_at: to_system_time(c.completed_at), kind, urgent: c.urgent }
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
