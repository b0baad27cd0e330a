//! Evaluating all pathway states for an outreach caseload: 500 clients, each with a year of diary
//! data, enrolled in one of the three built-in pathways at some point in the past year.
//!
//!   cargo bench -p polku-core --bench pathways
//!
//! Peer (published, not re-run here): the Community Health Toolkit's rules engine took 69 s on
//! average for `rules-engine:tasks:all-contacts` for a user with 6 000 contacts (cht-core PR #8772,
//! a performance fix, measured by its tester in January 2024).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, TimeZone, Utc};
use polku_core::diary::*;
use polku_core::pathway::Actor;
use polku_core::questionnaire::{InstrumentId, Lang};
use polku_core::time::{in_zone, FixedClock};
use polku_core::{DbKey, OpenOptions, Polku};

fn main() {
    let clients: i64 = std::env::var("POLKU_BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let tz = chrono_tz::Europe::Helsinki;
    let device = Polku::open_with(
        &dir.path().join("caseload.db"),
        &DbKey::from_bytes([3u8; 32]),
        OpenOptions {
            clock: clock.clone(),
            tz,
            ..Default::default()
        },
    )
    .unwrap();
    let start = now - Duration::days(365);
    let t = Instant::now();
    let mut entries = 0usize;
    let paths = ["t2d-care-path", "home-bp-follow-up", "adolescent-mood"];
    for c in 0..clients {
        let client = device.for_subject(&format!("client-{c:04}")).unwrap();
        let mut news = Vec::new();
        let at = |day: i64, h: i64, m: i64| {
            in_zone(
                start + Duration::days(day) + Duration::hours(h) + Duration::minutes(m),
                tz,
            )
        };
        for day in 0..365 {
            let v = 6.0 + ((day * 7 + c) % 30) as f64 / 10.0;
            news.push(NewEntry::new(glucose(v, MealContext::Fasting)).at(at(day, 5, 0)));
            news.push(NewEntry::new(glucose(v + 2.5, MealContext::AfterMeal)).at(at(day, 17, 0)));
            if day % 28 < 7 {
                for (h, m, s, d) in [
                    (5, 0, 138, 86),
                    (5, 2, 136, 85),
                    (18, 0, 134, 84),
                    (18, 2, 132, 83),
                ] {
                    news.push(
                        NewEntry::new(EntryData::BloodPressure(BloodPressure {
                            systolic: s,
                            diastolic: d,
                            pulse: None,
                            arm: None,
                            series: None,
                        }))
                        .at(at(day, h, m)),
                    );
                }
            }
            if day >= 305 {
                news.push(
                    NewEntry::new(EntryData::Symptom {
                        code: SymptomCode::ChestPain,
                        severity: (day % 3) as u8,
                    })
                    .at(at(day, 18, 30)),
                );
            }
            if day % 7 == 0 {
                news.push(
                    NewEntry::new(EntryData::Weight {
                        kg: 85.0 - day as f64 / 100.0,
                    })
                    .at(at(day, 5, 10)),
                );
            }
        }
        entries += news.len();
        client.diary().add_many(news).unwrap();
        // Enrolled 30–330 days ago; some steps done by hand, questionnaires answered.
        let enrolled = now - Duration::days(30 + (c * 37) % 300);
        clock.set(enrolled);
        let e = client
            .pathways()
            .enroll(paths[(c % 3) as usize], Actor::Professional)
            .unwrap();
        clock.set(enrolled + Duration::days(1));
        match c % 3 {
            0 => {
                client
                    .pathways()
                    .complete(e.id, "welcome", Actor::Citizen)
                    .unwrap();
                client
                    .pathways()
                    .complete(e.id, "t2d-basics", Actor::Citizen)
                    .unwrap();
                client
                    .questionnaires()
                    .answer(
                        InstrumentId::Findrisc,
                        Lang::Fi,
                        &[2, 1, 1, 0, 1, 1, 1, 2],
                        None,
                    )
                    .unwrap();
            }
            1 => {
                client
                    .pathways()
                    .complete(e.id, "how-to-measure", Actor::Citizen)
                    .unwrap();
            }
            _ => {
                client
                    .questionnaires()
                    .answer(
                        InstrumentId::Rbdi,
                        Lang::Fi,
                        &[3, 3, 2, 2, 3, 2, 2, 2, 3, 2, 2, 3, 2],
                        None,
                    )
                    .unwrap();
                clock.set(enrolled + Duration::days(2));
                client
                    .questionnaires()
                    .answer(
                        InstrumentId::Phq9,
                        Lang::Fi,
                        &[1, 1, 1, 1, 0, 1, 0, 0, c % 2],
                        None,
                    )
                    .unwrap();
            }
        }
        clock.set(now);
    }
    println!(
        "caseload of {clients} clients, {entries} diary entries, built in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let runs: usize = std::env::var("POLKU_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let mut times: Vec<StdDuration> = Vec::new();
    let mut summary = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        summary = device.caseload().unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let flagged = summary.iter().filter(|c| !c.flags.is_empty()).count();
    let urgent = summary
        .iter()
        .filter(|c| c.flags.iter().any(|f| f.urgent))
        .count();
    let overdue = summary
        .iter()
        .filter(|c| !c.overdue_steps.is_empty())
        .count();
    let safety = summary
        .iter()
        .filter(|c| !c.safety_flags.is_empty())
        .count();
    println!(
        "caseload() over {} enrollments: median {:.1} ms, min {:.1} ms, max {:.1} ms (n={runs}); {flagged} flagged ({urgent} urgent), {overdue} with overdue steps, {safety} with open safety flags",
        summary.len(),
        times[runs / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[runs - 1].as_secs_f64() * 1e3,
    );
}

fn glucose(v: f64, context: MealContext) -> EntryData {
    EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value { mmol_l: v },
        unit: GlucoseUnit::MmolL,
        context,
        hours_after_meal: None,
        source: GlucoseSource::Meter,
    })
}
