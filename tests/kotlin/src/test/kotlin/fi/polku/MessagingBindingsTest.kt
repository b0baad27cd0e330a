package fi.polku

import java.nio.file.Path
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.*

/**
 * End-to-end encrypted messages from Kotlin through the real polku-server that tests/kotlin/run
 * started: the citizen's eighth code and the nurse's third (POLKU_TEST_NURSE_CODE3).
 */
class MessagingBindingsTest {
    @TempDir
    lateinit var dir: Path

    private val server = System.getenv("POLKU_TEST_SERVER") ?: error("run through tests/kotlin/run")
    private val codes = System.getenv("POLKU_TEST_CODES").split(",")

    private fun phone(name: String) =
        PolkuClient.open(dir.resolve("$name.db").toString(), FixedKey(generateDatabaseKey()), "Europe/Helsinki")

    /** Waits for the first update that `ok` accepts; null after ten quiet seconds. */
    private fun LinkedBlockingQueue<List<Conversation>>.awaitUpdate(ok: (List<Conversation>) -> Boolean): List<Conversation>? {
        while (true) {
            val u = poll(10, TimeUnit.SECONDS) ?: return null
            if (ok(u)) return u
        }
    }

    @Test
    fun `a citizen and her nurse write to each other and the nurse's list follows`() = runBlocking {
        val citizen = phone("k").enroll(server, codes[7], "Pixel")
        val nurse = phone("nurse3").enroll(server, System.getenv("POLKU_TEST_NURSE_CODE3"), "laptop")
        // The first sync publishes each device's keys.
        citizen.sync().sync(null)
        nurse.sync().sync(null)
        val conv = citizen.subjectId()

        val updates = LinkedBlockingQueue<List<Conversation>>()
        val handle = nurse.messages().subscribe(object : ConversationsListener {
            override fun onUpdate(conversations: List<Conversation>) {
                updates.add(conversations)
            }
        })
        assertNotNull(updates.poll(10, TimeUnit.SECONDS), "the current list comes first")

        val question = "Aamuarvo 3,4 – mitä teen?"
        val sent = citizen.messages().send(conv, question)
        assertEquals(MessageState.SENT, sent.state, "delivered to the relay in the same call")
        val bad = runCatching { citizen.messages().send(conv, "   ") }.exceptionOrNull()
        assertEquals("body", (bad as PolkuException.Validation).field)

        nurse.sync().sync(null)
        val seen = updates.awaitUpdate { u -> u.any { it.id == conv && it.unread == 1u } }
        assertNotNull(seen, "the listener heard of the unread message")
        val got = nurse.messages().messages(conv, null, 50u).last()
        assertEquals(question, got.body)
        assertEquals(MessageState.RECEIVED, got.state)
        assertEquals(conv, nurse.pathways(Language.EN).caseload().first { it.subjectId == conv }.conversation)
        assertEquals(1u, nurse.messages().markRead(conv))
        assertNotNull(updates.awaitUpdate { u -> u.any { it.id == conv && it.unread == 0u } })
        // Cancelled, the subscription hears nothing more of the nurse's answer.
        handle.cancel()
        updates.clear()
        val answer = "Syö 15 g hiilihydraattia ja mittaa uudelleen."
        nurse.messages().send(conv, answer)
        assertEquals(null, updates.poll(1, TimeUnit.SECONDS))

        citizen.sync().sync(null)
        val mine = citizen.messages().messages(conv, null, 50u)
        val asked = mine.first { it.id == sent.id }
        assertEquals(MessageState.READ, asked.state, "the nurse's read receipt came back")
        val nurseUser = nurse.sync().status().enrollment!!.userId
        assertEquals(nurseUser, asked.receipts.single().userId)
        assertEquals(answer, mine.last().body)
        assertEquals(1u, citizen.messages().conversations().first { it.id == conv }.unread)

        assertNotNull(citizen.messages().fingerprint())
        assertTrue(citizen.messages().devices().any { it.userId == nurseUser && it.trust == DeviceTrust.TRUSTED })
        assertTrue(citizen.messages().rejected().isEmpty())

        // A photo of a wound: sealed, uploaded and announced in the same call; the nurse's
        // device downloads, checks and opens it.
        val photo = ByteArray(50_000) { (it % 251).toByte() }
        val withPhoto = citizen.messages().attach(conv, "haava.jpg", null, photo)
        assertEquals(MessageState.SENT, withPhoto.state)
        assertEquals("image/jpeg", withPhoto.attachment!!.mime)
        val badName = runCatching { citizen.messages().attach(conv, "../x.jpg", null, photo) }.exceptionOrNull()
        assertEquals("name", (badName as PolkuException.Validation).field)
        nurse.sync().sync(null)
        val shown = nurse.messages().messages(conv, null, 50u).last().attachment!!
        assertEquals("haava.jpg" to false, shown.name to shown.onDevice)
        assertTrue(photo.contentEquals(nurse.messages().fetchAttachment(shown.id)))
        assertTrue(nurse.messages().messages(conv, null, 50u).last().attachment!!.onDevice)

        // The citizen verifies the nurse's device: both screens show the same three numbers.
        val nurseDevice = nurse.sync().status().enrollment!!.deviceId
        val ours = citizen.messages().verify(nurseDevice)
        nurse.sync().sync(null)
        val request = nurse.messages().verificationRequests().single()
        assertEquals(conv, request.userId)
        val theirs = nurse.messages().acceptVerification(request.txn)
        var a = ours.state()
        var b = theirs.state()
        repeat(8) {
            if (a !is VerificationState.Compare || b !is VerificationState.Compare) {
                a = ours.advance()
                b = theirs.advance()
            }
        }
        assertEquals((a as VerificationState.Compare).decimals, (b as VerificationState.Compare).decimals)
        assertEquals(3, a.decimals.size)
        a = ours.confirm(true)
        b = theirs.confirm(true)
        repeat(8) {
            if (a != VerificationState.Verified || b != VerificationState.Verified) {
                a = ours.advance()
                b = theirs.advance()
            }
        }
        assertEquals(VerificationState.Verified, a)
        assertEquals(VerificationState.Verified, b)
        assertTrue(citizen.messages().devices().any { it.deviceId == nurseDevice && it.trust == DeviceTrust.VERIFIED })
    }
}
