// The client's journey through the Swift API, mirroring
// bindings/tests/kotlin/JourneyTest.kt. Run with `swift test` on a Mac after
// ./build-xcframework.sh (the XCFramework carries a macOS slice for this), or
// on a simulator with `xcodebuild test -scheme Katcore -destination 'platform=iOS Simulator,name=iPhone 16'`.
// The sync test runs when KATCORE_CLINIC_URL and KATCORE_ENROLLMENT_CODE are set.
import Foundation
import XCTest

@testable import Katcore

/// An answer that makes `question` pass.
func passingAnswer(_ question: ChecklistQuestion) -> ChecklistAnswer {
    switch question.kind {
    case .lastTaken: return .notRecently
    case .bloodPressure: return .bloodPressure(systolic: 124, diastolic: 78)
    case .attestation: return .yesNo(value: true)
    case .choice(let options):
        return .choice(value: options.first { $0.value == "not_prescribed" || $0.value == "yes" }!.value)
    case .freeText: return .text(value: "Be open to what comes")
    case .screening: return .yesNo(value: false)
    }
}

func answerAllPassing(_ store: CareStore, sessionId: String) throws {
    let sessions = store.sessions()
    for question in store.content().checklist(locale: "en") {
        try sessions.answer(sessionId: sessionId, itemId: question.id, answer: passingAnswer(question))
    }
}

/// Collects what a listener hears, from any thread.
final class Heard: @unchecked Sendable {
    private let lock = NSLock()
    private var changes: [CareChange] = []
    private var statuses: [SyncStatus] = []

    func add(_ change: CareChange) { lock.lock(); changes.append(change); lock.unlock() }
    func add(_ status: SyncStatus) { lock.lock(); statuses.append(status); lock.unlock() }
    var allChanges: [CareChange] { lock.lock(); defer { lock.unlock() }; return changes }
    var lastStatus: SyncStatus? { lock.lock(); defer { lock.unlock() }; return statuses.last }
}

final class JourneyTests: XCTestCase {
    private var dir: URL!
    private let key = Data((0..<32).map { UInt8($0) })

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func open(key: Data? = nil) throws -> CareStore {
        try CareStore.open(at: dir.appendingPathComponent("client.db"), key: key ?? self.key)
    }

    private func tomorrow(_ sessions: Sessions) throws -> Session {
        try sessions.schedule(start: Date().addingTimeInterval(86_400), timeZone: "America/New_York")
    }

    func testAWrongKeyIsATypedErrorAndLeavesTheStoreIntact() throws {
        _ = try open().journal().write(text: "First entry")
        XCTAssertThrowsError(try open(key: Data(repeating: 9, count: 32))) { error in
            guard case KatcoreError.WrongKey = error else { return XCTFail("expected WrongKey, got \(error)") }
        }
        XCTAssertThrowsError(try open(key: Data(count: 16))) { error in
            guard case KatcoreError.InvalidKey = error else { return XCTFail("expected InvalidKey, got \(error)") }
        }
        XCTAssertEqual(try open().journal().entries().map(\.text), ["First entry"])
    }

    func testTheChecklistReachesReadyAndTheSessionStartsEndsAndPlansAftercare() throws {
        let store = try open()
        let sessions = store.sessions()
        let session = try tomorrow(sessions)
        XCTAssertEqual(try sessions.evaluate(sessionId: session.id, locale: "en").status, .incomplete)

        try answerAllPassing(store, sessionId: session.id)
        let evaluation = try sessions.evaluate(sessionId: session.id, locale: "en")
        XCTAssertEqual(evaluation.status, .ready)
        XCTAssertEqual(evaluation.items.map(\.id), store.content().checklist(locale: "en").map(\.id))
        XCTAssertFalse(evaluation.reminders.isEmpty)

        XCTAssertEqual(try sessions.start(sessionId: session.id, locale: "en", at: session.scheduledStart).status, .ready)
        try sessions.end(sessionId: session.id, at: session.scheduledStart.addingTimeInterval(7_200))
        let ended = try sessions.get(sessionId: session.id)
        let aftercare = try sessions.aftercare(sessionId: session.id, locale: "es")
        XCTAssertGreaterThan(aftercare.drivingOkFrom, ended.endedAt!)
        XCTAssertFalse(aftercare.integration.isEmpty)
    }

    func testAContraindicationBlocksTheChecklistAndTheSessionDoesNotStart() throws {
        let store = try open()
        let sessions = store.sessions()
        let session = try tomorrow(sessions)
        try answerAllPassing(store, sessionId: session.id)
        // The checklist screen's object: each answer shows in its next evaluation.
        let checklist = try sessions.checklist(sessionId: session.id, locale: "en")
        XCTAssertEqual(try checklist.evaluate().status, .ready)
        let screening = store.content().checklist(locale: "en").first { $0.kind == .screening }!
        try checklist.answer(itemId: screening.id, answer: .yesNo(value: true))

        XCTAssertEqual(try checklist.evaluate(), try sessions.evaluate(sessionId: session.id, locale: "en"))
        XCTAssertEqual(try checklist.evaluate().status, .blocked)
        XCTAssertThrowsError(try sessions.start(sessionId: session.id, locale: "en")) { error in
            guard case KatcoreError.NotReady(status: .blocked) = error else { return XCTFail("got \(error)") }
        }
        XCTAssertNil(try sessions.get(sessionId: session.id).startedAt)
    }

    func testJournalKeepsSharedAndPrivateEntriesAndEntriesAnswerDuePrompts() throws {
        let store = try open()
        let sessions = store.sessions()
        let start = Date().addingTimeInterval(-3 * 86_400)
        let session = try sessions.schedule(start: start, timeZone: "Europe/Madrid")
        try answerAllPassing(store, sessionId: session.id)
        _ = try sessions.start(sessionId: session.id, locale: "en", at: start)
        try sessions.end(sessionId: session.id, at: start.addingTimeInterval(7_200))

        let journal = store.journal()
        let due = try journal.duePrompts(locale: "en")
        XCTAssertFalse(due.isEmpty)
        _ = try journal.write(text: "Shared with my therapist")
        _ = try journal.write(text: "Only for me", private: true, promptId: due[0].promptId, sessionId: session.id)
        XCTAssertEqual(Set(journal.entries().map { "\($0.text)|\($0.`private`)" }), ["Shared with my therapist|false", "Only for me|true"])
        XCTAssertFalse(try journal.duePrompts(locale: "en").contains { $0.promptId == due[0].promptId })
    }

    func testAnUrgentCheckInReturnsTheCrisisContacts() throws {
        let wellbeing = try open().wellbeing()
        let urgent = try wellbeing.checkIn(instrument: .phq9, answers: Data([0, 0, 0, 0, 0, 0, 0, 0, 1]), locale: "en")
        XCTAssertTrue(urgent.urgent)
        XCTAssertNotNil(urgent.crisisMessage)
        XCTAssertFalse(urgent.crisisContacts.isEmpty)
        let calm = try wellbeing.checkIn(instrument: .gad7, answers: Data([1, 1, 0, 0, 0, 0, 0]), locale: "en")
        XCTAssertFalse(calm.urgent)
        XCTAssertThrowsError(try wellbeing.checkIn(instrument: .phq9, answers: Data([0]), locale: "en")) { error in
            guard case KatcoreError.InvalidInput(field: "answers", reason: _) = error else { return XCTFail("got \(error)") }
        }
        XCTAssertTrue(try wellbeing.recordBloodPressure(systolic: 185, diastolic: 100).urgent)
    }

    func testListenersHearAboutChangesUntilTheirHandleIsCancelled() throws {
        let store = try open()
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { heard.add($0) })
        _ = try store.journal().write(text: "Heard")
        _ = try store.wellbeing().recordMood(score: 5)
        handle.cancel()
        _ = try store.journal().write(text: "Not heard")
        XCTAssertEqual(heard.allChanges, [.journal, .wellbeing])
    }

    func testSyncEnrollsWaitsOfflineAndCatchesUpWhenBackOnline() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["KATCORE_CLINIC_URL"], let code = env["KATCORE_ENROLLMENT_CODE"] else {
            throw XCTSkip("set KATCORE_CLINIC_URL and KATCORE_ENROLLMENT_CODE")
        }
        let store = try open()
        let sync = store.sync()
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { _ in }, onSyncStatusChanged: { heard.add($0) })
        defer { handle.cancel() }

        do {
            _ = try await sync.syncNow()
            XCTFail("expected NotEnrolled")
        } catch KatcoreError.NotEnrolled {}
        do {
            // Nothing listens on port 9 of loopback: the transport's failure is a typed Network error.
            _ = try await sync.enroll(serverUrl: "http://127.0.0.1:9", code: code, deviceLabel: "Swift test phone")
            XCTFail("expected Network")
        } catch KatcoreError.Network(let reason) {
            XCTAssertFalse(reason.contains("127.0.0.1"))
        }
        _ = try await sync.enroll(serverUrl: url, code: code, deviceLabel: "Swift test phone")
        _ = try store.journal().write(text: "Written on the train")
        XCTAssertFalse(sync.setOnline(online: false))
        do {
            _ = try await sync.syncIfDue()
            XCTFail("expected Offline")
        } catch KatcoreError.Offline {}
        XCTAssertGreaterThan(sync.status().pendingChanges, 0)

        XCTAssertTrue(sync.setOnline(online: true))
        let report = try await sync.syncIfDue()
        XCTAssertTrue(report.sentChanges)
        let status = sync.status()
        XCTAssertNotNil(status.lastSuccess)
        XCTAssertEqual(status.pendingChanges, 0)
        XCTAssertEqual(heard.lastStatus, status)
    }

    func testWithoutATransportEverythingButSyncWorksAndSyncSaysWhyNot() async throws {
        let store = try CareStore.open(path: dir.appendingPathComponent("offline.db").path, key: key, transport: nil)
        _ = try store.journal().write(text: "Kept on the phone")
        do {
            _ = try await store.sync().syncNow()
            XCTFail("expected InvalidInput")
        } catch KatcoreError.InvalidInput(let field, _) {
            XCTAssertEqual(field, "transport")
        }
    }
}
