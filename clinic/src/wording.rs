//! The pack's words for what a record holds, as the clinic's views (the
//! dashboard, the FHIR export) name it: one lookup each, in the pack's
//! default locale. An id the pack does not know is shown as itself, marked
//! as not in the pack (`pack_ids.rs`), never as if it were valid.

use std::borrow::Cow;

use katcore::instruments::Band;
use katcore::pack::{InstrumentKind, Pack};
use katcore::record::UrgentKind;

use crate::pack_ids::NOT_IN_PACK;

/// `text` without bidirectional control characters (embeddings,
/// overrides, isolates and marks: U+061C, U+200E–U+200F, U+202A–U+202E,
/// U+2066–U+2069), which a device could use to make its words read in
/// another order ("\u{202E}exe.live" shows as "evil.exe"). The dashboard
/// shows every device-written text through it, inside `<bdi>`.
pub(crate) fn without_bidi_controls(text: &str) -> Cow<'_, str> {
    let control =
        |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text.contains(control) {
        Cow::Owned(text.chars().filter(|c| !control(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// The prompt of a checklist item or screening question, or its id marked
/// as not in the pack.
pub(crate) fn item_label<'a>(pack: &'a Pack, id: &str) -> Cow<'a, str> {
    let locale = pack.default_locale.as_str();
    pack.checklist
        .iter()
        .find(|item| item.id == id)
        .map(|item| item.prompt.get(locale, locale))
        .or_else(|| pack.screening.iter().find(|q| q.id == id).map(|q| q.prompt.get(locale, locale)))
        .map_or_else(|| Cow::Owned(format!("{id} ({NOT_IN_PACK})")), Cow::Borrowed)
}

/// A checklist item or screening question as a clinician reads it in an
/// explanation: its id in words ("Last solid food", "Screening (ketamine
/// allergy)") rather than the question put to the client; the pack's
/// prompt for an id that is not words (`q17`); the id, marked, for one the
/// pack does not have.
pub(crate) fn item_name<'a>(pack: &'a Pack, id: &str) -> Cow<'a, str> {
    if pack.checklist.iter().any(|item| item.id == id) {
        return id_in_words(id).map_or_else(|| item_label(pack, id), Cow::Owned);
    }
    if is_screening(pack, id) {
        let bare = id.strip_prefix("screen_").unwrap_or(id);
        if let Some(words) = id_in_words(bare) {
            return Cow::Owned(format!("Screening ({})", words.to_lowercase()));
        }
    }
    item_label(pack, id)
}

/// Whether `id` is one of the pack's screening questions.
pub(crate) fn is_screening(pack: &Pack, id: &str) -> bool {
    pack.screening.iter().any(|question| question.id == id)
}

/// `last_solid_food` as "Last solid food"; `None` for an id that is not
/// lower-case words joined by `_`.
fn id_in_words(id: &str) -> Option<String> {
    let words: Vec<&str> = id.split('_').filter(|word| !word.is_empty()).collect();
    let worded = words.iter().all(|word| word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && words.iter().any(|word| word.len() >= 3 && word.bytes().all(|b| b.is_ascii_lowercase()));
    if !worded {
        return None;
    }
    let spaced = words.join(" ");
    let mut chars = spaced.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
}

/// The name of a side effect the pack lists, or its id marked as not in the pack.
pub(crate) fn side_effect_label<'a>(pack: &'a Pack, id: &str) -> Cow<'a, str> {
    let locale = pack.default_locale.as_str();
    pack.side_effects
        .iter()
        .find(|s| s.id == id)
        .map_or_else(|| Cow::Owned(format!("{id} ({NOT_IN_PACK})")), |s| Cow::Borrowed(s.label.get(locale, locale)))
}

/// A PHQ-9 or GAD-7 severity band in words.
pub(crate) fn band_name(band: Band) -> &'static str {
    match band {
        Band::Minimal => "minimal",
        Band::Mild => "mild",
        Band::Moderate => "moderate",
        Band::ModeratelySevere => "moderately severe",
        Band::Severe => "severe",
    }
}

/// A questionnaire's usual name.
pub(crate) fn instrument_name(kind: InstrumentKind) -> &'static str {
    match kind {
        InstrumentKind::Phq9 => "PHQ-9",
        InstrumentKind::Gad7 => "GAD-7",
    }
}

/// A kind of alert in words.
pub(crate) fn alert_kind_label(kind: UrgentKind) -> &'static str {
    match kind {
        UrgentKind::CrisisCheckIn => "PHQ-9 item 9: thoughts of self-harm",
        UrgentKind::UrgentBloodPressure => "Urgent blood pressure",
        UrgentKind::StartedNotReady => "Session started without a ready checklist",
        UrgentKind::SideEffect => "Side effect to review",
        UrgentKind::ChecklistBlocked => "Checklist blocked",
        UrgentKind::SevereScore => "Severe check-in score",
        UrgentKind::ScoreWorsened => "Check-in score worse than baseline",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanations_name_items_for_a_clinician_not_with_the_clients_question() {
        let pack = Pack::default_pack();
        assert_eq!(item_name(&pack, "last_solid_food"), "Last solid food");
        assert_eq!(item_name(&pack, "intention_set"), "Intention set");
        assert_eq!(item_name(&pack, "screen_psychosis_or_mania"), "Screening (psychosis or mania)");
        assert!(is_screening(&pack, "screen_pregnancy") && !is_screening(&pack, "blood_pressure"));
        assert_eq!(item_name(&pack, "made_up_item"), format!("made_up_item ({NOT_IN_PACK})"));
        assert_eq!(id_in_words("q17"), None, "an id that is not words keeps the pack's prompt");
        assert_eq!(id_in_words("Q_1"), None);
    }
}
