//! Semantic rules a pack must meet beyond its JSON shape.
//!
//! Parsing proves a pack has the right fields; validation proves it can be
//! used safely: every text is translated into every declared locale, ids are
//! unique and well-formed, thresholds are plausible and ordered, and both
//! check-in instruments are complete. The first broken rule is reported with
//! the path of the offending field.

use std::collections::HashSet;

use chrono::NaiveTime;

use super::{InstrumentKind, Pack, PackError, Rule, Section, PACK_FORMAT};
use crate::locale::Text;

/// Longest time window a checklist item may ask for: one week.
const MAX_WINDOW_MINUTES: u32 = 7 * 24 * 60;
/// Latest day an integration prompt may fall on.
pub(crate) const MAX_INTEGRATION_DAY: u8 = 30;
/// Latest a side-effect check-in may be, in minutes after the session: two days.
const MAX_CHECK_IN_MINUTES: u32 = 2 * 24 * 60;

type Result = std::result::Result<(), PackError>;

impl Pack {
    /// Checks the rules a usable pack meets.
    ///
    /// # Errors
    /// [`PackError::Invalid`] naming the first offending field.
    pub fn validate(&self) -> Result {
        if self.format != PACK_FORMAT {
            return Err(PackError::UnsupportedFormat { found: self.format.to_string() });
        }
        check_id("id", &self.id, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))?;
        if self.version == 0 {
            return Err(PackError::invalid("version", "must be 1 or more"));
        }
        if self.publisher.trim().is_empty() {
            return Err(PackError::invalid("publisher", "must not be empty"));
        }
        self.check_locales()?;
        let v = Texts { locales: &self.locales };
        v.text("title", &self.title)?;
        self.check_thresholds()?;
        check_sections("guidelines", &self.guidelines, &v)?;
        check_sections("post_session", &self.post_session, &v)?;
        self.check_checklist(&v)?;
        let mut seen = unique("side_effects");
        non_empty("side_effects", self.side_effects.len())?;
        for (i, effect) in self.side_effects.iter().enumerate() {
            seen.id(i, &effect.id)?;
            v.text(format!("side_effects[{i}].label"), &effect.label)?;
        }
        let mut seen = unique("side_effect_check_ins");
        for (i, prompt) in self.side_effect_check_ins.iter().enumerate() {
            seen.id(i, &prompt.id)?;
            if !(1..=MAX_CHECK_IN_MINUTES).contains(&prompt.after_minutes) {
                return Err(PackError::invalid(
                    format!("side_effect_check_ins[{i}].after_minutes"),
                    format!("must be between 1 and {MAX_CHECK_IN_MINUTES}"),
                ));
            }
            v.text(format!("side_effect_check_ins[{i}].text"), &prompt.text)?;
        }
        let mut seen = unique("integration");
        non_empty("integration", self.integration.len())?;
        for (i, prompt) in self.integration.iter().enumerate() {
            seen.id(i, &prompt.id)?;
            if prompt.day > MAX_INTEGRATION_DAY {
                return Err(PackError::invalid(
                    format!("integration[{i}].day"),
                    format!("must be at most {MAX_INTEGRATION_DAY}"),
                ));
            }
            parse_local_time(&prompt.local_time)
                .ok_or_else(|| PackError::invalid(format!("integration[{i}].local_time"), "must be HH:MM"))?;
            v.text(format!("integration[{i}].text"), &prompt.text)?;
        }
        self.check_instruments(&v)?;
        v.text("crisis.message", &self.crisis.message)?;
        let mut seen = unique("crisis.contacts");
        non_empty("crisis.contacts", self.crisis.contacts.len())?;
        for (i, contact) in self.crisis.contacts.iter().enumerate() {
            seen.id(i, &contact.id)?;
            v.text(format!("crisis.contacts[{i}].label"), &contact.label)?;
            if contact.phone.is_none() && contact.sms.is_none() {
                return Err(PackError::invalid(format!("crisis.contacts[{i}]"), "needs a phone or sms number"));
            }
            for (field, number) in [("phone", &contact.phone), ("sms", &contact.sms)] {
                if let Some(number) = number {
                    let ok = number.chars().any(|c| c.is_ascii_digit())
                        && number.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
                    if !ok {
                        return Err(PackError::invalid(
                            format!("crisis.contacts[{i}].{field}"),
                            "must be a dialable number (digits, spaces, + - ( ) .)",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Rules a pack must also meet to be signed ([`super::sign_pack`]) or
    /// published to a clinic server, beyond [`Pack::validate`] (which a
    /// parsed pack has already passed, so it is not run again here).
    ///
    /// They are kept apart because they came later: a device never refuses
    /// a pack its clinic already signed for them (it would fall back to an
    /// older pack, or the default one, with other limits). Today: no
    /// integration prompt's `local_time` inside the quiet hours (the plan
    /// would move it to the next morning, past its own day).
    ///
    /// # Errors
    /// [`PackError::Invalid`] naming the first offending field.
    pub fn check_authoring(&self) -> Result {
        for (i, prompt) in self.integration.iter().enumerate() {
            if self
                .thresholds
                .quiet_hours
                .as_ref()
                .zip(parse_local_time(&prompt.local_time))
                .is_some_and(|(quiet, time)| quiet.contains(time))
            {
                return Err(PackError::invalid(
                    format!("integration[{i}].local_time"),
                    "falls inside thresholds.quiet_hours: choose a time of day outside the client's night",
                ));
            }
        }
        Ok(())
    }

    fn check_locales(&self) -> Result {
        non_empty("locales", self.locales.len())?;
        let mut seen = HashSet::new();
        for (i, tag) in self.locales.iter().enumerate() {
            let mut parts = tag.split('-');
            let language_ok =
                parts.next().is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
            let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
            if !(language_ok && rest_ok) {
                return Err(PackError::invalid(format!("locales[{i}]"), "must be a language tag like en or es-MX"));
            }
            if !seen.insert(tag) {
                return Err(PackError::invalid(format!("locales[{i}]"), "is listed twice"));
            }
        }
        if !self.locales.contains(&self.default_locale) {
            return Err(PackError::invalid("default_locale", "must be one of locales"));
        }
        Ok(())
    }

    fn check_thresholds(&self) -> Result {
        let t = &self.thresholds;
        for (name, limit) in [("bp_limit", t.bp_limit), ("bp_urgent", t.bp_urgent)] {
            if !(80..=250).contains(&limit.systolic) {
                return Err(PackError::invalid(format!("thresholds.{name}.systolic"), "must be between 80 and 250"));
            }
            if !(40..=150).contains(&limit.diastolic) {
                return Err(PackError::invalid(format!("thresholds.{name}.diastolic"), "must be between 40 and 150"));
            }
        }
        if t.bp_urgent.systolic < t.bp_limit.systolic || t.bp_urgent.diastolic < t.bp_limit.diastolic {
            return Err(PackError::invalid("thresholds.bp_urgent", "must not be below bp_limit"));
        }
        if t.driving_local_hour > 23 {
            return Err(PackError::invalid("thresholds.driving_local_hour", "must be an hour from 0 to 23"));
        }
        if !(1..=48).contains(&t.driving_min_hours) {
            return Err(PackError::invalid("thresholds.driving_min_hours", "must be from 1 to 48 hours"));
        }
        if let Some(quiet) = &t.quiet_hours {
            for (name, time) in [("start", &quiet.start), ("end", &quiet.end)] {
                parse_local_time(time)
                    .ok_or_else(|| PackError::invalid(format!("thresholds.quiet_hours.{name}"), "must be HH:MM"))?;
            }
            if quiet.start == quiet.end {
                return Err(PackError::invalid("thresholds.quiet_hours", "start and end must differ"));
            }
        }
        for kind in [InstrumentKind::Phq9, InstrumentKind::Gad7] {
            let alert = t.score_alerts.of(kind);
            let max = kind.max_total();
            let path = |field: &str| format!("thresholds.score_alerts.{}.{field}", kind.as_str());
            if alert.total_at_least > max {
                return Err(PackError::invalid(path("total_at_least"), format!("must be from 0 (off) to {max}")));
            }
            if alert.rise_from_baseline > max {
                return Err(PackError::invalid(path("rise_from_baseline"), format!("must be from 0 (off) to {max}")));
            }
        }
        Ok(())
    }

    fn check_checklist(&self, v: &Texts<'_>) -> Result {
        non_empty("checklist", self.checklist.len())?;
        // Checklist and screening answers share one namespace of ids.
        let mut seen = unique("checklist");
        for (i, item) in self.checklist.iter().enumerate() {
            seen.id(i, &item.id)?;
            v.text(format!("checklist[{i}].prompt"), &item.prompt)?;
            match &item.rule {
                Rule::TimeWindow { window_minutes, reminder } => {
                    if !(1..=MAX_WINDOW_MINUTES).contains(window_minutes) {
                        return Err(PackError::invalid(
                            format!("checklist[{i}].rule.window_minutes"),
                            format!("must be between 1 and {MAX_WINDOW_MINUTES}"),
                        ));
                    }
                    v.text(format!("checklist[{i}].rule.reminder"), reminder)?;
                }
                Rule::Choice { options } => {
                    let path = format!("checklist[{i}].rule.options");
                    non_empty(&path, options.len())?;
                    let mut values = unique(&path);
                    for (j, option) in options.iter().enumerate() {
                        values.id(j, &option.value)?;
                        v.text(format!("{path}[{j}].label"), &option.label)?;
                        v.text(format!("{path}[{j}].note"), &option.note)?;
                    }
                }
                Rule::BloodPressure | Rule::Attestation | Rule::FreeText => {}
            }
        }
        seen.path = "screening".into();
        for (i, question) in self.screening.iter().enumerate() {
            seen.id(i, &question.id)?;
            v.text(format!("screening[{i}].prompt"), &question.prompt)?;
        }
        Ok(())
    }

    fn check_instruments(&self, v: &Texts<'_>) -> Result {
        let mut kinds = HashSet::new();
        for (i, instrument) in self.instruments.iter().enumerate() {
            if !kinds.insert(instrument.kind) {
                return Err(PackError::invalid(format!("instruments[{i}].kind"), "is listed twice"));
            }
            v.text(format!("instruments[{i}].title"), &instrument.title)?;
            v.text(format!("instruments[{i}].stem"), &instrument.stem)?;
            let expected = instrument.kind.item_count();
            if instrument.items.len() != expected {
                return Err(PackError::invalid(
                    format!("instruments[{i}].items"),
                    format!("{} needs exactly {expected} items", instrument.kind.as_str()),
                ));
            }
            if instrument.options.len() != 4 {
                return Err(PackError::invalid(
                    format!("instruments[{i}].options"),
                    "needs exactly 4 options (0 to 3)",
                ));
            }
            for (j, text) in instrument.items.iter().chain(&instrument.options).enumerate() {
                let (list, k) = if j < expected { ("items", j) } else { ("options", j - expected) };
                v.text(format!("instruments[{i}].{list}[{k}]"), text)?;
            }
        }
        for kind in [super::InstrumentKind::Phq9, super::InstrumentKind::Gad7] {
            if !kinds.contains(&kind) {
                return Err(PackError::invalid("instruments", format!("must include {}", kind.as_str())));
            }
        }
        Ok(())
    }
}

/// Parses an `HH:MM` local time, as used by integration prompts.
pub fn parse_local_time(text: &str) -> Option<NaiveTime> {
    if text.len() != 5 {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

/// Checks texts against the pack's declared locales.
struct Texts<'a> {
    locales: &'a [String],
}

impl Texts<'_> {
    fn text(&self, path: impl Into<String>, text: &Text) -> Result {
        let path = path.into();
        for locale in self.locales {
            match text.try_get(locale) {
                None => return Err(PackError::invalid(path, format!("has no {locale} text"))),
                Some(s) if s.trim().is_empty() => {
                    return Err(PackError::invalid(format!("{path}.{locale}"), "must not be blank"))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = text.locales().find(|l| !self.locales.iter().any(|d| d == l)) {
            return Err(PackError::invalid(format!("{path}.{extra}"), "is in a locale the pack does not declare"));
        }
        Ok(())
    }
}

fn check_sections(path: &str, sections: &[Section], v: &Texts<'_>) -> Result {
    non_empty(path, sections.len())?;
    let mut seen = unique(path);
    for (i, section) in sections.iter().enumerate() {
        seen.id(i, &section.id)?;
        v.text(format!("{path}[{i}].title"), &section.title)?;
        non_empty(&format!("{path}[{i}].body"), section.body.len())?;
        for (j, paragraph) in section.body.iter().enumerate() {
            v.text(format!("{path}[{i}].body[{j}]"), paragraph)?;
        }
    }
    Ok(())
}

fn non_empty(path: &str, len: usize) -> Result {
    if len == 0 {
        return Err(PackError::invalid(path, "must not be empty"));
    }
    Ok(())
}

fn check_id(path: &str, id: &str, allowed: impl Fn(char) -> bool) -> Result {
    if id.is_empty() || id.len() > 64 || !id.chars().all(allowed) {
        return Err(PackError::invalid(path, "must be 1 to 64 characters of a-z, 0-9 and the allowed punctuation"));
    }
    Ok(())
}

/// Tracks ids within one list (or one shared namespace).
struct Unique {
    path: String,
    seen: HashSet<String>,
}

fn unique(path: &str) -> Unique {
    Unique { path: path.to_owned(), seen: HashSet::new() }
}

impl Unique {
    fn id(&mut self, index: usize, id: &str) -> Result {
        let path = format!("{}[{index}].id", self.path);
        check_id(&path, id, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')?;
        if !self.seen.insert(id.to_owned()) {
            return Err(PackError::invalid(path, format!("duplicates the id {id}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{BloodPressureLimit, Outcome};

    fn pack() -> Pack {
        Pack::default_pack().as_ref().clone()
    }

    fn invalid_at(pack: &Pack) -> String {
        match pack.validate() {
            Err(PackError::Invalid { path, .. }) => path,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_translation_is_named() {
        let mut p = pack();
        p.checklist[2].prompt = Text::new([("en", "Only English")]);
        assert_eq!(invalid_at(&p), "checklist[2].prompt");
    }

    #[test]
    fn blank_and_undeclared_locales_are_refused() {
        let mut p = pack();
        p.title = Text::new([("en", "Title"), ("es", "  ")]);
        assert_eq!(invalid_at(&p), "title.es");
        let mut p = pack();
        p.title = Text::new([("en", "Title"), ("es", "Título"), ("fr", "Titre")]);
        assert_eq!(invalid_at(&p), "title.fr");
    }

    #[test]
    fn duplicate_ids_across_checklist_and_screening_are_refused() {
        let mut p = pack();
        p.screening[0].id = p.checklist[0].id.clone();
        assert_eq!(invalid_at(&p), "screening[0].id");
    }

    #[test]
    fn thresholds_must_be_plausible_and_ordered() {
        let mut p = pack();
        p.thresholds.bp_urgent = BloodPressureLimit { systolic: 130, diastolic: 120 };
        assert_eq!(invalid_at(&p), "thresholds.bp_urgent");
        let mut p = pack();
        p.thresholds.bp_limit.diastolic = 0;
        assert_eq!(invalid_at(&p), "thresholds.bp_limit.diastolic");
        let mut p = pack();
        p.thresholds.driving_local_hour = 24;
        assert_eq!(invalid_at(&p), "thresholds.driving_local_hour");
    }

    #[test]
    fn windows_times_and_days_are_bounded() {
        let mut p = pack();
        if let Rule::TimeWindow { window_minutes, .. } = &mut p.checklist[0].rule {
            *window_minutes = 0;
        }
        assert_eq!(invalid_at(&p), "checklist[0].rule.window_minutes");
        let mut p = pack();
        p.integration[0].local_time = "7pm".into();
        assert_eq!(invalid_at(&p), "integration[0].local_time");
        let mut p = pack();
        p.integration[0].day = 31;
        assert_eq!(invalid_at(&p), "integration[0].day");
    }

    #[test]
    fn instruments_must_be_complete() {
        let mut p = pack();
        let i = p.instruments.iter().position(|i| i.kind == super::super::InstrumentKind::Phq9).unwrap();
        p.instruments[i].items.pop();
        assert_eq!(invalid_at(&p), format!("instruments[{i}].items"));
        let mut p = pack();
        p.instruments.retain(|i| i.kind != super::super::InstrumentKind::Gad7);
        assert_eq!(invalid_at(&p), "instruments");
    }

    #[test]
    fn crisis_contacts_must_be_reachable() {
        let mut p = pack();
        p.crisis.contacts[0].phone = Some("call us".into());
        assert_eq!(invalid_at(&p), "crisis.contacts[0].phone");
        let mut p = pack();
        p.crisis.contacts.clear();
        assert_eq!(invalid_at(&p), "crisis.contacts");
    }

    #[test]
    fn ids_and_choice_values_are_checked() {
        let mut p = pack();
        p.id = "Has Spaces".into();
        assert_eq!(invalid_at(&p), "id");
        let mut p = pack();
        let item = p.checklist.iter_mut().find(|i| matches!(i.rule, Rule::Choice { .. })).unwrap();
        if let Rule::Choice { options } = &mut item.rule {
            options[1].value = options[0].value.clone();
            options[1].outcome = Outcome::Fail;
        }
        assert!(invalid_at(&p).ends_with("rule.options[1].id"));
    }

    #[test]
    fn the_night_driving_and_score_settings_are_checked() {
        let mut p = pack();
        p.thresholds.driving_min_hours = 0;
        assert_eq!(invalid_at(&p), "thresholds.driving_min_hours");
        p.thresholds.driving_min_hours = 49;
        assert_eq!(invalid_at(&p), "thresholds.driving_min_hours");
        p.thresholds.driving_min_hours = 48;
        p.validate().unwrap();

        let mut p = pack();
        p.thresholds.quiet_hours = Some(crate::pack::QuietHours { start: "22:00".into(), end: "7:00".into() });
        assert_eq!(invalid_at(&p), "thresholds.quiet_hours.end");
        p.thresholds.quiet_hours = Some(crate::pack::QuietHours { start: "06:00".into(), end: "06:00".into() });
        assert_eq!(invalid_at(&p), "thresholds.quiet_hours");

        let mut p = pack();
        p.thresholds.score_alerts.phq9.total_at_least = 28;
        assert_eq!(invalid_at(&p), "thresholds.score_alerts.phq9.total_at_least");
        let mut p = pack();
        p.thresholds.score_alerts.gad7.rise_from_baseline = 22;
        assert_eq!(invalid_at(&p), "thresholds.score_alerts.gad7.rise_from_baseline");
        p.thresholds.score_alerts.gad7.rise_from_baseline = 21;
        p.validate().unwrap();
    }

    #[test]
    fn an_integration_prompt_inside_the_night_is_not_signed_but_an_already_signed_one_is_read() {
        let authoring_error_at = |p: &Pack| match p.check_authoring() {
            Err(PackError::Invalid { path, .. }) => path,
            other => panic!("expected Invalid, got {other:?}"),
        };
        let mut p = pack();
        p.integration[0].local_time = "22:00".into();
        assert_eq!(authoring_error_at(&p), "integration[0].local_time");
        p.validate().unwrap();
        p.integration[0].local_time = "06:59".into();
        assert_eq!(authoring_error_at(&p), "integration[0].local_time");
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        assert!(matches!(super::super::sign_pack(&p, &key), Err(PackError::Invalid { .. })));
        p.integration[0].local_time = "21:59".into();
        p.check_authoring().unwrap();
        p.integration[0].local_time = "07:00".into();
        p.check_authoring().unwrap();
        // With the quiet hours off, any time of day is the clinic's choice.
        p.thresholds.quiet_hours = None;
        p.integration[0].local_time = "23:30".into();
        p.check_authoring().unwrap();
    }

    #[test]
    fn a_pack_written_before_the_new_settings_gets_their_defaults() {
        let mut value: serde_json::Value = serde_json::from_str(Pack::default_pack_json()).unwrap();
        let thresholds = value["thresholds"].as_object_mut().unwrap();
        for key in ["driving_min_hours", "quiet_hours", "score_alerts"] {
            thresholds.remove(key).unwrap();
        }
        let old = Pack::from_value(value.clone()).unwrap();
        assert_eq!(old.thresholds.driving_min_hours, 8);
        assert_eq!(old.thresholds.quiet_hours, Some(crate::pack::QuietHours::default()));
        assert_eq!(
            old.thresholds.score_alerts.phq9,
            crate::pack::ScoreAlert { total_at_least: 20, rise_from_baseline: 5 }
        );
        assert_eq!(
            old.thresholds.score_alerts.gad7,
            crate::pack::ScoreAlert { total_at_least: 15, rise_from_baseline: 5 }
        );
        assert_eq!(old.thresholds, Pack::default_pack().thresholds);
        // `null` turns the quiet hours off.
        value["thresholds"]["quiet_hours"] = serde_json::Value::Null;
        assert_eq!(Pack::from_value(value).unwrap().thresholds.quiet_hours, None);
    }

    #[test]
    fn a_pack_that_repeats_a_key_is_refused_naming_it() {
        let json = Pack::default_pack_json().replacen(
            "\"driving_local_hour\": 8",
            "\"driving_local_hour\": 8, \"driving_local_hour\": 3",
            1,
        );
        assert_ne!(json, Pack::default_pack_json());
        match Pack::from_json(json.as_bytes()) {
            Err(PackError::Malformed { reason }) => {
                assert!(reason.contains("duplicate key \"driving_local_hour\""), "{reason}")
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}
