//! Sync benchmark over loopback (docs/benchmarks.md):
//! 1. initial sync of N operations to a fresh device: operations/s, bytes on the wire, requests,
//!    and the device process's peak RSS growth (the server runs in a child process, so it is not
//!    counted);
//! 2. incremental sync of one new operation: bytes and round-trip time;
//! 3. the server under 200 simulated devices at once, each pushing 50 operations and pulling:
//!    operations/s and p50/p99 request latency.
//!
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

/// CPU seconds (user + system) a process has used so far: `self` or a pid. Less noisy than
/// wall-clock time on a shared VM, and split per process (device, server).
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        rest.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of proc(5), counted from the state (field 3); 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
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
        let storage = std::sync::Arc::new(
            SqliteStorage::open(
                Path::new(&args[2]),
                &polku_e2e::server_key(Path::new(&args[2])),
            )
            .unwrap(),
        );
        let r = tokio::runtime::Runtime::new().unwrap();
        r.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", l.local_addr().unwrap());
            // As in production behind a TLS proxy on this machine (docs/operations.md): the
            // 200 simulated devices all come from 127.0.0.1.
            let limits = polku_server::Limits {
                trusted_proxies: vec![std::net::Ipv4Addr::LOCALHOST.into()],
                ..Default::default()
            };
            polku_server::serve_with(l, storage, limits, std::future::pending())
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
        let cpu0 = cpu_s("self");
        let t = Instant::now();
        let pull = rt().block_on(b.sync().sync(None)).unwrap();
        let pull_s = t.elapsed().as_secs_f64();
        let cpu = cpu_s("self") - cpu0;
        let rss1 = vm_hwm_kb();
        println!(
            "pull   {} ops: {:.2} s, {:.0} ops/s, device CPU {cpu:.2} s, {} requests, {:.1} MB of JSON bodies, peak RSS {:.1} MB -> {:.1} MB (growth {:.1} MB)",
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
    const FLEET: usize = 200;
    let (codes, fleet) = {
        let s = SqliteStorage::init(&data, &polku_e2e::server_key(&data)).unwrap();
        let c = s.create_user(Role::Citizen, "Bench").unwrap().id;
        let codes: Vec<String> = (0..3)
            .map(|_| s.invite(&c, Duration::from_secs(3600)).unwrap())
            .collect();
        let fleet: Vec<(String, String)> = (0..FLEET)
            .map(|i| {
                let u = s
                    .create_user(Role::Citizen, &format!("Fleet {i}"))
                    .unwrap()
                    .id;
                let code = s.invite(&u, Duration::from_secs(3600)).unwrap();
                (u, code)
            })
            .collect();
        (codes, fleet)
    };
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
    let server_pid = child.id().to_string();
    let (cpu0, server0) = (cpu_s("self"), cpu_s(&server_pid));
    let t = Instant::now();
    let push = rt().block_on(a.sync().sync(None)).unwrap();
    let push_s = t.elapsed().as_secs_f64();
    let (cpu, server_cpu) = (cpu_s("self") - cpu0, cpu_s(&server_pid) - server0);
    println!(
        "push   {n} ops: {:.2} s, {:.0} ops/s, device CPU {cpu:.2} s, server CPU {server_cpu:.2} s, {} requests, {:.1} MB of JSON bodies",
        push_s,
        push.pushed as f64 / push_s,
        push.requests,
        push.bytes as f64 / 1e6
    );
    drop(a);

    // Device B: a fresh phone pulls everything, in its own process so its memory is its own.
    let b_dir = tmp.path().join("b");
    let server0 = cpu_s(&server_pid);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["pull", &url, &codes[1]])
        .arg(&b_dir)
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!("pull   server CPU {:.2} s", cpu_s(&server_pid) - server0);
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
    // The same on the wire, headers included: a third device behind a counting pass-through proxy.
    let proxy = polku_e2e::FaultProxy::start(line.trim().parse().unwrap(), 1);
    let c_dir = tmp.path().join("c");
    let c = open(&c_dir);
    rt().block_on(c.sync().enroll(&proxy.url(), &codes[2], None))
        .unwrap();
    let c = open(&c_dir);
    rt().block_on(c.sync().sync(None)).unwrap();
    a.diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.5 }))
        .unwrap();
    rt().block_on(a.sync().sync(None)).unwrap();
    let before = proxy.wire_bytes.load(std::sync::atomic::Ordering::SeqCst);
    let inc = rt().block_on(c.sync().sync(None)).unwrap();
    println!(
        "incr   1 op: {} bytes on the wire (HTTP headers and bodies, {} requests)",
        proxy.wire_bytes.load(std::sync::atomic::Ordering::SeqCst) - before,
        inc.requests
    );
    fleet_bench(&url, fleet);
    let _ = child.kill();
    let _ = child.wait();
}

/// 200 devices at once: enroll, push 50 operations in one request, pull; latency per request.
fn fleet_bench(url: &str, fleet: Vec<(String, String)>) {
    use polku_core::sync::protocol::*;
    polku_core::sync::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let mut tokens = Vec::new();
        for (_, code) in &fleet {
            let r: EnrollResponse = http
                .post(format!("{url}/v1/enroll"))
                .json(&EnrollRequest { code: code.clone(), device_name: None })
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.push(r.token);
        }
        let t = Instant::now();
        let tasks: Vec<_> = fleet
            .iter()
            .zip(tokens)
            .map(|((user, _), token)| {
                let (http, url, user) = (http.clone(), url.to_owned(), user.clone());
                tokio::spawn(async move {
                    let ops: Vec<Op> = (1..=50).map(|i| weight_op(&user, i)).collect();
                    let t0 = Instant::now();
                    let r: PushResponse = http
                        .post(format!("{url}/v1/push"))
                        .bearer_auth(&token)
                        .json(&PushRequest { ops })
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert!(r.results.iter().all(|r| r.status == OpStatus::Applied));
                    let push = t0.elapsed();
                    let t1 = Instant::now();
                    let p: PullResponse = http
                        .post(format!("{url}/v1/pull"))
                        .bearer_auth(&token)
                        .json(&PullRequest { epoch: None, streams: vec![], max_bytes: None })
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(p.streams.len(), 1);
                    (push, t1.elapsed())
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            let (a, b) = t.await.unwrap();
            lat.push(a);
            lat.push(b);
        }
        let total = t.elapsed().as_secs_f64();
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
        println!(
            "fleet  {} devices x 50 ops pushed + pulled: {:.2} s, {:.0} ops/s, request latency p50 {:.1} ms, p99 {:.1} ms",
            fleet.len(),
            total,
            (fleet.len() * 50) as f64 / total,
            pct(0.50),
            pct(0.99)
        );
    });
}

fn weight_op(stream: &str, seq: i64) -> polku_core::sync::protocol::Op {
    let id = uuid::Uuid::now_v7().to_string();
    let ms = chrono_ms();
    let hlc = format!("{ms:016x}-0000-fleet");
    polku_core::sync::protocol::Op {
        op_id: id.clone(),
        stream: stream.to_owned(),
        device_seq: seq,
        hlc: hlc.clone(),
        kind: "diary.entry_version".into(),
        schema_version: 1,
        payload: serde_json::json!({
            "version_id": id, "entry_id": uuid::Uuid::now_v7().to_string(), "version": 1, "kind": "weight",
            "at_ms": ms, "utc_offset_s": 7200, "author": stream, "created_ms": ms, "note": null,
            "data": "{\"kind\":\"weight\",\"kg\":70.0}", "deleted_reason": null, "import_key": null,
            "hlc": hlc, "resolves": null
        }),
    }
}

fn chrono_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
