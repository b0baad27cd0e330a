//! Client details: the mutable facts a home-care or outreach worker needs about a person (phone,
//! address, how to get in, emergency contact, language). Unlike diary entries they are edited in
//! place, by the citizen and by several workers, often offline.
//!
//! Merge rule (docs/sync.md, "client details merge per field by HLC with full history and concurrent
//! edits flagged as conflict records"): every edit of a field is an immutable record naming the
//! edits it replaced (`base`, the field's current values as the writer saw them). The field's
//! current values are the edits no later edit replaced. One such edit: that is the value. Two or
//! more (made concurrently on different devices): the newest by HLC is shown, and the field is in
//! conflict, listing every value with its author, until someone sets the field again having seen
//! them (which replaces all of them). History keeps every edit. Every device computes the same.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::params;
use serde::Serialize;
use uuid::Uuid;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::store::kind::{RecordKind, Table};
use crate::time;

/// The fields a worker may need, and their longest allowed value.
pub const FIELDS: &[(&str, usize)] = &[
    ("preferred_name", 100),
    ("phone", 40),
    ("address", 300),
    ("access_instructions", 500),
    ("emergency_contact", 300),
    ("language", 40),
];

/// One edit of one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetailEdit {
    pub id: Uuid,
    pub field: String,
    /// `None`: the field was cleared.
    pub value: Option<String>,
    pub author: String,
    pub at: DateTime<Utc>,
    pub hlc: String,
}

/// A field's state: the value to show, and every concurrent value while in conflict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetailValue {
    pub field: String,
    pub current: DetailEdit,
    /// The other values written concurrently, for review (empty when there is no conflict).
    pub conflicting: Vec<DetailEdit>,
}

/// Field edits, one synced record each; concurrent values of a field are open conflicts.
pub(crate) struct DetailEdits(Table);

pub(crate) static DETAIL_EDITS: DetailEdits = DetailEdits(Table::new(
    &polku_protocol::op::DETAIL_EDIT,
    "detail_edit",
    true,
    "id, subject_no, hlc FROM detail_edit WHERE author = ?1 ORDER BY hlc",
    "DELETE FROM detail_edit WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
));

impl RecordKind for DetailEdits {
    fn table(&self) -> &Table {
        &self.0
    }

    fn open_conflicts(&self, c: &rusqlite::Connection) -> Result<u64> {
        conflicted_fields(c)
    }
}

pub struct Details<'a> {
    pub(crate) cx: &'a Context,
}

fn check_field(field: &str) -> Result<usize> {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, max)| *max)
        .ok_or_else(|| {
            Error::validation(
                "field",
                field,
                FIELDS
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
}

impl Details<'_> {
    /// Sets (or with `None` clears) a field, replacing every value this device currently sees.
    pub fn set(&self, field: &str, value: Option<&str>) -> Result<DetailEdit> {
        let max = check_field(field)?;
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        if let Some(v) = value {
            let n = v.chars().count();
            if n > max {
                return Err(Error::validation(
                    field,
                    v,
                    format!("at most {max} characters"),
                ));
            }
        }
        let now = time::stored_precision(self.cx.clock.now());
        self.cx.store.write(|tx| {
            let base: Vec<String> = leaves(tx, self.cx.subject_no, field)?
                .into_iter()
                .map(|e| e.id.to_string())
                .collect();
            let hlc = self.cx.hlc.tick(now.timestamp_millis().max(0) as u64).to_string();
            let edit = DetailEdit {
                id: Uuid::now_v7(),
                field: field.to_owned(),
                value: value.map(str::to_owned),
                author: self.cx.author.clone(),
                at: now,
                hlc: hlc.clone(),
            };
            tx.execute(
                "INSERT INTO detail_edit (id, subject_no, field, value, base, hlc, author, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    edit.id.to_string(),
                    self.cx.subject_no,
                    field,
                    edit.value,
                    serde_json::to_string(&base)?,
                    hlc,
                    edit.author,
                    now.timestamp_millis()
                ],
            )?;
            crate::store::outbox::enqueue(
            tx,
            polku_protocol::op::DETAIL_EDIT.name,
                &edit.id.to_string(),
                self.cx.subject_no,
                &hlc,
            )?;
            Ok(edit)
        })
    }

    /// Every field that has a value (or a conflict), in catalogue order.
    pub fn get(&self) -> Result<Vec<DetailValue>> {
        self.cx.store.read(|c| {
            let mut out = Vec::new();
            for (field, _) in FIELDS {
                let mut heads = leaves(c, self.cx.subject_no, field)?;
                if heads.is_empty() {
                    continue;
                }
                // Newest by HLC first: that is the value shown.
                heads.sort_by(|a, b| b.hlc.cmp(&a.hlc));
                let current = heads.remove(0);
                if current.value.is_none() && heads.is_empty() {
                    continue;
                }
                out.push(DetailValue {
                    field: (*field).to_owned(),
                    current,
                    conflicting: heads,
                });
            }
            Ok(out)
        })
    }

    /// Every edit of a field, oldest first.
    pub fn history(&self, field: &str) -> Result<Vec<DetailEdit>> {
        check_field(field)?;
        self.cx.store.read(|c| {
            let mut all = edits(c, self.cx.subject_no, field)?;
            all.sort_by(|a, b| a.0.hlc.cmp(&b.0.hlc));
            Ok(all.into_iter().map(|(e, _)| e).collect())
        })
    }
}

/// All edits of a field with the ids each replaced.
fn edits(
    c: &rusqlite::Connection,
    subject_no: i64,
    field: &str,
) -> Result<Vec<(DetailEdit, Vec<String>)>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, value, base, hlc, author, created_ms FROM detail_edit WHERE subject_no = ?1 AND field = ?2",
    )?;
    let rows = stmt.query_map(params![subject_no, field], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, value, base, hlc, author, created_ms) = row?;
        out.push((
            DetailEdit {
                id: id
                    .parse()
                    .map_err(|_| Error::Storage("bad detail edit id".into()))?,
                field: field.to_owned(),
                value,
                author,
                at: Utc
                    .timestamp_millis_opt(created_ms)
                    .single()
                    .unwrap_or_default(),
                hlc,
            },
            serde_json::from_str::<Vec<String>>(&base).unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// The edits of a field that no other edit replaced.
fn leaves(c: &rusqlite::Connection, subject_no: i64, field: &str) -> Result<Vec<DetailEdit>> {
    let all = edits(c, subject_no, field)?;
    let replaced: BTreeSet<String> = all.iter().flat_map(|(_, b)| b.iter().cloned()).collect();
    let mut by_id: BTreeMap<String, DetailEdit> = BTreeMap::new();
    for (e, _) in all {
        let id = e.id.to_string();
        if !replaced.contains(&id) {
            by_id.insert(id, e);
        }
    }
    Ok(by_id.into_values().collect())
}

/// How many (subject, field) pairs on this device have concurrent values.
fn conflicted_fields(c: &rusqlite::Connection) -> Result<u64> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM (
             SELECT d.subject_no, d.field FROM detail_edit d
             WHERE NOT EXISTS (
                 SELECT 1 FROM detail_edit o, json_each(o.base) j
                 WHERE o.subject_no = d.subject_no AND o.field = d.field AND j.value = d.id)
             GROUP BY d.subject_no, d.field HAVING count(*) > 1)",
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}
