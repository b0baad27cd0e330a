//! The safety rules: which answers and measurements need the care team the same day. They are
//! independent of care pathways (a pathway may add flags, never remove these) and pure: one
//! record in, the rules it breaks out. Every device applies them to every record it writes or
//! receives, so a flag's id (UUIDv5 of rule and record) is the same everywhere.
//!
//! docs/safety.md lists every rule with its threshold, its source and both of its texts.

use serde::Serialize;

use crate::instrument::{InstrumentId, Scored, Text};
use polku_protocol::entry::{mg_dl, EntryData, GlucoseReading, GlucoseUnit, SymptomCode};

/// A rule that raises an urgent flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// PHQ-9 item 9 (thoughts of death or self-harm) answered 1 or more.
    Phq9Item9,
    /// R-BDI item 7 at a statement about harming oneself or wishing to die.
    RbdiItem7,
    /// PHQ-9 total 20–27 (severe depression).
    Phq9Severe,
    /// R-BDI total 16–39 (severe depressive symptoms).
    RbdiSevere,
    /// Level 2 hypoglycaemia: below 3.0 mmol/L (54 mg/dL) or LO, from any source.
    GlucoseVeryLow,
    /// Severe hyperglycaemia: at or above 20.0 mmol/L (360 mg/dL), or HI.
    GlucoseVeryHigh,
    /// Blood pressure at or above 180 systolic or 110 diastolic.
    BpVeryHigh,
    /// Chest pain rated 7–10 of 10.
    ChestPainSevere,
}

/// What the person is told to do now (guidance.rs holds the texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    SelfHarm,
    SevereDepression,
    LowGlucose,
    HighGlucose,
    HighBloodPressure,
    ChestPain,
}

// Thresholds, each with its source (../shared/clinical-reference.md, "Safety rules").

/// PHQ-9 item 9 ≥ 1 is urgent to the care team (Kroenke, Spitzer & Williams 2001, J Gen Intern
/// Med 16:606; clinical-reference.md PHQ-9 row).
pub const PHQ9_ITEM9_MIN: u8 = 1;
/// PHQ-9 20–27 is severe depression (Kroenke 2001); clinical-reference.md asks same-day contact.
pub const PHQ9_SEVERE_MIN: u32 = 20;
/// R-BDI item 7 (thoughts of harming oneself), form values 1–5: 3 "thoughts of harming myself,
/// but I would not act on them", 4 "I would like to die", 5 "I would harm myself if I could".
/// Every statement about harming oneself or wishing to die counts (as any PHQ-9 item 9 answer
/// above 0 does; Raitasalo, THL R-BDI form; clinical-reference.md, "Safety rules").
pub const RBDI_ITEM7_MIN: u8 = 3;
/// R-BDI 16–39 is severe (Raitasalo 2007, THL); same-day contact (clinical-reference.md).
pub const RBDI_SEVERE_MIN: u32 = 16;
/// Level 2 hypoglycaemia: < 3.0 mmol/L / < 54 mg/dL (International Consensus on Time in Range,
/// Battelino et al., Diabetes Care 2019;42:1593; hypoglycaemia levels of the International
/// Hypoglycaemia Study Group, Diabetes Care 2017;40:155).
pub const GLUCOSE_VERY_LOW_TENTHS: i64 = 30;
pub const GLUCOSE_VERY_LOW_MG_DL: i64 = 54;
/// Severe hyperglycaemia at home: 20.0 mmol/L (360 mg/dL), or a meter's HI (> 33.3 mmol/L).
/// *open* in clinical-reference.md ("HI readings ... raise an urgent flag"); chosen above the
/// 14–15 mmol/L at which Finnish sick-day guidance asks for a ketone check (Terveyskylä
/// Diabetestalo, "Sairauspäivät") and well below the ≥ 30 mmol/L that defines the hyperosmolar
/// hyperglycaemic state (JBDS-IP, Mustafa et al., Diabet Med 2023;40:e15005), so the care team
/// hears of it before that.
pub const GLUCOSE_VERY_HIGH_TENTHS: i64 = 200;
pub const GLUCOSE_VERY_HIGH_MG_DL: i64 = 360;
/// Very high blood pressure: ≥ 180 systolic or ≥ 110 diastolic, grade 3 hypertension, which
/// needs care without delay (Käypä hoito "Kohonnut verenpaine" 2020, ESC/ESH grading). Repeated
/// readings ≥ 200/130 are a hypertensive crisis: emergency care even without symptoms; with chest
/// pain, breathlessness, stroke signs or vision symptoms, 112 (Harjola & Suonsyrjä, Duodecim
/// 2024;140:396; Terveyskylä, "När är blodtrycket farligt högt?"). The guidance says both.
pub const BP_VERY_HIGH_SYSTOLIC: u16 = 180;
pub const BP_VERY_HIGH_DIASTOLIC: u16 = 110;
/// Severe chest pain: 7–10 on the 0–10 numeric rating scale (its severe band). Sudden severe
/// chest pain, or pain not relieved by rest or nitrate within 10 minutes, is a 112 call (Käypä
/// hoito "Sepelvaltimotautikohtaus" 2022, as in the Siun sote care pathway built on it).
pub const CHEST_PAIN_SEVERE_MIN: u8 = 7;
/// A record measured or answered more than this long before it was written (back-entered
/// history, an old CGM export) raises no urgent flag: the flag asks for same-day contact about
/// something happening now. *open*: 14 days, the length of one CGM sensor.
pub const RECENT_MS: i64 = 14 * 86_400_000;

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::Phq9Item9,
        Rule::RbdiItem7,
        Rule::Phq9Severe,
        Rule::RbdiSevere,
        Rule::GlucoseVeryLow,
        Rule::GlucoseVeryHigh,
        Rule::BpVeryHigh,
        Rule::ChestPainSevere,
    ];

    /// The stable code (stored, synced, printed by the CLI and the FFI).
    pub fn code(self) -> &'static str {
        match self {
            Rule::Phq9Item9 => "phq9_item9",
            Rule::RbdiItem7 => "rbdi_item7",
            Rule::Phq9Severe => "phq9_severe",
            Rule::RbdiSevere => "rbdi_severe",
            Rule::GlucoseVeryLow => "glucose_very_low",
            Rule::GlucoseVeryHigh => "glucose_very_high",
            Rule::BpVeryHigh => "bp_very_high",
            Rule::ChestPainSevere => "chest_pain_severe",
        }
    }

    pub fn parse(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn advice(self) -> Advice {
        match self {
            Rule::Phq9Item9 | Rule::RbdiItem7 => Advice::SelfHarm,
            Rule::Phq9Severe | Rule::RbdiSevere => Advice::SevereDepression,
            Rule::GlucoseVeryLow => Advice::LowGlucose,
            Rule::GlucoseVeryHigh => Advice::HighGlucose,
            Rule::BpVeryHigh => Advice::HighBloodPressure,
            Rule::ChestPainSevere => Advice::ChestPain,
        }
    }

    /// The care team's text (never shown to the person; see guidance.rs for theirs).
    pub fn care_team_text(self) -> Text {
        let t = |fi, sv, en| Text { fi, sv, en };
        match self {
            Rule::Phq9Item9 => t(
                "PHQ-9 kysymys 9 ≥ 1: ajatuksia kuolemasta tai itsensä vahingoittamisesta. Ota yhteyttä tänään ja arvioi itsetuhoriski.",
                "PHQ-9 fråga 9 ≥ 1: tankar på döden eller på att skada sig själv. Ta kontakt i dag och bedöm suicidrisken.",
                "PHQ-9 item 9 ≥ 1: thoughts of death or self-harm. Contact the person today and assess suicide risk.",
            ),
            Rule::RbdiItem7 => t(
                "R-BDI kysymys 7: ajatuksia itsensä vahingoittamisesta tai kuolemantoive. Ota yhteyttä tänään ja arvioi itsetuhoriski.",
                "R-BDI fråga 7: tankar på att skada sig själv eller önskan att dö. Ta kontakt i dag och bedöm suicidrisken.",
                "R-BDI item 7: thoughts of self-harm or a wish to die. Contact the person today and assess suicide risk.",
            ),
            Rule::Phq9Severe => t(
                "PHQ-9 20–27: vaikea masennus. Ota yhteyttä tänään.",
                "PHQ-9 20–27: svår depression. Ta kontakt i dag.",
                "PHQ-9 20–27: severe depression. Contact the person today.",
            ),
            Rule::RbdiSevere => t(
                "R-BDI 16–39: vaikea masentuneisuus. Ota yhteyttä tänään.",
                "R-BDI 16–39: svår nedstämdhet. Ta kontakt i dag.",
                "R-BDI 16–39: severe depressive symptoms. Contact the person today.",
            ),
            Rule::GlucoseVeryLow => t(
                "Tason 2 hypoglykemia (alle 3,0 mmol/l tai LO). Ota yhteyttä tänään ja tarkista lääkitys.",
                "Hypoglykemi nivå 2 (under 3,0 mmol/l eller LO). Ta kontakt i dag och kontrollera medicineringen.",
                "Level 2 hypoglycaemia (below 3.0 mmol/L or LO). Contact the person today and check the medication.",
            ),
            Rule::GlucoseVeryHigh => t(
                "Vaikea hyperglykemia (20 mmol/l tai yli, tai HI). Ota yhteyttä tänään: ketoasidoosin tai hyperosmolaarisen tilan riski.",
                "Svår hyperglykemi (20 mmol/l eller mer, eller HI). Ta kontakt i dag: risk för ketoacidos eller hyperosmolärt tillstånd.",
                "Severe hyperglycaemia (20 mmol/L or more, or HI). Contact the person today: risk of ketoacidosis or a hyperosmolar state.",
            ),
            Rule::BpVeryHigh => t(
                "Verenpaine 180/110 mmHg tai yli. Ota yhteyttä tänään; oireiden kanssa päivystykseen.",
                "Blodtryck 180/110 mmHg eller mer. Ta kontakt i dag; med symtom till jouren.",
                "Blood pressure 180/110 mmHg or more. Contact the person today; with symptoms, emergency care.",
            ),
            Rule::ChestPainSevere => t(
                "Voimakas rintakipu (7–10/10). Ota yhteyttä heti; mahdollinen sepelvaltimokohtaus.",
                "Kraftig bröstsmärta (7–10/10). Ta kontakt genast; möjlig akut kranskärlssjukdom.",
                "Severe chest pain (7–10 of 10). Contact the person now; possible acute coronary syndrome.",
            ),
        }
    }

    /// The threshold in words, in the unit the value is recorded in.
    pub fn threshold(self) -> &'static str {
        match self {
            Rule::Phq9Item9 => "PHQ-9 item 9 answered 1, 2 or 3",
            Rule::RbdiItem7 => "R-BDI item 7 answered 3, 4 or 5 (thoughts of harming oneself, wishing to die, would harm oneself)",
            Rule::Phq9Severe => "PHQ-9 total 20–27",
            Rule::RbdiSevere => "R-BDI total 16–39",
            Rule::GlucoseVeryLow => "glucose < 3.0 mmol/L (on 0.1) or < 54 mg/dL (whole), or LO; meter, CGM or typed",
            Rule::GlucoseVeryHigh => "glucose ≥ 20.0 mmol/L or ≥ 360 mg/dL, or HI",
            Rule::BpVeryHigh => "systolic ≥ 180 or diastolic ≥ 110 mmHg",
            Rule::ChestPainSevere => "chest pain rated 7–10 of 10",
        }
    }

    /// Where the threshold comes from (docs/safety.md has the full references).
    pub fn source(self) -> &'static str {
        match self {
            Rule::Phq9Item9 | Rule::Phq9Severe => "Kroenke, Spitzer & Williams 2001 (PHQ-9)",
            Rule::RbdiItem7 | Rule::RbdiSevere => "Raitasalo, THL R-BDI form and scoring",
            Rule::GlucoseVeryLow => "International Consensus on Time in Range 2019 (level 2)",
            Rule::GlucoseVeryHigh => "Terveyskylä sick days; JBDS-IP HHS guideline 2023",
            Rule::BpVeryHigh => "Käypä hoito: Kohonnut verenpaine 2020 (grade 3, ≥ 180/110)",
            Rule::ChestPainSevere => "Käypä hoito: Sepelvaltimotautikohtaus 2022; NRS 7–10",
        }
    }
}

/// One rule a record breaks, with what the care team reads about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    /// The value that broke it, as the care team reads it ("2.2 mmol/L", "item 9 = 3").
    pub detail: String,
}

fn finding(rule: Rule, detail: String) -> Finding {
    Finding { rule, detail }
}

/// Whether a record measured at `at_ms` and written at `created_ms` is about now.
pub fn recent(at_ms: i64, created_ms: i64) -> bool {
    created_ms.saturating_sub(at_ms) <= RECENT_MS
}

/// The rules a diary entry's content breaks (the caller skips tombstones and old records).
pub fn entry(data: &EntryData) -> Vec<Finding> {
    match data {
        EntryData::Glucose(g) => {
            // In the unit it was recorded in: whole mg/dL against the mg/dL thresholds, mmol/L
            // on 0.1 against the mmol/L ones (clinical-reference.md, CGM / diary metrics).
            let (very_low, very_high, shown) = match (g.reading, g.unit) {
                (GlucoseReading::Low, _) => (true, false, "LO".to_owned()),
                (GlucoseReading::High, _) => (false, true, "HI".to_owned()),
                (GlucoseReading::Value { mmol_l }, GlucoseUnit::MgDl) => {
                    let mg = mg_dl(mmol_l);
                    (
                        mg < GLUCOSE_VERY_LOW_MG_DL,
                        mg >= GLUCOSE_VERY_HIGH_MG_DL,
                        format!("{mg} mg/dL"),
                    )
                }
                (GlucoseReading::Value { mmol_l }, GlucoseUnit::MmolL) => {
                    let t = crate::analytics::glucose::tenths(mmol_l);
                    (
                        t < GLUCOSE_VERY_LOW_TENTHS,
                        t >= GLUCOSE_VERY_HIGH_TENTHS,
                        format!("{:.1} mmol/L", t as f64 / 10.0),
                    )
                }
            };
            let shown = format!("{shown} ({})", g.source.as_str());
            let mut out = Vec::new();
            if very_low {
                out.push(finding(Rule::GlucoseVeryLow, shown.clone()));
            }
            if very_high {
                out.push(finding(Rule::GlucoseVeryHigh, shown));
            }
            out
        }
        EntryData::BloodPressure(bp)
            if bp.systolic >= BP_VERY_HIGH_SYSTOLIC || bp.diastolic >= BP_VERY_HIGH_DIASTOLIC =>
        {
            vec![finding(
                Rule::BpVeryHigh,
                format!("{}/{} mmHg", bp.systolic, bp.diastolic),
            )]
        }
        EntryData::Symptom {
            code: SymptomCode::ChestPain,
            severity,
        } if *severity >= CHEST_PAIN_SEVERE_MIN => {
            vec![finding(
                Rule::ChestPainSevere,
                format!("chest pain {severity}/10"),
            )]
        }
        _ => Vec::new(),
    }
}

/// The rules a scored questionnaire response breaks.
pub fn response(s: &Scored) -> Vec<Finding> {
    let mut out = Vec::new();
    match s.instrument {
        InstrumentId::Phq9 => {
            if let Some(&a) = s.answers.get(8).filter(|a| **a >= PHQ9_ITEM9_MIN) {
                out.push(finding(Rule::Phq9Item9, format!("item 9 = {a}")));
            }
            if s.total >= PHQ9_SEVERE_MIN {
                out.push(finding(Rule::Phq9Severe, format!("total {}", s.total)));
            }
        }
        InstrumentId::Rbdi => {
            if let Some(&a) = s.answers.get(6).filter(|a| **a >= RBDI_ITEM7_MIN) {
                out.push(finding(Rule::RbdiItem7, format!("item 7 = {a}")));
            }
            if s.total >= RBDI_SEVERE_MIN {
                out.push(finding(Rule::RbdiSevere, format!("total {}", s.total)));
            }
        }
        InstrumentId::Gad7 | InstrumentId::Findrisc => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use polku_protocol::entry::{
        BloodPressure, Glucose, GlucoseSource, MealContext, MG_DL_PER_MMOL_L,
    };

    fn glucose(reading: GlucoseReading, unit: GlucoseUnit) -> EntryData {
        EntryData::Glucose(Glucose {
            reading,
            unit,
            context: MealContext::Other,
            hours_after_meal: None,
            source: GlucoseSource::Meter,
        })
    }

    fn rules(d: &EntryData) -> Vec<Rule> {
        entry(d).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn glucose_boundaries_in_the_recorded_unit() {
        let mmol = |v| glucose(GlucoseReading::Value { mmol_l: v }, GlucoseUnit::MmolL);
        let mg = |v: f64| {
            glucose(
                GlucoseReading::Value {
                    mmol_l: v / MG_DL_PER_MMOL_L,
                },
                GlucoseUnit::MgDl,
            )
        };
        assert_eq!(rules(&mmol(2.94)), vec![Rule::GlucoseVeryLow]);
        assert!(rules(&mmol(2.95)).is_empty(), "2.95 rounds to 3.0");
        assert!(rules(&mmol(19.9)).is_empty());
        assert_eq!(rules(&mmol(20.0)), vec![Rule::GlucoseVeryHigh]);
        assert_eq!(rules(&mg(53.0)), vec![Rule::GlucoseVeryLow]);
        assert!(rules(&mg(54.0)).is_empty());
        assert!(rules(&mg(359.0)).is_empty());
        assert_eq!(rules(&mg(360.0)), vec![Rule::GlucoseVeryHigh]);
        assert_eq!(
            rules(&glucose(GlucoseReading::Low, GlucoseUnit::MmolL)),
            vec![Rule::GlucoseVeryLow]
        );
        assert_eq!(
            rules(&glucose(GlucoseReading::High, GlucoseUnit::MgDl)),
            vec![Rule::GlucoseVeryHigh]
        );
    }

    #[test]
    fn blood_pressure_and_chest_pain_boundaries() {
        let bp = |s, d| {
            EntryData::BloodPressure(BloodPressure {
                systolic: s,
                diastolic: d,
                pulse: None,
                arm: None,
                series: None,
            })
        };
        assert!(rules(&bp(179, 109)).is_empty());
        assert_eq!(rules(&bp(180, 90)), vec![Rule::BpVeryHigh]);
        assert_eq!(rules(&bp(150, 110)), vec![Rule::BpVeryHigh]);
        let pain = |code, severity| EntryData::Symptom { code, severity };
        assert!(rules(&pain(SymptomCode::ChestPain, 6)).is_empty());
        assert_eq!(
            rules(&pain(SymptomCode::ChestPain, 7)),
            vec![Rule::ChestPainSevere]
        );
        assert!(rules(&pain(SymptomCode::Dizziness, 10)).is_empty());
    }

    #[test]
    fn questionnaire_items_and_totals() {
        let s = |id, a: &[i64]| crate::instrument::score(id, a).unwrap();
        let codes = |s: &Scored| response(s).into_iter().map(|f| f.rule).collect::<Vec<_>>();
        assert!(codes(&s(InstrumentId::Phq9, &[0; 9])).is_empty());
        assert_eq!(
            codes(&s(InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
            vec![Rule::Phq9Item9]
        );
        assert_eq!(
            codes(&s(InstrumentId::Phq9, &[3, 3, 3, 3, 2, 2, 2, 2, 0])),
            vec![Rule::Phq9Severe],
            "total 20"
        );
        assert!(codes(&s(InstrumentId::Phq9, &[3, 3, 3, 3, 2, 2, 2, 1, 0])).is_empty());
        let mut rbdi = [1i64; 13];
        rbdi[6] = 2;
        assert!(codes(&s(InstrumentId::Rbdi, &rbdi)).is_empty());
        for v in 3..=5 {
            rbdi[6] = v;
            assert_eq!(codes(&s(InstrumentId::Rbdi, &rbdi)), vec![Rule::RbdiItem7]);
        }
        let severe = [5i64, 5, 5, 5, 5, 5, 1, 5, 1, 1, 1, 1, 1];
        assert_eq!(
            codes(&s(InstrumentId::Rbdi, &severe)),
            vec![Rule::RbdiSevere]
        );
    }

    #[test]
    fn only_recent_records_raise() {
        let day = 86_400_000;
        assert!(recent(0, 14 * day));
        assert!(!recent(0, 14 * day + 1));
        assert!(recent(5 * day, 0), "a time ahead of the writing is recent");
    }
}
