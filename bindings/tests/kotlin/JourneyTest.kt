// A client's journey through the generated Kotlin API, against the real
// library loaded through JNA. Run by scripts/kotlin-test.sh, which also starts
// a clinic server on loopback for the sync test.
package org.katcore.test

import java.io.File
import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import java.util.Collections
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.katcore.CareChange
import org.katcore.CareListener
import org.katcore.CareStore
import org.katcore.ChecklistAnswer
import org.katcore.InstrumentKind
import org.katcore.ItemState
import org.katcore.KatcoreException
import org.katcore.QuestionKind
import org.katcore.ReadinessStatus
import org.katcore.ScoreFlag
import org.katcore.Sessions
import org.katcore.Severity
import org.katcore.SyncStatus
import org.katcore.UrlConnectionTransport
import org.katcore.firstView

class JourneyTest {
    private lateinit var dir: File
    private val key = ByteArray(32) { it.toByte() }

    @BeforeEach
    fun createDir() {
        dir = Files.createTempDirectory("katcore-kotlin").toFile()
    }

    @AfterEach
    fun removeDir() {
        dir.deleteRecursively()
    }

    private fun open(name: String = "client.db", key: ByteArray = this.key) =
        CareStore.open(File(dir, name).path, key, UrlConnectionTransport())

    private fun tomorrow(sessions: Sessions) =
        sessions.schedule(Instant.now().plus(Duration.ofDays(1)), "America/New_York")

    @Test
    fun `a wrong key is a typed exception and leaves the store intact`() {
        open().use { store -> store.journal().write("First entry") }
        assertThrows<KatcoreException.WrongKey> { open(key = ByteArray(32) { 9 }) }
        assertThrows<KatcoreException.InvalidKey> { open(key = ByteArray(16)) }
        open().use { store -> assertEquals(listOf("First entry"), store.journal().entries().map { it.text }) }
    }

    @Test
    fun `the first view shows the next session and its checklist without opening the store`() {
        val path = File(dir, "client.db").path
        assertNull(firstView(path, key, "en", null), "no store: no first view")
        assertFalse(File(path).exists(), "asking for a first view creates no store")

        val (session, evaluation) = open().use { store ->
            val session = tomorrow(store.sessions())
            answerAllPassing(store, session.id)
            session to store.sessions().evaluate(session.id, "en")
        }
        val view = firstView(path, key, "en", null)
        assertNotNull(view, "the store keeps what the first view needs")
        view!!
        assertEquals(session.id, view.nextSession?.id)
        assertEquals(evaluation, view.checklist)
        assertEquals(ReadinessStatus.READY, view.checklist?.status)
        assertTrue(view.duePrompts.isEmpty())
        assertFalse(view.enrolled)
        assertTrue(view.unsyncedWrites > 1uL, "the session and its answers were never synced")
        assertThrows<KatcoreException.WrongKey> { firstView(path, ByteArray(32) { 9 }, "en", null) }
    }

    @Test
    fun `the checklist reaches ready, and a session starts, ends and plans aftercare`() {
        open().use { store ->
            val sessions = store.sessions()
            val session = tomorrow(sessions)
            assertEquals(ReadinessStatus.INCOMPLETE, sessions.evaluate(session.id, "en").status)

            answerAllPassing(store, session.id)
            val evaluation = sessions.evaluate(session.id, "en")
            assertEquals(ReadinessStatus.READY, evaluation.status, evaluation.items.filter { it.state != ItemState.PASS }.toString())
            assertEquals(store.content().checklist("en").map { it.id }, evaluation.items.map { it.id })
            assertTrue(evaluation.reminders.isNotEmpty())
            assertEquals(ChecklistAnswer.YesNo(true), sessions.answers(session.id)["monitor_present"])

            val startedAt = session.scheduledStart
            assertEquals(ReadinessStatus.READY, sessions.start(session.id, "en", startedAt).status)
            sessions.end(session.id, startedAt.plus(Duration.ofHours(2)))
            val ended = sessions.get(session.id)
            assertEquals(startedAt, ended.startedAt)
            val aftercare = sessions.aftercare(session.id, "es")
            assertTrue(aftercare.drivingOkFrom > ended.endedAt!!)
            assertTrue(aftercare.integration.isNotEmpty())
        }
    }

    @Test
    fun `a late session's aftercare keeps the client's night free`() {
        open().use { store ->
            val sessions = store.sessions()
            // 21:00 EDT on 1 May 2026, ended at 23:00 EDT.
            val start = Instant.parse("2026-05-02T01:00:00Z")
            val session = sessions.schedule(start, "America/New_York")
            answerAllPassing(store, session.id)
            assertEquals(ReadinessStatus.READY, sessions.start(session.id, "en", start).status)
            sessions.end(session.id, Instant.parse("2026-05-02T03:00:00Z"))
            val aftercare = sessions.aftercare(session.id, "en")
            // 08:00 EDT, 9 hours after the end: later than the 8-hour minimum.
            assertEquals(Instant.parse("2026-05-02T12:00:00Z"), aftercare.drivingOkFrom)
            val (first, second, third) = aftercare.sideEffectCheckIns
            // 00:00: kept for the monitor, optional; 03:00 waits for 07:00.
            assertEquals(Instant.parse("2026-05-02T04:00:00Z"), first.at)
            assertTrue(first.optional)
            assertNull(first.movedFrom)
            assertEquals(Instant.parse("2026-05-02T11:00:00Z"), second.at)
            assertEquals(Instant.parse("2026-05-02T07:00:00Z"), second.movedFrom)
            assertFalse(second.optional)
            assertEquals(Instant.parse("2026-05-02T15:00:00Z"), third.at)
            // The same-evening prompt (due at 00:00 at the earliest) moves to 07:00 too.
            assertEquals(Instant.parse("2026-05-02T11:00:00Z"), aftercare.integration.first().at)
        }
    }

    @Test
    fun `a contraindication blocks the checklist and the session does not start`() {
        open().use { store ->
            val sessions = store.sessions()
            val session = tomorrow(sessions)
            answerAllPassing(store, session.id)
            // The checklist screen's object: each answer shows in its next evaluation.
            val checklist = sessions.checklist(session.id, "en")
            assertEquals(ReadinessStatus.READY, checklist.evaluate().status)
            val screening = store.content().checklist("en").first { it.kind is QuestionKind.Screening }
            checklist.answer(screening.id, ChecklistAnswer.YesNo(true))

            val evaluation = checklist.evaluate()
            assertEquals(evaluation, sessions.evaluate(session.id, "en"))
            assertEquals(ReadinessStatus.BLOCKED, evaluation.status)
            assertEquals(ItemState.FAIL, evaluation.items.first { it.id == screening.id }.state)
            val refused = assertThrows<KatcoreException.NotReady> { sessions.start(session.id, "en") }
            assertEquals(ReadinessStatus.BLOCKED, refused.status)
            assertNull(sessions.get(session.id).startedAt)
        }
    }

    @Test
    fun `bad answers and unknown ids are typed exceptions naming the field`() {
        open().use { store ->
            val sessions = store.sessions()
            val session = tomorrow(sessions)
            val implausible = assertThrows<KatcoreException.InvalidInput> {
                sessions.answer(session.id, "blood_pressure", ChecklistAnswer.BloodPressure(80u, 120u))
            }
            assertEquals("answers.blood_pressure", implausible.field)
            assertThrows<KatcoreException.InvalidInput> { sessions.answer(session.id, "no_such_item", ChecklistAnswer.YesNo(true)) }
            assertThrows<KatcoreException.NotFound> { sessions.evaluate("no-such-session", "en") }
            assertThrows<KatcoreException.InvalidInput> { sessions.schedule(Instant.now(), "Mars/Olympus_Mons") }
        }
    }

    @Test
    fun `journal keeps shared and private entries, and entries answer due prompts`() {
        open().use { store ->
            val sessions = store.sessions()
            val start = Instant.now().minus(Duration.ofDays(3))
            val session = sessions.schedule(start, "Europe/Madrid")
            answerAllPassing(store, session.id)
            sessions.start(session.id, "en", start)
            sessions.end(session.id, start.plus(Duration.ofHours(2)))

            val journal = store.journal()
            val due = journal.duePrompts("en")
            assertTrue(due.isNotEmpty())
            journal.write("Shared with my therapist")
            journal.write("Only for me", private = true, promptId = due.first().promptId, sessionId = session.id)
            val entries = journal.entries()
            assertEquals(setOf("Shared with my therapist" to false, "Only for me" to true), entries.map { it.text to it.private }.toSet())
            assertFalse(journal.duePrompts("en").any { it.promptId == due.first().promptId })

            val private = entries.first { it.private }
            journal.edit(private.id, "Only for me, edited")
            journal.delete(entries.first { !it.private }.id)
            assertEquals(listOf("Only for me, edited"), journal.entries().map { it.text })
            assertThrows<KatcoreException.InvalidInput> { journal.write("   ") }
        }
    }

    @Test
    fun `an urgent check-in returns the crisis contacts`() {
        open().use { store ->
            val wellbeing = store.wellbeing()
            val urgent = wellbeing.checkIn(InstrumentKind.PHQ9, byteArrayOf(0, 0, 0, 0, 0, 0, 0, 0, 1), "en")
            assertTrue(urgent.urgent)
            assertEquals(1u.toUByte(), urgent.total)
            assertNotNull(urgent.crisisMessage)
            assertTrue(urgent.crisisContacts.any { it.phone != null || it.sms != null })

            val calm = wellbeing.checkIn(InstrumentKind.GAD7, byteArrayOf(1, 1, 0, 0, 0, 0, 0), "en")
            assertFalse(calm.urgent)
            assertTrue(calm.crisisContacts.isEmpty())
            assertNull(calm.review)
            // 5 above the first GAD-7 (2): a marked worsening, not a crisis.
            val worse = wellbeing.checkIn(InstrumentKind.GAD7, byteArrayOf(2, 1, 1, 1, 1, 1, 0), "en")
            assertEquals(ScoreFlag.WORSENED, worse.review)
            assertFalse(worse.urgent)
            assertNotNull(worse.reviewMessage)
            val severe = wellbeing.checkIn(InstrumentKind.GAD7, byteArrayOf(3, 3, 3, 3, 3, 0, 0), "es")
            assertEquals(ScoreFlag.SEVERE, severe.review)
            assertTrue(severe.reviewMessage!!.startsWith("Tus respuestas"))
            val wrongCount = assertThrows<KatcoreException.InvalidInput> { wellbeing.checkIn(InstrumentKind.PHQ9, byteArrayOf(0), "en") }
            assertEquals("answers", wrongCount.field)

            assertTrue(wellbeing.recordBloodPressure(185u, 100u).urgent)
            val effect = store.content().sideEffects("en").first()
            assertEquals(Severity.SEVERE, wellbeing.reportSideEffect(effect.id, Severity.SEVERE).severity)
            wellbeing.recordMood(7u)
            assertEquals(5, wellbeing.checkIns().size)
            assertEquals(listOf(true), wellbeing.sideEffects().map { it.urgent })
        }
    }

    @Test
    fun `listeners hear about changes until their handle is cancelled`() {
        open().use { store ->
            val changes = Collections.synchronizedList(mutableListOf<CareChange>())
            val handle = store.addListener(object : CareListener {
                override fun onRecordChanged(change: CareChange) {
                    changes.add(change)
                }

                override fun onSyncStatusChanged(status: SyncStatus) {}
            })
            store.journal().write("Heard")
            store.wellbeing().recordMood(5u)
            handle.cancel()
            store.journal().write("Not heard")
            assertEquals(listOf(CareChange.JOURNAL, CareChange.WELLBEING), changes.toList())
        }
    }

    @Test
    fun `content comes localized from the pack in force`() {
        open().use { store ->
            val content = store.content()
            assertTrue(content.guidelines("es").isNotEmpty())
            assertTrue(content.postSessionGuidance("en").all { it.paragraphs.isNotEmpty() })
            assertEquals(9, content.questionnaire(InstrumentKind.PHQ9, "en")!!.items.size)
            assertTrue(content.crisisSupport("es").contacts.isNotEmpty())
            assertEquals(content.packInfo("en").id, content.packInfo("es").id)
        }
    }

    @Test
    fun `sync enrolls, waits offline, and catches up when back online`() {
        val url = System.getenv("KATCORE_CLINIC_URL")
        val code = System.getenv("KATCORE_ENROLLMENT_CODE")
        assumeTrue(url != null && code != null, "set KATCORE_CLINIC_URL and KATCORE_ENROLLMENT_CODE (scripts/kotlin-test.sh does)")
        open().use { store ->
            val sync = store.sync()
            val statuses = Collections.synchronizedList(mutableListOf<SyncStatus>())
            val handle = store.addListener(object : CareListener {
                override fun onRecordChanged(change: CareChange) {}

                override fun onSyncStatusChanged(status: SyncStatus) {
                    statuses.add(status)
                }
            })
            runBlocking {
                assertThrows<KatcoreException.NotEnrolled> { sync.syncNow() }
                // Nothing listens on this port: the transport's failure is a typed Network error.
                val closed = java.net.ServerSocket(0).use { "http://127.0.0.1:${it.localPort}" }
                val unreachable = assertThrows<KatcoreException.Network> { sync.enroll(closed, code, "Kotlin test phone") }
                assertFalse(unreachable.reason.contains("127.0.0.1"), "no address in the error: ${unreachable.reason}")
                assertThrows<KatcoreException.InvalidCode> { sync.enroll(url, "AAAA-BBBB-CCCC", "Kotlin test phone") }
                val enrollment = sync.enroll(url, code, "Kotlin test phone")
                assertEquals(enrollment, sync.enrollment())

                store.journal().write("Written on the train")
                store.wellbeing().recordBloodPressure(121u, 79u)
                assertFalse(sync.setOnline(false))
                assertThrows<KatcoreException.Offline> { sync.syncIfDue() }
                val offline = sync.status()
                assertTrue(offline.enrolled && !offline.online && offline.pendingChanges > 0u)
                assertNull(offline.lastSuccess)

                assertTrue(sync.setOnline(true), "back online with changes pending: worth syncing")
                val report = sync.syncIfDue()
                assertTrue(report.sentChanges)
                val after = sync.status()
                assertTrue(after.online)
                assertNotNull(after.lastSuccess)
                assertEquals(0uL, after.pendingChanges)
                assertNull(after.lastError)
                assertEquals(after, statuses.last())
                // The care team's note, written before the device enrolled, arrived with the sync.
                val notes = store.journal().careTeamNotes()
                assertEquals(listOf(System.getenv("KATCORE_CARE_TEAM_NOTE")), notes.map { it.text })
                assertEquals("Test Clinician", notes.single().author)
            }
            handle.close()
        }
    }

    @Test
    fun `without a transport everything but sync works, and sync says why not`() {
        CareStore.open(File(dir, "offline.db").path, key).use { store ->
            store.journal().write("Kept on the phone")
            val sync = store.sync()
            assertFalse(sync.status().enrolled)
            runBlocking {
                val error = assertThrows<KatcoreException.InvalidInput> { sync.syncNow() }
                assertEquals("transport", error.field)
                assertThrows<KatcoreException.InvalidInput> { sync.enroll("https://clinic.example", "AAAA-BBBB-CCCC", "phone") }
            }
        }
    }
}
