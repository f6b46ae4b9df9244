// A client's journey through the Swift API against the real library:
// guidelines, the checklist's four outcomes with their explanations in
// English and Spanish, the start gate, aftercare, check-ins, the journal,
// listeners and typed errors. Mirrors bindings/tests/kotlin/JourneyTest.kt.
import Foundation
import Katcore
import Testing

@Suite("The client's journey")
struct JourneyTests {
    let scratch: Scratch

    init() throws {
        scratch = try Scratch()
    }

    /// 15:00 EDT on Friday 1 May 2026, a client's session in New York.
    private func mayDay(_ store: CareStore) throws -> Session {
        try store.sessions().schedule(start: try instant("2026-05-01T19:00:00Z"), timeZone: "America/New_York")
    }

    @Test func aWrongKeyIsATypedErrorAndLeavesTheStoreIntact() throws {
        _ = try scratch.open().journal().write(text: "First entry")
        #expect(throws: KatcoreError.WrongKey) { try scratch.open(key: Data(repeating: 9, count: 32)) }
        #expect(throws: KatcoreError.InvalidKey) { try scratch.open(key: Data(count: 16)) }
        #expect(try scratch.open().journal().entries().map(\.text) == ["First entry"])
    }

    /// Instants in seconds since 1970, from epoch arithmetic (Foundation's calendar is Julian before 1582).
    static let extremeInstants: [Double] = [
        -62_120_044_799.75, // 30 June of the year 1, 00:00:00.25: a large negative count of seconds
        -14_182_939.5, // 20 July 1969, 20:17:39.5, before the epoch
        1_777_662_000.123_456, // May 2026, with microseconds
        253_370_678_400.75, // 31 December 9998, the last writable day
    ]

    @Test(arguments: extremeInstants)
    func instantsCrossTheFfiExactlyBothWays(_ seconds: Double) throws {
        let start = Date(timeIntervalSince1970: seconds)
        let sessions = try scratch.open().sessions()
        let session = try sessions.schedule(start: start, timeZone: "UTC")
        // Every integer of the answer (lengths, tags, 64-bit seconds, nanoseconds) is read back.
        let read = try sessions.get(sessionId: session.id)
        #expect(read.id == session.id)
        #expect(read.timeZone == "UTC")
        // Within what a Double holds at that magnitude (about 30 µs in the year 9998).
        #expect(abs(read.scheduledStart.timeIntervalSince1970 - seconds) < 0.000_1, "\(read.scheduledStart)")
        #expect(sessions.all().map(\.id) == [session.id])
    }

    @Test func theFirstViewShowsTheNextSessionAndItsChecklistWithoutOpeningTheStore() throws {
        let url = scratch.url.appendingPathComponent("client.db")
        #expect(try firstView(at: url, key: testKey, locale: "en") == nil)
        #expect(!FileManager.default.fileExists(atPath: url.path), "asking for a first view creates no store")

        let store = try scratch.open()
        let session = try mayDay(store)
        try answerAllPassing(store, sessionId: session.id)
        let evaluation = try store.sessions().evaluate(sessionId: session.id, locale: "en")
        let now = session.scheduledStart.addingTimeInterval(-3600)
        let view = try #require(try firstView(at: url, key: testKey, locale: "en", now: now))
        #expect(view.nextSession?.id == session.id)
        #expect(view.checklist == evaluation)
        #expect(view.checklist?.status == .ready)
        #expect(view.duePrompts.isEmpty)
        #expect(!view.enrolled)
        #expect(view.unsyncedWrites > 1, "the session and its answers were never synced")
        #expect(throws: KatcoreError.WrongKey) {
            try firstView(at: url, key: Data(repeating: 9, count: 32), locale: "en")
        }
    }

    @Test func guidelinesAndContentComeLocalizedFromThePackInForce() throws {
        let content = try scratch.open().content()
        #expect(!content.guidelines(locale: "es").isEmpty)
        #expect(content.guidelines(locale: "es") != content.guidelines(locale: "en"))
        #expect(content.postSessionGuidance(locale: "en").allSatisfy { !$0.paragraphs.isEmpty })
        #expect(try #require(content.questionnaire(instrument: .phq9, locale: "en")).items.count == 9)
        #expect(try #require(content.questionnaire(instrument: .gad7, locale: "es")).items.count == 7)
        #expect(!content.crisisSupport(locale: "es").contacts.isEmpty)
        #expect(content.packInfo(locale: "en").id == content.packInfo(locale: "es").id)
        #expect(content.checklist(locale: "en").map(\.id) == content.checklist(locale: "es").map(\.id))
    }

    @Test func theChecklistReachesReadyAndTheSessionStartsEndsAndPlansAftercare() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try mayDay(store)
        let empty = try sessions.evaluate(sessionId: session.id, locale: "en")
        #expect(empty.status == .incomplete)
        #expect(empty.items.contains { $0.state == .unanswered })

        try answerAllPassing(store, sessionId: session.id)
        let evaluation = try sessions.evaluate(sessionId: session.id, locale: "en")
        #expect(evaluation.status == .ready, "\(evaluation.items.filter { $0.state != .pass })")
        #expect(evaluation.items.map(\.id) == store.content().checklist(locale: "en").map(\.id))
        #expect(!evaluation.reminders.isEmpty)
        #expect(try sessions.answers(sessionId: session.id)["monitor_present"] == .yesNo(value: true))

        #expect(try sessions.start(sessionId: session.id, locale: "en", at: session.scheduledStart).status == .ready)
        try sessions.end(sessionId: session.id, at: session.scheduledStart.addingTimeInterval(2 * 3600))
        let ended = try sessions.get(sessionId: session.id)
        #expect(ended.startedAt == session.scheduledStart)
        let aftercare = try sessions.aftercare(sessionId: session.id, locale: "es")
        // Ended 17:00 EDT: driving from 08:00 the next morning, later than 8 hours after.
        #expect(aftercare.drivingOkFrom == (try instant("2026-05-02T12:00:00Z")))
        #expect(!aftercare.integration.isEmpty)
        #expect(!aftercare.sideEffectCheckIns.isEmpty)
    }

    @Test func aLateSessionsAftercareKeepsTheNightFreeAndWaitsForEightHoursBeforeDriving() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        // 21:00 EDT on 1 May 2026, ended at 23:00 EDT.
        let start = try instant("2026-05-02T01:00:00Z")
        let session = try sessions.schedule(start: start, timeZone: "America/New_York")
        try answerAllPassing(store, sessionId: session.id)
        #expect(try sessions.start(sessionId: session.id, locale: "en", at: start).status == .ready)
        try sessions.end(sessionId: session.id, at: try instant("2026-05-02T03:00:00Z"))
        let aftercare = try sessions.aftercare(sessionId: session.id, locale: "en")
        // 08:00 EDT, 9 hours after the end: later than the 8-hour minimum.
        #expect(aftercare.drivingOkFrom == (try instant("2026-05-02T12:00:00Z")))
        let checkIns = aftercare.sideEffectCheckIns
        try #require(checkIns.count >= 3)
        // 00:00: kept for the monitor, optional; 03:00 waits for the end of the night at 07:00.
        #expect(checkIns[0].at == (try instant("2026-05-02T04:00:00Z")))
        #expect(checkIns[0].optional)
        #expect(checkIns[0].movedFrom == nil)
        #expect(checkIns[1].at == (try instant("2026-05-02T11:00:00Z")))
        #expect(checkIns[1].movedFrom == (try instant("2026-05-02T07:00:00Z")))
        #expect(!checkIns[1].optional)
        #expect(checkIns[2].at == (try instant("2026-05-02T15:00:00Z")))
        // The same-evening prompt moves to 07:00 too.
        #expect(aftercare.integration.first?.at == (try instant("2026-05-02T11:00:00Z")))
    }

    @Test func aRecentMealMeansWaitExplainedInEnglishAndSpanishAndTheStartWaitsToo() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try mayDay(store)
        try answerAllPassing(store, sessionId: session.id)
        // A meal at 13:40 EDT, 1 h 20 min before the 15:00 start: 3 hours must pass.
        try sessions.answer(sessionId: session.id, itemId: "last_solid_food", answer: .lastTaken(at: try instant("2026-05-01T17:40:00Z")))

        let english = try sessions.evaluate(sessionId: session.id, locale: "en")
        #expect(english.status == .wait)
        #expect(english.readyAt == (try instant("2026-05-01T20:40:00Z")))
        let meal = try #require(english.items.first { $0.id == "last_solid_food" })
        #expect(meal.state == .wait)
        #expect(meal.message == "Last at 13:40, less than 3 h before the start. You can start from 16:40.")
        let spanish = try sessions.evaluate(sessionId: session.id, locale: "es")
        #expect(try #require(spanish.items.first { $0.id == "last_solid_food" }).message
            == "Última vez a las 13:40, menos de 3 h antes del inicio. Puedes empezar a partir de las 16:40.")
        #expect(english.reminders.contains { $0.id == "last_solid_food" })

        #expect(throws: KatcoreError.NotReady(status: .wait)) {
            try sessions.start(sessionId: session.id, locale: "en", at: session.scheduledStart)
        }
        #expect(try sessions.get(sessionId: session.id).startedAt == nil)
        // Moved to when the window closes, the session is ready and starts.
        let readyAt = try #require(english.readyAt)
        try sessions.reschedule(sessionId: session.id, start: readyAt)
        #expect(try sessions.start(sessionId: session.id, locale: "en", at: readyAt).status == .ready)
        #expect(try sessions.get(sessionId: session.id).startedAt == readyAt)
    }

    @Test func aContraindicationBlocksTheStartUntilTheAnswerChanges() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try mayDay(store)
        try answerAllPassing(store, sessionId: session.id)
        // The checklist screen's object: each answer shows in its next evaluation.
        let checklist = try sessions.checklist(sessionId: session.id, locale: "en")
        #expect(try checklist.evaluate().status == .ready)
        let screening = try #require(store.content().checklist(locale: "en").first { $0.kind == .screening })
        try checklist.answer(itemId: screening.id, answer: .yesNo(value: true))

        let blocked = try checklist.evaluate()
        #expect(blocked == (try sessions.evaluate(sessionId: session.id, locale: "en")))
        #expect(blocked.status == .blocked)
        let failed = try #require(blocked.items.first { $0.id == screening.id })
        #expect(failed.state == .fail)
        #expect(failed.message == "You answered yes. Do not start; your clinic needs to review this first.")
        let spanish = try sessions.evaluate(sessionId: session.id, locale: "es")
        #expect(spanish.status == .blocked)
        #expect(spanish.items.first { $0.id == screening.id }?.message
            == "Respondiste que sí. No empieces; tu clínica necesita revisarlo primero.")
        #expect(throws: KatcoreError.NotReady(status: .blocked)) {
            try sessions.start(sessionId: session.id, locale: "en", at: session.scheduledStart)
        }
        #expect(try sessions.get(sessionId: session.id).startedAt == nil)

        try checklist.answer(itemId: screening.id, answer: .yesNo(value: false))
        #expect(try sessions.start(sessionId: session.id, locale: "en", at: session.scheduledStart).status == .ready)
    }

    @Test func anUrgentReadingBlocksTheChecklistAndIsMarkedUrgent() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try mayDay(store)
        try answerAllPassing(store, sessionId: session.id)
        try sessions.answer(sessionId: session.id, itemId: "blood_pressure", answer: .bloodPressure(systolic: 182, diastolic: 114))
        let evaluation = try sessions.evaluate(sessionId: session.id, locale: "en")
        #expect(evaluation.status == .blocked)
        #expect(evaluation.urgent)
        #expect(evaluation.items.first { $0.id == "blood_pressure" }?.urgent == true)

        let reading = try store.wellbeing().recordBloodPressure(systolic: 185, diastolic: 100)
        #expect(reading.urgent)
        #expect(!(try store.wellbeing().recordBloodPressure(systolic: 128, diastolic: 82)).urgent)
        #expect(store.wellbeing().vitals().map(\.urgent) == [true, false])
    }

    @Test func badAnswersAndUnknownIdsAreTypedErrorsNamingTheField() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try mayDay(store)
        #expect(throws: KatcoreError.self) {
            try sessions.answer(sessionId: session.id, itemId: "blood_pressure", answer: .bloodPressure(systolic: 80, diastolic: 120))
        }
        do {
            try sessions.answer(sessionId: session.id, itemId: "blood_pressure", answer: .bloodPressure(systolic: 80, diastolic: 120))
            Issue.record("an implausible reading was accepted")
        } catch KatcoreError.InvalidInput(let field, _) {
            #expect(field == "answers.blood_pressure")
        }
        // A meal after the session's start.
        do {
            try sessions.answer(sessionId: session.id, itemId: "last_solid_food", answer: .lastTaken(at: try instant("2026-05-01T19:30:00Z")))
            Issue.record("a meal after the start was accepted")
        } catch KatcoreError.InvalidInput(let field, _) {
            #expect(field == "answers.last_solid_food")
        }
        #expect { try sessions.answer(sessionId: session.id, itemId: "no_such_item", answer: .yesNo(value: true)) } throws: { error in
            if case KatcoreError.InvalidInput = error { return true } else { return false }
        }
        #expect { try sessions.evaluate(sessionId: "no-such-session", locale: "en") } throws: { error in
            if case KatcoreError.NotFound = error { return true } else { return false }
        }
        #expect { try sessions.schedule(start: Date(), timeZone: "Mars/Olympus_Mons") } throws: { error in
            if case KatcoreError.InvalidInput(let field, _) = error { return field == "time_zone" } else { return false }
        }
        // Nothing was written by the refused calls.
        #expect(try sessions.answers(sessionId: session.id).isEmpty)
    }

    @Test func theJournalKeepsSharedAndPrivateEntriesAndEntriesAnswerDuePrompts() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let start = Date().addingTimeInterval(-3 * 86_400)
        let session = try sessions.schedule(start: start, timeZone: "Europe/Madrid")
        try answerAllPassing(store, sessionId: session.id)
        _ = try sessions.start(sessionId: session.id, locale: "en", at: start)
        try sessions.end(sessionId: session.id, at: start.addingTimeInterval(7_200))

        let journal = store.journal()
        let due = try journal.duePrompts(locale: "en")
        let first = try #require(due.first)
        _ = try journal.write(text: "Shared with my therapist")
        _ = try journal.write(text: "Only for me", private: true, promptId: first.promptId, sessionId: session.id)
        let entries = journal.entries()
        #expect(Set(entries.map { "\($0.text)|\($0.`private`)" }) == ["Shared with my therapist|false", "Only for me|true"])
        #expect(!(try journal.duePrompts(locale: "en")).contains { $0.promptId == first.promptId })

        let privateEntry = try #require(entries.first { $0.`private` })
        try journal.edit(entryId: privateEntry.id, text: "Only for me, edited")
        try journal.delete(entryId: try #require(entries.first { !$0.`private` }).id)
        #expect(journal.entries().map(\.text) == ["Only for me, edited"])
        #expect { try journal.write(text: "   ") } throws: { error in
            if case KatcoreError.InvalidInput = error { return true } else { return false }
        }
        #expect(journal.careTeamNotes().isEmpty)
    }

    @Test func checkInsFlagWorseningAndSevereScoresAndItemNineBringsTheCrisisContacts() throws {
        let store = try scratch.open()
        let wellbeing = store.wellbeing()
        let urgent = try wellbeing.checkIn(instrument: .phq9, answers: Data([0, 0, 0, 0, 0, 0, 0, 0, 1]), locale: "en")
        #expect(urgent.urgent)
        #expect(urgent.total == 1)
        #expect(urgent.crisisMessage != nil)
        #expect(urgent.crisisContacts.contains { $0.phone != nil || $0.sms != nil })

        let calm = try wellbeing.checkIn(instrument: .gad7, answers: Data([1, 1, 0, 0, 0, 0, 0]), locale: "en")
        #expect(!calm.urgent)
        #expect(calm.crisisContacts.isEmpty)
        #expect(calm.review == nil)
        // 5 above the first GAD-7 (2): a marked worsening, not a crisis.
        let worse = try wellbeing.checkIn(instrument: .gad7, answers: Data([2, 1, 1, 1, 1, 1, 0]), locale: "en")
        #expect(worse.review == .worsened)
        #expect(!worse.urgent)
        #expect(worse.reviewMessage != nil)
        let severe = try wellbeing.checkIn(instrument: .gad7, answers: Data([3, 3, 3, 3, 3, 0, 0]), locale: "es")
        #expect(severe.review == .severe)
        #expect(severe.band == .severe)
        #expect(severe.reviewMessage?.hasPrefix("Tus respuestas") == true)
        do {
            _ = try wellbeing.checkIn(instrument: .phq9, answers: Data([0]), locale: "en")
            Issue.record("a one-answer PHQ-9 was accepted")
        } catch KatcoreError.InvalidInput(let field, _) {
            #expect(field == "answers")
        }

        let effect = try #require(store.content().sideEffects(locale: "en").first)
        #expect(try wellbeing.reportSideEffect(effectId: effect.id, severity: .severe).severity == .severe)
        _ = try wellbeing.recordMood(score: 7)
        #expect(wellbeing.checkIns().count == 5)
        #expect(wellbeing.sideEffects().map(\.urgent) == [true])
    }

    @Test func listenersHearAboutChangesUntilTheirHandleIsCancelled() throws {
        let store = try scratch.open()
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { heard.add($0) })
        _ = try store.journal().write(text: "Heard")
        _ = try store.wellbeing().recordMood(score: 5)
        _ = try mayDay(store)
        handle.cancel()
        _ = try store.journal().write(text: "Not heard")
        #expect(heard.allChanges == [.journal, .wellbeing, .sessions])
    }

    @Test func withoutATransportEverythingButSyncWorksAndSyncSaysWhyNot() async throws {
        let store = try CareStore.open(path: scratch.url.appendingPathComponent("offline.db").path, key: testKey, transport: nil)
        _ = try store.journal().write(text: "Kept on the phone")
        #expect(!store.sync().status().enrolled)
        do {
            _ = try await store.sync().syncNow()
            Issue.record("sync without a transport did not fail")
        } catch KatcoreError.InvalidInput(let field, _) {
            #expect(field == "transport")
        }
    }
}
