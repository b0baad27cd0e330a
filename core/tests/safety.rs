//! Patient safety (issue 16): each finding of the clinical review as a test. Self-harm answers
//! and danger values raise urgent flags whatever pathway the person is on, the person gets
//! guidance (never the care team's text), flags stay until a professional acknowledges them, and
//! a later, better answer neither clears a flag nor re-locks a step opened for it.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use polku_core::diary::*;
use polku_core::pathway::{Actor, StepState};
use polku_core::questionnaire::{InstrumentId, Lang};
use polku_core::safety::{Advice, Rule, SafetyFlag};
use polku_core::{Error, OpenOptions, Polku};

fn rules(flags: &[SafetyFlag]) -> Vec<Rule> {
    let mut r: Vec<Rule> = flags.iter().map(|f| f.rule).collect();
    r.sort_by_key(|r| r.code());
    r
}

fn answer(p: &Polku, id: InstrumentId, a: &[i64]) -> polku_core::questionnaire::Response {
    p.questionnaires().answer(id, Lang::Fi, a, None).unwrap()
}

/// Makes this profile a professional's device, as enrolling with a professional's code does.
fn as_professional(p: &Polku) {
    p.store()
        .write(|tx| {
            tx.execute(
                "INSERT INTO profile (key, value) VALUES ('sync.role', 'professional')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
}

fn add(p: &Polku, data: EntryData) -> Entry {
    p.diary().add(NewEntry::new(data)).unwrap()
}

fn glucose_in(value: f64, unit: GlucoseUnit, source: GlucoseSource) -> EntryData {
    let mmol_l = match unit {
        GlucoseUnit::MmolL => value,
        GlucoseUnit::MgDl => value / MG_DL_PER_MMOL_L,
    };
    EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value { mmol_l },
        unit,
        context: MealContext::Other,
        hours_after_meal: None,
        source,
    })
}

fn marker(reading: GlucoseReading) -> EntryData {
    EntryData::Glucose(Glucose {
        reading,
        unit: GlucoseUnit::MmolL,
        context: MealContext::Other,
        hours_after_meal: None,
        source: GlucoseSource::Meter,
    })
}

/// Finding 1: item 9 on no pathway, and on the type 2 diabetes pathway, reaches the caseload.
#[test]
fn phq9_item9_reaches_the_caseload_on_no_pathway_and_on_any_pathway() {
    let p = profile();
    let r = answer(&p.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 3]);
    let flags = p.polku.safety().raised_by(r.id).unwrap();
    assert_eq!(rules(&flags), vec![Rule::Phq9Item9]);
    let caseload = p.polku.caseload().unwrap();
    assert_eq!(caseload.len(), 1, "a person on no pathway is listed");
    assert!(caseload[0].enrollment.is_none());
    assert_eq!(rules(&caseload[0].safety_flags), vec![Rule::Phq9Item9]);
    assert!(caseload[0].urgent());

    // On the diabetes pathway, with another person ahead alphabetically and overdue: the flagged
    // one still comes first.
    let q = profile();
    let other = q.polku.for_subject("aaa-first").unwrap();
    other
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    q.polku
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    q.clock.set(q.polku.now() + Duration::days(5));
    answer(&q.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 3]);
    let caseload = q.polku.caseload().unwrap();
    assert_eq!(caseload[0].subject, q.polku.subject_id());
    assert_eq!(rules(&caseload[0].safety_flags), vec![Rule::Phq9Item9]);
    assert!(caseload[1].safety_flags.is_empty());
    assert!(!caseload[1].overdue_steps.is_empty());
}

/// Finding 2: the person gets guidance (112, the crisis line), never the care team's text.
#[test]
fn the_person_gets_guidance_not_the_care_teams_text() {
    let p = profile();
    let r = answer(&p.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let s = p.polku.safety();
    let flags = s.raised_by(r.id).unwrap();
    for lang in [Lang::Fi, Lang::Sv, Lang::En] {
        let g = s.guidance(&flags, lang);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].advice, Advice::SelfHarm);
        let text = format!("{} {}", g[0].title, g[0].steps.join(" "));
        assert!(text.contains("112"), "{text}");
        assert!(text.contains("09 2525 0111"), "{text}");
        let staff = Rule::Phq9Item9.care_team_text();
        assert!(!text.contains(staff.get(lang)), "{text}");
        assert!(
            !text.to_lowercase().contains("contact the person"),
            "{text}"
        );
    }
}

/// The county replaces the numbers; the guidance uses them.
#[test]
fn county_numbers_come_from_the_content_folder() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(
        content.join("safety.json"),
        r#"{"emergency": "112", "medical_helpline": "116 117", "crisis_line": "0800 123 456"}"#,
    )
    .unwrap();
    let p = Polku::open_with(
        &dir.path().join("p.db"),
        &key(),
        OpenOptions::default().with_content_dir(&content),
    )
    .unwrap();
    let r = answer(&p, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 2]);
    let flags = p.safety().raised_by(r.id).unwrap();
    let g = p.safety().guidance(&flags, Lang::En);
    assert!(g[0].steps.join(" ").contains("0800 123 456"));
}

/// Finding 3: R-BDI item 7 at a self-harm statement is flagged, and the adolescent pathway opens
/// its follow-up questionnaires and the same-day referral.
#[test]
fn rbdi_item7_flags_and_opens_the_referral() {
    let p = profile();
    let paths = p.polku.pathways();
    let e = paths
        .enroll("adolescent-mood", Actor::Professional)
        .unwrap();
    assert_eq!(e.definition_version, 2);
    let mut a = [1i64; 13];
    a[6] = 5; // "I would harm myself if I could"; the rest minimal: total 3, "none"
    let r = answer(&p.polku, InstrumentId::Rbdi, &a);
    assert_eq!(r.scored.band, "none");
    assert_eq!(
        rules(&p.polku.safety().raised_by(r.id).unwrap()),
        vec![Rule::RbdiItem7]
    );
    let pr = paths.progress(e.id).unwrap();
    let state = |id: &str| pr.steps.iter().find(|s| s.step_id == id).unwrap().state;
    assert_eq!(state("phq9"), StepState::Available);
    assert_eq!(state("gad7"), StepState::Available);
    assert_eq!(state("referral"), StepState::Available);
    assert!(p.polku.caseload().unwrap()[0].urgent());
}

/// Finding 4: a later, better answer neither clears the flag nor re-locks the referral.
#[test]
fn flags_are_sticky_and_steps_stay_open() {
    let p = profile();
    let paths = p.polku.pathways();
    let e = paths
        .enroll("adolescent-mood", Actor::Professional)
        .unwrap();
    answer(
        &p.polku,
        InstrumentId::Rbdi,
        &[3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2],
    );
    p.clock.set(p.polku.now() + Duration::minutes(10));
    answer(&p.polku, InstrumentId::Phq9, &[1, 1, 0, 1, 0, 0, 0, 0, 2]);
    let referral = || {
        paths
            .progress(e.id)
            .unwrap()
            .steps
            .into_iter()
            .find(|s| s.step_id == "referral")
            .unwrap()
            .state
    };
    assert_eq!(referral(), StepState::Available);
    p.clock.set(p.polku.now() + Duration::minutes(10));
    answer(&p.polku, InstrumentId::Phq9, &[0; 9]);
    assert_eq!(referral(), StepState::Available, "not re-locked");
    let open = p.polku.safety().flags(false).unwrap();
    assert_eq!(rules(&open), vec![Rule::Phq9Item9], "not cleared");
    let c = p.polku.caseload().unwrap();
    assert_eq!(rules(&c[0].safety_flags), vec![Rule::Phq9Item9]);
}

/// Acknowledging: only on a professional's device, with what was done; then the flag leaves the
/// caseload and stays in the history with who, when and the note.
#[test]
fn a_professional_acknowledges_with_what_was_done() {
    let p = profile();
    let r = answer(&p.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let flag = p.polku.safety().raised_by(r.id).unwrap().remove(0);
    let e = p
        .polku
        .safety()
        .acknowledge(flag.id, "soitettu")
        .unwrap_err();
    assert!(
        matches!(&e, Error::Validation { field, .. } if field == "role"),
        "a citizen's device cannot acknowledge: {e}"
    );
    as_professional(&p.polku);
    let e = p.polku.safety().acknowledge(flag.id, "  ").unwrap_err();
    assert!(matches!(&e, Error::Validation { field, .. } if field == "note"));
    let done = p
        .polku
        .safety()
        .acknowledge(flag.id, "Soitettu, tapaaminen huomenna klo 9")
        .unwrap();
    assert_eq!(done.len(), 1);
    let ack = &done[0].acknowledgements[0];
    assert_eq!(ack.note, "Soitettu, tapaaminen huomenna klo 9");
    assert_eq!(ack.by, p.polku.subject_id(), "the author of this device");
    assert!(p.polku.safety().flags(false).unwrap().is_empty());
    assert_eq!(p.polku.safety().flags(true).unwrap().len(), 1);
    assert!(p.polku.caseload().unwrap().is_empty());
    assert!(matches!(
        p.polku.safety().acknowledge(flag.id, "again"),
        Err(Error::Conflict(_))
    ));
    // A new answer with item 9 raises a new flag.
    p.clock.set(p.polku.now() + Duration::days(1));
    answer(&p.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(p.polku.safety().flags(false).unwrap().len(), 1);
}

/// A night of CGM readings below 3.0 is one matter: acknowledging the latest covers the earlier
/// open ones of the same rule, and nothing of another rule.
#[test]
fn acknowledging_covers_earlier_flags_of_the_same_rule() {
    let p = profile();
    as_professional(&p.polku);
    let t = hki(2026, 11, 23, 3, 0);
    let news: Vec<NewEntry> = (0..4)
        .map(|i| {
            NewEntry::new(glucose_in(2.7, GlucoseUnit::MmolL, GlucoseSource::Cgm))
                .at(t + Duration::minutes(5 * i))
        })
        .collect();
    p.polku.diary().add_many(news).unwrap();
    add(&p.polku, bp(185, 100, None));
    let open = p.polku.safety().flags(false).unwrap();
    assert_eq!(open.len(), 5);
    let latest_low = open
        .iter()
        .filter(|f| f.rule == Rule::GlucoseVeryLow)
        .max_by_key(|f| f.at)
        .unwrap();
    let done = p
        .polku
        .safety()
        .acknowledge(latest_low.id, "lääkitys tarkistettu")
        .unwrap();
    assert_eq!(done.len(), 4);
    assert_eq!(
        rules(&p.polku.safety().flags(false).unwrap()),
        vec![Rule::BpVeryHigh]
    );
}

/// Finding 5: chest pain 9/10 with BP 230/130 on the home-BP pathway raises both, and tells the
/// person to call 112.
#[test]
fn red_flags_of_the_heart_raise_and_tell_the_person() {
    let p = profile();
    p.polku
        .pathways()
        .enroll("home-bp-follow-up", Actor::Professional)
        .unwrap();
    let pain = add(
        &p.polku,
        EntryData::Symptom {
            code: SymptomCode::ChestPain,
            severity: 9,
        },
    );
    let pressure = add(&p.polku, bp(230, 130, None));
    let s = p.polku.safety();
    let raised: Vec<SafetyFlag> = [pain.id, pressure.id]
        .iter()
        .flat_map(|id| s.raised_by(*id).unwrap())
        .collect();
    assert_eq!(
        rules(&raised),
        vec![Rule::BpVeryHigh, Rule::ChestPainSevere]
    );
    let g = s.guidance(&raised, Lang::Fi);
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].advice, Advice::HighBloodPressure);
    assert_eq!(g[1].advice, Advice::ChestPain);
    assert!(g[1].title.contains("112"));
    let c = p.polku.caseload().unwrap();
    assert!(c[0].urgent() && c[0].enrollment.is_some());
}

/// Finding 6: danger values of glucose from any source and severe questionnaire scores are urgent.
#[test]
fn danger_values_and_severe_scores_are_urgent() {
    let p = profile();
    let cases = [
        (
            glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter),
            Some(Rule::GlucoseVeryLow),
        ),
        (
            glucose_in(2.9, GlucoseUnit::MmolL, GlucoseSource::Manual),
            Some(Rule::GlucoseVeryLow),
        ),
        (
            glucose_in(53.0, GlucoseUnit::MgDl, GlucoseSource::Meter),
            Some(Rule::GlucoseVeryLow),
        ),
        (
            glucose_in(3.0, GlucoseUnit::MmolL, GlucoseSource::Meter),
            None,
        ),
        (marker(GlucoseReading::Low), Some(Rule::GlucoseVeryLow)),
        (marker(GlucoseReading::High), Some(Rule::GlucoseVeryHigh)),
        (
            glucose_in(30.0, GlucoseUnit::MmolL, GlucoseSource::Meter),
            Some(Rule::GlucoseVeryHigh),
        ),
        (
            glucose_in(19.9, GlucoseUnit::MmolL, GlucoseSource::Meter),
            None,
        ),
        (
            glucose_in(2.5, GlucoseUnit::MmolL, GlucoseSource::Cgm),
            Some(Rule::GlucoseVeryLow),
        ),
    ];
    for (data, want) in cases {
        let e = add(&p.polku, data.clone());
        let got = rules(&p.polku.safety().raised_by(e.id).unwrap());
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{data:?}");
    }
    let severe_rbdi = answer(
        &p.polku,
        InstrumentId::Rbdi,
        &[5, 5, 5, 5, 5, 5, 1, 5, 1, 1, 1, 1, 1],
    );
    assert_eq!(severe_rbdi.scored.total, 21);
    assert_eq!(
        rules(&p.polku.safety().raised_by(severe_rbdi.id).unwrap()),
        vec![Rule::RbdiSevere]
    );
    let severe_phq = answer(&p.polku, InstrumentId::Phq9, &[3, 3, 3, 3, 2, 2, 2, 2, 0]);
    assert_eq!(
        rules(&p.polku.safety().raised_by(severe_phq.id).unwrap()),
        vec![Rule::Phq9Severe]
    );
    // The diabetes pathway's own flags add to these, never replace them.
    let g = p
        .polku
        .safety()
        .guidance(&p.polku.safety().flags(false).unwrap(), Lang::En);
    let advice: Vec<Advice> = g.iter().map(|g| g.advice).collect();
    assert_eq!(
        advice,
        vec![
            Advice::SevereDepression,
            Advice::LowGlucose,
            Advice::HighGlucose
        ]
    );
    assert!(g[1].steps[0].contains("15–20 g"));
}

/// An edit keeps the flag of the version it replaced; a delete raises nothing new and clears
/// nothing (a professional acknowledges "entered in error").
#[test]
fn edits_and_deletes_clear_nothing() {
    let p = profile();
    let e = add(
        &p.polku,
        glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter),
    );
    p.polku
        .diary()
        .edit(
            e.id,
            NewEntry::new(glucose_in(5.2, GlucoseUnit::MmolL, GlucoseSource::Meter)),
        )
        .unwrap();
    p.polku.diary().delete(e.id, "väärä mittari").unwrap();
    assert_eq!(
        rules(&p.polku.safety().flags(false).unwrap()),
        vec![Rule::GlucoseVeryLow]
    );
}

/// History typed in weeks later, or an old export, is not a same-day matter.
#[test]
fn back_entered_history_raises_no_urgent_flag() {
    let p = profile();
    let old = p
        .polku
        .diary()
        .add(
            NewEntry::new(glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter))
                .at(hki(2026, 11, 1, 8, 0)),
        )
        .unwrap();
    assert!(p.polku.safety().raised_by(old.id).unwrap().is_empty());
    let recent = p
        .polku
        .diary()
        .add(
            NewEntry::new(glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter))
                .at(hki(2026, 11, 20, 8, 0)),
        )
        .unwrap();
    assert_eq!(p.polku.safety().raised_by(recent.id).unwrap().len(), 1);
}

/// A database written before the rules gets its flags when it is opened.
#[test]
fn flags_are_raised_for_records_stored_before_the_rules() {
    let p = profile();
    let e = add(
        &p.polku,
        glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter),
    );
    let r = answer(&p.polku, InstrumentId::Phq9, &[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.polku
        .store()
        .write(|tx| {
            tx.execute_batch(
                "DELETE FROM safety_flag; DELETE FROM profile WHERE key = 'safety.rules';",
            )?;
            Ok(())
        })
        .unwrap();
    let path = p.dir.path().join("polku.db");
    let before = p.polku.safety().flags(false).unwrap();
    assert!(before.is_empty());
    drop(p.polku);
    let reopened = Polku::open(&path, &key()).unwrap();
    let s = reopened.safety();
    assert_eq!(
        rules(&s.raised_by(e.id).unwrap()),
        vec![Rule::GlucoseVeryLow]
    );
    assert_eq!(rules(&s.raised_by(r.id).unwrap()), vec![Rule::Phq9Item9]);
}

/// Finding 7: the diabetes pathway no longer asks for FINDRISC; readings are banded in the unit
/// they were recorded in; GMI is withheld from insufficient data.
#[test]
fn smaller_findings() {
    let p = profile();
    let paths = p.polku.pathways();
    let e = paths.enroll("t2d-care-path", Actor::Citizen).unwrap();
    assert_eq!(e.definition_version, 2);
    let steps: Vec<String> = paths
        .progress(e.id)
        .unwrap()
        .steps
        .into_iter()
        .map(|s| s.step_id)
        .collect();
    assert!(!steps.contains(&"findrisc".to_owned()), "{steps:?}");
    assert!(steps.contains(&"bp-series".to_owned()), "{steps:?}");

    // 181 mg/dL is high, 251 very high, 180 in range, 70 in range, 69 low, 53 very low.
    let q = profile();
    let t = hki(2026, 11, 23, 8, 0);
    for (i, v) in [181.0, 251.0, 180.0, 70.0, 69.0, 53.0].iter().enumerate() {
        q.polku
            .diary()
            .add(
                NewEntry::new(glucose_in(*v, GlucoseUnit::MgDl, GlucoseSource::Meter))
                    .at(t + Duration::minutes(i as i64)),
            )
            .unwrap();
    }
    let from = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
    let m = q
        .polku
        .analytics()
        .glucose(from, to)
        .unwrap()
        .meter
        .unwrap();
    let share = 100.0 / 6.0;
    assert!((m.bands.high - share).abs() < 1e-9, "{:?}", m.bands);
    assert!((m.bands.very_high - share).abs() < 1e-9, "{:?}", m.bands);
    assert!(
        (m.bands.in_range - 2.0 * share).abs() < 1e-9,
        "{:?}",
        m.bands
    );
    assert!((m.bands.low - share).abs() < 1e-9, "{:?}", m.bands);
    assert!((m.bands.very_low - share).abs() < 1e-9, "{:?}", m.bands);
    assert_eq!((m.readings_below_3_9, m.readings_below_3_0), (2, 1));

    // Three days of CGM: insufficient, no GMI.
    let r = profile();
    let start = hki(2026, 11, 20, 0, 0);
    let news: Vec<NewEntry> = (0..3 * 96)
        .map(|i| {
            NewEntry::new(glucose_in(7.0, GlucoseUnit::MmolL, GlucoseSource::Cgm))
                .at(start + Duration::minutes(15 * i))
        })
        .collect();
    r.polku.diary().add_many(news).unwrap();
    let c = r
        .polku
        .analytics()
        .glucose(start.to_utc(), start.to_utc() + Duration::days(3))
        .unwrap()
        .cgm
        .unwrap();
    assert!(!c.sufficiency.unwrap().sufficient);
    assert!(c.gmi.is_none(), "GMI withheld");
    assert_eq!(c.mean_mmol_l, Some(7.0));
}

/// docs/safety.md lists every rule with its threshold and source, and both texts in every
/// language exactly as the app shows them (with the default numbers).
#[test]
fn docs_list_every_rule_and_both_texts() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/safety.md")).unwrap();
    let n = polku_core::safety::Numbers::default();
    for rule in Rule::ALL {
        for part in [rule.code(), rule.threshold(), rule.source()] {
            assert!(doc.contains(part), "docs/safety.md lacks `{part}`");
        }
        for lang in [Lang::Fi, Lang::Sv, Lang::En] {
            let staff = rule.care_team_text();
            assert!(doc.contains(staff.get(lang)), "lacks {:?}", staff.get(lang));
            let g = polku_core::safety::guidance::guidance(rule.advice(), lang, &n);
            for text in std::iter::once(&g.title).chain(&g.steps) {
                assert!(doc.contains(text.as_str()), "lacks {text:?}");
            }
        }
    }
}

/// Each version raises its own flags: the CLI and shells show what the new version raised.
#[test]
fn flags_name_the_version_that_raised_them() {
    let p = profile();
    let e = add(
        &p.polku,
        glucose_in(2.2, GlucoseUnit::MmolL, GlucoseSource::Meter),
    );
    let v2 = p
        .polku
        .diary()
        .edit(
            e.id,
            NewEntry::new(glucose_in(25.0, GlucoseUnit::MmolL, GlucoseSource::Meter)),
        )
        .unwrap();
    let flags = p.polku.safety().raised_by(e.id).unwrap();
    let of = |v: uuid::Uuid| {
        rules(
            &flags
                .iter()
                .filter(|f| f.version_id == v)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(of(e.version_id), vec![Rule::GlucoseVeryLow]);
    assert_eq!(of(v2.version_id), vec![Rule::GlucoseVeryHigh]);
}
