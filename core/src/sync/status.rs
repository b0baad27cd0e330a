//! What the person sees of sync: pending uploads, quarantined and held operations, open
//! conflicts of every kind, the last success and error.

use chrono::{TimeZone, Utc};

use super::enroll::{get, KEY_LAST_ERROR, KEY_LAST_OK};
use super::{Quarantined, Sync, SyncStatus};
use crate::error::Result;

impl Sync<'_> {
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
            let mut conflicts = 0;
            for k in self.kinds.iter() {
                conflicts += k.open_conflicts(c)?;
            }
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
}
