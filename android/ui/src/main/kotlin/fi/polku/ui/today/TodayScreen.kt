package fi.polku.ui.today

import androidx.compose.foundation.background
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxHeight
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.size
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.platform.testTag
import androidx.compose.ui.semantics.contentDescription
import androidx.compose.ui.semantics.semantics
import androidx.compose.ui.unit.dp
import uniffi.polku_ffi.BandSegment

/** The consensus bands' colours; every segment also carries its label (colour is never alone). */
fun bandColor(band: String): Color = when (band) {
    "very_low" -> Color(0xFFB71C1C)
    "low" -> Color(0xFFE57373)
    "in_range" -> Color(0xFF2E7D32)
    "high" -> Color(0xFFFFB300)
    else -> Color(0xFFE65100)
}

/** The citizen's Today screen: a stateless rendering of [TodayUi]. */
@Composable
fun TodayScreen(ui: TodayUi, onInput: (String) -> Unit, onAddGlucose: () -> Unit) {
    val s = ui.screen
    // Scrolls: at font scale 2.0 the screen is taller than a phone's.
    Column(
        Modifier.verticalScroll(rememberScrollState()).padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(8.dp),
    ) {
        Text(s.title, style = MaterialTheme.typography.headlineMedium)
        for (row in s.latest) {
            Row(Modifier.fillMaxWidth(), horizontalArrangement = Arrangement.SpaceBetween) {
                Text(row.label)
                Text(row.value, Modifier.testTag("latest-${row.kind}"), style = MaterialTheme.typography.titleMedium)
                Text(row.`when`)
            }
        }
        BandsBar(s.bands)
        Text(s.bandsCaption, style = MaterialTheme.typography.bodySmall)
        val glucose = s.quickAdd.first { it.kind == "glucose" }.label
        OutlinedTextField(
            value = ui.input,
            onValueChange = onInput,
            label = { Text(glucose) },
            singleLine = true,
            modifier = Modifier.fillMaxWidth().testTag("glucose-input").semantics { contentDescription = glucose },
        )
        ui.error?.let { Text(it, color = MaterialTheme.colorScheme.error, modifier = Modifier.testTag("error")) }
        Button(
            onClick = onAddGlucose,
            modifier = Modifier.heightIn(min = 48.dp).testTag("add-glucose").semantics { contentDescription = "+ $glucose" },
        ) { Text("+ $glucose") }
        s.pending?.let { Text(it, Modifier.testTag("pending"), style = MaterialTheme.typography.bodySmall) }
    }
}

/** The stacked bar of the five bands, with a legend of their labels. */
@Composable
fun BandsBar(bands: List<BandSegment>) {
    val shown = bands.filter { it.percent > 0.0 }
    if (shown.isEmpty()) return
    Row(Modifier.fillMaxWidth().height(20.dp)) {
        for (b in shown) {
            Box(
                Modifier.weight(b.percent.toFloat()).fillMaxHeight().background(bandColor(b.band))
                    .testTag("band-${b.band}").semantics { contentDescription = b.label },
            )
        }
    }
    for (b in shown) {
        Row(verticalAlignment = Alignment.CenterVertically) {
            Box(Modifier.size(12.dp).background(bandColor(b.band)))
            Spacer(Modifier.size(8.dp))
            Text(b.label, style = MaterialTheme.typography.bodyMedium)
        }
    }
}
