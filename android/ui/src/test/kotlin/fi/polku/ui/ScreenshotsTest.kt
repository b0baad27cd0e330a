package fi.polku.ui

import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.material3.darkColorScheme
import androidx.compose.material3.lightColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.runtime.CompositionLocalProvider
import androidx.compose.ui.graphics.toAwtImage
import androidx.compose.ui.platform.LocalDensity
import androidx.compose.ui.semantics.SemanticsActions
import androidx.compose.ui.semantics.SemanticsProperties
import androidx.compose.ui.semantics.getOrNull
import androidx.compose.ui.test.ExperimentalTestApi
import androidx.compose.ui.test.SemanticsNodeInteractionsProvider
import androidx.compose.ui.test.captureToImage
import androidx.compose.ui.test.onRoot
import androidx.compose.ui.test.runComposeUiTest
import androidx.compose.ui.test.SemanticsMatcher
import androidx.compose.ui.text.TextLayoutResult
import androidx.compose.ui.unit.Density
import fi.polku.ui.today.TodayPresenter
import fi.polku.ui.today.TodayScreen
import java.io.File
import java.nio.file.Path
import javax.imageio.ImageIO
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import uniffi.polku_ffi.Language
import uniffi.polku_ffi.MealContext
import uniffi.polku_ffi.PolkuClient
import uniffi.polku_ffi.generateDatabaseKey

/**
 * Every screen in fi, sv and en, light and dark, and at font scale 2.0, rendered to PNG
 * (target/screenshots) from synthetic data. At font scale 2.0 no text may be cut off: every text
 * node's layout must fit (semantics' text layout result), which is what a person with large text
 * would otherwise lose.
 */
@OptIn(ExperimentalTestApi::class)
class ScreenshotsTest {
    @TempDir
    lateinit var dir: Path

    private val shots = File(System.getProperty("shot.dir", "target/screenshots")).apply { mkdirs() }

    private fun variants(name: String, content: @Composable (Language) -> Unit) {
        for (lang in listOf(Language.FI, Language.SV, Language.EN)) {
            for (dark in listOf(false, true)) {
                for (scale in listOf(1f, 2f)) {
                    runComposeUiTest {
                        setContent {
                            val d = LocalDensity.current
                            CompositionLocalProvider(LocalDensity provides Density(d.density, scale)) {
                                MaterialTheme(colorScheme = if (dark) darkColorScheme() else lightColorScheme()) {
                                    Surface { content(lang) }
                                }
                            }
                        }
                        if (scale > 1f) assertNoTextCutOff("$name ${lang.name}")
                        val file = File(shots, "$name-${lang.name.lowercase()}-${if (dark) "dark" else "light"}${if (scale > 1f) "-large" else ""}.png")
                        ImageIO.write(onRoot().captureToImage().toAwtImage(), "png", file)
                        assertTrue(file.length() > 1000, file.name)
                    }
                }
            }
        }
    }

    private fun SemanticsNodeInteractionsProvider.assertNoTextCutOff(what: String) {
        val texts = onAllNodes(SemanticsMatcher.keyIsDefined(SemanticsProperties.Text)).fetchSemanticsNodes()
        assertTrue(texts.isNotEmpty(), "$what: no text rendered")
        for (node in texts) {
            val layouts = mutableListOf<TextLayoutResult>()
            node.config.getOrNull(SemanticsActions.GetTextLayoutResult)?.action?.invoke(layouts)
            for (l in layouts) {
                // (`hasVisualOverflow` compares with the paragraph's layout width, which is the
                // constraint's, not the text's: the lines' extent and height are what fit or not.)
                val cut = l.didOverflowHeight || l.multiParagraph.didExceedMaxLines ||
                    (0 until l.lineCount).any { l.getLineRight(it) > l.size.width + 0.5f }
                assertTrue(
                    !cut,
                    "$what: text cut off at font scale 2.0: ${node.config.getOrNull(SemanticsProperties.Text)} " +
                        "(size ${l.size}, text ${l.multiParagraph.width}×${l.multiParagraph.height}, constraints ${l.layoutInput.constraints})",
                )
            }
        }
    }

    @Test
    fun `today in every language, theme and text size`() {
        val client = PolkuClient.open(dir.resolve("s.db").toString(), TestKey(generateDatabaseKey()), "Europe/Helsinki")
        // Synthetic data only.
        val screens = client.screens(Language.FI)
        for (v in listOf("6,1", "7,8", "5,2", "11,4", "3,4")) screens.addGlucose(v, MealContext.OTHER)
        variants("today") { lang ->
            val p = TodayPresenter(client.screens(lang))
            TodayScreen(p.state.value, p::onInput, { p.addGlucose() })
        }
    }
}
