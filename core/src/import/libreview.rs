//! FreeStyle Libre (LibreView) glucose export. Layout: one or more metadata lines, then a header
//! `Device,Serial Number,Device Timestamp,Record Type,Historic Glucose mmol/L,Scan Glucose mmol/L,…`
//! (or the mg/dL variant). Record type 0 is a historic (automatically stored, every 15 min) reading,
//! 1 a scan; other types (insulin, food, strips, notes) are not CGM glucose and are skipped.
//! Timestamps are the phone's local wall clock without an offset: they are read in the profile's
//! time zone. The date order follows the export's locale: `DD-MM-YYYY HH:MM` (Finland, most of
//! Europe), `MM-DD-YYYY hh:mm AM` (US) or ISO `YYYY-MM-DD HH:MM`; a file whose day and month cannot
//! be told apart is read day-first.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::{glucose_cell, Parsed, ParsedFile};
use crate::diary::GlucoseUnit;
use crate::error::ImportProblem;
use crate::time;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DateOrder {
    DayFirst,
    MonthFirst,
}

struct Columns {
    serial: Option<usize>,
    timestamp: usize,
    record_type: usize,
    historic: Option<(usize, GlucoseUnit)>,
    scan: Option<(usize, GlucoseUnit)>,
}

fn unit_of(name: &str) -> Option<GlucoseUnit> {
    let n = name.to_ascii_lowercase();
    if n.ends_with("mmol/l") {
        Some(GlucoseUnit::MmolL)
    } else if n.ends_with("mg/dl") {
        Some(GlucoseUnit::MgDl)
    } else {
        None
    }
}

fn columns(header: &csv::StringRecord) -> Option<Columns> {
    let find = |pred: &dyn Fn(&str) -> bool| {
        header
            .iter()
            .position(|h| pred(&h.trim().to_ascii_lowercase()))
    };
    let with_unit = |prefix: &str| {
        find(&|h| h.starts_with(prefix)).and_then(|i| unit_of(header[i].trim()).map(|u| (i, u)))
    };
    Some(Columns {
        serial: find(&|h| h == "serial number"),
        timestamp: find(&|h| h == "device timestamp")?,
        record_type: find(&|h| h == "record type")?,
        historic: with_unit("historic glucose"),
        scan: with_unit("scan glucose"),
    })
}

pub(super) fn parse(text: &str, tz: Tz) -> ParsedFile {
    let mut out = ParsedFile {
        readings: Vec::new(),
        other_rows: 0,
        problems: Vec::new(),
    };
    // Metadata lines come before the header; find it and remember how many lines were skipped.
    let Some(header_idx) = text.lines().take(20).position(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("device timestamp") && l.contains("record type")
    }) else {
        out.problems.push(ImportProblem {
            line: 1,
            message: "no LibreView header (Device Timestamp, Record Type) in the first 20 lines"
                .into(),
        });
        return out;
    };
    let body: String = text.split_inclusive('\n').skip(header_idx).collect();
    let line_base = header_idx as u64; // csv positions are 1-based within `body`
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body.as_bytes());
    let cols = match rdr.headers().ok().and_then(columns) {
        Some(c) if c.historic.is_some() || c.scan.is_some() => c,
        _ => {
            out.problems.push(ImportProblem {
                line: line_base + 1,
                message: "header lacks a `Historic Glucose mmol/L` or `… mg/dL` column".into(),
            });
            return out;
        }
    };

    struct Row {
        line: u64,
        serial: String,
        kind: u8,
        stamp: String,
        cell: String,
        unit: GlucoseUnit,
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = line_base + e.position().map_or(0, |p| p.line());
                out.problems.push(ImportProblem {
                    line,
                    message: "unreadable CSV row".into(),
                });
                continue;
            }
        };
        let line = line_base + rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let get = |i: usize| rec.get(i).unwrap_or("").trim().to_owned();
        let kind = match get(cols.record_type).parse::<u8>() {
            Ok(k) => k,
            Err(_) => {
                out.problems.push(ImportProblem {
                    line,
                    message: format!("record type `{}` is not a number", get(cols.record_type)),
                });
                continue;
            }
        };
        let col = match kind {
            0 => cols.historic,
            1 => cols.scan,
            _ => None,
        };
        let Some((ci, unit)) = col else {
            out.other_rows += 1;
            continue;
        };
        rows.push(Row {
            line,
            serial: cols.serial.map(get).unwrap_or_default(),
            kind,
            stamp: get(cols.timestamp),
            cell: get(ci),
            unit,
        });
    }

    let order = date_order(rows.iter().map(|r| r.stamp.as_str()));
    let mut seen_earlier = HashSet::new();
    for r in rows {
        let naive = match parse_stamp(&r.stamp, order) {
            Some(n) => n,
            None => {
                out.problems.push(ImportProblem {
                    line: r.line,
                    message: format!("timestamp `{}` is not a LibreView date and time", r.stamp),
                });
                continue;
            }
        };
        let at = match time::from_local(naive, tz) {
            Ok(t) => t,
            Err(_) => {
                out.problems.push(ImportProblem {
                    line: r.line,
                    message: format!("timestamp `{}` does not exist in {tz} (DST gap)", r.stamp),
                });
                continue;
            }
        };
        // In the repeated autumn hour the same wall-clock time occurs twice: the second occurrence
        // (same sensor and record type) is the later instant.
        let mut at = at;
        let key_of = |ms: i64| format!("cgm:libreview:{}:{}:{ms}", r.serial, r.kind);
        if !seen_earlier.insert(key_of(at.timestamp_millis())) {
            if let Some(later) = later_instant(naive, tz) {
                at = later;
            }
        }
        match glucose_cell(&r.cell, r.unit) {
            Ok(reading) => out.readings.push(Parsed {
                line: r.line,
                key: key_of(at.timestamp_millis()),
                at,
                reading,
                unit: r.unit,
            }),
            Err(_) if r.cell.is_empty() => out.problems.push(ImportProblem {
                line: r.line,
                message: format!("record type {} has no glucose value", r.kind),
            }),
            Err(m) => out.problems.push(ImportProblem {
                line: r.line,
                message: m,
            }),
        }
    }
    out
}

fn later_instant(naive: NaiveDateTime, tz: Tz) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    use chrono::TimeZone;
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Ambiguous(_, later) => Some(later.fixed_offset()),
        _ => None,
    }
}

fn split_stamp(s: &str) -> Option<(Vec<u32>, &str)> {
    let (date, rest) = s.trim().split_once(' ')?;
    let parts: Vec<u32> = date
        .split(['-', '.', '/'])
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    (parts.len() == 3).then_some((parts, rest.trim()))
}

fn date_order<'a>(stamps: impl Iterator<Item = &'a str>) -> DateOrder {
    for s in stamps {
        let upper = s.to_ascii_uppercase();
        if upper.ends_with("AM") || upper.ends_with("PM") {
            return DateOrder::MonthFirst;
        }
        if let Some((p, _)) = split_stamp(s) {
            if p[0] > 31 {
                continue; // ISO year first: order irrelevant
            }
            if p[0] > 12 {
                return DateOrder::DayFirst;
            }
            if p[1] > 12 {
                return DateOrder::MonthFirst;
            }
        }
    }
    DateOrder::DayFirst
}

fn parse_stamp(s: &str, order: DateOrder) -> Option<NaiveDateTime> {
    let (p, time_part) = split_stamp(s)?;
    let (y, m, d) = if p[0] > 31 {
        (p[0], p[1], p[2])
    } else {
        match order {
            DateOrder::DayFirst => (p[2], p[1], p[0]),
            DateOrder::MonthFirst => (p[2], p[0], p[1]),
        }
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d)?;
    let t = time_part.to_ascii_uppercase();
    let time = ["%H:%M:%S", "%H:%M", "%I:%M %p", "%I:%M:%S %p"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(&t, f).ok())?;
    Some(date.and_time(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_orders() {
        assert_eq!(
            date_order(["01-02-2026 08:00", "13-02-2026 08:00"].into_iter()),
            DateOrder::DayFirst
        );
        assert_eq!(
            date_order(["02-13-2026 08:00"].into_iter()),
            DateOrder::MonthFirst
        );
        assert_eq!(
            date_order(["02-03-2026 08:00 AM"].into_iter()),
            DateOrder::MonthFirst
        );
        assert_eq!(
            date_order(["02-03-2026 08:00"].into_iter()),
            DateOrder::DayFirst,
            "ambiguous: Finnish day-first"
        );
        let t = parse_stamp("02-03-2026 08:15 PM", DateOrder::MonthFirst).unwrap();
        assert_eq!(t.to_string(), "2026-02-03 20:15:00");
        let t = parse_stamp("2026-03-02 08:15", DateOrder::DayFirst).unwrap();
        assert_eq!(t.to_string(), "2026-03-02 08:15:00");
        assert!(parse_stamp("31-02-2026 08:15", DateOrder::DayFirst).is_none());
    }
}
