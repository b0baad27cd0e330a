//! Screen state over FFI (issue 12): what each screen shows, formatted by the core in the user's
//! language, so the Android and iOS shells only render it.

use std::sync::Arc;

use polku_core::screen as cs;
use polku_core::Polku;

use crate::convert::{Language, MealContext};
use crate::error::{guard, Result};

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LatestRow {
    pub kind: String,
    pub label: String,
    pub value: String,
    pub when: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BandSegment {
    /// very_low, low, in_range, high, very_high: the shell's colour for it.
    pub band: String,
    pub label: String,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QuickAdd {
    pub kind: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TodayScreen {
    pub title: String,
    pub latest: Vec<LatestRow>,
    pub bands: Vec<BandSegment>,
    pub bands_caption: String,
    pub quick_add: Vec<QuickAdd>,
    pub pending: Option<String>,
}

impl From<cs::TodayScreen> for TodayScreen {
    fn from(s: cs::TodayScreen) -> Self {
        TodayScreen {
            title: s.title,
            latest: s
                .latest
                .into_iter()
                .map(|r| LatestRow {
                    kind: r.kind,
                    label: r.label,
                    value: r.value,
                    when: r.when,
                })
                .collect(),
            bands: s
                .bands
                .into_iter()
                .map(|b| BandSegment {
                    band: b.band,
                    label: b.label,
                    percent: b.percent,
                })
                .collect(),
            bands_caption: s.bands_caption,
            quick_add: s
                .quick_add
                .into_iter()
                .map(|q| QuickAdd {
                    kind: q.kind,
                    label: q.label,
                })
                .collect(),
            pending: s.pending,
        }
    }
}

/// The screens' state, each a call the shell makes when it shows the screen (and again after a
/// write or a sync).
#[derive(uniffi::Object)]
pub struct ScreensClient {
    pub(crate) inner: Arc<Polku>,
    pub(crate) lang: polku_core::questionnaire::Lang,
}

#[uniffi::export]
impl ScreensClient {
    pub fn today(&self) -> Result<TodayScreen> {
        guard("screens.today", || {
            Ok(self.inner.today_screen(self.lang)?.into())
        })
    }

    /// Adds a glucose reading as the person typed it ("2,9"; an out-of-range value is
    /// `PolkuException.Validation` naming `glucose.value`) and returns the Today screen after it.
    pub fn add_glucose(&self, text: String, context: MealContext) -> Result<TodayScreen> {
        guard("screens.add_glucose", || {
            self.inner.quick_add_glucose(&text, context.into())?;
            Ok(self.inner.today_screen(self.lang)?.into())
        })
    }
}

pub(crate) fn client(inner: &Arc<Polku>, language: Language) -> Arc<ScreensClient> {
    Arc::new(ScreensClient {
        inner: inner.clone(),
        lang: language.into(),
    })
}
