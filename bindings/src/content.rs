//! `Content`: the clinic's protocol as the app shows it, in one locale.
//!
//! Everything comes from the pack in force (the built-in default until sync
//! activates the clinic's signed pack). `locale` is a BCP 47 tag such as `en`
//! or `es-MX`; the pack's best match is used, falling back to its default.

use katcore::device::Device;
use katcore::instruments::{InstrumentKind, LocalizedContact};
use katcore::pack::{Rule, Section};

/// The clinic's content pack, localized. Reads from memory; never blocks on storage.
#[derive(uniffi::Object)]
pub struct Content {
    pub(crate) device: Device,
}

#[uniffi::export]
impl Content {
    /// Which pack is in force.
    pub fn pack_info(&self, locale: String) -> PackInfo {
        let pack = self.device.pack();
        PackInfo {
            id: pack.id.clone(),
            version: pack.version,
            publisher: pack.publisher.clone(),
            title: pack.text(&pack.title, &locale).to_owned(),
        }
    }

    /// The at-home guidelines, in reading order.
    pub fn guidelines(&self, locale: String) -> Vec<GuideSection> {
        let pack = self.device.pack();
        pack.guidelines.iter().map(|s| GuideSection::new(&pack, s, &locale)).collect()
    }

    /// Safety guidance for after a session.
    pub fn post_session_guidance(&self, locale: String) -> Vec<GuideSection> {
        let pack = self.device.pack();
        pack.post_session.iter().map(|s| GuideSection::new(&pack, s, &locale)).collect()
    }

    /// The pre-session checklist, then the screening questions, in the order to ask them
    /// (the same order as `Evaluation.items`).
    pub fn checklist(&self, locale: String) -> Vec<ChecklistQuestion> {
        let pack = self.device.pack();
        let text = |t| pack.text(t, &locale).to_owned();
        let items = pack.checklist.iter().map(|item| ChecklistQuestion {
            id: item.id.clone(),
            prompt: text(&item.prompt),
            kind: match &item.rule {
                Rule::TimeWindow { window_minutes, .. } => QuestionKind::LastTaken { window_minutes: *window_minutes },
                Rule::BloodPressure => QuestionKind::BloodPressure,
                Rule::Attestation => QuestionKind::Attestation,
                Rule::Choice { options } => QuestionKind::Choice {
                    options: options
                        .iter()
                        .map(|o| AnswerOption { value: o.value.clone(), label: text(&o.label) })
                        .collect(),
                },
                Rule::FreeText => QuestionKind::FreeText,
            },
            optional: item.optional,
        });
        let screening = pack.screening.iter().map(|q| ChecklistQuestion {
            id: q.id.clone(),
            prompt: text(&q.prompt),
            kind: QuestionKind::Screening,
            optional: false,
        });
        items.chain(screening).collect()
    }

    /// The side effects a client can report.
    pub fn side_effects(&self, locale: String) -> Vec<SideEffectOption> {
        let pack = self.device.pack();
        pack.side_effects
            .iter()
            .map(|e| SideEffectOption {
                id: e.id.clone(),
                label: pack.text(&e.label, &locale).to_owned(),
                always_report: e.always_report,
            })
            .collect()
    }

    /// The wording of a check-in questionnaire, if the pack has it.
    pub fn questionnaire(&self, instrument: InstrumentKind, locale: String) -> Option<Questionnaire> {
        let pack = self.device.pack();
        let text = |t| pack.text(t, &locale).to_owned();
        pack.instrument(instrument).map(|i| Questionnaire {
            instrument,
            title: text(&i.title),
            stem: text(&i.stem),
            items: i.items.iter().map(text).collect(),
            options: i.options.iter().map(text).collect(),
        })
    }

    /// Who to reach in a crisis, and what to say above the contacts.
    pub fn crisis_support(&self, locale: String) -> CrisisSupport {
        let pack = self.device.pack();
        CrisisSupport {
            message: pack.text(&pack.crisis.message, &locale).to_owned(),
            contacts: pack
                .crisis
                .contacts
                .iter()
                .map(|c| CrisisContact {
                    id: c.id.clone(),
                    label: pack.text(&c.label, &locale).to_owned(),
                    phone: c.phone.clone(),
                    sms: c.sms.clone(),
                })
                .collect(),
        }
    }
}

/// The pack in force.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PackInfo {
    /// Stable pack id, e.g. `org.example-clinic.kat`.
    pub id: String,
    /// Its version.
    pub version: u32,
    /// Who publishes it (the clinic).
    pub publisher: String,
    /// Its title in the requested locale.
    pub title: String,
}

/// A titled block of short paragraphs.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct GuideSection {
    /// Stable id.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Paragraphs or bullet points, in order.
    pub paragraphs: Vec<String>,
}

impl GuideSection {
    fn new(pack: &katcore::pack::Pack, section: &Section, locale: &str) -> Self {
        GuideSection {
            id: section.id.clone(),
            title: pack.text(&section.title, locale).to_owned(),
            paragraphs: section.body.iter().map(|p| pack.text(p, locale).to_owned()).collect(),
        }
    }
}

/// One question to ask before a session.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ChecklistQuestion {
    /// Item id: pass it to `Sessions.answer`.
    pub id: String,
    /// The question.
    pub prompt: String,
    /// Which `ChecklistAnswer` it takes.
    pub kind: QuestionKind,
    /// A missing answer only warns.
    pub optional: bool,
}

/// What kind of answer a question takes.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum QuestionKind {
    /// When something was last taken: `ChecklistAnswer.LastTaken` or `NotRecently`;
    /// it must be at least `window_minutes` before the start.
    LastTaken {
        /// Minimum time between the last intake and the start.
        window_minutes: u32,
    },
    /// A reading: `ChecklistAnswer.BloodPressure`.
    BloodPressure,
    /// Must be confirmed: `ChecklistAnswer.YesNo(true)`.
    Attestation,
    /// One of the options: `ChecklistAnswer.Choice(value)`.
    Choice {
        /// The options, in order.
        options: Vec<AnswerOption>,
    },
    /// Free text: `ChecklistAnswer.Text`.
    FreeText,
    /// A contraindication question: `ChecklistAnswer.YesNo`, `true` meaning "yes, this applies".
    Screening,
}

/// One option of a choice question.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct AnswerOption {
    /// The value to answer with.
    pub value: String,
    /// The label to show.
    pub label: String,
}

/// A side effect the client can report.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SideEffectOption {
    /// Id to pass to `Wellbeing.reportSideEffect`.
    pub id: String,
    /// Name to show.
    pub label: String,
    /// Any report of it reaches the clinic as urgent, whatever its severity.
    pub always_report: bool,
}

/// The wording of a check-in questionnaire.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Questionnaire {
    /// Which one.
    pub instrument: InstrumentKind,
    /// Title.
    pub title: String,
    /// The lead-in shared by the items.
    pub stem: String,
    /// The items, in order.
    pub items: Vec<String>,
    /// Labels of the answers 0, 1, 2 and 3.
    pub options: Vec<String>,
}

/// What to show when the client may be in crisis.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CrisisSupport {
    /// Message shown above the contacts.
    pub message: String,
    /// Who to reach, in order of preference.
    pub contacts: Vec<CrisisContact>,
}

/// A crisis line or emergency number.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct CrisisContact {
    /// Stable id.
    pub id: String,
    /// Name to show.
    pub label: String,
    /// Number to call.
    pub phone: Option<String>,
    /// Number to text.
    pub sms: Option<String>,
}

impl From<LocalizedContact> for CrisisContact {
    fn from(c: LocalizedContact) -> Self {
        CrisisContact { id: c.id, label: c.label, phone: c.phone, sms: c.sms }
    }
}

/// Which check-in questionnaire.
#[uniffi::remote(Enum)]
pub enum InstrumentKind {
    /// PHQ-9, 9 items (depression).
    Phq9,
    /// GAD-7, 7 items (anxiety).
    Gad7,
}
