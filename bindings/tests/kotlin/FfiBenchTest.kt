// Measures one FFI round trip of a checklist evaluation from Kotlin: the
// call, the engine's evaluation of every item, and lifting the result
// (strings, instants, lists) back into Kotlin objects. Prints a labelled
// line for BENCHMARKS.md; asserts nothing about time.
package org.katcore.test

import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.katcore.CareStore
import org.katcore.ReadinessStatus

class FfiBenchTest {
    @Test
    fun `checklist evaluation round trip`() {
        val dir = Files.createTempDirectory("katcore-bench").toFile()
        try {
            CareStore.open(File(dir, "bench.db").path, ByteArray(32) { 3 }).use { store ->
                val sessions = store.sessions()
                val session = sessions.schedule(Instant.now().plus(Duration.ofDays(1)), "America/New_York")
                answerAllPassing(store, session.id)
                val warmUp = 500
                val measured = 5_000
                repeat(warmUp) { sessions.evaluate(session.id, "en") }
                val micros = DoubleArray(measured)
                for (i in 0 until measured) {
                    val t0 = System.nanoTime()
                    val evaluation = sessions.evaluate(session.id, "en")
                    micros[i] = (System.nanoTime() - t0) / 1_000.0
                    if (evaluation.status != ReadinessStatus.READY) error("not ready")
                }
                micros.sort()
                val median = micros[measured / 2]
                val p90 = micros[measured * 9 / 10]
                println("BENCH kotlin_checklist_evaluate_us=%.1f (p90 %.1f, n=%d, after %d warm-up calls)".format(median, p90, measured, warmUp))
                assertEquals(ReadinessStatus.READY, sessions.evaluate(session.id, "en").status)
            }
        } finally {
            dir.deleteRecursively()
        }
    }
}
