package fi.polku

import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.*

/** Stands in for the Android Keystore-backed provider: hands out a fixed key. */
class FixedKey(private val key: ByteArray) : KeyProvider {
    override fun databaseKey(): ByteArray = key.copyOf()
}

class FailingKeyStore : KeyProvider {
    override fun databaseKey(): ByteArray = throw IllegalStateException("keystore locked")
}

class PolkuBindingsTest {
    @TempDir
    lateinit var dir: Path

    private val key = generateDatabaseKey()
    private fun db() = dir.resolve("polku.db").toString()
    private fun open(k: ByteArray = key) = PolkuClient.open(db(), FixedKey(k), "Europe/Helsinki")

    private val t0: Instant = Instant.parse("2026-11-02T06:00:00Z")

    private fun allKinds(): List<NewEntry> = listOf(
        EntryData.Glucose(GlucoseReading.Value(6.2), GlucoseUnit.MMOL_L, MealContext.FASTING, null, GlucoseSource.METER),
        EntryData.Glucose(GlucoseReading.Value(180.0), GlucoseUnit.MG_DL, MealContext.AFTER_MEAL, 2, GlucoseSource.METER),
        EntryData.Glucose(GlucoseReading.High, GlucoseUnit.MMOL_L, MealContext.OTHER, null, GlucoseSource.METER),
        EntryData.BloodPressure(132, 84, 68, Arm.LEFT, BpSeries.MORNING),
        EntryData.Weight(81.5),
        EntryData.HeartRate(62),
        EntryData.Temperature(36.9),
        EntryData.Symptom(SymptomCode.CHEST_PAIN, 4),
        EntryData.Medication("Ramipril", "5 mg"),
        EntryData.Mood(4),
        EntryData.Note,
    ).mapIndexed { i, data ->
        NewEntry(measuredAt = t0.plus(Duration.ofMinutes(i.toLong())), note = if (data is EntryData.Note) "Kävelin 40 min" else null, data = data)
    }

    @Test
    fun `every kind is added and read back`() {
        val client = open()
        val diary = client.diary()
        val added = diary.addMany(allKinds())
        assertEquals(11, added.size)
        for (e in added) {
            val back = diary.get(e.id)
            assertEquals(e, back)
            assertEquals(7200, back.utcOffsetSeconds, "Helsinki winter time kept with the entry")
        }
        val page = diary.list(EntryQuery())
        assertEquals(11, page.entries.size)
        assertEquals(EntryKind.NOTE, page.entries.first().kind, "newest first")
        // mg/dL entries come back in the unit the user typed.
        val mgdl = added[1].data as EntryData.Glucose
        assertEquals(GlucoseReading.Value(180.0), mgdl.reading)
        assertEquals(GlucoseReading.High, (added[2].data as EntryData.Glucose).reading)

        val glucoseOnly = diary.list(EntryQuery(kinds = listOf(EntryKind.GLUCOSE), limit = 2u))
        assertEquals(2, glucoseOnly.entries.size)
        val rest = diary.list(EntryQuery(kinds = listOf(EntryKind.GLUCOSE), limit = 2u, after = glucoseOnly.next))
        assertEquals(1, rest.entries.size)
        assertNull(rest.next)
        client.close()
    }

    @Test
    fun `edit keeps history and delete leaves a tombstone`() {
        val diary = open().diary()
        val e = diary.add(NewEntry(data = EntryData.Weight(90.0)))
        val v2 = diary.edit(e.id, NewEntry(data = EntryData.Weight(89.0), note = "korjaus"))
        assertEquals(2u, v2.version)
        assertEquals(e.measuredAt, v2.measuredAt)
        val gone = diary.delete(e.id, "väärä vaaka")
        assertEquals("väärä vaaka", gone.deletedReason)
        val history = diary.history(e.id)
        assertEquals(listOf(1u, 2u, 3u), history.map { it.version })
        assertEquals(EntryData.Weight(90.0), history[0].data)
        assertTrue(diary.list(EntryQuery()).entries.isEmpty())
        assertThrows(PolkuException.Conflict::class.java) { diary.edit(e.id, NewEntry(data = EntryData.Weight(1.0))) }
        assertThrows(PolkuException.NotFound::class.java) { diary.get("0f8fad5b-d9cb-469f-a165-70867728950e") }
    }

    @Test
    fun `invalid values give a validation error naming the field`() {
        val diary = open().diary()
        val bp = assertThrows(PolkuException.Validation::class.java) {
            diary.add(NewEntry(data = EntryData.BloodPressure(310, 80, null, null, null)))
        }
        assertEquals("blood_pressure.systolic", bp.field)
        assertEquals("310 mmHg", bp.value)
        assertEquals("50–300 mmHg", bp.allowed)

        val g = assertThrows(PolkuException.Validation::class.java) {
            diary.add(NewEntry(data = EntryData.Glucose(GlucoseReading.Value(40.0), GlucoseUnit.MMOL_L, MealContext.OTHER, null, GlucoseSource.METER)))
        }
        assertEquals("glucose.value", g.field)
        assertTrue(g.allowed.contains("LO or HI"))

        // Beyond the integer type on the Rust side: still a typed validation error, not a crash.
        val mood = assertThrows(PolkuException.Validation::class.java) { diary.add(NewEntry(data = EntryData.Mood(100_000))) }
        assertEquals("mood.score", mood.field)
        val id = assertThrows(PolkuException.Validation::class.java) { diary.get("not-a-uuid") }
        assertEquals("id", id.field)
        val future = assertThrows(PolkuException.Validation::class.java) {
            diary.add(NewEntry(measuredAt = Instant.now().plus(Duration.ofHours(1)), data = EntryData.Mood(3)))
        }
        assertEquals("at", future.field)
        assertTrue(diary.list(EntryQuery()).entries.isEmpty(), "nothing stored")
    }

    @Test
    fun `wrong key is a typed error and the file is kept`() {
        open().diary().add(NewEntry(data = EntryData.Mood(3)))
        val other = generateDatabaseKey()
        assertThrows(PolkuException.WrongKey::class.java) { open(other) }
        assertTrue(Files.exists(Path.of(db())))
        assertEquals(1, open().diary().list(EntryQuery()).entries.size, "still opens with the right key")
        val short = assertThrows(PolkuException.Validation::class.java) { open(ByteArray(16)) }
        assertEquals("key", short.field)
        assertThrows(PolkuException.Crypto::class.java) { PolkuClient.open(db(), FailingKeyStore(), null) }
    }

    @Test
    fun `analytics over meter and cgm readings`() {
        val client = open()
        val start = Instant.parse("2026-11-01T00:00:00Z")
        // One day of 5-minute CGM: first half at 5.0, second half at 11.0 mmol/L.
        val cgm = (0 until 288).map { i ->
            NewEntry(
                measuredAt = start.plus(Duration.ofMinutes(5L * i)),
                data = EntryData.Glucose(GlucoseReading.Value(if (i < 144) 5.0 else 11.0), GlucoseUnit.MMOL_L, MealContext.OTHER, null, GlucoseSource.CGM),
            )
        }
        client.diary().addMany(cgm)
        val r = client.analytics().glucose(start, start.plus(Duration.ofDays(1)))
        assertNotNull(r.cgm)
        val s = r.cgm!!
        assertEquals(Basis.TIME_WEIGHTED, s.basis)
        assertEquals(288uL, s.readings)
        assertEquals(50.0, s.bands.inRange, 1e-9)
        assertEquals(50.0, s.bands.high, 1e-9)
        assertEquals(8.0, s.meanMmolL!!, 1e-9)
        // GMI is withheld from insufficient data (one day is not 14; consensus 2019)
        assertNull(s.gmi, "GMI withheld when the data are insufficient")
        assertFalse(s.sufficiency!!.sufficient, "one day is not 14")
        assertNull(r.meter)

        client.diary().addMany((0 until 4).map { i ->
            NewEntry(measuredAt = t0.plus(Duration.ofMinutes(i.toLong())), data = EntryData.BloodPressure(130 + i, 80, null, null, if (i < 2) BpSeries.MORNING else BpSeries.EVENING))
        })
        val bp = client.analytics().bloodPressure(t0.minus(Duration.ofDays(1)), t0.plus(Duration.ofDays(1)))
        assertEquals(4uL, bp.readings)
        assertEquals(131.5, bp.meanSystolic!!, 1e-9)
        assertEquals(1u, bp.qualifyingDays)
        assertFalse(bp.homeSeries!!.complete)
    }

    @Test
    fun `cgm import and fhir export`() {
        val client = open()
        val csv = "timestamp,glucose_mmol_l\n2026-11-01T08:00:00+02:00,5.5\n2026-11-01T08:05:00+02:00,5.7\n"
        val rep = client.imports().cgmCsv(csv.toByteArray(), null)
        assertEquals(CgmFormat.GENERIC, rep.format)
        assertEquals(2uL, rep.added)
        assertEquals(0uL, client.imports().cgmCsv(csv.toByteArray(), CgmFormat.GENERIC).added, "idempotent")
        val bad = assertThrows(PolkuException.ImportRejected::class.java) {
            client.imports().cgmCsv("timestamp,glucose_mmol_l\n2026-11-01T08:10:00+02:00,x\n".toByteArray(), null)
        }
        assertEquals(2uL, bad.problems.single().line)

        client.diary().addMany(allKinds())
        val json = client.exports().fhirBundleJson(null, null)
        assertTrue(json.contains("\"resourceType\": \"Bundle\""))
        assertTrue(json.contains("http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"))
        assertTrue(json.contains("\"14745-4\""), "CGM coding")
        assertTrue(json.contains("\"15074-8\"") && json.contains("\"14743-9\""), "meter codings together")
        assertTrue(json.contains("\"85354-9\""))
    }

    @Test
    fun `a panic inside a call arrives as an error, not a crash`() {
        val client = open()
        val e = assertThrows(PolkuException.Internal::class.java) { client.panicForTest() }
        assertEquals("panic_for_test failed unexpectedly", e.detail)
        // The library is still usable afterwards.
        assertEquals(0, client.diary().list(EntryQuery()).entries.size)
    }

    @Test
    fun `questionnaires render, score and flag`() {
        val q = open().questionnaires()
        val phq = q.definition(Instrument.PHQ9, Language.FI)
        assertEquals(9, phq.items.size)
        assertEquals(listOf(0, 1, 2, 3), phq.items[8].choices.map { it.value })
        assertEquals("Lähes joka päivä", phq.items[0].choices[3].text)
        assertEquals(13, q.definition(Instrument.RBDI, Language.SV).items.size)
        // The shell must say when a form is not a validated version of the instrument.
        assertEquals("polku-1", phq.wordingVersion)
        assertFalse(phq.wordingValidated)
        assertTrue(q.definition(Instrument.PHQ9, Language.EN).wordingValidated)

        val r = q.answer(Instrument.PHQ9, Language.FI, listOf(2, 2, 1, 2, 1, 1, 1, 0, 1), null)
        assertEquals(Language.FI, r.language)
        assertEquals("polku-1", r.wordingVersion)
        assertEquals(11u, r.total)
        assertEquals(27u, r.maxTotal)
        assertEquals("moderate", r.band)
        assertTrue(r.flags.single().urgent, "PHQ-9 item 9 >= 1 is urgent")

        val rbdi = q.answer(Instrument.RBDI, Language.SV, List(13) { 3 }, null)
        assertEquals(13u, rbdi.total)
        // Item 7 answered 3 is a statement about harming oneself: urgent whatever the total.
        assertEquals(listOf("rbdi_item7"), rbdi.flags.map { it.code })
        val mild = q.answer(Instrument.RBDI, Language.SV, List(13) { if (it == 6) 2 else 3 }, null)
        assertTrue(mild.flags.isEmpty())

        val bad = assertThrows(PolkuException.Validation::class.java) { q.answer(Instrument.GAD7, Language.FI, listOf(0, 0, 0, 4, 0, 0, 0), null) }
        assertEquals("answers[4] (gad7-4)", bad.field)
        assertEquals("0–3", bad.allowed)
        assertEquals(3, q.list(null, 0u).size)
        assertEquals(listOf(r.id), q.list(Instrument.PHQ9, 10u).map { it.id })
    }

    @Test
    fun `the county's licensed wording replaces the built-in one`() {
        val content = dir.resolve("content")
        val questionnaires = content.resolve("questionnaires").also { it.toFile().mkdirs() }
        val items = (1..7).joinToString(",") { n ->
            "{\"text\": \"county item $n\", \"options\": [\"c0\", \"c1\", \"c2\", \"c3\"]}"
        }
        questionnaires.resolve("gad7-sv.json").toFile().writeText(
            """{"instrument": "gad7", "language": "sv", "version": "county-2026-1",
                "source": "Test publisher", "validated": true, "title": "GAD-7",
                "instructions": "County instructions", "items": [$items]}"""
        )
        val q = PolkuClient.openWithContent(db(), FixedKey(key), "Europe/Helsinki", content.toString()).questionnaires()
        val form = q.definition(Instrument.GAD7, Language.SV)
        assertEquals("county item 7", form.items[6].text)
        assertEquals(listOf(0, 1, 2, 3), form.items[6].choices.map { it.points })
        assertTrue(form.wordingValidated)
        assertEquals("county-2026-1", q.answer(Instrument.GAD7, Language.SV, List(7) { 1 }, null).wordingVersion)

        // A broken file is a typed error naming the file, item and field.
        questionnaires.resolve("gad7-sv.json").toFile().writeText(
            """{"instrument": "gad7", "language": "sv", "version": "county-2026-2",
                "source": "Test publisher", "validated": true, "title": "GAD-7",
                "instructions": "County instructions", "items": [${items.substringBeforeLast(",{")}]}"""
        )
        val e = assertThrows(PolkuException.ImportRejected::class.java) {
            PolkuClient.openWithContent(db(), FixedKey(key), "Europe/Helsinki", content.toString())
        }
        assertTrue(e.problems.single().problem.endsWith("gad7-sv.json: field `items`: 6 items, but gad7 has 7 (in the published order)"), e.problems.toString())
        assertThrows(PolkuException.Validation::class.java) {
            PolkuClient.openWithContent(db(), FixedKey(key), null, dir.resolve("missing").toString())
        }
    }

    @Test
    fun `a newly published pathway version is offered and migrated on request`() {
        val e = open().use { client ->
            val paths = client.pathways(Language.FI)
            paths.enroll("t2d-care-path", Actor.CITIZEN).also { paths.complete(it.id, "welcome", Actor.CITIZEN) }
        }
        val content = dir.resolve("content")
        content.resolve("pathways").toFile().mkdirs()
        val v2 = Path.of("../../core/pathways/t2d-care-path@2.json").toFile().readText()
        content.resolve("pathways/t2d-care-path@3.json").toFile().writeText(v2.replaceFirst("\"version\": 2", "\"version\": 3"))

        PolkuClient.openWithContent(db(), FixedKey(key), "Europe/Helsinki", content.toString()).use { client ->
            val paths = client.pathways(Language.FI)
            val before = paths.progress(e.id)
            assertEquals(2u, before.enrollment.definitionVersion, "never moved silently")
            assertEquals(3u, before.latestVersion)
            assertThrows(PolkuException.Validation::class.java) { paths.migrate(e.id, 2u) }
            assertThrows(PolkuException.NotFound::class.java) { paths.migrate(e.id, 9u) }
            val after = paths.migrate(e.id, 3u)
            assertEquals(3u, after.enrollment.definitionVersion)
            assertEquals(StepState.DONE, after.steps.single { it.stepId == "welcome" }.state)
        }
    }

    @Test
    fun `pathway steps unlock, complete from data and flag`() {
        val client = open()
        val paths = client.pathways(Language.EN)
        val defs = paths.definitions()
        assertEquals(listOf("adolescent-mood", "home-bp-follow-up", "t2d-care-path"), defs.map { it.id })
        val t2d = defs.single { it.id == "t2d-care-path" }
        assertTrue(t2d.steps.first().content!!.contains("step by step"))

        val home = assertThrows(PolkuException.Validation::class.java) { paths.enroll("home-bp-follow-up", Actor.CITIZEN) }
        assertEquals("enrolled_by", home.field)
        val e = paths.enroll("adolescent-mood", Actor.PROFESSIONAL)
        var p = paths.progress(e.id)
        assertEquals(StepState.AVAILABLE, p.steps.single { it.stepId == "rbdi" }.state)
        assertEquals(StepState.LOCKED, p.steps.single { it.stepId == "referral" }.state)

        // Severe R-BDI (all 5s = 39): PHQ-9 opens and the referral opens at once.
        client.questionnaires().answer(Instrument.RBDI, Language.FI, List(13) { 5 }, null)
        p = paths.progress(e.id)
        assertEquals(StepState.DONE, p.steps.single { it.stepId == "rbdi" }.state)
        assertEquals(StepState.AVAILABLE, p.steps.single { it.stepId == "phq9" }.state)
        assertEquals(StepState.AVAILABLE, p.steps.single { it.stepId == "referral" }.state)
        assertEquals(listOf("rbdi-severe"), p.flags.map { it.code })
        assertThrows(PolkuException.Validation::class.java) { paths.complete(e.id, "referral", Actor.CITIZEN) }
        p = paths.complete(e.id, "referral", Actor.PROFESSIONAL)
        assertEquals(StepState.DONE, p.steps.single { it.stepId == "referral" }.state)
        assertThrows(PolkuException.Conflict::class.java) { paths.complete(e.id, "support-visit-2", Actor.PROFESSIONAL) }
        // PHQ-9 and GAD-7 are due in 7 days and have no reminder times: one reminder each, the day before.
        val reminders = paths.reminders(7u)
        assertEquals(setOf("phq9", "gad7"), reminders.map { it.stepId }.toSet())
        assertEquals(2, reminders.size)
        assertTrue(reminders.all { it.at.isAfter(Instant.now()) })
        assertThrows(PolkuException.Validation::class.java) { paths.reminders(0u) }

        // The care team's list: who, which pathway, what is open, which flags.
        val caseload = paths.caseload().single()
        assertEquals(client.subjectId(), caseload.subjectId)
        assertEquals(e.id, caseload.enrollment!!.id)
        assertEquals(listOf("rbdi-severe"), caseload.flags.map { it.code })
        // The core's safety rules: item 7 at "I would harm myself if I could", and a severe total.
        assertEquals(setOf("rbdi_item7", "rbdi_severe"), caseload.safetyFlags.map { it.code }.toSet())
        assertTrue(caseload.safetyFlags.all { it.urgent && it.acknowledgements.isEmpty() })
        assertTrue(caseload.openSteps.containsAll(listOf("phq9", "gad7")), caseload.openSteps.toString())
        assertEquals(p.finished, caseload.finished)
    }
}
