//! The key directory (issue 10): devices' published Olm keys, and the atomic claim of one key per
//! device. Only public keys live here; every one was checked against its device's signature
//! (`polku_protocol::keys`) before it was stored.

use polku_protocol::keys::*;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{now_ms, SqliteStorage};
use crate::error::{ApiError, ApiResult};
use crate::storage::{DeviceAuth, Role};

/// Schema v4. A claimed one-time key keeps its row (with `claimed_ms`), so a device that uploads
/// the same key again after a lost reply cannot make the server hand it out twice.
pub(super) const SCHEMA_V4: &str = r#"
CREATE TABLE device_keys (
    device_id    TEXT PRIMARY KEY NOT NULL,
    curve25519   TEXT NOT NULL,
    ed25519      TEXT NOT NULL,
    signature    TEXT NOT NULL,
    published_ms INTEGER NOT NULL
);
CREATE TABLE one_time_key (
    device_id  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    signature  TEXT NOT NULL,
    claimed_ms INTEGER,
    PRIMARY KEY (device_id, key_id)
) WITHOUT ROWID;
CREATE INDEX one_time_key_unclaimed ON one_time_key (device_id, key_id) WHERE claimed_ms IS NULL;
CREATE TABLE fallback_key (
    device_id   TEXT PRIMARY KEY NOT NULL,
    key_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    signature   TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL
);
"#;

/// Unclaimed one-time keys a device may keep on the server (its target, and room for a top-up).
const MAX_STORED_ONE_TIME_KEYS: i64 = (ONE_TIME_KEYS_TARGET * 2) as i64;

fn key_error(e: KeyError) -> ApiError {
    ApiError::bad("invalid_key", e.to_string())
}

fn identity(c: &Connection, device_id: &str) -> ApiResult<Option<IdentityKeys>> {
    Ok(c.prepare_cached(
        "SELECT curve25519, ed25519, signature FROM device_keys WHERE device_id = ?1",
    )?
    .query_row([device_id], |r| {
        Ok(IdentityKeys {
            curve25519: r.get(0)?,
            ed25519: r.get(1)?,
            signature: r.get(2)?,
        })
    })
    .optional()?)
}

fn unclaimed(c: &Connection, device_id: &str) -> ApiResult<i64> {
    Ok(c.prepare_cached(
        "SELECT count(*) FROM one_time_key WHERE device_id = ?1 AND claimed_ms IS NULL",
    )?
    .query_row([device_id], |r| r.get(0))?)
}

impl SqliteStorage {
    /// The users `auth` shares a conversation with, itself included: a citizen and the
    /// professionals assigned to them; a professional, the citizens in their care and those
    /// citizens' other professionals.
    pub(super) fn partners(c: &Connection, auth: &DeviceAuth) -> ApiResult<Vec<String>> {
        let sql = match auth.role {
            Role::Citizen => {
                "SELECT ?1 UNION SELECT professional_id FROM assignment WHERE subject_id = ?1 AND until_ms IS NULL AND scope = 'care'"
            }
            Role::Professional | Role::Outreach => {
                "SELECT ?1
                 UNION SELECT subject_id FROM assignment WHERE professional_id = ?1 AND until_ms IS NULL AND scope = 'care'
                 UNION SELECT b.professional_id FROM assignment a JOIN assignment b ON b.subject_id = a.subject_id
                       WHERE a.professional_id = ?1 AND a.until_ms IS NULL AND b.until_ms IS NULL
                       AND a.scope = 'care' AND b.scope = 'care'"
            }
            Role::Admin => {
                return Err(ApiError::Forbidden(
                    "administrators take part in no conversation".into(),
                ))
            }
        };
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map([&auth.user_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    /// The conversations `auth` is a member of: their own as a citizen, each citizen in their care
    /// as a professional; members are the citizen and every professional assigned now.
    pub(crate) fn conversations_of(
        c: &Connection,
        auth: &DeviceAuth,
    ) -> ApiResult<Vec<polku_protocol::relay::Conversation>> {
        let citizens = match auth.role {
            Role::Citizen => vec![auth.user_id.clone()],
            // A coordinator's clients are not conversations of theirs (docs/visits.md).
            Role::Professional | Role::Outreach => Self::care_streams(c, auth)?,
            Role::Admin => {
                return Err(ApiError::Forbidden(
                    "administrators take part in no conversation".into(),
                ))
            }
        };
        let mut stmt = c.prepare_cached(
            "SELECT professional_id FROM assignment WHERE subject_id = ?1 AND until_ms IS NULL AND scope = 'care' ORDER BY professional_id",
        )?;
        citizens
            .into_iter()
            .map(|id| {
                let mut members = vec![id.clone()];
                for p in stmt.query_map([&id], |r| r.get::<_, String>(0))? {
                    members.push(p?);
                }
                Ok(polku_protocol::relay::Conversation { id, members })
            })
            .collect()
    }

    /// The device's user, if it is an active device of one of `partners`.
    pub(super) fn partner_device(
        c: &Connection,
        partners: &[String],
        device_id: &str,
    ) -> ApiResult<Option<String>> {
        let user: Option<String> = c
            .prepare_cached("SELECT user_id FROM device WHERE id = ?1 AND revoked_ms IS NULL")?
            .query_row([device_id], |r| r.get(0))
            .optional()?;
        Ok(user.filter(|u| partners.contains(u)))
    }

    pub(crate) fn upload_keys_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        up: &KeysUpload,
    ) -> ApiResult<KeysUploadResponse> {
        if auth.role == Role::Admin {
            return Err(ApiError::Forbidden(
                "administrators take part in no conversation".into(),
            ));
        }
        let n = up.one_time_keys.len() + usize::from(up.fallback_key.is_some());
        if n > MAX_KEYS_PER_UPLOAD {
            return Err(ApiError::bad(
                "too_many_keys",
                format!("{n} keys in one upload; at most {MAX_KEYS_PER_UPLOAD}"),
            ));
        }
        let published = identity(tx, &auth.device_id)?;
        let id = match (&published, &up.identity) {
            (Some(old), Some(new)) if old != new => return Err(ApiError::Conflict {
                code: "identity_keys_changed",
                message:
                    "a device's identity keys never change; a new identity needs a new enrollment"
                        .into(),
            }),
            (Some(old), _) => old.clone(),
            (None, Some(new)) => {
                check_identity(&auth.user_id, &auth.device_id, new).map_err(key_error)?;
                tx.prepare_cached(
                    "INSERT INTO device_keys (device_id, curve25519, ed25519, signature, published_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![auth.device_id, new.curve25519, new.ed25519, new.signature, now_ms()])?;
                new.clone()
            }
            (None, None) if n == 0 => return Ok(KeysUploadResponse { one_time_keys: 0 }),
            (None, None) => {
                return Err(ApiError::bad(
                    "no_identity_keys",
                    "publish the device's identity keys before its one-time keys",
                ))
            }
        };
        for k in &up.one_time_keys {
            check_key(&auth.device_id, &id.ed25519, k, false).map_err(key_error)?;
            let stored: Option<String> = tx
                .prepare_cached(
                    "SELECT key FROM one_time_key WHERE device_id = ?1 AND key_id = ?2",
                )?
                .query_row([&auth.device_id, &k.key_id], |r| r.get(0))
                .optional()?;
            match stored {
                // The same key again (a retry after a lost reply): kept as it was, claimed or not.
                Some(key) if key == k.key => {}
                Some(_) => {
                    return Err(ApiError::Conflict {
                        code: "key_id_reused",
                        message: format!(
                            "one-time key {} was published with another key",
                            k.key_id
                        ),
                    })
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO one_time_key (device_id, key_id, key, signature) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![auth.device_id, k.key_id, k.key, k.signature])?;
                }
            }
        }
        let count = unclaimed(tx, &auth.device_id)?;
        if count > MAX_STORED_ONE_TIME_KEYS {
            return Err(ApiError::bad(
                "too_many_keys",
                format!("at most {MAX_STORED_ONE_TIME_KEYS} unclaimed one-time keys per device"),
            ));
        }
        if let Some(k) = &up.fallback_key {
            check_key(&auth.device_id, &id.ed25519, k, true).map_err(key_error)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO fallback_key (device_id, key_id, key, signature, uploaded_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![auth.device_id, k.key_id, k.key, k.signature, now_ms()])?;
        }
        Ok(KeysUploadResponse {
            one_time_keys: count as u32,
        })
    }

    /// The first 128 bits of the SHA-256 of the conversations and partner devices (apart from
    /// the caller's own) this device would be answered now (`PullResponse::directory`), in hex.
    pub(crate) fn directory_digest(c: &Connection, auth: &DeviceAuth) -> ApiResult<String> {
        // Without the caller's own device: its publishing its keys changes nothing it needs.
        let mut devices = Self::devices_of_partners(c, auth)?;
        devices.retain(|d| d.device_id != auth.device_id);
        let both = (Self::conversations_of(c, auth)?, devices);
        let bytes = serde_json::to_vec(&both)
            .map_err(|e| ApiError::Internal(format!("directory digest: {e}")))?;
        let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
        // 128 bits name a version of the directory well enough and keep each pull small.
        Ok(d.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    pub(crate) fn devices_of_partners(
        c: &Connection,
        auth: &DeviceAuth,
    ) -> ApiResult<Vec<DeviceKeys>> {
        let partners = Self::partners(c, auth)?;
        let mut stmt = c.prepare_cached(
            "SELECT d.user_id, d.id, k.curve25519, k.ed25519, k.signature
             FROM device d JOIN device_keys k ON k.device_id = d.id
             WHERE d.user_id = ?1 AND d.revoked_ms IS NULL ORDER BY d.enrolled_ms, d.id",
        )?;
        let mut out = Vec::new();
        for user in &partners {
            let rows = stmt.query_map([user], |r| {
                Ok(DeviceKeys {
                    user_id: r.get(0)?,
                    device_id: r.get(1)?,
                    identity: IdentityKeys {
                        curve25519: r.get(2)?,
                        ed25519: r.get(3)?,
                        signature: r.get(4)?,
                    },
                })
            })?;
            for d in rows {
                out.push(d?);
            }
        }
        Ok(out)
    }

    /// Claims one key of each device in one transaction: a one-time key is handed out once.
    pub(crate) fn claim_tx(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        devices: &[String],
    ) -> ApiResult<KeysClaimResponse> {
        if devices.len() > MAX_DEVICES_PER_CLAIM {
            return Err(ApiError::bad(
                "too_many_devices",
                format!("at most {MAX_DEVICES_PER_CLAIM} devices per claim"),
            ));
        }
        let partners = Self::partners(tx, auth)?;
        let now = now_ms();
        let mut out = KeysClaimResponse {
            claimed: Vec::new(),
            unavailable: Vec::new(),
        };
        for device_id in devices {
            let user = match Self::partner_device(tx, &partners, device_id)? {
                Some(u) if *device_id != auth.device_id => u,
                _ => {
                    out.unavailable.push(device_id.clone());
                    continue;
                }
            };
            let Some(identity) = identity(tx, device_id)? else {
                out.unavailable.push(device_id.clone());
                continue;
            };
            let one_time: Option<SignedKey> = tx
                .prepare_cached(
                    "UPDATE one_time_key SET claimed_ms = ?2
                     WHERE device_id = ?1 AND key_id = (
                         SELECT key_id FROM one_time_key WHERE device_id = ?1 AND claimed_ms IS NULL ORDER BY key_id LIMIT 1)
                     RETURNING key_id, key, signature",
                )?
                .query_row(params![device_id, now], |r| {
                    Ok(SignedKey {
                        key_id: r.get(0)?,
                        key: r.get(1)?,
                        signature: r.get(2)?,
                    })
                })
                .optional()?;
            let (key, fallback) = match one_time {
                Some(k) => (k, false),
                None => {
                    let fb: Option<SignedKey> = tx
                        .prepare_cached(
                            "SELECT key_id, key, signature FROM fallback_key WHERE device_id = ?1",
                        )?
                        .query_row([device_id], |r| {
                            Ok(SignedKey {
                                key_id: r.get(0)?,
                                key: r.get(1)?,
                                signature: r.get(2)?,
                            })
                        })
                        .optional()?;
                    match fb {
                        Some(k) => (k, true),
                        None => {
                            out.unavailable.push(device_id.clone());
                            continue;
                        }
                    }
                }
            };
            out.claimed.push(ClaimedKey {
                device: DeviceKeys {
                    user_id: user,
                    device_id: device_id.clone(),
                    identity,
                },
                key,
                fallback,
            });
        }
        Ok(out)
    }

    /// The device's unclaimed one-time keys, once it has published its identity keys.
    pub(super) fn one_time_keys_left(c: &Connection, device_id: &str) -> ApiResult<Option<u32>> {
        Ok(match identity(c, device_id)? {
            Some(_) => Some(unclaimed(c, device_id)? as u32),
            None => None,
        })
    }

    /// A revoked device's keys leave the directory with it.
    pub(super) fn forget_keys(tx: &Transaction<'_>, device_id: &str) -> ApiResult<()> {
        for table in ["device_keys", "one_time_key", "fallback_key"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device_id = ?1"),
                [device_id],
            )?;
        }
        Ok(())
    }
}
