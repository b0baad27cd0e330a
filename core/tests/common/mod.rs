#![allow(dead_code)]
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use polku_core::diary::*;
use polku_core::time::FixedClock;
use polku_core::{DbKey, OpenOptions, Polku};

pub struct Profile {
    pub dir: tempfile::TempDir,
    pub polku: Polku,
    pub clock: Arc<FixedClock>,
}

pub fn key() -> DbKey {
    DbKey::from_bytes([42u8; 32])
}

/// A fresh encrypted profile whose clock stands at `now`.
pub fn profile_at(now: DateTime<Utc>) -> Profile {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let polku = Polku::open_with(
        &dir.path().join("polku.db"),
        &key(),
        OpenOptions {
            clock: clock.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    Profile { dir, polku, clock }
}

pub fn profile() -> Profile {
    profile_at(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap())
}

/// A Helsinki wall-clock time (winter: +02:00, summer: +03:00 as the date dictates).
pub fn hki(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<FixedOffset> {
    chrono_tz::Europe::Helsinki
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .fixed_offset()
}

pub fn glucose(mmol_l: f64, source: GlucoseSource) -> EntryData {
    EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value { mmol_l },
        unit: GlucoseUnit::MmolL,
        context: MealContext::Other,
        hours_after_meal: None,
        source,
    })
}

pub fn bp(systolic: u16, diastolic: u16, series: Option<BpSeries>) -> EntryData {
    EntryData::BloodPressure(BloodPressure {
        systolic,
        diastolic,
        pulse: None,
        arm: None,
        series,
    })
}
