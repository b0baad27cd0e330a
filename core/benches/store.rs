//! Store and analytics benchmarks (figures go to docs/benchmarks.md; nothing here asserts a time).
//!
//!   cargo bench -p polku-core --features bench-plaintext --bench store
//!
//! 1. One diary entry through the public API (own transaction, WAL + synchronous=FULL) vs a raw
//!    rusqlite INSERT of the same row into the same schema, same pragmas, plain SQLite; and the
//!    same API call on the encrypted store (SQLCipher's cost).
//! 2. Glucose analytics over one year of 5-minute CGM readings (105 120 rows) from the encrypted
//!    store, with a bare SELECT of the same rows as the floor.
//! 3. Opening an encrypted store of 1 000 000 entries and running the "today" query.
//!
//! Set POLKU_BENCH_QUICK=1 for a short smoke run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use polku_core::diary::*;
use polku_core::time::FixedClock;
use polku_core::{DbKey, OpenOptions, Polku};
use rusqlite::params;

fn quick() -> bool {
    std::env::var("POLKU_BENCH_QUICK").is_ok()
}

struct Stats {
    median: Duration,
    p90: Duration,
    n: usize,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        median: v[v.len() / 2],
        p90: v[v.len() * 9 / 10],
        n: v.len(),
    }
}

fn show(name: &str, s: &Stats) {
    println!(
        "{name:<58} median {:>10.3} ms   p90 {:>10.3} ms   (n={})",
        ms(s.median),
        ms(s.p90),
        s.n
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn key() -> DbKey {
    DbKey::from_bytes([9u8; 32])
}

fn opts(now: chrono::DateTime<Utc>) -> OpenOptions {
    OpenOptions {
        clock: Arc::new(FixedClock::new(now)),
        ..Default::default()
    }
}

fn glucose_entry(i: i64, base: chrono::DateTime<Utc>) -> NewEntry {
    NewEntry::new(EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value {
            mmol_l: 5.0 + (i % 70) as f64 / 10.0,
        },
        unit: GlucoseUnit::MmolL,
        context: MealContext::Fasting,
        hours_after_meal: None,
        source: GlucoseSource::Meter,
    }))
    .at((base + chrono::Duration::minutes(i)).fixed_offset())
}

/// Latency of `diary().add()` of one glucose entry, after a short warm-up.
fn add_latency(p: &Polku, n: i64, base: chrono::DateTime<Utc>) -> Stats {
    let d = p.diary();
    for i in 0..20 {
        d.add(glucose_entry(i, base)).unwrap();
    }
    stats(
        (0..n)
            .map(|i| {
                let e = glucose_entry(100 + i, base);
                let t = Instant::now();
                d.add(e).unwrap();
                t.elapsed()
            })
            .collect(),
    )
}

fn bench_insert(dir: &Path) {
    let n = if quick() { 50 } else { 1000 };
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let base = now - chrono::Duration::days(30);

    // Public API, plaintext store.
    let api_plain = add_latency(
        &Polku::open_plaintext_for_benchmark(&dir.join("api-plain.db"), opts(now)).unwrap(),
        n,
        base,
    );

    // Raw rusqlite INSERT of the same row, same schema and pragmas, plain SQLite.
    let raw_path = dir.join("raw-plain.db");
    drop(Polku::open_plaintext_for_benchmark(&raw_path, opts(now)).unwrap()); // same schema
    let raw = {
        let c = rusqlite::Connection::open(&raw_path).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .unwrap();
        let data = serde_json::to_string(&glucose_entry(0, base).data).unwrap();
        let mut stmt = c
            .prepare(
                "INSERT INTO entry_version (version_id, entry_id, version, subject_no, kind, at_ms, utc_offset_s,
                    author, created_ms, note, data, value, value2, tag, marker, deleted_reason, is_head, import_key, hlc)
                 VALUES (?1, ?2, 1, 1, 'glucose', ?3, 7200, 'a', ?4, NULL, ?5, ?6, NULL, 'meter', NULL, NULL, 1, NULL, ?7)",
            )
            .unwrap();
        let mut one = |i: i64| {
            stmt.execute(params![
                uuid::Uuid::now_v7().to_string(),
                uuid::Uuid::now_v7().to_string(),
                base.timestamp_millis() + i * 60_000,
                now.timestamp_millis(),
                data,
                5.0 + (i % 70) as f64 / 10.0,
                format!("{:016x}-0000-bench", now.timestamp_millis() + i)
            ])
            .unwrap();
        };
        for i in 0..20 {
            one(i);
        }
        stats(
            (0..n)
                .map(|i| {
                    let t = Instant::now();
                    one(100 + i);
                    t.elapsed()
                })
                .collect(),
        )
    };

    // Public API, encrypted store.
    let api_enc = add_latency(
        &Polku::open_with(&dir.join("api-enc.db"), &key(), opts(now)).unwrap(),
        n,
        base,
    );
    println!("\n[1] one diary entry, own transaction, WAL + synchronous=FULL");
    show("raw rusqlite INSERT, plain SQLite (peer)", &raw);
    show("Polku diary().add(), plain SQLite", &api_plain);
    show("Polku diary().add(), SQLCipher", &api_enc);
    println!(
        "ratio API/raw (plain): {:.2}x   SQLCipher cost: {:.2}x of the plain API ({:+.3} ms)",
        ms(api_plain.median) / ms(raw.median),
        ms(api_enc.median) / ms(api_plain.median),
        ms(api_enc.median) - ms(api_plain.median)
    );
}

fn bench_analytics(dir: &Path) {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let start = now - chrono::Duration::days(365);
    let rows: i64 = 105_120;
    let p = Polku::open_with(&dir.join("cgm-year.db"), &key(), opts(now)).unwrap();
    let mut csv = String::from("timestamp,glucose_mmol_l\n");
    for i in 0..rows {
        let t = start + chrono::Duration::minutes(5 * i);
        let v = 7.0 + 3.0 * ((i as f64) / 30.0).sin() + 1.5 * ((i as f64) / 7.0).cos();
        csv.push_str(&format!("{},{:.1}\n", t.to_rfc3339(), v.clamp(2.2, 22.0)));
    }
    let t = Instant::now();
    let r = p.import().cgm(csv.as_bytes(), None).unwrap();
    let import_time = t.elapsed();
    assert_eq!(r.added as i64, rows);
    let end = start + chrono::Duration::minutes(5 * rows);
    let runs = if quick() { 3 } else { 15 };
    let floor = stats((0..runs).map(|_| {
        let t = Instant::now();
        let n = p.store().read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT at_ms, utc_offset_s, value, tag, marker FROM entry_version
                 WHERE subject_no = 1 AND kind = 'glucose' AND is_head = 1 AND deleted_reason IS NULL
                   AND at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms",
            )?;
            let mut rows = stmt.query(params![start.timestamp_millis(), end.timestamp_millis()])?;
            let mut n = 0u64;
            let mut sum = 0.0;
            while let Some(r) = rows.next()? {
                sum += r.get_ref(2)?.as_f64_or_null()?.unwrap_or(0.0) + r.get::<_, i64>(0)? as f64 * 0.0;
                n += 1;
            }
            std::hint::black_box(sum);
            Ok(n)
        }).unwrap();
        assert_eq!(n as i64, rows);
        t.elapsed()
    }).collect());
    let full = stats(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let r = p.analytics().glucose(start, end).unwrap();
                std::hint::black_box(&r);
                assert_eq!(r.cgm.as_ref().unwrap().readings as i64, rows);
                t.elapsed()
            })
            .collect(),
    );
    println!("\n[2] glucose analytics, one year of 5-minute CGM ({rows} rows), encrypted store");
    println!(
        "(import of the {rows}-row generic CSV in one transaction: {:.0} ms)",
        ms(import_time)
    );
    show("bare SELECT of the rows (floor)", &floor);
    show("analytics().glucose(): TIR, SD, GMI, events, AGP", &full);
}

fn bench_open_today(dir: &Path) {
    let n: i64 = if quick() { 20_000 } else { 1_000_000 };
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let path = dir.join("million.db");
    {
        let p = Polku::open_with(&path, &key(), opts(now)).unwrap();
        let t = Instant::now();
        // 1 000 000 entries spread over ~5.7 years, 5 minutes apart, newest today.
        let batch = 20_000;
        let mut i = 0;
        while i < n {
            let news: Vec<NewEntry> = (i..(i + batch).min(n))
                .map(|k| glucose_entry(0, now - chrono::Duration::minutes(5 * (n - k))))
                .collect();
            p.diary().add_many(news).unwrap();
            i += batch;
        }
        println!(
            "\n[3] building an encrypted store of {n} entries took {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let runs = if quick() { 3 } else { 15 };
    let mut today_len = 0;
    let open_only = stats(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let p = Polku::open_with(&path, &key(), opts(now)).unwrap();
                let e = t.elapsed();
                drop(p);
                e
            })
            .collect(),
    );
    let both = stats(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let p = Polku::open_with(&path, &key(), opts(now)).unwrap();
                let today = p.diary().today().unwrap();
                let e = t.elapsed();
                today_len = today.len();
                e
            })
            .collect(),
    );
    show("open only (warm OS page cache)", &open_only);
    show(
        &format!("open + today() ({today_len} entries today)"),
        &both,
    );
    // Cold: the OS page cache dropped before each open (needs root; skipped otherwise).
    let cold: Vec<Duration> = (0..if quick() { 2 } else { 7 })
        .map_while(|_| {
            let _ = std::process::Command::new("sync").status();
            std::fs::write("/proc/sys/vm/drop_caches", "3").ok()?;
            let t = Instant::now();
            let p = Polku::open_with(&path, &key(), opts(now)).unwrap();
            let today = p.diary().today().unwrap();
            let e = t.elapsed();
            std::hint::black_box(today);
            Some(e)
        })
        .collect();
    if cold.is_empty() {
        println!(
            "open + today() with a cold OS page cache: unavailable (dropping caches needs root)"
        );
    } else {
        show(
            "open + today(), OS page cache dropped before each open",
            &stats(cold),
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "database size {:.0} MB (OS page cache warm: repeated opens in one process)",
        size as f64 / 1e6
    );
}

/// The peer of the Kotlin FFI benchmark: the same 1 000-entry list through the core directly.
fn bench_list(dir: &Path) {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let p = Polku::open_with(&dir.join("list.db"), &key(), opts(now)).unwrap();
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let news: Vec<NewEntry> = (0..1000)
        .map(|i| {
            let mut e = glucose_entry(5 * i, base);
            if i % 10 == 0 {
                e.note = Some(format!("muistiinpano {i}"));
            }
            e
        })
        .collect();
    p.diary().add_many(news).unwrap();
    let q = EntryQuery {
        limit: 1000,
        ..Default::default()
    };
    for _ in 0..30 {
        p.diary().list(&q).unwrap();
    }
    let s = stats(
        (0..200)
            .map(|_| {
                let t = Instant::now();
                let page = p.diary().list(&q).unwrap();
                let e = t.elapsed();
                assert_eq!(page.entries.len(), 1000);
                e
            })
            .collect(),
    );
    println!("\n[4] peer of the Kotlin FFI benchmark");
    show("core diary().list(1000 entries), Rust, no FFI", &s);
}

fn main() {
    // `cargo bench` passes --bench; this harness takes no other arguments.
    let dir = tempfile::tempdir().unwrap();
    println!(
        "polku-core store benchmarks{}",
        if quick() { " (QUICK)" } else { "" }
    );
    bench_insert(dir.path());
    bench_analytics(dir.path());
    bench_list(dir.path());
    if std::env::var("POLKU_BENCH_SKIP_MILLION").is_err() {
        bench_open_today(dir.path());
    }
}
