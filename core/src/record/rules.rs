//! The domain rules of writing the record: what each write checks (known
//! sessions, plausible readings, answers that fit the pack, text limits,
//! the start gate) before it changes the document.

use super::*;

impl CareRecord {
    pub(super) fn change<O>(
        &mut self,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<O, RecordError>,
    ) -> Result<O, RecordError> {
        let result = self.doc.transact(f).map(|success| success.result).map_err(|failure| failure.error)?;
        if self.baselines.get().is_some() {
            let last = self.doc.get_last_local_change();
            self.baselines_after(Some(last.as_slice()));
        }
        Ok(result)
    }

    // ----- sessions -------------------------------------------------------

    /// Schedules a session; returns its id.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an unknown time zone or a start
    /// outside the years 0001 to 9998 (RFC 3339 can write 0000-9999; a year is
    /// kept at each end for the windows before a start and the aftercare after it).
    pub fn schedule_session(
        &mut self,
        start: DateTime<FixedOffset>,
        time_zone: &str,
        by: Party,
    ) -> Result<String, RecordError> {
        crate::aftercare::parse_time_zone(time_zone).map_err(|e| invalid("time_zone", e.to_string()))?;
        check_session_start(&start)?;
        let id = new_id();
        self.change(|tx| {
            let (home, key) = entry_home(tx, SESSION, &id)?;
            let obj = tx.put_object(&home, key, ObjType::Map)?;
            tx.put(&obj, "start", start.to_rfc3339())?;
            tx.put(&obj, "tz", time_zone)?;
            tx.put(&obj, "by", party_str(by))?;
            Ok(())
        })?;
        Ok(id)
    }

    /// Moves a session to a new start, as `by` (see [`may_move`]: a client
    /// may postpone a session the clinic scheduled, never bring it forward).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session,
    /// [`RecordError::NotPermitted`] for a move `by` may not make.
    pub fn move_session(
        &mut self,
        session_id: &str,
        start: DateTime<FixedOffset>,
        by: Party,
    ) -> Result<(), RecordError> {
        check_session_start(&start)?;
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        let starts = std::iter::once(session.scheduled_start).chain(session.conflicting_starts);
        if starts.into_iter().any(|from| !may_move(by, session.scheduled_by, from, start)) {
            return Err(RecordError::NotPermitted {
                field: "start".into(),
                reason: "the clinic scheduled this session: it can be postponed here, never brought forward".into(),
            });
        }
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "start", start.to_rfc3339())?))
    }

    /// Cancels a session (recorded, never removed), as `by` (see [`may_cancel`]).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session,
    /// [`RecordError::NotPermitted`] when a client cancels a session the clinic scheduled.
    pub fn cancel_session(&mut self, session_id: &str, by: Party, at: DateTime<Utc>) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        if !may_cancel(by, session.scheduled_by) {
            return Err(RecordError::NotPermitted {
                field: "cancelled".into(),
                reason: "the clinic scheduled this session: only the clinic can cancel it".into(),
            });
        }
        let obj = self.session_obj(session_id)?;
        let value = to_json_string(&Deletion { at, by });
        self.change(|tx| Ok(tx.put(&obj, "cancelled", value)?))
    }

    /// Records (or, with `null`, clears) one checklist answer for a session.
    ///
    /// The answer is checked against `pack` first. Every answer is kept, with
    /// the instant it was given; an item's current answer is its latest
    /// (`answers.rs`).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session, and
    /// [`RecordError::InvalidInput`] naming the item for an answer that does
    /// not fit it.
    pub fn record_answer(
        &mut self,
        pack: &Pack,
        session_id: &str,
        item_id: &str,
        value: &Value,
        at: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let obj = self.session_obj(session_id)?;
        let start = self.session(session_id).ok_or_else(|| not_found("session", session_id))?.scheduled_start;
        let mut answers = Answers::new();
        answers
            .set(pack, item_id, value)
            .and_then(|()| answers.check_before(start))
            .map_err(|e| invalid(&format!("answers.{item_id}"), strip_field(&e.to_string())))?;
        // Kept for good as its own entry; the current-answer field, which
        // format-1 apps read, holds the same text (`answers.rs`).
        let stored = json!({"item": item_id, "value": value, "at": at}).to_string();
        self.change(|tx| {
            tx.put(&obj, format!("{ANSWER_ENTRY}{}", new_id()), stored.as_str())?;
            Ok(tx.put(&obj, format!("{CURRENT_ANSWER}{item_id}"), stored)?)
        })
    }

    /// Stores the engine's decision for a session, with the pack it was
    /// evaluated against, when, and the answers current then (by entry id):
    /// the audit trail. Returns its id.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown session.
    pub fn record_readiness(
        &mut self,
        session_id: &str,
        evaluation: &Evaluation,
        pack: &Pack,
        at: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let obj = self.session_obj(session_id)?;
        let answers = answers::current_answer_ids(&self.fields(&obj));
        let record = ReadinessRecord {
            id: new_id(),
            session_id: session_id.to_owned(),
            evaluated_at: at,
            pack_id: pack.id.clone(),
            pack_version: pack.version,
            status: evaluation.status,
            ready_at: evaluation.ready_at,
            urgent: evaluation.urgent,
            items: evaluation.items.iter().map(|i| (i.id.clone(), i.state)).collect(),
            answers,
        };
        self.put_entry(READINESS, &record.id.clone(), &record)
    }

    /// The safety gate: evaluates the session's checklist with `pack`
    /// afresh, records the decision (the audit trail the clinic sees; a
    /// `blocked` one raises an alert there) and starts the session at `at`
    /// only when the decision is `ready`. Returns the decision either way:
    /// a caller reports any other status as "not ready" (the device does,
    /// with `DeviceError::NotReady`). Nothing else in the crate starts a
    /// session.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when the
    /// session was cancelled (then nothing is recorded).
    pub fn try_start_session(
        &mut self,
        pack: &Pack,
        session_id: &str,
        locale: &str,
        at: DateTime<FixedOffset>,
    ) -> Result<Evaluation, RecordError> {
        // Checked before the decision is recorded, so a refusal writes nothing.
        self.check_startable(session_id)?;
        let evaluation = self.evaluate_session(pack, session_id, locale)?;
        self.record_readiness(session_id, &evaluation, pack, at.to_utc())?;
        if evaluation.status == ReadinessStatus::Ready {
            self.start_session(session_id, at)?;
        }
        Ok(evaluation)
    }

    pub(super) fn check_startable(&self, session_id: &str) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        if session.cancelled.is_some() {
            return Err(invalid("session_id", "the session was cancelled"));
        }
        Ok(())
    }

    /// Marks a session started, unconditionally: only
    /// [`CareRecord::try_start_session`] (and the crate's tests) call it.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when it was cancelled.
    pub(crate) fn start_session(&mut self, session_id: &str, at: DateTime<FixedOffset>) -> Result<(), RecordError> {
        self.check_startable(session_id)?;
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "started_at", at.to_rfc3339())?))
    }

    /// Marks a session ended.
    ///
    /// # Errors
    /// [`RecordError::NotFound`], or [`RecordError::InvalidInput`] when it was
    /// never started or `at` is before its start.
    pub fn end_session(&mut self, session_id: &str, at: DateTime<FixedOffset>) -> Result<(), RecordError> {
        let session = self.session(session_id).ok_or_else(|| not_found("session", session_id))?;
        match session.started_at {
            None => return Err(invalid("session_id", "the session has not started")),
            Some(started) if at < started => return Err(invalid("ended_at", "is before the session started")),
            Some(_) => {}
        }
        let obj = self.session_obj(session_id)?;
        self.change(|tx| Ok(tx.put(&obj, "ended_at", at.to_rfc3339())?))
    }

    // ----- entries --------------------------------------------------------

    /// Adds a blood-pressure reading; returns its id. Readings at or above
    /// the pack's urgent threshold are flagged urgent.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an implausible reading or unknown session.
    pub fn add_vitals(
        &mut self,
        pack: &Pack,
        reading: BloodPressureReading,
        taken_at: DateTime<Utc>,
        session_id: Option<&str>,
    ) -> Result<String, RecordError> {
        if !reading.is_plausible() {
            return Err(invalid("reading", "is not a plausible blood pressure"));
        }
        self.check_session_link(session_id)?;
        let limit = pack.thresholds.bp_urgent;
        let vitals = Vitals {
            id: new_id(),
            taken_at,
            reading,
            session_id: session_id.map(str::to_owned),
            urgent: reading.systolic >= limit.systolic || reading.diastolic >= limit.diastolic,
        };
        self.put_entry(VITALS, &vitals.id.clone(), &vitals)
    }

    /// Reports a side effect from the pack's list; returns its id. Severe
    /// reports, and side effects the pack says always to report, are urgent.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an effect the pack does not list or an unknown session.
    pub fn report_side_effect(
        &mut self,
        pack: &Pack,
        effect_id: &str,
        severity: Severity,
        reported_at: DateTime<Utc>,
        session_id: Option<&str>,
    ) -> Result<String, RecordError> {
        let effect = pack
            .side_effects
            .iter()
            .find(|e| e.id == effect_id)
            .ok_or_else(|| invalid("effect_id", "is not a side effect in the active pack"))?;
        self.check_session_link(session_id)?;
        let report = SideEffectReport {
            id: new_id(),
            reported_at,
            effect_id: effect_id.to_owned(),
            severity,
            session_id: session_id.map(str::to_owned),
            urgent: severity == Severity::Severe || effect.always_report,
        };
        self.put_entry(SIDE_EFFECT, &report.id.clone(), &report)
    }

    /// Records a check-in; returns it (scored, with its id).
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for answers that do not fit the
    /// questionnaire or a mood outside 0–10.
    pub fn add_check_in(&mut self, input: CheckInInput, completed_at: DateTime<Utc>) -> Result<CheckIn, RecordError> {
        let (kind, urgent) = match input {
            CheckInInput::Instrument(instrument, answers) => {
                let s = score(instrument, &answers).map_err(|e| invalid("answers", e.to_string()))?;
                (CheckInKind::Instrument { instrument, answers, total: s.total, band: s.band }, s.urgent)
            }
            CheckInInput::Mood(score) if score <= 10 => (CheckInKind::Mood { score }, false),
            CheckInInput::Mood(_) => return Err(invalid("mood", "must be from 0 to 10")),
        };
        let check_in = CheckIn { id: new_id(), completed_at, kind, urgent };
        self.put_entry(CHECK_IN, &check_in.id.clone(), &check_in)?;
        Ok(check_in)
    }

    /// Writes a shared journal entry; returns its id. (Private entries never
    /// enter the record: the store keeps them, see `CareStore`.)
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for empty or over-long text or an unknown session.
    pub fn write_journal_entry(
        &mut self,
        text: &str,
        links: &JournalLinks,
        created_at: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        self.check_journal_entry(text, links)?;
        let id = new_id();
        self.change(|tx| {
            let (home, key) = entry_home(tx, JOURNAL, &id)?;
            let obj = tx.put_object(&home, key, ObjType::Map)?;
            tx.put(&obj, "created_at", created_at.to_rfc3339())?;
            tx.put(&obj, "text", text)?;
            if let Some(prompt) = &links.prompt_id {
                tx.put(&obj, "prompt_id", prompt.as_str())?;
            }
            if let Some(session) = &links.session_id {
                tx.put(&obj, "session_id", session.as_str())?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Checks a journal entry's text and links as [`CareRecord::write_journal_entry`] does.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for empty or over-long text or an unknown session.
    pub fn check_journal_entry(&self, text: &str, links: &JournalLinks) -> Result<(), RecordError> {
        check_text("text", text)?;
        self.check_session_link(links.session_id.as_deref())
    }

    /// Replaces a journal entry's text (settling any concurrent versions).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown or deleted entry,
    /// [`RecordError::InvalidInput`] for empty or over-long text.
    pub fn edit_journal_entry(&mut self, id: &str, text: &str, at: DateTime<Utc>) -> Result<(), RecordError> {
        check_text("text", text)?;
        let obj = self.live_journal_obj(id)?;
        self.change(|tx| {
            tx.put(&obj, "text", text)?;
            tx.put(&obj, "edited_at", at.to_rfc3339())?;
            Ok(())
        })
    }

    /// Deletes a journal entry: recorded, so every replica hides it; its text
    /// stays in the history.
    ///
    /// # Errors
    /// [`RecordError::NotFound`] for an unknown or already deleted entry.
    pub fn delete_journal_entry(&mut self, id: &str, by: Party, at: DateTime<Utc>) -> Result<(), RecordError> {
        let obj = self.live_journal_obj(id)?;
        let value = to_json_string(&Deletion { at, by });
        self.change(|tx| Ok(tx.put(&obj, "deleted", value)?))
    }

    /// Adds a clinician's note; returns its id.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an empty author or empty or over-long text.
    pub fn add_clinician_note(&mut self, author: &str, text: &str, at: DateTime<Utc>) -> Result<String, RecordError> {
        if author.trim().is_empty() {
            return Err(invalid("author", "must not be empty"));
        }
        check_text("text", text)?;
        let note = ClinicianNote { id: new_id(), written_at: at, author: author.to_owned(), text: text.to_owned() };
        self.put_entry(NOTE, &note.id.clone(), &note)
    }

    /// Records the pack version the clinic assigned to this client.
    ///
    /// # Errors
    /// [`RecordError::InvalidInput`] for an empty pack id or version 0.
    pub fn assign_pack(&mut self, pack_id: &str, version: u32, at: DateTime<Utc>) -> Result<(), RecordError> {
        if pack_id.is_empty() || version == 0 {
            return Err(invalid("pack", "needs an id and a version of 1 or more"));
        }
        let value = to_json_string(&PackAssignment { pack_id: pack_id.to_owned(), version, assigned_at: at });
        self.change(|tx| Ok(tx.put(ROOT, PACK, value)?))
    }

    /// Acknowledges an urgent item (by its [`UrgentItem::key`]).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] when no urgent item has that key.
    pub fn acknowledge(&mut self, key: &str, by: &str, at: DateTime<Utc>) -> Result<(), RecordError> {
        self.acknowledge_with(key, &Acknowledgement::new(by, at))
    }

    /// Records `acknowledgement` (with its outcome and note) of the urgent
    /// item `key`. An acknowledgement is written once: every reader refuses
    /// a change to it (a clinic that reopens an alert and acknowledges it
    /// again keeps the first here).
    ///
    /// # Errors
    /// [`RecordError::NotFound`] when no urgent item has that key.
    pub fn acknowledge_with(&mut self, key: &str, acknowledgement: &Acknowledgement) -> Result<(), RecordError> {
        if !self.urgent_items().iter().any(|item| item.key == key) {
            return Err(not_found("urgent item", key));
        }
        let value = to_json_string(acknowledgement);
        let ack_key = format!("{ACK}{key}");
        self.change(|tx| Ok(tx.put(ROOT, &ack_key, value)?))
    }
}

/// The years a session may start in: inside RFC 3339's 0000-9999, with a
/// year's room at each end for the windows before a start and the
/// aftercare after it.
pub(crate) const SESSION_YEARS: std::ops::RangeInclusive<i32> = 1..=9998;

/// Refuses a session start outside [`SESSION_YEARS`] (in UTC or in its own offset).
fn check_session_start(start: &DateTime<FixedOffset>) -> Result<(), RecordError> {
    if crate::checklist::years_within(start, &SESSION_YEARS) {
        Ok(())
    } else {
        Err(invalid("start", "must be in the years 0001 to 9998"))
    }
}
