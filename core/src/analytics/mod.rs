//! Clinical analytics over the diary: glucose (consensus metrics, GMI, events, AGP) and home blood
//! pressure series. The computations in `glucose` and `bp` are pure; this module reads their input.

pub mod bp;
pub mod glucose;
pub mod stats;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};
use polku_protocol::entry::BpSeries;

pub use bp::{BpReport, HomeSeries};
pub use glucose::{AgpHour, Bands, Basis, GlucoseSummary, Gmi, HypoEvent, Sufficiency};

pub struct Analytics<'a> {
    pub(crate) cx: &'a Context,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlucoseReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// CGM readings (time-weighted).
    pub cgm: Option<GlucoseSummary>,
    /// Meter and manually typed readings (per reading).
    pub meter: Option<GlucoseSummary>,
}

impl Analytics<'_> {
    /// Glucose metrics for readings in [from, to).
    pub fn glucose(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<GlucoseReport> {
        check_period(from, to)?;
        let (cgm, meter) = self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT at_ms, utc_offset_s, value, tag, marker FROM entry_version
                 WHERE subject_no = ?1 AND kind = 'glucose' AND is_head = 1 AND deleted_reason IS NULL
                   AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms",
            )?;
            let mut rows = stmt.query(params![
                self.cx.subject_no,
                from.timestamp_millis(),
                to.timestamp_millis()
            ])?;
            let (mut cgm, mut meter) = (Vec::new(), Vec::new());
            while let Some(r) = rows.next()? {
                let level = match (
                    r.get_ref(2)?.as_f64_or_null()?,
                    r.get_ref(4)?.as_str_or_null()?,
                ) {
                    (_, Some("LO")) => glucose::Level::Low,
                    (_, Some("HI")) => glucose::Level::High,
                    (Some(v), Some("mg/dL")) => glucose::Level::MgDl(v),
                    (Some(v), _) => glucose::Level::Mmol(v),
                    (None, _) => continue,
                };
                let p = glucose::Point {
                    at_ms: r.get(0)?,
                    offset_s: r.get(1)?,
                    level,
                };
                if r.get_ref(3)?.as_str_or_null()? == Some("cgm") {
                    cgm.push(p);
                } else {
                    meter.push(p);
                }
            }
            Ok((cgm, meter))
        })?;
        let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
        Ok(GlucoseReport {
            from,
            to,
            cgm: glucose::summarize(&cgm, Basis::TimeWeighted, f, t),
            meter: glucose::summarize(&meter, Basis::PerReading, f, t),
        })
    }

    /// Blood-pressure summary and Käypä hoito home series for readings in [from, to).
    pub fn blood_pressure(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<BpReport> {
        check_period(from, to)?;
        let points = self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT at_ms, utc_offset_s, value, value2, tag FROM entry_version
                 WHERE subject_no = ?1 AND kind = 'blood_pressure' AND is_head = 1 AND deleted_reason IS NULL
                   AND at_ms >= ?2 AND at_ms < ?3 ORDER BY at_ms",
            )?;
            let rows = stmt.query_map(params![self.cx.subject_no, from.timestamp_millis(), to.timestamp_millis()], |r| {
                Ok(bp::BpPoint {
                    at_ms: r.get(0)?,
                    offset_s: r.get(1)?,
                    systolic: r.get(2)?,
                    diastolic: r.get(3)?,
                    series: match r.get_ref(4)?.as_str_or_null()? {
                        Some("morning") => Some(BpSeries::Morning),
                        Some("evening") => Some(BpSeries::Evening),
                        _ => None,
                    },
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(bp::analyze(&points))
    }
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if from >= to {
        return Err(Error::validation(
            "to",
            to.to_rfc3339(),
            format!("later than from ({})", from.to_rfc3339()),
        ));
    }
    Ok(())
}
