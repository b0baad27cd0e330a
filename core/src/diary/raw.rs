//! A new entry as a shell or the CLI received it: numbers wider than the stored types, symptom
//! codes and glucose values as typed. [`RawData::build`] checks every field against its range and
//! names it (`blood_pressure.systolic`, allowed `50–300 mmHg`), once for every caller, so the
//! CLI and the FFI give the same typed error for the same input.

use super::model::*;
use super::validate::{self, narrow};
use crate::error::{Error, Result};

/// A glucose reading as typed: a number in the entry's unit, or the meter's LO/HI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawGlucose {
    Value(f64),
    Low,
    High,
}

impl RawGlucose {
    /// A typed glucose field: a number (decimal comma or point), `LO` or `HI`.
    pub fn parse(field: &str, typed: &str) -> Result<RawGlucose> {
        match typed.trim().to_ascii_uppercase().as_str() {
            "LO" => Ok(RawGlucose::Low),
            "HI" => Ok(RawGlucose::High),
            v => v
                .replace(',', ".")
                .parse()
                .map(RawGlucose::Value)
                .map_err(|_| Error::validation(field, typed, "a number, LO or HI")),
        }
    }
}

/// The content of a new entry before its ranges are checked.
#[derive(Debug, Clone, PartialEq)]
pub enum RawData {
    Glucose {
        reading: RawGlucose,
        unit: GlucoseUnit,
        context: MealContext,
        hours_after_meal: Option<i64>,
        source: GlucoseSource,
    },
    BloodPressure {
        systolic: i64,
        diastolic: i64,
        pulse: Option<i64>,
        arm: Option<Arm>,
        series: Option<BpSeries>,
    },
    Weight {
        kg: f64,
    },
    HeartRate {
        bpm: i64,
    },
    Temperature {
        celsius: f64,
    },
    Symptom {
        code: SymptomCode,
        severity: i64,
    },
    Medication {
        name: String,
        dose: Option<String>,
    },
    Mood {
        score: i64,
    },
    Note,
}

impl RawData {
    /// The typed entry content, or the first field outside its range (the rest of the checks,
    /// on the whole entry, run when it is written: `validate::entry`).
    pub fn build(self) -> Result<EntryData> {
        Ok(match self {
            RawData::Glucose {
                reading,
                unit,
                context,
                hours_after_meal,
                source,
            } => EntryData::Glucose(Glucose {
                reading: match reading {
                    RawGlucose::Value(v) => validate::glucose_reading(v, unit)?,
                    RawGlucose::Low => GlucoseReading::Low,
                    RawGlucose::High => GlucoseReading::High,
                },
                unit,
                context,
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
                source,
            }),
            RawData::BloodPressure {
                systolic,
                diastolic,
                pulse,
                arm,
                series,
            } => EntryData::BloodPressure(BloodPressure {
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
                arm,
                series,
            }),
            RawData::Weight { kg } => EntryData::Weight { kg },
            RawData::HeartRate { bpm } => EntryData::HeartRate {
                bpm: narrow("heart_rate.bpm", bpm, validate::PULSE, "/min")?,
            },
            RawData::Temperature { celsius } => EntryData::Temperature { celsius },
            RawData::Symptom { code, severity } => EntryData::Symptom {
                code,
                severity: narrow("symptom.severity", severity, validate::SEVERITY, "")?,
            },
            RawData::Medication { name, dose } => EntryData::Medication { name, dose },
            RawData::Mood { score } => EntryData::Mood {
                score: narrow("mood.score", score, validate::MOOD, "")?,
            },
            RawData::Note => EntryData::Note,
        })
    }
}

/// A typed symptom code (`chest-pain` or `chest_pain`); the error lists the catalogue.
pub fn symptom_code(field: &str, typed: &str) -> Result<SymptomCode> {
    SymptomCode::parse(typed).ok_or_else(|| {
        let list = SymptomCode::ALL
            .iter()
            .map(|c| c.as_str().replace('_', "-"))
            .collect::<Vec<_>>()
            .join(", ");
        Error::validation(field, typed, list)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_is_narrowed_with_its_field_and_range() {
        let e = RawData::BloodPressure {
            systolic: 70_000,
            diastolic: 80,
            pulse: None,
            arm: None,
            series: None,
        }
        .build()
        .unwrap_err();
        assert!(
            matches!(&e, Error::Validation { field, allowed, .. } if field == "blood_pressure.systolic" && allowed == "50–300 mmHg"),
            "{e}"
        );
        let e = RawData::Mood { score: -1 }.build().unwrap_err();
        assert!(matches!(&e, Error::Validation { field, .. } if field == "mood.score"));
        assert_eq!(
            RawData::HeartRate { bpm: 72 }.build().unwrap(),
            EntryData::HeartRate { bpm: 72 }
        );
        assert_eq!(
            RawGlucose::parse("glucose.value", " 6,4 ").unwrap(),
            RawGlucose::Value(6.4)
        );
        assert_eq!(RawGlucose::parse("g", "lo").unwrap(), RawGlucose::Low);
        assert!(RawGlucose::parse("glucose.value", "six").is_err());
        assert!(symptom_code("symptom.code", "headache")
            .unwrap_err()
            .to_string()
            .contains("chest-pain"));
    }
}
