//! The outbox: every record this device writes is queued here in the same transaction as the
//! record itself, so an acknowledged write is also a queued upload (docs/sync.md). The domains
//! queue through `Context::queue`; sync reads and empties it.

use rusqlite::{params, OptionalExtension, Transaction};

use super::Store;
use crate::error::Result;

/// The profile key of the newest stamp this device saw at its last sync.
pub(crate) const KEY_HLC: &str = "sync.hlc";

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
        let saved: Option<String> = c
            .prepare_cached("SELECT value FROM profile WHERE key = ?1")?
            .query_row([KEY_HLC], |r| r.get(0))
            .optional()?;
        Ok(queued.max(saved))
    })
}
