//! Writes diary entries as fast as it can and prints `ACK <entry id>` after each write returned.
//! The durability test kills it with SIGKILL at a random moment and checks every acknowledged entry.
//! Usage: durability-writer DB_PATH SEED

use polku_core::diary::{EntryData, NewEntry};
use polku_core::{DbKey, Polku};
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(seed)) = (args.next(), args.next()) else {
        eprintln!("usage: durability-writer DB_PATH SEED");
        std::process::exit(2);
    };
    let seed: u64 = seed.parse().unwrap_or(1);
    let polku = match Polku::open(std::path::Path::new(&path), &DbKey::from_bytes([7u8; 32])) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("open failed: {e}");
            std::process::exit(1);
        }
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut i: u64 = seed.wrapping_mul(1000);
    loop {
        i += 1;
        // Alternate single writes and small batches (one transaction each).
        let batch = if i.is_multiple_of(3) { 5 } else { 1 };
        let news: Vec<NewEntry> = (0..batch)
            .map(|k| NewEntry::new(EntryData::Note).note(format!("durability {i}/{k}")))
            .collect();
        match polku.diary().add_many(news) {
            Ok(entries) => {
                for e in entries {
                    let _ = writeln!(out, "ACK {}", e.id);
                }
                let _ = out.flush();
            }
            Err(e) => {
                eprintln!("write failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
