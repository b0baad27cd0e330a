//! Messages to and from the relay on every sync: first what arrived (decrypted, checked and
//! stored with the relay cursor in one transaction), then what this device wrote (encrypted once
//! for each device of each conversation member, the copies saved with the sessions before they
//! are sent, and sent until the relay answered each).

use std::future::Future;
use std::pin::Pin;

use polku_protocol::attachment::UploadResponse;
use polku_protocol::keys::{
    check_identity, check_key, DeviceKeys, DevicesResponse, KeysClaim, KeysClaimResponse,
};
use polku_protocol::relay::*;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use vodozemac::olm::{OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::attachment::{self, AttachmentRef};
use super::envelope::{self, Content, Envelope, ReceiptKind, MAX_RECEIPT_IDS};
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

/// The conversations with their members, and the devices of those members, as the server has
/// them: fetched at most once a sync, and not at all while the pull's digest of them matches the
/// copy this device keeps (`messaging.directory`).
#[derive(Serialize, Deserialize)]
struct Directory {
    digest: Option<String>,
    devices: Vec<DeviceKeys>,
    conversations: Vec<Conversation>,
}

const KEY_DIRECTORY: &str = "messaging.directory";
/// The digest of the kept directory, apart, so a sync compares it without reading the rest.
const KEY_DIRECTORY_DIGEST: &str = "messaging.directory_digest";

/// Gets the directory for one sync.
struct Lookup<'a> {
    cx: &'a Context,
    http: &'a Http,
    me: Me<'a>,
    said: Option<&'a str>,
    got: Option<Directory>,
}

impl Lookup<'_> {
    /// Asks for the directory when the pull's digest differs from the kept one, even if this
    /// sync sends and receives nothing: a new device is noticed, an ended conversation purged.
    async fn refresh_if_changed(&mut self, report: &mut SyncReport) -> Result<()> {
        let Some(said) = self.said else {
            return Ok(());
        };
        if self.got.is_none()
            && self.cx.store.profile_get(KEY_DIRECTORY_DIGEST)?.as_deref() != Some(said)
        {
            self.got = Some(self.fetch(report).await?);
        }
        Ok(())
    }

    async fn get(&mut self, report: &mut SyncReport) -> Result<&Directory> {
        if self.got.is_none() {
            let kept = match self.said {
                Some(d) => self
                    .cx
                    .store
                    .profile_get(KEY_DIRECTORY)?
                    .and_then(|j| serde_json::from_str::<Directory>(&j).ok())
                    .filter(|k| k.digest.as_deref() == Some(d)),
                None => None,
            };
            let dir = match kept {
                Some(k) => k,
                None => self.fetch(report).await?,
            };
            self.got = Some(dir);
        }
        Ok(self.got.as_ref().expect("set above"))
    }

    /// Asks the server, then notes every device's keys (a changed identity is noticed here,
    /// before anything is encrypted to it) and the members, and keeps the answers.
    async fn fetch(&self, report: &mut SyncReport) -> Result<Directory> {
        let d: DevicesResponse = self.http.get("/v1/keys/devices").await?;
        let c: ConversationsResponse = self.http.get("/v1/conversations").await?;
        report.requests += 2;
        let dir = Directory {
            digest: self.said.map(str::to_owned),
            // A device whose identity keys do not verify is left out.
            devices: d
                .devices
                .into_iter()
                .filter(|d| check_identity(&d.user_id, &d.device_id, &d.identity).is_ok())
                .collect(),
            conversations: c.conversations,
        };
        let now = self.cx.clock.now().timestamp_millis();
        let json = serde_json::to_string(&dir)?;
        self.cx.store.write(|tx| {
            for d in &dir.devices {
                session::remember(tx, d, now)?;
            }
            save_conversations(tx, &dir.conversations)?;
            purge_ended(tx)?;
            release_held(tx, self.me, now)?;
            let mut put = tx.prepare_cached(
                "INSERT INTO profile (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            put.execute(params![KEY_DIRECTORY, json])?;
            put.execute(params![
                KEY_DIRECTORY_DIGEST,
                dir.digest.as_deref().unwrap_or("")
            ])?;
            Ok(())
        })?;
        Ok(dir)
    }
}

/// Who this device is on the server: what envelopes to it must name.
#[derive(Clone, Copy)]
pub(crate) struct Me<'a> {
    pub user: &'a str,
    pub device: &'a str,
}

/// What became of one delivered ciphertext.
pub(crate) enum Received {
    Kept,
    /// From a device whose identity keys changed: kept encrypted until the user accepts them.
    Held,
    Rejected(String),
}

/// The members of each conversation as the server names them now, kept for offline use (the
/// device checks envelopes and composes against them).
fn save_conversations(tx: &Transaction<'_>, conversations: &[Conversation]) -> Result<()> {
    tx.execute("DELETE FROM conversation_member", [])?;
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO conversation_member (conversation, user_id) VALUES (?1, ?2)",
    )?;
    for c in conversations {
        for m in &c.members {
            ins.execute(params![c.id, m])?;
        }
    }
    Ok(())
}

/// Removes from this device the conversations its user is no longer a member of (an ended
/// assignment), as sync purges the records of people no longer in one's care. Messages this
/// device wrote and never sent stay, to be shown undeliverable.
fn purge_ended(tx: &Transaction<'_>) -> Result<()> {
    const ENDED: &str = "SELECT id FROM message WHERE conversation NOT IN
        (SELECT conversation FROM conversation_member) AND state NOT IN ('queued', 'undeliverable')";
    for table in [
        "message_receipt",
        "receipt_out",
        "message_held",
        "message_copy",
        "attachment",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE message_id IN ({ENDED})"),
            [],
        )?;
    }
    tx.execute(&format!("DELETE FROM message WHERE id IN ({ENDED})"), [])?;
    Ok(())
}

fn is_member(tx: &Transaction<'_>, conversation: &str, user: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM conversation_member WHERE conversation = ?1 AND user_id = ?2",
        )?
        .exists(params![conversation, user])?)
}

/// Stores what a delivered ciphertext says, or why not, in the caller's transaction.
pub(crate) fn take(
    tx: &Transaction<'_>,
    me: Me<'_>,
    sender_user: &str,
    sender_device: &str,
    ciphertext: &Ciphertext,
    now: i64,
) -> Result<()> {
    match receive_one(tx, me, sender_user, sender_device, ciphertext, now)? {
        Received::Kept => {}
        Received::Held => {
            tx.prepare_cached(
                "INSERT INTO inbox_held (sender_user, sender_device, ciphertext, held_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![sender_user, sender_device, ciphertext.0, now])?;
        }
        Received::Rejected(reason) => {
            tx.prepare_cached(
                "INSERT INTO message_rejected (sender_device, reason, at_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![sender_device, reason, now])?;
        }
    }
    Ok(())
}

/// Opens what waited for devices whose changed identity the user has since accepted.
pub(crate) fn release_held(tx: &Transaction<'_>, me: Me<'_>, now: i64) -> Result<()> {
    let held: Vec<(i64, String, String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT h.id, h.sender_user, h.sender_device, h.ciphertext FROM inbox_held h
             JOIN peer_device p ON p.device_id = h.sender_device
             WHERE p.changed_ms IS NULL ORDER BY h.id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    for (id, user, device, ciphertext) in held {
        tx.prepare_cached("DELETE FROM inbox_held WHERE id = ?1")?
            .execute([id])?;
        take(tx, me, &user, &device, &Ciphertext(ciphertext), now)?;
    }
    Ok(())
}

/// One envelope to encrypt for one device.
struct Planned {
    recipient: String,
    env: Envelope,
    /// A message held for this device (its identity changed, or no session could be started),
    /// tried again.
    released: bool,
}

impl MessageRelay {
    async fn receive(
        &self,
        cx: &Context,
        http: &Http,
        look: &mut Lookup<'_>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let me = look.me;
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
            crate::crash::point("messaging.fetched");
            // The senders' keys and the conversations' members (checked by `take`).
            look.get(report).await?;
            let now = cx.clock.now().timestamp_millis();
            cx.store.write(|tx| {
                for m in &r.messages {
                    take(tx, me, &m.sender_user, &m.sender_device, &m.ciphertext, now)?;
                    // Decrypted, the session advanced and the one-time key used, none of it
                    // committed yet.
                    crate::crash::point("messaging.decrypted");
                    tx.prepare_cached(
                        "INSERT INTO profile (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![KEY_AFTER, m.seq.to_string()])?;
                }
                Ok(())
            })?;
            crate::crash::point("messaging.stored");
            // Loop: the next fetch acknowledges these (the relay deletes them) and takes more.
        }
    }

    /// What this device owes the relay: its queued messages, messages held for a device, and its
    /// receipts.
    fn owed(cx: &Context, me: Me<'_>) -> Result<Owed> {
        cx.store.read(|c| {
            // One row shape for both: `to` is the device a held copy waits for.
            let outbound = |r: &rusqlite::Row<'_>| {
                Ok(Outbound {
                    id: r.get(0)?,
                    conversation: r.get(1)?,
                    seq: r.get(2)?,
                    sent_ms: r.get(3)?,
                    body: r.get(4)?,
                    attachment: None,
                    to: r.get(5)?,
                })
            };
            let mut stmt = c.prepare_cached(
                "SELECT id, conversation, seq, sent_ms, body, NULL FROM message
                 WHERE state = 'queued' AND sender_device = ?1 ORDER BY seq",
            )?;
            let queued = stmt
                .query_map([me.device], outbound)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare_cached(
                // Every held copy: the device list is read again on each sync while one waits,
                // so a change that cleared (or a key now claimable) is noticed.
                "SELECT m.id, m.conversation, m.seq, m.sent_ms, m.body, h.recipient_device
                 FROM message_held h JOIN message m ON m.id = h.message_id ORDER BY m.seq",
            )?;
            let released = stmt
                .query_map([], outbound)?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let (mut queued, mut released) = (queued, released);
            for m in queued.iter_mut().chain(released.iter_mut()) {
                m.attachment = attachment::of_message(c, &m.id)?;
            }
            let mut stmt = c.prepare_cached(
                "SELECT m.conversation, m.sender_user, r.kind, r.message_id FROM receipt_out r
                 JOIN message m ON m.id = r.message_id ORDER BY m.conversation, m.sender_user, r.kind, m.sent_ms",
            )?;
            let receipts = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<std::result::Result<Vec<(String, String, String, String)>, _>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT id, conversation, recipient_device, step FROM verification_out ORDER BY id",
            )?;
            let verifications = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))?
                .collect::<std::result::Result<Vec<_>, _>>()?
                .into_iter()
                .filter_map(|(id, conv, device, step)| {
                    let q: super::verify::Queued = serde_json::from_str(&step).ok()?;
                    let c = Content::Verification {
                        txn: q.txn,
                        step: q.step,
                    };
                    Some((id, conv, device, c))
                })
                .collect();
            Ok(Owed {
                queued,
                released,
                receipts,
                verifications,
            })
        })
    }

    async fn send(
        &self,
        cx: &Context,
        http: &Http,
        look: &mut Lookup<'_>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let me = look.me;
        let mut owed = Self::owed(cx, me)?;
        if !owed.is_empty() {
            let dir = look.get(report).await?;
            let refused =
                upload_attachments(cx, http, &owed.queued, &dir.conversations, report).await?;
            owed.queued.retain(|m| !refused.contains(&m.id));
            let (devices, conversations) = (&dir.devices, &dir.conversations);
            let now = cx.clock.now().timestamp_millis();
            let devices_of = |users: &[&str]| -> Vec<&DeviceKeys> {
                devices
                    .iter()
                    .filter(|d| users.contains(&d.user_id.as_str()) && d.device_id != me.device)
                    .collect()
            };
            let members = |conversation: &str| -> Option<Vec<&str>> {
                conversations
                    .iter()
                    .find(|c| c.id == conversation)
                    .map(|c| c.members.iter().map(String::as_str).collect())
            };
            let plan = plan(&owed, me, &devices_of, &members, now);
            // Sessions to start: devices this one has none with.
            let mut need: Vec<String> = Vec::new();
            cx.store.read(|c| {
                for p in &plan.envelopes {
                    if !need.contains(&p.recipient)
                        && !session::peer(c, &p.recipient)?.is_some_and(|x| x.changed)
                        && session::sessions(c, &p.recipient)?.is_empty()
                    {
                        need.push(p.recipient.clone());
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
            cx.store.write(|tx| {
                if !claimed.is_empty() {
                    let stored = account::load_or_create(tx, now)?;
                    for k in &claimed {
                        start_session(tx, &stored.account, k, now)?;
                    }
                }
                for p in &plan.envelopes {
                    let held = session::peer(tx, &p.recipient)?.is_some_and(|x| x.changed);
                    match (&p.env.content, held) {
                        (Content::Text { .. }, true) => {
                            tx.prepare_cached(
                                "INSERT OR IGNORE INTO message_held (message_id, recipient_device) VALUES (?1, ?2)",
                            )?
                            .execute(params![p.env.id, p.recipient])?;
                        }
                        // A receipt or verification step to a device whose identity changed is
                        // not worth keeping.
                        (Content::Receipt { .. } | Content::Verification { .. }, true) => {}
                        (content, false) => {
                            let copied = encrypt_copy(tx, &p.env, now)?;
                            let text = matches!(content, Content::Text { .. });
                            if text && !copied && !p.released {
                                // No session (no key could be claimed): tried again next sync.
                                tx.prepare_cached(
                                    "INSERT OR IGNORE INTO message_held (message_id, recipient_device) VALUES (?1, ?2)",
                                )?
                                .execute(params![p.env.id, p.recipient])?;
                            }
                            if copied && p.released {
                                tx.prepare_cached(
                                    "DELETE FROM message_held WHERE message_id = ?1 AND recipient_device = ?2",
                                )?
                                .execute(params![p.env.id, p.recipient])?;
                                tx.prepare_cached(
                                    "UPDATE message SET state = 'sending' WHERE id = ?1 AND state = 'held'",
                                )?
                                .execute([&p.env.id])?;
                            }
                        }
                    }
                }
                for (id, device) in &plan.dropped {
                    tx.prepare_cached(
                        "DELETE FROM message_held WHERE message_id = ?1 AND recipient_device = ?2",
                    )?
                    .execute(params![id, device])?;
                }
                for id in &plan.undeliverable {
                    tx.prepare_cached("UPDATE message SET state = 'undeliverable' WHERE id = ?1")?
                        .execute([id])?;
                }
                for m in &owed.queued {
                    tx.prepare_cached(
                        "UPDATE message SET state = 'sending' WHERE id = ?1 AND state = 'queued'",
                    )?
                    .execute([&m.id])?;
                }
                // Nothing to send yet, only copies held for devices: shown as such, not as
                // a send that never ends.
                tx.execute(
                    "UPDATE message SET state = 'held' WHERE state = 'sending'
                     AND id NOT IN (SELECT message_id FROM message_copy)
                     AND id IN (SELECT message_id FROM message_held)",
                    [],
                )?;
                for (id, ..) in &owed.verifications {
                    tx.prepare_cached("DELETE FROM verification_out WHERE id = ?1")?
                        .execute([id])?;
                }
                for (_, _, kind, id) in &owed.receipts {
                    tx.prepare_cached("DELETE FROM receipt_out WHERE message_id = ?1 AND kind = ?2")?
                        .execute(params![id, kind])?;
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
            crate::crash::point("messaging.encrypted");
            let (r, bytes): (SendResponse, usize) = http
                .post("/v1/messages/send", &SendRequest { messages: copies })
                .await?;
            count(report, bytes);
            crate::crash::point("messaging.relayed");
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

/// Uploads the sealed files of queued messages to conversations this user is a member of,
/// before any Olm message names them. Returns the messages whose upload the server refused for
/// good (a file over its limit): they are marked undeliverable, not tried forever. A network
/// failure ends the sync; the upload is tried again (the same blob: a retry stores it once).
async fn upload_attachments(
    cx: &Context,
    http: &Http,
    queued: &[Outbound],
    conversations: &[Conversation],
    report: &mut SyncReport,
) -> Result<Vec<String>> {
    let mut refused = Vec::new();
    for m in queued {
        let Some(a) = &m.attachment else { continue };
        if !conversations.iter().any(|c| c.id == m.conversation) {
            continue;
        }
        let data: Option<Vec<u8>> = cx.store.read(|c| {
            Ok(c.prepare_cached(
                "SELECT data FROM attachment WHERE id = ?1 AND uploaded_ms IS NULL",
            )?
            .query_row([&a.id], |r| r.get(0))
            .optional()?
            .flatten())
        })?;
        let Some(data) = data else { continue };
        let blob = attachment::seal(a, &data)?;
        drop(data);
        let path = format!("/v1/attachments/{}?conversation={}", a.id, m.conversation);
        let now = cx.clock.now().timestamp_millis();
        match http.put_bytes::<UploadResponse>(&path, blob).await {
            Ok((r, bytes)) => {
                count(report, bytes);
                if r.sha256 != a.sha256 {
                    return Err(Error::Network(
                        "the server stored another attachment than sent".into(),
                    ));
                }
                cx.store.write(|tx| {
                    tx.execute(
                        "UPDATE attachment SET uploaded_ms = ?2 WHERE id = ?1",
                        params![a.id, now],
                    )?;
                    Ok(())
                })?;
            }
            Err(Error::Server { status, .. })
                if (400..500).contains(&status) && ![401, 408, 429].contains(&status) =>
            {
                cx.store.write(|tx| {
                    tx.execute(
                        "UPDATE message SET state = 'undeliverable' WHERE id = ?1",
                        [&m.id],
                    )?;
                    Ok(())
                })?;
                refused.push(m.id.clone());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}

/// A message of this device's to encrypt: queued, or released for one device (`to`).
struct Outbound {
    id: String,
    conversation: String,
    seq: i64,
    sent_ms: i64,
    body: String,
    attachment: Option<AttachmentRef>,
    to: Option<String>,
}

struct Owed {
    queued: Vec<Outbound>,
    released: Vec<Outbound>,
    /// Verification steps: (row, conversation, recipient device, content).
    verifications: Vec<(i64, String, String, Content)>,
    /// (conversation, the message's sender, kind, message id), grouped in that order.
    receipts: Vec<(String, String, String, String)>,
}

impl Owed {
    fn is_empty(&self) -> bool {
        self.queued.is_empty()
            && self.released.is_empty()
            && self.receipts.is_empty()
            && self.verifications.is_empty()
    }
}

struct Plan {
    envelopes: Vec<Planned>,
    /// Messages to conversations this user is not (or no longer) a member of.
    undeliverable: Vec<String>,
    /// Held copies (message, device) for a device no longer among the conversation's.
    dropped: Vec<(String, String)>,
}

/// Every envelope for every device: messages to each device of each member (this user's other
/// devices included); a delivery receipt to the sender's devices, a read receipt to the
/// sender's and this user's other devices (so their unread counts follow).
fn plan<'d>(
    owed: &Owed,
    me: Me<'_>,
    devices_of: &dyn Fn(&[&str]) -> Vec<&'d DeviceKeys>,
    members: &dyn Fn(&str) -> Option<Vec<&'d str>>,
    now: i64,
) -> Plan {
    let mut envelopes = Vec::new();
    let mut undeliverable = Vec::new();
    let envelope = |conversation: &str, to: &str, id: &str, seq, sent_ms, content| Envelope {
        v: 1,
        conversation: conversation.to_owned(),
        sender_user: me.user.to_owned(),
        sender_device: me.device.to_owned(),
        recipient_device: to.to_owned(),
        id: id.to_owned(),
        seq,
        sent_ms,
        content,
    };
    let mut dropped = Vec::new();
    for m in owed.queued.iter().chain(&owed.released) {
        let users = members(&m.conversation).unwrap_or_default();
        let devices = devices_of(&users);
        match &m.to {
            None if users.is_empty() => {
                undeliverable.push(m.id.clone());
                continue;
            }
            Some(to) if !devices.iter().any(|d| d.device_id == *to) => {
                dropped.push((m.id.clone(), to.clone()));
                continue;
            }
            _ => {}
        }
        for d in devices {
            if m.to.as_ref().is_some_and(|to| *to != d.device_id) {
                continue;
            }
            envelopes.push(Planned {
                recipient: d.device_id.clone(),
                env: envelope(
                    &m.conversation,
                    &d.device_id,
                    &m.id,
                    m.seq,
                    m.sent_ms,
                    Content::Text {
                        body: m.body.clone(),
                        attachment: m.attachment.clone(),
                    },
                ),
                released: m.to.is_some(),
            });
        }
    }
    let mut i = 0;
    while i < owed.receipts.len() {
        let (conversation, sender, kind, _) = &owed.receipts[i];
        let group: Vec<&String> = owed.receipts[i..]
            .iter()
            .take_while(|r| (&r.0, &r.1, &r.2) == (conversation, sender, kind))
            .take(MAX_RECEIPT_IDS)
            .map(|r| &r.3)
            .collect();
        i += group.len();
        let (Some(users), Some(kind)) = (members(conversation), ReceiptKind::parse(kind)) else {
            continue;
        };
        let mut to: Vec<&str> = users.into_iter().filter(|u| u == sender).collect();
        if kind == ReceiptKind::Read {
            to.push(me.user);
        }
        let id = uuid::Uuid::now_v7().to_string();
        for d in devices_of(&to) {
            envelopes.push(Planned {
                recipient: d.device_id.clone(),
                env: envelope(
                    conversation,
                    &d.device_id,
                    &id,
                    0,
                    now,
                    Content::Receipt {
                        kind,
                        messages: group.iter().map(|s| (*s).clone()).collect(),
                    },
                ),
                released: false,
            });
        }
    }
    for (_, conversation, device, content) in &owed.verifications {
        let Some(users) = members(conversation) else {
            continue;
        };
        if let Some(d) = devices_of(&users)
            .into_iter()
            .find(|d| d.device_id == *device)
        {
            let id = uuid::Uuid::now_v7().to_string();
            envelopes.push(Planned {
                recipient: d.device_id.clone(),
                env: envelope(conversation, device, &id, 0, now, content.clone()),
                released: false,
            });
        }
    }
    Plan {
        envelopes,
        undeliverable,
        dropped,
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

/// Encrypts `env` for its recipient device with the newest session, and keeps the copy to send;
/// `false` when there is no session with that device.
fn encrypt_copy(tx: &Transaction<'_>, env: &Envelope, now: i64) -> Result<bool> {
    let Some(mut s) = session::sessions(tx, &env.recipient_device)?
        .into_iter()
        .next()
    else {
        return Ok(false);
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
    Ok(true)
}

/// Decrypts, checks and stores one delivered ciphertext. A rejected one leaves nothing behind:
/// no session change, no one-time key used up.
fn receive_one(
    tx: &Transaction<'_>,
    me: Me<'_>,
    sender_user: &str,
    sender_device: &str,
    ciphertext: &Ciphertext,
    now: i64,
) -> Result<Received> {
    let reject = |r: &str| Ok(Received::Rejected(r.to_owned()));
    let Some(peer) = session::peer(tx, sender_device)? else {
        return reject("a sender device whose keys this device does not have");
    };
    if peer.user_id != sender_user {
        return reject("the sender device belongs to another user");
    }
    let msg = match envelope::unpad(ciphertext) {
        Ok(msg) => msg,
        Err(why) => return reject(why),
    };
    let mut opened: Option<(Vec<u8>, Session)> = None;
    for mut s in session::sessions(tx, sender_device)? {
        if let Some(p) = session::open(&mut s, &msg) {
            opened = Some((p, s));
            break;
        }
    }
    let mut new_account = None;
    if opened.is_none() {
        if peer.changed {
            // Perhaps from the device's new identity: kept until the user accepts it.
            return Ok(Received::Held);
        }
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
        || env.recipient_device != me.device
        || env.sender_device != sender_device
        || env.sender_user != sender_user
    {
        return reject("the envelope names another sender or recipient than the relay");
    }
    if !is_member(tx, &env.conversation, &env.sender_user)?
        || !is_member(tx, &env.conversation, me.user)?
    {
        return reject("a conversation this device and the sender do not share");
    }
    match &env.content {
        Content::Text { body, attachment } => {
            if let Some(a) = attachment {
                if let Err(why) = a.check() {
                    return reject(why);
                }
                let taken: bool = tx
                    .prepare_cached("SELECT 1 FROM attachment WHERE id = ?1")?
                    .exists([&a.id])?;
                if taken {
                    return reject("an attachment this device already has (replayed)");
                }
            }
            let seen: bool = tx
                .prepare_cached("SELECT 1 FROM message WHERE id = ?1")?
                .exists([&env.id])?;
            if seen {
                return reject("a message this device already has (replayed)");
            }
            let own = env.sender_user == me.user;
            tx.prepare_cached(
                "INSERT INTO message (id, conversation, sender_user, sender_device, seq, sent_ms, body, received_ms, state, read_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'received', ?9)",
            )?
            .execute(params![
                env.id,
                env.conversation,
                env.sender_user,
                env.sender_device,
                env.seq,
                env.sent_ms,
                body,
                now,
                own.then_some(now)
            ])?;
            if let Some(a) = attachment {
                attachment::save(tx, &env.id, a, None, now)?;
            }
            if !own {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO receipt_out (message_id, kind) VALUES (?1, 'delivered')",
                )?
                .execute([&env.id])?;
            }
        }
        Content::Verification { txn, step } => {
            if txn.is_empty() || txn.len() > super::verify::MAX_TXN {
                return reject("a verification step with a malformed transaction id");
            }
            let fresh = tx
                .prepare_cached("INSERT OR IGNORE INTO envelope_seen (id) VALUES (?1)")?
                .execute([&env.id])?;
            if fresh == 0 {
                return reject("a verification step this device already has (replayed)");
            }
            tx.prepare_cached(
                "INSERT INTO verification_in (sender_user, sender_device, txn, step, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                env.sender_user,
                env.sender_device,
                txn,
                serde_json::to_string(step)?,
                now
            ])?;
        }
        Content::Receipt { kind, messages } => {
            if messages.len() > MAX_RECEIPT_IDS {
                return reject("a receipt naming too many messages");
            }
            let fresh = tx
                .prepare_cached("INSERT OR IGNORE INTO envelope_seen (id) VALUES (?1)")?
                .execute([&env.id])?;
            if fresh == 0 {
                return reject("a receipt this device already has (replayed)");
            }
            for id in messages {
                if env.sender_user == me.user {
                    // Read on this user's other device: read here too.
                    if *kind == ReceiptKind::Read {
                        tx.prepare_cached(
                            "UPDATE message SET read_ms = coalesce(read_ms, ?3) WHERE id = ?1 AND conversation = ?2",
                        )?
                        .execute(params![id, env.conversation, env.sent_ms])?;
                    }
                    continue;
                }
                // Only for this user's own messages of that conversation.
                let ours: bool = tx
                    .prepare_cached(
                        "SELECT 1 FROM message WHERE id = ?1 AND conversation = ?2 AND sender_user = ?3",
                    )?
                    .exists(params![id, env.conversation, me.user])?;
                if ours {
                    tx.prepare_cached(
                        "INSERT INTO message_receipt (message_id, user_id, delivered_ms, read_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (message_id, user_id) DO UPDATE SET
                           delivered_ms = coalesce(delivered_ms, excluded.delivered_ms),
                           read_ms = coalesce(read_ms, excluded.read_ms)",
                    )?
                    .execute(params![
                        id,
                        env.sender_user,
                        env.sent_ms,
                        (*kind == ReceiptKind::Read).then_some(env.sent_ms)
                    ])?;
                }
            }
        }
    }
    session::save(tx, sender_device, &s, now)?;
    if let Some(a) = new_account {
        account::save(tx, &a, now)?;
    }
    Ok(Received::Kept)
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
            if !super::takes_part(cx)? {
                return Ok(());
            }
            let me = Me {
                user: &on_server.user_id,
                device: &on_server.device_id,
            };
            let mut look = Lookup {
                cx,
                http,
                me,
                said: on_server.said.directory.as_deref(),
                got: None,
            };
            // The pull said whether anything waits: a quiet sync fetches nothing.
            if on_server.said.messages != Some(0) {
                self.receive(cx, http, &mut look, report).await?;
            }
            self.send(cx, http, &mut look, report).await?;
            look.refresh_if_changed(report).await
        })
    }
}
