//! The self-care diary: append-only versions of entries. Adding writes version 1; editing writes a
//! new version that supersedes the head; deleting writes a tombstone version carrying the reason.
//! Nothing is ever overwritten or removed, so `history` shows every value a user entered.

pub use polku_protocol::entry as model;
pub mod raw;
mod replica;
pub use polku_protocol::validate;

pub use replica::Conflict;
pub(crate) use replica::ENTRY_VERSIONS;

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use uuid::Uuid;

pub use model::*;
pub use raw::{RawData, RawGlucose};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::time;

/// Diary operations of one profile (its subject and author).
pub struct Diary<'a> {
    pub(crate) cx: &'a Context,
}

/// Newest-first query over live (head, not deleted) entries.
#[derive(Debug, Clone, Default)]
pub struct EntryQuery {
    /// Empty = every kind.
    pub kinds: Vec<EntryKind>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Page size; 0 means the default (50). At most [`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this cursor (from a previous page's `next`).
    pub after: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 5000;

#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Cursor for the next (older) page; `None` when this was the last.
    pub next: Option<String>,
}

impl<'a> Diary<'a> {
    pub fn add(&self, new: NewEntry) -> Result<Entry> {
        let mut out = self.add_many(vec![new])?;
        Ok(out.remove(0))
    }

    /// Adds several entries in one transaction: all or none.
    pub fn add_many(&self, news: Vec<NewEntry>) -> Result<Vec<Entry>> {
        let entries = news
            .into_iter()
            .map(|n| self.checked(n))
            .collect::<Result<Vec<_>>>()?;
        self.cx.store.write(|tx| {
            for e in &entries {
                insert_version(tx, self.cx, e, None)?;
            }
            Ok(())
        })?;
        Ok(entries)
    }

    /// A new entry's first version, checked, for the caller to insert ([`insert_version`]) in
    /// its own transaction (a measurement taken at a visit goes in with the visit's event).
    pub(crate) fn checked(&self, n: NewEntry) -> Result<Entry> {
        let now = time::stored_precision(self.cx.clock.now());
        let at = time::stored_precision(n.at.unwrap_or_else(|| time::in_zone(now, self.cx.tz)));
        validate::entry(&n, at, now)?;
        Ok(self.first_version(at, n.note, n.data, now))
    }

    pub(crate) fn first_version(
        &self,
        at: DateTime<FixedOffset>,
        note: Option<String>,
        data: EntryData,
        now: DateTime<Utc>,
    ) -> Entry {
        Entry {
            id: Uuid::now_v7(),
            version_id: Uuid::now_v7(),
            version: 1,
            subject: self.cx.subject.clone(),
            at,
            author: self.cx.author.clone(),
            created_at: now,
            note,
            data,
            deleted: None,
            is_head: true,
        }
    }

    /// Writes a new version of entry `id` with the given content. `new.at = None` keeps the time.
    pub fn edit(&self, id: Uuid, new: NewEntry) -> Result<Entry> {
        let now = time::stored_precision(self.cx.clock.now());
        self.cx.store.write(|tx| {
            let head = live_head(tx, self.cx.subject_no, id)?;
            if head.kind() != new.data.kind() {
                return Err(Error::validation(
                    "kind",
                    new.data.kind().as_str(),
                    format!(
                        "{} (an entry keeps its kind; add a new entry instead)",
                        head.kind().as_str()
                    ),
                ));
            }
            let at = time::stored_precision(new.at.unwrap_or(head.at));
            validate::entry(&new, at, now)?;
            let next = Entry {
                version_id: Uuid::now_v7(),
                version: head.version + 1,
                at,
                author: self.cx.author.clone(),
                created_at: now,
                note: new.note,
                data: new.data,
                ..head.clone()
            };
            supersede(tx, &head)?;
            insert_version(tx, self.cx, &next, None)?;
            Ok(next)
        })
    }

    /// Marks entry `id` as entered in error: a tombstone version with `reason`; history keeps all.
    pub fn delete(&self, id: Uuid, reason: &str) -> Result<Entry> {
        validate::reason(reason)?;
        let now = time::stored_precision(self.cx.clock.now());
        self.cx.store.write(|tx| {
            let head = live_head(tx, self.cx.subject_no, id)?;
            let tomb = Entry {
                version_id: Uuid::now_v7(),
                version: head.version + 1,
                author: self.cx.author.clone(),
                created_at: now,
                deleted: Some(Deletion {
                    reason: reason.trim().to_owned(),
                }),
                ..head.clone()
            };
            supersede(tx, &head)?;
            insert_version(tx, self.cx, &tomb, None)?;
            Ok(tomb)
        })
    }

    /// The newest version of entry `id` (a tombstone if it was deleted).
    pub fn get(&self, id: Uuid) -> Result<Entry> {
        self.cx
            .store
            .read(|c| head(c, self.cx.subject_no, id)?.ok_or_else(|| not_found(id)))
    }

    /// Every version of entry `id`, oldest first.
    pub fn history(&self, id: Uuid) -> Result<Vec<Entry>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM entry_version WHERE entry_id = ?1 AND subject_no = ?2 ORDER BY version"
            ))?;
            let rows = stmt
                .query_map(params![id.to_string(), self.cx.subject_no], row_to_entry)?
                .collect::<Result<Vec<_>, _>>()?;
            if rows.is_empty() {
                return Err(not_found(id));
            }
            Ok(rows)
        })
    }

    pub fn list(&self, q: &EntryQuery) -> Result<Page> {
        let limit = match q.limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Error::validation("limit", n, format!("1–{MAX_PAGE}")));
            }
            n => n,
        };
        let from = q.from.map_or(i64::MIN, |t| t.timestamp_millis());
        let to = q.to.map_or(i64::MAX, |t| t.timestamp_millis());
        if from > to {
            return Err(Error::validation(
                "from",
                format!("{:?} after to {:?}", q.from, q.to),
                "from earlier than to",
            ));
        }
        let (after_ms, after_id) = match &q.after {
            Some(c) => parse_cursor(c)?,
            None => (i64::MAX, String::new()),
        };
        let kinds = if q.kinds.is_empty() {
            EntryKind::ALL.to_vec()
        } else {
            q.kinds.clone()
        };
        let kind_list = kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(",");
        let cursor_clause = if q.after.is_some() {
            "AND (at_ms < ?4 OR (at_ms = ?4 AND version_id < ?5))"
        } else {
            "AND ?4 = ?4 AND ?5 = ?5"
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM entry_version
             WHERE subject_no = ?1 AND is_head = 1 AND deleted_reason IS NULL
               AND at_ms >= ?2 AND at_ms < ?3 AND kind IN ({kind_list}) {cursor_clause}
             ORDER BY at_ms DESC, version_id DESC LIMIT ?6"
        );
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let entries = stmt
                .query_map(
                    params![self.cx.subject_no, from, to, after_ms, after_id, limit + 1],
                    row_to_entry,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page(entries, limit as usize))
        })
    }

    /// Live entries of the local calendar day of the device's time zone that contains now.
    pub fn today(&self) -> Result<Vec<Entry>> {
        let day = self.cx.clock.now().with_timezone(&self.cx.tz).date_naive();
        let (from, to) = time::local_day_bounds(day, self.cx.tz);
        self.list_all(EntryQuery {
            from: Some(from),
            to: Some(to),
            ..Default::default()
        })
    }

    /// Every live entry matching `q` (its `limit` and `after` are ignored), newest first.
    pub fn list_all(&self, mut q: EntryQuery) -> Result<Vec<Entry>> {
        q.limit = MAX_PAGE;
        q.after = None;
        let mut all = Vec::new();
        loop {
            let p = self.list(&q)?;
            all.extend(p.entries);
            match p.next {
                Some(n) => q.after = Some(n),
                None => return Ok(all),
            }
        }
    }
}

fn page(mut entries: Vec<Entry>, limit: usize) -> Page {
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries
            .last()
            .map(|e| format!("{}:{}", e.at.timestamp_millis(), e.version_id))
    } else {
        None
    };
    Page { entries, next }
}

fn parse_cursor(c: &str) -> Result<(i64, String)> {
    let bad = || Error::validation("after", c, "a cursor returned as `next` by a previous page");
    let (ms, id) = c.split_once(':').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((ms, id.to_owned()))
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound {
        what: "diary entry",
        id: id.to_string(),
    }
}

pub(crate) const COLUMNS: &str =
    "version_id, entry_id, version, (SELECT id FROM subject WHERE no = subject_no), at_ms, utc_offset_s, author, created_ms, note, data, deleted_reason, is_head";

pub(crate) fn row_to_entry(r: &Row<'_>) -> rusqlite::Result<Entry> {
    let uuid = |i: usize| -> rusqlite::Result<Uuid> {
        let s: String = r.get(i)?;
        Uuid::parse_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let data_json: String = r.get(9)?;
    let data: EntryData = serde_json::from_str(&data_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let reason: Option<String> = r.get(10)?;
    Ok(Entry {
        version_id: uuid(0)?,
        id: uuid(1)?,
        version: r.get(2)?,
        subject: r.get(3)?,
        at: time::wall_clock(r.get(4)?, r.get(5)?),
        author: r.get(6)?,
        created_at: time::from_ms(r.get(7)?),
        note: r.get(8)?,
        data,
        deleted: reason.map(|reason| Deletion { reason }),
        is_head: r.get(11)?,
    })
}

fn head(c: &Connection, subject_no: i64, id: Uuid) -> Result<Option<Entry>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entry_version WHERE entry_id = ?1 AND subject_no = ?2 AND is_head = 1"
    ))?;
    Ok(stmt
        .query_row(params![id.to_string(), subject_no], row_to_entry)
        .optional()?)
}

pub(crate) fn live_head(tx: &Transaction<'_>, subject_no: i64, id: Uuid) -> Result<Entry> {
    let h = head(tx, subject_no, id)?.ok_or_else(|| not_found(id))?;
    if h.deleted.is_some() {
        return Err(Error::Conflict(format!(
            "diary entry {id} was deleted; it can no longer be changed"
        )));
    }
    Ok(h)
}

pub(crate) fn supersede(tx: &Transaction<'_>, head: &Entry) -> Result<()> {
    let n = tx.execute(
        "UPDATE entry_version SET is_head = 0 WHERE version_id = ?1 AND is_head = 1",
        [head.version_id.to_string()],
    )?;
    if n != 1 {
        return Err(Error::Conflict(format!(
            "diary entry {} changed concurrently",
            head.id
        )));
    }
    Ok(())
}

/// The analytics columns derived from an entry (see store::schema for their meaning per kind).
pub(crate) struct Derived {
    pub value: Option<f64>,
    pub value2: Option<f64>,
    pub tag: Option<&'static str>,
    pub marker: Option<&'static str>,
    /// The glucose meal context, so pathway measurement periods find fasting readings by column.
    pub detail: Option<&'static str>,
}

pub(crate) fn derived_columns(d: &EntryData) -> Derived {
    let (value, value2, tag, marker) = match d {
        EntryData::Glucose(g) => {
            let marker = match g.reading {
                // Banded in the unit it was recorded in (analytics::glucose::Level::MgDl).
                GlucoseReading::Value { .. } if g.unit == GlucoseUnit::MgDl => Some("mg/dL"),
                GlucoseReading::Value { .. } => None,
                GlucoseReading::Low => Some("LO"),
                GlucoseReading::High => Some("HI"),
            };
            (
                g.mmol_l(),
                g.hours_after_meal.map(f64::from),
                Some(g.source.as_str()),
                marker,
            )
        }
        EntryData::BloodPressure(bp) => (
            Some(bp.systolic.into()),
            Some(bp.diastolic.into()),
            bp.series.map(BpSeries::as_str),
            None,
        ),
        EntryData::Weight { kg } => (Some(*kg), None, None, None),
        EntryData::HeartRate { bpm } => (Some((*bpm).into()), None, None, None),
        EntryData::Temperature { celsius } => (Some(*celsius), None, None, None),
        EntryData::Symptom { code, severity } => {
            (Some((*severity).into()), None, Some(code.as_str()), None)
        }
        EntryData::Mood { score } => (Some((*score).into()), None, None, None),
        EntryData::Medication { .. } | EntryData::Note => (None, None, None, None),
    };
    let detail = match d {
        EntryData::Glucose(g) => Some(g.context.as_str()),
        _ => None,
    };
    Derived {
        value,
        value2,
        tag,
        marker,
        detail,
    }
}

/// Inserts one version row. With `import_key`, a row already imported under that key is skipped
/// and `false` returned.
/// Every inserted version is queued for upload in the same transaction.
pub(crate) fn insert_version(
    tx: &Transaction<'_>,
    cx: &Context,
    e: &Entry,
    import_key: Option<&str>,
) -> Result<bool> {
    let Derived {
        value,
        value2,
        tag,
        marker,
        detail,
    } = derived_columns(&e.data);
    let data = serde_json::to_string(&e.data)?;
    let hlc = cx
        .hlc
        .tick(e.created_at.timestamp_millis().max(0) as u64)
        .to_string();
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO entry_version (version_id, entry_id, version, subject_no, kind, at_ms, utc_offset_s,
            author, created_ms, note, data, value, value2, tag, marker, detail, deleted_reason, is_head, import_key, hlc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, 1, ?18, ?19)",
    )?;
    let n = stmt.execute(params![
        e.version_id.to_string(),
        e.id.to_string(),
        e.version,
        cx.subject_no,
        e.kind().as_str(),
        e.at.timestamp_millis(),
        e.at.offset().local_minus_utc(),
        e.author,
        e.created_at.timestamp_millis(),
        e.note,
        data,
        value,
        value2,
        tag,
        marker,
        detail,
        e.deleted.as_ref().map(|d| d.reason.as_str()),
        import_key,
        hlc,
    ])?;
    if n == 1 {
        crate::safety::Raised {
            subject_no: cx.subject_no,
            source: crate::safety::SOURCE_ENTRY,
            version_id: &e.version_id,
            record_id: &e.id,
            at_ms: e.at.timestamp_millis(),
            offset_s: e.at.offset().local_minus_utc(),
            created_ms: e.created_at.timestamp_millis(),
        }
        .entry(tx, &e.data, e.deleted.is_some())?;
        crate::store::outbox::enqueue(
            tx,
            polku_protocol::op::ENTRY_VERSION.name,
            &e.version_id.to_string(),
            cx.subject_no,
            &hlc,
        )?;
    }
    if n == 0 && import_key.is_none() {
        return Err(Error::Conflict(format!(
            "diary entry version {} already exists",
            e.version_id
        )));
    }
    Ok(n == 1)
}
