package fi.polku

import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test
import uniffi.polku_ffi.*

/**
 * FFI cost seen from Kotlin (figures for docs/benchmarks.md; asserts nothing about time).
 * Run: POLKU_KOTLIN_PROFILE=release tests/kotlin/run -Dgroups=bench -DexcludedGroups=none -Dtest=FfiBenchmark
 */
@Tag("bench")
class FfiBenchmark {
    private fun median(xs: List<Long>): Double = xs.sorted()[xs.size / 2] / 1e6

    @Test
    fun `list 1000 entries in one call and per-call overhead`() {
        val dir = Files.createTempDirectory("polku-bench")
        val client = PolkuClient.open(dir.resolve("b.db").toString(), FixedKey(generateDatabaseKey()), "Europe/Helsinki")
        val diary = client.diary()
        val t0 = Instant.parse("2026-11-01T00:00:00Z")
        diary.addMany((0 until 1000).map { i ->
            NewEntry(
                measuredAt = t0.plus(Duration.ofMinutes(5L * i)),
                note = if (i % 10 == 0) "muistiinpano $i" else null,
                data = EntryData.Glucose(GlucoseReading.Value(5.0 + (i % 50) / 10.0), GlucoseUnit.MMOL_L, MealContext.OTHER, null, GlucoseSource.CGM),
            )
        })
        val q = EntryQuery(limit = 1000u)
        repeat(30) { diary.list(q) } // JIT warm-up
        val list = (0 until 200).map { val s = System.nanoTime(); val p = diary.list(q); val e = System.nanoTime() - s; check(p.entries.size == 1000); e }
        repeat(2000) { client.subjectId() }
        val trivial = (0 until 20000).map { val s = System.nanoTime(); client.subjectId(); System.nanoTime() - s }
        val one = diary.list(EntryQuery(limit = 1u)).entries.single().id
        repeat(2000) { diary.get(one) }
        val get = (0 until 20000).map { val s = System.nanoTime(); diary.get(one); System.nanoTime() - s }
        println("BENCH kotlin diary.list(1000 entries)      median %.3f ms".format(median(list)))
        println("BENCH kotlin client.subjectId() (no I/O)   median %.4f ms".format(median(trivial)))
        println("BENCH kotlin diary.get(id) (one entry)      median %.4f ms".format(median(get)))
        client.close()
    }
}
