//! Seeded fault injection between several devices and a real server: requests and replies are
//! dropped, duplicated, replayed stale, delayed, cut halfway or answered 503. After the faults stop
//! and every device syncs, every write acknowledged on any device exists exactly once on every
//! device and on the server, the devices hold the same records, and no upload is stuck.
//! A failure prints the seed and the proxy's log; `POLKU_FAULT_SEED=<n>` replays one trial,
//! `POLKU_FAULT_TRIALS=<n>` changes how many run.

use std::collections::BTreeSet;

use polku_core::diary::{EntryData, NewEntry};
use polku_e2e::{synced_state, Device, FaultProxy, TestServer};
use polku_server::Role;

fn trial(seed: u64) -> Result<(), String> {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.addr, seed);
    let citizen = server.user(Role::Citizen, "Aino");
    let devices: Vec<Device> = (0..3)
        .map(|_| Device::enrolled(&proxy.url(), &server.code(&citizen)))
        .collect();
    let mut rng = polku_e2e::Rng::new(seed);
    let mut next = move || rng.next_u64();
    let mut written: BTreeSet<String> = BTreeSet::new();
    proxy.set_faults(true);
    for round in 0..4 {
        for (i, d) in devices.iter().enumerate() {
            for k in 0..(1 + next() % 3) {
                let kg = 50.0 + (next() % 500) as f64 / 10.0;
                let e = d
                    .polku
                    .diary()
                    .add(
                        NewEntry::new(EntryData::Weight { kg }).note(format!("r{round} d{i} k{k}")),
                    )
                    .map_err(|e| e.to_string())?;
                written.insert(e.version_id.to_string());
                if next() % 3 == 0 {
                    let v = d
                        .polku
                        .diary()
                        .edit(e.id, NewEntry::new(EntryData::Weight { kg: kg + 0.5 }))
                        .map_err(|e| e.to_string())?;
                    written.insert(v.version_id.to_string());
                }
            }
            // Errors are expected while faults are on; what matters is what happens after.
            let _ = d.sync();
        }
    }
    proxy.set_faults(false);
    if proxy.injected() == 0 {
        return Err("no fault was injected: the trial proved nothing".into());
    }
    for _ in 0..2 {
        for d in &devices {
            d.sync()
                .map_err(|e| format!("sync after faults stopped: {e}"))?;
        }
    }
    let fresh = Device::enrolled(&server.url(), &server.code(&citizen));
    fresh.sync().map_err(|e| e.to_string())?;

    let reference = synced_state(&fresh.path());
    let versions: Vec<String> = reference
        .iter()
        .filter(|l| l.starts_with("e|"))
        .map(|l| l.split('|').nth(2).unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = versions.iter().cloned().collect();
    if unique.len() != versions.len() {
        return Err("a version is stored twice on the server".into());
    }
    if unique != written {
        return Err(format!(
            "server holds {} versions, devices acknowledged {}",
            unique.len(),
            written.len()
        ));
    }
    for (i, d) in devices.iter().enumerate() {
        if synced_state(&d.path()) != reference {
            return Err(format!("device {i} differs from the server's records"));
        }
        let s = d.polku.sync().status().map_err(|e| e.to_string())?;
        if s.pending != 0 || !s.quarantined.is_empty() {
            return Err(format!(
                "device {i}: {} pending, {:?} quarantined",
                s.pending, s.quarantined
            ));
        }
    }
    Ok(())
}

#[test]
fn every_acknowledged_write_arrives_exactly_once_despite_faults() {
    let seeds: Vec<u64> = match std::env::var("POLKU_FAULT_SEED") {
        Ok(s) => vec![s.parse().expect("POLKU_FAULT_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("POLKU_FAULT_TRIALS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(100);
            (1..=n)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect()
        }
    };
    for seed in seeds {
        if let Err(e) = trial(seed) {
            panic!("fault trial failed with seed {seed} (replay: POLKU_FAULT_SEED={seed}): {e}");
        }
    }
}

/// Messages through the same faults: a citizen with two devices and her nurse write to each
/// other while requests and replies are dropped, doubled, replayed, cut or refused. Once the
/// faults stop, every device holds every message exactly once, each sender's in order, none
/// rejected, and every sender sees its messages left the device.
fn message_trial(seed: u64) -> Result<(), String> {
    use polku_server::Storage;
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.addr, seed);
    let citizen = server.user(Role::Citizen, "Aino");
    let nurse = server.user(Role::Professional, "Hoitaja");
    server.storage.assign(&nurse, &citizen).unwrap();
    let devices = [
        Device::enrolled(&proxy.url(), &server.code(&citizen)),
        Device::enrolled(&proxy.url(), &server.code(&citizen)),
        Device::enrolled(&proxy.url(), &server.code(&nurse)),
    ];
    // Keys published before the faults start: what the trial tests is the messages.
    for d in &devices {
        d.sync().map_err(|e| e.to_string())?;
    }
    let mut rng = polku_e2e::Rng::new(seed);
    let mut next = move || rng.next_u64();
    let mut written: BTreeSet<String> = BTreeSet::new();
    proxy.set_faults(true);
    for round in 0..4 {
        for (i, d) in devices.iter().enumerate() {
            for k in 0..next() % 3 {
                let m = d
                    .polku
                    .messaging()
                    .send(&citizen, &format!("r{round} d{i} k{k}"))
                    .map_err(|e| e.to_string())?;
                written.insert(m.id);
            }
            if next() % 2 == 0 {
                let _ = d.polku.messaging().mark_read(&citizen);
            }
            let _ = d.sync();
        }
    }
    proxy.set_faults(false);
    let injected = proxy
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.ends_with("Pass"))
        .count();
    if injected == 0 || written.is_empty() {
        return Err("no fault injected or no message written: the trial proved nothing".into());
    }
    // Messages, then their receipts, then the receipts' acknowledgements.
    for _ in 0..3 {
        for d in &devices {
            d.sync()
                .map_err(|e| format!("sync after faults stopped: {e}"))?;
        }
    }
    for (i, d) in devices.iter().enumerate() {
        let all = d
            .polku
            .messaging()
            .messages(&citizen)
            .map_err(|e| e.to_string())?;
        let ids: Vec<&String> = all.iter().map(|m| &m.id).collect();
        let unique: BTreeSet<String> = ids.iter().map(|s| (*s).clone()).collect();
        if unique.len() != ids.len() {
            return Err(format!("device {i} holds a message twice"));
        }
        if unique != written {
            return Err(format!(
                "device {i} holds {} messages, {} were written",
                unique.len(),
                written.len()
            ));
        }
        for sender in all
            .iter()
            .map(|m| &m.sender_device)
            .collect::<BTreeSet<_>>()
        {
            let seqs: Vec<i64> = all
                .iter()
                .filter(|m| &m.sender_device == sender)
                .map(|m| m.seq)
                .collect();
            if seqs.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "device {i}: {sender}'s messages out of order: {seqs:?}"
                ));
            }
        }
        if let Some(m) = all
            .iter()
            .find(|m| ["queued", "sending", "held", "undeliverable"].contains(&m.state.as_str()))
        {
            return Err(format!("device {i}: message {} still {}", m.id, m.state));
        }
        let rejected = d.polku.messaging().rejected().map_err(|e| e.to_string())?;
        if !rejected.is_empty() {
            return Err(format!("device {i} rejected {rejected:?}"));
        }
    }
    Ok(())
}

#[test]
fn every_message_arrives_exactly_once_despite_faults() {
    let seeds: Vec<u64> = match std::env::var("POLKU_FAULT_SEED") {
        Ok(s) => vec![s.parse().expect("POLKU_FAULT_SEED is a number")],
        Err(_) => (1..=20u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6d65_7373)
            .collect(),
    };
    for seed in seeds {
        if let Err(e) = message_trial(seed) {
            panic!("message fault trial failed with seed {seed} (replay: POLKU_FAULT_SEED={seed}): {e}");
        }
    }
}

/// Visits through the same faults: two workers' devices record visits of three clients (arrival,
/// tasks, notes, leaving) while requests and replies are dropped, doubled, replayed, cut or
/// refused. Once the faults stop, every event acknowledged on a device is on the server and on
/// both devices exactly once, and the devices derive the same visits.
fn visit_trial(seed: u64) -> Result<(), String> {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.addr, seed);
    let (a_user, b_user) = (
        server.user(Role::Professional, "A"),
        server.user(Role::Professional, "B"),
    );
    let clients: Vec<String> = (0..3)
        .map(|i| server.user(Role::Citizen, &format!("Asiakas {i}")))
        .collect();
    for c in &clients {
        polku_server::Storage::assign(&*server.storage, &a_user, c).map_err(|e| e.to_string())?;
        polku_server::Storage::assign(&*server.storage, &b_user, c).map_err(|e| e.to_string())?;
    }
    let a = Device::enrolled(&proxy.url(), &server.code(&a_user));
    let b = Device::enrolled(&proxy.url(), &server.code(&b_user));
    let plan = r#"{"visits": [{"slot": "day", "name": "Käynti", "days": ["daily"], "from": "00:00", "to": "23:59", "tasks": ["medication", "meal"]}]}"#;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .date_naive();
    for c in &clients {
        a.polku
            .for_subject(c)
            .and_then(|p| {
                p.visits()
                    .set_plan(plan, today - chrono::Duration::days(10))
            })
            .map_err(|e| e.to_string())?;
    }
    a.sync().map_err(|e| e.to_string())?;
    b.sync().map_err(|e| e.to_string())?;
    let mut rng = polku_e2e::Rng::new(seed);
    let mut next = move || rng.next_u64();
    let mut written = 0usize;
    proxy.set_faults(true);
    for day in 0..4 {
        let date = today - chrono::Duration::days(4 - day);
        for (w, d) in [&a, &b].into_iter().enumerate() {
            for (i, c) in clients.iter().enumerate() {
                if (i + w) % 2 == 1 && next() % 2 == 0 {
                    continue;
                }
                let p = d.polku.for_subject(c).map_err(|e| e.to_string())?;
                let Some(v) = p
                    .visits()
                    .schedule(date, 1)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .next()
                else {
                    return Err("no visit generated".into());
                };
                if v.state != "planned" {
                    continue;
                }
                let x = p.visits();
                x.arrive(&v.id).map_err(|e| e.to_string())?;
                x.task(&v.id, "medication", "done", None)
                    .map_err(|e| e.to_string())?;
                x.note(&v.id, &format!("d{day} w{w}"), None)
                    .map_err(|e| e.to_string())?;
                x.finish(&v.id).map_err(|e| e.to_string())?;
                written += 4;
            }
            let _ = d.sync();
        }
    }
    proxy.set_faults(false);
    if proxy.injected() == 0 {
        return Err("no fault was injected: the trial proved nothing".into());
    }
    for _ in 0..2 {
        for d in [&a, &b] {
            d.sync()
                .map_err(|e| format!("sync after faults stopped: {e}"))?;
        }
    }
    let fresh = Device::enrolled(&server.url(), &server.code(&a_user));
    fresh.sync().map_err(|e| e.to_string())?;
    let reference = synced_state(&fresh.path());
    let events = reference.iter().filter(|l| l.starts_with("ve|")).count();
    if events != written {
        return Err(format!(
            "server holds {events} visit events, devices wrote {written}"
        ));
    }
    for (i, d) in [&a, &b].into_iter().enumerate() {
        if synced_state(&d.path()) != reference {
            return Err(format!("device {i} differs from the server's records"));
        }
    }
    let days = |d: &Device| -> Result<String, String> {
        let v = d
            .polku
            .visits_between(today - chrono::Duration::days(4), 4, true)
            .map_err(|e| e.to_string())?;
        serde_json::to_string(&v).map_err(|e| e.to_string())
    };
    if days(&a)? != days(&b)? {
        return Err("the two devices derive different visits".into());
    }
    Ok(())
}

#[test]
fn every_visit_event_arrives_exactly_once_despite_faults() {
    let seeds: Vec<u64> = match std::env::var("POLKU_FAULT_SEED") {
        Ok(s) => vec![s.parse().expect("POLKU_FAULT_SEED is a number")],
        Err(_) => (1..=20u64)
            .map(|i| i.wrapping_mul(0x2545_f491_4f6c_dd1d))
            .collect(),
    };
    for seed in seeds {
        if let Err(e) = visit_trial(seed) {
            panic!(
                "visit fault trial failed with seed {seed} (replay: POLKU_FAULT_SEED={seed}): {e}"
            );
        }
    }
}
