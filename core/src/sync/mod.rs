//! Offline-first sync with the county's server: outbox up, change log down (docs/sync.md).
//!
//! - Every record this device writes is queued in `sync_outbox` in the same transaction as the
//!   record itself, so an acknowledged write is also a queued upload.
//! - [`Sync::sync`] pushes the outbox in bounded batches (each operation ends applied, duplicate,
//!   or quarantined with the server's reason, never blocking the rest), then pulls every stream the
//!   device may read, one bounded page at a time; a page and its cursor commit in one transaction,
//!   so a cut connection resumes where it stopped.
//! - Records are immutable, so applying an operation twice is harmless; the only derived state, an
//!   entry's head version, is recomputed by one rule everywhere ([`records::set_head`]).

pub mod hlc;
mod http;
pub mod protocol;
pub(crate) mod records;

pub use http::install_crypto_provider;
pub use records::{care_team_only, check_op, Invalid};

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::client::Context;
use crate::error::{Error, Result};
use crate::store::Store;
use protocol::*;

pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    kind: &str,
    record_id: &str,
    subject_no: i64,
    hlc: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sync_outbox (kind, record_id, subject_no, hlc) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind, record_id, subject_no, hlc])?;
    Ok(())
}

/// Queues a record stamped with the device's clock now.
pub(crate) fn enqueue_now(
    tx: &Transaction<'_>,
    cx: &Context,
    kind: &str,
    record_id: &str,
) -> Result<()> {
    let hlc = cx.hlc.tick(cx.clock.now().timestamp_millis().max(0) as u64);
    enqueue(tx, kind, record_id, cx.subject_no, &hlc.to_string())
}

/// The highest stamp this device has issued or seen, to restart its clock after it: the newest
/// queued record (local stamps rise with `device_seq`, so this is one rowid lookup, not a scan of
/// an outbox that may hold a whole unsynced history) or the stamp saved at the last sync.
pub(crate) fn hlc_floor(store: &Store) -> Result<Option<String>> {
    store.read(|c| {
        let queued: Option<String> = c
            .query_row(
                "SELECT hlc FROM sync_outbox ORDER BY device_seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let saved = get(c, KEY_HLC)?;
        Ok(queued.max(saved))
    })
}

const KEY_SERVER: &str = "sync.server";
const KEY_TOKEN: &str = "sync.token";
const KEY_DEVICE: &str = "sync.device_id";
const KEY_USER: &str = "sync.user_id";
const KEY_ROLE: &str = "sync.role";
const KEY_NAME: &str = "sync.name";
const KEY_EPOCH: &str = "sync.epoch";
const KEY_HLC: &str = "sync.hlc";
const KEY_LAST_OK: &str = "sync.last_success_ms";
const KEY_LAST_ERROR: &str = "sync.last_error";

/// The role this device was enrolled with (`citizen`, `professional`, `outreach`), if enrolled.
pub(crate) fn device_role(c: &Connection) -> Result<Option<String>> {
    get(c, KEY_ROLE)
}

fn get(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT value FROM profile WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?,
    )
}

fn set(c: &Connection, key: &str, value: &str) -> Result<()> {
    c.prepare_cached("INSERT INTO profile (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")?
        .execute(params![key, value])?;
    Ok(())
}

/// Who this device is on the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrollment {
    pub server: String,
    pub device_id: String,
    pub user_id: String,
    pub role: String,
    pub name: String,
}

/// An operation the server would not take, kept on the device with the server's reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quarantined {
    pub device_seq: i64,
    pub kind: String,
    pub record_id: String,
    pub subject: String,
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    pub enrollment: Option<Enrollment>,
    /// Operations waiting for upload.
    pub pending: u64,
    pub quarantined: Vec<Quarantined>,
    /// Received operations this app version cannot apply yet (newer schema, unknown kind); kept.
    pub held: u64,
    /// Open conflicts waiting for review: forks of a diary entry, and client-detail fields with
    /// concurrent values.
    pub conflicts: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What one `sync` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pushed: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub pulled: u64,
    pub conflicts: u64,
    pub held: u64,
    pub removed_subjects: Vec<String>,
    pub requests: u64,
    pub bytes: u64,
}

/// Called after each applied page of a pull (and each pushed batch), for long first syncs.
pub trait ProgressListener: Send + std::marker::Sync {
    fn on_progress(&self, progress: SyncProgress);
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Operations done so far in this phase.
    pub done: u64,
    /// Operations left to push (push phase) or `None` when the server has not said (pull).
    pub remaining: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Push,
    Pull,
}

/// Two or more versions of one entry made concurrently on different devices: all are kept, the
/// head is chosen by the shared rule, and a person reviews the fork.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub id: String,
    pub subject: String,
    pub entry_id: uuid::Uuid,
    pub version: i64,
    pub versions: Vec<crate::diary::Entry>,
    pub detected_at: DateTime<Utc>,
}

/// Retry policy of [`Sync::sync_with_retry`]: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 6,
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before retry `n` (0-based): uniform in [0, min(max, base·2ⁿ)] ("full jitter").
    pub fn delay(&self, n: u32) -> Duration {
        let cap = self.base.saturating_mul(1u32 << n.min(20)).min(self.max);
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        cap.mul_f64(u32::from_le_bytes(b) as f64 / u32::MAX as f64)
    }
}

pub struct Sync<'a> {
    pub(crate) cx: &'a Context,
}

impl Sync<'_> {
    /// Enrolls this device with a one-time code from the care team. A citizen's local record
    /// becomes their stream on the server (everything written before enrolling is uploaded on
    /// the first sync). Reopen the profile afterwards so new writes carry the server identity.
    pub async fn enroll(
        &self,
        server: &str,
        code: &str,
        device_name: Option<&str>,
    ) -> Result<Enrollment> {
        let code = code.trim();
        if code.is_empty() || code.len() > 64 {
            return Err(Error::validation(
                "code",
                code,
                "the enrollment code from the care team",
            ));
        }
        if self.enrollment()?.is_some() {
            return Err(Error::Conflict(
                "this device is already enrolled; a profile enrolls once".into(),
            ));
        }
        let http = http::Http::new(server, None)?;
        let (r, _): (EnrollResponse, usize) = http
            .post(
                "/v1/enroll",
                &EnrollRequest {
                    code: code.to_owned(),
                    device_name: device_name.map(str::to_owned),
                },
            )
            .await?;
        let server = server.trim_end_matches('/').to_owned();
        self.cx.store.write(|tx| {
            for (k, v) in [
                (KEY_SERVER, server.as_str()),
                (KEY_TOKEN, r.token.as_str()),
                (KEY_DEVICE, r.device_id.as_str()),
                (KEY_USER, r.user_id.as_str()),
                (KEY_ROLE, r.role.as_str()),
                (KEY_NAME, r.name.as_str()),
                (KEY_EPOCH, r.epoch.as_str()),
                ("author_id", r.user_id.as_str()),
            ] {
                set(tx, k, v)?;
            }
            if r.role == "citizen" {
                // The citizen's own record is the stream named by their user id.
                tx.execute(
                    "UPDATE subject SET id = ?1 WHERE no = ?2",
                    params![r.user_id, self.cx.subject_no],
                )?;
                set(tx, "subject_id", &r.user_id)?;
            }
            Ok(())
        })?;
        Ok(Enrollment {
            server,
            device_id: r.device_id,
            user_id: r.user_id,
            role: r.role,
            name: r.name,
        })
    }

    pub fn enrollment(&self) -> Result<Option<Enrollment>> {
        self.cx.store.read(|c| {
            let Some(server) = get(c, KEY_SERVER)? else {
                return Ok(None);
            };
            Ok(Some(Enrollment {
                server,
                device_id: get(c, KEY_DEVICE)?.unwrap_or_default(),
                user_id: get(c, KEY_USER)?.unwrap_or_default(),
                role: get(c, KEY_ROLE)?.unwrap_or_default(),
                name: get(c, KEY_NAME)?.unwrap_or_default(),
            }))
        })
    }

    pub fn status(&self) -> Result<SyncStatus> {
        let enrollment = self.enrollment()?;
        self.cx.store.read(|c| {
            let pending: i64 = c.query_row(
                "SELECT count(*) FROM sync_outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT o.device_seq, o.kind, o.record_id, s.id, coalesce(o.code, ''), coalesce(o.reason, '')
                 FROM sync_outbox o JOIN subject s ON s.no = o.subject_no
                 WHERE o.state = 'quarantined' ORDER BY o.device_seq",
            )?;
            let quarantined = stmt
                .query_map([], |r| {
                    Ok(Quarantined {
                        device_seq: r.get(0)?,
                        kind: r.get(1)?,
                        record_id: r.get(2)?,
                        subject: r.get(3)?,
                        code: r.get(4)?,
                        reason: r.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let held: i64 = c.query_row("SELECT count(*) FROM sync_held", [], |r| r.get(0))?;
            let conflicts = open_conflicts(c)?.len() as u64 + crate::details::conflicted_fields(c)?;
            let last_success = get(c, KEY_LAST_OK)?
                .and_then(|s| s.parse::<i64>().ok())
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
            Ok(SyncStatus {
                enrollment,
                pending: pending as u64,
                quarantined,
                held: held as u64,
                conflicts,
                last_success,
                last_error: get(c, KEY_LAST_ERROR)?.filter(|s| !s.is_empty()),
            })
        })
    }

    /// Open conflicts on this device, each with every competing version.
    pub fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.cx.store.read(|c| {
            let rows = open_conflicts(c)?;
            let mut out = Vec::with_capacity(rows.len());
            for f in rows {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {} FROM entry_version WHERE entry_id = ?1 AND version = ?2 ORDER BY hlc, version_id",
                    crate::diary::COLUMNS
                ))?;
                let versions = stmt
                    .query_map(params![f.entry_id.to_string(), f.version], crate::diary::row_to_entry)?
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

    /// The subjects this device may see, as the server says now (with their names).
    pub async fn remote_subjects(&self) -> Result<Vec<SubjectInfo>> {
        let http = self.client()?;
        let r: SubjectsResponse = http.get("/v1/subjects").await?;
        Ok(r.subjects)
    }

    /// Settles a conflict by keeping `keep` (one of its versions): a new version with that
    /// content supersedes the head and names the conflict, so every device sees it settled.
    pub fn resolve_conflict(
        &self,
        conflict_id: &str,
        keep: uuid::Uuid,
    ) -> Result<crate::diary::Entry> {
        let now = crate::time::stored_precision(self.cx.clock.now());
        self.cx.store.write(|tx| {
            let (subject_no, entry_id): (i64, String) = tx
                .query_row(
                    "SELECT subject_no, entry_id FROM sync_conflict WHERE id = ?1",
                    [conflict_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| Error::NotFound {
                    what: "conflict",
                    id: conflict_id.to_owned(),
                })?;
            let kept = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM entry_version WHERE version_id = ?1 AND entry_id = ?2",
                    crate::diary::COLUMNS
                ))?
                .query_row(
                    params![keep.to_string(), entry_id],
                    crate::diary::row_to_entry,
                )
                .optional()?
                .ok_or_else(|| Error::validation("keep", keep, "a version id of this conflict"))?;
            let head = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM entry_version WHERE entry_id = ?1 AND is_head = 1",
                    crate::diary::COLUMNS
                ))?
                .query_row([&entry_id], crate::diary::row_to_entry)?;
            let next = crate::diary::Entry {
                version_id: uuid::Uuid::now_v7(),
                version: head.version + 1,
                author: self.cx.author.clone(),
                created_at: now,
                is_head: true,
                ..kept
            };
            crate::diary::supersede(tx, &head)?;
            let view = Context {
                subject_no,
                ..self.cx.clone_view()
            };
            crate::diary::insert_version(tx, &view, &next, None)?;
            tx.execute(
                "UPDATE entry_version SET resolves = ?1 WHERE version_id = ?2",
                params![conflict_id, next.version_id.to_string()],
            )?;
            Ok(next)
        })
    }

    fn client(&self) -> Result<http::Http> {
        let (server, token) = self
            .cx
            .store
            .read(|c| Ok((get(c, KEY_SERVER)?, get(c, KEY_TOKEN)?)))?;
        let (Some(server), Some(token)) = (server, token) else {
            return Err(Error::NotEnrolled);
        };
        http::Http::new(&server, Some(token))
    }

    /// One sync: push everything queued, then pull every permitted stream to its end.
    /// Dropping the future cancels it; what was committed stays committed.
    pub async fn sync(&self, progress: Option<&dyn ProgressListener>) -> Result<SyncReport> {
        let out = self.sync_once(progress).await;
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            match &out {
                Ok(_) => {
                    set(tx, KEY_LAST_OK, &now.to_string())?;
                    set(tx, KEY_LAST_ERROR, "")?;
                }
                Err(e) => set(tx, KEY_LAST_ERROR, &e.to_string())?,
            }
            set(tx, KEY_HLC, &self.cx.hlc.current().to_string())
        })?;
        out
    }

    /// [`Sync::sync`] retried on network and server-busy errors with [`Backoff`]; other errors
    /// (revoked device, not enrolled) return at once.
    pub async fn sync_with_retry(
        &self,
        policy: Backoff,
        progress: Option<&dyn ProgressListener>,
    ) -> Result<SyncReport> {
        let mut n = 0;
        loop {
            match self.sync(progress).await {
                Err(e) if n + 1 < policy.attempts && retryable(&e) => {
                    tokio::time::sleep(policy.delay(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn sync_once(&self, progress: Option<&dyn ProgressListener>) -> Result<SyncReport> {
        let http = self.client()?;
        let mut report = SyncReport::default();
        self.push(&http, &mut report, progress).await?;
        if self.pull(&http, &mut report, progress).await? {
            // A restored server: upload what it lost now rather than on the next sync.
            self.push(&http, &mut report, progress).await?;
        }
        Ok(report)
    }

    async fn push(
        &self,
        http: &http::Http,
        report: &mut SyncReport,
        progress: Option<&dyn ProgressListener>,
    ) -> Result<()> {
        let mut after = 0i64;
        let mut remaining: u64 = self.cx.store.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM sync_outbox WHERE state = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })?;
        loop {
            let ops = self.cx.store.read(|c| outbox_batch(c, after))?;
            let Some(last) = ops.last() else {
                return Ok(());
            };
            after = last.device_seq;
            let (resp, bytes): (PushResponse, usize) =
                http.post("/v1/push", &PushRequest { ops }).await?;
            report.requests += 1;
            report.bytes += bytes as u64;
            self.cx.store.write(|tx| {
                for r in &resp.results {
                    match r.status {
                        OpStatus::Applied | OpStatus::Duplicate => {
                            tx.prepare_cached("DELETE FROM sync_outbox WHERE record_id = ?1")?
                                .execute([&r.op_id])?;
                            if r.status == OpStatus::Applied {
                                report.pushed += 1;
                            } else {
                                report.duplicates += 1;
                            }
                        }
                        OpStatus::Rejected | OpStatus::Held => {
                            tx.prepare_cached(
                                "UPDATE sync_outbox SET state = 'quarantined', code = ?2, reason = ?3 WHERE record_id = ?1",
                            )?
                            .execute(params![
                                r.op_id,
                                r.code.as_deref().unwrap_or("rejected"),
                                r.reason.as_deref().unwrap_or("")
                            ])?;
                            report.quarantined += 1;
                        }
                    }
                }
                Ok(())
            })?;
            remaining = remaining.saturating_sub(resp.results.len() as u64);
            if let Some(p) = progress {
                p.on_progress(SyncProgress {
                    phase: SyncPhase::Push,
                    done: report.pushed + report.duplicates + report.quarantined,
                    remaining: Some(remaining),
                });
            }
        }
    }

    async fn pull(
        &self,
        http: &http::Http,
        report: &mut SyncReport,
        progress: Option<&dyn ProgressListener>,
    ) -> Result<bool> {
        // Whether the server's epoch changed (everything was queued again for upload).
        let mut requeued = false;
        loop {
            let (epoch, streams) = self.cx.store.read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT s.id, c.after FROM sync_stream c JOIN subject s ON s.no = c.subject_no ORDER BY s.id",
                )?;
                let streams = stmt
                    .query_map([], |r| Ok(StreamCursor { id: r.get(0)?, after: r.get(1)? }))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((get(c, KEY_EPOCH)?, streams))
            })?;
            let req = PullRequest {
                epoch: epoch.clone(),
                streams,
                max_bytes: Some(DEFAULT_PULL_BYTES),
            };
            let (resp, bytes): (PullResponse, usize) = http.post("/v1/pull", &req).await?;
            report.requests += 1;
            report.bytes += bytes as u64;
            let more = resp.streams.iter().any(|s| s.more);
            let now_ms = self.cx.clock.now().timestamp_millis();
            let restarted = epoch.as_deref().is_some_and(|e| e != resp.epoch);
            self.cx.store.write(|tx| {
                if restarted {
                    // The server was restored from a backup: read every stream again (records are
                    // immutable, so re-applying is harmless) and upload everything this device
                    // holds (the server keeps what it has as duplicates and regains what it lost).
                    tx.execute("UPDATE sync_stream SET after = 0", [])?;
                    requeue_everything(tx)?;
                }
                set(tx, KEY_EPOCH, &resp.epoch)?;
                for page in &resp.streams {
                    let subject_no = subject_no(tx, &page.id)?;
                    for op in &page.ops {
                        apply_op(tx, subject_no, op, now_ms, report)?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO sync_stream (subject_no, after) VALUES (?1, ?2)
                         ON CONFLICT (subject_no) DO UPDATE SET after = excluded.after",
                    )?
                    .execute(params![subject_no, page.next_after])?;
                }
                // Stamps order as text; the newest one not flagged as far-future advances our clock.
                let newest = resp
                    .streams
                    .iter()
                    .flat_map(|p| &p.ops)
                    .filter(|o| !o.future)
                    .map(|o| o.hlc.as_str())
                    .max();
                if let Some(h) = newest.and_then(hlc::Hlc::parse) {
                    self.cx.hlc.observe(&h, resp.server_ms);
                }
                for gone in &resp.removed {
                    purge(tx, gone)?;
                    report.removed_subjects.push(gone.clone());
                }
                set(tx, KEY_HLC, &self.cx.hlc.current().to_string())
            })?;
            if let Some(p) = progress {
                p.on_progress(SyncProgress {
                    phase: SyncPhase::Pull,
                    done: report.pulled,
                    remaining: None,
                });
            }
            requeued |= restarted;
            if !more {
                return Ok(requeued);
            }
        }
    }
}

/// Worth retrying later: the network, or the server busy or failing.
/// Queues every synced record on this device that is not queued yet, oldest first.
fn requeue_everything(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'diary.entry_version', version_id, subject_no, hlc FROM entry_version ORDER BY hlc;
         INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'pathway.enrollment', id, subject_no, printf('%016x-0000-requeue', enrolled_ms)
             FROM pathway_enrollment ORDER BY enrolled_ms;
         INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'pathway.event', ev.id, en.subject_no, printf('%016x-0000-requeue', ev.at_ms)
             FROM pathway_event ev JOIN pathway_enrollment en ON en.id = ev.enrollment_id ORDER BY ev.at_ms;
         INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'questionnaire.response', id, subject_no, printf('%016x-0000-requeue', created_ms)
             FROM questionnaire_response ORDER BY created_ms;
         INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'details.edit', id, subject_no, hlc FROM detail_edit ORDER BY hlc;
         INSERT OR IGNORE INTO sync_outbox (kind, record_id, subject_no, hlc)
             SELECT 'safety.ack', id, subject_no, printf('%016x-0000-requeue', acked_ms)
             FROM safety_ack ORDER BY acked_ms;",
    )?;
    Ok(())
}

pub fn retryable(e: &Error) -> bool {
    match e {
        Error::Network(_) => true,
        Error::Server { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

/// The next pending operations after `after`.
fn outbox_batch(c: &Connection, after: i64) -> Result<Vec<Op>> {
    let mut stmt = c.prepare_cached(
        "SELECT o.device_seq, o.kind, o.record_id, s.id, o.hlc FROM sync_outbox o
         JOIN subject s ON s.no = o.subject_no
         WHERE o.state = 'pending' AND o.device_seq > ?1 ORDER BY o.device_seq LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![after, MAX_PUSH_OPS as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut ops = Vec::with_capacity(rows.len());
    for (device_seq, kind, record_id, stream, hlc) in rows {
        let k = records::kind(&kind)
            .ok_or_else(|| Error::Storage(format!("unknown queued kind {kind}")))?;
        let payload = records::payload(c, k, &record_id)?.unwrap_or(serde_json::Value::Null);
        ops.push(Op {
            op_id: record_id,
            stream,
            device_seq,
            hlc,
            kind,
            schema_version: k.schema_version,
            payload,
        });
    }
    Ok(ops)
}

fn subject_no(tx: &Transaction<'_>, id: &str) -> Result<i64> {
    tx.prepare_cached("INSERT OR IGNORE INTO subject (id) VALUES (?1)")?
        .execute([id])?;
    Ok(tx
        .prepare_cached("SELECT no FROM subject WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?)
}

/// Applies one received operation, or keeps it aside with the reason: a record this version
/// cannot apply never blocks the stream and is never dropped.
fn apply_op(
    tx: &Transaction<'_>,
    subject_no: i64,
    op: &StreamOp,
    now_ms: i64,
    report: &mut SyncReport,
) -> Result<()> {
    let reason = match records::kind(&op.kind) {
        None => Some(format!("unknown record kind {}", op.kind)),
        Some(k) if op.schema_version > k.schema_version => Some(format!(
            "schema version {} is newer than this app's {}",
            op.schema_version, k.schema_version
        )),
        Some(k) => {
            // Cannot fail for a payload the server accepted; if it does, it is kept, not fatal.
            let payload: serde_json::Value =
                serde_json::from_str(op.payload.get()).unwrap_or(serde_json::Value::Null);
            tx.prepare_cached("SAVEPOINT op")?.execute([])?;
            match records::apply(tx, k, subject_no, &payload, now_ms) {
                Ok(applied) => {
                    tx.prepare_cached("RELEASE op")?.execute([])?;
                    match applied {
                        records::Applied::Inserted => report.pulled += 1,
                        records::Applied::Conflict => {
                            report.pulled += 1;
                            report.conflicts += 1;
                        }
                        records::Applied::AlreadyHere => {}
                    }
                    None
                }
                Err(e) => {
                    tx.prepare_cached("ROLLBACK TO op")?.execute([])?;
                    tx.prepare_cached("RELEASE op")?.execute([])?;
                    Some(format!("could not apply: {e}"))
                }
            }
        }
    };
    if let Some(reason) = reason {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO sync_held (op_id, subject_no, seq, device_id, kind, schema_version, hlc, payload, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            op.op_id,
            subject_no,
            op.seq,
            op.device_id,
            op.kind,
            op.schema_version,
            op.hlc,
            op.payload.get(),
            reason
        ])?;
        report.held += 1;
    }
    Ok(())
}

/// Removes a subject this device may no longer see. Records still waiting for upload stay until
/// they are uploaded (the server holds them for review): nothing a worker wrote is lost.
fn purge(tx: &Transaction<'_>, subject: &str) -> Result<()> {
    let Some(no) = tx
        .query_row("SELECT no FROM subject WHERE id = ?1", [subject], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
    else {
        return Ok(());
    };
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS keep (id TEXT PRIMARY KEY); DELETE FROM temp.keep;",
    )?;
    tx.execute(
        "INSERT INTO temp.keep SELECT record_id FROM sync_outbox WHERE subject_no = ?1",
        [no],
    )?;
    tx.execute(
        "DELETE FROM pathway_event WHERE id NOT IN (SELECT id FROM temp.keep) AND enrollment_id IN
            (SELECT id FROM pathway_enrollment WHERE subject_no = ?1)",
        [no],
    )?;
    for table in [
        "entry_version",
        "questionnaire_response",
        "pathway_enrollment",
        "detail_edit",
        "safety_ack",
    ] {
        let id = if table == "entry_version" {
            "version_id"
        } else {
            "id"
        };
        tx.execute(
            &format!("DELETE FROM {table} WHERE subject_no = ?1 AND {id} NOT IN (SELECT id FROM temp.keep)"),
            [no],
        )?;
    }
    for table in ["sync_stream", "sync_held", "sync_conflict"] {
        tx.execute(&format!("DELETE FROM {table} WHERE subject_no = ?1"), [no])?;
    }
    crate::safety::purge(tx, no)?;
    Ok(())
}

/// A fork of a diary entry as stored, before its versions are read.
struct OpenFork {
    id: String,
    subject: String,
    entry_id: uuid::Uuid,
    version: i64,
    detected_ms: i64,
}

/// Forks not yet settled: no later version of the entry names the conflict in `resolves`.
fn open_conflicts(c: &Connection) -> Result<Vec<OpenFork>> {
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
                entry_id: crate::store::uuid_at(r, 2)?,
                version: r.get(3)?,
                detected_ms: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_full_jitter() {
        let b = Backoff {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for n in 0..10 {
            let cap = Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(2));
            let samples: Vec<Duration> = (0..200).map(|_| b.delay(n)).collect();
            assert!(samples.iter().all(|d| *d <= cap), "retry {n}");
            // Jittered: not all the same, and some in the upper half of the window.
            assert!(samples.iter().any(|d| *d != samples[0]));
            assert!(samples.iter().any(|d| *d > cap / 2));
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(retryable(&Error::Network("reset".into())));
        for status in [429, 500, 503] {
            assert!(retryable(&Error::Server {
                status,
                code: "x".into(),
                message: String::new()
            }));
        }
        assert!(!retryable(&Error::Server {
            status: 401,
            code: "device_revoked".into(),
            message: String::new()
        }));
        assert!(!retryable(&Error::NotEnrolled));
    }
}
