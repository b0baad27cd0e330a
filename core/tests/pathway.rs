mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use polku_core::diary::*;
use polku_core::pathway::definition::{parse, Registry};
use polku_core::pathway::{Actor, StepState};
use polku_core::questionnaire::{InstrumentId, Lang};
use polku_core::Error;

fn states(p: &polku_core::pathway::Progress) -> Vec<(String, StepState)> {
    p.steps
        .iter()
        .map(|s| (s.step_id.clone(), s.state))
        .collect()
}

fn state_of(p: &polku_core::pathway::Progress, step: &str) -> StepState {
    p.steps.iter().find(|s| s.step_id == step).unwrap().state
}

fn fasting(v: f64) -> EntryData {
    EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value { mmol_l: v },
        unit: GlucoseUnit::MmolL,
        context: MealContext::Fasting,
        hours_after_meal: None,
        source: GlucoseSource::Meter,
    })
}

#[test]
fn builtin_definitions_load_and_validate() {
    let r = Registry::builtin().unwrap();
    let ids: Vec<&str> = r.all_latest().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["adolescent-mood", "home-bp-follow-up", "t2d-care-path"]
    );
}

#[test]
fn invalid_definitions_name_file_step_and_field() {
    let text = include_str!("../pathways/t2d-care-path@1.json")
        .replace(
            "\"steps\": [\"glucose-profile\"]",
            "\"steps\": [\"no-such-step\"]",
        )
        .replace("\"days\": 7 }", "\"days\": 0 }")
        .replace("\"remind_at\": [\"07:30\"]", "\"remind_at\": [\"7.30am\"]");
    match parse("pathways/t2d@1.json", &text) {
        Err(Error::Import(problems)) => {
            let msgs: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
            assert!(msgs.iter().any(|m| m.contains("pathways/t2d@1.json: step `hba1c`, field `unlock[0].steps`: `no-such-step` is not an earlier step")), "{msgs:#?}");
            assert!(
                msgs.iter().any(|m| m.contains(
                    "step `glucose-profile`, field `kind.measurement.days`: 0 is outside 1–90"
                )),
                "{msgs:#?}"
            );
            assert!(
                msgs.iter()
                    .any(|m| m.contains("step `glucose-profile`, field `remind_at[0]`")),
                "{msgs:#?}"
            );
        }
        other => panic!("expected problems, got {other:?}"),
    }
    let missing_sv = include_str!("../pathways/home-bp-follow-up@1.json").replacen(
        "\"sv\": \"Uppföljning av blodtrycket hemma\",",
        "",
        1,
    );
    let e = parse("bp.json", &missing_sv).unwrap_err().to_string();
    assert!(e.contains("bp.json") && e.contains("sv"), "{e}");
    // A step referring to a later step (a cycle in the making) is refused.
    let later = include_str!("../pathways/t2d-care-path@1.json").replacen(
        "\"steps\": [\"welcome\"]",
        "\"steps\": [\"nurse-review\"]",
        1,
    );
    assert!(parse("t.json", &later)
        .unwrap_err()
        .to_string()
        .contains("not an earlier step"));
}

/// Home BP double readings of `day` morning (07:00, 07:02) and of the evening before (20:00,
/// 20:02), days 3–6 of the series only.
fn add_bp_mornings_and_evenings(
    p: &Profile,
    day: i64,
    at_day: &dyn Fn(i64, i64) -> chrono::DateTime<Utc>,
) {
    let local = |d: i64, h: i64, m: i64| {
        polku_core::time::in_zone(
            at_day(d, h - 9) + Duration::minutes(m),
            chrono_tz::Europe::Helsinki,
        )
    };
    let mut news = Vec::new();
    if (3..=6).contains(&day) {
        for m in [0, 2] {
            news.push(NewEntry::new(bp(128, 80, Some(BpSeries::Morning))).at(local(day, 7, m)));
        }
    }
    if (3..=6).contains(&(day - 1)) {
        for m in [0, 2] {
            news.push(
                NewEntry::new(bp(126, 79, Some(BpSeries::Evening))).at(local(day - 1, 20, m)),
            );
        }
    }
    p.polku.diary().add_many(news).unwrap();
}

#[test]
fn ninety_days_of_the_t2d_path_day_by_day() {
    let start = Utc.with_ymd_and_hms(2026, 9, 1, 6, 0, 0).unwrap(); // 09:00 Helsinki
    let p = profile_at(start);
    let paths = p.polku.pathways();
    let e = paths.enroll("t2d-care-path", Actor::Citizen).unwrap();
    let at_day = |d: i64, h: i64| start + Duration::days(d) + Duration::hours(h);
    let mut log = Vec::new();
    for day in 0..90 {
        p.clock.set(at_day(day, 0));
        match day {
            1 => {
                paths.complete(e.id, "welcome", Actor::Citizen).unwrap();
            }
            2 => {
                paths.complete(e.id, "t2d-basics", Actor::Citizen).unwrap();
            }
            // Fasting readings on days 3–5 and 7–10 (a missed day 6): the 7th day is day 10.
            // Home BP double readings each morning of days 3–6 and each evening (typed the next
            // morning): the 4-day series is complete on day 7.
            3..=5 | 7..=10 => {
                add_bp_mornings_and_evenings(&p, day, &at_day);
                p.polku
                    .diary()
                    .add(NewEntry::new(fasting(6.4 + day as f64 / 10.0)).at(
                        polku_core::time::in_zone(at_day(day, -1), chrono_tz::Europe::Helsinki),
                    ))
                    .unwrap();
            }
            6 => add_bp_mornings_and_evenings(&p, day, &at_day),
            12 => {
                // The HbA1c visit done by the nurse.
                paths.complete(e.id, "hba1c", Actor::Professional).unwrap();
            }
            15 => {
                assert!(
                    matches!(
                        paths.complete(e.id, "nurse-review", Actor::Citizen),
                        Err(Error::Validation { .. })
                    ),
                    "only a professional reviews"
                );
                paths
                    .complete(e.id, "nurse-review", Actor::Professional)
                    .unwrap();
            }
            _ => {}
        }
        let pr = paths.progress(e.id).unwrap();
        let flags: Vec<String> = pr.flags.iter().map(|f| f.code.clone()).collect();
        log.push((day, states(&pr), flags));
    }
    let at = |d: usize, step: &str| log[d].1.iter().find(|(s, _)| s == step).unwrap().1;
    let flags = |d: usize| log[d].2.clone();
    use StepState::*;
    assert_eq!(at(0, "welcome"), Available);
    assert_eq!(at(0, "t2d-basics"), Locked);
    assert_eq!(at(1, "welcome"), Done);
    assert_eq!(at(1, "t2d-basics"), Available);
    assert_eq!(
        at(2, "glucose-profile"),
        Available,
        "opens when the basics are read"
    );
    assert_eq!(at(2, "bp-series"), Available);
    assert_eq!(at(6, "bp-series"), InProgress);
    assert_eq!(
        at(7, "bp-series"),
        Done,
        "four consecutive days of the series"
    );
    assert_eq!(at(3, "glucose-profile"), InProgress);
    assert_eq!(
        at(9, "glucose-profile"),
        InProgress,
        "6 of 7 days (day 6 missed)"
    );
    assert_eq!(
        at(10, "glucose-profile"),
        Done,
        "completed from the diary on the 7th day with a reading"
    );
    assert_eq!(at(10, "hba1c"), Available);
    assert_eq!(
        at(11, "nurse-review"),
        Locked,
        "waits for HbA1c and the BP series"
    );
    assert_eq!(at(12, "nurse-review"), Available);
    assert_eq!(at(15, "nurse-review"), Done);
    assert_eq!(at(15, "message-care-team"), Available);
    // The message step is due 14 days after it opened (day 15) and never sent: overdue from day 30.
    assert_eq!(at(29, "message-care-team"), Available);
    assert_eq!(at(30, "message-care-team"), Overdue);
    assert_eq!(
        at(89, "message-care-team"),
        Overdue,
        "no expiry set: stays overdue"
    );
    // Fasting readings 6.7, 6.8, 6.9 (days 3–5): mean below 7.0, no flag. By day 10 the mean
    // 6.4 + (3+4+5+7+8+9+10)/70 ≈ 7.06 ≥ 7.0: flagged to the nurse while the readings are recent.
    assert!(flags(5).is_empty());
    assert_eq!(flags(10), vec!["fasting-mean-high".to_string()]);
    assert_eq!(
        flags(33),
        vec!["fasting-mean-high".to_string()],
        "day 10's reading is 23 days old"
    );
    // Measurement flags look at the last 30 days: once every reading is older, the flag is gone.
    assert!(flags(41).is_empty(), "{:?}", flags(41));
    let pr = paths.progress(e.id).unwrap();
    assert_eq!((pr.finished, pr.total), (6, 7));
    let gp = pr
        .steps
        .iter()
        .find(|s| s.step_id == "glucose-profile")
        .unwrap();
    assert_eq!(
        gp.progress,
        Some((7, 7)),
        "a recorded completion still shows the period as full"
    );
}

#[test]
fn overdue_and_expired_measurement_period() {
    let start = Utc.with_ymd_and_hms(2026, 9, 1, 6, 0, 0).unwrap();
    let p = profile_at(start);
    let paths = p.polku.pathways();
    let e = paths
        .enroll("home-bp-follow-up", Actor::Professional)
        .unwrap();
    assert!(
        matches!(
            paths.enroll("home-bp-follow-up", Actor::Citizen),
            Err(Error::Validation { .. })
        ),
        "assigned by the care team only"
    );
    paths
        .complete(e.id, "how-to-measure", Actor::Citizen)
        .unwrap();
    // bp-series: due 9 days after opening, expires after 30.
    p.clock.set(start + Duration::days(9) + Duration::hours(1));
    assert_eq!(
        state_of(&paths.progress(e.id).unwrap(), "bp-series"),
        StepState::Overdue
    );
    p.clock.set(start + Duration::days(31));
    assert_eq!(
        state_of(&paths.progress(e.id).unwrap(), "bp-series"),
        StepState::Expired
    );
    assert!(
        matches!(
            paths.skip(e.id, "bp-series", "ei mittaria"),
            Err(Error::Conflict(_))
        ),
        "expired steps are closed"
    );
}

#[test]
fn home_bp_series_completes_and_flags_above_target() {
    let start = Utc.with_ymd_and_hms(2026, 9, 1, 4, 0, 0).unwrap(); // 07:00 Helsinki (summer time)
    let p = profile_at(start);
    let paths = p.polku.pathways();
    let e = paths
        .enroll("home-bp-follow-up", Actor::Professional)
        .unwrap();
    paths
        .complete(e.id, "how-to-measure", Actor::Citizen)
        .unwrap();
    for day in 0..4 {
        let d = 2 + day;
        p.clock
            .set(Utc.with_ymd_and_hms(2026, 9, d, 19, 0, 0).unwrap());
        let mut news = Vec::new();
        for (h, m, s, dia) in [
            (7, 0, 142, 88),
            (7, 2, 140, 86),
            (21, 0, 138, 86),
            (21, 2, 136, 84),
        ] {
            news.push(NewEntry::new(bp(s, dia, None)).at(hki(2026, 9, d, h, m)));
        }
        news.push(
            NewEntry::new(EntryData::Symptom {
                code: SymptomCode::ChestPain,
                severity: 0,
            })
            .at(hki(2026, 9, d, 21, 5)),
        );
        p.polku.diary().add_many(news).unwrap();
        let pr = paths.progress(e.id).unwrap();
        let bp_step = pr.steps.iter().find(|s| s.step_id == "bp-series").unwrap();
        assert_eq!(bp_step.progress, Some((day + 1, 4)), "day {day}");
        assert_eq!(
            bp_step.state,
            if day == 3 {
                StepState::Done
            } else {
                StepState::InProgress
            }
        );
    }
    let pr = paths.progress(e.id).unwrap();
    assert_eq!(
        state_of(&pr, "symptom-diary"),
        StepState::InProgress,
        "4 of 7 symptom days"
    );
    let flag = pr
        .flags
        .iter()
        .find(|f| f.code == "home-bp-above-target")
        .expect("mean 139/86 is above 135/85");
    assert!(!flag.urgent);
    assert!(
        matches!(
            paths.complete(e.id, "bp-series", Actor::Citizen),
            Err(Error::Conflict(_))
        ),
        "already done"
    );
    assert!(
        matches!(
            paths.complete(e.id, "symptom-diary", Actor::Citizen),
            Err(Error::Validation { .. })
        ),
        "completes from data only"
    );
    assert!(
        matches!(
            paths.complete(e.id, "review", Actor::Professional),
            Err(Error::Conflict(_))
        ),
        "review still locked"
    );
}

#[test]
fn adolescent_referral_on_item_9_and_urgent_flag() {
    let p = profile();
    let paths = p.polku.pathways();
    let e = paths
        .enroll("adolescent-mood", Actor::Professional)
        .unwrap();
    let pr = paths.progress(e.id).unwrap();
    assert_eq!(state_of(&pr, "phq9"), StepState::Locked);
    // R-BDI total 6 (mild): PHQ-9 and GAD-7 open; no referral yet.
    p.polku
        .questionnaires()
        .answer(
            InstrumentId::Rbdi,
            Lang::Fi,
            &[3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2],
            None,
        )
        .unwrap();
    let pr = paths.progress(e.id).unwrap();
    assert_eq!(state_of(&pr, "rbdi"), StepState::Done);
    assert_eq!(state_of(&pr, "phq9"), StepState::Available);
    assert_eq!(state_of(&pr, "gad7"), StepState::Available);
    assert_eq!(state_of(&pr, "referral"), StepState::Locked);
    assert!(pr.flags.is_empty());
    // PHQ-9 with a low total but item 9 = 1: referral opens, due the next day, and an urgent flag.
    p.clock.set(p.polku.now() + Duration::minutes(30));
    p.polku
        .questionnaires()
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[1, 1, 0, 1, 0, 0, 0, 0, 1],
            None,
        )
        .unwrap();
    let pr = paths.progress(e.id).unwrap();
    assert_eq!(state_of(&pr, "phq9"), StepState::Done);
    let referral = pr.steps.iter().find(|s| s.step_id == "referral").unwrap();
    assert_eq!(referral.state, StepState::Available);
    assert_eq!(
        referral.due_ms.unwrap() - referral.opened_ms.unwrap(),
        86_400_000
    );
    // The urgent flag is the core's safety rule now (sticky until acknowledged), not the pathway's.
    let f = p.polku.safety().flags(false).unwrap();
    assert_eq!(f[0].rule, polku_core::safety::Rule::Phq9Item9);
    assert!(f[0].urgent);
}

#[test]
fn reminders_for_open_steps() {
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(); // 10:00 Helsinki
    let p = profile_at(start);
    let paths = p.polku.pathways();
    let e = paths.enroll("t2d-care-path", Actor::Citizen).unwrap();
    // Helsinki wall-clock times of one step's reminders.
    let times = |r: &[(uuid::Uuid, polku_core::pathway::Reminder)], step: &str| -> Vec<String> {
        r.iter()
            .filter(|(_, x)| x.step_id == step)
            .map(|(_, x)| {
                polku_core::time::from_ms(x.at_ms)
                    .with_timezone(&chrono_tz::Europe::Helsinki)
                    .format("%m-%d %H:%M")
                    .to_string()
            })
            .collect()
    };
    // The welcome has no reminder times: one reminder at 09:00 the day before it is due (3 days).
    let r = paths.reminders(Duration::days(20)).unwrap();
    assert_eq!(times(&r, "welcome"), vec!["11-04 09:00"]);
    paths.complete(e.id, "welcome", Actor::Citizen).unwrap();
    paths.complete(e.id, "t2d-basics", Actor::Citizen).unwrap();
    let r = paths.reminders(Duration::days(3)).unwrap();
    assert_eq!(
        times(&r, "glucose-profile"),
        vec!["11-03 07:30", "11-04 07:30", "11-05 07:30"],
        "every morning, not in the past"
    );
    assert!(r
        .iter()
        .all(|(id, x)| *id == e.id && x.at_ms > start.timestamp_millis()));
    // The home blood-pressure series reminds morning and evening.
    assert_eq!(
        times(&r, "bp-series")[..3],
        ["11-02 20:00", "11-03 07:00", "11-03 20:00"]
    );
}

#[test]
fn enrollment_pins_its_version_and_migrates_explicitly() {
    let p = profile();
    let paths = p.polku.pathways();
    let e = paths.enroll("t2d-care-path", Actor::Citizen).unwrap();
    assert_eq!(e.definition_version, 2);
    paths.complete(e.id, "welcome", Actor::Citizen).unwrap();
    // Migration to a version that is not published is refused; the enrollment stays on 2.
    assert!(matches!(
        paths.migrate(e.id, 3),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(paths.enrollment(e.id).unwrap().definition_version, 2);
    // Skip with a reason.
    paths.complete(e.id, "t2d-basics", Actor::Citizen).unwrap();
    let pr = paths
        .skip(e.id, "bp-series", "mitattu vastaanotolla")
        .unwrap();
    let s = pr.steps.iter().find(|s| s.step_id == "bp-series").unwrap();
    assert_eq!(
        (s.state, s.skip_reason.as_deref()),
        (StepState::Skipped, Some("mitattu vastaanotolla"))
    );
    assert!(
        matches!(paths.skip(e.id, "hba1c", "x"), Err(Error::Conflict(_))),
        "locked steps cannot be skipped"
    );
    assert!(matches!(
        paths.complete(e.id, "nope", Actor::Citizen),
        Err(Error::Validation { .. })
    ));
    // Publishing the same version with different content is refused.
    let mut reg = Registry::builtin().unwrap();
    let mut changed = reg.latest("t2d-care-path").unwrap().clone();
    changed.title.en = "changed".into();
    assert!(matches!(reg.add(changed.clone()), Err(Error::Conflict(_))));
    changed.version = 3;
    reg.add(changed).unwrap();
    assert_eq!(reg.latest("t2d-care-path").unwrap().version, 3);
    assert_eq!(
        reg.get("t2d-care-path", 1).unwrap().title.en,
        "Type 2 diabetes digital care path"
    );
}

#[test]
fn caseload_across_subjects_urgent_first() {
    let p = profile();
    let worker = &p.polku;
    let a = worker.for_subject("client-a").unwrap();
    let b = worker.for_subject("client-b").unwrap();
    assert_eq!(
        worker.for_subject("client-a").unwrap().subject_id(),
        "client-a",
        "same subject, same number"
    );
    assert!(worker.for_subject(" ").is_err());
    a.pathways()
        .enroll("adolescent-mood", Actor::Professional)
        .unwrap();
    b.pathways()
        .enroll("adolescent-mood", Actor::Professional)
        .unwrap();
    // Client b reports thoughts of self-harm; client a's record stays separate.
    b.questionnaires()
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[0, 0, 0, 0, 0, 0, 0, 0, 2],
            None,
        )
        .unwrap();
    assert!(a.questionnaires().list(None, 0).unwrap().is_empty());
    assert_eq!(
        b.diary()
            .list(&EntryQuery::default())
            .unwrap()
            .entries
            .len(),
        0
    );
    let cl = worker.caseload().unwrap();
    assert_eq!(cl.len(), 2);
    assert_eq!(cl[0].subject, "client-b", "urgent first");
    assert!(cl[0]
        .safety_flags
        .iter()
        .any(|f| f.urgent && f.rule == polku_core::safety::Rule::Phq9Item9));
    assert_eq!(cl[1].subject, "client-a");
    assert_eq!(cl[1].open_steps, vec!["rbdi".to_string()]);
    let mut subjects = worker.subjects().unwrap();
    subjects.sort();
    assert_eq!(subjects.len(), 3, "the device owner and two clients");
}

#[test]
fn published_new_version_leaves_running_enrollments_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let published = dir.path().join("pathways");
    std::fs::create_dir(&published).unwrap();
    let clock = std::sync::Arc::new(polku_core::time::FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap(),
    ));
    let open = || {
        polku_core::Polku::open_with(
            &dir.path().join("p.db"),
            &key(),
            polku_core::OpenOptions {
                clock: clock.clone(),
                pathway_dir: Some(published.clone()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let p = open();
    let e = p
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    p.pathways()
        .complete(e.id, "welcome", Actor::Citizen)
        .unwrap();
    drop(p);

    // The county publishes version 3: the basics step is replaced by a shorter one.
    let v3 = include_str!("../pathways/t2d-care-path@2.json")
        .replacen("\"version\": 2", "\"version\": 3", 1)
        .replace("\"id\": \"t2d-basics\"", "\"id\": \"t2d-basics-short\"")
        .replace(
            "\"steps\": [\"t2d-basics\"]",
            "\"steps\": [\"t2d-basics-short\"]",
        );
    std::fs::write(published.join("t2d-care-path@3.json"), v3).unwrap();
    let p = open();
    let paths = p.pathways();
    assert_eq!(
        paths
            .definitions()
            .iter()
            .find(|d| d.id == "t2d-care-path")
            .unwrap()
            .version,
        3
    );
    // The running enrollment is untouched; its progress says a newer version is published.
    let pr = paths.progress(e.id).unwrap();
    assert_eq!(pr.enrollment.definition_version, 2);
    assert_eq!(pr.latest_version, 3);
    assert!(matches!(
        paths.migrate(e.id, 2),
        Err(polku_core::Error::Validation { ref field, .. }) if field == "to_version"
    ));
    assert!(pr.steps.iter().any(|s| s.step_id == "t2d-basics"));
    // New enrollments get version 3; the old one moves only when asked, keeping its done steps.
    assert_eq!(
        paths
            .enroll("t2d-care-path", Actor::Citizen)
            .unwrap()
            .definition_version,
        3
    );
    let moved = paths.migrate(e.id, 3).unwrap();
    assert_eq!(moved.enrollment.definition_version, 3);
    assert_eq!(moved.latest_version, 3);
    let state = |id: &str| moved.steps.iter().find(|s| s.step_id == id).unwrap().state;
    assert_eq!(
        state("welcome"),
        StepState::Done,
        "done steps keep their state"
    );
    assert_eq!(state("t2d-basics-short"), StepState::Available);
    // A broken published file stops the open with the file named, instead of being half-loaded.
    drop(p);
    std::fs::write(published.join("broken@1.json"), "{\"id\": \"broken\"").unwrap();
    let err = polku_core::Polku::open_with(
        &dir.path().join("p.db"),
        &key(),
        polku_core::OpenOptions {
            pathway_dir: Some(published.clone()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("broken@1.json"), "{err}");

    // A device without version 3 (the county's content not yet there, or the migration synced
    // from another device) still shows the care team everyone, the missing one flagged.
    let p = polku_core::Polku::open_with(
        &dir.path().join("p.db"),
        &key(),
        polku_core::OpenOptions {
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let caseload = p.caseload().unwrap();
    assert_eq!(caseload.len(), 2, "both enrollments, both on version 3");
    for c in &caseload {
        assert_eq!(c.enrollment.as_ref().unwrap().definition_version, 3);
        assert_eq!(c.flags.len(), 1);
        assert_eq!(c.flags[0].code, "definition_unavailable");
        assert!(!c.flags[0].urgent);
        assert!(c.flags[0]
            .message
            .en
            .contains("t2d-care-path@3 is not on this device"));
    }
    assert!(p
        .pathways()
        .reminders(chrono::Duration::days(7))
        .unwrap()
        .is_empty());
    let e1 = p
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    assert_eq!(e1.definition_version, 2);
    let caseload = p.caseload().unwrap();
    assert_eq!(caseload.len(), 3);
    assert!(caseload
        .iter()
        .any(|c| c.enrollment.as_ref().is_some_and(|e| e.id == e1.id)
            && c.flags.is_empty()
            && c.total == 7));
}

#[test]
fn cgm_hypoglycaemic_event_raises_an_urgent_flag_but_a_short_dip_does_not() {
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
    let p = profile_at(start);
    let e = p
        .polku
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    let cgm = |v: f64| {
        EntryData::Glucose(Glucose {
            reading: GlucoseReading::Value { mmol_l: v },
            unit: GlucoseUnit::MmolL,
            context: MealContext::Other,
            hours_after_meal: None,
            source: GlucoseSource::Cgm,
        })
    };
    let night = |values: &[f64], day: i64| -> Vec<NewEntry> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                NewEntry::new(cgm(*v)).at(polku_core::time::in_zone(
                    start + Duration::days(day) + Duration::minutes(5 * i as i64),
                    chrono_tz::Europe::Helsinki,
                ))
            })
            .collect()
    };
    // Day 1: 10 minutes at 2.8 — too short for an event (and 2.8 < 3.9 raises the reading flag).
    p.clock.set(start + Duration::days(1) + Duration::hours(2));
    p.polku
        .diary()
        .add_many(night(&[5.0, 5.0, 2.8, 2.8, 5.0, 5.0, 5.0, 5.0, 5.0], 1))
        .unwrap();
    let codes = |pr: &polku_core::pathway::Progress| {
        pr.flags
            .iter()
            .map(|f| (f.code.clone(), f.urgent))
            .collect::<Vec<_>>()
    };
    let pr = p.polku.pathways().progress(e.id).unwrap();
    assert_eq!(codes(&pr), vec![("glucose-below-3-9".to_string(), false)]);
    // Day 2: 20 minutes below 3.0 — a level 2 event: urgent.
    p.clock.set(start + Duration::days(2) + Duration::hours(2));
    p.polku
        .diary()
        .add_many(night(
            &[5.0, 2.9, 2.7, 2.6, 2.8, 4.5, 5.0, 5.0, 5.0, 5.0],
            2,
        ))
        .unwrap();
    let pr = p.polku.pathways().progress(e.id).unwrap();
    let hypo = pr
        .flags
        .iter()
        .find(|f| f.code == "hypo-event-level-2")
        .expect("level 2 event flagged");
    assert!(hypo.urgent);
    assert_eq!(
        hypo.since_ms,
        (start + Duration::days(2) + Duration::minutes(5)).timestamp_millis(),
        "since the event's start"
    );
}

/// A complete home series stays complete when a later, partial week of measuring follows before
/// anyone looked (the latest run of days is not the only one that counts).
#[test]
fn a_home_series_completed_earlier_is_not_hidden_by_a_later_partial_one() {
    let start = Utc.with_ymd_and_hms(2026, 9, 1, 6, 0, 0).unwrap(); // 09:00 Helsinki
    let p = profile_at(start);
    let paths = p.polku.pathways();
    let e = paths
        .enroll("home-bp-follow-up", Actor::Professional)
        .unwrap();
    paths
        .complete(e.id, "how-to-measure", Actor::Citizen)
        .unwrap();
    // Days 1–4 complete (two morning and two evening readings each), then day 10 alone.
    let at_day = |d: i64, h: i64| start + Duration::days(d) + Duration::hours(h);
    let mut news = Vec::new();
    for day in [1, 2, 3, 4, 10] {
        for (h, m, s) in [
            (-2, 0, BpSeries::Morning),
            (-2, 2, BpSeries::Morning),
            (11, 0, BpSeries::Evening),
            (11, 2, BpSeries::Evening),
        ] {
            news.push(
                NewEntry::new(bp(128, 80, Some(s))).at(polku_core::time::in_zone(
                    at_day(day, h) + Duration::minutes(m),
                    chrono_tz::Europe::Helsinki,
                )),
            );
        }
    }
    p.clock.set(at_day(11, 0));
    p.polku.diary().add_many(news).unwrap();
    let pr = paths.progress(e.id).unwrap();
    let s = pr.steps.iter().find(|s| s.step_id == "bp-series").unwrap();
    assert_eq!(s.state, StepState::Done);
    assert_eq!(s.progress, Some((4, 4)));
    assert_eq!(
        s.finished_ms,
        Some((at_day(4, 11) + Duration::minutes(2)).timestamp_millis()),
        "done at the last reading of the fourth day"
    );
}
