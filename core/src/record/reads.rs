//! Typed reads of the record: sessions, answers and checklist inputs,
//! journal, wellbeing entries, due integration prompts and the JSON view.

use super::*;
use crate::pack::InstrumentKind;

impl CareRecord {
    /// Every session, cancelled ones included, by scheduled start.
    pub fn sessions(&self) -> Vec<Session> {
        let mut sessions: Vec<Session> = self
            .objects(SESSION)
            .into_iter()
            .filter_map(|(id, obj)| read_session(&id, &self.session_fields(&obj)))
            .collect();
        sessions.sort_unstable_by(|a, b| a.scheduled_start.cmp(&b.scheduled_start).then_with(|| a.id.cmp(&b.id)));
        sessions
    }

    /// Sessions still ahead at `now` (not cancelled or ended; a started one
    /// counts until it ends), soonest first.
    pub fn upcoming_sessions(&self, now: DateTime<Utc>) -> Vec<Session> {
        self.sessions().into_iter().filter(|s| is_upcoming(s, now)).collect()
    }

    /// One session.
    pub fn session(&self, id: &str) -> Option<Session> {
        let obj = self.session_obj(id).ok()?;
        read_session(id, &self.session_fields(&obj))
    }

    /// A session's current answers with the instant each was recorded, by
    /// item id (the latest answer of each item winning, as in
    /// [`CareRecord::session_answers`]); empty for an unknown session.
    pub fn session_answers_at(&self, session_id: &str) -> Vec<(String, Value, Option<DateTime<FixedOffset>>)> {
        self.session_obj(session_id)
            .map(|obj| answers::latest_answers_at(&self.session_fields(&obj)))
            .unwrap_or_default()
    }

    /// Every answer a session's checklist was given, oldest first (see
    /// `answers.rs`): answers later ones replaced are kept; empty for an
    /// unknown session.
    pub fn answer_history(&self, session_id: &str) -> Vec<AnswerRecord> {
        self.session_obj(session_id).map(|obj| answers::answer_log(&self.fields(&obj))).unwrap_or_default()
    }

    /// A session's current answers as a JSON object (item id → answer),
    /// the latest answer of each item winning.
    pub fn session_answers(&self, session_id: &str) -> Option<Value> {
        let obj = self.session_obj(session_id).ok()?;
        Some(answers::session_answers(&self.session_fields(&obj)))
    }

    /// Evaluates a session's current answers against `pack`. Answers that no
    /// longer fit the pack count as unanswered, so they can never make it `ready`.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn evaluate_session(&self, pack: &Pack, session_id: &str, locale: &str) -> Result<Evaluation, RecordError> {
        let (start, zone, answers) = self.checklist_inputs(pack, session_id)?;
        Ok(evaluate_in(pack, start, zone.as_ref(), &answers, locale))
    }

    /// What a session's checklist is evaluated from: its scheduled start, its
    /// IANA zone (when the database knows it), and its answers, less those
    /// that do not fit `pack` (they count as unanswered).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn checklist_inputs(
        &self,
        pack: &Pack,
        session_id: &str,
    ) -> Result<(DateTime<FixedOffset>, Option<Zone>, Answers), RecordError> {
        // One pass over the session object serves both the start and the answers.
        let fields = self.session_fields(&self.session_obj(session_id)?);
        let session = read_session(session_id, &fields).ok_or_else(|| not_found("session", session_id))?;
        Ok(checklist_inputs_of(pack, &session, &fields))
    }

    /// A session's fields (its answer entries left out): what its checklist
    /// and the session itself are read from ([`checklist_inputs_of`]).
    pub(crate) fn session_state(&self, session_id: &str) -> Option<Fields> {
        Some(self.session_fields(&self.session_obj(session_id).ok()?))
    }

    /// A session's readiness decisions, oldest first.
    pub fn readiness_history(&self, session_id: &str) -> Vec<ReadinessRecord> {
        oldest_first(self.entries::<ReadinessRecord>(READINESS).filter(|r| r.session_id == session_id).collect())
    }

    /// Shared journal entries that are not deleted, newest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        let mut entries: Vec<JournalEntry> =
            self.objects(JOURNAL).into_iter().filter_map(|(id, obj)| read_journal(&id, &self.fields(&obj))).collect();
        sort_journal(&mut entries);
        entries
    }

    /// One shared journal entry, if it exists and is not deleted.
    pub fn journal_entry(&self, id: &str) -> Option<JournalEntry> {
        let obj = self.map_obj(&format!("{JOURNAL}{id}"))?;
        read_journal(id, &self.fields(&obj))
    }

    /// Blood-pressure readings, oldest first.
    pub fn vitals(&self) -> Vec<Vitals> {
        sorted(self.entries(VITALS).collect(), |v: &Vitals| (v.taken_at, v.id.clone()))
    }

    /// Side-effect reports, oldest first.
    pub fn side_effects(&self) -> Vec<SideEffectReport> {
        sorted(self.entries(SIDE_EFFECT).collect(), |r: &SideEffectReport| (r.reported_at, r.id.clone()))
    }

    /// Check-ins, oldest first.
    pub fn check_ins(&self) -> Vec<CheckIn> {
        sorted(self.entries(CHECK_IN).collect(), |c: &CheckIn| (c.completed_at, c.id.clone()))
    }

    /// The client's baseline for a questionnaire ([`score_baseline_among`]
    /// this record's check-ins).
    pub fn score_baseline(&self, instrument: InstrumentKind) -> Option<ScoreBaseline> {
        self.baselines().of(instrument).cloned()
    }

    /// Clinician notes, oldest first.
    pub fn clinician_notes(&self) -> Vec<ClinicianNote> {
        sorted(self.entries(NOTE).collect(), |n: &ClinicianNote| (n.written_at, n.id.clone()))
    }

    /// The pack version assigned by the clinic, if any.
    pub fn assigned_pack(&self) -> Option<PackAssignment> {
        self.get_string(&ROOT, PACK).and_then(|s| serde_json::from_str(&s).ok())
    }

    /// Integration prompts due at `now` (for ended sessions, due within the
    /// last [`DUE_PROMPT_WINDOW`]) that no journal entry answers yet.
    /// `private_entries` are the device's private journal entries, which
    /// answer prompts too.
    pub fn due_integration_prompts(
        &self,
        pack: &Pack,
        now: DateTime<Utc>,
        locale: &str,
        private_entries: &[JournalEntry],
    ) -> Vec<DuePrompt> {
        let answered: HashSet<(String, String)> =
            self.journal().iter().chain(private_entries).filter_map(JournalEntry::prompt_link).collect();
        due_prompts_among(pack, now, locale, &self.sessions(), &answered)
    }

    /// The whole record as the clinic shows it, with urgent items under `pack`.
    pub fn view(&self, pack: &Pack) -> RecordView {
        // Every decision read once and handed to its session, not one scan per session.
        let mut decisions: std::collections::HashMap<String, Vec<ReadinessRecord>> = std::collections::HashMap::new();
        for decision in self.entries::<ReadinessRecord>(READINESS) {
            decisions.entry(decision.session_id.clone()).or_default().push(decision);
        }
        let sessions = self
            .sessions()
            .into_iter()
            .map(|session| {
                let fields = self.session_obj(&session.id).map(|obj| self.fields(&obj)).ok();
                SessionView {
                    answers: match fields.as_ref().map(answers::session_answers) {
                        Some(Value::Object(answers)) => answers,
                        _ => serde_json::Map::new(),
                    },
                    answer_history: fields.as_ref().map(answers::answer_log).unwrap_or_default(),
                    readiness: oldest_first(decisions.remove(&session.id).unwrap_or_default()),
                    session,
                }
            })
            .collect();
        RecordView {
            sessions,
            journal: self.journal(),
            vitals: self.vitals(),
            side_effects: self.side_effects(),
            check_ins: self.check_ins(),
            clinician_notes: self.clinician_notes(),
            assigned_pack: self.assigned_pack(),
            urgent_items: self.urgent_items_with(pack),
            unreadable_entries: self.unreadable_entries(),
        }
    }

    /// [`CareRecord::view`] under the default pack, as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view(&Pack::default_pack())).unwrap_or_default()
    }
}

/// A session's decisions, oldest first (ties by id).
fn oldest_first(mut history: Vec<ReadinessRecord>) -> Vec<ReadinessRecord> {
    history.sort_unstable_by(|a, b| a.evaluated_at.cmp(&b.evaluated_at).then_with(|| a.id.cmp(&b.id)));
    history
}

/// A client's baseline for a questionnaire: their first check-in with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreBaseline {
    /// The check-in's id.
    pub id: String,
    /// When it was completed.
    pub completed_at: DateTime<Utc>,
    /// Its total, re-scored from the stored answers.
    pub total: u8,
}

/// The baseline for `instrument` among `check_ins`: the first check-in with
/// it (earliest `completed_at`, then id), its total re-scored from the
/// answers; answers that do not score are skipped. The one rule the device,
/// the clinic's alerts and its dashboard share (see
/// [`crate::instruments::score_flag`]).
pub fn score_baseline_among(check_ins: &[CheckIn], instrument: InstrumentKind) -> Option<ScoreBaseline> {
    super::baselines::baseline_by(check_ins, instrument, |_| Default::default())
}

/// Whether `session` is still ahead at `now`: not cancelled or ended, and
/// started or scheduled no more than [`UPCOMING_GRACE`] ago.
pub(crate) fn is_upcoming(session: &Session, now: DateTime<Utc>) -> bool {
    session.cancelled.is_none()
        && session.ended_at.is_none()
        && (session.started_at.is_some() || session.scheduled_start.with_timezone(&Utc) + UPCOMING_GRACE >= now)
}

/// The integration prompts of `sessions` due at `now` (for ended sessions,
/// due within the last [`DUE_PROMPT_WINDOW`]) and not among `answered`
/// (session id, prompt id), soonest first: the one rule behind
/// [`CareRecord::due_integration_prompts`] and a device's first view.
pub(crate) fn due_prompts_among(
    pack: &Pack,
    now: DateTime<Utc>,
    locale: &str,
    sessions: &[Session],
    answered: &HashSet<(String, String)>,
) -> Vec<DuePrompt> {
    let mut due = Vec::new();
    for session in sessions.iter().filter(|s| s.cancelled.is_none()) {
        let (Some(ended), Ok(tz)) = (session.ended_at, crate::aftercare::parse_time_zone(&session.time_zone)) else {
            continue;
        };
        let plan = crate::aftercare::plan(pack, ended.with_timezone(&Utc), &tz, locale);
        for prompt in plan.integration {
            let at = prompt.at.with_timezone(&Utc);
            if at <= now
                && now - at <= DUE_PROMPT_WINDOW
                && !answered.contains(&(session.id.clone(), prompt.id.clone()))
            {
                due.push(DuePrompt {
                    session_id: session.id.clone(),
                    prompt_id: prompt.id,
                    due_at: prompt.at,
                    text: prompt.text,
                });
            }
        }
    }
    due.sort_by_key(|p| p.due_at);
    due
}

/// What `session`'s checklist is evaluated from, read from its `fields`
/// ([`CareRecord::checklist_inputs`]): answers that do not fit `pack` are
/// left out (unanswered).
pub(crate) fn checklist_inputs_of(
    pack: &Pack,
    session: &Session,
    fields: &Fields,
) -> (DateTime<FixedOffset>, Option<Zone>, Answers) {
    let mut answers = Answers::new();
    for (id, value) in answers::current_answers(fields) {
        // An answer that does not fit this pack is skipped: unanswered.
        let _ = answers.set(pack, id, &value);
    }
    (session.scheduled_start, Zone::named(&session.time_zone), answers)
}
