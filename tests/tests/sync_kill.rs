//! `kill -9` during sync. The device process is killed at seeded random moments while it writes
//! and syncs; the server process is killed while devices push. After restarts no acknowledged
//! write is lost, nothing is stored twice, and both databases pass `PRAGMA integrity_check`.
//! `POLKU_KILL_SEED=<n>` replays a run.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use polku_core::diary::{EntryData, NewEntry};
use polku_e2e::{Device, TestServer};
use polku_server::{Role, SqliteStorage, Storage};

fn seed() -> u64 {
    std::env::var("POLKU_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b11_2026)
}

/// Entry ids on the server, read by a fresh device; panics on a duplicate version.
fn server_entries(url: &str, code: &str) -> BTreeSet<String> {
    let fresh = Device::enrolled(url, code);
    fresh.sync().unwrap();
    let conn = rusqlite::Connection::open(fresh.path()).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
        .unwrap();
    let mut stmt = conn.prepare("SELECT entry_id FROM entry_version").unwrap();
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "an entry was stored twice");
    set
}

/// Runs `sync-node MODE DB ROUND` `rounds` times, each SIGKILLed after a seeded number (10 to
/// 10 + `spread`) of acknowledged writes; returns what it acknowledged.
fn acked_until_killed(
    mode: &str,
    path: &std::path::Path,
    rounds: u32,
    spread: u64,
    s: &mut polku_e2e::Rng,
    initial: u64,
) -> BTreeSet<String> {
    let mut acked = BTreeSet::new();
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sync-node"))
            .args([mode, path.to_str().unwrap(), &round.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = 10 + (s.next_u64() % spread) as usize;
        for _ in 0..kill_after {
            let l = lines
                .next()
                .unwrap_or_else(|| panic!("{mode} stopped early (seed {initial})"))
                .unwrap();
            acked.insert(l.strip_prefix("ACK ").unwrap().to_owned());
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    acked
}

/// The killed profile opened again: intact, and synced with nothing left to upload.
fn reopened_and_synced(path: &std::path::Path, initial: u64) -> Device {
    let mut d = Device::new();
    d.polku = polku_core::Polku::open(path, &polku_e2e::key()).unwrap();
    assert_eq!(
        d.polku.store().integrity_check().unwrap(),
        vec!["ok"],
        "seed {initial}"
    );
    polku_e2e::block_on(d.polku.sync().sync(None)).unwrap();
    assert_eq!(d.polku.sync().status().unwrap().pending, 0);
    d
}

#[test]
fn device_killed_during_sync_loses_and_duplicates_nothing() {
    let initial = seed();
    let mut s = polku_e2e::Rng::new(initial);
    let server = TestServer::start();
    let citizen = server.user(Role::Citizen, "Aino");
    let path = {
        let d = Device::enrolled(&server.url(), &server.code(&citizen));
        let p = d.path();
        std::mem::forget(d.dir); // the folder outlives the first handle
        p
    };
    let acked = acked_until_killed("client", &path, 8, 150, &mut s, initial);
    let d = reopened_and_synced(&path, initial);
    let on_server = server_entries(&server.url(), &server.code(&citizen));
    assert!(
        acked.is_subset(&on_server),
        "an acknowledged entry is missing (seed {initial})"
    );
    // Entries written but not yet reported when the kill came are on the device, and so on the server.
    let local: BTreeSet<String> = d
        .polku
        .diary()
        .list_all(Default::default())
        .unwrap()
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(
        on_server, local,
        "device and server differ (seed {initial})"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The same for visits: a home-care worker's device killed at seeded moments while it writes
/// notes of its clients' visits and syncs. Every acknowledged note is on the server once, and
/// the device and the server hold the same events.
#[test]
fn worker_device_killed_during_sync_loses_and_duplicates_no_visit_event() {
    let initial = seed() ^ 0x7151;
    let mut s = polku_e2e::Rng::new(initial);
    let server = TestServer::start();
    let worker = server.user(Role::Professional, "Kotihoitaja");
    let clients: Vec<String> = (0..2)
        .map(|i| server.user(Role::Citizen, &format!("Asiakas {i}")))
        .collect();
    let path = {
        let d = Device::enrolled(&server.url(), &server.code(&worker));
        for c in &clients {
            server.storage.assign(&worker, c).unwrap();
            let today = d.polku.today();
            d.polku
                .for_subject(c)
                .unwrap()
                .visits()
                .set_plan(
                    r#"{"visits": [{"slot": "day", "name": "Käynti", "days": ["daily"], "from": "00:00", "to": "23:59", "tasks": ["meal"]}]}"#,
                    today,
                )
                .unwrap();
        }
        d.sync().unwrap();
        let p = d.path();
        std::mem::forget(d.dir);
        p
    };
    let acked = acked_until_killed("visits", &path, 6, 120, &mut s, initial);
    let _d = reopened_and_synced(&path, initial);
    let notes = |db: &std::path::Path| -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        let mut stmt = c
            .prepare("SELECT note FROM visit_event WHERE kind = 'note' ORDER BY note")
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        rows
    };
    let fresh = Device::enrolled(&server.url(), &server.code(&worker));
    fresh.sync().unwrap();
    let on_server = notes(&fresh.path());
    let unique: BTreeSet<String> = on_server.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        on_server.len(),
        "a visit event was stored twice (seed {initial})"
    );
    assert!(
        acked.is_subset(&unique),
        "an acknowledged note is missing (seed {initial})"
    );
    assert_eq!(
        notes(&path),
        on_server,
        "device and server differ (seed {initial})"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// A server data folder with one citizen and two enrollment codes, and a free loopback address
/// for its process (the same address across restarts, as devices remember it).
fn server_data(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>, String, String) {
    let data = dir.join("server");
    let st = SqliteStorage::init(&data, &polku_e2e::server_key(&data)).unwrap();
    let citizen = st.create_user(Role::Citizen, "Aino").unwrap().id;
    let codes = (0..2)
        .map(|_| st.invite(&citizen, Duration::from_secs(600)).unwrap())
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{addr}");
    (data, codes, addr, url)
}

struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    fn start(data: &std::path::Path, addr: &str) -> ServerProcess {
        for _ in 0..50 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_sync-node"))
                .args(["serve", data.to_str().unwrap(), addr])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            if line.trim() == "ready" {
                return ServerProcess { child };
            }
            // The port may still be held by the killed process for a moment.
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not restart on {addr}");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[test]
fn server_killed_during_pushes_keeps_every_acknowledged_operation() {
    let initial = seed();
    let mut s = polku_e2e::Rng::new(initial);
    let dir = tempfile::tempdir().unwrap();
    let (data, codes, addr, url) = server_data(dir.path());
    let mut server = ServerProcess::start(&data, &addr);
    let device = Device::enrolled(&url, &codes[0]);
    let mut written: BTreeSet<String> = BTreeSet::new();
    for round in 0..6 {
        let news: Vec<NewEntry> = (0..1500)
            .map(|i| {
                NewEntry::new(EntryData::Weight {
                    kg: 60.0 + (i % 100) as f64 / 10.0,
                })
            })
            .collect();
        for e in device.polku.diary().add_many(news).unwrap() {
            written.insert(e.id.to_string());
        }
        let delay = Duration::from_millis(5 + s.next_u64() % 120);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            server.kill();
        });
        let r = device.sync();
        killer.join().unwrap();
        eprintln!(
            "round {round}: sync during kill -> {}",
            if r.is_ok() { "finished first" } else { "cut" }
        );
        server = ServerProcess::start(&data, &addr);
    }
    device.sync().unwrap();
    assert_eq!(device.polku.sync().status().unwrap().pending, 0);
    let on_server = server_entries(&url, &codes[1]);
    assert_eq!(on_server, written, "seed {initial}");
    server.kill();
    let st = SqliteStorage::open(&data, &polku_e2e::server_key(&data)).unwrap();
    assert_eq!(st.integrity_check().unwrap(), vec!["ok"]);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The server is restored from a backup older than some acknowledged uploads and the operator
/// runs `new-epoch`: devices notice, upload everything they hold, and the server has it all again.
#[test]
fn server_restored_from_backup_regains_what_devices_hold() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let (data, codes, addr, url) = server_data(dir.path());
    let server = ServerProcess::start(&data, &addr);
    let device = Device::enrolled(&url, &codes[0]);
    let early = device
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.0 }))
        .unwrap();
    device.sync().unwrap();
    server.kill();
    copy_dir(&data, &backup); // the nightly backup

    let server = ServerProcess::start(&data, &addr);
    let late = device
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Weight { kg: 71.0 }))
        .unwrap();
    device.sync().unwrap();
    assert_eq!(
        device.polku.sync().status().unwrap().pending,
        0,
        "acknowledged by the server"
    );
    server.kill();

    // Disk lost: restore last night's backup, then give it a new epoch.
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    SqliteStorage::new_epoch(&data, &polku_e2e::server_key(&data)).unwrap();
    let server = ServerProcess::start(&data, &addr);
    let r = device.sync().unwrap();
    assert!(r.pushed >= 1, "the late entry is uploaded again: {r:?}");
    let on_server = server_entries(&url, &codes[1]);
    let want: BTreeSet<String> = [early.id.to_string(), late.id.to_string()].into();
    assert_eq!(on_server, want);
    server.kill();
}
