//! The client-facing explanation of each item's state, in English or Spanish.
//!
//! Item prompts and notes come from the pack; these sentences explain the
//! engine's judgement and so live with the engine. Locales other than `es`
//! get English. Times are shown in the session's UTC offset: as `HH:MM` on
//! the session's date, with the date otherwise.

use chrono::{DateTime, Duration, FixedOffset};

use super::BloodPressureReading;
use crate::pack::BloodPressureLimit;

/// Why an item is in its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    Unanswered,
    Unreadable,
    OptionalMissing,
    NotTaken {
        window: Duration,
    },
    WindowMet {
        at: DateTime<FixedOffset>,
        window: Duration,
    },
    WindowOpen {
        at: DateTime<FixedOffset>,
        window: Duration,
        until: DateTime<FixedOffset>,
    },
    BpOk {
        reading: BloodPressureReading,
        limit: BloodPressureLimit,
    },
    BpHigh {
        reading: BloodPressureReading,
        limit: BloodPressureLimit,
    },
    BpUrgent {
        reading: BloodPressureReading,
    },
    Confirmed,
    NotConfirmed,
    /// A pack-provided note (choice options).
    Note(String),
    TextGiven,
    ScreenNo,
    ScreenBlocks,
    ScreenCaution,
}

impl Reason {
    pub(super) fn message(&self, locale: &str, offset: FixedOffset, start: DateTime<FixedOffset>) -> String {
        let es = locale == "es" || locale.starts_with("es-");
        let time = |t: &DateTime<FixedOffset>| {
            let local = t.with_timezone(&offset);
            if local.date_naive() == start.date_naive() {
                local.format("%H:%M").to_string()
            } else {
                local.format("%Y-%m-%d %H:%M").to_string()
            }
        };
        let bp = |r: &BloodPressureReading| format!("{}/{}", r.systolic, r.diastolic);
        let limit = |l: &BloodPressureLimit| format!("{}/{}", l.systolic, l.diastolic);
        match (self, es) {
            (Reason::Unanswered, false) => "Not answered yet.".into(),
            (Reason::Unanswered, true) => "Todavía sin respuesta.".into(),
            (Reason::Unreadable, false) => "The saved answer does not fit this question; please answer again.".into(),
            (Reason::Unreadable, true) => {
                "La respuesta guardada no corresponde a esta pregunta; respóndela de nuevo.".into()
            }
            (Reason::OptionalMissing, false) => "Not answered. It is optional, but it helps to have one.".into(),
            (Reason::OptionalMissing, true) => "Sin respuesta. Es opcional, pero ayuda tenerla.".into(),
            (Reason::NotTaken { window }, false) => format!("None in the {} before the start.", span(*window)),
            (Reason::NotTaken { window }, true) => format!("Nada en las {} antes del inicio.", span(*window)),
            (Reason::WindowMet { at, window }, false) => {
                format!("Last at {}: at least {} before the start.", time(at), span(*window))
            }
            (Reason::WindowMet { at, window }, true) => {
                format!("Última vez a las {}: al menos {} antes del inicio.", time(at), span(*window))
            }
            (Reason::WindowOpen { at, window, until }, false) => format!(
                "Last at {}, less than {} before the start. The earliest start is {}.",
                time(at),
                span(*window),
                time(until)
            ),
            (Reason::WindowOpen { at, window, until }, true) => format!(
                "Última vez a las {}, menos de {} antes del inicio. Puedes empezar a partir de las {}.",
                time(at),
                span(*window),
                time(until)
            ),
            (Reason::BpOk { reading, limit: l }, false) => {
                format!("{} is below the clinic's limit of {}.", bp(reading), limit(l))
            }
            (Reason::BpOk { reading, limit: l }, true) => {
                format!("{} está por debajo del límite de la clínica ({}).", bp(reading), limit(l))
            }
            (Reason::BpHigh { reading, limit: l }, false) => format!(
                "{} is at or above the clinic's limit of {}. Do not start; contact your clinic.",
                bp(reading),
                limit(l)
            ),
            (Reason::BpHigh { reading, limit: l }, true) => format!(
                "{} está en o por encima del límite de la clínica ({}). No empieces; comunícate con tu clínica.",
                bp(reading),
                limit(l)
            ),
            (Reason::BpUrgent { reading }, false) => format!(
                "{} is dangerously high. Do not start. Contact your clinic now; if you have chest pain, \
                 a severe headache or trouble breathing, call emergency services.",
                bp(reading)
            ),
            (Reason::BpUrgent { reading }, true) => format!(
                "{} es peligrosamente alta. No empieces. Comunícate con tu clínica ahora; si tienes dolor \
                 de pecho, dolor de cabeza fuerte o dificultad para respirar, llama a emergencias.",
                bp(reading)
            ),
            (Reason::Confirmed, false) => "Confirmed.".into(),
            (Reason::Confirmed, true) => "Confirmado.".into(),
            (Reason::NotConfirmed, false) => "Not confirmed. Do not start; contact your clinic to reschedule.".into(),
            (Reason::NotConfirmed, true) => {
                "Sin confirmar. No empieces; comunícate con tu clínica para cambiar la fecha.".into()
            }
            (Reason::Note(note), _) => note.clone(),
            (Reason::TextGiven, false) => "Noted.".into(),
            (Reason::TextGiven, true) => "Anotado.".into(),
            (Reason::ScreenNo, false) => "No.".into(),
            (Reason::ScreenNo, true) => "No.".into(),
            (Reason::ScreenBlocks, false) => {
                "You answered yes. Do not start; your clinic needs to review this first.".into()
            }
            (Reason::ScreenBlocks, true) => {
                "Respondiste que sí. No empieces; tu clínica necesita revisarlo primero.".into()
            }
            (Reason::ScreenCaution, false) => "You answered yes. Your clinic will be told.".into(),
            (Reason::ScreenCaution, true) => "Respondiste que sí. Se le informará a tu clínica.".into(),
        }
    }
}

/// A window length in words: `3 h`, `45 min`, `1 h 30 min`.
/// The units read the same in English and Spanish.
fn span(window: Duration) -> String {
    let minutes = window.num_minutes();
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}
