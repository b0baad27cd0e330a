//! Opens THREADS encrypted stores from as many threads at once, as the very first SQLite work in
//! the process, and exits 1 if any open failed. A fresh process is the point: SQLCipher's one-time
//! start-up can race only there (see `store::initialise_sqlcipher`).
//! Usage: open-race DIR THREADS

use polku_core::{DbKey, Polku};
use std::sync::{Arc, Barrier};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: open-race DIR THREADS");
        std::process::exit(2);
    };
    let n: usize = n.parse().unwrap_or(16);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let path = std::path::Path::new(&dir).join(format!("{i}.db"));
            std::thread::spawn(move || {
                barrier.wait();
                Polku::open(&path, &DbKey::from_bytes([3u8; 32])).map(|_| ())
            })
        })
        .collect();
    let mut failed = 0;
    for t in threads {
        if let Err(e) = t.join().expect("open thread panicked") {
            eprintln!("open failed: {e}");
            failed += 1;
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
