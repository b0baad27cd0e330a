//! Home blood-pressure series per Käypä hoito (Kohonnut verenpaine, 2020): morning and evening
//! double measurements (two readings 1–2 minutes apart) on 4–7 consecutive days; the mean of the
//! series is compared with the home target < 135/85 mmHg (< 125/80 when risk is high).
//!
//! Choices (*open* in the reference, documented in README):
//! - A reading's series is its explicit morning/evening tag, else its local time: 04:00–11:59 is
//!   morning, 16:00–23:59 evening; other readings are in no series.
//! - A day qualifies with at least two morning and two evening readings.
//! - The series is the most recent run of consecutive qualifying days, its last seven days at most;
//!   it is complete from four days on. Its mean is over every morning and evening reading of its days.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Timelike};
use serde::Serialize;

use super::stats::mean;
use crate::time;
use polku_protocol::entry::BpSeries;

pub const TARGET: (f64, f64) = (135.0, 85.0);
pub const HIGH_RISK_TARGET: (f64, f64) = (125.0, 80.0);
pub const MIN_SERIES_DAYS: usize = 4;
pub const MAX_SERIES_DAYS: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BpPoint {
    pub at_ms: i64,
    pub offset_s: i32,
    pub systolic: f64,
    pub diastolic: f64,
    pub series: Option<BpSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomeSeries {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub days: u32,
    pub readings: u32,
    pub mean_systolic: f64,
    pub mean_diastolic: f64,
    /// 4–7 consecutive qualifying days.
    pub complete: bool,
    /// Mean below 135/85.
    pub at_target: bool,
    /// Mean below 125/80.
    pub at_high_risk_target: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BpReport {
    pub readings: u64,
    pub mean_systolic: Option<f64>,
    pub mean_diastolic: Option<f64>,
    /// Days in the period with ≥ 2 morning and ≥ 2 evening readings.
    pub qualifying_days: u32,
    /// The most recent run of consecutive qualifying days (see module docs); `None` without any.
    pub home_series: Option<HomeSeries>,
}

pub fn series_of(p: &BpPoint) -> Option<BpSeries> {
    p.series
        .or_else(|| match time::wall_clock(p.at_ms, p.offset_s).hour() {
            4..=11 => Some(BpSeries::Morning),
            16..=23 => Some(BpSeries::Evening),
            _ => None,
        })
}

#[derive(Default)]
struct Day {
    morning: u32,
    evening: u32,
    sys: Vec<f64>,
    dia: Vec<f64>,
}

/// The first day on which `days` consecutive qualifying days were reached, and the longest run
/// of consecutive qualifying days (for a measurement period's progress). A later, shorter run
/// does not undo an earlier complete one.
pub fn first_run_of(points: &[BpPoint], days: u32) -> (Option<NaiveDate>, u32) {
    let mut per_day: BTreeMap<NaiveDate, (u32, u32)> = BTreeMap::new();
    for p in points {
        let Some(s) = series_of(p) else { continue };
        let d = per_day
            .entry(time::wall_clock(p.at_ms, p.offset_s).date_naive())
            .or_default();
        match s {
            BpSeries::Morning => d.0 += 1,
            BpSeries::Evening => d.1 += 1,
        }
    }
    let (mut reached, mut longest, mut run) = (None, 0u32, 0u32);
    let mut prev: Option<NaiveDate> = None;
    for (day, _) in per_day.iter().filter(|(_, (m, e))| *m >= 2 && *e >= 2) {
        run = if prev.and_then(|p| p.succ_opt()) == Some(*day) {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
        if run == days && reached.is_none() {
            reached = Some(*day);
        }
        prev = Some(*day);
    }
    (reached, longest)
}

pub fn analyze(points: &[BpPoint]) -> BpReport {
    let sys: Vec<f64> = points.iter().map(|p| p.systolic).collect();
    let dia: Vec<f64> = points.iter().map(|p| p.diastolic).collect();
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    for p in points {
        let Some(s) = series_of(p) else { continue };
        let d = days
            .entry(time::wall_clock(p.at_ms, p.offset_s).date_naive())
            .or_default();
        match s {
            BpSeries::Morning => d.morning += 1,
            BpSeries::Evening => d.evening += 1,
        }
        d.sys.push(p.systolic);
        d.dia.push(p.diastolic);
    }
    let qualifying: Vec<(&NaiveDate, &Day)> = days
        .iter()
        .filter(|(_, d)| d.morning >= 2 && d.evening >= 2)
        .collect();

    // The most recent run of consecutive qualifying days.
    let mut run_start = qualifying.len();
    for i in (0..qualifying.len()).rev() {
        if i + 1 < qualifying.len() && qualifying[i].0.succ_opt() != Some(*qualifying[i + 1].0) {
            break;
        }
        run_start = i;
    }
    let run = &qualifying[run_start..];
    let run = &run[run.len().saturating_sub(MAX_SERIES_DAYS)..];
    let home_series = if run.is_empty() {
        None
    } else {
        let s: Vec<f64> = run
            .iter()
            .flat_map(|(_, d)| d.sys.iter().copied())
            .collect();
        let di: Vec<f64> = run
            .iter()
            .flat_map(|(_, d)| d.dia.iter().copied())
            .collect();
        let ms = mean(&s).unwrap_or(f64::NAN);
        let md = mean(&di).unwrap_or(f64::NAN);
        Some(HomeSeries {
            first_day: *run[0].0,
            last_day: *run[run.len() - 1].0,
            days: run.len() as u32,
            readings: s.len() as u32,
            mean_systolic: ms,
            mean_diastolic: md,
            complete: run.len() >= MIN_SERIES_DAYS,
            at_target: ms < TARGET.0 && md < TARGET.1,
            at_high_risk_target: ms < HIGH_RISK_TARGET.0 && md < HIGH_RISK_TARGET.1,
        })
    };
    BpReport {
        readings: points.len() as u64,
        mean_systolic: mean(&sys),
        mean_diastolic: mean(&dia),
        qualifying_days: qualifying.len() as u32,
        home_series,
    }
}
