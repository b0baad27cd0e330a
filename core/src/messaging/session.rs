//! Olm sessions with peer devices, and the peers' identity keys as this device first saw them.
//! Pickles live only in the encrypted database and are saved in the transaction that stores
//! what the session encrypted or decrypted.

use polku_protocol::keys::DeviceKeys;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use vodozemac::olm::{Session, SessionPickle};

use crate::error::{Error, Result};

/// A peer device's keys as first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub user_id: String,
    pub curve25519: String,
    pub ed25519: String,
}

pub(crate) fn peer(c: &Connection, device_id: &str) -> Result<Option<Peer>> {
    Ok(c.prepare_cached(
        "SELECT user_id, curve25519, ed25519 FROM peer_device WHERE device_id = ?1",
    )?
    .query_row([device_id], |r| {
        Ok(Peer {
            user_id: r.get(0)?,
            curve25519: r.get(1)?,
            ed25519: r.get(2)?,
        })
    })
    .optional()?)
}

/// Remembers a peer's keys the first time they are seen; afterwards the first ones stand (a
/// changed identity is not taken silently).
pub(crate) fn remember(tx: &Transaction<'_>, d: &DeviceKeys, now_ms: i64) -> Result<Peer> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO peer_device (device_id, user_id, curve25519, ed25519, first_seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        d.device_id,
        d.user_id,
        d.identity.curve25519,
        d.identity.ed25519,
        now_ms
    ])?;
    peer(tx, &d.device_id)?.ok_or_else(|| Error::Storage("peer device".into()))
}

/// The sessions with a peer device, most recently used first.
pub(crate) fn sessions(c: &Connection, peer_device: &str) -> Result<Vec<Session>> {
    let mut stmt = c.prepare_cached(
        "SELECT pickle FROM olm_session WHERE peer_device = ?1 ORDER BY used_ms DESC, session_id",
    )?;
    let rows = stmt.query_map([peer_device], |r| r.get::<_, String>(0))?;
    rows.map(|p| {
        let p: SessionPickle = serde_json::from_str(&p?)
            .map_err(|_| Error::Storage("an Olm session does not load".into()))?;
        Ok(Session::from_pickle(p))
    })
    .collect()
}

pub(crate) fn save(
    tx: &Transaction<'_>,
    peer_device: &str,
    s: &Session,
    now_ms: i64,
) -> Result<()> {
    let pickle = serde_json::to_string(&s.pickle())
        .map_err(|_| Error::Storage("an Olm session does not save".into()))?;
    tx.prepare_cached(
        "INSERT INTO olm_session (peer_device, session_id, pickle, used_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (peer_device, session_id) DO UPDATE SET pickle = excluded.pickle, used_ms = excluded.used_ms",
    )?
    .execute(params![peer_device, s.session_id(), pickle, now_ms])?;
    Ok(())
}
