// Measures one FFI round trip of a checklist evaluation from Kotlin: the
// call, the engine's evaluation of every item, and lifting the result
// (strings, instants, lists) back into Kotlin objects. Prints labelled lines
// for BENCHMARKS.md; asserts nothing about time.
package org.katcore.test

import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.katcore.CareStore
import org.katcore.ReadinessStatus
import org.katcore.SessionChecklist

class FfiBenchTest {
    @Test
    fun `checklist evaluation round trip`() {
        val dir = Files.createTempDirectory("katcore-bench").toFile()
        try {
            CareStore.open(File(dir, "bench.db").path, ByteArray(32) { 3 }).use { store ->
                val sessions = store.sessions()
                val (first, second) = List(2) {
                    val session = sessions.schedule(Instant.now().plus(Duration.ofDays(1L + it)), "America/New_York")
                    answerAllPassing(store, session.id)
                    sessions.checklist(session.id, "en")
                }
                // The JVM compiles the lifting code after some thousands of calls;
                // the figures are the steady state an open checklist screen sees.
                val warmUp = 20_000
                val measured = 5_000
                fun ready(checklist: SessionChecklist) {
                    if (checklist.evaluate().status != ReadinessStatus.READY) error("not ready")
                }

                // The checklist screen re-evaluating its session: `SessionChecklist.evaluate()`.
                repeat(warmUp) { ready(first) }
                val screen = medianMicros(measured) { ready(first) }
                println("BENCH kotlin_checklist_evaluate_us=%.1f (p90 %.1f, n=%d, after %d warm-up calls)".format(screen.first, screen.second, measured, warmUp))

                // Alternating between two sessions, so that every call decodes the
                // session's answers from the record again: the cost of the first
                // evaluation after an answer or a sync changed the record.
                var flip = false
                val alternate = { flip = !flip; ready(if (flip) first else second) }
                repeat(warmUp) { alternate() }
                val decoding = medianMicros(measured) { alternate() }
                println("BENCH kotlin_checklist_evaluate_decoding_us=%.1f (p90 %.1f, n=%d)".format(decoding.first, decoding.second, measured))

                // The same evaluation through `Sessions.evaluate(sessionId, locale)`,
                // which also passes two strings.
                val id = first.sessionId()
                repeat(warmUp) { sessions.evaluate(id, "en") }
                val byId = medianMicros(measured) { sessions.evaluate(id, "en") }
                println("BENCH kotlin_sessions_evaluate_us=%.1f (p90 %.1f, n=%d)".format(byId.first, byId.second, measured))

                // For comparison: the cheapest call there is (a Boolean in, a Boolean out),
                // which pays only UniFFI's per-call overhead through JNA.
                val sync = store.sync()
                repeat(warmUp) { sync.setOnline(true) }
                val trivial = medianMicros(measured) { sync.setOnline(true) }
                println("BENCH kotlin_trivial_call_us=%.1f (p90 %.1f, n=%d)".format(trivial.first, trivial.second, measured))
                assertEquals(ReadinessStatus.READY, sessions.evaluate(id, "en").status)
            }
        } finally {
            dir.deleteRecursively()
        }
    }
}

/** The median and 90th percentile, in µs, of `n` timed runs of `block`. */
private inline fun medianMicros(n: Int, block: () -> Unit): Pair<Double, Double> {
    val micros = DoubleArray(n)
    for (i in 0 until n) {
        val t0 = System.nanoTime()
        block()
        micros[i] = (System.nanoTime() - t0) / 1_000.0
    }
    micros.sort()
    return micros[n / 2] to micros[n * 9 / 10]
}
