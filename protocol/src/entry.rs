//! Diary entry types. Each kind carries only its own fields; the common envelope (id, times,
//! author, note, version) is in [`Entry`].

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// mg/dL per mmol/L: glucose molar mass 180.16 g/mol (clinical-reference.md, "Glucose units").
pub const MG_DL_PER_MMOL_L: f64 = 18.016;

/// A value stored in mmol/L that was recorded in mg/dL, back in whole mg/dL: how it is shown,
/// exported and banded everywhere (meters show whole mg/dL, and the consensus bands whole
/// numbers against its mg/dL column).
pub fn mg_dl(mmol_l: f64) -> i64 {
    (mmol_l * MG_DL_PER_MMOL_L).round() as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Glucose,
    BloodPressure,
    Weight,
    HeartRate,
    Temperature,
    Symptom,
    Medication,
    Mood,
    Note,
}

impl EntryKind {
    pub const ALL: [EntryKind; 9] = [
        EntryKind::Glucose,
        EntryKind::BloodPressure,
        EntryKind::Weight,
        EntryKind::HeartRate,
        EntryKind::Temperature,
        EntryKind::Symptom,
        EntryKind::Medication,
        EntryKind::Mood,
        EntryKind::Note,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Glucose => "glucose",
            EntryKind::BloodPressure => "blood_pressure",
            EntryKind::Weight => "weight",
            EntryKind::HeartRate => "heart_rate",
            EntryKind::Temperature => "temperature",
            EntryKind::Symptom => "symptom",
            EntryKind::Medication => "medication",
            EntryKind::Mood => "mood",
            EntryKind::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match norm.as_str() {
            "bp" => "blood_pressure",
            "pulse" => "heart_rate",
            other => other,
        };
        EntryKind::ALL.into_iter().find(|k| k.as_str() == alias)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlucoseUnit {
    #[serde(rename = "mmol/L")]
    MmolL,
    #[serde(rename = "mg/dL")]
    MgDl,
}

impl GlucoseUnit {
    pub const ALL: [GlucoseUnit; 2] = [GlucoseUnit::MmolL, GlucoseUnit::MgDl];

    pub fn as_str(self) -> &'static str {
        match self {
            GlucoseUnit::MmolL => "mmol/L",
            GlucoseUnit::MgDl => "mg/dL",
        }
    }
}

/// A meter shows LO/HI outside 0.6–33.3 mmol/L; those are kept as markers, never as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum GlucoseReading {
    /// A measured value, stored in mmol/L.
    Value { mmol_l: f64 },
    /// Below the meter's range ("LO").
    Low,
    /// Above the meter's range ("HI").
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MealContext {
    Fasting,
    BeforeMeal,
    AfterMeal,
    Bedtime,
    Night,
    Other,
}

impl MealContext {
    pub const ALL: [MealContext; 6] = [
        MealContext::Fasting,
        MealContext::BeforeMeal,
        MealContext::AfterMeal,
        MealContext::Bedtime,
        MealContext::Night,
        MealContext::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MealContext::Fasting => "fasting",
            MealContext::BeforeMeal => "before_meal",
            MealContext::AfterMeal => "after_meal",
            MealContext::Bedtime => "bedtime",
            MealContext::Night => "night",
            MealContext::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlucoseSource {
    Meter,
    Cgm,
    Manual,
}

impl GlucoseSource {
    pub const ALL: [GlucoseSource; 3] = [
        GlucoseSource::Meter,
        GlucoseSource::Cgm,
        GlucoseSource::Manual,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GlucoseSource::Meter => "meter",
            GlucoseSource::Cgm => "cgm",
            GlucoseSource::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Glucose {
    pub reading: GlucoseReading,
    /// The unit the user typed (or the file used): shown and exported alongside mmol/L.
    pub unit: GlucoseUnit,
    pub context: MealContext,
    /// Whole hours since the meal; only with `context = after_meal` (FHIR `hoursAfterMeal` is an
    /// unsignedInt in the Kanta PHR glucose profile).
    pub hours_after_meal: Option<u8>,
    pub source: GlucoseSource,
}

impl Glucose {
    pub fn mmol_l(&self) -> Option<f64> {
        match self.reading {
            GlucoseReading::Value { mmol_l } => Some(mmol_l),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Left,
    Right,
}

impl Arm {
    pub const ALL: [Arm; 2] = [Arm::Left, Arm::Right];

    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Left => "left",
            Arm::Right => "right",
        }
    }
}

/// Käypä hoito home series: morning and evening double measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BpSeries {
    Morning,
    Evening,
}

impl BpSeries {
    pub const ALL: [BpSeries; 2] = [BpSeries::Morning, BpSeries::Evening];

    pub fn as_str(self) -> &'static str {
        match self {
            BpSeries::Morning => "morning",
            BpSeries::Evening => "evening",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BloodPressure {
    pub systolic: u16,
    pub diastolic: u16,
    pub pulse: Option<u16>,
    pub arm: Option<Arm>,
    /// Explicit series tag; when absent the local time of day decides (see analytics::bp).
    pub series: Option<BpSeries>,
}

/// The built-in symptom catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymptomCode {
    ChestPain,
    ShortnessOfBreath,
    Palpitations,
    Dizziness,
    LegSwelling,
    Fatigue,
    HypoglycaemiaSymptoms,
    LowMood,
    Anxiety,
    Other,
}

impl SymptomCode {
    pub const ALL: [SymptomCode; 10] = [
        SymptomCode::ChestPain,
        SymptomCode::ShortnessOfBreath,
        SymptomCode::Palpitations,
        SymptomCode::Dizziness,
        SymptomCode::LegSwelling,
        SymptomCode::Fatigue,
        SymptomCode::HypoglycaemiaSymptoms,
        SymptomCode::LowMood,
        SymptomCode::Anxiety,
        SymptomCode::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SymptomCode::ChestPain => "chest_pain",
            SymptomCode::ShortnessOfBreath => "shortness_of_breath",
            SymptomCode::Palpitations => "palpitations",
            SymptomCode::Dizziness => "dizziness",
            SymptomCode::LegSwelling => "leg_swelling",
            SymptomCode::Fatigue => "fatigue",
            SymptomCode::HypoglycaemiaSymptoms => "hypoglycaemia_symptoms",
            SymptomCode::LowMood => "low_mood",
            SymptomCode::Anxiety => "anxiety",
            SymptomCode::Other => "other",
        }
    }

    /// Finnish display name (the app's primary language).
    pub fn label_fi(self) -> &'static str {
        match self {
            SymptomCode::ChestPain => "rintakipu",
            SymptomCode::ShortnessOfBreath => "hengenahdistus",
            SymptomCode::Palpitations => "sydämentykytys",
            SymptomCode::Dizziness => "huimaus",
            SymptomCode::LegSwelling => "säärien turvotus",
            SymptomCode::Fatigue => "väsymys",
            SymptomCode::HypoglycaemiaSymptoms => "matalan verensokerin oireet",
            SymptomCode::LowMood => "alakulo",
            SymptomCode::Anxiety => "ahdistus",
            SymptomCode::Other => "muu oire",
        }
    }

    pub fn parse(s: &str) -> Option<SymptomCode> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        SymptomCode::ALL.into_iter().find(|c| c.as_str() == norm)
    }
}

/// The kind-specific content of an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EntryData {
    Glucose(Glucose),
    BloodPressure(BloodPressure),
    Weight {
        kg: f64,
    },
    HeartRate {
        bpm: u16,
    },
    Temperature {
        celsius: f64,
    },
    Symptom {
        code: SymptomCode,
        severity: u8,
    },
    Medication {
        name: String,
        dose: Option<String>,
    },
    Mood {
        score: u8,
    },
    /// A free-text diary note; the text is the entry's `note`.
    Note,
}

impl EntryData {
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryData::Glucose(_) => EntryKind::Glucose,
            EntryData::BloodPressure(_) => EntryKind::BloodPressure,
            EntryData::Weight { .. } => EntryKind::Weight,
            EntryData::HeartRate { .. } => EntryKind::HeartRate,
            EntryData::Temperature { .. } => EntryKind::Temperature,
            EntryData::Symptom { .. } => EntryKind::Symptom,
            EntryData::Medication { .. } => EntryKind::Medication,
            EntryData::Mood { .. } => EntryKind::Mood,
            EntryData::Note => EntryKind::Note,
        }
    }
}

/// What the caller supplies to add or edit an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// When it was measured, with the wall-clock offset; `None` = now in the device's time zone
    /// (for an edit: keep the time of the version being replaced).
    pub at: Option<DateTime<FixedOffset>>,
    pub note: Option<String>,
    pub data: EntryData,
}

impl NewEntry {
    pub fn new(data: EntryData) -> Self {
        NewEntry {
            at: None,
            note: None,
            data,
        }
    }
    pub fn at(mut self, at: DateTime<FixedOffset>) -> Self {
        self.at = Some(at);
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The deletion marker of a tombstone version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    pub reason: String,
}

/// One version of a diary entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The entry's identity, shared by all its versions.
    pub id: Uuid,
    /// This version's own id.
    pub version_id: Uuid,
    /// 1 for the original, +1 per edit or delete.
    pub version: u32,
    pub subject: String,
    /// The measurement instant with the UTC offset the device had.
    pub at: DateTime<FixedOffset>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub note: Option<String>,
    pub data: EntryData,
    /// Set on a tombstone version (the entry was deleted, with this reason).
    pub deleted: Option<Deletion>,
    /// Whether this is the newest version.
    pub is_head: bool,
}

impl Entry {
    pub fn kind(&self) -> EntryKind {
        self.data.kind()
    }
}
