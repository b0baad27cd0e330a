//! Which local records travel, and how each becomes an operation payload and back.
//!
//! Every synced record is immutable once written (docs/sync.md, merge rules): diary entry
//! versions and tombstones, questionnaire responses, pathway enrollments and their events. So an
//! operation is "this record exists", applied with `INSERT OR IGNORE`: applying it twice, or in a
//! different order across streams, gives the same database. The one derived state, which entry
//! version is the head, is recomputed from all versions by the same rule on every device.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::diary::EntryData;
use crate::error::{Error, Result};

/// A record kind and where it lives. `columns` are the payload, in the table's own names.
pub(crate) struct Kind {
    pub name: &'static str,
    pub schema_version: u32,
    table: &'static str,
    id_column: &'static str,
    columns: &'static [&'static str],
    /// The table has a `subject_no` column (pathway events take it from their enrollment).
    has_subject: bool,
}

pub(crate) const ENTRY_VERSION: &str = "diary.entry_version";
pub(crate) const QUESTIONNAIRE_RESPONSE: &str = "questionnaire.response";
pub(crate) const PATHWAY_ENROLLMENT: &str = "pathway.enrollment";
pub(crate) const PATHWAY_EVENT: &str = "pathway.event";
pub(crate) const DETAIL_EDIT: &str = "details.edit";
pub(crate) const SAFETY_ACK: &str = "safety.ack";

/// Kinds only the care team writes: the server refuses them from a citizen's device.
pub fn care_team_only(kind: &str) -> bool {
    kind == SAFETY_ACK
}

pub(crate) const KINDS: &[Kind] = &[
    Kind {
        name: ENTRY_VERSION,
        schema_version: 1,
        table: "entry_version",
        id_column: "version_id",
        columns: &[
            "version_id",
            "entry_id",
            "version",
            "kind",
            "at_ms",
            "utc_offset_s",
            "author",
            "created_ms",
            "note",
            "data",
            "deleted_reason",
            "import_key",
            "hlc",
            "resolves",
        ],
        has_subject: true,
    },
    Kind {
        name: QUESTIONNAIRE_RESPONSE,
        schema_version: 1,
        table: "questionnaire_response",
        id_column: "id",
        columns: &[
            "id",
            "instrument",
            "authored_ms",
            "utc_offset_s",
            "author",
            "created_ms",
            "answers",
            "total",
            "band",
            "flags",
            "language",
            "wording",
        ],
        has_subject: true,
    },
    Kind {
        name: PATHWAY_ENROLLMENT,
        schema_version: 1,
        table: "pathway_enrollment",
        id_column: "id",
        columns: &[
            "id",
            "definition_id",
            "definition_version",
            "enrolled_ms",
            "enrolled_by",
            "author",
        ],
        has_subject: true,
    },
    Kind {
        name: PATHWAY_EVENT,
        schema_version: 1,
        table: "pathway_event",
        id_column: "id",
        columns: &[
            "id",
            "enrollment_id",
            "step_id",
            "kind",
            "at_ms",
            "author",
            "reason",
            "to_version",
        ],
        has_subject: false,
    },
    Kind {
        name: DETAIL_EDIT,
        schema_version: 1,
        table: "detail_edit",
        id_column: "id",
        columns: &[
            "id",
            "field",
            "value",
            "base",
            "hlc",
            "author",
            "created_ms",
        ],
        has_subject: true,
    },
    Kind {
        name: SAFETY_ACK,
        schema_version: 1,
        table: "safety_ack",
        id_column: "id",
        columns: &["id", "flag_id", "note", "author", "acked_ms"],
        has_subject: true,
    },
];

pub(crate) fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The payload of record `id` of `kind`, or `None` if the row is gone (never, for immutable
/// records, unless its subject was purged from this device).
pub(crate) fn payload(c: &Connection, kind: &Kind, id: &str) -> Result<Option<Value>> {
    let mut stmt = c.prepare_cached(&kind_sql(kind).select)?;
    let row = stmt
        .query_row([id], |r| {
            let mut m = Map::new();
            for (i, col) in kind.columns.iter().enumerate() {
                let v = match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::from(n),
                    ValueRef::Real(f) => Value::from(f),
                    ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => Value::Null,
                };
                m.insert((*col).to_owned(), v);
            }
            Ok(Value::Object(m))
        })
        .optional()?;
    Ok(row)
}

/// What applying one received operation did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    Inserted,
    AlreadyHere,
    /// A second version of an entry with the same version number: a fork, recorded for review.
    Conflict,
}

/// Stores the record an operation carries. Errors leave the caller to keep the operation aside.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    kind: &Kind,
    subject_no: i64,
    payload: &Value,
    now_ms: i64,
) -> Result<Applied> {
    let obj = payload
        .as_object()
        .ok_or_else(|| Error::Storage("payload is not an object".into()))?;
    let mut vals: Vec<SqlValue> = Vec::with_capacity(kind.columns.len() + 7);
    for col in kind.columns {
        vals.push(to_sql(obj.get(*col).unwrap_or(&Value::Null), col)?);
    }
    if kind.has_subject {
        vals.push(SqlValue::Integer(subject_no));
    }
    let id = match obj.get(kind.id_column).and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => return Err(Error::Storage(format!("payload has no {}", kind.id_column))),
    };
    // A first version of an entry no other device has versioned is its own head (the common case
    // of an initial sync); otherwise the head is recomputed after the insert.
    let mut first_of_entry = false;
    let mut entry_data = None;
    if kind.name == ENTRY_VERSION {
        // The analytics columns are recomputed from the typed data, never taken on trust.
        let data = obj.get("data").and_then(Value::as_str).unwrap_or("");
        let data: EntryData = serde_json::from_str(data)
            .map_err(|e| Error::Storage(format!("entry data does not parse: {e}")))?;
        let d = crate::diary::derived_columns(&data);
        for v in [
            d.value.map(SqlValue::Real),
            d.value2.map(SqlValue::Real),
            d.tag.map(|s| SqlValue::Text(s.to_owned())),
            d.marker.map(|s| SqlValue::Text(s.to_owned())),
            d.detail.map(|s| SqlValue::Text(s.to_owned())),
        ] {
            vals.push(v.unwrap_or(SqlValue::Null));
        }
        let entry_id = obj.get("entry_id").and_then(Value::as_str).unwrap_or("");
        first_of_entry = !tx
            .prepare_cached("SELECT 1 FROM entry_version WHERE entry_id = ?1")?
            .exists([entry_id])?;
        vals.push(SqlValue::Integer(first_of_entry as i64));
        entry_data = Some(data);
    }
    let n = tx
        .prepare_cached(&kind_sql(kind).insert)?
        .execute(rusqlite::params_from_iter(vals.iter()))?;
    if n == 0 {
        return Ok(Applied::AlreadyHere);
    }
    raise_safety_flags(tx, kind, subject_no, obj, &id, entry_data.as_ref())?;
    if kind.name == ENTRY_VERSION && !first_of_entry {
        return entry_inserted(tx, &id, subject_no, now_ms);
    }
    Ok(Applied::Inserted)
}

/// The safety rules run on every record a device receives, as on those it writes, so every
/// device holds the same flags (safety/mod.rs).
fn raise_safety_flags(
    tx: &Transaction<'_>,
    kind: &Kind,
    subject_no: i64,
    obj: &Map<String, Value>,
    id: &str,
    entry: Option<&EntryData>,
) -> Result<()> {
    let int = |k: &str| obj.get(k).and_then(Value::as_i64).unwrap_or(0);
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    match (kind.name, entry) {
        (ENTRY_VERSION, Some(data)) => crate::safety::Raised {
            subject_no,
            source: crate::safety::SOURCE_ENTRY,
            version_id: &id,
            record_id: &text("entry_id"),
            at_ms: int("at_ms"),
            offset_s: int("utc_offset_s") as i32,
            created_ms: int("created_ms"),
        }
        .entry(
            tx,
            data,
            !obj.get("deleted_reason").is_none_or(Value::is_null),
        ),
        (QUESTIONNAIRE_RESPONSE, _) => {
            let Some(scored) = crate::safety::rescore(text("instrument"), text("answers")) else {
                return Ok(());
            };
            crate::safety::Raised {
                subject_no,
                source: crate::safety::SOURCE_RESPONSE,
                version_id: &id,
                record_id: &id,
                at_ms: int("authored_ms"),
                offset_s: int("utc_offset_s") as i32,
                created_ms: int("created_ms"),
            }
            .response(tx, &scored)
        }
        _ => Ok(()),
    }
}

struct KindSql {
    /// The payload columns of one record by id.
    select: String,
    /// `INSERT OR IGNORE` of the payload columns (+ subject, + derived columns for entries).
    insert: String,
}

/// A kind's statements, built once per process (they run once per synced operation).
fn kind_sql(kind: &Kind) -> &'static KindSql {
    static SQL: std::sync::OnceLock<Vec<KindSql>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        KINDS
            .iter()
            .map(|k| {
                let mut cols: Vec<&str> = k.columns.to_vec();
                if k.has_subject {
                    cols.push("subject_no");
                }
                if k.name == ENTRY_VERSION {
                    cols.extend(["value", "value2", "tag", "marker", "detail", "is_head"]);
                }
                let placeholders = (1..=cols.len())
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                KindSql {
                    select: format!(
                        "SELECT {} FROM {} WHERE {} = ?1",
                        k.columns.join(", "),
                        k.table,
                        k.id_column
                    ),
                    insert: format!(
                        "INSERT OR IGNORE INTO {} ({}) VALUES ({placeholders})",
                        k.table,
                        cols.join(", ")
                    ),
                }
            })
            .collect()
    });
    let i = KINDS.iter().position(|k| k.name == kind.name).unwrap_or(0);
    &all[i]
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

/// After a received entry version: pick the head by the shared rule and record a fork.
fn entry_inserted(
    tx: &Transaction<'_>,
    version_id: &str,
    subject_no: i64,
    now_ms: i64,
) -> Result<Applied> {
    let (entry_id, version, resolves): (String, i64, Option<String>) = tx.query_row(
        "SELECT entry_id, version, resolves FROM entry_version WHERE version_id = ?1",
        [version_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    set_head(tx, &entry_id)?;
    let _ = resolves; // a resolving edit is an ordinary later version; listing checks `resolves`
    let mut stmt = tx.prepare_cached(
        "SELECT version_id FROM entry_version WHERE entry_id = ?1 AND version = ?2 ORDER BY version_id",
    )?;
    let siblings = stmt
        .query_map(params![entry_id, version], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if siblings.len() < 2 {
        return Ok(Applied::Inserted);
    }
    tx.execute(
        "INSERT OR IGNORE INTO sync_conflict (id, subject_no, entry_id, version, detected_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            conflict_id(&entry_id, version),
            subject_no,
            entry_id,
            version,
            now_ms
        ],
    )?;
    Ok(Applied::Conflict)
}

/// The same fork gets the same id on every device.
pub(crate) fn conflict_id(entry_id: &str, version: i64) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("polku.conflict/{entry_id}/{version}").as_bytes(),
    )
    .to_string()
}

/// The head of an entry is its highest version; between concurrent versions of the same number,
/// the later HLC (then the version id). Every device applies this rule, so heads converge.
pub(crate) fn set_head(tx: &Transaction<'_>, entry_id: &str) -> Result<()> {
    tx.prepare_cached(
        "UPDATE entry_version SET is_head = (version_id = (
             SELECT version_id FROM entry_version WHERE entry_id = ?1
             ORDER BY version DESC, hlc DESC, version_id DESC LIMIT 1))
         WHERE entry_id = ?1",
    )?
    .execute([entry_id])?;
    Ok(())
}

/// Why an operation cannot be stored: a stable code and a reason for the person reviewing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub reason: String,
}

fn invalid(code: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        code,
        reason: reason.into(),
    }
}

/// The checks the server makes before storing an operation; the device applies the same
/// rules when it receives one. Kinds or schema versions newer than this build pass the envelope
/// checks only: they are kept for a newer app, never dropped. `payload_text` is the payload as
/// it will be stored (the caller serialises it once).
pub fn check_op(op: &super::protocol::Op, payload_text: &str) -> Result<(), Invalid> {
    if uuid::Uuid::parse_str(&op.op_id).is_err() {
        return Err(invalid("invalid_op_id", "op_id must be a UUID"));
    }
    if op.stream.trim().is_empty() || op.stream.len() > 100 {
        return Err(invalid("invalid_stream", "stream must be 1–100 characters"));
    }
    if op.device_seq < 1 {
        return Err(invalid("invalid_device_seq", "device_seq must be ≥ 1"));
    }
    if super::hlc::Hlc::parse(&op.hlc).is_none() {
        return Err(invalid(
            "invalid_hlc",
            "hlc must be <16 hex ms>-<4 hex counter>-<device>",
        ));
    }
    let kind_ok = !op.kind.is_empty()
        && op.kind.len() <= 64
        && op
            .kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if !kind_ok {
        return Err(invalid(
            "invalid_kind",
            "kind must be 1–64 characters of a–z, 0–9, '.', '_'",
        ));
    }
    if op.schema_version < 1 {
        return Err(invalid(
            "invalid_schema_version",
            "schema_version must be ≥ 1",
        ));
    }
    let Some(obj) = op.payload.as_object() else {
        return Err(invalid("invalid_payload", "payload must be a JSON object"));
    };
    let size = payload_text.len();
    if size > super::protocol::MAX_PAYLOAD_BYTES {
        return Err(invalid(
            "payload_too_large",
            format!(
                "payload is {size} bytes; at most {} allowed",
                super::protocol::MAX_PAYLOAD_BYTES
            ),
        ));
    }
    let Some(k) = kind(&op.kind) else {
        return Ok(());
    };
    if op.schema_version > k.schema_version {
        return Ok(());
    }
    if obj.get(k.id_column).and_then(Value::as_str) != Some(op.op_id.as_str()) {
        return Err(invalid(
            "invalid_payload",
            format!(
                "payload {} must equal op_id (records are immutable)",
                k.id_column
            ),
        ));
    }
    for col in k.columns {
        match obj.get(*col) {
            None | Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {}
            Some(_) => {
                return Err(invalid(
                    "invalid_payload",
                    format!("field {col} is not a scalar"),
                ))
            }
        }
    }
    if k.name == ENTRY_VERSION {
        let data = obj.get("data").and_then(Value::as_str).unwrap_or("");
        if serde_json::from_str::<EntryData>(data).is_err() {
            return Err(invalid(
                "invalid_payload",
                "entry data is not a diary entry of a known kind",
            ));
        }
    }
    Ok(())
}
