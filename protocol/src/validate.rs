//! Input validation. Limits from ../shared/clinical-reference.md ("Plausibility limits for input"
//! and "Glucose units"); where the reference leaves a limit open the choice is marked *open* here.
//! Every error names the field, echoes the value typed and states the allowed range.

use std::fmt;

use chrono::{DateTime, Duration, FixedOffset, Utc};

use crate::entry::*;

/// A value outside what a field allows: the field, the value as typed, the allowed range. The
/// person who typed it sees it; the server returns it only to the device that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub allowed: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, value: impl ToString, allowed: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: {} (allowed: {})",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for FieldError {}

pub type Result<T, E = FieldError> = std::result::Result<T, E>;

/// A UTC offset as stored (seconds east): whole minutes within ±14 h, the range real time zones
/// use (UTC−12 to UTC+14).
pub fn checked_offset(field: &str, seconds: i32) -> Result<FixedOffset> {
    FixedOffset::east_opt(seconds)
        .filter(|_| seconds % 60 == 0 && seconds.abs() <= 14 * 3600)
        .ok_or_else(|| FieldError::new(field, seconds, "whole minutes between -50400 and 50400"))
}

pub const GLUCOSE_MMOL_L: (f64, f64) = (0.6, 33.3);
pub const GLUCOSE_MG_DL: (f64, f64) = (10.0, 600.0);
pub const SYSTOLIC: (u16, u16) = (50, 300);
pub const DIASTOLIC: (u16, u16) = (20, 200);
pub const PULSE: (u16, u16) = (20, 300);
pub const WEIGHT_KG: (f64, f64) = (0.5, 400.0);
pub const TEMPERATURE_C: (f64, f64) = (25.0, 45.0);
pub const SEVERITY: (u8, u8) = (0, 10);
pub const MOOD: (u8, u8) = (1, 5);
/// *open*: hours after a meal that still describe a post-meal reading.
pub const HOURS_AFTER_MEAL: (u8, u8) = (0, 12);
/// *open*: length limits that keep a diary usable and a sync payload small.
pub const NOTE_MAX_CHARS: usize = 4000;
pub const NAME_MAX_CHARS: usize = 200;
pub const REASON_MAX_CHARS: usize = 500;
/// A timestamp may be at most this far ahead of the device clock.
pub const MAX_FUTURE: Duration = Duration::minutes(10);

/// Converts a typed glucose value to a stored reading, checking the meter range in the typed unit.
pub fn glucose_reading(value: f64, unit: GlucoseUnit) -> Result<GlucoseReading> {
    let (lo, hi, name) = match unit {
        GlucoseUnit::MmolL => (GLUCOSE_MMOL_L.0, GLUCOSE_MMOL_L.1, "mmol/L"),
        GlucoseUnit::MgDl => (GLUCOSE_MG_DL.0, GLUCOSE_MG_DL.1, "mg/dL"),
    };
    if !value.is_finite() || value < lo || value > hi {
        return Err(FieldError::new(
            "glucose.value",
            format!("{value} {name}"),
            format!("{lo}–{hi} {name}; outside the meter range record LO or HI instead"),
        ));
    }
    let mmol_l = match unit {
        GlucoseUnit::MmolL => value,
        GlucoseUnit::MgDl => value / MG_DL_PER_MMOL_L,
    };
    Ok(GlucoseReading::Value { mmol_l })
}

pub fn entry(new: &NewEntry, at: DateTime<FixedOffset>, now: DateTime<Utc>) -> Result<()> {
    timestamp("at", at, now)?;
    if let Some(note) = &new.note {
        text("note", note, NOTE_MAX_CHARS, false)?;
    }
    data(&new.data, new.note.as_deref())
}

pub fn timestamp(field: &str, at: DateTime<FixedOffset>, now: DateTime<Utc>) -> Result<()> {
    checked_offset(field, at.offset().local_minus_utc())?;
    let latest = now + MAX_FUTURE;
    if at.with_timezone(&Utc) > latest {
        return Err(FieldError::new(
            field,
            at.to_rfc3339(),
            format!(
                "no later than 10 minutes after the device clock ({})",
                latest.to_rfc3339()
            ),
        ));
    }
    let earliest = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z").expect("valid constant");
    if at < earliest {
        return Err(FieldError::new(
            field,
            at.to_rfc3339(),
            "1900-01-01 or later",
        ));
    }
    Ok(())
}

pub fn data(d: &EntryData, note: Option<&str>) -> Result<()> {
    match d {
        EntryData::Glucose(g) => glucose(g),
        EntryData::BloodPressure(bp) => blood_pressure(bp),
        EntryData::Weight { kg } => float_range("weight.kg", *kg, WEIGHT_KG, "kg"),
        EntryData::HeartRate { bpm } => int_range("heart_rate.bpm", *bpm, PULSE, "/min"),
        EntryData::Temperature { celsius } => {
            float_range("temperature.celsius", *celsius, TEMPERATURE_C, "°C")
        }
        EntryData::Symptom { severity, .. } => {
            int_range("symptom.severity", *severity, SEVERITY, "")
        }
        EntryData::Medication { name, dose } => {
            text("medication.name", name, NAME_MAX_CHARS, true)?;
            if let Some(dose) = dose {
                text("medication.dose", dose, NAME_MAX_CHARS, false)?;
            }
            Ok(())
        }
        EntryData::Mood { score } => int_range("mood.score", *score, MOOD, ""),
        EntryData::Note => match note {
            Some(n) if !n.trim().is_empty() => Ok(()),
            _ => Err(FieldError::new(
                "note",
                "(empty)",
                "a note entry needs text",
            )),
        },
    }
}

fn glucose(g: &Glucose) -> Result<()> {
    if let GlucoseReading::Value { mmol_l } = g.reading {
        // Re-check in mmol/L (the stored unit), allowing for the mg/dL conversion's rounding.
        if !mmol_l.is_finite()
            || mmol_l < GLUCOSE_MG_DL.0 / MG_DL_PER_MMOL_L - 1e-9
            || mmol_l > GLUCOSE_MMOL_L.1 + 1e-9
        {
            return Err(FieldError::new(
                "glucose.value",
                format!("{mmol_l} mmol/L"),
                "0.6–33.3 mmol/L; outside the meter range record LO or HI instead",
            ));
        }
    }
    match (g.context, g.hours_after_meal) {
        (MealContext::AfterMeal, Some(h)) => {
            int_range("glucose.hours_after_meal", h, HOURS_AFTER_MEAL, "h")
        }
        (MealContext::AfterMeal, None) => Ok(()),
        (_, Some(h)) => Err(FieldError::new(
            "glucose.hours_after_meal",
            h,
            "only with the after-meal context",
        )),
        (_, None) => Ok(()),
    }
}

fn blood_pressure(bp: &BloodPressure) -> Result<()> {
    int_range("blood_pressure.systolic", bp.systolic, SYSTOLIC, "mmHg")?;
    int_range("blood_pressure.diastolic", bp.diastolic, DIASTOLIC, "mmHg")?;
    if bp.systolic <= bp.diastolic {
        return Err(FieldError::new(
            "blood_pressure.systolic",
            format!("{}/{} mmHg", bp.systolic, bp.diastolic),
            "systolic greater than diastolic",
        ));
    }
    if let Some(p) = bp.pulse {
        int_range("blood_pressure.pulse", p, PULSE, "/min")?;
    }
    Ok(())
}

/// Narrows an integer typed at an API edge (FFI i32, CLI i64) to a field's type, with the field's
/// range in the error when it does not fit (e.g. a mood of 100000).
pub fn narrow<T>(field: &str, v: i64, range: (T, T), unit: &str) -> Result<T>
where
    T: TryFrom<i64> + PartialOrd + std::fmt::Display + Copy,
{
    match T::try_from(v) {
        Ok(t) => int_range(field, t, range, unit).map(|_| t),
        Err(_) => Err(FieldError::new(
            field,
            format!("{v} {unit}").trim_end(),
            format!("{}–{} {unit}", range.0, range.1).trim_end(),
        )),
    }
}

pub fn reason(r: &str) -> Result<()> {
    text("reason", r, REASON_MAX_CHARS, true)
}

fn text(field: &str, s: &str, max: usize, required: bool) -> Result<()> {
    let n = s.chars().count();
    if required && s.trim().is_empty() {
        return Err(FieldError::new(
            field,
            "(empty)",
            format!("1–{max} characters"),
        ));
    }
    if n > max {
        return Err(FieldError::new(
            field,
            format!("{n} characters"),
            format!("at most {max} characters"),
        ));
    }
    Ok(())
}

fn float_range(field: &str, v: f64, (lo, hi): (f64, f64), unit: &str) -> Result<()> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(FieldError::new(
            field,
            format!("{v} {unit}").trim_end(),
            format!("{lo}–{hi} {unit}").trim_end(),
        ));
    }
    Ok(())
}

fn int_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    v: T,
    (lo, hi): (T, T),
    unit: &str,
) -> Result<()> {
    if v < lo || v > hi {
        return Err(FieldError::new(
            field,
            format!("{v} {unit}").trim_end(),
            format!("{lo}–{hi} {unit}").trim_end(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_with_an_impossible_offset_is_refused() {
        let now = chrono::Utc::now();
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00+15:00").unwrap();
        let e = timestamp("at", at, now).unwrap_err();
        assert!(e.field == "at", "{e}");
    }

    fn field_of(e: FieldError) -> String {
        e.field
    }

    #[test]
    fn glucose_limits_in_both_units() {
        assert!(glucose_reading(0.6, GlucoseUnit::MmolL).is_ok());
        assert!(glucose_reading(33.3, GlucoseUnit::MmolL).is_ok());
        assert!(glucose_reading(10.0, GlucoseUnit::MgDl).is_ok());
        assert!(glucose_reading(600.0, GlucoseUnit::MgDl).is_ok());
        for (v, u) in [
            (0.59, GlucoseUnit::MmolL),
            (33.4, GlucoseUnit::MmolL),
            (9.9, GlucoseUnit::MgDl),
            (601.0, GlucoseUnit::MgDl),
            (f64::NAN, GlucoseUnit::MmolL),
        ] {
            let e = glucose_reading(v, u).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("glucose.value") && msg.contains("LO or HI"),
                "{msg}"
            );
        }
        match glucose_reading(90.08, GlucoseUnit::MgDl).unwrap() {
            GlucoseReading::Value { mmol_l } => assert!((mmol_l - 5.0).abs() < 1e-9),
            _ => unreachable!(),
        }
    }

    #[test]
    fn error_names_field_value_and_range() {
        let e = data(
            &EntryData::BloodPressure(BloodPressure {
                systolic: 310,
                diastolic: 80,
                pulse: None,
                arm: None,
                series: None,
            }),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid blood_pressure.systolic: 310 mmHg (allowed: 50–300 mmHg)"
        );
    }

    #[test]
    fn every_limit_has_both_edges() {
        let bp = |s, d, p| {
            EntryData::BloodPressure(BloodPressure {
                systolic: s,
                diastolic: d,
                pulse: p,
                arm: None,
                series: None,
            })
        };
        assert!(data(&bp(50, 20, Some(20)), None).is_ok());
        assert!(data(&bp(300, 200, Some(300)), None).is_ok());
        assert_eq!(
            field_of(data(&bp(49, 20, None), None).unwrap_err()),
            "blood_pressure.systolic"
        );
        assert_eq!(
            field_of(data(&bp(120, 19, None), None).unwrap_err()),
            "blood_pressure.diastolic"
        );
        assert_eq!(
            field_of(data(&bp(120, 201, None), None).unwrap_err()),
            "blood_pressure.diastolic"
        );
        assert_eq!(
            field_of(data(&bp(90, 90, None), None).unwrap_err()),
            "blood_pressure.systolic"
        );
        assert_eq!(
            field_of(data(&bp(120, 80, Some(19)), None).unwrap_err()),
            "blood_pressure.pulse"
        );
        assert_eq!(
            field_of(data(&bp(120, 80, Some(301)), None).unwrap_err()),
            "blood_pressure.pulse"
        );

        assert!(data(&EntryData::Weight { kg: 0.5 }, None).is_ok());
        assert!(data(&EntryData::Weight { kg: 400.0 }, None).is_ok());
        assert_eq!(
            field_of(data(&EntryData::Weight { kg: 0.49 }, None).unwrap_err()),
            "weight.kg"
        );
        assert_eq!(
            field_of(data(&EntryData::Weight { kg: 400.1 }, None).unwrap_err()),
            "weight.kg"
        );
        assert!(data(&EntryData::HeartRate { bpm: 20 }, None).is_ok());
        assert_eq!(
            field_of(data(&EntryData::HeartRate { bpm: 301 }, None).unwrap_err()),
            "heart_rate.bpm"
        );
        assert!(data(&EntryData::Temperature { celsius: 25.0 }, None).is_ok());
        assert!(data(&EntryData::Temperature { celsius: 45.0 }, None).is_ok());
        assert_eq!(
            field_of(data(&EntryData::Temperature { celsius: 45.1 }, None).unwrap_err()),
            "temperature.celsius"
        );
        assert_eq!(
            field_of(data(&EntryData::Temperature { celsius: 24.9 }, None).unwrap_err()),
            "temperature.celsius"
        );
        assert!(data(
            &EntryData::Symptom {
                code: SymptomCode::Fatigue,
                severity: 0
            },
            None
        )
        .is_ok());
        assert!(data(
            &EntryData::Symptom {
                code: SymptomCode::Fatigue,
                severity: 10
            },
            None
        )
        .is_ok());
        assert_eq!(
            field_of(
                data(
                    &EntryData::Symptom {
                        code: SymptomCode::Fatigue,
                        severity: 11
                    },
                    None
                )
                .unwrap_err()
            ),
            "symptom.severity"
        );
        assert!(data(&EntryData::Mood { score: 1 }, None).is_ok());
        assert!(data(&EntryData::Mood { score: 5 }, None).is_ok());
        assert_eq!(
            field_of(data(&EntryData::Mood { score: 0 }, None).unwrap_err()),
            "mood.score"
        );
        assert_eq!(
            field_of(data(&EntryData::Mood { score: 6 }, None).unwrap_err()),
            "mood.score"
        );
        assert_eq!(
            field_of(
                data(
                    &EntryData::Medication {
                        name: " ".into(),
                        dose: None
                    },
                    None
                )
                .unwrap_err()
            ),
            "medication.name"
        );
        assert_eq!(
            field_of(data(&EntryData::Note, Some("  ")).unwrap_err()),
            "note"
        );
    }

    #[test]
    fn hours_after_meal_only_after_meal() {
        let g = |context, h| {
            EntryData::Glucose(Glucose {
                reading: GlucoseReading::Value { mmol_l: 6.0 },
                unit: GlucoseUnit::MmolL,
                context,
                hours_after_meal: h,
                source: GlucoseSource::Meter,
            })
        };
        assert!(data(&g(MealContext::AfterMeal, Some(2)), None).is_ok());
        assert!(data(&g(MealContext::AfterMeal, Some(12)), None).is_ok());
        assert_eq!(
            field_of(data(&g(MealContext::AfterMeal, Some(13)), None).unwrap_err()),
            "glucose.hours_after_meal"
        );
        assert_eq!(
            field_of(data(&g(MealContext::Fasting, Some(2)), None).unwrap_err()),
            "glucose.hours_after_meal"
        );
    }

    #[test]
    fn future_limit_is_ten_minutes() {
        let now = Utc::now();
        let ok = (now + Duration::minutes(10)).fixed_offset();
        let late = (now + Duration::minutes(10) + Duration::seconds(1)).fixed_offset();
        assert!(timestamp("at", ok, now).is_ok());
        assert_eq!(field_of(timestamp("at", late, now).unwrap_err()), "at");
    }
}
