//! Patient safety: answers and measurements that need the care team the same day raise an urgent
//! flag, whatever pathway the person is on (or none), and the person gets guidance at once.
//!
//! - Flags are derived: every device applies [`rules`] to every diary version and questionnaire
//!   response it writes or receives, in the same transaction, so each holds the same flags under
//!   the same ids (UUIDv5 of rule and record). A later, better answer is a new record and clears
//!   nothing: a flag stays until a professional acknowledges it.
//! - Acknowledgements are append-only records that sync (`safety.ack`): who, when, what was done.
//!   Only a professional's device may write one; the server refuses them from anyone else.
//! - Two audiences, two texts: [`Rule::care_team_text`] for the care team, [`guidance`] for the
//!   person (docs/safety.md lists both for every rule).

pub mod guidance;
pub mod rules;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;
use uuid::Uuid;

pub use guidance::{Guidance, Numbers};
pub use rules::{Advice, Rule};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::instrument::{Lang, Scored};
use crate::store::kind::{RecordKind, Table};
use crate::store::{uuid_at, Store};
use crate::time;
use polku_protocol::entry::EntryData;

/// An urgent flag raised on this device's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SafetyFlag {
    pub id: Uuid,
    pub subject: String,
    pub rule: Rule,
    /// Safety flags always ask for contact the same day.
    pub urgent: bool,
    /// When the value was measured or the questionnaire answered.
    pub at: DateTime<FixedOffset>,
    /// `diary_entry` or `questionnaire_response`.
    pub source: &'static str,
    /// The diary entry (its id, shared by its versions) or the questionnaire response.
    pub record_id: Uuid,
    /// The entry version that raised it (the response's id for a response).
    pub version_id: Uuid,
    /// The value that raised it, for the care team ("2.2 mmol/L (meter)", "item 9 = 3").
    pub detail: String,
    /// Empty while open; acknowledgements from several professionals are all kept.
    pub acknowledgements: Vec<Acknowledgement>,
}

impl SafetyFlag {
    pub fn is_open(&self) -> bool {
        self.acknowledgements.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Acknowledgement {
    pub id: Uuid,
    /// The professional's user id.
    pub by: String,
    pub at: DateTime<Utc>,
    /// What was done ("called her, appointment tomorrow 9:00").
    pub note: String,
}

pub const SOURCE_ENTRY: &str = "diary_entry";
pub const SOURCE_RESPONSE: &str = "questionnaire_response";

/// The same flag gets the same id on every device.
fn flag_id(rule: Rule, source_version: &str) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("polku.safety/{}/{source_version}", rule.code()).as_bytes(),
    )
    .to_string()
}

/// What a stored record looks like to the rules.
pub(crate) struct Raised<'a> {
    pub subject_no: i64,
    pub source: &'static str,
    /// The stored row's own id (an entry *version*, or a response); formatted only when a rule
    /// fires (most writes raise nothing).
    pub version_id: &'a dyn std::fmt::Display,
    /// The record the person sees (the entry, or the response).
    pub record_id: &'a dyn std::fmt::Display,
    pub at_ms: i64,
    pub offset_s: i32,
    pub created_ms: i64,
}

impl<'a> Raised<'a> {
    /// The record a received payload carries: its time from field `at` (`at_ms` of an entry,
    /// `authored_ms` of a response), its offset and its writing time.
    pub(crate) fn received(
        subject_no: i64,
        source: &'static str,
        version_id: &'a dyn std::fmt::Display,
        record_id: &'a dyn std::fmt::Display,
        payload: &serde_json::Map<String, serde_json::Value>,
        at: &str,
    ) -> Raised<'a> {
        let int = |k: &str| {
            payload
                .get(k)
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0)
        };
        Raised {
            subject_no,
            source,
            version_id,
            record_id,
            at_ms: int(at),
            offset_s: int("utc_offset_s") as i32,
            created_ms: int("created_ms"),
        }
    }

    fn store(&self, tx: &Transaction<'_>, findings: Vec<rules::Finding>) -> Result<()> {
        if findings.is_empty() || !rules::recent(self.at_ms, self.created_ms) {
            return Ok(());
        }
        let (version_id, record_id) = (self.version_id.to_string(), self.record_id.to_string());
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO safety_flag (id, subject_no, rule, source, version_id, record_id, at_ms, utc_offset_s, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for f in findings {
            stmt.execute(params![
                flag_id(f.rule, &version_id),
                self.subject_no,
                f.rule.code(),
                self.source,
                version_id,
                record_id,
                self.at_ms,
                self.offset_s,
                f.detail
            ])?;
        }
        Ok(())
    }

    /// Raises the flags of a diary entry version (a tombstone raises none; the flags of the
    /// versions before it stay).
    pub fn entry(&self, tx: &Transaction<'_>, data: &EntryData, deleted: bool) -> Result<()> {
        if deleted {
            return Ok(());
        }
        self.store(tx, rules::entry(data))
    }

    pub fn response(&self, tx: &Transaction<'_>, scored: &Scored) -> Result<()> {
        self.store(tx, rules::response(scored))
    }
}

/// The rules' version: raising again from every stored record when it changes (at open).
const RULES_VERSION: &str = "1";
const KEY_RULES: &str = "safety.rules";

/// Applies the rules to every record already stored (a database from before the rules, or from
/// before a change of them). Only rows that can break a rule are decoded.
pub(crate) fn backfill(store: &Store) -> Result<()> {
    if store.profile_get(KEY_RULES)?.as_deref() == Some(RULES_VERSION) {
        return Ok(());
    }
    store.write(|tx| {
        // Entry versions that can break a rule (the rules decide exactly).
        let entries = stored(
            tx,
            "SELECT subject_no, version_id, entry_id, at_ms, utc_offset_s, created_ms, data FROM entry_version
             WHERE deleted_reason IS NULL AND (
                (kind = 'glucose' AND (marker IN ('LO', 'HI') OR value < 3.1 OR value > 19.9))
                OR (kind = 'blood_pressure' AND (value >= 180 OR value2 >= 110))
                OR (kind = 'symptom' AND tag = 'chest_pain' AND value >= 7))",
        )?;
        for (raised, data) in &entries {
            if let Ok(data) = serde_json::from_str::<EntryData>(data) {
                raised.as_raised(SOURCE_ENTRY).entry(tx, &data, false)?;
            }
        }
        let responses = stored(
            tx,
            "SELECT subject_no, id, id, authored_ms, utc_offset_s, created_ms, instrument || ' ' || answers
             FROM questionnaire_response WHERE instrument IN ('phq9', 'rbdi')",
        )?;
        for (r, content) in &responses {
            let scored = content
                .split_once(' ')
                .and_then(|(instrument, answers)| rescore(instrument, answers));
            if let Some(scored) = scored {
                r.as_raised(SOURCE_RESPONSE).response(tx, &scored)?;
            }
        }
        tx.execute(
            "INSERT INTO profile (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![KEY_RULES, RULES_VERSION],
        )?;
        Ok(())
    })
}

/// A stored row as the backfill reads it: who, which row, when, and its content column.
struct Row {
    subject_no: i64,
    version_id: String,
    record_id: String,
    at_ms: i64,
    offset_s: i32,
    created_ms: i64,
}

impl Row {
    fn as_raised(&self, source: &'static str) -> Raised<'_> {
        Raised {
            subject_no: self.subject_no,
            source,
            version_id: &self.version_id,
            record_id: &self.record_id,
            at_ms: self.at_ms,
            offset_s: self.offset_s,
            created_ms: self.created_ms,
        }
    }
}

/// The rows of `sql`, which selects subject, id, record id, time, offset, created and content.
fn stored(tx: &Transaction<'_>, sql: &str) -> Result<Vec<(Row, String)>> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                Row {
                    subject_no: r.get(0)?,
                    version_id: r.get(1)?,
                    record_id: r.get(2)?,
                    at_ms: r.get(3)?,
                    offset_s: r.get(4)?,
                    created_ms: r.get(5)?,
                },
                r.get(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A stored or received response scored again from its answers (the one scoring code path).
pub(crate) fn rescore(instrument: &str, answers_json: &str) -> Option<Scored> {
    let id = crate::instrument::InstrumentId::parse(instrument).ok()?;
    let answers: Vec<i64> = serde_json::from_str(answers_json).ok()?;
    crate::instrument::score(id, &answers).ok()
}

/// A professional's acknowledgements of flags, one synced record each.
pub(crate) struct Acks(Table);

pub(crate) static ACKS: Acks = Acks(Table::new(
    &polku_protocol::op::SAFETY_ACK,
    "safety_ack",
    true,
    "id, subject_no, printf('%016x-0000-requeue', acked_ms) FROM safety_ack WHERE author = ?1 ORDER BY acked_ms",
    "DELETE FROM safety_ack WHERE subject_no = ?1 AND id NOT IN (SELECT id FROM temp.keep)",
));

impl RecordKind for Acks {
    fn table(&self) -> &Table {
        &self.0
    }

    /// A purged subject's flags (derived, never synced) go with its acknowledgements.
    fn purge(&self, tx: &Transaction<'_>, subject_no: i64) -> Result<()> {
        tx.execute(self.0.purge_sql(), [subject_no])?;
        purge_flags(tx, subject_no)
    }
}

/// Removes the derived flags of a subject purged from this device.
fn purge_flags(tx: &Transaction<'_>, subject_no: i64) -> Result<()> {
    tx.execute(
        "DELETE FROM safety_flag WHERE subject_no = ?1",
        [subject_no],
    )?;
    Ok(())
}

const FLAG_SELECT: &str =
    "SELECT f.id, s.id, f.rule, f.source, f.record_id, f.at_ms, f.utc_offset_s, f.detail, f.version_id
    FROM safety_flag f JOIN subject s ON s.no = f.subject_no";

/// Flags matching `filter` (SQL on `f`), newest first, with their acknowledgements.
fn query(c: &Connection, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<SafetyFlag>> {
    let mut stmt = c.prepare_cached(&format!(
        "{FLAG_SELECT} WHERE {filter} ORDER BY f.at_ms DESC, f.id"
    ))?;
    let rows = stmt
        .query_map(args, |r| {
            let rule: String = r.get(2)?;
            let source: String = r.get(3)?;
            // A rule of a newer app version is not shown by this one (its row stays).
            let Some(rule) = Rule::parse(&rule) else {
                return Ok(None);
            };
            Ok(Some(SafetyFlag {
                id: uuid_at(r, 0)?,
                subject: r.get(1)?,
                rule,
                urgent: true,
                at: time::wall_clock(r.get(5)?, r.get(6)?),
                source: if source == SOURCE_RESPONSE {
                    SOURCE_RESPONSE
                } else {
                    SOURCE_ENTRY
                },
                record_id: uuid_at(r, 4)?,
                version_id: uuid_at(r, 8)?,
                detail: r.get(7)?,
                acknowledgements: Vec::new(),
            }))
        })?
        .filter_map(|r| r.transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let mut acks = c.prepare_cached(
        "SELECT id, author, acked_ms, note FROM safety_ack WHERE flag_id = ?1 ORDER BY acked_ms, id",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for mut f in rows {
        f.acknowledgements = acks
            .query_map([f.id.to_string()], |r| {
                Ok(Acknowledgement {
                    id: uuid_at(r, 0)?,
                    by: r.get(1)?,
                    at: time::from_ms(r.get(2)?),
                    note: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(f);
    }
    Ok(out)
}

/// Every open (unacknowledged) flag on this device, by subject: the caseload puts these first.
pub(crate) fn open_by_subject(store: &Store) -> Result<BTreeMap<String, Vec<SafetyFlag>>> {
    let flags = store.read(|c| {
        query(
            c,
            "NOT EXISTS (SELECT 1 FROM safety_ack a WHERE a.flag_id = f.id)",
            &[],
        )
    })?;
    let mut out: BTreeMap<String, Vec<SafetyFlag>> = BTreeMap::new();
    for f in flags {
        out.entry(f.subject.clone()).or_default().push(f);
    }
    Ok(out)
}

/// The longest "what was done" note.
pub const MAX_NOTE: usize = 2000;

/// The safety flags of one subject.
pub struct Safety<'a> {
    pub(crate) cx: &'a Context,
    /// The numbers the person's guidance gives (the county's `safety.json`, or the defaults).
    pub(crate) numbers: &'a Numbers,
}

impl Safety<'_> {
    /// This subject's flags, newest first; with `include_acknowledged = false` only open ones.
    pub fn flags(&self, include_acknowledged: bool) -> Result<Vec<SafetyFlag>> {
        let all = self
            .cx
            .store
            .read(|c| query(c, "f.subject_no = ?1", &[&self.cx.subject_no]))?;
        Ok(all
            .into_iter()
            .filter(|f| include_acknowledged || f.is_open())
            .collect())
    }

    /// The flags a record raised: a diary entry (any of its versions) or a response.
    pub fn raised_by(&self, record_id: Uuid) -> Result<Vec<SafetyFlag>> {
        self.cx.store.read(|c| {
            query(
                c,
                "f.subject_no = ?1 AND f.record_id = ?2",
                &[&self.cx.subject_no, &record_id.to_string()],
            )
        })
    }

    /// What the person should do now about `flags`, one guidance per kind of advice (a low and
    /// a very low reading need the same words once), most urgent kind first.
    pub fn guidance(&self, flags: &[SafetyFlag], lang: Lang) -> Vec<Guidance> {
        let mut advice: Vec<Advice> = flags.iter().map(|f| f.rule.advice()).collect();
        advice.sort_by_key(|a| *a as u8);
        advice.dedup();
        advice
            .into_iter()
            .map(|a| guidance::guidance(a, lang, self.numbers))
            .collect()
    }

    /// A professional acknowledges flag `id` with what was done: that flag and every other open
    /// flag of the same rule raised on this subject up to it (a night's CGM readings below 3.0
    /// are one matter). Each acknowledgement is its own append-only record, synced and audited
    /// on the server. Returns the flags acknowledged.
    pub fn acknowledge(&self, id: Uuid, note: &str) -> Result<Vec<SafetyFlag>> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > MAX_NOTE {
            return Err(Error::validation(
                "note",
                format!("{} characters", note.chars().count()),
                format!("what was done, 1–{MAX_NOTE} characters"),
            ));
        }
        let role = self.cx.device_role()?;
        if !role.is_some_and(|r| r.reads_others()) {
            return Err(Error::validation(
                "role",
                role.map_or("not enrolled", |r| r.as_str()),
                "a professional's or outreach worker's device: the care team acknowledges flags",
            ));
        }
        let now = time::stored_precision(self.cx.clock.now()).timestamp_millis();
        let flag = self
            .flags(true)?
            .into_iter()
            .find(|f| f.id == id)
            .ok_or_else(|| Error::NotFound {
                what: "safety flag",
                id: id.to_string(),
            })?;
        let covered: Vec<SafetyFlag> = self
            .flags(false)?
            .into_iter()
            .filter(|f| f.rule == flag.rule && f.at <= flag.at)
            .collect();
        if covered.is_empty() {
            return Err(Error::Conflict(format!(
                "safety flag {id} is already acknowledged"
            )));
        }
        self.cx.store.write(|tx| {
            for f in &covered {
                let ack = Uuid::now_v7().to_string();
                tx.prepare_cached(
                    "INSERT INTO safety_ack (id, subject_no, flag_id, note, author, acked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![ack, self.cx.subject_no, f.id.to_string(), note, self.cx.author, now])?;
                self.cx.queue(tx, polku_protocol::op::SAFETY_ACK.name, &ack)?;
            }
            Ok(())
        })?;
        let ids: Vec<Uuid> = covered.iter().map(|f| f.id).collect();
        Ok(self
            .flags(true)?
            .into_iter()
            .filter(|f| ids.contains(&f.id))
            .collect())
    }
}
