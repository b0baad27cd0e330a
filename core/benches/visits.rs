//! A home-care worker's day on a device holding 500 clients' years of data (issue 11,
//! docs/benchmarks.md):
//! 1. open the worker's day: 50 visits with 300 tasks, and each of their clients' last 30 days
//!    of measurements (goal ≤ 20 ms);
//! 2. generate 14 days of visits for all 500 clients (goal ≤ 200 ms);
//!    peer for both: reading the same day's stored rows with no derivation (the floor).
//!
//!   cargo bench -p polku-core --bench visits
//!
//! POLKU_BENCH_CLIENTS (500) and POLKU_BENCH_RUNS (15) change the size and the repetitions.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use polku_core::diary::*;
use polku_core::time::{in_zone, FixedClock};
use polku_core::{DbKey, OpenOptions, Polku};

/// Two visits a day with six tasks each: 25 of the 500 clients make a worker's 50 visits.
const PLAN: &str = r#"{"visits": [
    {"slot": "morning", "name": "Aamukäynti", "days": ["daily"], "from": "07:00", "to": "09:00",
     "tasks": ["medication", "blood_pressure", "glucose", "meal", "hygiene", "dressing"]},
    {"slot": "evening", "name": "Iltakäynti", "days": ["daily"], "from": "19:00", "to": "21:00",
     "tasks": ["medication", "meal", "hygiene", "mobility", "safety_check", "outdoor"]}
]}"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let clients: i64 = std::env::var("POLKU_BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let runs: usize = std::env::var("POLKU_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::Europe::Helsinki;
    let now = tz
        .with_ymd_and_hms(2026, 11, 23, 6, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    let today = now.with_timezone(&tz).date_naive();
    let clock = Arc::new(FixedClock::new(now));
    let device = Polku::open_with(
        &dir.path().join("worker.db"),
        &DbKey::from_bytes([5u8; 32]),
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
    let mut events = 0usize;
    for c in 0..clients {
        let client = device.for_subject(&format!("client-{c:04}")).unwrap();
        // A year of self-measurements: two glucose readings a day, a blood-pressure week a
        // month, a weight a week.
        let mut news = Vec::new();
        let at = |day: i64, h: i64| in_zone(start + Duration::days(day) + Duration::hours(h), tz);
        for day in 0..365 {
            let v = 6.0 + ((day * 7 + c) % 30) as f64 / 10.0;
            for (h, v) in [(5, v), (17, v + 2.5)] {
                news.push(
                    NewEntry::new(EntryData::Glucose(Glucose {
                        reading: GlucoseReading::Value { mmol_l: v },
                        unit: GlucoseUnit::MmolL,
                        context: MealContext::Fasting,
                        hours_after_meal: None,
                        source: GlucoseSource::Meter,
                    }))
                    .at(at(day, h)),
                );
            }
            if day % 28 < 7 {
                news.push(
                    NewEntry::new(EntryData::BloodPressure(BloodPressure {
                        systolic: 130 + (day % 9) as u16,
                        diastolic: 84,
                        pulse: None,
                        arm: None,
                        series: None,
                    }))
                    .at(at(day, 6)),
                );
            }
            if day % 7 == 0 {
                news.push(NewEntry::new(EntryData::Weight { kg: 80.0 }).at(at(day, 6)));
            }
        }
        entries += news.len();
        client.diary().add_many(news).unwrap();
        // The plan from a year ago; the last 3 days' visits done (arrival, six tasks, leaving).
        clock.set(start);
        client
            .visits()
            .set_plan(PLAN, start.with_timezone(&tz).date_naive())
            .unwrap();
        let done_from = today - Duration::days(3);
        for v in client.visits().schedule(done_from, 3).unwrap() {
            clock.set(
                tz.from_local_datetime(&v.date.and_time(v.from))
                    .unwrap()
                    .with_timezone(&Utc),
            );
            client.visits().arrive(&v.id).unwrap();
            for task in &v.tasks {
                client
                    .visits()
                    .task(&v.id, &task.code, "done", None)
                    .unwrap();
            }
            client.visits().finish(&v.id).unwrap();
            events += 2 + v.tasks.len();
        }
        // Today: the coordinator gave 25 clients' visits to this device's worker, the rest to
        // four colleagues.
        clock.set(now - Duration::hours(12));
        let me = if c % 20 == 0 { "me" } else { "colleague" };
        for v in client.visits().schedule(today, 1).unwrap() {
            let to = if me == "me" {
                device_author(&device)
            } else {
                format!("colleague-{}", c % 4)
            };
            client.visits().handover(&v.id, &to, "Päivän jako").unwrap();
            events += 1;
        }
        clock.set(now);
    }
    println!(
        "{clients} clients, {entries} diary entries, {events} visit events, built in {:.0} s",
        t.elapsed().as_secs_f64()
    );

    // 1. The worker's day, and each of its clients' last 30 days of measurements.
    let mut day_ms = Vec::new();
    let mut visits_ms = Vec::new();
    let mut shown = (0, 0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let day = device.worker_day(today).unwrap();
        let t_day = t.elapsed().as_secs_f64() * 1e3;
        let mut clients_of_day: Vec<&str> = day.iter().map(|v| v.subject.as_str()).collect();
        clients_of_day.sort();
        clients_of_day.dedup();
        let mut measurements = 0;
        for c in &clients_of_day {
            let recent = device
                .for_subject(c)
                .unwrap()
                .diary()
                .list_all(EntryQuery {
                    from: Some(now - Duration::days(30)),
                    ..Default::default()
                })
                .unwrap();
            measurements += recent.len();
        }
        day_ms.push(t.elapsed().as_secs_f64() * 1e3);
        visits_ms.push(t_day);
        shown = (
            day.len(),
            day.iter().map(|v| v.tasks.len()).sum::<usize>(),
            measurements,
        );
    }
    println!(
        "worker's day: {} visits, {} tasks, {} measurements of the last 30 days: median {:.1} ms (n={runs}, min {:.1}, max {:.1})",
        shown.0,
        shown.1,
        shown.2,
        median(day_ms.clone()),
        day_ms.iter().copied().fold(f64::MAX, f64::min),
        day_ms.iter().copied().fold(0.0, f64::max)
    );

    println!(
        "  of which the visits alone (Polku::worker_day): median {:.1} ms",
        median(visits_ms)
    );

    // 2. 14 days of visits for every client.
    let mut gen_ms = Vec::new();
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = device.visits_between(today, 14, true).unwrap().len();
        gen_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "14 days of visits for {clients} clients: {n} visits, median {:.1} ms (n={runs})",
        median(gen_ms)
    );

    // Peer: the floor, the same rows read with no derivation (today's events and the plans).
    let db = dir.path().join("worker.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "05".repeat(32)))
        .unwrap();
    let mut floor = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut rows = 0usize;
        let mut stmt = c
            .prepare_cached("SELECT * FROM visit_event WHERE date = ?1")
            .unwrap();
        let mut q = stmt.query([today.to_string()]).unwrap();
        while q.next().unwrap().is_some() {
            rows += 1;
        }
        let mut stmt = c.prepare_cached("SELECT plan FROM visit_plan").unwrap();
        let mut q = stmt.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            let _: String = r.get(0).unwrap();
            rows += 1;
        }
        floor.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(rows > 0);
    }
    println!(
        "peer: today's event rows and every plan read with no derivation: median {:.1} ms",
        median(floor)
    );
}

fn device_author(p: &Polku) -> String {
    p.subject_id().to_owned()
}
