//! The durability promise (README): an entry acknowledged to the caller survives `kill -9` of the
//! process. A writer process is SIGKILLed at seeded random moments, repeatedly on the same
//! database; afterwards every acknowledged entry must be there and the database must pass
//! `PRAGMA integrity_check`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use polku_core::{DbKey, Polku};
use uuid::Uuid;

#[test]
fn acknowledged_entries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("polku.db");
    let initial: u64 = std::env::var("POLKU_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let mut seed = polku_e2e::Rng::new(initial);
    let mut acked: Vec<Uuid> = Vec::new();
    for round in 0..8 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_durability-writer"))
            .arg(&db)
            .arg(round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let kill_after = 20 + (seed.next_u64() % 400) as usize;
        let mut got = 0;
        while got < kill_after {
            match lines.next() {
                Some(Ok(l)) => {
                    let id = l
                        .strip_prefix("ACK ")
                        .unwrap_or_else(|| panic!("unexpected line {l:?}"));
                    acked.push(Uuid::parse_str(id).unwrap());
                    got += 1;
                }
                _ => panic!("writer stopped early in round {round} (seed {initial:#x})"),
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
    }
    let polku = Polku::open(&db, &DbKey::from_bytes([7u8; 32])).unwrap();
    assert_eq!(
        polku.store().integrity_check().unwrap(),
        vec!["ok".to_string()],
        "seed {initial:#x}"
    );
    for id in &acked {
        assert!(
            polku.diary().get(*id).is_ok(),
            "acknowledged entry {id} lost (seed {initial:#x})"
        );
    }
    assert!(acked.len() >= 8 * 20);
}
