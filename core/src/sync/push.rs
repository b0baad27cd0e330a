//! Upload: the outbox in bounded batches, oldest first.

use rusqlite::{params, Connection};

use super::protocol::*;
use super::{http, ProgressListener, Sync, SyncPhase, SyncProgress, SyncReport};
use crate::error::{Error, Result};
use crate::store::kind::Registry;

impl Sync<'_> {
    pub(super) async fn push(
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
            let ops = self.cx.store.read(|c| outbox_batch(c, self.kinds, after))?;
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
}

/// The next pending operations after `after`.
fn outbox_batch(c: &Connection, kinds: &Registry, after: i64) -> Result<Vec<Op>> {
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
        let k = kinds
            .get(&kind)
            .ok_or_else(|| Error::Storage(format!("unknown queued kind {kind}")))?;
        let payload = k.payload(c, &record_id)?.unwrap_or(serde_json::Value::Null);
        ops.push(Op {
            op_id: record_id,
            stream,
            device_seq,
            hlc,
            kind,
            schema_version: k.spec().schema_version,
            payload,
        });
    }
    Ok(ops)
}
