//! CGM import: a generic `timestamp,glucose_mmol_l` CSV (RFC 3339 timestamps) and the FreeStyle
//! Libre (LibreView) glucose export. A file is checked whole before anything is written; one
//! malformed row rejects it with every problem's line number. Each reading gets a deterministic id
//! from its origin (format, sensor serial, record type, instant), so importing a file twice, or
//! overlapping exports, adds each reading once.

mod libreview;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use ring::digest;
use serde::Serialize;
use uuid::Uuid;

use crate::context::Context;
use crate::diary::{
    self, validate, Entry, EntryData, Glucose, GlucoseReading, GlucoseSource, GlucoseUnit,
    MealContext,
};
use crate::error::{Error, ImportProblem, Result};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgmFormat {
    Generic,
    LibreView,
}

impl CgmFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            CgmFormat::Generic => "generic",
            CgmFormat::LibreView => "libreview",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    pub format: CgmFormat,
    /// Glucose readings found in the file.
    pub readings: u64,
    pub added: u64,
    /// Readings already in the diary (an earlier import of the same data).
    pub duplicates: u64,
    /// LibreView rows of other record types (insulin, food, notes, ...), not glucose.
    pub skipped_other_rows: u64,
    pub first: Option<DateTime<FixedOffset>>,
    pub last: Option<DateTime<FixedOffset>>,
}

/// One reading parsed from a file, with its origin key.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub line: u64,
    pub key: String,
    pub at: DateTime<FixedOffset>,
    pub reading: GlucoseReading,
    pub unit: GlucoseUnit,
}

pub(crate) struct ParsedFile {
    pub readings: Vec<Parsed>,
    pub other_rows: u64,
    pub problems: Vec<ImportProblem>,
}

/// A deterministic id for an imported reading: the same origin gives the same id on every device
/// (UUIDv8), and the measurement time in the first 48 bits keeps ids time-ordered like UUIDv7.
fn time_ordered_id(at_ms: i64, origin: &[u8]) -> Uuid {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&at_ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&digest::digest(&digest::SHA256, origin).as_ref()[..10]);
    Uuid::new_v8(b)
}

pub struct Importer<'a> {
    pub(crate) cx: &'a Context,
}

impl Importer<'_> {
    pub fn cgm_file(&self, path: &Path, format: Option<CgmFormat>) -> Result<ImportReport> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
        self.cgm(&bytes, format)
    }

    /// Imports CGM readings; `format = None` detects it from the header.
    pub fn cgm(&self, bytes: &[u8], format: Option<CgmFormat>) -> Result<ImportReport> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::Import(vec![ImportProblem {
                line: line_of_offset(bytes, e.valid_up_to()),
                message: "the file is not UTF-8 text".into(),
            }])
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let format = match format {
            Some(f) => f,
            None => detect(text)?,
        };
        let now = time::stored_precision(self.cx.clock.now());
        let mut parsed = match format {
            CgmFormat::Generic => parse_generic(text),
            CgmFormat::LibreView => libreview::parse(text, self.cx.tz),
        };
        for p in &parsed.readings {
            if let Err(validate::FieldError { allowed, value, .. }) =
                validate::timestamp("timestamp", p.at, now)
            {
                parsed.problems.push(ImportProblem {
                    line: p.line,
                    message: format!("timestamp {value}: must be {allowed}"),
                });
            }
        }
        if !parsed.problems.is_empty() {
            parsed.problems.sort_by_key(|p| p.line);
            return Err(Error::Import(parsed.problems));
        }
        // The same origin twice in one file (e.g. a repeated row) is one reading.
        let mut seen = HashSet::new();
        parsed.readings.retain(|p| seen.insert(p.key.clone()));

        let diary = diary::Diary { cx: self.cx };
        let sha = crate::store::keys::hex(digest::digest(&digest::SHA256, bytes).as_ref());
        let added = self.cx.store.write(|tx| {
            let mut added = 0u64;
            for p in &parsed.readings {
                let data = EntryData::Glucose(Glucose {
                    reading: p.reading,
                    unit: p.unit,
                    context: MealContext::Other,
                    hours_after_meal: None,
                    source: GlucoseSource::Cgm,
                });
                let mut e: Entry = diary.first_version(time::stored_precision(p.at), None, data, now);
                e.id = time_ordered_id(p.at.timestamp_millis(), p.key.as_bytes());
                e.version_id = time_ordered_id(p.at.timestamp_millis(), format!("{}#v1", p.key).as_bytes());
                if diary::insert_version(tx, self.cx, &e, Some(&p.key))? {
                    added += 1;
                }
            }
            tx.execute(
                "INSERT INTO import_log (id, at_ms, format, file_sha256, rows_read, added, duplicates)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    Uuid::new_v4().to_string(),
                    now.timestamp_millis(),
                    format.as_str(),
                    sha,
                    parsed.readings.len() as i64,
                    added as i64,
                    (parsed.readings.len() as u64 - added) as i64
                ],
            )?;
            Ok(added)
        })?;
        let readings = parsed.readings.len() as u64;
        Ok(ImportReport {
            format,
            readings,
            added,
            duplicates: readings - added,
            skipped_other_rows: parsed.other_rows,
            first: parsed.readings.iter().map(|p| p.at).min(),
            last: parsed.readings.iter().map(|p| p.at).max(),
        })
    }
}

fn detect(text: &str) -> Result<CgmFormat> {
    for line in text.lines().take(5) {
        let l = line.trim().to_ascii_lowercase();
        if l.starts_with("timestamp,") && l.contains("glucose_mmol_l") {
            return Ok(CgmFormat::Generic);
        }
        if l.contains("device timestamp") && l.contains("record type") {
            return Ok(CgmFormat::LibreView);
        }
    }
    Err(Error::Import(vec![ImportProblem {
        line: 1,
        message: "unknown format: expected a `timestamp,glucose_mmol_l` header or a LibreView glucose export".into(),
    }]))
}

/// Reads a glucose cell: a number in `unit`, or LO/HI.
pub(crate) fn glucose_cell(
    cell: &str,
    unit: GlucoseUnit,
) -> std::result::Result<GlucoseReading, String> {
    let c = cell.trim();
    match c.to_ascii_uppercase().as_str() {
        "LO" | "LOW" => return Ok(GlucoseReading::Low),
        "HI" | "HIGH" => return Ok(GlucoseReading::High),
        _ => {}
    }
    let v: f64 = c
        .parse()
        .map_err(|_| format!("glucose `{c}` is not a number (or LO/HI)"))?;
    validate::glucose_reading(v, unit)
        .map_err(|e| format!("glucose {} is outside {}", e.value, e.allowed))
}

fn parse_generic(text: &str) -> ParsedFile {
    let mut out = ParsedFile {
        readings: Vec::new(),
        other_rows: 0,
        problems: Vec::new(),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    match rdr.headers() {
        Ok(h)
            if h.len() >= 2
                && h[0].eq_ignore_ascii_case("timestamp")
                && h[1].eq_ignore_ascii_case("glucose_mmol_l") => {}
        _ => {
            out.problems.push(ImportProblem {
                line: 1,
                message: "header must be `timestamp,glucose_mmol_l`".into(),
            });
            return out;
        }
    }
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.problems.push(ImportProblem {
                    line,
                    message: "unreadable CSV row".into(),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|c| c.is_empty()) {
            continue;
        }
        if rec.len() != 2 {
            out.problems.push(ImportProblem {
                line,
                message: format!("expected 2 columns, found {}", rec.len()),
            });
            continue;
        }
        let at = match time::parse_rfc3339("timestamp", &rec[0]) {
            Ok(t) => t,
            Err(_) => {
                out.problems.push(ImportProblem {
                    line,
                    message: format!("timestamp `{}` is not RFC 3339", &rec[0]),
                });
                continue;
            }
        };
        match glucose_cell(&rec[1], GlucoseUnit::MmolL) {
            Ok(reading) => out.readings.push(Parsed {
                line,
                key: format!("cgm:generic:{}", at.timestamp_millis()),
                at,
                reading,
                unit: GlucoseUnit::MmolL,
            }),
            Err(m) => out.problems.push(ImportProblem { line, message: m }),
        }
    }
    out
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u64 {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
        + 1
}
