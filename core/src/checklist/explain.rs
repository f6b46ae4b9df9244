//! The client-facing explanation of each item's state, in English or Spanish.
//!
//! Item prompts and notes come from the pack; these sentences explain the
//! engine's judgement and so live with the engine. Locales other than `es`
//! get English.
//!
//! An instant is shown as the client's wall-clock time at that instant:
//! in the session's IANA zone when the caller knows it (so 10:00 EST on the
//! morning of a spring-forward day reads 10:00, not the 11:00 of the
//! session's later offset), else in the UTC offset the instant was entered
//! with. It reads `HH:MM` on the day of the session's start and with its
//! date otherwise, in words that fit either form in each language
//! ("at 10:00" / "on 2026-03-07 at 10:00"; "a las 10:00", "a la 01:30",
//! "el 2026-03-07 a las 10:00").

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Timelike};

use super::BloodPressureReading;
use crate::pack::BloodPressureLimit;
use crate::zone::Zone;

/// How instants are turned into the client's wall-clock time.
#[derive(Clone, Copy)]
pub(super) struct LocalTime<'a> {
    /// The client's zone, when known.
    pub(super) zone: Option<&'a Zone>,
    /// The local date of the session's start.
    pub(super) start_date: NaiveDate,
}

impl LocalTime<'_> {
    /// `at` as the client's wall-clock time at that instant.
    fn of(&self, at: &DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        match self.zone {
            Some(zone) => at.with_timezone(zone).fixed_offset(),
            None => *at,
        }
    }

    /// "at 10:00" / "on 2026-03-07 at 10:00", or the Spanish form; `from`
    /// asks for "from" ("a partir de") rather than "at".
    fn phrase(&self, at: &DateTime<FixedOffset>, es: bool, from: bool) -> String {
        let local = self.of(at);
        let clock = local.format("%H:%M");
        let date = local.format("%Y-%m-%d");
        let same_day = local.date_naive() == self.start_date;
        if es {
            // "a la 01:30" (la una) but "a las 13:30" (las trece): the
            // article agrees with the hour as it is read aloud.
            let article = if local.hour() == 1 { "la" } else { "las" };
            match (same_day, from) {
                (true, false) => format!("a {article} {clock}"),
                (true, true) => format!("a partir de {article} {clock}"),
                (false, false) => format!("el {date} a {article} {clock}"),
                (false, true) => format!("a partir del {date} a {article} {clock}"),
            }
        } else {
            match (same_day, from) {
                (true, false) => format!("at {clock}"),
                (true, true) => format!("from {clock}"),
                (false, false) => format!("on {date} at {clock}"),
                (false, true) => format!("from {date} at {clock}"),
            }
        }
    }
}

/// Why an item is in its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    Unanswered,
    Unreadable,
    /// A "last taken" instant after the session's start (it was moved
    /// earlier after the answer): not an answer to "before the start".
    AfterStart,
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
    pub(super) fn message(&self, locale: &str, clock: LocalTime<'_>) -> String {
        let es = crate::locale::language(locale) == "es";
        let when = |t: &DateTime<FixedOffset>| clock.phrase(t, es, false);
        let from = |t: &DateTime<FixedOffset>| clock.phrase(t, es, true);
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
                format!("Last {}: at least {} before the start.", when(at), span(*window))
            }
            (Reason::WindowMet { at, window }, true) => {
                format!("Última vez {}: al menos {} antes del inicio.", when(at), span(*window))
            }
            (Reason::WindowOpen { at, window, until }, false) => format!(
                "Last {}, less than {} before the start. You can start {}.",
                when(at),
                span(*window),
                from(until)
            ),
            (Reason::WindowOpen { at, window, until }, true) => format!(
                "Última vez {}, menos de {} antes del inicio. Puedes empezar {}.",
                when(at),
                span(*window),
                from(until)
            ),
            (Reason::AfterStart, false) => {
                "The time given is after the session's start; answer with when you last had it before the start."
                    .into()
            }
            (Reason::AfterStart, true) => {
                "La hora indicada es posterior al inicio de la sesión; indica cuándo fue la última vez antes del inicio."
                    .into()
            }
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
