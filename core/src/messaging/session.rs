//! Olm sessions with peer devices, and the peers' identity keys as this device first saw them.
//! Pickles live only in the encrypted database and are saved in the transaction that stores
//! what the session encrypted or decrypted.

use polku_protocol::keys::DeviceKeys;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use vodozemac::olm::{OlmMessage, Session, SessionPickle};

use crate::error::{Error, Result};

/// A peer device's keys as first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub user_id: String,
    pub curve25519: String,
    pub ed25519: String,
    /// The device now shows other identity keys, not yet accepted by the user: nothing is
    /// encrypted to it and what it sends waits.
    pub changed: bool,
}

pub(crate) fn peer(c: &Connection, device_id: &str) -> Result<Option<Peer>> {
    Ok(c.prepare_cached(
        "SELECT user_id, curve25519, ed25519, changed_ms IS NOT NULL FROM peer_device WHERE device_id = ?1",
    )?
    .query_row([device_id], |r| {
        Ok(Peer {
            user_id: r.get(0)?,
            curve25519: r.get(1)?,
            ed25519: r.get(2)?,
            changed: r.get(3)?,
        })
    })
    .optional()?)
}

/// Remembers a peer's keys the first time they are seen. Afterwards the first ones stand: other
/// keys for the same device are kept aside as a change for the user to accept, never taken
/// silently (a server handing out its own keys would read everything otherwise).
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
    let same = (d.identity.curve25519.as_str(), d.identity.ed25519.as_str());
    // Keys back to the accepted ones clear a change; new other keys replace a pending change.
    tx.prepare_cached(
        "UPDATE peer_device SET
           changed_curve25519 = CASE WHEN curve25519 = ?2 AND ed25519 = ?3 THEN NULL ELSE ?2 END,
           changed_ed25519    = CASE WHEN curve25519 = ?2 AND ed25519 = ?3 THEN NULL ELSE ?3 END,
           changed_ms = CASE WHEN curve25519 = ?2 AND ed25519 = ?3 THEN NULL
                             WHEN changed_curve25519 = ?2 AND changed_ed25519 = ?3 THEN changed_ms
                             ELSE ?4 END
         WHERE device_id = ?1",
    )?
    .execute(params![d.device_id, same.0, same.1, now_ms])?;
    peer(tx, &d.device_id)?.ok_or_else(|| Error::Storage("peer device".into()))
}

/// Takes a device's changed identity keys as its keys: the old sessions go (they belong to the
/// old identity). `false` when the device has no pending change.
pub(crate) fn accept_change(tx: &Transaction<'_>, device_id: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE peer_device SET curve25519 = changed_curve25519, ed25519 = changed_ed25519,
           changed_curve25519 = NULL, changed_ed25519 = NULL, changed_ms = NULL, verified_ms = NULL
         WHERE device_id = ?1 AND changed_ms IS NOT NULL",
        [device_id],
    )?;
    if n > 0 {
        tx.execute(
            "DELETE FROM olm_session WHERE peer_device = ?1",
            [device_id],
        )?;
    }
    Ok(n > 0)
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

/// Decrypts `msg` with `s`, or `None`. A pre-key message opens only the session its keys name:
/// Olm authenticates the inner message, not the pre-key wrapper's keys, and a wrapper with
/// altered keys must not pass for the genuine message.
pub(crate) fn open(s: &mut Session, msg: &OlmMessage) -> Option<Vec<u8>> {
    if let OlmMessage::PreKey(pre) = msg {
        if pre.session_id() != s.session_id() {
            return None;
        }
    }
    s.decrypt(msg).ok()
}
