//! The sync after three days offline (issue 11, docs/benchmarks.md): a home-care worker's
//! device with 25 clients' plans does 150 visits over three simulated days without a
//! connection (arrival, six tasks, a blood pressure into the client's diary, leaving), then
//! syncs once over loopback to a real server in this process; a colleague's device then pulls it
//! all. Goal: the worker's one sync ≤ 2 s. Peer: the same number of operations pushed as diary
//! entries (the sync engine's own cost, no visit logic).
//!
//! Usage: cargo run --release -p polku-e2e --bin visit-bench

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use polku_core::diary::{EntryData, NewEntry};
use polku_core::time::FixedClock;
use polku_e2e::{Device, TestServer};
use polku_server::{Role, Storage};

const PLAN: &str = r#"{"visits": [
    {"slot": "morning", "name": "Aamukäynti", "days": ["daily"], "from": "07:00", "to": "09:00",
     "tasks": ["medication", "blood_pressure", "glucose", "meal", "hygiene", "dressing"]},
    {"slot": "evening", "name": "Iltakäynti", "days": ["daily"], "from": "19:00", "to": "21:00",
     "tasks": ["medication", "meal", "hygiene", "mobility", "safety_check", "outdoor"]}
]}"#;

fn main() {
    let tz = chrono_tz::Europe::Helsinki;
    let server = TestServer::start();
    let (me, colleague) = (
        server.user(Role::Professional, "Hoitaja"),
        server.user(Role::Professional, "Kollega"),
    );
    let clients: Vec<String> = (0..25)
        .map(|i| server.user(Role::Citizen, &format!("Asiakas {i}")))
        .collect();
    for c in &clients {
        server.storage.assign(&me, c).unwrap();
        server.storage.assign(&colleague, c).unwrap();
    }
    let today = Utc::now().with_timezone(&tz).date_naive();
    let clock = Arc::new(FixedClock::new(Utc::now()));
    let worker = Device::enrolled_on_clock(&server.url(), &server.code(&me), clock.clone());
    let other = Device::enrolled(&server.url(), &server.code(&colleague));
    worker.sync().unwrap();
    for c in &clients {
        worker
            .polku
            .for_subject(c)
            .unwrap()
            .visits()
            .set_plan(PLAN, today - Duration::days(3))
            .unwrap();
    }
    worker.sync().unwrap();
    other.sync().unwrap();

    // Three days offline.
    let mut visits = 0;
    for k in (1..=3).rev() {
        let day = today - Duration::days(k);
        for v in worker.polku.visits_on(day).unwrap() {
            let at = tz
                .from_local_datetime(&day.and_time(v.from))
                .unwrap()
                .with_timezone(&Utc);
            clock.set(at);
            let p = worker.polku.for_visit(&v.id).unwrap();
            let x = p.visits();
            x.arrive(&v.id).unwrap();
            for t in &v.tasks {
                if t.code == "blood_pressure" {
                    let e =
                        NewEntry::new(EntryData::BloodPressure(polku_core::diary::BloodPressure {
                            systolic: 131,
                            diastolic: 84,
                            pulse: Some(68),
                            arm: None,
                            series: None,
                        }));
                    x.measure(&v.id, e).unwrap();
                }
                x.task(&v.id, &t.code, "done", None).unwrap();
            }
            clock.set(at + Duration::minutes(25));
            x.finish(&v.id).unwrap();
            visits += 1;
        }
    }
    clock.set(Utc::now());
    let pending = worker.polku.sync().status().unwrap().pending;
    let t = Instant::now();
    let up = worker.sync().unwrap();
    let up_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let down = other.sync().unwrap();
    let down_s = t.elapsed().as_secs_f64();
    assert_eq!(up.pushed, pending);
    println!(
        "after three days offline: {visits} visits, {pending} operations: the worker's one sync {:.2} s ({} requests, {:.2} MB); the colleague's pull {:.2} s ({} operations)",
        up_s,
        up.requests,
        up.bytes as f64 / 1e6,
        down_s,
        down.pulled
    );

    // Peer: as many diary entries pushed in one sync from a fresh device (no visit logic).
    let peer_user = server.user(Role::Citizen, "Vertailu");
    let peer = Device::enrolled(&server.url(), &server.code(&peer_user));
    let news: Vec<NewEntry> = (0..pending)
        .map(|i| {
            NewEntry::new(EntryData::Weight {
                kg: 70.0 + (i % 100) as f64 / 10.0,
            })
            .at(polku_core::time::in_zone(
                Utc::now() - Duration::minutes(i as i64 + 1),
                tz,
            ))
        })
        .collect();
    peer.polku.diary().add_many(news).unwrap();
    let t = Instant::now();
    let r = peer.sync().unwrap();
    println!(
        "peer: {} diary entries pushed in one sync: {:.2} s ({} requests)",
        r.pushed,
        t.elapsed().as_secs_f64(),
        r.requests
    );
}
