//! Pathway definitions: versioned JSON files (schema in docs/pathways.md). Loading checks every
//! field and reports the file, the step id and the field of each problem. A definition is
//! identified by `(id, version)`; an enrollment pins the version it started with.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ImportProblem, Result};
use crate::instrument::{InstrumentId, Lang};

/// A text in Finnish, Swedish and English (all three required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub fi: String,
    pub sv: String,
    pub en: String,
}

impl Texts {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fi => &self.fi,
            Lang::Sv => &self.sv,
            Lang::En => &self.en,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub id: String,
    pub version: u32,
    pub title: Texts,
    pub description: Texts,
    /// Whether a citizen may start it without a professional.
    #[serde(default)]
    pub self_enroll: bool,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub flags: Vec<FlagRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub title: Texts,
    pub kind: StepKind,
    /// All must hold before the step opens; none = open from enrollment.
    #[serde(default)]
    pub unlock: Vec<Condition>,
    /// Days after the step opens by which it should be done (then it is overdue).
    #[serde(default)]
    pub due_days: Option<u32>,
    /// Days after the step opens after which it can no longer be done.
    #[serde(default)]
    pub expires_days: Option<u32>,
    /// Local times ("07:30") at which to remind while the step is open.
    #[serde(default)]
    pub remind_at: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    /// Content to read; done when the reader acknowledges it.
    Education { content: Texts },
    /// Completed automatically from diary entries.
    MeasurementPeriod { measurement: Measurement },
    /// Done when the questionnaire is answered after the step opened.
    Questionnaire { instrument: InstrumentId },
    /// A visit or lab test; `by` says who may mark it done.
    Appointment { content: Texts, by: CompletedBy },
    /// A professional reviews the results.
    ProfessionalReview { content: Texts },
    /// The citizen sends a message to the care team.
    Message { content: Texts },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedBy {
    Professional,
    Citizen,
    Either,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Measurement {
    /// A fasting glucose reading (meter or typed) on `days` different local days.
    FastingGlucoseDays { days: u32 },
    /// A Käypä hoito home blood-pressure series of at least `days` consecutive days.
    HomeBpSeries { days: u32 },
    /// A symptom entry with one of `codes` on `days` different local days (severity 0 = none, counts).
    SymptomDays {
        codes: Vec<crate::diary::SymptomCode>,
        days: u32,
    },
}

/// A condition on time, steps or data since enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// These steps are done or skipped.
    AfterSteps { steps: Vec<String> },
    /// This many days have passed since enrollment.
    AfterDays { days: u32 },
    /// The latest response of `instrument` is in one of `bands`.
    QuestionnaireBand {
        instrument: InstrumentId,
        bands: Vec<String>,
    },
    /// The latest response of `instrument` has item `item` (1-based) at `min` or more.
    QuestionnaireItem {
        instrument: InstrumentId,
        item: u32,
        min: u8,
    },
    /// The mean of the latest complete home BP series is at or above the limits.
    HomeBpMeanAtLeast { systolic: f64, diastolic: f64 },
    /// The mean of fasting glucose readings is at or above `mmol_l`.
    FastingGlucoseMeanAtLeast { mmol_l: f64 },
    /// A glucose reading below `mmol_l` (e.g. 3.9).
    GlucoseBelow { mmol_l: f64 },
    /// A hypoglycaemic event in CGM data: level 1 (≥ 15 min below 3.9) or 2 (below 3.0), as
    /// analytics::glucose detects it (Danne et al. 2017).
    HypoglycaemicEvent { level: u8 },
    /// Any of these holds.
    Any { of: Vec<Condition> },
}

/// A flag raised to the care team when its condition holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    pub code: String,
    pub urgent: bool,
    pub when: Condition,
    pub message: Texts,
}

/// Every definition version known to this device.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_key: BTreeMap<(String, u32), Definition>,
}

const BUILTIN: &[(&str, &str)] = &[
    (
        "t2d-care-path@1.json",
        include_str!("../../pathways/t2d-care-path@1.json"),
    ),
    (
        "home-bp-follow-up@1.json",
        include_str!("../../pathways/home-bp-follow-up@1.json"),
    ),
    (
        "adolescent-mood@1.json",
        include_str!("../../pathways/adolescent-mood@1.json"),
    ),
    // v2 (docs/pathways.md): FINDRISC, a risk score for developing type 2 diabetes, replaced by
    // a home blood-pressure series; the mood path opens its follow-ups and same-day referral on
    // R-BDI item 7 too.
    (
        "t2d-care-path@2.json",
        include_str!("../../pathways/t2d-care-path@2.json"),
    ),
    (
        "adolescent-mood@2.json",
        include_str!("../../pathways/adolescent-mood@2.json"),
    ),
];

impl Registry {
    /// The shipped pathways, parsed and validated once per process (not on every open).
    pub fn builtin_shared() -> Result<std::sync::Arc<Registry>> {
        static BUILTIN_REGISTRY: std::sync::OnceLock<std::sync::Arc<Registry>> =
            std::sync::OnceLock::new();
        if let Some(r) = BUILTIN_REGISTRY.get() {
            return Ok(r.clone());
        }
        let r = std::sync::Arc::new(Registry::builtin()?);
        Ok(BUILTIN_REGISTRY.get_or_init(|| r).clone())
    }

    /// The pathways shipped with the app.
    pub fn builtin() -> Result<Registry> {
        let mut r = Registry::default();
        for (file, text) in BUILTIN {
            r.add(parse(file, text)?)?;
        }
        Ok(r)
    }

    /// Adds the `*.json` definitions of `dir` (an operator's published pathways).
    pub fn load_dir(&mut self, dir: &Path) -> Result<()> {
        for f in crate::content::json_files(dir)? {
            let text = std::fs::read_to_string(&f)?;
            self.add(parse(&f.display().to_string(), &text)?)?;
        }
        Ok(())
    }

    pub fn add(&mut self, d: Definition) -> Result<()> {
        let key = (d.id.clone(), d.version);
        if let Some(existing) = self.by_key.get(&key) {
            if existing != &d {
                return Err(Error::Conflict(format!("pathway {} version {} is already published with different content: publish a new version", d.id, d.version)));
            }
        }
        self.by_key.insert(key, d);
        Ok(())
    }

    pub fn get(&self, id: &str, version: u32) -> Result<&Definition> {
        self.by_key
            .get(&(id.to_owned(), version))
            .ok_or_else(|| Error::NotFound {
                what: "pathway definition",
                id: format!("{id}@{version}"),
            })
    }

    pub fn latest(&self, id: &str) -> Result<&Definition> {
        self.by_key
            .range((id.to_owned(), 0)..=(id.to_owned(), u32::MAX))
            .next_back()
            .map(|(_, d)| d)
            .ok_or_else(|| Error::NotFound {
                what: "pathway definition",
                id: id.to_owned(),
            })
    }

    /// The newest version of every pathway.
    pub fn all_latest(&self) -> Vec<&Definition> {
        let mut out: BTreeMap<&str, &Definition> = BTreeMap::new();
        for ((id, _), d) in &self.by_key {
            out.insert(id, d);
        }
        out.into_values().collect()
    }
}

/// Parses and validates one definition file; every problem names the file, step and field.
pub fn parse(file: &str, text: &str) -> Result<Definition> {
    let d: Definition = serde_json::from_str(text).map_err(|e| {
        Error::Import(vec![ImportProblem {
            line: e.line() as u64,
            message: format!(
                "{file}: {}",
                e.to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("invalid JSON")
            ),
        }])
    })?;
    let problems = check(&d);
    if problems.is_empty() {
        Ok(d)
    } else {
        Err(Error::Import(
            problems
                .into_iter()
                .map(|(step, field, msg)| ImportProblem {
                    line: 0,
                    message: format!("{file}: step `{step}`, field `{field}`: {msg}"),
                })
                .collect(),
        ))
    }
}

type Problem = (String, String, String);

fn check(d: &Definition) -> Vec<Problem> {
    let mut p: Vec<Problem> = Vec::new();
    let mut add =
        |step: &str, field: &str, msg: String| p.push((step.to_owned(), field.to_owned(), msg));
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !id_ok(&d.id) {
        add(
            "-",
            "id",
            format!("`{}` must be 1–64 characters of a–z, 0–9 and -", d.id),
        );
    }
    if d.version == 0 {
        add("-", "version", "must be 1 or more".into());
    }
    texts("-", "title", &d.title, &mut add);
    texts("-", "description", &d.description, &mut add);
    if d.steps.is_empty() {
        add("-", "steps", "a pathway needs at least one step".into());
    }
    let mut seen = HashSet::new();
    for s in &d.steps {
        if !id_ok(&s.id) {
            add(
                &s.id,
                "id",
                "must be 1–64 characters of a–z, 0–9 and -".into(),
            );
        }
        if !seen.insert(s.id.as_str()) {
            add(&s.id, "id", "appears twice".into());
        }
    }
    let order: Vec<&str> = d.steps.iter().map(|s| s.id.as_str()).collect();
    for (i, s) in d.steps.iter().enumerate() {
        texts(&s.id, "title", &s.title, &mut add);
        match &s.kind {
            StepKind::Education { content }
            | StepKind::Appointment { content, .. }
            | StepKind::ProfessionalReview { content }
            | StepKind::Message { content } => texts(&s.id, "kind.content", content, &mut add),
            StepKind::MeasurementPeriod { measurement } => {
                let days = match measurement {
                    Measurement::FastingGlucoseDays { days }
                    | Measurement::HomeBpSeries { days } => *days,
                    Measurement::SymptomDays { codes, days } => {
                        if codes.is_empty() {
                            add(
                                &s.id,
                                "kind.measurement.codes",
                                "at least one symptom code".into(),
                            );
                        }
                        *days
                    }
                };
                if !(1..=90).contains(&days) {
                    add(
                        &s.id,
                        "kind.measurement.days",
                        format!("{days} is outside 1–90"),
                    );
                }
                if let Measurement::HomeBpSeries { days } = measurement {
                    if !(4..=7).contains(days) {
                        add(
                            &s.id,
                            "kind.measurement.days",
                            format!("{days}: a Käypä hoito home series is 4–7 days"),
                        );
                    }
                }
            }
            StepKind::Questionnaire { .. } => {}
        }
        for (k, c) in s.unlock.iter().enumerate() {
            condition(&s.id, &format!("unlock[{k}]"), c, &order[..i], &mut add);
        }
        if let (Some(due), Some(exp)) = (s.due_days, s.expires_days) {
            if exp < due {
                add(
                    &s.id,
                    "expires_days",
                    format!("{exp} is before due_days {due}"),
                );
            }
        }
        for (k, t) in s.remind_at.iter().enumerate() {
            if chrono::NaiveTime::parse_from_str(t, "%H:%M").is_err() {
                add(
                    &s.id,
                    &format!("remind_at[{k}]"),
                    format!("`{t}` is not a time like 07:30"),
                );
            }
        }
    }
    let mut codes = HashSet::new();
    for (k, f) in d.flags.iter().enumerate() {
        if !codes.insert(f.code.as_str()) || f.code.is_empty() {
            add(
                "-",
                &format!("flags[{k}].code"),
                format!("`{}` is empty or repeated", f.code),
            );
        }
        texts("-", &format!("flags[{k}].message"), &f.message, &mut add);
        condition("-", &format!("flags[{k}].when"), &f.when, &order, &mut add);
    }
    p
}

fn texts(step: &str, field: &str, t: &Texts, add: &mut impl FnMut(&str, &str, String)) {
    for (lang, s) in [("fi", &t.fi), ("sv", &t.sv), ("en", &t.en)] {
        if s.trim().is_empty() {
            add(step, &format!("{field}.{lang}"), "text is empty".into());
        }
    }
}

/// `earlier`: the steps a condition may refer to (those before it: no cycles by construction).
fn condition(
    step: &str,
    field: &str,
    c: &Condition,
    earlier: &[&str],
    add: &mut impl FnMut(&str, &str, String),
) {
    match c {
        Condition::AfterSteps { steps } => {
            if steps.is_empty() {
                add(
                    step,
                    &format!("{field}.steps"),
                    "name at least one step".into(),
                );
            }
            for s in steps {
                if !earlier.contains(&s.as_str()) {
                    add(
                        step,
                        &format!("{field}.steps"),
                        format!("`{s}` is not an earlier step of this pathway"),
                    );
                }
            }
        }
        Condition::AfterDays { days } if *days > 3650 => add(
            step,
            &format!("{field}.days"),
            format!("{days} is over 3650"),
        ),
        Condition::AfterDays { .. } => {}
        Condition::QuestionnaireBand { instrument, bands } => {
            let known: Vec<&str> = instrument
                .instrument()
                .bands
                .iter()
                .map(|b| b.code)
                .collect();
            for b in bands {
                if !known.contains(&b.as_str()) {
                    add(
                        step,
                        &format!("{field}.bands"),
                        format!(
                            "`{b}` is not a band of {} ({})",
                            instrument.as_str(),
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        Condition::QuestionnaireItem {
            instrument,
            item,
            min,
        } => {
            let items = instrument.instrument().items;
            match items.get((*item as usize).wrapping_sub(1)) {
                None => add(
                    step,
                    &format!("{field}.item"),
                    format!("{item} is outside 1–{}", items.len()),
                ),
                Some(it) => {
                    if !it.options.iter().any(|o| o.value >= *min) {
                        add(
                            step,
                            &format!("{field}.min"),
                            format!("no answer of {} reaches {min}", it.link_id),
                        );
                    }
                }
            }
        }
        Condition::HomeBpMeanAtLeast {
            systolic,
            diastolic,
        } => {
            if !(50.0..=300.0).contains(systolic) || !(20.0..=200.0).contains(diastolic) {
                add(
                    step,
                    field,
                    format!("{systolic}/{diastolic} is outside the blood-pressure limits"),
                );
            }
        }
        Condition::FastingGlucoseMeanAtLeast { mmol_l } | Condition::GlucoseBelow { mmol_l } => {
            if !(0.6..=33.3).contains(mmol_l) {
                add(
                    step,
                    &format!("{field}.mmol_l"),
                    format!("{mmol_l} is outside 0.6–33.3"),
                );
            }
        }
        Condition::HypoglycaemicEvent { level } => {
            if !(1..=2).contains(level) {
                add(
                    step,
                    &format!("{field}.level"),
                    format!("{level}: level 1 (below 3.9) or 2 (below 3.0)"),
                );
            }
        }
        Condition::Any { of } => {
            if of.is_empty() {
                add(
                    step,
                    &format!("{field}.of"),
                    "name at least one condition".into(),
                );
            }
            for (k, c) in of.iter().enumerate() {
                condition(step, &format!("{field}.of[{k}]"), c, earlier, add);
            }
        }
    }
}
