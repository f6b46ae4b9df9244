// Runs the Swift examples of docs/mobile.md and README.md, which
// ios/extract-doc-examples.sh copies into DocExamples/ before each build, so
// the documents cannot drift from the API. Mirrors
// bindings/tests/kotlin/DocExampleTest.kt.
import Foundation
import Katcore
import Testing

@Suite("The documents' examples")
struct DocExampleTests {
    @Test func theMobileGuidesSwiftExampleWorks() async throws {
        let scratch = try Scratch()
        let key = Data(repeating: 42, count: 32)
        #expect(try firstScreen(in: scratch.url, key: key) == nil, "no store yet: nothing to show before opening")
        let store = try #require(try openRecord(in: scratch.url, key: key))
        let heard = Heard()
        let handle = observe(store, refresh: { heard.add($0) })
        var notifications: [(Date, String)] = []
        #expect(try checklistStatus(store) { notifications.append(($0, $1)) }.hasSuffix("questions left"))
        #expect(!notifications.isEmpty)
        let screen = try #require(try firstScreen(in: scratch.url, key: key))
        #expect(screen.hasPrefix("Next session") && screen.contains("incomplete"), "\(screen)")
        #expect(!(try phq9(store, answers: [0, 0, 0, 0, 0, 0, 0, 0, 2])).isEmpty)
        #expect(try phq9(store, answers: Array(repeating: 0, count: 9)).isEmpty)
        await onConnectivityChanged(store, online: true)
        // The example hands changes to the main actor: give it a moment (bounded) to run them.
        for _ in 0..<100 where !(heard.allChanges.contains(.sessions) && heard.allChanges.contains(.wellbeing)) {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        handle.cancel()
        #expect(heard.allChanges.contains(.sessions) && heard.allChanges.contains(.wellbeing))
        #expect(try openRecord(in: scratch.url, key: Data(repeating: 1, count: 32)) == nil)
    }

    @Test func theReadmesSwiftExampleWorks() async throws {
        let scratch = try Scratch()
        #expect(try await firstSession(in: scratch.url, key: Data(repeating: 7, count: 32)) == .incomplete)
    }
}
