//! Proves the encryption at rest: canary texts never appear in the database, WAL or SHM files.
mod common;

use common::*;
use polku_core::diary::*;
use polku_core::{DbKey, Polku};

const NOTE_CANARY: &str = "CANARY-note-7f3a9e-kipu-rinnassa";
const SYMPTOM_CANARY: &str = "CANARY-symptom-b81c44-hengenahdistus";

fn files(db: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let p = format!("{}{s}", db.display());
            std::fs::read(&p).ok().map(|b| (p, b))
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn canaries_never_reach_the_disk_in_the_clear() {
    let p = profile();
    let db = p.dir.path().join("polku.db");
    // Enough rows to spill pages through the WAL.
    let mut news = vec![
        NewEntry::new(EntryData::Note).note(NOTE_CANARY),
        NewEntry::new(EntryData::Symptom {
            code: SymptomCode::ShortnessOfBreath,
            severity: 7,
        })
        .note(SYMPTOM_CANARY),
    ];
    for i in 0..500 {
        news.push(NewEntry::new(EntryData::Note).note(format!("{NOTE_CANARY}-{i}")));
    }
    p.polku.diary().add_many(news).unwrap();

    // While open: the WAL holds the fresh pages.
    let open_files = files(&db);
    assert!(
        open_files
            .iter()
            .any(|(p, b)| p.ends_with("-wal") && !b.is_empty()),
        "WAL in use"
    );
    for (path, bytes) in &open_files {
        assert!(
            !contains(bytes, NOTE_CANARY),
            "note canary in clear in {path}"
        );
        assert!(
            !contains(bytes, SYMPTOM_CANARY),
            "symptom canary in clear in {path}"
        );
        assert!(
            !contains(bytes, "shortness_of_breath"),
            "symptom code in clear in {path}"
        );
    }
    let main = std::fs::read(&db).unwrap();
    assert_ne!(&main[..16], b"SQLite format 3\0");

    // After closing (checkpoint into the main file) as well.
    drop(p.polku);
    for (path, bytes) in files(&db) {
        assert!(
            !contains(&bytes, NOTE_CANARY),
            "note canary in clear in {path}"
        );
        assert!(
            !contains(&bytes, SYMPTOM_CANARY),
            "symptom canary in clear in {path}"
        );
    }
    let main = std::fs::read(&db).unwrap();
    assert_ne!(&main[..16], b"SQLite format 3\0");

    // And the data is really there for the right key.
    let again = Polku::open(&db, &key()).unwrap();
    let notes = again
        .diary()
        .list(&EntryQuery {
            kinds: vec![EntryKind::Symptom],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(notes.entries[0].note.as_deref(), Some(SYMPTOM_CANARY));
    drop(again);
    assert!(matches!(
        Polku::open(&db, &DbKey::from_bytes([1u8; 32])),
        Err(polku_core::Error::WrongKey { .. })
    ));
}
