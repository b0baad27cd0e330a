//! Turns command-line arguments into core diary input.

use polku_core::diary::*;
use polku_core::{time, Error};
use uuid::Uuid;

use crate::args::*;

pub fn parse_id(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s.trim())
        .map_err(|_| Error::validation("id", s, "an entry id as printed by `polku diary list`"))
}

pub fn new_entry(kind: &AddKind) -> Result<NewEntry, Error> {
    let (raw, common) = match kind.clone() {
        AddKind::Glucose {
            value,
            unit,
            context,
            hours_after_meal,
            source,
            common,
        } => (
            RawData::Glucose {
                reading: RawGlucose::parse("glucose.value", &value)?,
                unit,
                context,
                hours_after_meal,
                source,
            },
            common,
        ),
        AddKind::Bp {
            systolic,
            diastolic,
            pulse,
            arm,
            series,
            common,
        } => (
            RawData::BloodPressure {
                systolic,
                diastolic,
                pulse,
                arm,
                series,
            },
            common,
        ),
        AddKind::Weight { kg, common } => (RawData::Weight { kg }, common),
        AddKind::Pulse { bpm, common } => (RawData::HeartRate { bpm }, common),
        AddKind::Temperature { celsius, common } => (RawData::Temperature { celsius }, common),
        AddKind::Symptom {
            code,
            severity,
            common,
        } => (
            RawData::Symptom {
                code: polku_core::diary::raw::symptom_code("symptom.code", &code)?,
                severity,
            },
            common,
        ),
        AddKind::Medication { name, dose, common } => (RawData::Medication { name, dose }, common),
        AddKind::Mood { score, common } => (RawData::Mood { score }, common),
        AddKind::Note { text, at } => (
            RawData::Note,
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
        data: raw.build()?,
    })
}
