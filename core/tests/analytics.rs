//! Analytics against hand-computed values (worked out in the comments).
mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use polku_core::analytics::glucose::{self, band, Band, Basis, Level, Point};
use polku_core::diary::*;

const MIN: i64 = 60_000;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

fn pts(spec: &[(i64, f64)]) -> Vec<Point> {
    spec.iter()
        .map(|&(min, v)| Point {
            at_ms: min * MIN,
            offset_s: 7200,
            level: Level::Mmol(v),
        })
        .collect()
}

#[test]
fn band_boundaries_on_tenths() {
    let cases = [
        (2.94, Band::VeryLow), // 2.9
        (2.95, Band::Low),     // rounds to 3.0
        (3.0, Band::Low),
        (3.8, Band::Low),
        (3.84, Band::Low),     // 3.8
        (3.85, Band::InRange), // 3.9
        (3.9, Band::InRange),
        (10.0, Band::InRange),
        (10.04, Band::InRange), // 10.0
        (10.05, Band::High),    // 10.1
        (10.1, Band::High),
        (13.9, Band::High),
        (13.94, Band::High),
        (13.95, Band::VeryHigh), // 14.0
        (14.0, Band::VeryHigh),
    ];
    for (v, b) in cases {
        assert_eq!(band(Level::Mmol(v)), b, "{v}");
    }
    assert_eq!(band(Level::Low), Band::VeryLow);
    assert_eq!(band(Level::High), Band::VeryHigh);
    // mg/dL table edges after conversion (÷ 18.016) and rounding: 70 → 3.89 → 3.9 in range,
    // 69 → 3.83 → 3.8 low, 54 → 2.997 → 3.0 low, 53 → 2.94 → very low, 180 → 9.99 in range,
    // 250 → 13.88 → 13.9 high. (181 mg/dL → 10.05 → 10.0 in range: the reference classifies on
    // mmol/L rounded to 0.1, where the two tables disagree by one mg/dL.)
    let mg = |v: f64| Level::Mmol(v / 18.016);
    assert_eq!(band(mg(70.0)), Band::InRange);
    assert_eq!(band(mg(69.0)), Band::Low);
    assert_eq!(band(mg(54.0)), Band::Low);
    assert_eq!(band(mg(53.0)), Band::VeryLow);
    assert_eq!(band(mg(180.0)), Band::InRange);
    assert_eq!(band(mg(250.0)), Band::High);
    assert_eq!(band(mg(253.0)), Band::VeryHigh);
}

#[test]
fn meter_summary_hand_computed() {
    // Eight readings, one at each side of every boundary.
    let p = pts(&[
        (0, 2.9),
        (60, 3.0),
        (120, 3.8),
        (180, 3.9),
        (240, 10.0),
        (300, 10.1),
        (360, 13.9),
        (420, 14.0),
    ]);
    let s = glucose::summarize(&p, Basis::PerReading, 0, 480 * MIN).unwrap();
    assert_eq!(s.readings, 8);
    // Shares of readings: 1/8, 2/8, 2/8, 2/8, 1/8.
    close(s.bands.very_low, 12.5);
    close(s.bands.low, 25.0);
    close(s.bands.in_range, 25.0);
    close(s.bands.high, 25.0);
    close(s.bands.very_high, 12.5);
    close(s.below_range_percent, 37.5);
    close(s.above_range_percent, 37.5);
    // Mean 61.6 / 8 = 7.7; Σ(x − 7.7)² = 163.96; sample SD = √(163.96 / 7) = 4.83973...
    close(s.mean_mmol_l.unwrap(), 7.7);
    close(s.sd_mmol_l.unwrap(), (163.96f64 / 7.0).sqrt());
    close(
        s.cv_percent.unwrap(),
        (163.96f64 / 7.0).sqrt() / 7.7 * 100.0,
    );
    assert_eq!(s.readings_below_3_9, 3);
    assert_eq!(s.readings_below_3_0, 1);
    assert!(
        s.gmi.is_none() && s.sufficiency.is_none() && s.hypo_events.is_empty(),
        "CGM-only metrics"
    );
}

#[test]
fn gmi_formula() {
    // 7.7 mmol/L = 138.7232 mg/dL; 3.31 + 0.02392 × 138.7232 = 6.628259; 12.71 + 4.70587 × 7.7 = 48.945199.
    let g = glucose::gmi(7.7);
    close(g.percent, 3.31 + 0.02392 * 7.7 * 18.016);
    assert!((g.percent - 6.628259).abs() < 1e-5);
    assert!((g.mmol_mol - 48.945199).abs() < 1e-5);
}

#[test]
fn cgm_shares_are_time_weighted_and_gaps_excluded() {
    // Times 0, 5, 11, 16, 100 min. Spacings 5, 6, 5, 84: median (upper) = 6 min, so a spacing up
    // to 9 min is regular. Weights: 5, 6, 5, 6 (gap follows: one nominal interval), 6 (last).
    // In range (5.0, 5.0): 11 of 28; high (12.0, 12.0): 11 of 28; very low (2.5): 6 of 28.
    let p = pts(&[(0, 5.0), (5, 5.0), (11, 12.0), (16, 12.0), (100, 2.5)]);
    let s = glucose::summarize(&p, Basis::TimeWeighted, 0, 106 * MIN).unwrap();
    close(s.bands.in_range, 11.0 / 28.0 * 100.0);
    close(s.bands.high, 11.0 / 28.0 * 100.0);
    close(s.bands.very_low, 6.0 / 28.0 * 100.0);
    // Per-reading share would be 40 / 40 / 20: the weighting matters.
    let suf = s.sufficiency.unwrap();
    close(suf.nominal_interval_minutes, 6.0);
    assert!(!suf.sufficient);
}

#[test]
fn hypo_event_spanning_midnight() {
    // Helsinki, 5-minute CGM: below 3.9 from 23:45 to 00:10, nadir 2.7 at 00:00, recovered from 00:15.
    let base = hki(2026, 11, 20, 23, 40);
    let values = [5.0, 3.5, 3.4, 2.8, 2.7, 2.9, 3.6, 4.2, 4.5, 4.8, 5.0];
    let p: Vec<Point> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Point {
            at_ms: (base + Duration::minutes(5 * i as i64)).timestamp_millis(),
            offset_s: 7200,
            level: Level::Mmol(*v),
        })
        .collect();
    let s = glucose::summarize(&p, Basis::TimeWeighted, p[0].at_ms, p[10].at_ms + 5 * MIN).unwrap();
    let l1: Vec<_> = s.hypo_events.iter().filter(|e| e.level == 1).collect();
    let l2: Vec<_> = s.hypo_events.iter().filter(|e| e.level == 2).collect();
    assert_eq!(l1.len(), 1);
    assert_eq!(l2.len(), 1);
    let e = l1[0];
    assert_eq!(
        e.start_ms,
        (base + Duration::minutes(5)).timestamp_millis(),
        "23:45"
    );
    assert_eq!(
        e.end_ms,
        (base + Duration::minutes(35)).timestamp_millis(),
        "00:15, the next day"
    );
    close(e.duration_minutes, 30.0);
    assert_eq!(e.nadir_mmol_l, Some(2.7));
    assert_eq!(
        e.nadir_ms,
        (base + Duration::minutes(20)).timestamp_millis()
    );
    assert!(e.recovered);
    // Level 2: 2.8, 2.7, 2.9 (23:55–00:10) = 15 min; recovered from 00:10.
    let e2 = l2[0];
    assert_eq!(
        e2.start_ms,
        (base + Duration::minutes(15)).timestamp_millis()
    );
    assert_eq!(e2.end_ms, (base + Duration::minutes(30)).timestamp_millis());
    close(e2.duration_minutes, 15.0);
}

#[test]
fn short_dips_and_short_recoveries() {
    // 10 minutes below: no event.
    let p = pts(&[
        (0, 5.0),
        (5, 3.5),
        (10, 3.5),
        (15, 5.0),
        (20, 5.0),
        (25, 5.0),
        (30, 5.0),
    ]);
    let s = glucose::summarize(&p, Basis::TimeWeighted, 0, 35 * MIN).unwrap();
    assert!(s.hypo_events.is_empty());
    // 15 min below, 10 min up, 15 min below again, then 15 min up: one event, 0 → 40 min.
    let p = pts(&[
        (0, 3.5),
        (5, 3.5),
        (10, 3.5),
        (15, 4.5),
        (20, 4.5),
        (25, 3.0),
        (30, 3.2),
        (35, 3.3),
        (40, 5.0),
        (45, 5.0),
        (50, 5.0),
        (55, 5.0),
    ]);
    let s = glucose::summarize(&p, Basis::TimeWeighted, 0, 60 * MIN).unwrap();
    let l1: Vec<_> = s.hypo_events.iter().filter(|e| e.level == 1).collect();
    assert_eq!(
        l1.len(),
        1,
        "a recovery shorter than 15 min does not end the event"
    );
    assert_eq!(l1[0].end_ms, 40 * MIN);
    assert_eq!(l1[0].nadir_mmol_l, Some(3.0));
}

#[test]
fn a_gap_ends_an_event_unrecovered() {
    // 20 min below, then the sensor stops for an hour.
    let p = pts(&[
        (0, 3.0),
        (5, 3.0),
        (10, 3.0),
        (15, 3.0),
        (80, 6.0),
        (85, 6.0),
        (90, 6.0),
        (95, 6.0),
    ]);
    let s = glucose::summarize(&p, Basis::TimeWeighted, 0, 100 * MIN).unwrap();
    let e = s.hypo_events.iter().find(|e| e.level == 1).unwrap();
    assert_eq!(e.end_ms, 20 * MIN, "ends where the data stopped");
    assert!(!e.recovered);
}

#[test]
fn sufficiency_needs_14_days_and_70_percent() {
    let five_min = |days: i64, keep_every: i64, drop_every: i64| -> Vec<Point> {
        (0..days * 288)
            .filter(|i| drop_every == 0 || i % drop_every < keep_every)
            .map(|i| Point {
                at_ms: i * 5 * MIN,
                offset_s: 7200,
                level: Level::Mmol(6.0),
            })
            .collect()
    };
    let day = 1440 * MIN;
    // 14 days = 4032 possible readings; keeping 8 of every 10 keeps 403 × 8 + 2 = 3226 (80.01 %).
    let s = glucose::summarize(&five_min(14, 8, 10), Basis::TimeWeighted, 0, 14 * day)
        .unwrap()
        .sufficiency
        .unwrap();
    assert!(s.sufficient, "{s:?}");
    assert_eq!(s.readings, 3226);
    close(s.percent_captured, 3226.0 / 4032.0 * 100.0);
    assert_eq!(s.possible_readings, 14 * 288);
    // 13 days complete: too short.
    let s = glucose::summarize(&five_min(13, 1, 0), Basis::TimeWeighted, 0, 13 * day)
        .unwrap()
        .sufficiency
        .unwrap();
    assert!(!s.sufficient);
    assert!(s.reason.unwrap().contains("13.0 days"));
    // 14 days keeping 6 of every 10: 403 × 6 + 2 = 2420 (60.02 %).
    let s = glucose::summarize(&five_min(14, 6, 10), Basis::TimeWeighted, 0, 14 * day)
        .unwrap()
        .sufficiency
        .unwrap();
    assert!(!s.sufficient);
    close(s.percent_captured, 2420.0 / 4032.0 * 100.0);
    // No data at all: no summary rather than NaNs.
    assert!(glucose::summarize(&[], Basis::TimeWeighted, 0, day).is_none());
}

#[test]
fn agp_uses_the_local_wall_clock_across_dst() {
    let tz = chrono_tz::Europe::Helsinki;
    let hourly = |day_start: chrono::DateTime<Utc>, hours: i64| -> Vec<Point> {
        (0..hours)
            .map(|h| {
                let at = day_start + Duration::hours(h);
                let local = polku_core::time::in_zone(at, tz);
                Point {
                    at_ms: at.timestamp_millis(),
                    offset_s: local.offset().local_minus_utc(),
                    level: Level::Mmol(5.0 + h as f64 / 10.0),
                }
            })
            .collect()
    };
    // Autumn: 2026-10-25 has 25 hours; local 03:00–03:59 happens twice.
    let (s, e) = polku_core::time::local_day_bounds(
        chrono::NaiveDate::from_ymd_opt(2026, 10, 25).unwrap(),
        tz,
    );
    let p = hourly(s, (e - s).num_hours());
    assert_eq!(p.len(), 25);
    let agp = glucose::agp(&p);
    assert_eq!(agp.len(), 24);
    let h3 = agp.iter().find(|b| b.hour == 3).unwrap();
    assert_eq!(h3.readings, 2);
    // The two 03:xx readings are hours 3 and 4 after midnight: 5.3 and 5.4; median 5.35.
    close(h3.p50, 5.35);
    close(h3.p5, 5.3 + 0.05 * 0.1);
    // Spring: 2026-03-29 has 23 hours and no 03:xx at all.
    let (s, e) = polku_core::time::local_day_bounds(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 29).unwrap(),
        tz,
    );
    let p = hourly(s, (e - s).num_hours());
    assert_eq!(p.len(), 23);
    let agp = glucose::agp(&p);
    assert_eq!(agp.len(), 23);
    assert!(agp.iter().all(|b| b.hour != 3));
    assert!(agp.iter().all(|b| b.readings == 1));
}

#[test]
fn glucose_report_from_the_diary_splits_cgm_and_meter() {
    let p = profile();
    let d = p.polku.diary();
    let start = hki(2026, 11, 1, 0, 0);
    let mut news: Vec<NewEntry> = (0..288)
        .map(|i| {
            NewEntry::new(glucose(
                if i < 144 { 5.0 } else { 11.0 },
                GlucoseSource::Cgm,
            ))
            .at(start + Duration::minutes(5 * i))
        })
        .collect();
    news.push(NewEntry::new(glucose(3.5, GlucoseSource::Meter)).at(start + Duration::hours(3)));
    news.push(
        NewEntry::new(EntryData::Glucose(Glucose {
            reading: GlucoseReading::Low,
            unit: GlucoseUnit::MmolL,
            context: MealContext::Other,
            hours_after_meal: None,
            source: GlucoseSource::Meter,
        }))
        .at(start + Duration::hours(4)),
    );
    let added = d.add_many(news).unwrap();
    // A deleted reading does not count.
    d.delete(added[0].id, "sensor warm-up").unwrap();
    let r = p
        .polku
        .analytics()
        .glucose(
            start.with_timezone(&Utc),
            (start + Duration::days(1)).with_timezone(&Utc),
        )
        .unwrap();
    let cgm = r.cgm.unwrap();
    assert_eq!(cgm.readings, 287);
    // 143 readings at 5.0 (5 min each) and 144 at 11.0: 143/287 in range.
    close(cgm.bands.in_range, 143.0 / 287.0 * 100.0);
    close(cgm.bands.high, 144.0 / 287.0 * 100.0);
    let meter = r.meter.unwrap();
    assert_eq!(meter.readings, 2);
    assert_eq!(meter.lo_markers, 1);
    close(meter.bands.very_low, 50.0);
    close(meter.bands.low, 50.0);
    assert_eq!(
        meter.mean_mmol_l,
        Some(3.5),
        "LO has no value and stays out of the mean"
    );
    assert!(p
        .polku
        .analytics()
        .glucose(
            Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        )
        .is_err());
}

#[test]
fn home_bp_series_per_kaypa_hoito() {
    let p = profile();
    let d = p.polku.diary();
    let mut news = Vec::new();
    // An isolated qualifying day (Nov 10), then a gap, then 8 consecutive days Nov 12–19.
    let mut day = |date: u32, (ms, md): (u16, u16), (es, ed): (u16, u16), tagged: bool| {
        let tag = |s| if tagged { Some(s) } else { None };
        news.push(NewEntry::new(bp(ms, md, tag(BpSeries::Morning))).at(hki(2026, 11, date, 7, 30)));
        news.push(
            NewEntry::new(bp(ms + 2, md + 2, tag(BpSeries::Morning)))
                .at(hki(2026, 11, date, 7, 32)),
        );
        news.push(NewEntry::new(bp(es, ed, tag(BpSeries::Evening))).at(hki(2026, 11, date, 21, 0)));
        news.push(
            NewEntry::new(bp(es + 2, ed + 2, tag(BpSeries::Evening)))
                .at(hki(2026, 11, date, 21, 2)),
        );
    };
    day(10, (170, 100), (170, 100), true);
    for date in 12..=19 {
        // Untagged: the local time decides morning/evening.
        day(date, (130, 80), (134, 84), date % 2 == 0);
    }
    d.add_many(news).unwrap();
    // A reading at 13:00 belongs to no series and a day with a single morning reading does not qualify.
    d.add(NewEntry::new(bp(180, 110, None)).at(hki(2026, 11, 15, 13, 0)))
        .unwrap();
    d.add(NewEntry::new(bp(180, 110, None)).at(hki(2026, 11, 20, 7, 0)))
        .unwrap();

    let from = hki(2026, 11, 1, 0, 0).with_timezone(&Utc);
    let to = hki(2026, 11, 23, 0, 0).with_timezone(&Utc);
    let r = p.polku.analytics().blood_pressure(from, to).unwrap();
    assert_eq!(r.readings, 9 * 4 + 2);
    assert_eq!(r.qualifying_days, 9);
    let s = r.home_series.unwrap();
    // The latest run is Nov 12–19 (8 days); the series is its last 7: Nov 13–19.
    assert_eq!(s.first_day.to_string(), "2026-11-13");
    assert_eq!(s.last_day.to_string(), "2026-11-19");
    assert_eq!(s.days, 7);
    assert_eq!(s.readings, 28);
    // Each day: systolic 130, 132, 134, 136 → 133; diastolic 80, 82, 84, 86 → 83.
    close(s.mean_systolic, 133.0);
    close(s.mean_diastolic, 83.0);
    assert!(s.complete);
    assert!(s.at_target, "133/83 < 135/85");
    assert!(!s.at_high_risk_target, "not < 125/80");

    // Only three consecutive days: series incomplete.
    let r = p
        .polku
        .analytics()
        .blood_pressure(
            hki(2026, 11, 12, 0, 0).with_timezone(&Utc),
            hki(2026, 11, 15, 0, 0).with_timezone(&Utc),
        )
        .unwrap();
    let s = r.home_series.unwrap();
    assert_eq!(s.days, 3);
    assert!(!s.complete);
}
