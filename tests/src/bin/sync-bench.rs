//! Sync benchmark over loopback (docs/benchmarks.md):
//! 1. initial sync of N operations to a fresh device: operations/s, bytes on the wire, requests,
//!    and the device process's peak RSS growth (the server runs in a child process, so it is not
//!    counted);
//! 2. incremental sync of one new operation: bytes and round-trip time.
//! Usage: cargo run --release -p polku-e2e --bin sync-bench -- [N]   (default 100000)

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use polku_core::diary::{EntryData, NewEntry};
use polku_core::{DbKey, Polku};
use polku_server::{Role, SqliteStorage, Storage};

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn open(dir: &Path) -> Polku {
    Polku::open(&dir.join("polku.db"), &DbKey::from_bytes([5u8; 32])).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        // Child mode: the server, in its own process.
        let storage = std::sync::Arc::new(SqliteStorage::open(Path::new(&args[2])).unwrap());
        let r = tokio::runtime::Runtime::new().unwrap();
        r.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", l.local_addr().unwrap());
            polku_server::serve(l, storage, std::future::pending())
                .await
                .unwrap();
        });
        return;
    }
    if args.get(1).map(String::as_str) == Some("pull") {
        // Child mode: a fresh device enrolls and pulls everything.
        let dir = Path::new(&args[4]);
        let b = open(dir);
        rt().block_on(b.sync().enroll(&args[2], &args[3], None))
            .unwrap();
        let b = open(dir);
        let rss0 = vm_hwm_kb();
        let t = Instant::now();
        let pull = rt().block_on(b.sync().sync(None)).unwrap();
        let pull_s = t.elapsed().as_secs_f64();
        let rss1 = vm_hwm_kb();
        println!(
            "pull   {} ops: {:.2} s, {:.0} ops/s, {} requests, {:.1} MB of JSON bodies, peak RSS {:.1} MB -> {:.1} MB (growth {:.1} MB)",
            pull.pulled,
            pull_s,
            pull.pulled as f64 / pull_s,
            pull.requests,
            pull.bytes as f64 / 1e6,
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0,
            (rss1.saturating_sub(rss0)) as f64 / 1024.0
        );
        return;
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let (citizen, codes) = {
        let s = SqliteStorage::init(&data).unwrap();
        let c = s.create_user(Role::Citizen, "Bench").unwrap().id;
        let codes: Vec<String> = (0..2)
            .map(|_| s.invite(&c, Duration::from_secs(3600)).unwrap())
            .collect();
        (c, codes)
    };
    let _ = citizen;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("serve")
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("http://{}", line.trim());

    // Device A writes N entries and uploads them.
    let a_dir = tmp.path().join("a");
    let a = open(&a_dir);
    rt().block_on(a.sync().enroll(&url, &codes[0], None))
        .unwrap();
    let a = open(&a_dir);
    for chunk in 0..n.div_ceil(1000) {
        let batch: Vec<NewEntry> = (0..1000.min(n - chunk * 1000))
            .map(|i| {
                NewEntry::new(EntryData::Weight {
                    kg: 60.0 + (i % 400) as f64 / 10.0,
                })
            })
            .collect();
        a.diary().add_many(batch).unwrap();
    }
    let t = Instant::now();
    let push = rt().block_on(a.sync().sync(None)).unwrap();
    let push_s = t.elapsed().as_secs_f64();
    println!(
        "push   {n} ops: {:.2} s, {:.0} ops/s, {} requests, {:.1} MB of JSON bodies",
        push_s,
        push.pushed as f64 / push_s,
        push.requests,
        push.bytes as f64 / 1e6
    );
    drop(a);

    // Device B: a fresh phone pulls everything, in its own process so its memory is its own.
    let b_dir = tmp.path().join("b");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["pull", &url, &codes[1]])
        .arg(&b_dir)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = open(&b_dir);

    // Incremental: one new operation on A, then B syncs.
    let a = open(&a_dir);
    a.diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.0 }))
        .unwrap();
    rt().block_on(a.sync().sync(None)).unwrap();
    let t = Instant::now();
    let inc = rt().block_on(b.sync().sync(None)).unwrap();
    println!(
        "incr   1 op: {:.1} ms, {} requests, {} bytes of JSON bodies",
        t.elapsed().as_secs_f64() * 1000.0,
        inc.requests,
        inc.bytes
    );
    let _ = child.kill();
}
