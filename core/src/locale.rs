//! Localized text and locale negotiation.
//!
//! Every client-facing string in a content pack is a [`Text`]: a map from a
//! locale tag (`en`, `es`, `es-MX`, …) to the string in that language. A pack
//! declares the locales it supports and validation guarantees that every
//! [`Text`] carries all of them, so a lookup in a supported locale never
//! fails. [`negotiate`] picks the best supported locale for what the device
//! asks for.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A string in several languages, keyed by locale tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Text(BTreeMap<String, String>);

impl Text {
    /// Builds a text from `(locale, string)` pairs.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Text(pairs.into_iter().map(|(l, s)| (l.to_owned(), s.to_owned())).collect())
    }

    /// The string in `locale`, or `None` when this text lacks that locale.
    pub fn try_get(&self, locale: &str) -> Option<&str> {
        self.0.get(locale).map(String::as_str)
    }

    /// The string in `locale`, falling back to `fallback`, then to any locale.
    ///
    /// For a validated pack and a locale chosen with [`negotiate`] the first
    /// lookup always succeeds; the fallbacks keep a lookup total.
    pub fn get(&self, locale: &str, fallback: &str) -> &str {
        self.try_get(locale)
            .or_else(|| self.try_get(fallback))
            .or_else(|| self.0.values().next().map(String::as_str))
            .unwrap_or("")
    }

    /// The locales this text is written in.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// The language subtag of a locale tag: `es` for `es-MX`, `en` for `en`.
pub fn language(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// Picks the best of `supported` for a `requested` tag (BCP 47 style).
///
/// An exact match wins (case-insensitive), then the requested tag's language
/// (`es-MX` → `es`), then a supported regional variant of that language
/// (`pt` → `pt-BR`), and finally `default`.
pub fn negotiate<'a>(requested: &str, supported: &'a [String], default: &'a str) -> &'a str {
    let requested = requested.trim().replace('_', "-");
    let wanted = language(&requested);
    let find = |pred: &dyn Fn(&str) -> bool| supported.iter().map(String::as_str).find(|s| pred(s));
    find(&|s| s.eq_ignore_ascii_case(&requested))
        .or_else(|| find(&|s| s.eq_ignore_ascii_case(wanted)))
        .or_else(|| find(&|s| language(s).eq_ignore_ascii_case(wanted)))
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supported() -> Vec<String> {
        vec!["en".into(), "es".into(), "pt-BR".into()]
    }

    #[test]
    fn negotiation_prefers_exact_then_language_then_default() {
        let s = supported();
        assert_eq!(negotiate("es", &s, "en"), "es");
        assert_eq!(negotiate("es-MX", &s, "en"), "es");
        assert_eq!(negotiate("es_MX", &s, "en"), "es");
        assert_eq!(negotiate("PT", &s, "en"), "pt-BR");
        assert_eq!(negotiate("pt-BR", &s, "en"), "pt-BR");
        assert_eq!(negotiate("fr-CA", &s, "en"), "en");
        assert_eq!(negotiate("", &s, "en"), "en");
    }

    #[test]
    fn text_falls_back_to_default_locale() {
        let t = Text::new([("en", "Hello"), ("es", "Hola")]);
        assert_eq!(t.get("es", "en"), "Hola");
        assert_eq!(t.get("fr", "en"), "Hello");
        assert_eq!(Text::default().get("en", "en"), "");
    }
}
