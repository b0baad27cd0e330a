//! Entry versions arriving from other devices: how they are stored, which version is the head,
//! and the forks that concurrent edits leave for a person to settle (docs/sync.md, merge rules).

use chrono::{DateTime, TimeZone, Utc};
use polku_protocol::op;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    derived_columns, insert_version, row_to_entry, supersede, Diary, Entry, EntryData, COLUMNS,
};
use crate::error::{Error, Result};
use crate::store::kind::{Applied, RecordKind, Table};
use crate::store::uuid_at;

/// Diary entry versions and tombstones, one synced record each.
pub(crate) struct EntryVersions(Table);

pub(crate) static ENTRY_VERSIONS: EntryVersions = EntryVersions(
    Table::new(
        &op::ENTRY_VERSION,
        "entry_version",
        true,
        "version_id, subject_no, hlc FROM entry_version WHERE author = ?1 ORDER BY hlc",
        "DELETE FROM entry_version WHERE subject_no = ?1 AND version_id NOT IN (SELECT id FROM temp.keep)",
    )
    .derived(&["value", "value2", "tag", "marker", "detail", "is_head"]),
);

impl RecordKind for EntryVersions {
    fn table(&self) -> &Table {
        &self.0
    }

    /// The fields here; the entry's data is checked where `apply` parses it (once).
    fn check(
        &self,
        op_id: &str,
        payload: &Map<String, Value>,
        now_ms: i64,
    ) -> std::result::Result<(), op::Invalid> {
        op::check_fields(self.spec(), op_id, payload, now_ms)
    }

    fn apply(
        &self,
        tx: &Transaction<'_>,
        subject_no: i64,
        obj: &Map<String, Value>,
        now_ms: i64,
    ) -> Result<Applied> {
        let id = self.0.id(obj)?;
        // The data is checked with the server's rules (`check` left it for here), and the
        // analytics columns are recomputed from it, never taken on trust.
        let data: EntryData = op::entry_version_data(obj)
            .map_err(|e| Error::Storage(format!("invalid_payload: {e}")))?;
        let d = derived_columns(&data);
        // A first version of an entry no other device has versioned is its own head (the common
        // case of an initial sync); otherwise the head is recomputed after the insert.
        let entry_id = obj.get("entry_id").and_then(Value::as_str).unwrap_or("");
        let owner: Option<i64> = tx
            .prepare_cached("SELECT subject_no FROM entry_version WHERE entry_id = ?1 LIMIT 1")?
            .query_row([entry_id], |r| r.get(0))
            .optional()?;
        // A version belongs to its entry's subject: one in another subject's stream is held,
        // never allowed to move the entry (the server refuses it too: `foreign_record`).
        if owner.is_some_and(|no| no != subject_no) {
            return Err(Error::Storage(format!(
                "entry {entry_id} belongs to another subject"
            )));
        }
        let first_of_entry = owner.is_none();
        // A stream carries an entry's first version before any later one, so a later version of
        // an entry this device has never seen names an entry of another stream: held.
        let version = obj.get("version").and_then(Value::as_i64).unwrap_or(0);
        if first_of_entry && version > 1 {
            return Err(Error::Storage(format!(
                "version {version} of entry {entry_id}, whose first version this device never received"
            )));
        }
        let derived = vec![
            d.value.map_or(SqlValue::Null, SqlValue::Real),
            d.value2.map_or(SqlValue::Null, SqlValue::Real),
            d.tag
                .map_or(SqlValue::Null, |s| SqlValue::Text(s.to_owned())),
            d.marker
                .map_or(SqlValue::Null, |s| SqlValue::Text(s.to_owned())),
            d.detail
                .map_or(SqlValue::Null, |s| SqlValue::Text(s.to_owned())),
            SqlValue::Integer(first_of_entry as i64),
        ];
        if !self.0.insert(tx, subject_no, obj, derived)? {
            return Ok(Applied::AlreadyHere);
        }
        // The safety rules run on every version a device receives, as on those it writes, so
        // every device holds the same flags (safety/mod.rs).
        let source = crate::safety::SOURCE_ENTRY;
        crate::safety::Raised::received(subject_no, source, &id, &entry_id, obj, "at_ms").entry(
            tx,
            &data,
            !obj.get("deleted_reason").is_none_or(Value::is_null),
        )?;
        if first_of_entry {
            return Ok(Applied::Inserted);
        }
        entry_inserted(tx, id, subject_no, now_ms)
    }

    fn purge(&self, tx: &Transaction<'_>, subject_no: i64) -> Result<()> {
        tx.execute(
            "DELETE FROM sync_conflict WHERE subject_no = ?1",
            [subject_no],
        )?;
        tx.execute(self.0.purge_sql(), [subject_no])?;
        Ok(())
    }

    fn open_conflicts(&self, c: &Connection) -> Result<u64> {
        Ok(open_forks(c)?.len() as u64)
    }
}

/// After a received entry version: pick the head by the shared rule and record a fork.
fn entry_inserted(
    tx: &Transaction<'_>,
    version_id: &str,
    subject_no: i64,
    now_ms: i64,
) -> Result<Applied> {
    let (entry_id, version): (String, i64) = tx.query_row(
        "SELECT entry_id, version FROM entry_version WHERE version_id = ?1",
        [version_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // A resolving edit is an ordinary later version; listing forks checks `resolves`.
    set_head(tx, &entry_id)?;
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
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
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

/// Two or more versions of one entry made concurrently on different devices: all are kept, the
/// head is chosen by the shared rule, and a person reviews the fork.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub id: String,
    pub subject: String,
    pub entry_id: Uuid,
    pub version: i64,
    pub versions: Vec<Entry>,
    pub detected_at: DateTime<Utc>,
}

/// A fork of a diary entry as stored, before its versions are read.
struct OpenFork {
    id: String,
    subject: String,
    entry_id: Uuid,
    version: i64,
    detected_ms: i64,
}

/// Forks not yet settled: no later version of the entry names the conflict in `resolves`.
fn open_forks(c: &Connection) -> Result<Vec<OpenFork>> {
    let mut stmt = c.prepare_cached(
        "SELECT k.id, s.id, k.entry_id, k.version, k.detected_ms FROM sync_conflict k
         JOIN subject s ON s.no = k.subject_no
         WHERE NOT EXISTS (SELECT 1 FROM entry_version v WHERE v.entry_id = k.entry_id AND v.resolves = k.id)
         ORDER BY k.detected_ms, k.id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(OpenFork {
                id: r.get(0)?,
                subject: r.get(1)?,
                entry_id: uuid_at(r, 2)?,
                version: r.get(3)?,
                detected_ms: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

impl Diary<'_> {
    /// Open conflicts on this device, of every subject it holds, each with every competing
    /// version.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.cx.store.read(|c| {
            let rows = open_forks(c)?;
            let mut out = Vec::with_capacity(rows.len());
            for f in rows {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM entry_version WHERE entry_id = ?1 AND version = ?2 ORDER BY hlc, version_id"
                ))?;
                let versions = stmt
                    .query_map(params![f.entry_id.to_string(), f.version], row_to_entry)?
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Conflict {
                    id: f.id,
                    subject: f.subject,
                    entry_id: f.entry_id,
                    version: f.version,
                    versions,
                    detected_at: Utc.timestamp_millis_opt(f.detected_ms).single().unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }

    /// Settles a conflict by keeping `keep` (one of its versions): a new version with that
    /// content supersedes the head and names the conflict, so every device sees it settled.
    pub fn resolve_conflict(&self, conflict_id: &str, keep: Uuid) -> Result<Entry> {
        let now = crate::time::stored_precision(self.cx.clock.now());
        self.cx.store.write(|tx| {
            let (subject_no, subject, entry_id): (i64, String, String) = tx
                .query_row(
                    "SELECT k.subject_no, s.id, k.entry_id FROM sync_conflict k
                     JOIN subject s ON s.no = k.subject_no WHERE k.id = ?1",
                    [conflict_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?
                .ok_or_else(|| Error::NotFound {
                    what: "conflict",
                    id: conflict_id.to_owned(),
                })?;
            let kept = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM entry_version WHERE version_id = ?1 AND entry_id = ?2"
                ))?
                .query_row(params![keep.to_string(), entry_id], row_to_entry)
                .optional()?
                .ok_or_else(|| Error::validation("keep", keep, "a version id of this conflict"))?;
            let head = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM entry_version WHERE entry_id = ?1 AND is_head = 1"
                ))?
                .query_row([&entry_id], row_to_entry)?;
            let next = Entry {
                version_id: Uuid::now_v7(),
                version: head.version + 1,
                author: self.cx.author.clone(),
                created_at: now,
                is_head: true,
                ..kept
            };
            supersede(tx, &head)?;
            insert_version(tx, &self.cx.view(subject, subject_no), &next, None)?;
            tx.execute(
                "UPDATE entry_version SET resolves = ?1 WHERE version_id = ?2",
                params![conflict_id, next.version_id.to_string()],
            )?;
            Ok(next)
        })
    }
}
