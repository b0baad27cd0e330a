package fi.polku.ui

import androidx.compose.material3.MaterialTheme
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.ui.graphics.toAwtImage
import androidx.compose.ui.test.ExperimentalTestApi
import androidx.compose.ui.test.SemanticsMatcher
import androidx.compose.ui.test.assert
import androidx.compose.ui.test.assertTextEquals
import androidx.compose.ui.test.captureToImage
import androidx.compose.ui.test.onNodeWithTag
import androidx.compose.ui.test.onNodeWithText
import androidx.compose.ui.test.onRoot
import androidx.compose.ui.test.performClick
import androidx.compose.ui.test.performTextClearance
import androidx.compose.ui.test.performTextInput
import androidx.compose.ui.test.runComposeUiTest
import fi.polku.ui.today.TodayPresenter
import fi.polku.ui.today.TodayScreen
import java.io.File
import java.nio.file.Path
import javax.imageio.ImageIO
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.KeyProvider
import uniffi.polku_ffi.Language
import uniffi.polku_ffi.PolkuClient
import uniffi.polku_ffi.generateDatabaseKey

class TestKey(private val key: ByteArray) : KeyProvider {
    override fun databaseKey(): ByteArray = key.copyOf()
}

/** The Today screen against the real core: typed values go through the core's checks. */
@OptIn(ExperimentalTestApi::class)
class TodayScreenTest {
    @TempDir
    lateinit var dir: Path

    private val shots = File(System.getProperty("shot.dir", "target/screenshots")).apply { mkdirs() }

    @Test
    fun `a very low glucose appears on Today and the very-low band grows`() = runComposeUiTest {
        val client = PolkuClient.open(dir.resolve("p.db").toString(), TestKey(generateDatabaseKey()), "Europe/Helsinki")
        val presenter = TodayPresenter(client.screens(Language.FI))
        setContent {
            MaterialTheme {
                val ui by presenter.state.collectAsState()
                TodayScreen(ui, presenter::onInput, { presenter.addGlucose() })
            }
        }
        onNodeWithText("Tänään").assertExists()
        onNodeWithText("Ei verensokeriarvoja 14 vuorokauteen").assertExists()

        onNodeWithTag("glucose-input").performTextInput("5,6")
        onNodeWithTag("add-glucose").performClick()
        onNodeWithTag("latest-glucose").assertTextEquals("5,6 mmol/l")
        onNodeWithText("Tavoitealue 100 %").assertExists()

        onNodeWithTag("glucose-input").performTextInput("2,9")
        onNodeWithTag("add-glucose").performClick()
        onNodeWithTag("latest-glucose").assertTextEquals("2,9 mmol/l")
        onNodeWithText("Hyvin matala 50 %").assertExists()
        onNodeWithTag("band-very_low").assertExists()
        onNodeWithText("2 odottaa lähetystä").assertExists()

        // A value the core refuses: the field and the allowed range, nothing stored.
        onNodeWithTag("glucose-input").performTextInput("40")
        onNodeWithTag("add-glucose").performClick()
        val error = onNodeWithTag("error").fetchSemanticsNode().config
            .first { it.key.name == "Text" }.value.toString()
        assertTrue(error.contains("glucose.value") && error.contains("33"), error)
        onNodeWithTag("latest-glucose").assertTextEquals("2,9 mmol/l")
        onNodeWithTag("glucose-input").performTextClearance()

        // Accessibility: the controls have descriptions and a 48 dp target.
        onNodeWithTag("add-glucose").assert(SemanticsMatcher("≥ 48 dp") { it.size.height >= 48 * density.density })

        ImageIO.write(onRoot().captureToImage().toAwtImage(), "png", File(shots, "today-fi-light.png"))
        assertTrue(File(shots, "today-fi-light.png").length() > 1000)
    }
}
