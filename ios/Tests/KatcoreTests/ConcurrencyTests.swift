// One store shared by many Swift tasks and threads at once, as an app's
// screens, background refresh and listeners share it: every write lands,
// every read sees a consistent record, and listeners hear each change.
import Dispatch
import Foundation
import Katcore
import Testing

@Suite("Many tasks, one store")
struct ConcurrencyTests {
    let scratch: Scratch

    init() throws {
        scratch = try Scratch()
    }

    @Test func concurrentTasksWriteAndReadOneStoreWithoutLosingAnything() async throws {
        let store = try scratch.open()
        let session = try store.sessions().schedule(start: Date().addingTimeInterval(86_400), timeZone: "Europe/Madrid")
        try answerAllPassing(store, sessionId: session.id)
        let checklist = try store.sessions().checklist(sessionId: session.id, locale: "es")
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { heard.add($0) })
        let tasks = 40

        let statuses = try await withThrowingTaskGroup(of: ReadinessStatus.self) { group in
            for index in 0..<tasks {
                group.addTask {
                    // Each task writes through its own objects, all from the one store.
                    _ = try store.journal().write(text: "Entry \(index)", private: index % 2 == 0)
                    _ = try store.wellbeing().recordMood(score: UInt8(index % 11))
                    return try checklist.evaluate().status
                }
            }
            return try await group.reduce(into: [ReadinessStatus]()) { $0.append($1) }
        }
        handle.cancel()

        #expect(statuses == Array(repeating: .ready, count: tasks))
        let texts = Set(store.journal().entries().map(\.text))
        #expect(texts == Set((0..<tasks).map { "Entry \($0)" }))
        #expect(store.wellbeing().checkIns().count == tasks)
        let changes = heard.allChanges
        #expect(changes.filter { $0 == .journal }.count == tasks)
        #expect(changes.filter { $0 == .wellbeing }.count == tasks)
        // The record on disk holds all of it: a second store on the same file reads it back.
        #expect(Set(try scratch.open().journal().entries().map(\.text)) == texts)
    }

    @Test func threadsOutsideSwiftConcurrencyShareTheStoreToo() throws {
        let store = try scratch.open()
        let sessions = store.sessions()
        let session = try sessions.schedule(start: Date().addingTimeInterval(86_400), timeZone: "America/New_York")
        let questions = store.content().checklist(locale: "en")
        // Each thread answers its share of the questions while evaluating the whole checklist.
        DispatchQueue.concurrentPerform(iterations: questions.count) { index in
            let question = questions[index]
            // A failure here surfaces below as a missing answer.
            guard let answer = try? passingAnswer(question) else { return }
            try? sessions.answer(sessionId: session.id, itemId: question.id, answer: answer)
            _ = try? sessions.evaluate(sessionId: session.id, locale: "en")
        }
        #expect(try sessions.answers(sessionId: session.id).count == questions.count)
        #expect(try sessions.evaluate(sessionId: session.id, locale: "en").status == .ready)
    }
}
