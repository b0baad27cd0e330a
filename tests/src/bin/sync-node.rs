//! A process to SIGKILL in the sync durability tests.
//! `sync-node serve DATA ADDR`: the server on ADDR (prints "ready" once listening).
//! `sync-node client DB SEED`: writes diary entries to an enrolled profile, printing `ACK <id>`
//! after each write returned, and syncs every few writes (errors ignored), forever.
//! `sync-node visits DB SEED`: writes notes of today's visits of the clients on an enrolled
//! worker's profile, printing `ACK <text>` after each write returned, and syncs every few
//! writes (errors ignored), forever.
//! `sync-node sync DB`: one sync of an enrolled profile (prints "synced"); with POLKU_CRASH_AT
//! set it SIGKILLs itself at that point of messaging instead.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use polku_core::diary::{EntryData, NewEntry};
use polku_core::{DbKey, Polku};
use polku_server::{SqliteStorage, Storage};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let storage: Arc<dyn Storage> = Arc::new(
                SqliteStorage::open(
                    Path::new(&args[2]),
                    &polku_e2e::server_key(Path::new(&args[2])),
                )
                .unwrap(),
            );
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind(&args[3]).await.unwrap();
                println!("ready");
                let _ = std::io::stdout().flush();
                polku_server::serve(l, storage, std::future::pending())
                    .await
                    .unwrap();
            });
        }
        Some("client") => {
            let polku = Polku::open(Path::new(&args[2]), &DbKey::from_bytes([9u8; 32])).unwrap();
            let seed: u64 = args[3].parse().unwrap_or(1);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut out = std::io::stdout().lock();
            for i in 0u64.. {
                let e = polku
                    .diary()
                    .add(NewEntry::new(EntryData::Weight {
                        kg: 50.0 + ((seed + i) % 500) as f64 / 10.0,
                    }))
                    .unwrap();
                let _ = writeln!(out, "ACK {}", e.id);
                let _ = out.flush();
                if i % 7 == 0 {
                    let _ = rt.block_on(polku.sync().sync(None));
                }
            }
        }
        Some("visits") => {
            let polku = Polku::open(Path::new(&args[2]), &DbKey::from_bytes([9u8; 32])).unwrap();
            let seed: u64 = args[3].parse().unwrap_or(1);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let visits = polku.visits_on(polku.today()).unwrap();
            let mut out = std::io::stdout().lock();
            for i in 0u64.. {
                let v = &visits[(i as usize) % visits.len()];
                let text = format!("s{seed} n{i}");
                polku
                    .for_visit(&v.id)
                    .unwrap()
                    .visits()
                    .note(&v.id, &text, None)
                    .unwrap();
                let _ = writeln!(out, "ACK {text}");
                let _ = out.flush();
                if i % 7 == 0 {
                    let _ = rt.block_on(polku.sync().sync(None));
                }
            }
        }
        Some("sync") => {
            let polku = Polku::open(Path::new(&args[2]), &DbKey::from_bytes([9u8; 32])).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(polku.sync().sync(None)).unwrap();
            println!("synced");
        }
        _ => {
            eprintln!(
                "usage: sync-node serve DATA ADDR | sync-node client DB SEED | sync-node sync DB"
            );
            std::process::exit(2);
        }
    }
}
