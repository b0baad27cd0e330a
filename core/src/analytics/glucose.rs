//! Glucose metrics per the International Consensus on Time in Range (Battelino et al., Diabetes
//! Care 2019;42:1593), GMI (Bergenstal et al., Diabetes Care 2018;41:2275) and hypoglycaemic events
//! (Danne et al., Diabetes Care 2017;40:1631), as summarised in ../shared/clinical-reference.md.
//!
//! Choices where the sources leave room (documented in README too):
//! - Bands are decided on the value rounded to 0.1 mmol/L, boundaries inclusive as in the table.
//! - CGM shares are time-weighted: a reading stands for the time until the next one; when the next
//!   reading is more than 1.5 × the sensor's nominal interval away (a gap), it stands for one
//!   nominal interval and the rest of the gap counts for nothing. The nominal interval is the
//!   median spacing of the period's readings.
//! - Mean, SD (sample, n − 1), CV and GMI are per reading. LO/HI markers have no value: they count
//!   in the very-low/very-high bands and as below/above-threshold time, and are reported, but are
//!   left out of mean, SD, GMI and AGP.

use chrono::Timelike;
use serde::Serialize;

use super::stats::{mean, percentile_sorted, sample_sd};
use crate::time;

/// One reading as analytics sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at_ms: i64,
    pub offset_s: i32,
    pub level: Level,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Level {
    /// A value recorded in mmol/L.
    Mmol(f64),
    /// A value recorded in mg/dL, converted to mmol/L (banded against the mg/dL column).
    MgDl(f64),
    /// Below the meter range ("LO").
    Low,
    /// Above the meter range ("HI").
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// CGM: shares of time.
    TimeWeighted,
    /// Finger-stick (meter/manual): shares of readings.
    PerReading,
}

/// Consensus bands, in percent of time (CGM) or of readings (meter).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Bands {
    /// < 3.0 mmol/L (TBR level 2); target < 1 %.
    pub very_low: f64,
    /// 3.0–3.8 mmol/L (TBR level 1).
    pub low: f64,
    /// 3.9–10.0 mmol/L (TIR); target > 70 %.
    pub in_range: f64,
    /// 10.1–13.9 mmol/L (TAR level 1).
    pub high: f64,
    /// > 13.9 mmol/L (TAR level 2); target < 5 %.
    pub very_high: f64,
}

impl Bands {
    /// All time below 3.9 (level 2 included); target < 4 %.
    pub fn below_range(&self) -> f64 {
        self.very_low + self.low
    }
    /// All time above 10.0 (level 2 included); target < 25 %.
    pub fn above_range(&self) -> f64 {
        self.high + self.very_high
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Band {
    VeryLow,
    Low,
    InRange,
    High,
    VeryHigh,
}

/// The value in tenths of mmol/L, rounded half up (the epsilon keeps 3.85 from becoming 3.8 through
/// binary floating point).
pub fn tenths(mmol: f64) -> i64 {
    (mmol * 10.0 + 1e-9).round() as i64
}

impl Level {
    /// The value in mmol/L (`None` for LO/HI).
    pub fn mmol(self) -> Option<f64> {
        match self {
            Level::Mmol(v) | Level::MgDl(v) => Some(v),
            Level::Low | Level::High => None,
        }
    }

    /// Below a consensus threshold given in tenths of mmol/L (39 or 30), compared in the unit the
    /// value was recorded in: 3.9 / 3.0 mmol/L on 0.1, or 70 / 54 mg/dL on whole numbers.
    pub fn below(self, threshold_tenths: i64) -> bool {
        match self {
            Level::Low => true,
            Level::High => false,
            Level::Mmol(v) => tenths(v) < threshold_tenths,
            Level::MgDl(v) => polku_protocol::entry::mg_dl(v) < mg_dl_threshold(threshold_tenths),
        }
    }
}

/// The consensus table's mg/dL column for a mmol/L threshold in tenths.
fn mg_dl_threshold(tenths: i64) -> i64 {
    match tenths {
        30 => 54,
        39 => 70,
        t => (t as f64 / 10.0 * polku_protocol::entry::MG_DL_PER_MMOL_L).round() as i64,
    }
}

/// Consensus band of a value, boundaries inclusive as in the 2019 table, in the unit the value was
/// recorded in (clinical-reference.md): mmol/L on 0.1 (3.0 / 3.9 / 10.0 / 13.9), mg/dL on whole
/// numbers (54 / 70 / 180 / 250), so 181 mg/dL is high and 251 mg/dL very high.
pub fn band(level: Level) -> Band {
    match level {
        Level::Low => Band::VeryLow,
        Level::High => Band::VeryHigh,
        Level::Mmol(v) => match tenths(v) {
            t if t < 30 => Band::VeryLow,
            t if t <= 38 => Band::Low,
            t if t <= 100 => Band::InRange,
            t if t <= 139 => Band::High,
            _ => Band::VeryHigh,
        },
        Level::MgDl(v) => match polku_protocol::entry::mg_dl(v) {
            m if m < 54 => Band::VeryLow,
            m if m < 70 => Band::Low,
            m if m <= 180 => Band::InRange,
            m if m <= 250 => Band::High,
            _ => Band::VeryHigh,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gmi {
    /// GMI (%) = 3.31 + 0.02392 × mean glucose (mg/dL).
    pub percent: f64,
    /// GMI (mmol/mol) = 12.71 + 4.70587 × mean glucose (mmol/L).
    pub mmol_mol: f64,
}

pub fn gmi(mean_mmol_l: f64) -> Gmi {
    let mg_dl = mean_mmol_l * polku_protocol::entry::MG_DL_PER_MMOL_L;
    Gmi {
        percent: 3.31 + 0.02392 * mg_dl,
        mmol_mol: 12.71 + 4.70587 * mean_mmol_l,
    }
}

/// Consensus data sufficiency: at least 14 days with at least 70 % of possible CGM readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sufficiency {
    pub period_days: f64,
    pub nominal_interval_minutes: f64,
    pub possible_readings: u64,
    pub readings: u64,
    pub percent_captured: f64,
    pub sufficient: bool,
    /// Why not, in words, when insufficient.
    pub reason: Option<String>,
}

pub const MIN_DAYS: f64 = 14.0;
pub const MIN_CAPTURE_PERCENT: f64 = 70.0;

/// A hypoglycaemic event: ≥ 15 consecutive minutes below the threshold; it ends after ≥ 15
/// consecutive minutes at or above it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HypoEvent {
    /// 1: below 3.9 mmol/L; 2: below 3.0 mmol/L.
    pub level: u8,
    pub start_ms: i64,
    pub start_offset_s: i32,
    /// When the qualifying recovery began, or where the data stopped.
    pub end_ms: i64,
    pub end_offset_s: i32,
    pub duration_minutes: f64,
    /// Lowest value; `None` when the lowest reading was a LO marker.
    pub nadir_mmol_l: Option<f64>,
    pub nadir_ms: i64,
    /// False when the data ended (or a gap began) before a 15-minute recovery was seen.
    pub recovered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgpHour {
    /// Hour of the local day, 0–23.
    pub hour: u8,
    pub readings: u64,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlucoseSummary {
    pub basis: Basis,
    pub readings: u64,
    /// LO markers (below the meter range), counted as very low.
    pub lo_markers: u64,
    /// HI markers (above the meter range), counted as very high.
    pub hi_markers: u64,
    pub mean_mmol_l: Option<f64>,
    pub sd_mmol_l: Option<f64>,
    /// SD / mean in percent; target ≤ 36 %.
    pub cv_percent: Option<f64>,
    /// Only for CGM, and only when `sufficiency` says the data are sufficient (withheld otherwise).
    pub gmi: Option<Gmi>,
    pub bands: Bands,
    pub below_range_percent: f64,
    pub above_range_percent: f64,
    /// Readings below 3.9 and below 3.0 mmol/L (LO included).
    pub readings_below_3_9: u64,
    pub readings_below_3_0: u64,
    /// Only for CGM.
    pub sufficiency: Option<Sufficiency>,
    /// Only for CGM.
    pub hypo_events: Vec<HypoEvent>,
    /// Hours of the local day with at least one reading.
    pub agp: Vec<AgpHour>,
}

const MINUTE: i64 = 60_000;
const EVENT_MINUTES: i64 = 15;

/// Summarises readings of one basis taken in [from_ms, to_ms). `points` must be sorted by time.
pub fn summarize(
    points: &[Point],
    basis: Basis,
    from_ms: i64,
    to_ms: i64,
) -> Option<GlucoseSummary> {
    if points.is_empty() {
        return None;
    }
    let values: Vec<f64> = points.iter().filter_map(|p| p.level.mmol()).collect();
    let m = mean(&values);
    let sd = sample_sd(&values);
    let cv = match (m, sd) {
        (Some(m), Some(sd)) if m > 0.0 => Some(sd / m * 100.0),
        _ => None,
    };
    let (weights, nominal) = match basis {
        Basis::TimeWeighted => {
            let nominal = nominal_interval_ms(points);
            (time_weights(points, nominal), Some(nominal))
        }
        Basis::PerReading => (vec![1; points.len()], None),
    };
    let bands = band_shares(points, &weights);
    let count_below = |thr: i64| points.iter().filter(|p| p.level.below(thr)).count() as u64;
    let (sufficiency, hypo_events, gmi_v) = match (basis, nominal) {
        (Basis::TimeWeighted, Some(nominal)) => {
            let mut events = hypo_events(points, &weights, 39, 1);
            events.extend(hypo_events(points, &weights, 30, 2));
            events.sort_by_key(|e| (e.start_ms, e.level));
            let enough = sufficiency(points.len() as u64, nominal, from_ms, to_ms);
            // GMI only from sufficient data (consensus 2019; clinical-reference.md): an estimate
            // of HbA1c from a few days of CGM misleads more than it tells.
            let gmi_v = m.filter(|_| enough.sufficient).map(gmi);
            (Some(enough), events, gmi_v)
        }
        _ => (None, Vec::new(), None),
    };
    Some(GlucoseSummary {
        basis,
        readings: points.len() as u64,
        lo_markers: points.iter().filter(|p| p.level == Level::Low).count() as u64,
        hi_markers: points.iter().filter(|p| p.level == Level::High).count() as u64,
        mean_mmol_l: m,
        sd_mmol_l: sd,
        cv_percent: cv,
        gmi: gmi_v,
        below_range_percent: bands.below_range(),
        above_range_percent: bands.above_range(),
        bands,
        readings_below_3_9: count_below(39),
        readings_below_3_0: count_below(30),
        sufficiency,
        hypo_events,
        agp: agp(points),
    })
}

/// Median spacing of consecutive readings (at least one minute).
pub fn nominal_interval_ms(points: &[Point]) -> i64 {
    let mut gaps: Vec<i64> = points
        .windows(2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .filter(|d| *d > 0)
        .collect();
    if gaps.is_empty() {
        return 5 * MINUTE;
    }
    let mid = gaps.len() / 2;
    let (_, median, _) = gaps.select_nth_unstable(mid);
    (*median).max(MINUTE)
}

/// Time each reading stands for (see module docs).
pub fn time_weights(points: &[Point], nominal: i64) -> Vec<i64> {
    let max_spacing = nominal + nominal / 2;
    (0..points.len())
        .map(|i| match points.get(i + 1) {
            Some(next) => {
                let d = next.at_ms - points[i].at_ms;
                if d <= max_spacing {
                    d
                } else {
                    nominal
                }
            }
            None => nominal,
        })
        .collect()
}

fn band_shares(points: &[Point], weights: &[i64]) -> Bands {
    let mut sums = [0i64; 5];
    for (p, w) in points.iter().zip(weights) {
        let i = match band(p.level) {
            Band::VeryLow => 0,
            Band::Low => 1,
            Band::InRange => 2,
            Band::High => 3,
            Band::VeryHigh => 4,
        };
        sums[i] += w;
    }
    let total: i64 = sums.iter().sum();
    if total == 0 {
        return Bands::default();
    }
    let pct = |s: i64| s as f64 * 100.0 / total as f64;
    Bands {
        very_low: pct(sums[0]),
        low: pct(sums[1]),
        in_range: pct(sums[2]),
        high: pct(sums[3]),
        very_high: pct(sums[4]),
    }
}

fn sufficiency(readings: u64, nominal: i64, from_ms: i64, to_ms: i64) -> Sufficiency {
    let span = (to_ms - from_ms).max(0);
    let period_days = span as f64 / 86_400_000.0;
    let possible = (span / nominal).max(1) as u64;
    let percent = (readings as f64 * 100.0 / possible as f64).min(100.0);
    let mut reasons = Vec::new();
    if period_days + 1e-9 < MIN_DAYS {
        reasons.push(format!(
            "the period is {period_days:.1} days; at least {MIN_DAYS} are needed"
        ));
    }
    if percent + 1e-9 < MIN_CAPTURE_PERCENT {
        reasons.push(format!("{percent:.0} % of possible readings were captured; at least {MIN_CAPTURE_PERCENT} % are needed"));
    }
    Sufficiency {
        period_days,
        nominal_interval_minutes: nominal as f64 / MINUTE as f64,
        possible_readings: possible,
        readings,
        percent_captured: percent,
        sufficient: reasons.is_empty(),
        reason: if reasons.is_empty() {
            None
        } else {
            Some(reasons.join("; "))
        },
    }
}

/// Events below `threshold_tenths` (39 = 3.9 mmol/L, 30 = 3.0 mmol/L). A gap in the data (a reading
/// whose weight does not reach the next one) ends any running stretch: the data cannot show that
/// the value stayed low, or recovered, across it.
pub fn hypo_events(
    points: &[Point],
    weights: &[i64],
    threshold_tenths: i64,
    level: u8,
) -> Vec<HypoEvent> {
    struct Open {
        start: usize,
        nadir: usize,
    }
    let is_below = |p: &Point| p.level.below(threshold_tenths);
    let lower = |a: &Point, b: &Point| match (a.level, b.level) {
        (Level::Low, _) => false,
        (_, Level::Low) => true,
        (x, y) => matches!((x.mmol(), y.mmol()), (Some(x), Some(y)) if y < x),
    };
    let min_ms = EVENT_MINUTES * MINUTE;
    let mut events = Vec::new();
    let mut event: Option<Open> = None;
    let mut below_since: Option<usize> = None; // candidate start, outside an event
    let mut nadir_candidate: Option<usize> = None;
    let mut recovering_since: Option<usize> = None; // inside an event
    let mut prev_end: Option<i64> = None;

    let close = |ev: &Open, end_ms: i64, end_offset: i32, recovered: bool| HypoEvent {
        level,
        start_ms: points[ev.start].at_ms,
        start_offset_s: points[ev.start].offset_s,
        end_ms,
        end_offset_s: end_offset,
        duration_minutes: (end_ms - points[ev.start].at_ms) as f64 / MINUTE as f64,
        nadir_mmol_l: points[ev.nadir].level.mmol(),
        nadir_ms: points[ev.nadir].at_ms,
        recovered,
    };

    for (i, p) in points.iter().enumerate() {
        if let Some(pe) = prev_end {
            if p.at_ms > pe {
                // Gap: the running stretch ends where the data stopped.
                if let Some(ev) = event.take() {
                    let last = i - 1;
                    events.push(close(&ev, pe, points[last].offset_s, false));
                }
                below_since = None;
                nadir_candidate = None;
                recovering_since = None;
            }
        }
        let end = p.at_ms + weights[i];
        if let Some(ev) = event.as_mut() {
            if is_below(p) {
                recovering_since = None;
                if lower(&points[ev.nadir], p) {
                    ev.nadir = i;
                }
            } else {
                let since = *recovering_since.get_or_insert(i);
                if end - points[since].at_ms >= min_ms {
                    let ev = event.take().expect("event is open");
                    events.push(close(
                        &ev,
                        points[since].at_ms,
                        points[since].offset_s,
                        true,
                    ));
                    recovering_since = None;
                }
            }
        } else if is_below(p) {
            let start = *below_since.get_or_insert(i);
            let n = nadir_candidate.get_or_insert(i);
            if lower(&points[*n], p) {
                *n = i;
            }
            if end - points[start].at_ms >= min_ms {
                event = Some(Open {
                    start,
                    nadir: nadir_candidate.take().unwrap_or(i),
                });
                below_since = None;
            }
        } else {
            below_since = None;
            nadir_candidate = None;
        }
        prev_end = Some(end);
    }
    if let Some(ev) = event {
        let (end_ms, off) = match recovering_since {
            Some(s) => (points[s].at_ms, points[s].offset_s),
            None => (
                prev_end.unwrap_or(points[ev.start].at_ms),
                points[points.len() - 1].offset_s,
            ),
        };
        events.push(close(&ev, end_ms, off, false));
    }
    events
}

/// AGP: 5th, 25th, 50th, 75th and 95th percentiles per hour of the local day (the wall clock the
/// reading was taken in).
pub fn agp(points: &[Point]) -> Vec<AgpHour> {
    let mut bins: Vec<Vec<f64>> = vec![Vec::new(); 24];
    for p in points {
        if let Some(v) = p.level.mmol() {
            let h = time::wall_clock(p.at_ms, p.offset_s).hour() as usize;
            bins[h].push(v);
        }
    }
    bins.into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(h, mut b)| {
            b.sort_by(|a, c| a.total_cmp(c));
            let q = |p| percentile_sorted(&b, p).unwrap_or(f64::NAN);
            AgpHour {
                hour: h as u8,
                readings: b.len() as u64,
                p5: q(5.0),
                p25: q(25.0),
                p50: q(50.0),
                p75: q(75.0),
                p95: q(95.0),
            }
        })
        .collect()
}
