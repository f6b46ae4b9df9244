// Runs the Kotlin examples of docs/mobile.md and README.md, which
// scripts/kotlin-test.sh extracts from the documents and compiles with this
// suite, so the documents cannot drift from the API.
package org.katcore.test

import com.example.care.checklistStatus
import com.example.care.firstScreen
import com.example.care.observe
import com.example.care.onConnectivityChanged
import com.example.care.openRecord
import com.example.care.phq9
import com.example.readme.firstSession
import java.nio.file.Files
import java.time.Instant
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.katcore.CareChange
import org.katcore.ReadinessStatus

class DocExampleTest {
    @Test
    fun `the documented Kotlin example works`() {
        val dir = Files.createTempDirectory("katcore-doc").toFile()
        try {
            val key = ByteArray(32) { 42 }
            assertNull(firstScreen(dir, key), "no store yet: nothing to show before opening")
            val store = openRecord(dir, key)!!
            val changes = mutableListOf<CareChange>()
            val handle = observe(store, { changes.add(it) }, {})
            val notifications = mutableListOf<Pair<Instant, String>>()
            assertTrue(checklistStatus(store) { at, text -> notifications.add(at to text) }.endsWith("questions left"))
            assertTrue(notifications.isNotEmpty())
            val screen = firstScreen(dir, key)
            assertTrue(screen!!.startsWith("Next session") && screen.contains("INCOMPLETE"), screen)
            assertTrue(phq9(store, byteArrayOf(0, 0, 0, 0, 0, 0, 0, 0, 2)).isNotEmpty())
            assertEquals(emptyList<String>(), phq9(store, ByteArray(9)))
            runBlocking { onConnectivityChanged(store, online = true) }
            handle.close()
            assertTrue(CareChange.SESSIONS in changes && CareChange.WELLBEING in changes)
            store.close()
            assertNull(openRecord(dir, ByteArray(32) { 1 }))
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun `the README's Kotlin example works`() {
        val dir = Files.createTempDirectory("katcore-readme").toFile()
        try {
            assertEquals(ReadinessStatus.INCOMPLETE, runBlocking { firstSession(dir, ByteArray(32) { 7 }) })
        } finally {
            dir.deleteRecursively()
        }
    }
}
