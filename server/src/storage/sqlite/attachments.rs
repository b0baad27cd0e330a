//! Sealed attachment blobs (issue 10): opaque bytes the server cannot open, each for the devices
//! of its conversation's members at upload time. A blob is deleted when every one of those
//! devices said it has it, or after the retention period.

use polku_protocol::attachment::*;
use rusqlite::{params, OptionalExtension, Transaction};

use super::{now_ms, SqliteStorage};
use crate::error::{ApiError, ApiResult};
use crate::storage::{AttachmentRules, DeviceAuth, Role};

/// Schema v6.
pub(super) const SCHEMA_V6: &str = r#"
CREATE TABLE attachment (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation    TEXT NOT NULL,
    uploader_device TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    blob            BLOB NOT NULL,
    uploaded_ms     INTEGER NOT NULL
);
CREATE INDEX attachment_by_age ON attachment (uploaded_ms);
CREATE TABLE attachment_recipient (
    attachment_id TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    fetched_ms    INTEGER,
    PRIMARY KEY (attachment_id, device_id)
) WITHOUT ROWID;
CREATE INDEX attachment_recipient_by_device ON attachment_recipient (device_id);
"#;

fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    super::hex(d.as_ref())
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such attachment for this device".into())
}

impl SqliteStorage {
    /// Whether `auth`'s user is a member of `conversation` now (the citizen, or a professional
    /// assigned to them).
    fn member_now(tx: &Transaction<'_>, auth: &DeviceAuth, conversation: &str) -> ApiResult<bool> {
        Ok(match auth.role {
            Role::Citizen => auth.user_id == conversation,
            Role::Professional | Role::Outreach => tx
                .prepare_cached(
                    "SELECT 1 FROM assignment WHERE professional_id = ?1 AND subject_id = ?2 AND until_ms IS NULL AND scope = 'care'",
                )?
                .exists(params![auth.user_id, conversation])?,
            Role::Admin => false,
        })
    }

    pub(super) fn upload_attachment_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        id: &str,
        conversation: &str,
        blob: &[u8],
        rules: &AttachmentRules,
    ) -> ApiResult<UploadResponse> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::bad("invalid_id", "an attachment id is a UUID"));
        }
        check_blob_len(blob.len(), rules.max_bytes).map_err(|rule| {
            if blob.len() > blob_len(rules.max_bytes) {
                ApiError::TooLarge(format!(
                    "attachments on this server are at most {} bytes: {rule}",
                    rules.max_bytes
                ))
            } else {
                ApiError::bad("invalid_attachment", rule)
            }
        })?;
        if !Self::member_now(tx, auth, conversation)? {
            return Err(ApiError::Forbidden(
                "only a member of the conversation uploads to it".into(),
            ));
        }
        let sha256 = sha256_hex(blob);
        let existing: Option<(String, String)> = tx
            .prepare_cached("SELECT uploader_device, sha256 FROM attachment WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match existing {
            // A retry after a lost reply: the same blob, stored once.
            Some((device, hash)) if device == auth.device_id && hash == sha256 => {}
            Some(_) => {
                return Err(ApiError::Conflict {
                    code: "attachment_id_taken",
                    message: "another attachment has this id".into(),
                })
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO attachment (id, conversation, uploader_device, sha256, blob, uploaded_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![id, conversation, auth.device_id, sha256, blob, now_ms()])?;
                // For every published, unrevoked device of every member now but the uploader's.
                tx.prepare_cached(
                    "INSERT INTO attachment_recipient (attachment_id, device_id)
                     SELECT ?1, d.id FROM device d JOIN device_keys k ON k.device_id = d.id
                     WHERE d.revoked_ms IS NULL AND d.id != ?3 AND (d.user_id = ?2 OR d.user_id IN
                       (SELECT professional_id FROM assignment WHERE subject_id = ?2 AND until_ms IS NULL AND scope = 'care'))",
                )?
                .execute(params![id, conversation, auth.device_id])?;
            }
        }
        let recipients: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM attachment_recipient WHERE attachment_id = ?1 AND fetched_ms IS NULL",
            )?
            .query_row([id], |r| r.get(0))?;
        Ok(UploadResponse {
            id: id.to_owned(),
            sha256,
            recipients: recipients as u32,
        })
    }

    /// The blob, for a device it was uploaded for whose user is still a conversation member
    /// (anyone else is told there is no such attachment).
    pub(super) fn attachment_blob(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        id: &str,
    ) -> ApiResult<Vec<u8>> {
        let row: Option<(String, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT a.conversation, a.blob FROM attachment a
                 JOIN attachment_recipient r ON r.attachment_id = a.id AND r.device_id = ?2
                 WHERE a.id = ?1",
            )?
            .query_row(params![id, auth.device_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((conversation, blob)) if Self::member_now(tx, auth, &conversation)? => Ok(blob),
            _ => Err(not_found()),
        }
    }

    /// Notes that `auth`'s device has the blob; the blob goes when every recipient has it.
    pub(super) fn attachment_fetched_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        id: &str,
    ) -> ApiResult<FetchedResponse> {
        let n = tx
            .prepare_cached(
                "UPDATE attachment_recipient SET fetched_ms = coalesce(fetched_ms, ?3)
                 WHERE attachment_id = ?1 AND device_id = ?2",
            )?
            .execute(params![id, auth.device_id, now_ms()])?;
        if n == 0 {
            return Err(not_found());
        }
        Self::forget_fetched(tx)?;
        let left: bool = tx
            .prepare_cached("SELECT 1 FROM attachment WHERE id = ?1")?
            .exists([id])?;
        Ok(FetchedResponse { deleted: !left })
    }

    /// Deletes blobs older than the retention period, and blobs every recipient fetched (in its
    /// own transaction, before a request that may be refused).
    pub(super) fn sweep_attachments(
        tx: &Transaction<'_>,
        rules: &AttachmentRules,
    ) -> ApiResult<()> {
        let cutoff = now_ms() - rules.retention.as_millis() as i64;
        tx.prepare_cached("DELETE FROM attachment WHERE uploaded_ms < ?1")?
            .execute([cutoff])?;
        Self::forget_fetched(tx)
    }

    fn forget_fetched(tx: &Transaction<'_>) -> ApiResult<()> {
        tx.prepare_cached(
            "DELETE FROM attachment WHERE id IN (SELECT attachment_id FROM attachment_recipient)
             AND id NOT IN (SELECT attachment_id FROM attachment_recipient WHERE fetched_ms IS NULL)",
        )?
        .execute([])?;
        tx.prepare_cached(
            "DELETE FROM attachment_recipient WHERE attachment_id NOT IN (SELECT id FROM attachment)",
        )?
        .execute([])?;
        Ok(())
    }

    /// A device that can no longer fetch (revoked, or its user left the conversation) is no
    /// longer waited for.
    pub(super) fn forget_recipient_devices(
        tx: &Transaction<'_>,
        devices_sql: &str,
        params: impl rusqlite::Params,
    ) -> ApiResult<()> {
        tx.execute(
            &format!(
                "UPDATE attachment_recipient SET fetched_ms = coalesce(fetched_ms, 0)
                 WHERE {devices_sql}"
            ),
            params,
        )?;
        Self::forget_fetched(tx)
    }

    /// Blobs the server holds and their bytes (an operator's figures; never their content).
    pub fn stored_attachments(&self) -> ApiResult<(u64, u64)> {
        let (n, bytes): (i64, i64) = self.lock().query_row(
            "SELECT count(*), coalesce(sum(length(blob)), 0) FROM attachment",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n as u64, bytes as u64))
    }
}
