// Measures one FFI round trip of a checklist evaluation from Swift: the call,
// the engine's evaluation of every item, and lifting the result (strings,
// instants, arrays) into Swift values; and the cheapest call there is.
// Prints labelled lines for BENCHMARKS.md (use `scripts/swift-test.sh
// --profile mobile`: an optimized library and a release Swift build, run
// serially); asserts nothing about time. Mirrors bindings/tests/kotlin/FfiBenchTest.kt.
import Dispatch
import Foundation
import Katcore
import Testing

@Suite("FFI round trips")
struct FfiBenchTests {
    @Test func checklistEvaluationRoundTrip() throws {
        let scratch = try Scratch()
        let store = try scratch.open("bench.db", key: Data(repeating: 3, count: 32))
        let sessions = store.sessions()
        let checklists = try (1...2).map { days in
            let session = try sessions.schedule(start: Date().addingTimeInterval(Double(days) * 86_400), timeZone: "America/New_York")
            try answerAllPassing(store, sessionId: session.id)
            return try sessions.checklist(sessionId: session.id, locale: "en")
        }
        let warmUp = 2_000
        let measured = 5_000
        func ready(_ checklist: SessionChecklist) throws {
            guard try checklist.evaluate().status == .ready else { throw BenchFailure.notReady }
        }

        // The checklist screen re-evaluating its session: `SessionChecklist.evaluate()`.
        for _ in 0..<warmUp { try ready(checklists[0]) }
        let screen = try micros(measured) { try ready(checklists[0]) }
        print("BENCH swift_checklist_evaluate_us=\(screen)")

        // Alternating between two sessions, so that every call decodes the session's
        // answers from the record again: the first evaluation after an answer or a sync.
        var flip = false
        let alternate = { flip.toggle(); try ready(checklists[flip ? 0 : 1]) }
        for _ in 0..<warmUp { try alternate() }
        print("BENCH swift_checklist_evaluate_decoding_us=\(try micros(measured, alternate))")

        // The same through `Sessions.evaluate(sessionId:locale:)`, which also passes two strings.
        let id = checklists[0].sessionId()
        for _ in 0..<warmUp { _ = try sessions.evaluate(sessionId: id, locale: "en") }
        print("BENCH swift_sessions_evaluate_us=\(try micros(measured) { _ = try sessions.evaluate(sessionId: id, locale: "en") })")

        // For comparison: a Bool in, a Bool out, which pays only UniFFI's per-call overhead.
        let sync = store.sync()
        for _ in 0..<warmUp { _ = sync.setOnline(online: true) }
        print("BENCH swift_trivial_call_us=\(try micros(measured) { _ = sync.setOnline(online: true) })")
        #expect(try sessions.evaluate(sessionId: id, locale: "en").status == .ready)
    }
}

private enum BenchFailure: Error { case notReady }

/// "median (p90 …, n=…)" in µs over `n` timed runs of `body`.
private func micros(_ n: Int, _ body: () throws -> Void) throws -> String {
    var samples: [Double] = []
    samples.reserveCapacity(n)
    for _ in 0..<n {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000)
    }
    samples.sort()
    return String(format: "%.1f (p90 %.1f, n=%d)", samples[n / 2], samples[n * 9 / 10], n)
}
