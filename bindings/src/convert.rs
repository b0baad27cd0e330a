//! FFI records and their conversion to and from core types: the one place where instants,
//! offsets, ids and units cross the boundary. Numbers are signed 32-bit on the FFI (Kotlin and
//! Swift handle them without casts); out-of-range values become `PolkuError::Validation` here.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset, Utc};
use polku_core::analytics as ca;
use polku_core::diary as cd;
use uuid::Uuid;

use crate::error::{PolkuError, Result};

// ---- identities and time -------------------------------------------------------------------

pub(crate) fn parse_id(field: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s.trim()).map_err(|_| PolkuError::Validation {
        field: field.to_owned(),
        value: s.to_owned(),
        allowed: "a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e".into(),
    })
}

pub(crate) fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

pub(crate) fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::from(t)
}

/// The measurement time: an explicit instant and offset, the instant in the device zone, or now.
pub(crate) fn measured_at(
    at: Option<SystemTime>,
    offset_s: Option<i32>,
    tz: chrono_tz::Tz,
) -> Result<Option<DateTime<FixedOffset>>> {
    let Some(at) = at else {
        return match offset_s {
            Some(_) => Err(PolkuError::Validation {
                field: "utc_offset_seconds".into(),
                value: "set without measured_at".into(),
                allowed: "only together with measured_at".into(),
            }),
            None => Ok(None),
        };
    };
    let at = utc(at);
    Ok(Some(match offset_s {
        Some(o) => at.with_timezone(&polku_core::time::checked_offset("utc_offset_seconds", o)?),
        None => polku_core::time::in_zone(at, tz),
    }))
}

// ---- enums ---------------------------------------------------------------------------------

macro_rules! mirror_enum {
    ($(#[$m:meta])* $name:ident <=> $core:path { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
        pub enum $name { $($v),* }
        impl From<$name> for $core {
            fn from(v: $name) -> Self { match v { $($name::$v => <$core>::$v),* } }
        }
        impl From<$core> for $name {
            fn from(v: $core) -> Self { match v { $(<$core>::$v => $name::$v),* } }
        }
    };
}

mirror_enum!(EntryKind <=> cd::EntryKind { Glucose, BloodPressure, Weight, HeartRate, Temperature, Symptom, Medication, Mood, Note });
mirror_enum!(GlucoseUnit <=> cd::GlucoseUnit { MmolL, MgDl });
mirror_enum!(MealContext <=> cd::MealContext { Fasting, BeforeMeal, AfterMeal, Bedtime, Night, Other });
mirror_enum!(GlucoseSource <=> cd::GlucoseSource { Meter, Cgm, Manual });
mirror_enum!(Arm <=> cd::Arm { Left, Right });
mirror_enum!(BpSeries <=> cd::BpSeries { Morning, Evening });
mirror_enum!(SymptomCode <=> cd::SymptomCode { ChestPain, ShortnessOfBreath, Palpitations, Dizziness, LegSwelling, Fatigue, HypoglycaemiaSymptoms, LowMood, Anxiety, Other });
mirror_enum!(CgmFormat <=> polku_core::import::CgmFormat { Generic, LibreView });

/// A glucose value in the entry's `unit`, or the meter's LO/HI marker.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum GlucoseReading {
    Value { value: f64 },
    Low,
    High,
}

#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum EntryData {
    Glucose {
        reading: GlucoseReading,
        unit: GlucoseUnit,
        context: MealContext,
        hours_after_meal: Option<i32>,
        source: GlucoseSource,
    },
    BloodPressure {
        systolic: i32,
        diastolic: i32,
        pulse: Option<i32>,
        arm: Option<Arm>,
        series: Option<BpSeries>,
    },
    Weight {
        kg: f64,
    },
    HeartRate {
        bpm: i32,
    },
    Temperature {
        celsius: f64,
    },
    Symptom {
        code: SymptomCode,
        severity: i32,
    },
    Medication {
        name: String,
        dose: Option<String>,
    },
    Mood {
        score: i32,
    },
    Note,
}

impl TryFrom<EntryData> for cd::EntryData {
    type Error = PolkuError;
    fn try_from(d: EntryData) -> Result<Self> {
        // The core narrows every number with its field name and range (diary::raw).
        let wide = |v: i32| i64::from(v);
        let raw = match d {
            EntryData::Glucose {
                reading,
                unit,
                context,
                hours_after_meal,
                source,
            } => cd::RawData::Glucose {
                reading: match reading {
                    GlucoseReading::Value { value } => cd::RawGlucose::Value(value),
                    GlucoseReading::Low => cd::RawGlucose::Low,
                    GlucoseReading::High => cd::RawGlucose::High,
                },
                unit: unit.into(),
                context: context.into(),
                hours_after_meal: hours_after_meal.map(wide),
                source: source.into(),
            },
            EntryData::BloodPressure {
                systolic,
                diastolic,
                pulse,
                arm,
                series,
            } => cd::RawData::BloodPressure {
                systolic: wide(systolic),
                diastolic: wide(diastolic),
                pulse: pulse.map(wide),
                arm: arm.map(Into::into),
                series: series.map(Into::into),
            },
            EntryData::Weight { kg } => cd::RawData::Weight { kg },
            EntryData::HeartRate { bpm } => cd::RawData::HeartRate { bpm: wide(bpm) },
            EntryData::Temperature { celsius } => cd::RawData::Temperature { celsius },
            EntryData::Symptom { code, severity } => cd::RawData::Symptom {
                code: code.into(),
                severity: wide(severity),
            },
            EntryData::Medication { name, dose } => cd::RawData::Medication { name, dose },
            EntryData::Mood { score } => cd::RawData::Mood { score: wide(score) },
            EntryData::Note => cd::RawData::Note,
        };
        Ok(raw.build()?)
    }
}

impl From<cd::EntryData> for EntryData {
    fn from(d: cd::EntryData) -> Self {
        match d {
            cd::EntryData::Glucose(g) => EntryData::Glucose {
                reading: match g.reading {
                    // Shown in the unit the user typed.
                    cd::GlucoseReading::Value { mmol_l } => GlucoseReading::Value {
                        value: match g.unit {
                            cd::GlucoseUnit::MmolL => mmol_l,
                            cd::GlucoseUnit::MgDl => cd::mg_dl(mmol_l) as f64,
                        },
                    },
                    cd::GlucoseReading::Low => GlucoseReading::Low,
                    cd::GlucoseReading::High => GlucoseReading::High,
                },
                unit: g.unit.into(),
                context: g.context.into(),
                hours_after_meal: g.hours_after_meal.map(i32::from),
                source: g.source.into(),
            },
            cd::EntryData::BloodPressure(bp) => EntryData::BloodPressure {
                systolic: bp.systolic.into(),
                diastolic: bp.diastolic.into(),
                pulse: bp.pulse.map(i32::from),
                arm: bp.arm.map(Into::into),
                series: bp.series.map(Into::into),
            },
            cd::EntryData::Weight { kg } => EntryData::Weight { kg },
            cd::EntryData::HeartRate { bpm } => EntryData::HeartRate { bpm: bpm.into() },
            cd::EntryData::Temperature { celsius } => EntryData::Temperature { celsius },
            cd::EntryData::Symptom { code, severity } => EntryData::Symptom {
                code: code.into(),
                severity: severity.into(),
            },
            cd::EntryData::Medication { name, dose } => EntryData::Medication { name, dose },
            cd::EntryData::Mood { score } => EntryData::Mood {
                score: score.into(),
            },
            cd::EntryData::Note => EntryData::Note,
        }
    }
}

// ---- records -------------------------------------------------------------------------------

/// What a shell sends to add or edit an entry.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewEntry {
    /// When it was measured; `None` = now (for an edit: keep the time).
    #[uniffi(default = None)]
    pub measured_at: Option<SystemTime>,
    /// The wall-clock offset at `measured_at`; `None` = the device time zone's offset then.
    #[uniffi(default = None)]
    pub utc_offset_seconds: Option<i32>,
    #[uniffi(default = None)]
    pub note: Option<String>,
    pub data: EntryData,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DiaryEntry {
    pub id: String,
    pub version_id: String,
    pub version: u32,
    pub kind: EntryKind,
    pub measured_at: SystemTime,
    pub utc_offset_seconds: i32,
    pub author: String,
    pub created_at: SystemTime,
    pub note: Option<String>,
    pub data: EntryData,
    /// Set when this version is a deletion (tombstone), with the reason given.
    pub deleted_reason: Option<String>,
    pub is_head: bool,
}

impl From<cd::Entry> for DiaryEntry {
    fn from(e: cd::Entry) -> Self {
        DiaryEntry {
            id: e.id.to_string(),
            version_id: e.version_id.to_string(),
            version: e.version,
            kind: e.kind().into(),
            measured_at: system_time(e.at.with_timezone(&Utc)),
            utc_offset_seconds: e.at.offset().local_minus_utc(),
            author: e.author,
            created_at: system_time(e.created_at),
            note: e.note,
            data: e.data.into(),
            deleted_reason: e.deleted.map(|d| d.reason),
            is_head: e.is_head,
        }
    }
}

#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct EntryQuery {
    /// Empty = every kind.
    #[uniffi(default = [])]
    pub kinds: Vec<EntryKind>,
    #[uniffi(default = None)]
    pub from: Option<SystemTime>,
    #[uniffi(default = None)]
    pub to: Option<SystemTime>,
    /// 0 = default page size (50).
    #[uniffi(default = 0)]
    pub limit: u32,
    #[uniffi(default = None)]
    pub after: Option<String>,
}

impl From<EntryQuery> for cd::EntryQuery {
    fn from(q: EntryQuery) -> Self {
        cd::EntryQuery {
            kinds: q.kinds.into_iter().map(Into::into).collect(),
            from: q.from.map(utc),
            to: q.to.map(utc),
            limit: q.limit,
            after: q.after,
        }
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct EntryPage {
    pub entries: Vec<DiaryEntry>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct ImportReport {
    pub format: CgmFormat,
    pub readings: u64,
    pub added: u64,
    pub duplicates: u64,
    pub skipped_other_rows: u64,
}

impl From<polku_core::import::ImportReport> for ImportReport {
    fn from(r: polku_core::import::ImportReport) -> Self {
        ImportReport {
            format: r.format.into(),
            readings: r.readings,
            added: r.added,
            duplicates: r.duplicates,
            skipped_other_rows: r.skipped_other_rows,
        }
    }
}

// ---- analytics -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Bands {
    pub very_low: f64,
    pub low: f64,
    pub in_range: f64,
    pub high: f64,
    pub very_high: f64,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Gmi {
    pub percent: f64,
    pub mmol_mol: f64,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Sufficiency {
    pub period_days: f64,
    pub nominal_interval_minutes: f64,
    pub possible_readings: u64,
    pub readings: u64,
    pub percent_captured: f64,
    pub sufficient: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HypoEvent {
    pub level: u8,
    pub start: SystemTime,
    pub end: SystemTime,
    pub duration_minutes: f64,
    pub nadir_mmol_l: Option<f64>,
    pub nadir_at: SystemTime,
    pub recovered: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AgpHour {
    pub hour: u8,
    pub readings: u64,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Basis {
    TimeWeighted,
    PerReading,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GlucoseSummary {
    pub basis: Basis,
    pub readings: u64,
    pub lo_markers: u64,
    pub hi_markers: u64,
    pub mean_mmol_l: Option<f64>,
    pub sd_mmol_l: Option<f64>,
    pub cv_percent: Option<f64>,
    pub gmi: Option<Gmi>,
    pub bands: Bands,
    pub below_range_percent: f64,
    pub above_range_percent: f64,
    pub readings_below_3_9: u64,
    pub readings_below_3_0: u64,
    pub sufficiency: Option<Sufficiency>,
    pub hypo_events: Vec<HypoEvent>,
    pub agp: Vec<AgpHour>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GlucoseReport {
    pub from: SystemTime,
    pub to: SystemTime,
    pub cgm: Option<GlucoseSummary>,
    pub meter: Option<GlucoseSummary>,
}

pub(crate) fn ms(t: i64) -> SystemTime {
    system_time(polku_core::time::from_ms(t))
}

impl From<ca::GlucoseSummary> for GlucoseSummary {
    fn from(s: ca::GlucoseSummary) -> Self {
        GlucoseSummary {
            basis: match s.basis {
                ca::Basis::TimeWeighted => Basis::TimeWeighted,
                ca::Basis::PerReading => Basis::PerReading,
            },
            readings: s.readings,
            lo_markers: s.lo_markers,
            hi_markers: s.hi_markers,
            mean_mmol_l: s.mean_mmol_l,
            sd_mmol_l: s.sd_mmol_l,
            cv_percent: s.cv_percent,
            gmi: s.gmi.map(|g| Gmi {
                percent: g.percent,
                mmol_mol: g.mmol_mol,
            }),
            bands: Bands {
                very_low: s.bands.very_low,
                low: s.bands.low,
                in_range: s.bands.in_range,
                high: s.bands.high,
                very_high: s.bands.very_high,
            },
            below_range_percent: s.below_range_percent,
            above_range_percent: s.above_range_percent,
            readings_below_3_9: s.readings_below_3_9,
            readings_below_3_0: s.readings_below_3_0,
            sufficiency: s.sufficiency.map(|x| Sufficiency {
                period_days: x.period_days,
                nominal_interval_minutes: x.nominal_interval_minutes,
                possible_readings: x.possible_readings,
                readings: x.readings,
                percent_captured: x.percent_captured,
                sufficient: x.sufficient,
                reason: x.reason,
            }),
            hypo_events: s
                .hypo_events
                .into_iter()
                .map(|e| HypoEvent {
                    level: e.level,
                    start: ms(e.start_ms),
                    end: ms(e.end_ms),
                    duration_minutes: e.duration_minutes,
                    nadir_mmol_l: e.nadir_mmol_l,
                    nadir_at: ms(e.nadir_ms),
                    recovered: e.recovered,
                })
                .collect(),
            agp: s
                .agp
                .into_iter()
                .map(|a| AgpHour {
                    hour: a.hour,
                    readings: a.readings,
                    p5: a.p5,
                    p25: a.p25,
                    p50: a.p50,
                    p75: a.p75,
                    p95: a.p95,
                })
                .collect(),
        }
    }
}

impl From<ca::GlucoseReport> for GlucoseReport {
    fn from(r: ca::GlucoseReport) -> Self {
        GlucoseReport {
            from: system_time(r.from),
            to: system_time(r.to),
            cgm: r.cgm.map(Into::into),
            meter: r.meter.map(Into::into),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HomeSeries {
    /// ISO date (YYYY-MM-DD) of the first and last day, local calendar.
    pub first_day: String,
    pub last_day: String,
    pub days: u32,
    pub readings: u32,
    pub mean_systolic: f64,
    pub mean_diastolic: f64,
    pub complete: bool,
    pub at_target: bool,
    pub at_high_risk_target: bool,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BpReport {
    pub readings: u64,
    pub mean_systolic: Option<f64>,
    pub mean_diastolic: Option<f64>,
    pub qualifying_days: u32,
    pub home_series: Option<HomeSeries>,
}

impl From<ca::BpReport> for BpReport {
    fn from(r: ca::BpReport) -> Self {
        BpReport {
            readings: r.readings,
            mean_systolic: r.mean_systolic,
            mean_diastolic: r.mean_diastolic,
            qualifying_days: r.qualifying_days,
            home_series: r.home_series.map(|s| HomeSeries {
                first_day: s.first_day.to_string(),
                last_day: s.last_day.to_string(),
                days: s.days,
                readings: s.readings,
                mean_systolic: s.mean_systolic,
                mean_diastolic: s.mean_diastolic,
                complete: s.complete,
                at_target: s.at_target,
                at_high_risk_target: s.at_high_risk_target,
            }),
        }
    }
}

// ---- questionnaires ------------------------------------------------------------------------

mirror_enum!(Instrument <=> polku_core::questionnaire::InstrumentId { Phq9, Gad7, Rbdi, Findrisc });
mirror_enum!(Language <=> polku_core::questionnaire::Lang { Fi, Sv, En });

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AnswerChoice {
    /// The value to send back in `answer` for this choice.
    pub value: i32,
    pub points: i32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QuestionnaireItem {
    pub link_id: String,
    pub text: String,
    pub choices: Vec<AnswerChoice>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ScoreBand {
    pub code: String,
    pub min: u32,
    pub max: u32,
    pub label: String,
}

/// An instrument as the respondent sees it in one language.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QuestionnaireDefinition {
    pub instrument: Instrument,
    pub language: Language,
    pub title: String,
    pub instructions: String,
    pub items: Vec<QuestionnaireItem>,
    pub bands: Vec<ScoreBand>,
    /// The publication the items and scoring follow.
    pub source: String,
    /// The wording version (recorded with each response given in this language).
    pub wording_version: String,
    /// False when the wording is not a validated version of the instrument: show a notice.
    pub wording_validated: bool,
    pub wording_source: String,
}

impl From<polku_core::questionnaire::Form> for QuestionnaireDefinition {
    fn from(f: polku_core::questionnaire::Form) -> Self {
        QuestionnaireDefinition {
            instrument: f.instrument.into(),
            language: f.language.into(),
            title: f.title,
            instructions: f.instructions,
            items: f
                .items
                .into_iter()
                .map(|i| QuestionnaireItem {
                    link_id: i.link_id.into(),
                    text: i.text,
                    choices: i
                        .options
                        .into_iter()
                        .map(|o| AnswerChoice {
                            value: o.value.into(),
                            points: o.points.into(),
                            text: o.text,
                        })
                        .collect(),
                })
                .collect(),
            bands: f
                .bands
                .into_iter()
                .map(|b| ScoreBand {
                    code: b.code.into(),
                    min: b.min,
                    max: b.max,
                    label: b.label,
                })
                .collect(),
            source: f.scoring_source.into(),
            wording_version: f.version,
            wording_validated: f.validated,
            wording_source: f.wording_source,
        }
    }
}

/// The care team's flag on a response (its `reason` is the clinical text): show it only on a
/// professional's device. The person's shell shows `SafetyClient.guidanceFor(result.id)`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CareTeamFlag {
    pub code: String,
    pub urgent: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QuestionnaireResult {
    pub id: String,
    pub instrument: Instrument,
    pub authored_at: SystemTime,
    pub utc_offset_seconds: i32,
    pub answers: Vec<i32>,
    pub total: u32,
    pub max_total: u32,
    pub band: String,
    pub flags: Vec<CareTeamFlag>,
    /// The language the form was shown in (`None` for responses from before it was recorded).
    pub language: Option<Language>,
    /// The wording version the form was shown in.
    pub wording_version: String,
}

impl From<polku_core::questionnaire::Response> for QuestionnaireResult {
    fn from(r: polku_core::questionnaire::Response) -> Self {
        QuestionnaireResult {
            id: r.id.to_string(),
            instrument: r.scored.instrument.into(),
            authored_at: system_time(r.authored.to_utc()),
            utc_offset_seconds: r.authored.offset().local_minus_utc(),
            answers: r.scored.answers.iter().map(|a| i32::from(*a)).collect(),
            total: r.scored.total,
            max_total: r.scored.max_total,
            band: r.scored.band,
            flags: r
                .scored
                .flags
                .into_iter()
                .map(|f| CareTeamFlag {
                    code: f.code,
                    urgent: f.urgent,
                    reason: f.reason,
                })
                .collect(),
            language: r.language.map(Into::into),
            wording_version: r.wording,
        }
    }
}

// ---- pathways ------------------------------------------------------------------------------

mirror_enum!(Actor <=> polku_core::pathway::Actor { Citizen, Professional });
mirror_enum!(StepState <=> polku_core::pathway::StepState { Locked, Available, InProgress, Done, Skipped, Overdue, Expired });

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PathwayDefinition {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub description: String,
    pub self_enroll: bool,
    pub steps: Vec<PathwayStepInfo>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PathwayStepInfo {
    pub id: String,
    pub title: String,
    /// education, measurement_period, questionnaire, appointment, professional_review, message
    pub kind: String,
    /// The text to show (education, appointment, review and message steps).
    pub content: Option<String>,
}

pub(crate) fn pathway_definition(
    d: &polku_core::pathway::Definition,
    lang: polku_core::questionnaire::Lang,
) -> PathwayDefinition {
    use polku_core::pathway::StepKind as K;
    PathwayDefinition {
        id: d.id.clone(),
        version: d.version,
        title: d.title.get(lang).into(),
        description: d.description.get(lang).into(),
        self_enroll: d.self_enroll,
        steps: d
            .steps
            .iter()
            .map(|s| {
                let (kind, content) = match &s.kind {
                    K::Education { content } => ("education", Some(content)),
                    K::MeasurementPeriod { .. } => ("measurement_period", None),
                    K::Questionnaire { .. } => ("questionnaire", None),
                    K::Appointment { content, .. } => ("appointment", Some(content)),
                    K::ProfessionalReview { content } => ("professional_review", Some(content)),
                    K::Message { content } => ("message", Some(content)),
                };
                PathwayStepInfo {
                    id: s.id.clone(),
                    title: s.title.get(lang).into(),
                    kind: kind.into(),
                    content: content.map(|c| c.get(lang).into()),
                }
            })
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Enrollment {
    pub id: String,
    pub definition_id: String,
    pub definition_version: u32,
    pub enrolled_at: SystemTime,
    pub enrolled_by: Actor,
}

impl From<polku_core::pathway::Enrollment> for Enrollment {
    fn from(e: polku_core::pathway::Enrollment) -> Self {
        Enrollment {
            id: e.id.to_string(),
            definition_id: e.definition_id,
            definition_version: e.definition_version,
            enrolled_at: system_time(e.enrolled_at),
            enrolled_by: e.enrolled_by.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StepStatus {
    pub step_id: String,
    pub state: StepState,
    pub opened_at: Option<SystemTime>,
    pub due_at: Option<SystemTime>,
    pub expires_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub skip_reason: Option<String>,
    pub progress_recorded: Option<u32>,
    pub progress_needed: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PathwayFlag {
    pub code: String,
    pub urgent: bool,
    pub since: SystemTime,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PathwayProgress {
    pub enrollment: Enrollment,
    pub steps: Vec<StepStatus>,
    pub flags: Vec<PathwayFlag>,
    pub finished: u32,
    pub total: u32,
    /// The newest published version; above `enrollment.definitionVersion`, offer `migrate`.
    pub latest_version: u32,
}

pub(crate) fn progress(
    p: polku_core::pathway::Progress,
    lang: polku_core::questionnaire::Lang,
) -> PathwayProgress {
    let t = |ms: Option<i64>| ms.map(self::ms);
    PathwayProgress {
        enrollment: p.enrollment.into(),
        steps: p
            .steps
            .into_iter()
            .map(|s| StepStatus {
                step_id: s.step_id,
                state: s.state.into(),
                opened_at: t(s.opened_ms),
                due_at: t(s.due_ms),
                expires_at: t(s.expires_ms),
                finished_at: t(s.finished_ms),
                skip_reason: s.skip_reason,
                progress_recorded: s.progress.map(|x| x.0),
                progress_needed: s.progress.map(|x| x.1),
            })
            .collect(),
        flags: flags(p.flags, lang),
        finished: p.finished,
        total: p.total,
        latest_version: p.latest_version,
    }
}

fn flags(
    f: Vec<polku_core::pathway::engine::RaisedFlag>,
    lang: polku_core::questionnaire::Lang,
) -> Vec<PathwayFlag> {
    f.into_iter()
        .map(|f| PathwayFlag {
            code: f.code,
            urgent: f.urgent,
            since: ms(f.since_ms),
            message: f.message.get(lang).into(),
        })
        .collect()
}

/// One enrollment in the care team's list, or (`enrollment = null`) a person on no pathway with
/// open safety flags.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CaseloadEntry {
    pub subject_id: String,
    pub enrollment: Option<Enrollment>,
    pub finished: u32,
    pub total: u32,
    /// Steps waiting for the citizen or the professional.
    pub open_steps: Vec<String>,
    pub overdue_steps: Vec<String>,
    pub expired_steps: Vec<String>,
    pub flags: Vec<PathwayFlag>,
    /// The person's unacknowledged safety flags (whatever raised them).
    pub safety_flags: Vec<SafetyFlag>,
    /// The person's conversation with the care team, when this device has it (open it from an
    /// urgent flag to contact them).
    pub conversation: Option<String>,
    pub unread_messages: u32,
    /// Urgent concerns workers raised at this person's visits in the last week.
    pub visit_concerns: u32,
}

pub(crate) fn caseload_entry(
    c: polku_core::pathway::ClientSummary,
    lang: polku_core::questionnaire::Lang,
) -> CaseloadEntry {
    CaseloadEntry {
        subject_id: c.subject,
        enrollment: c.enrollment.map(Into::into),
        finished: c.finished,
        total: c.total,
        open_steps: c.open_steps,
        overdue_steps: c.overdue_steps,
        expired_steps: c.expired_steps,
        flags: flags(c.flags, lang),
        safety_flags: c
            .safety_flags
            .into_iter()
            .map(|f| safety_flag(f, lang))
            .collect(),
        conversation: c.conversation,
        unread_messages: c.unread_messages,
        visit_concerns: c.visit_concerns,
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StepReminder {
    pub enrollment_id: String,
    pub step_id: String,
    pub at: SystemTime,
}

// ---- patient safety ------------------------------------------------------------------------

mirror_enum!(
    /// Which guidance the person gets.
    SafetyAdvice <=> polku_core::safety::Advice { SelfHarm, SevereDepression, LowGlucose, HighGlucose, HighBloodPressure, ChestPain }
);

/// What the person should do now, in their language, with the county's numbers.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyGuidance {
    pub advice: SafetyAdvice,
    pub title: String,
    /// What to do, in order.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyAcknowledgement {
    pub id: String,
    /// The professional's user id.
    pub by: String,
    pub at: SystemTime,
    /// What was done.
    pub note: String,
}

/// An urgent flag: open until a professional acknowledges it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SafetyFlag {
    pub id: String,
    pub subject_id: String,
    /// The rule's stable code (`phq9_item9`, `glucose_very_low`, ... docs/safety.md).
    pub code: String,
    pub urgent: bool,
    /// When the value was measured or the questionnaire answered.
    pub at: SystemTime,
    pub utc_offset_seconds: i32,
    /// `diary_entry` or `questionnaire_response`.
    pub source: String,
    /// The diary entry or questionnaire response that raised it.
    pub record_id: String,
    /// The value that raised it ("2.2 mmol/L (meter)", "item 9 = 3").
    pub detail: String,
    /// The care team's clinical text: show it only on a professional's device.
    pub care_team_message: String,
    pub acknowledgements: Vec<SafetyAcknowledgement>,
}

pub(crate) fn safety_flag(
    f: polku_core::safety::SafetyFlag,
    lang: polku_core::questionnaire::Lang,
) -> SafetyFlag {
    SafetyFlag {
        id: f.id.to_string(),
        subject_id: f.subject,
        code: f.rule.code().into(),
        urgent: f.urgent,
        at: system_time(f.at.to_utc()),
        utc_offset_seconds: f.at.offset().local_minus_utc(),
        source: f.source.into(),
        record_id: f.record_id.to_string(),
        detail: f.detail,
        care_team_message: f.rule.care_team_text().get(lang).into(),
        acknowledgements: f
            .acknowledgements
            .into_iter()
            .map(|a| SafetyAcknowledgement {
                id: a.id.to_string(),
                by: a.by,
                at: system_time(a.at),
                note: a.note,
            })
            .collect(),
    }
}
