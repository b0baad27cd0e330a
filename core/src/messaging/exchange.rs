//! Messages to and from the relay on every sync: first what arrived (decrypted, checked and
//! stored with the relay cursor in one transaction), then what this device wrote (encrypted once
//! for each device of each conversation member, the copies saved with the sessions before they
//! are sent, and sent until the relay answered each).

use std::future::Future;
use std::pin::Pin;

use polku_protocol::keys::{
    check_identity, check_key, DeviceKeys, DevicesResponse, KeysClaim, KeysClaimResponse,
};
use polku_protocol::relay::*;
use polku_protocol::Role;
use rusqlite::{params, Transaction};
use vodozemac::olm::{OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::envelope::{self, Envelope};
use super::{account, session};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::sync::{Exchange, Http, OnServer, SyncReport};

/// The relay cursor: every message up to it is stored here (acknowledged on the next fetch).
const KEY_AFTER: &str = "messaging.after";

pub(crate) struct MessageRelay;

pub(crate) static MESSAGE_RELAY: MessageRelay = MessageRelay;

fn count(report: &mut SyncReport, bytes: usize) {
    report.requests += 1;
    report.bytes += bytes as u64;
}

/// The devices the caller may reach, their identity keys checked (a device whose keys do not
/// verify is left out).
async fn devices(http: &Http) -> Result<Vec<DeviceKeys>> {
    let r: DevicesResponse = http.get("/v1/keys/devices").await?;
    Ok(r.devices
        .into_iter()
        .filter(|d| check_identity(&d.user_id, &d.device_id, &d.identity).is_ok())
        .collect())
}

impl MessageRelay {
    async fn receive(
        &self,
        cx: &Context,
        http: &Http,
        me: &OnServer,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut known: Option<(Vec<DeviceKeys>, Vec<Conversation>)> = None;
        loop {
            let after: i64 = cx
                .store
                .profile_get(KEY_AFTER)?
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            let (r, bytes): (FetchResponse, usize) = http
                .post("/v1/messages/fetch", &FetchRequest { after, limit: None })
                .await?;
            count(report, bytes);
            if r.messages.is_empty() {
                return Ok(());
            }
            let (devices, conversations) = match known.take() {
                Some(k) => k,
                None => {
                    let d = devices(http).await?;
                    let c: ConversationsResponse = http.get("/v1/conversations").await?;
                    report.requests += 2;
                    (d, c.conversations)
                }
            };
            let now = cx.clock.now().timestamp_millis();
            cx.store.write(|tx| {
                for d in &devices {
                    session::remember(tx, d, now)?;
                }
                for m in &r.messages {
                    if let Some(reason) = receive_one(tx, me, m, &conversations, now)? {
                        tx.prepare_cached(
                            "INSERT INTO message_rejected (sender_device, reason, at_ms) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![m.sender_device, reason, now])?;
                    }
                    tx.prepare_cached(
                        "INSERT INTO profile (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![KEY_AFTER, m.seq.to_string()])?;
                }
                Ok(())
            })?;
            known = Some((devices, conversations));
            // Loop: the next fetch acknowledges these (the relay deletes them) and takes more.
        }
    }

    async fn send(
        &self,
        cx: &Context,
        http: &Http,
        me: &OnServer,
        report: &mut SyncReport,
    ) -> Result<()> {
        let queued = cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, conversation, seq, sent_ms, body FROM message
                 WHERE state = 'queued' AND sender_device = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([&me.device_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })?;
        if !queued.is_empty() {
            let devices = devices(http).await?;
            let c: ConversationsResponse = http.get("/v1/conversations").await?;
            report.requests += 2;
            let recipients = |conversation: &str| -> Vec<&DeviceKeys> {
                let members = c
                    .conversations
                    .iter()
                    .find(|c| c.id == conversation)
                    .map(|c| c.members.clone())
                    .unwrap_or_default();
                devices
                    .iter()
                    .filter(|d| members.contains(&d.user_id) && d.device_id != me.device_id)
                    .collect()
            };
            // Sessions to start: devices this one has none with.
            let mut need: Vec<String> = Vec::new();
            cx.store.read(|c| {
                for (_, conv, ..) in &queued {
                    for d in recipients(conv) {
                        if !need.contains(&d.device_id)
                            && session::sessions(c, &d.device_id)?.is_empty()
                        {
                            need.push(d.device_id.clone());
                        }
                    }
                }
                Ok(())
            })?;
            let claimed = if need.is_empty() {
                Vec::new()
            } else {
                let (r, bytes): (KeysClaimResponse, usize) = http
                    .post("/v1/keys/claim", &KeysClaim { devices: need })
                    .await?;
                count(report, bytes);
                r.claimed
            };
            let now = cx.clock.now().timestamp_millis();
            cx.store.write(|tx| {
                let stored = account::load_or_create(tx, now)?;
                for d in &devices {
                    session::remember(tx, d, now)?;
                }
                for k in &claimed {
                    start_session(tx, &stored.account, k, now)?;
                }
                for (id, conv, seq, sent_ms, body) in &queued {
                    if !c.conversations.iter().any(|x| x.id == *conv) {
                        // Not (or no longer) a conversation of this user: shown, never sent.
                        tx.prepare_cached(
                            "UPDATE message SET state = 'undeliverable' WHERE id = ?1",
                        )?
                        .execute([id])?;
                        continue;
                    }
                    for d in recipients(conv) {
                        let env = Envelope {
                            v: 1,
                            conversation: conv.clone(),
                            sender_user: me.user_id.clone(),
                            sender_device: me.device_id.clone(),
                            recipient_device: d.device_id.clone(),
                            id: id.clone(),
                            seq: *seq,
                            sent_ms: *sent_ms,
                            body: body.clone(),
                        };
                        encrypt_copy(tx, &env, now)?;
                    }
                    tx.prepare_cached("UPDATE message SET state = 'sending' WHERE id = ?1")?
                        .execute([id])?;
                }
                Ok(())
            })?;
        }
        loop {
            let copies = cx.store.read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT copy_id, recipient_device, ciphertext FROM message_copy ORDER BY rowid LIMIT ?1",
                )?;
                let rows = stmt.query_map([MAX_MESSAGES_PER_SEND as i64], |r| {
                    Ok(Outgoing {
                        id: r.get(0)?,
                        recipient_device: r.get(1)?,
                        ciphertext: Ciphertext(r.get(2)?),
                    })
                })?;
                Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
            })?;
            if copies.is_empty() {
                return Ok(());
            }
            let (r, bytes): (SendResponse, usize) = http
                .post("/v1/messages/send", &SendRequest { messages: copies })
                .await?;
            count(report, bytes);
            cx.store.write(|tx| {
                for res in &r.results {
                    // Queued, a duplicate of one queued before, or a device gone: answered.
                    tx.prepare_cached("DELETE FROM message_copy WHERE copy_id = ?1")?
                        .execute([&res.id])?;
                }
                tx.execute(
                    "UPDATE message SET state = 'sent' WHERE state = 'sending'
                     AND id NOT IN (SELECT message_id FROM message_copy)",
                    [],
                )?;
                Ok(())
            })?;
        }
    }
}

/// A new outbound session from a claimed key, after checking the key's signature against the
/// identity this device first saw for that device.
fn start_session(
    tx: &Transaction<'_>,
    account: &vodozemac::olm::Account,
    k: &polku_protocol::keys::ClaimedKey,
    now: i64,
) -> Result<()> {
    let Some(peer) = session::peer(tx, &k.device.device_id)? else {
        return Ok(());
    };
    if peer.curve25519 != k.device.identity.curve25519 || peer.ed25519 != k.device.identity.ed25519
    {
        // Not the identity this device first saw: no session (identity changes are reviewed).
        return Ok(());
    }
    if check_key(&k.device.device_id, &peer.ed25519, &k.key, k.fallback).is_err() {
        return Ok(());
    }
    let (Ok(identity), Ok(otk)) = (
        Curve25519PublicKey::from_base64(&peer.curve25519),
        Curve25519PublicKey::from_base64(&k.key.key),
    ) else {
        return Ok(());
    };
    let s = account
        .create_outbound_session(SessionConfig::version_1(), identity, otk)
        .map_err(|_| Error::Storage("an Olm session could not be started".into()))?;
    session::save(tx, &k.device.device_id, &s, now)
}

/// Encrypts `env` for its recipient device with the newest session, and keeps the copy to send.
fn encrypt_copy(tx: &Transaction<'_>, env: &Envelope, now: i64) -> Result<()> {
    let Some(mut s) = session::sessions(tx, &env.recipient_device)?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let plain = serde_json::to_vec(env)?;
    let msg = s
        .encrypt(&plain)
        .map_err(|_| Error::Storage("an Olm session could not encrypt".into()))?;
    let padded = envelope::pad(&msg)?;
    session::save(tx, &env.recipient_device, &s, now)?;
    let copy_id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}/{}", env.id, env.recipient_device).as_bytes(),
    );
    tx.prepare_cached(
        "INSERT OR IGNORE INTO message_copy (copy_id, message_id, recipient_device, ciphertext) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![copy_id.to_string(), env.id, env.recipient_device, padded.0])?;
    Ok(())
}

/// Decrypts, checks and stores one delivered message; `Some(reason)` when it is rejected (then
/// nothing of it is kept: no session change, no one-time key used up).
fn receive_one(
    tx: &Transaction<'_>,
    me: &OnServer,
    m: &Delivered,
    conversations: &[Conversation],
    now: i64,
) -> Result<Option<String>> {
    let reject = |r: &str| Ok(Some(r.to_owned()));
    let Some(peer) = session::peer(tx, &m.sender_device)? else {
        return reject("a sender device whose keys this device does not have");
    };
    if peer.user_id != m.sender_user {
        return reject("the sender device belongs to another user");
    }
    let msg = match envelope::unpad(&m.ciphertext) {
        Ok(msg) => msg,
        Err(why) => return reject(why),
    };
    let mut opened: Option<(Vec<u8>, Session)> = None;
    for mut s in session::sessions(tx, &m.sender_device)? {
        if let Ok(p) = s.decrypt(&msg) {
            opened = Some((p, s));
            break;
        }
    }
    let mut new_account = None;
    if opened.is_none() {
        let OlmMessage::PreKey(pre) = &msg else {
            return reject("no session of this device decrypts it");
        };
        let Ok(their) = Curve25519PublicKey::from_base64(&peer.curve25519) else {
            return reject("the sender's identity key is malformed");
        };
        let mut stored = account::load_or_create(tx, now)?;
        match stored
            .account
            .create_inbound_session(SessionConfig::version_1(), their, pre)
        {
            Ok(r) => {
                opened = Some((r.plaintext, r.session));
                new_account = Some(stored);
            }
            Err(_) => return reject("no session and no unused one-time key decrypts it"),
        }
    }
    let Some((plain, s)) = opened else {
        return reject("undecryptable");
    };
    let Ok(env) = serde_json::from_slice::<Envelope>(&plain) else {
        return reject("not a message envelope");
    };
    if env.v != 1
        || env.recipient_device != me.device_id
        || env.sender_device != m.sender_device
        || env.sender_user != m.sender_user
    {
        return reject("the envelope names another sender or recipient than the relay");
    }
    let member = |u: &str| {
        conversations
            .iter()
            .any(|c| c.id == env.conversation && c.members.iter().any(|x| x == u))
    };
    if !member(&env.sender_user) || !member(&me.user_id) {
        return reject("a conversation this device and the sender do not share");
    }
    let seen: bool = tx
        .prepare_cached("SELECT 1 FROM message WHERE id = ?1")?
        .exists([&env.id])?;
    if seen {
        return reject("a message this device already has (replayed)");
    }
    tx.prepare_cached(
        "INSERT INTO message (id, conversation, sender_user, sender_device, seq, sent_ms, body, received_ms, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'received')",
    )?
    .execute(params![
        env.id,
        env.conversation,
        env.sender_user,
        env.sender_device,
        env.seq,
        env.sent_ms,
        env.body,
        now
    ])?;
    session::save(tx, &m.sender_device, &s, now)?;
    if let Some(a) = new_account {
        account::save(tx, &a, now)?;
    }
    Ok(None)
}

impl Exchange for MessageRelay {
    fn run<'a>(
        &'a self,
        cx: &'a Context,
        http: &'a Http,
        on_server: &'a OnServer,
        report: &'a mut SyncReport,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            if cx.device_role()? == Some(Role::Admin) {
                return Ok(());
            }
            // The pull said whether anything waits: a quiet sync fetches nothing.
            if on_server.said.messages != Some(0) {
                self.receive(cx, http, on_server, report).await?;
            }
            self.send(cx, http, on_server, report).await
        })
    }
}
