//! A synthetic care record for the benchmarks: `years` of one client's use of
//! the app, written through the public API exactly as the app writes it.
//!
//! For the default two years: 50 dosing sessions, each scheduled by the
//! clinic, with all 20 checklist and screening answers of the default pack
//! recorded one by one, a readiness decision, a start and an end, and two
//! blood-pressure readings; 730 daily mood check-ins; 100 PHQ-9 and 100
//! GAD-7; 1,000 shared journal entries averaging about 800 characters (7 per
//! session answer its integration prompts, the rest are free entries); and
//! 100 clinician notes. Every count scales linearly with `years`. Entries are
//! spread over the period ending [`END`] and written in time order, each as
//! its own durable change (the clinic's sessions and notes as changes of a
//! second actor, merged in as sync would). The phone's changes go through a
//! [`CareStore`]; the clinic's are made on an in-memory [`CareRecord`] and
//! arrive via [`CareStore::merge_remote`].
//!
//! Text is varied prose: words drawn by their English frequency (wordfreq's
//! top 5,000, in `data/english-words.tsv`), sentence-cased and punctuated.
//! All content and dates come from a seeded RNG and are the same every run;
//! only what the library randomizes itself (entry ids, actor ids, change
//! timestamps) differs.

use std::time::Instant;

use automerge::ActorId;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use katcore::care_store::CareStore;
use katcore::checklist::ReadinessStatus;
use katcore::instruments::InstrumentKind;
use katcore::pack::Pack;
use katcore::record::{CareRecord, CheckInInput, JournalLinks, Party};
use katcore::zone::Zone;
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The period the record covers, in years, unless a benchmark asks for another.
pub(crate) const DEFAULT_YEARS: f64 = 2.0;

/// Seed of every random choice the generator makes.
pub(crate) const SEED: u64 = 0x6b61_7463_6f72_6533;

/// The end of the period: midnight in New York, 2026-11-01 (the day US daylight time ends).
pub(crate) const END: &str = "2026-11-01T00:00:00-04:00";

/// The client's time zone.
pub(crate) const TIME_ZONE: &str = "America/New_York";

/// [`TIME_ZONE`] as a zone.
static NEW_YORK: std::sync::LazyLock<Zone> =
    std::sync::LazyLock::new(|| Zone::named(TIME_ZONE).expect("the bundled database has America/New_York"));

/// The word list: `word<TAB>frequency`, after one comment line.
const WORDS_TSV: &str = include_str!("../data/english-words.tsv");

const CLINICIANS: [&str; 3] = ["Dr. A. Rivera", "J. Chen, LCSW", "M. Okafor, NP"];

/// What [`build_record`] wrote.
#[derive(Clone, Debug, Default)]
pub(crate) struct Built {
    /// Years covered.
    pub years: f64,
    /// Dosing sessions (each scheduled, answered, evaluated, started and ended).
    pub sessions: usize,
    /// Checklist and screening answers recorded.
    pub answers: usize,
    /// Readiness decisions recorded.
    pub readiness: usize,
    /// Blood-pressure readings.
    pub vitals: usize,
    /// Daily mood check-ins.
    pub mood_check_ins: usize,
    /// PHQ-9 check-ins.
    pub phq9: usize,
    /// GAD-7 check-ins.
    pub gad7: usize,
    /// Shared journal entries.
    pub journal_entries: usize,
    /// Characters of all journal entries.
    pub journal_chars: usize,
    /// Clinician notes.
    pub notes: usize,
    /// Calls that each wrote one durable change (clinic merges included).
    pub writes: usize,
    /// Wall-clock seconds the build took.
    pub seconds: f64,
}

impl Built {
    /// Mean journal entry length in characters.
    pub(crate) fn mean_journal_chars(&self) -> f64 {
        self.journal_chars as f64 / self.journal_entries.max(1) as f64
    }
}

/// Writes `years` of synthetic history into `store` (see the module docs).
///
/// # Panics
/// On any library error: the generator only writes valid input.
pub(crate) fn build_record(store: &CareStore, years: f64) -> Built {
    let started = Instant::now();
    let pack = Pack::default_pack();
    let prose = Prose::english();
    let mut rng = StdRng::seed_from_u64(SEED);
    let events = plan(&prose, &mut rng, years);

    let mut clinic = CareRecord::new(ActorId::from(&[0xc1; 16][..]));
    let mut session_ids: Vec<String> = Vec::new();
    let mut built = Built { years, ..Built::default() };
    for Timed { at, event, .. } in events {
        built.writes += 1;
        match event {
            Event::Schedule { start } => {
                let id = clinic_change(store, &mut clinic, |c| c.schedule_session(start, TIME_ZONE, Party::Clinic));
                session_ids.push(id);
                built.sessions += 1;
            }
            Event::Answer { session, item, value } => {
                let id = &session_ids[session];
                store.update(|r| r.record_answer(&pack, id, &item, &value, at)).expect("answer");
                built.answers += 1;
            }
            Event::Start { session, local } => {
                // Through the gate, as a phone starts: the decision is recorded, then the start.
                let id = &session_ids[session];
                let mut evaluation = store.update(|r| r.try_start_session(&pack, id, "en", local)).expect("start");
                built.readiness += 1;
                if let (ReadinessStatus::Wait, Some(ready_at)) = (evaluation.status, evaluation.ready_at) {
                    // The late meal: the client postpones to when the checklist allows, and starts then.
                    store.update(|r| r.move_session(id, ready_at, Party::Client)).expect("postpone");
                    let at = local.max(ready_at);
                    evaluation = store.update(|r| r.try_start_session(&pack, id, "en", at)).expect("start");
                    built.readiness += 1;
                }
                assert_eq!(evaluation.status, ReadinessStatus::Ready, "the plan's answers pass once postponed");
            }
            Event::End { session, local } => {
                store.update(|r| r.end_session(&session_ids[session], local)).expect("end");
            }
            Event::Vitals { session, systolic, diastolic } => {
                let reading = katcore::checklist::BloodPressureReading { systolic, diastolic };
                let id = Some(session_ids[session].as_str());
                store.update(|r| r.add_vitals(&pack, reading, at, id)).expect("vitals");
                built.vitals += 1;
            }
            Event::CheckIn(input) => {
                match &input {
                    CheckInInput::Mood(_) => built.mood_check_ins += 1,
                    CheckInInput::Instrument(InstrumentKind::Phq9, _) => built.phq9 += 1,
                    CheckInInput::Instrument(InstrumentKind::Gad7, _) => built.gad7 += 1,
                }
                store.update(|r| r.add_check_in(input, at)).expect("check-in");
            }
            Event::Journal { text, session, prompt } => {
                let links = JournalLinks { prompt_id: prompt, session_id: session.map(|s| session_ids[s].clone()) };
                store.write_journal_entry(&text, &links, false, at).expect("journal entry");
                built.journal_entries += 1;
                built.journal_chars += text.chars().count();
            }
            Event::Note { author, text } => {
                clinic_change(store, &mut clinic, |c| c.add_clinician_note(author, &text, at));
                built.notes += 1;
            }
        }
    }
    built.seconds = started.elapsed().as_secs_f64();
    built
}

/// Brings the clinic's replica up to date with the phone, applies `f` to it
/// and delivers the resulting change to the phone, as a sync round would.
fn clinic_change<R>(
    store: &CareStore,
    clinic: &mut CareRecord,
    f: impl FnOnce(&mut CareRecord) -> Result<R, katcore::record::RecordError>,
) -> R {
    let clinic_heads = clinic.heads();
    let missing = store.read(|r| r.save_after(&clinic_heads));
    clinic.merge_bytes(&missing).expect("clinic catches up");
    let before = clinic.heads();
    let result = f(clinic).expect("clinic change");
    store.merge_remote(&clinic.save_after(&before)).expect("merge clinic change");
    result
}

/// Prose generator: words drawn by frequency, in sentences.
pub(crate) struct Prose {
    words: Vec<&'static str>,
    weights: WeightedIndex<f64>,
}

impl Prose {
    /// The generator over the bundled English word list. Tokens with no
    /// letter or digit (symbols, emoji) are left out.
    ///
    /// # Panics
    /// If the bundled list is malformed.
    pub(crate) fn english() -> Prose {
        let mut words = Vec::new();
        let mut frequencies = Vec::new();
        for line in WORDS_TSV.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (word, frequency) = line.split_once('\t').expect("word<TAB>frequency");
            if word.chars().any(char::is_alphanumeric) {
                words.push(word);
                frequencies.push(frequency.parse::<f64>().expect("a frequency"));
            }
        }
        Prose { weights: WeightedIndex::new(&frequencies).expect("positive frequencies"), words }
    }

    /// One sentence of 4 to 24 words.
    pub(crate) fn sentence(&self, rng: &mut StdRng) -> String {
        let count = rng.gen_range(4..=24);
        let mut sentence = String::with_capacity(count * 6);
        for i in 0..count {
            let word = self.words[self.weights.sample(rng)];
            if i > 0 {
                sentence.push(' ');
            }
            let capitalize = i == 0 || word == "i" || word.starts_with("i'");
            let mut chars = word.chars();
            if let (true, Some(first)) = (capitalize, chars.next()) {
                sentence.extend(first.to_uppercase());
                sentence.push_str(chars.as_str());
            } else {
                sentence.push_str(word);
            }
            if i + 1 < count && rng.gen_bool(0.07) {
                sentence.push(',');
            }
        }
        sentence.push(match rng.gen_range(0..100) {
            0..=84 => '.',
            85..=92 => '?',
            _ => '!',
        });
        sentence
    }

    /// Whole sentences, in paragraphs, until the text reaches `min_chars`.
    pub(crate) fn text(&self, rng: &mut StdRng, min_chars: usize) -> String {
        let mut text = String::with_capacity(min_chars + 200);
        while text.len() < min_chars {
            if !text.is_empty() {
                text.push_str(if rng.gen_bool(0.12) { "\n\n" } else { " " });
            }
            text.push_str(&self.sentence(rng));
        }
        text
    }

    /// A journal entry: about 800 characters on average (310 to 1,210 before
    /// the last sentence is completed).
    pub(crate) fn journal_entry(&self, rng: &mut StdRng) -> String {
        let min_chars = rng.gen_range(310..=1210);
        self.text(rng, min_chars)
    }
}

enum Event {
    Schedule { start: DateTime<FixedOffset> },
    Answer { session: usize, item: String, value: Value },
    Start { session: usize, local: DateTime<FixedOffset> },
    End { session: usize, local: DateTime<FixedOffset> },
    Vitals { session: usize, systolic: u16, diastolic: u16 },
    CheckIn(CheckInInput),
    Journal { text: String, session: Option<usize>, prompt: Option<String> },
    Note { author: &'static str, text: String },
}

struct Timed {
    at: DateTime<Utc>,
    /// Order of creation, to keep events at the same instant in order.
    seq: usize,
    event: Event,
}

/// How many of a thing per year, scaled to `years`.
fn per_year(per_year: f64, years: f64) -> usize {
    (per_year * years).round() as usize
}

/// Local time in the client's zone on `date` (times used are never in a DST gap).
fn local(date: NaiveDate, hour: u32, minute: u32) -> DateTime<FixedOffset> {
    let naive = date.and_hms_opt(hour, minute, 0).expect("a valid time");
    NEW_YORK.from_local_datetime(&naive).earliest().expect("not in a DST gap").fixed_offset()
}

/// Every event of the period, in time order.
fn plan(prose: &Prose, rng: &mut StdRng, years: f64) -> Vec<Timed> {
    let end = DateTime::parse_from_rfc3339(END).expect("END").with_timezone(&Utc);
    let span = Duration::seconds((years * 365.25 * 86_400.0) as i64);
    let begin = end - span;
    let first_day = begin.with_timezone(&*NEW_YORK).date_naive();
    let mut events = Vec::new();
    let mut push = |at: DateTime<Utc>, event: Event| {
        let seq = events.len();
        events.push(Timed { at, seq, event });
    };

    // Sessions, about every two weeks, with their checklists, vitals and
    // the journal entries answering their integration prompts.
    let sessions = per_year(25.0, years);
    let spacing = span / sessions.max(1) as i32;
    let pack = Pack::default_pack();
    let mut linked_entries = 0;
    for session in 0..sessions {
        let date = (begin + spacing * session as i32).with_timezone(&*NEW_YORK).date_naive() + Duration::days(1);
        let start = local(date, rng.gen_range(9..=13), [0, 30][rng.gen_range(0..2)]);
        let start_utc = start.with_timezone(&Utc);
        push(start_utc - Duration::days(rng.gen_range(7..=14)), Event::Schedule { start });

        let (systolic, diastolic) = (rng.gen_range(108..=134), rng.gen_range(66..=86));
        let minutes_before = |rng: &mut StdRng, from: i64, to: i64| {
            Value::from((start - Duration::minutes(rng.gen_range(from..=to))).to_rfc3339())
        };
        // One late meal in twenty: the first decision is `wait`, and the
        // client postpones the start to the checklist's `ready_at`.
        let food = if rng.gen_bool(0.05) { minutes_before(rng, 100, 170) } else { minutes_before(rng, 200, 420) };
        let intention_chars = rng.gen_range(40..=160);
        let mut answers: Vec<(&str, Value)> = vec![
            ("last_solid_food", food),
            ("last_liquid", minutes_before(rng, 65, 240)),
            ("last_benzodiazepine", json!("none")),
            ("last_stimulant", json!("none")),
            ("last_alcohol", if rng.gen_bool(0.3) { minutes_before(rng, 2 * 1440, 6 * 1440) } else { json!("none") }),
            ("blood_pressure", json!({"systolic": systolic, "diastolic": diastolic})),
            ("monitor_present", json!(true)),
            ("safe_setting", json!(true)),
            ("no_driving_plan", json!(true)),
            ("antihypertensive_taken", json!("not_prescribed")),
            ("intention_set", Value::from(prose.text(rng, intention_chars))),
        ];
        answers.extend(pack.screening.iter().map(|q| (q.id.as_str(), json!(false))));
        for (k, (item, value)) in answers.into_iter().enumerate() {
            let at = start_utc - Duration::minutes(70) + Duration::minutes(2 * k as i64);
            push(at, Event::Answer { session, item: item.to_owned(), value });
        }
        push(start_utc - Duration::minutes(20), Event::Vitals { session, systolic, diastolic });
        let began = start + Duration::minutes(rng.gen_range(2..=15));
        push(began.with_timezone(&Utc), Event::Start { session, local: began });
        let ended = began + Duration::minutes(rng.gen_range(100..=150));
        push(ended.with_timezone(&Utc), Event::End { session, local: ended });
        let after = ended + Duration::minutes(rng.gen_range(10..=30));
        let (post_systolic, post_diastolic) = (systolic + rng.gen_range(0..=12), diastolic + rng.gen_range(0..=8));
        push(after.with_timezone(&Utc), Event::Vitals { session, systolic: post_systolic, diastolic: post_diastolic });
        for prompt in &pack.integration {
            let day = ended.date_naive() + Duration::days(i64::from(prompt.day));
            let at = local(day, rng.gen_range(18..=22), rng.gen_range(0..60)).with_timezone(&Utc);
            if at < end && at > ended {
                let text = prose.journal_entry(rng);
                push(at, Event::Journal { text, session: Some(session), prompt: Some(prompt.id.clone()) });
                linked_entries += 1;
            }
        }
    }

    // Daily mood check-ins in the evening.
    for day in 0..per_year(365.0, years) as i64 {
        let at = local(first_day + Duration::days(day), 20, rng.gen_range(0..60));
        push(at.with_timezone(&Utc).min(end), Event::CheckIn(CheckInInput::Mood(rng.gen_range(3..=9))));
    }

    // Questionnaires, every week or so.
    for (kind, items, count) in
        [(InstrumentKind::Phq9, 9, per_year(50.0, years)), (InstrumentKind::Gad7, 7, per_year(50.0, years))]
    {
        for i in 0..count {
            let at = begin + span * i as i32 / count as i32 + Duration::hours(rng.gen_range(8..=40));
            let mut answers: Vec<u8> = (0..items).map(|_| [0, 0, 0, 1, 1, 2, 3][rng.gen_range(0..7)]).collect();
            if kind == InstrumentKind::Phq9 {
                // Item 9 (self-harm) is almost always 0; a non-zero answer is urgent.
                answers[8] = u8::from(rng.gen_bool(0.02));
            }
            push(at.min(end), Event::CheckIn(CheckInInput::Instrument(kind, answers)));
        }
    }

    // Free journal entries fill up to 500 a year.
    let free = per_year(500.0, years).saturating_sub(linked_entries);
    for i in 0..free {
        let day = (begin + span * i as i32 / free.max(1) as i32).with_timezone(&*NEW_YORK).date_naive();
        let at = local(day, rng.gen_range(7..=23), rng.gen_range(0..60)).with_timezone(&Utc);
        let text = prose.journal_entry(rng);
        push(at.clamp(begin, end), Event::Journal { text, session: None, prompt: None });
    }

    // Clinician notes.
    let notes = per_year(50.0, years);
    for i in 0..notes {
        let at = begin + span * i as i32 / notes.max(1) as i32 + Duration::hours(rng.gen_range(1..=72));
        let author = CLINICIANS[rng.gen_range(0..CLINICIANS.len())];
        let chars = rng.gen_range(150..=650);
        let text = prose.text(rng, chars);
        push(at.min(end), Event::Note { author, text });
    }

    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.seq.cmp(&b.seq)));
    events
}
