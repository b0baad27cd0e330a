//! The message relay's queues (issue 10): opaque ciphertext per recipient device, in order,
//! deleted when the device acknowledges it. Only conversation partners reach a device.

use polku_protocol::relay::*;
use rusqlite::{params, OptionalExtension, Transaction};

use super::{now_ms, SqliteStorage};
use crate::error::{ApiError, ApiResult};
use crate::storage::DeviceAuth;

/// Schema v5.
pub(super) const SCHEMA_V5: &str = r#"
CREATE TABLE relay (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient     TEXT NOT NULL,
    id            TEXT NOT NULL,
    sender_user   TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    ciphertext    TEXT NOT NULL,
    received_ms   INTEGER NOT NULL
);
CREATE INDEX relay_by_recipient ON relay (recipient, seq);
CREATE TABLE relay_seen (
    recipient TEXT NOT NULL,
    id        TEXT NOT NULL,
    PRIMARY KEY (recipient, id)
) WITHOUT ROWID;
"#;

impl SqliteStorage {
    pub(super) fn send_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        messages: Vec<Outgoing>,
    ) -> ApiResult<SendResponse> {
        if messages.len() > MAX_MESSAGES_PER_SEND {
            return Err(ApiError::bad(
                "too_many_messages",
                format!("at most {MAX_MESSAGES_PER_SEND} messages per send"),
            ));
        }
        for m in &messages {
            if uuid::Uuid::parse_str(&m.id).is_err() {
                return Err(ApiError::bad("invalid_id", "a message id is a UUID"));
            }
            m.ciphertext.check().map_err(|allowed| {
                ApiError::bad("invalid_ciphertext", format!("ciphertext: {allowed}"))
            })?;
        }
        let partners = Self::partners(tx, auth)?;
        let now = now_ms();
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            let reachable = m.recipient_device != auth.device_id
                && Self::partner_device(tx, &partners, &m.recipient_device)?.is_some();
            let status = if !reachable {
                SendStatus::Unavailable
            } else if tx
                .prepare_cached("INSERT OR IGNORE INTO relay_seen (recipient, id) VALUES (?1, ?2)")?
                .execute(params![m.recipient_device, m.id])?
                == 0
            {
                // Queued before (and perhaps delivered and deleted since): never twice.
                SendStatus::Duplicate
            } else {
                tx.prepare_cached(
                    "INSERT INTO relay (recipient, id, sender_user, sender_device, ciphertext, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    m.recipient_device,
                    m.id,
                    auth.user_id,
                    auth.device_id,
                    m.ciphertext.0,
                    now
                ])?;
                SendStatus::Queued
            };
            results.push(SendResult { id: m.id, status });
        }
        Ok(SendResponse { results })
    }

    pub(super) fn fetch_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        req: &FetchRequest,
    ) -> ApiResult<FetchResponse> {
        let limit = req.limit.unwrap_or(MAX_FETCH).clamp(1, MAX_FETCH);
        tx.prepare_cached("DELETE FROM relay WHERE recipient = ?1 AND seq <= ?2")?
            .execute(params![auth.device_id, req.after])?;
        let mut stmt = tx.prepare_cached(
            "SELECT seq, id, sender_user, sender_device, ciphertext FROM relay
             WHERE recipient = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let mut messages = stmt
            .query_map(params![auth.device_id, req.after, limit + 1], |r| {
                Ok(Delivered {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    sender_user: r.get(2)?,
                    sender_device: r.get(3)?,
                    ciphertext: Ciphertext(r.get(4)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        Ok(FetchResponse { messages, more })
    }

    /// Messages in a device's queue, fetched or not, until it acknowledges them.
    pub(super) fn waiting(c: &rusqlite::Connection, device_id: &str) -> ApiResult<u32> {
        let n: i64 = c
            .prepare_cached("SELECT count(*) FROM relay WHERE recipient = ?1")?
            .query_row([device_id], |r| r.get(0))?;
        Ok(n as u32)
    }

    /// A revoked device's queue goes with it.
    pub(super) fn forget_queue(tx: &Transaction<'_>, device_id: &str) -> ApiResult<()> {
        tx.execute("DELETE FROM relay WHERE recipient = ?1", [device_id])?;
        Ok(())
    }

    /// Messages waiting for `device_id` (an operator's count; never their content or size).
    pub fn queued_messages(&self, device_id: &str) -> ApiResult<u64> {
        let n: Option<i64> = self
            .lock()
            .query_row(
                "SELECT count(*) FROM relay WHERE recipient = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0) as u64)
    }
}
