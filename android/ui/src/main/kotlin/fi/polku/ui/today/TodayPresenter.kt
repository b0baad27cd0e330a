package fi.polku.ui.today

import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import uniffi.polku_ffi.MealContext
import uniffi.polku_ffi.PolkuException
import uniffi.polku_ffi.ScreensClient
import uniffi.polku_ffi.TodayScreen

/** What the Today screen renders: the core's screen state and the text being typed. */
data class TodayUi(val screen: TodayScreen, val input: String = "", val error: String? = null)

/**
 * Adapts the core's Today screen state to a [StateFlow]. No formatting or rules here: the core
 * formats every value and checks every input (the iOS shell shares that logic).
 */
class TodayPresenter(private val screens: ScreensClient) {
    private val state0 = MutableStateFlow(TodayUi(screens.today()))
    val state: StateFlow<TodayUi> = state0.asStateFlow()

    fun onInput(text: String) {
        state0.value = state0.value.copy(input = text, error = null)
    }

    /** Adds the typed glucose reading; a value the core refuses shows its field and range. */
    fun addGlucose(context: MealContext = MealContext.OTHER) {
        state0.value = try {
            TodayUi(screens.addGlucose(state0.value.input, context))
        } catch (e: PolkuException.Validation) {
            state0.value.copy(error = "${e.field}: ${e.value} (${e.allowed})")
        }
    }

    /** After a sync or another screen's write. */
    fun refresh() {
        state0.value = state0.value.copy(screen = screens.today())
    }
}
