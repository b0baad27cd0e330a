//! Download: every permitted stream, one bounded page at a time; each received operation is
//! applied through its kind in the registry, or held with the reason.

use rusqlite::{params, OptionalExtension, Transaction};

use super::enroll::{get, set, KEY_EPOCH};
use super::protocol::*;
use super::{hlc, http, ProgressListener, ServerSaid, Sync, SyncPhase, SyncProgress, SyncReport};
use crate::error::Result;
use crate::store::kind::{Applied, Registry};
use crate::store::outbox::KEY_HLC;

impl Sync<'_> {
    pub(super) async fn pull(
        &self,
        http: &http::Http,
        report: &mut SyncReport,
        progress: Option<&dyn ProgressListener>,
        said: &mut ServerSaid,
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
            said.one_time_keys = resp.one_time_keys;
            said.messages = resp.messages;
            said.directory = resp.directory.clone();
            let more = resp.streams.iter().any(|s| s.more);
            let now_ms = self.cx.clock.now().timestamp_millis();
            let restarted = epoch.as_deref().is_some_and(|e| e != resp.epoch);
            self.cx.store.write(|tx| {
                if restarted {
                    // The server was restored from a backup: read every stream again (records are
                    // immutable, so re-applying is harmless) and upload everything this device
                    // holds (the server keeps what it has as duplicates and regains what it lost).
                    tx.execute("UPDATE sync_stream SET after = 0", [])?;
                    for k in self.kinds.iter() {
                        k.requeue(tx, &self.cx.author)?;
                    }
                }
                set(tx, KEY_EPOCH, &resp.epoch)?;
                for page in &resp.streams {
                    let subject_no = subject_no(tx, &page.id)?;
                    for op in &page.ops {
                        apply_op(tx, self.kinds, subject_no, op, now_ms, report)?;
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
                    purge(tx, self.kinds, gone)?;
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
    kinds: &Registry,
    subject_no: i64,
    op: &StreamOp,
    now_ms: i64,
    report: &mut SyncReport,
) -> Result<()> {
    let reason = match kinds.get(&op.kind) {
        None => Some(format!("unknown record kind {}", op.kind)),
        Some(k) if op.schema_version > k.spec().schema_version => Some(format!(
            "schema version {} is newer than this app's {}",
            op.schema_version,
            k.spec().schema_version
        )),
        Some(k) => {
            // Cannot fail for a payload the server accepted; if it does, it is kept, not fatal.
            let payload: serde_json::Value =
                serde_json::from_str(op.payload.get()).unwrap_or(serde_json::Value::Null);
            tx.prepare_cached("SAVEPOINT op")?.execute([])?;
            // Checked again here with the same rules the server used: a record that fails
            // them is kept aside with the reason, never stored (docs/sync.md, "Validation").
            let applied = match payload.as_object() {
                Some(obj) => match k.check(&op.op_id, obj, now_ms) {
                    Ok(()) => k.apply(tx, subject_no, obj, now_ms),
                    Err(bad) => Err(crate::error::Error::Storage(format!(
                        "{}: {}",
                        bad.code, bad.reason
                    ))),
                },
                None => Err(crate::error::Error::Storage(
                    "payload is not an object".into(),
                )),
            };
            match applied {
                Ok(applied) => {
                    tx.prepare_cached("RELEASE op")?.execute([])?;
                    match applied {
                        Applied::Inserted => report.pulled += 1,
                        Applied::Conflict => {
                            report.pulled += 1;
                            report.conflicts += 1;
                        }
                        Applied::AlreadyHere => {}
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
fn purge(tx: &Transaction<'_>, kinds: &Registry, subject: &str) -> Result<()> {
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
    // Children before their parents (pathway events before their enrollment).
    for k in kinds.iter().rev() {
        k.purge(tx, no)?;
    }
    for table in ["sync_stream", "sync_held"] {
        tx.execute(&format!("DELETE FROM {table} WHERE subject_no = ?1"), [no])?;
    }
    Ok(())
}
