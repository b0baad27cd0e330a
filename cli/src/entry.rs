//! Turns command-line arguments into core diary input.

use polku_core::diary::validate::{self, narrow};
use polku_core::diary::*;
use polku_core::{time, Error};
use uuid::Uuid;

use crate::args::*;

pub fn parse_id(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s.trim())
        .map_err(|_| Error::validation("id", s, "an entry id as printed by `polku diary list`"))
}

pub fn new_entry(kind: &AddKind) -> Result<NewEntry, Error> {
    let (data, common) = match kind.clone() {
        AddKind::Glucose {
            value,
            unit,
            context,
            hours_after_meal,
            source,
            common,
        } => {
            let unit = match unit {
                UnitArg::MmolL => GlucoseUnit::MmolL,
                UnitArg::MgDl => GlucoseUnit::MgDl,
            };
            let reading = match value.trim().to_ascii_uppercase().as_str() {
                "LO" => GlucoseReading::Low,
                "HI" => GlucoseReading::High,
                v => {
                    let n: f64 = v.replace(',', ".").parse().map_err(|_| {
                        Error::validation("glucose.value", &value, "a number, LO or HI")
                    })?;
                    validate::glucose_reading(n, unit)?
                }
            };
            let data = EntryData::Glucose(Glucose {
                reading,
                unit,
                context: match context {
                    ContextArg::Fasting => MealContext::Fasting,
                    ContextArg::BeforeMeal => MealContext::BeforeMeal,
                    ContextArg::AfterMeal => MealContext::AfterMeal,
                    ContextArg::Bedtime => MealContext::Bedtime,
                    ContextArg::Night => MealContext::Night,
                    ContextArg::Other => MealContext::Other,
                },
                hours_after_meal: hours_after_meal
                    .map(|h| {
                        narrow(
                            "glucose.hours_after_meal",
                            h,
                            validate::HOURS_AFTER_MEAL,
                            "h",
                        )
                    })
                    .transpose()?,
                source: match source {
                    SourceArg::Meter => GlucoseSource::Meter,
                    SourceArg::Cgm => GlucoseSource::Cgm,
                    SourceArg::Manual => GlucoseSource::Manual,
                },
            });
            (data, common)
        }
        AddKind::Bp {
            systolic,
            diastolic,
            pulse,
            arm,
            series,
            common,
        } => (
            EntryData::BloodPressure(BloodPressure {
                systolic: narrow(
                    "blood_pressure.systolic",
                    systolic,
                    validate::SYSTOLIC,
                    "mmHg",
                )?,
                diastolic: narrow(
                    "blood_pressure.diastolic",
                    diastolic,
                    validate::DIASTOLIC,
                    "mmHg",
                )?,
                pulse: pulse
                    .map(|p| narrow("blood_pressure.pulse", p, validate::PULSE, "/min"))
                    .transpose()?,
                arm: arm.map(|a| match a {
                    ArmArg::Left => Arm::Left,
                    ArmArg::Right => Arm::Right,
                }),
                series: series.map(|s| match s {
                    SeriesArg::Morning => BpSeries::Morning,
                    SeriesArg::Evening => BpSeries::Evening,
                }),
            }),
            common,
        ),
        AddKind::Weight { kg, common } => (EntryData::Weight { kg }, common),
        AddKind::Pulse { bpm, common } => (
            EntryData::HeartRate {
                bpm: narrow("heart_rate.bpm", bpm, validate::PULSE, "/min")?,
            },
            common,
        ),
        AddKind::Temperature { celsius, common } => (EntryData::Temperature { celsius }, common),
        AddKind::Symptom {
            code,
            severity,
            common,
        } => {
            let list = SymptomCode::ALL
                .iter()
                .map(|c| c.as_str().replace('_', "-"))
                .collect::<Vec<_>>()
                .join(", ");
            let code = SymptomCode::parse(&code)
                .ok_or_else(|| Error::validation("symptom.code", &code, list))?;
            (
                EntryData::Symptom {
                    code,
                    severity: narrow("symptom.severity", severity, validate::SEVERITY, "")?,
                },
                common,
            )
        }
        AddKind::Medication { name, dose, common } => {
            (EntryData::Medication { name, dose }, common)
        }
        AddKind::Mood { score, common } => (
            EntryData::Mood {
                score: narrow("mood.score", score, validate::MOOD, "")?,
            },
            common,
        ),
        AddKind::Note { text, at } => (
            EntryData::Note,
            Common {
                at,
                note: Some(text),
            },
        ),
    };
    Ok(NewEntry {
        at: common
            .at
            .as_deref()
            .map(|s| time::parse_rfc3339("at", s))
            .transpose()?,
        note: common.note,
        data,
    })
}
