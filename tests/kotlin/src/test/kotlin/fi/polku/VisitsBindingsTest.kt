package fi.polku

import java.nio.file.Path
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.*

/**
 * A home-care visit from Kotlin through the real polku-server that tests/kotlin/run started: the
 * nurse's fourth code (POLKU_TEST_NURSE_CODE4) and the citizen's ninth.
 */
class VisitsBindingsTest {
    @TempDir
    lateinit var dir: Path

    private val server = System.getenv("POLKU_TEST_SERVER") ?: error("run through tests/kotlin/run")
    private val citizenId = System.getenv("POLKU_TEST_CITIZEN")

    private fun device(name: String) =
        PolkuClient.open(dir.resolve("$name.db").toString(), FixedKey(generateDatabaseKey()), "Europe/Helsinki")

    private val plan = """{"visits": [{"slot": "day", "name": "Päiväkäynti", "days": ["daily"],
        "from": "00:00", "to": "23:59", "tasks": ["medication", "blood_pressure"]}]}"""

    @Test
    fun `a nurse records a visit offline and the blood pressure reaches the citizen's diary`() = runBlocking {
        val nurse = device("nurse4").enroll(server, System.getenv("POLKU_TEST_NURSE_CODE4"), "tablet")
        nurse.sync().sync(null)
        val visits = nurse.visits()
        val bad = runCatching { visits.setPlan(citizenId, plan.replace("\"medication\"", "\"juggling\""), null) }.exceptionOrNull()
        assertEquals("plan.visits[0].tasks", (bad as PolkuException.Validation).field)
        visits.setPlan(citizenId, plan, null)
        assertTrue(visits.plan(citizenId, null)!!.planJson.contains("blood_pressure"))

        val v = visits.workerDay(null).single { it.subjectId == citizenId }
        assertEquals(VisitState.PLANNED to 2u, v.state to v.tasksLeft)
        val early = runCatching { visits.finish(v.id) }.exceptionOrNull()
        assertEquals("visit", (early as PolkuException.Validation).field)
        visits.arrive(v.id)
        visits.measure(v.id, NewEntry(data = EntryData.BloodPressure(134, 86, 70, null, null)))
        visits.task(v.id, "blood_pressure", TaskOutcome.DONE, null)
        val notPlanned = runCatching { visits.task(v.id, "meal", TaskOutcome.DONE, null) }.exceptionOrNull()
        assertEquals("task", (notPlanned as PolkuException.Validation).field)
        visits.task(v.id, "medication", TaskOutcome.NOT_DONE, "Lääkkeet loppu")
        val done = visits.finish(v.id)
        assertEquals(VisitState.FINISHED to 0u, done.state to done.tasksLeft)
        assertEquals(1, done.measurements.size)
        assertTrue(runCatching { visits.arrive(v.id) }.exceptionOrNull() is PolkuException.Conflict)

        nurse.sync().sync(null)
        val citizen = device("citizen9").enroll(server, System.getenv("POLKU_TEST_CODES").split(",")[8], "phone")
        citizen.sync().sync(null)
        val bp = citizen.diary().list(EntryQuery(kinds = listOf(EntryKind.BLOOD_PRESSURE)))
        assertTrue(bp.entries.any { (it.data as? EntryData.BloodPressure)?.systolic == 134 }, "the visit's measurement is in her diary")
    }
}
