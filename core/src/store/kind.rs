//! The registry of synced record kinds: how sync reaches the domains without knowing them.
//!
//! Every synced record is immutable once written (docs/sync.md, merge rules), so an operation is
//! "this record exists", stored with `INSERT OR IGNORE`: applying it twice, or in a different
//! order across streams, gives the same database. A domain declares each kind it syncs once, as
//! a [`RecordKind`] (most are a plain [`Table`]); the root object lists them in one [`Registry`],
//! and the sync engine, purge, requeue and the epoch re-upload iterate it
//! (docs/architecture.md, "Adding a record kind").

use std::sync::OnceLock;

use polku_protocol::op::KindSpec;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What applying one received record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Inserted,
    AlreadyHere,
    /// A concurrent version of a record already here: kept, and recorded for review.
    Conflict,
}

/// A kind of record that travels between devices, kept in one table of immutable rows
/// ([`Table`]). The defaults store and read that table as it is; a kind overrides what it
/// derives on apply (heads, conflicts, safety flags), what else a purge removes, and its open
/// conflicts.
pub trait RecordKind: Send + Sync {
    fn table(&self) -> &Table;

    /// Its wire shape: name, schema version, id field, payload fields.
    fn spec(&self) -> &'static KindSpec {
        self.table().spec
    }

    /// The payload of record `id`, or `None` if the row is gone (never, for immutable records,
    /// unless its subject was purged from this device).
    fn payload(&self, c: &Connection, id: &str) -> Result<Option<Value>> {
        self.table().payload(c, id)
    }

    /// Checks a received payload with the rules the server used (`polku_protocol::op`) before
    /// [`RecordKind::apply`]. A kind whose `apply` parses the content anyway may run the content
    /// check there instead, so it is parsed once.
    fn check(
        &self,
        op_id: &str,
        payload: &Map<String, Value>,
        now_ms: i64,
    ) -> std::result::Result<(), polku_protocol::op::Invalid> {
        polku_protocol::op::check_payload(self.spec(), op_id, payload, now_ms)
    }

    /// Stores a received record of subject `subject_no`, with whatever it derives in the same
    /// transaction. An error leaves the operation held, never lost.
    fn apply(
        &self,
        tx: &Transaction<'_>,
        subject_no: i64,
        payload: &Map<String, Value>,
        _now_ms: i64,
    ) -> Result<Applied> {
        let t = self.table();
        t.id(payload)?;
        Ok(match t.insert(tx, subject_no, payload, Vec::new())? {
            true => Applied::Inserted,
            false => Applied::AlreadyHere,
        })
    }

    /// Queues every record of this kind that `author` (this device's user) wrote and that is not
    /// queued yet, oldest first (the server lost data: each device uploads its own again; the
    /// server takes no record from a device whose user did not write it).
    fn requeue(&self, tx: &Transaction<'_>, author: &str) -> Result<()> {
        tx.execute(&self.table().sql().requeue, [author])?;
        Ok(())
    }

    /// Gives the records written before this device enrolled (under its local placeholder
    /// identity `from`) their author's server identity `to`.
    fn adopt(&self, tx: &Transaction<'_>, from: &str, to: &str) -> Result<()> {
        let t = self.table();
        if t.spec.field_names().any(|f| f == "author") {
            tx.execute(
                &format!("UPDATE {} SET author = ?2 WHERE author = ?1", t.table),
                [from, to],
            )?;
        }
        Ok(())
    }

    /// Removes subject `subject_no`'s records, except those still waiting for upload (their ids
    /// are in `temp.keep`). Runs in reverse registry order: a kind's children go first.
    fn purge(&self, tx: &Transaction<'_>, subject_no: i64) -> Result<()> {
        tx.execute(self.table().purge, [subject_no])?;
        Ok(())
    }

    /// Open conflicts of this kind waiting for a person's review.
    fn open_conflicts(&self, _c: &Connection) -> Result<u64> {
        Ok(0)
    }
}

/// Every kind this device syncs, in upload order (a parent before its children).
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<&'static dyn RecordKind>,
}

impl Registry {
    pub fn new(kinds: impl IntoIterator<Item = &'static dyn RecordKind>) -> Registry {
        Registry {
            kinds: kinds.into_iter().collect(),
        }
    }

    /// Adds a kind. A name registered twice keeps the first.
    pub fn with(mut self, kind: &'static dyn RecordKind) -> Registry {
        if self.get(kind.spec().name).is_none() {
            self.kinds.push(kind);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&'static dyn RecordKind> {
        self.kinds.iter().copied().find(|k| k.spec().name == name)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &'static dyn RecordKind> + '_ {
        self.kinds.iter().copied()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.kinds.iter().map(|k| k.spec().name))
            .finish()
    }
}

/// A kind kept as one table of immutable rows whose columns are the payload fields.
pub struct Table {
    spec: &'static KindSpec,
    table: &'static str,
    /// The table has a `subject_no` column, filled from the stream the record came in.
    has_subject: bool,
    /// Columns the device derives from the payload, stored after it (never taken on trust).
    derived: &'static [&'static str],
    /// The tail of `SELECT <record id>, <subject_no>, <stamp> ...` over the rows whose author is
    /// `?1`, oldest first: what [`RecordKind::requeue`] queues.
    requeue: &'static str,
    /// `DELETE ...` of one subject's rows (`?1`) not in `temp.keep`.
    purge: &'static str,
    sql: OnceLock<TableSql>,
}

/// A table's statements, built once per process (they run once per synced operation).
struct TableSql {
    select: String,
    owner: String,
    insert: String,
    requeue: String,
}

impl Table {
    /// Kind `spec` kept in `table` (with a `subject_no` column when `has_subject`): `requeue` is
    /// the tail of `SELECT <record id>, <subject_no>, <stamp> ...` over the rows of author `?1`,
    /// oldest first;
    /// `purge` the `DELETE` of subject `?1`'s rows whose id is not in `temp.keep`.
    pub const fn new(
        spec: &'static KindSpec,
        table: &'static str,
        has_subject: bool,
        requeue: &'static str,
        purge: &'static str,
    ) -> Table {
        Table {
            spec,
            table,
            has_subject,
            derived: &[],
            requeue,
            purge,
            sql: OnceLock::new(),
        }
    }

    /// Columns derived from the payload on this device, passed to [`Table::insert`] in order.
    pub const fn derived(mut self, columns: &'static [&'static str]) -> Table {
        self.derived = columns;
        self
    }

    fn sql(&self) -> &TableSql {
        self.sql.get_or_init(|| {
            let mut cols: Vec<&str> = self.spec.field_names().collect();
            if self.has_subject {
                cols.push("subject_no");
            }
            cols.extend(self.derived);
            let placeholders = (1..=cols.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            TableSql {
                owner: format!(
                    "SELECT subject_no FROM {} WHERE {} = ?1",
                    self.table, self.spec.id_field
                ),
                select: format!(
                    "SELECT {} FROM {} WHERE {} = ?1",
                    self.spec.field_names().collect::<Vec<_>>().join(", "),
                    self.table,
                    self.spec.id_field
                ),
                insert: format!(
                    "INSERT OR IGNORE INTO {} ({}) VALUES ({placeholders})",
                    self.table,
                    cols.join(", ")
                ),
                requeue: format!(
                    "INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc) SELECT '{}', {}",
                    self.spec.name, self.requeue
                ),
            }
        })
    }

    pub fn payload(&self, c: &Connection, id: &str) -> Result<Option<Value>> {
        let mut stmt = c.prepare_cached(&self.sql().select)?;
        let row = stmt
            .query_row([id], |r| {
                let mut m = Map::new();
                for (i, col) in self.spec.field_names().enumerate() {
                    let v = match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::from(n),
                        ValueRef::Real(f) => Value::from(f),
                        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                        ValueRef::Blob(_) => Value::Null,
                    };
                    m.insert(col.to_owned(), v);
                }
                Ok(Value::Object(m))
            })
            .optional()?;
        Ok(row)
    }

    /// Inserts the payload (and the `derived` values, in order); `false` if it was already here.
    pub fn insert(
        &self,
        tx: &Transaction<'_>,
        subject_no: i64,
        obj: &Map<String, Value>,
        derived: Vec<SqlValue>,
    ) -> Result<bool> {
        let mut vals: Vec<SqlValue> =
            Vec::with_capacity(self.spec.fields.len() + 1 + derived.len());
        for col in self.spec.field_names() {
            vals.push(to_sql(obj.get(col).unwrap_or(&Value::Null), col)?);
        }
        if self.has_subject {
            vals.push(SqlValue::Integer(subject_no));
        }
        vals.extend(derived);
        let n = tx
            .prepare_cached(&self.sql().insert)?
            .execute(rusqlite::params_from_iter(vals.iter()))?;
        if n == 0 && self.has_subject {
            // Already here: under this subject it is a repeat; under another, a record id reused
            // across subjects, held rather than silently taken as a repeat.
            let id = self.id(obj)?;
            let held_by: Option<i64> = tx
                .prepare_cached(&self.sql().owner)?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if held_by.is_some_and(|no| no != subject_no) {
                return Err(Error::Storage(format!(
                    "record {id} of {} belongs to another subject",
                    self.spec.name
                )));
            }
        }
        Ok(n == 1)
    }

    /// The `DELETE` of one subject's rows not waiting for upload.
    pub fn purge_sql(&self) -> &'static str {
        self.purge
    }

    /// The record id a payload names (its kind's id field).
    pub fn id<'p>(&self, obj: &'p Map<String, Value>) -> Result<&'p str> {
        match obj.get(self.spec.id_field).and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(Error::Storage(format!(
                "payload has no {}",
                self.spec.id_field
            ))),
        }
    }
}

impl RecordKind for Table {
    fn table(&self) -> &Table {
        self
    }
}

fn to_sql(v: &Value, col: &str) -> Result<SqlValue> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        _ => return Err(Error::Storage(format!("field {col} is not a scalar"))),
    })
}
