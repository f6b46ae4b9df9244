//! Scoring of the PHQ-9 (depression) and GAD-7 (anxiety) check-ins.
//!
//! Each item is answered 0 ("not at all") to 3 ("nearly every day"); the total
//! is the sum. Severity bands — PHQ-9: 0–4 minimal, 5–9 mild, 10–14 moderate,
//! 15–19 moderately severe, 20–27 severe; GAD-7: 0–4 minimal, 5–9 mild,
//! 10–14 moderate, 15–21 severe. Any non-zero answer to PHQ-9 item 9
//! (thoughts of being better off dead or of self-harm) is **urgent whatever
//! the total**: the app shows the pack's crisis contacts at once and the
//! record raises a clinic alert.
//!
//! The bands belong to the published instruments, not to a clinic, so they
//! are fixed here; the pack carries the wording, and the clinic's
//! [`ScoreAlerts`](crate::pack::ScoreAlerts): besides item 9, a total at or
//! above a threshold (default PHQ-9 20, GAD-7 15, where the "severe" bands
//! begin) or a rise from the client's baseline (default 5 points, about the
//! change that programs using measurement-based care treat as clinically
//! meaningful) needs the clinic's prompt review ([`score_flag`]). The
//! baseline is the client's first check-in with that questionnaire. The
//! device shows the client a note ([`CheckInOutcome::review_message`]) and
//! the clinic re-derives the same flag from the stored answers
//! (`record::urgency`), whoever wrote them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::pack::InstrumentKind;
use crate::pack::{CrisisContact, Pack, ScoreAlert};

/// Severity band of a total score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// PHQ-9 / GAD-7 0–4.
    Minimal,
    /// 5–9.
    Mild,
    /// 10–14.
    Moderate,
    /// PHQ-9 15–19 (PHQ-9 only).
    ModeratelySevere,
    /// PHQ-9 20–27, GAD-7 15–21.
    Severe,
}

/// Why answers could not be scored.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum InstrumentError {
    /// The number of answers does not match the instrument.
    #[error("{instrument} needs exactly {expected} answers, got {found}")]
    WrongCount {
        /// `phq9` or `gad7`.
        instrument: &'static str,
        /// Items of the instrument.
        expected: usize,
        /// Answers given.
        found: usize,
    },
    /// An answer is outside 0–3 (the value itself is not echoed).
    #[error("{instrument} item {item}: answers must be 0, 1, 2 or 3")]
    OutOfRange {
        /// `phq9` or `gad7`.
        instrument: &'static str,
        /// 1-based item number.
        item: usize,
    },
    /// The instrument name is not `phq9` or `gad7`.
    #[error("instrument must be phq9 or gad7")]
    UnknownInstrument,
}

/// The score of one completed questionnaire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// Which questionnaire.
    pub instrument: InstrumentKind,
    /// Sum of the answers.
    pub total: u8,
    /// Severity band of the total.
    pub band: Band,
    /// True when the answers need prompt clinical review (PHQ-9 item 9 above 0).
    pub urgent: bool,
}

impl InstrumentKind {
    /// Parses `phq9` / `gad7` (also `PHQ-9`, `gad-7`).
    ///
    /// # Errors
    /// [`InstrumentError::UnknownInstrument`] for anything else.
    pub fn parse(name: &str) -> Result<InstrumentKind, InstrumentError> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "phq9" => Ok(InstrumentKind::Phq9),
            "gad7" => Ok(InstrumentKind::Gad7),
            _ => Err(InstrumentError::UnknownInstrument),
        }
    }
}

/// PHQ-9 item (1-based) whose any non-zero answer is urgent.
pub const PHQ9_SELF_HARM_ITEM: usize = 9;

/// Scores a questionnaire.
///
/// # Errors
/// [`InstrumentError::WrongCount`] or [`InstrumentError::OutOfRange`].
pub fn score(instrument: InstrumentKind, answers: &[u8]) -> Result<Score, InstrumentError> {
    let name = instrument.as_str();
    let expected = instrument.item_count();
    if answers.len() != expected {
        return Err(InstrumentError::WrongCount { instrument: name, expected, found: answers.len() });
    }
    if let Some(i) = answers.iter().position(|&a| a > 3) {
        return Err(InstrumentError::OutOfRange { instrument: name, item: i + 1 });
    }
    let total: u8 = answers.iter().sum();
    let band = match (instrument, total) {
        (_, 0..=4) => Band::Minimal,
        (_, 5..=9) => Band::Mild,
        (_, 10..=14) => Band::Moderate,
        (InstrumentKind::Phq9, 15..=19) => Band::ModeratelySevere,
        _ => Band::Severe,
    };
    let urgent = instrument == InstrumentKind::Phq9 && answers[PHQ9_SELF_HARM_ITEM - 1] > 0;
    Ok(Score { instrument, total, band, urgent })
}

/// Why a score needs the clinic's prompt review, besides PHQ-9 item 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreFlag {
    /// The total is at or above the pack's `total_at_least`.
    Severe,
    /// The total rose by the pack's `rise_from_baseline` or more over the baseline.
    Worsened,
}

/// The score rule of the pack's [`ScoreAlert`] for a `total`, given the
/// client's `baseline` total (their first check-in with this questionnaire;
/// `None` when this check-in is the first). A severe total wins over a rise.
pub fn score_flag(alert: ScoreAlert, total: u8, baseline: Option<u8>) -> Option<ScoreFlag> {
    if alert.total_at_least > 0 && total >= alert.total_at_least {
        return Some(ScoreFlag::Severe);
    }
    let rise = baseline.map(|b| i16::from(total) - i16::from(b));
    (alert.rise_from_baseline > 0 && rise.is_some_and(|r| r >= i16::from(alert.rise_from_baseline)))
        .then_some(ScoreFlag::Worsened)
}

/// A scored check-in with what to show the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInOutcome {
    /// The score.
    #[serde(flatten)]
    pub score: Score,
    /// For an urgent score: the pack's crisis message in the requested locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crisis_message: Option<String>,
    /// For an urgent score: who to reach, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crisis_contacts: Vec<LocalizedContact>,
    /// A severe score or a marked worsening ([`score_flag`]): the clinic is alerted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ScoreFlag>,
    /// For a flagged score: a note for the client, in the requested locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_message: Option<String>,
}

/// A crisis contact with its label in one locale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedContact {
    /// Stable identifier.
    pub id: String,
    /// Name in the requested locale.
    pub label: String,
    /// Number to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Number to text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
}

impl LocalizedContact {
    fn new(pack: &Pack, contact: &CrisisContact, locale: &str) -> Self {
        LocalizedContact {
            id: contact.id.clone(),
            label: pack.text(&contact.label, locale).to_owned(),
            phone: contact.phone.clone(),
            sms: contact.sms.clone(),
        }
    }
}

/// Scores a check-in and, when urgent, attaches the pack's crisis contacts;
/// `baseline` is the client's first total with this questionnaire, if any.
///
/// # Errors
/// As [`score`].
pub fn check_in(
    pack: &Pack,
    instrument: InstrumentKind,
    answers: &[u8],
    baseline: Option<u8>,
    locale: &str,
) -> Result<CheckInOutcome, InstrumentError> {
    Ok(outcome(pack, score(instrument, answers)?, baseline, locale))
}

/// What to show the client for `score`: for an urgent one, the pack's
/// crisis message and contacts in `locale`; for a severe or markedly worse
/// one ([`score_flag`] against `baseline`), a note that the clinic will see it.
pub fn outcome(pack: &Pack, score: Score, baseline: Option<u8>, locale: &str) -> CheckInOutcome {
    let review = score_flag(pack.thresholds.score_alerts.of(score.instrument), score.total, baseline);
    let es = crate::locale::language(pack.locale_for(locale)) == "es";
    let review_message = review.map(|_| {
        if es {
            "Tus respuestas muestran que estás pasando por un momento difícil. Tu clínica verá este registro \
             y se pondrá en contacto contigo; si en algún momento no te sientes a salvo, usa los contactos de crisis."
        } else {
            "Your answers show you are going through a hard time. Your clinic will see this check-in and \
             reach out to you; if at any point you do not feel safe, use the crisis contacts."
        }
        .to_owned()
    });
    let (crisis_message, crisis_contacts) = if score.urgent {
        (
            Some(pack.text(&pack.crisis.message, locale).to_owned()),
            pack.crisis.contacts.iter().map(|c| LocalizedContact::new(pack, c, locale)).collect(),
        )
    } else {
        (None, Vec::new())
    };
    CheckInOutcome { score, crisis_message, crisis_contacts, review, review_message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn phq9_with_total(total: u8) -> Vec<u8> {
        // Fill items 1–8 first so item 9 stays 0 where possible.
        let mut answers = vec![0u8; 9];
        let mut left = total;
        for a in answers.iter_mut().take(8) {
            *a = left.min(3);
            left -= *a;
        }
        answers[8] = left;
        answers
    }

    #[test]
    fn phq9_band_boundaries() {
        for (total, band) in [
            (0, Band::Minimal),
            (4, Band::Minimal),
            (5, Band::Mild),
            (9, Band::Mild),
            (10, Band::Moderate),
            (14, Band::Moderate),
            (15, Band::ModeratelySevere),
            (19, Band::ModeratelySevere),
            (20, Band::Severe),
            (24, Band::Severe),
        ] {
            let s = score(InstrumentKind::Phq9, &phq9_with_total(total)).unwrap();
            assert_eq!((s.total, s.band, s.urgent), (total, band, false), "total {total}");
        }
        let s = score(InstrumentKind::Phq9, &[3; 9]).unwrap();
        assert_eq!((s.total, s.band, s.urgent), (27, Band::Severe, true));
    }

    #[test]
    fn gad7_band_boundaries_have_no_moderately_severe() {
        for (answers, total, band) in [
            ([0, 0, 0, 0, 0, 0, 0], 0, Band::Minimal),
            ([1, 1, 1, 1, 0, 0, 0], 4, Band::Minimal),
            ([1, 1, 1, 1, 1, 0, 0], 5, Band::Mild),
            ([3, 3, 3, 0, 0, 0, 0], 9, Band::Mild),
            ([3, 3, 3, 1, 0, 0, 0], 10, Band::Moderate),
            ([3, 3, 3, 3, 2, 0, 0], 14, Band::Moderate),
            ([3, 3, 3, 3, 3, 0, 0], 15, Band::Severe),
            ([3, 3, 3, 3, 3, 3, 3], 21, Band::Severe),
        ] {
            let s = score(InstrumentKind::Gad7, &answers).unwrap();
            assert_eq!((s.total, s.band, s.urgent), (total, band, false));
        }
    }

    #[test]
    fn any_item_nine_answer_is_urgent_whatever_the_total() {
        let mut answers = [0u8; 9];
        answers[8] = 1;
        let outcome = check_in(&Pack::default_pack(), InstrumentKind::Phq9, &answers, None, "en").unwrap();
        assert_eq!((outcome.score.total, outcome.score.band, outcome.score.urgent), (1, Band::Minimal, true));
        assert!(outcome.crisis_contacts.iter().any(|c| c.phone.as_deref() == Some("988")));
        assert!(outcome.crisis_message.is_some());
    }

    #[test]
    fn a_high_score_without_item_nine_is_flagged_for_review_not_crisis() {
        let outcome =
            check_in(&Pack::default_pack(), InstrumentKind::Phq9, &[3, 3, 3, 3, 3, 3, 3, 3, 0], None, "es").unwrap();
        assert_eq!((outcome.score.band, outcome.score.urgent), (Band::Severe, false));
        assert!(outcome.crisis_contacts.is_empty() && outcome.crisis_message.is_none());
        assert_eq!(outcome.review, Some(ScoreFlag::Severe));
        assert!(outcome.review_message.unwrap().starts_with("Tus respuestas"));
    }

    fn flag(kind: InstrumentKind, total: u8, baseline: Option<u8>) -> Option<ScoreFlag> {
        score_flag(Pack::default_pack().thresholds.score_alerts.of(kind), total, baseline)
    }

    #[test]
    fn severe_totals_are_flagged_from_the_packs_threshold() {
        assert_eq!(flag(InstrumentKind::Phq9, 19, None), None);
        assert_eq!(flag(InstrumentKind::Phq9, 20, None), Some(ScoreFlag::Severe));
        assert_eq!(flag(InstrumentKind::Gad7, 14, None), None);
        assert_eq!(flag(InstrumentKind::Gad7, 15, None), Some(ScoreFlag::Severe));
        // A severe total is severe even when it is no worse than the baseline.
        assert_eq!(flag(InstrumentKind::Gad7, 15, Some(20)), Some(ScoreFlag::Severe));
        let off = ScoreAlert { total_at_least: 0, rise_from_baseline: 0 };
        assert_eq!(score_flag(off, 27, Some(0)), None);
    }

    #[test]
    fn a_rise_of_five_over_the_baseline_is_flagged() {
        assert_eq!(flag(InstrumentKind::Phq9, 12, Some(8)), None);
        assert_eq!(flag(InstrumentKind::Phq9, 13, Some(8)), Some(ScoreFlag::Worsened));
        assert_eq!(flag(InstrumentKind::Gad7, 9, Some(5)), None);
        assert_eq!(flag(InstrumentKind::Gad7, 10, Some(5)), Some(ScoreFlag::Worsened));
        // Improvement and a first check-in are not worsening.
        assert_eq!(flag(InstrumentKind::Phq9, 3, Some(18)), None);
        assert_eq!(flag(InstrumentKind::Phq9, 19, None), None);
        let strict = ScoreAlert { total_at_least: 27, rise_from_baseline: 3 };
        assert_eq!(score_flag(strict, 11, Some(8)), Some(ScoreFlag::Worsened));
    }

    #[test]
    fn bad_answers_are_named_without_their_values() {
        assert_eq!(
            score(InstrumentKind::Gad7, &[0; 6]).unwrap_err(),
            InstrumentError::WrongCount { instrument: "gad7", expected: 7, found: 6 }
        );
        let err = score(InstrumentKind::Phq9, &[0, 0, 7, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err, InstrumentError::OutOfRange { instrument: "phq9", item: 3 });
        assert!(!err.to_string().contains('7'));
        assert_eq!(InstrumentKind::parse("PHQ-9"), Ok(InstrumentKind::Phq9));
        assert_eq!(InstrumentKind::parse("bdi"), Err(InstrumentError::UnknownInstrument));
    }

    proptest! {
        #[test]
        fn totals_bands_and_urgency_follow_the_definitions(answers in proptest::collection::vec(0u8..=3, 9)) {
            let s = score(InstrumentKind::Phq9, &answers).unwrap();
            prop_assert_eq!(u32::from(s.total), answers.iter().map(|&a| u32::from(a)).sum::<u32>());
            prop_assert_eq!(s.urgent, answers[8] > 0);
            let expected = match s.total { 0..=4 => Band::Minimal, 5..=9 => Band::Mild, 10..=14 => Band::Moderate, 15..=19 => Band::ModeratelySevere, _ => Band::Severe };
            prop_assert_eq!(s.band, expected);
        }
    }
}
