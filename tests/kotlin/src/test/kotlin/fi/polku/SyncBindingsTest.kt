package fi.polku

import java.nio.file.Path
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.*

/**
 * Sync from Kotlin against a real polku-server on loopback, started by tests/kotlin/run with one
 * citizen (seven one-time codes, POLKU_TEST_CODES) and a nurse assigned to her with two devices
 * (POLKU_TEST_NURSE_CODE, POLKU_TEST_NURSE_CODE2).
 */
class SyncBindingsTest {
    @TempDir
    lateinit var dir: Path

    private val server = System.getenv("POLKU_TEST_SERVER") ?: error("run through tests/kotlin/run")
    private val codes = System.getenv("POLKU_TEST_CODES").split(",")

    private fun phone(name: String) =
        PolkuClient.open(dir.resolve("$name.db").toString(), FixedKey(generateDatabaseKey()), "Europe/Helsinki")

    @Test
    fun `two phones of one citizen sync through the real server`() = runBlocking {
        val before = phone("a")
        before.diary().add(NewEntry(measuredAt = null, note = "ennen liittymistä", data = EntryData.Weight(82.0)))
        assertEquals(null, before.sync().status().enrollment)

        val a = before.enroll(server, codes[0], "Pixel")
        assertEquals("citizen", a.sync().status().enrollment!!.role)
        assertEquals(1uL, a.sync().status().pending, "written before enrolling, queued for upload")

        val seen = mutableListOf<SyncProgress>()
        val listener = object : SyncListener {
            override fun onProgress(progress: SyncProgress) {
                synchronized(seen) { seen.add(progress) }
            }
        }
        val pushed = a.sync().sync(listener)
        assertEquals(1uL, pushed.pushed)
        assertTrue(seen.any { it.phase == SyncPhase.PUSH }, "progress reached the listener: $seen")
        val status = a.sync().status()
        assertEquals(0uL, status.pending)
        assertNotNull(status.lastSuccess)

        val b = phone("b").enroll(server, codes[1], "iPhone")
        val pulled = b.sync().sync(null)
        assertEquals(1uL, pulled.pulled)
        val entries = b.diary().today()
        assertEquals(listOf("ennen liittymistä"), entries.map { it.note })
        assertEquals(a.subjectId(), b.subjectId(), "both phones hold the citizen's one stream")
    }

    @Test
    fun `sync errors are typed with a stable code`() = runBlocking {
        val used = phone("c").enroll(server, codes[2], null)
        assertNotNull(used)
        val again = runCatching { phone("d").enroll(server, codes[2], null) }.exceptionOrNull()
        assertTrue(again is PolkuException.Sync, "$again")
        again as PolkuException.Sync
        assertEquals("code_used", again.code)
        assertFalse(again.retryable)

        val notEnrolled = runCatching { phone("e").sync().sync(null) }.exceptionOrNull() as PolkuException.Sync
        assertEquals("not_enrolled", notEnrolled.code)

        val offline = runCatching {
            phone("f").enroll("http://127.0.0.1:9", "AAAA-BBBB-CCCC", null)
        }.exceptionOrNull() as PolkuException.Sync
        assertEquals("network", offline.code)
        assertTrue(offline.retryable, "an unreachable server is worth retrying")
    }

    @Test
    fun `client details travel to the other phone and bad fields are typed errors`() = runBlocking {
        val a = phone("g").enroll(server, codes[3], null)
        a.details().set("phone", "040 123 4567")
        a.details().set("access_instructions", "ovikoodi soittamalla")
        a.sync().sync(null)
        val b = phone("h").enroll(server, codes[4], null)
        b.sync().sync(null)
        val fields = b.details().get().associate { it.field to it.current.value }
        assertEquals(mapOf("phone" to "040 123 4567", "access_instructions" to "ovikoodi soittamalla"), fields)

        val bad = runCatching { a.details().set("door_code", "1234") }.exceptionOrNull()
        assertTrue(bad is PolkuException.Validation, "$bad")
        assertEquals("field", (bad as PolkuException.Validation).field)
    }

    @Test
    fun `a nurse's device sees the people in her care and their records`() = runBlocking {
        val citizen = phone("i").enroll(server, codes[5], null)
        citizen.diary().add(NewEntry(measuredAt = null, note = null, data = EntryData.Weight(77.5)))
        citizen.sync().sync(null)

        val nurse = phone("nurse").enroll(server, System.getenv("POLKU_TEST_NURSE_CODE"), "laptop")
        assertEquals("professional", nurse.sync().status().enrollment!!.role)
        nurse.sync().sync(null)
        val subjects = nurse.sync().subjects()
        assertEquals(listOf(citizen.subjectId()), subjects.map { it.id })
        assertEquals("Kotlin Test", subjects[0].name)
        val record = nurse.forSubject(subjects[0].id)
        val weights = record.diary().today().map { it.data }.filterIsInstance<EntryData.Weight>().map { it.kg }
        assertTrue(77.5 in weights, "$weights")
    }

    @Test
    fun `a self-harm answer reaches the nurse first and stays until she acknowledges it`() = runBlocking {
        val citizen = phone("j").enroll(server, codes[6], null)
        val q = citizen.questionnaires()
        val r = q.answer(Instrument.PHQ9, Language.FI, listOf(1, 1, 0, 1, 0, 0, 0, 0, 1), null)
        // The person is told what to do now: 112 and the crisis line, never the care team's text.
        val safety = citizen.safety(Language.FI)
        val guidance = safety.guidanceFor(r.id)
        assertEquals(listOf(SafetyAdvice.SELF_HARM), guidance.map { it.advice })
        val said = guidance.single().steps.joinToString(" ")
        assertTrue("112" in said && "09 2525 0111" in said, said)
        val flag = safety.flags(false).single()
        assertFalse(flag.careTeamMessage in said)
        // A later, better answer clears nothing; a citizen cannot acknowledge.
        q.answer(Instrument.PHQ9, Language.FI, List(9) { 0 }, null)
        assertEquals(listOf(flag.id), safety.flags(false).map { it.id })
        val refused = runCatching { safety.acknowledge(flag.id, "ok") }.exceptionOrNull()
        assertEquals("role", (refused as PolkuException.Validation).field)
        citizen.sync().sync(null)

        val nurse = phone("nurse2").enroll(server, System.getenv("POLKU_TEST_NURSE_CODE2"), "tablet")
        nurse.sync().sync(null)
        val first = nurse.pathways(Language.EN).caseload().first()
        assertEquals(citizen.subjectId(), first.subjectId, "unacknowledged safety flags first")
        assertEquals(listOf("phq9_item9"), first.safetyFlags.map { it.code })
        assertTrue(first.safetyFlags.single().careTeamMessage.startsWith("PHQ-9 item 9"))
        val done = nurse.forSubject(citizen.subjectId()).safety(Language.EN)
            .acknowledge(first.safetyFlags.single().id, "Called her, appointment tomorrow")
        assertEquals("Called her, appointment tomorrow", done.single().acknowledgements.single().note)
        assertTrue(nurse.pathways(Language.EN).caseload().all { it.safetyFlags.isEmpty() })
        nurse.sync().sync(null)

        citizen.sync().sync(null)
        assertTrue(safety.flags(false).isEmpty())
        val ack = safety.flags(true).single().acknowledgements.single()
        assertEquals("Called her, appointment tomorrow", ack.note)
        assertEquals(nurse.sync().status().enrollment!!.userId, ack.by)
    }
}
