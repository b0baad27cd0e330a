//! Screen state for the native shells (issue 12): what each screen shows, already formatted in
//! the user's language and units, so the Android and iOS shells only render it (as Element X
//! renders what matrix-sdk-ui prepares). A shell that formats a value itself would format it
//! again in the other shell, differently.

use chrono::{DateTime, Duration, Utc};
use polku_protocol::entry::{EntryData, EntryKind, GlucoseReading};
use serde::Serialize;

use crate::context::Context;
use crate::diary::{Diary, EntryQuery};
use crate::error::Result;
use crate::instrument::Lang;

/// The citizen's Today screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TodayScreen {
    pub title: String,
    /// The latest glucose, blood pressure and weight, each formatted.
    pub latest: Vec<LatestRow>,
    /// The last 14 days' glucose in the five consensus bands (2019 international TIR
    /// consensus): a stacked bar whose segments carry their labels, so colour is never the only
    /// carrier of meaning. Empty without readings.
    pub bands: Vec<BandSegment>,
    pub bands_caption: String,
    /// What can be added in one tap.
    pub quick_add: Vec<QuickAdd>,
    /// "3 waiting to be sent", when anything is.
    pub pending: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestRow {
    /// `glucose`, `blood_pressure` or `weight`.
    pub kind: String,
    pub label: String,
    /// The value with its unit, in the language's number format ("5,6 mmol/l").
    pub value: String,
    /// When, local ("14:05", or "28.11. 14:05" on another day).
    pub when: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandSegment {
    /// `very_low`, `low`, `in_range`, `high`, `very_high`: the shell picks the colour from it.
    pub band: String,
    /// The band's name and share ("Tavoitealue 72 %").
    pub label: String,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuickAdd {
    pub kind: String,
    pub label: String,
}

fn t(lang: Lang, fi: &str, sv: &str, en: &str) -> String {
    match lang {
        Lang::Fi => fi,
        Lang::Sv => sv,
        Lang::En => en,
    }
    .to_owned()
}

/// A number with `decimals` places, with a decimal comma in Finnish and Swedish.
pub fn number(v: f64, decimals: usize, lang: Lang) -> String {
    let s = format!("{v:.decimals$}");
    match lang {
        Lang::En => s,
        _ => s.replace('.', ","),
    }
}

fn when(at: DateTime<chrono::FixedOffset>, now: DateTime<Utc>, cx: &Context) -> String {
    let local = at.with_timezone(&cx.tz);
    if local.date_naive() == now.with_timezone(&cx.tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%-d.%-m. %H:%M").to_string()
    }
}

pub(crate) fn today(cx: &Context, lang: Lang) -> Result<TodayScreen> {
    let now = cx.clock.now();
    let diary = Diary { cx };
    let mut latest = Vec::new();
    for (kind, label) in [
        (
            EntryKind::Glucose,
            t(lang, "Verensokeri", "Blodsocker", "Glucose"),
        ),
        (
            EntryKind::BloodPressure,
            t(lang, "Verenpaine", "Blodtryck", "Blood pressure"),
        ),
        (EntryKind::Weight, t(lang, "Paino", "Vikt", "Weight")),
    ] {
        let page = diary.list(&EntryQuery {
            kinds: vec![kind],
            limit: 1,
            ..Default::default()
        })?;
        let Some(e) = page.entries.into_iter().next() else {
            continue;
        };
        let value = match &e.data {
            EntryData::Glucose(g) => match g.reading {
                GlucoseReading::Value { mmol_l } => {
                    format!("{} mmol/l", number(mmol_l, 1, lang))
                }
                GlucoseReading::Low => "LO".to_owned(),
                GlucoseReading::High => "HI".to_owned(),
            },
            EntryData::BloodPressure(b) => format!("{}/{} mmHg", b.systolic, b.diastolic),
            EntryData::Weight { kg } => format!("{} kg", number(*kg, 1, lang)),
            _ => continue,
        };
        latest.push(LatestRow {
            kind: kind.as_str().to_owned(),
            label,
            value,
            when: when(e.at, now, cx),
        });
    }
    let report = crate::analytics::Analytics { cx }.glucose(now - Duration::days(14), now)?;
    let summary = report.cgm.or(report.meter);
    let (bands, bands_caption) = match summary.filter(|s| s.readings > 0) {
        None => (
            Vec::new(),
            t(
                lang,
                "Ei verensokeriarvoja 14 vuorokauteen",
                "Inga blodsockervärden på 14 dygn",
                "No glucose readings in 14 days",
            ),
        ),
        Some(s) => {
            let b = s.bands;
            let names = [
                (
                    "very_low",
                    b.very_low,
                    t(lang, "Hyvin matala", "Mycket låg", "Very low"),
                ),
                ("low", b.low, t(lang, "Matala", "Låg", "Low")),
                (
                    "in_range",
                    b.in_range,
                    t(lang, "Tavoitealue", "Målområde", "In range"),
                ),
                ("high", b.high, t(lang, "Korkea", "Hög", "High")),
                (
                    "very_high",
                    b.very_high,
                    t(lang, "Hyvin korkea", "Mycket hög", "Very high"),
                ),
            ];
            let segments = names
                .into_iter()
                .map(|(band, percent, name)| BandSegment {
                    band: band.to_owned(),
                    label: format!("{name} {} %", number(percent, 0, lang)),
                    percent,
                })
                .collect();
            let caption = match lang {
                Lang::Fi => format!("Viimeiset 14 vrk, {} mittausta", s.readings),
                Lang::Sv => format!("Senaste 14 dygnen, {} mätningar", s.readings),
                Lang::En => format!("Last 14 days, {} readings", s.readings),
            };
            (segments, caption)
        }
    };
    let quick_add = [
        ("glucose", t(lang, "Verensokeri", "Blodsocker", "Glucose")),
        (
            "blood_pressure",
            t(lang, "Verenpaine", "Blodtryck", "Blood pressure"),
        ),
        ("weight", t(lang, "Paino", "Vikt", "Weight")),
        ("symptom", t(lang, "Oire", "Symtom", "Symptom")),
        ("medication", t(lang, "Lääke", "Läkemedel", "Medication")),
        ("mood", t(lang, "Mieliala", "Humör", "Mood")),
        ("note", t(lang, "Muistiinpano", "Anteckning", "Note")),
    ]
    .into_iter()
    .map(|(kind, label)| QuickAdd {
        kind: kind.to_owned(),
        label,
    })
    .collect();
    let waiting: i64 = cx.store.read(|c| {
        Ok(c.query_row(
            "SELECT count(*) FROM sync_outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    })?;
    Ok(TodayScreen {
        title: t(lang, "Tänään", "Idag", "Today"),
        latest,
        bands,
        bands_caption,
        quick_add,
        pending: (waiting > 0).then(|| match lang {
            Lang::Fi => format!("{waiting} odottaa lähetystä"),
            Lang::Sv => format!("{waiting} väntar på att skickas"),
            Lang::En => format!("{waiting} waiting to be sent"),
        }),
    })
}

/// Adds a glucose reading typed on the Today screen (`text` as the person typed it: "2,9",
/// "5.6", "LO"), measured now. A value out of range is a validation error naming
/// `glucose.value` and the allowed range.
pub(crate) fn add_glucose(
    cx: &Context,
    text: &str,
    context: polku_protocol::entry::MealContext,
) -> Result<crate::diary::Entry> {
    use crate::diary::raw::{RawData, RawGlucose};
    let data = RawData::Glucose {
        reading: RawGlucose::parse("glucose.value", text)?,
        unit: polku_protocol::entry::GlucoseUnit::MmolL,
        context,
        hours_after_meal: None,
        source: polku_protocol::entry::GlucoseSource::Manual,
    }
    .build()?;
    Diary { cx }.add(crate::diary::NewEntry::new(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_languages_decimal_mark() {
        assert_eq!(number(5.64, 1, Lang::Fi), "5,6");
        assert_eq!(number(5.64, 1, Lang::Sv), "5,6");
        assert_eq!(number(5.64, 1, Lang::En), "5.6");
        assert_eq!(number(71.6, 0, Lang::Fi), "72");
    }
}
