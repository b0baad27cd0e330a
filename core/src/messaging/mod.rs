//! End-to-end encrypted messaging between citizens and their care team (issue 10,
//! docs/messaging.md). Olm sessions per device pair (vodozemac); the server relays ciphertext
//! and keeps a directory of public keys.
//!
//! - `account.rs`: this device's Olm account; `publish.rs`: its keys kept published in the
//!   server's directory on every sync.
//! - `session.rs`: sessions with peer devices and the peers' keys as first seen;
//!   `envelope.rs`: what each ciphertext carries and its padding; `exchange.rs`: messages to and
//!   from the relay on every sync.

mod account;
mod attachment;
mod envelope;
mod exchange;
mod publish;
mod session;
mod verify;

pub use attachment::{guess_mime, Attachment};
pub(crate) use exchange::MESSAGE_RELAY;
pub(crate) use publish::KEY_PUBLISHER;
pub use verify::{Verification, VerificationRequest, VerificationState};

use polku_protocol::keys::IdentityKeys;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};

/// Whether this device takes part in conversations: an administrator's device takes part in
/// none (it publishes no keys and fetches no messages).
pub(crate) fn takes_part(cx: &Context) -> Result<bool> {
    Ok(cx.device_role()? != Some(polku_protocol::Role::Admin))
}

/// Longest message text, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;

/// A message of a conversation, as this device has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub id: String,
    /// The conversation: the citizen's id.
    pub conversation: String,
    pub sender_user: String,
    pub sender_device: String,
    /// The sender device's sequence number.
    pub seq: i64,
    pub sent_ms: i64,
    pub body: String,
    /// This user's messages: `queued` (on this device, not yet encrypted), `sending`, `held`
    /// (waiting only for devices that show changed keys or cannot be reached yet), `sent`,
    /// `delivered` (a device of another member has it), `read` (another member read it), or
    /// `undeliverable` (written to a conversation this user is not, or no longer, a member of).
    /// Others' messages: `received`.
    pub state: String,
    /// When this user read it (their own messages count as read).
    pub read_ms: Option<i64>,
    /// For this user's messages: which other members have it and have read it.
    pub receipts: Vec<Receipt>,
    /// A file sent with the message (its name is the body).
    pub attachment: Option<Attachment>,
}

/// Another member's end-to-end encrypted receipt for one of this user's messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    pub user: String,
    pub delivered_ms: Option<i64>,
    pub read_ms: Option<i64>,
}

/// A conversation as its list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationSummary {
    /// The citizen's id.
    pub id: String,
    /// The members as the server last named them (empty until the first sync).
    pub members: Vec<String>,
    /// Messages of other members this user has not read.
    pub unread: u32,
    pub messages: u32,
    pub last_sent_ms: Option<i64>,
}

/// A device of a conversation member, as this device knows its identity keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerDevice {
    pub device_id: String,
    pub user_id: String,
    /// The Ed25519 identity key this device trusts for it (what a person compares).
    pub fingerprint: String,
    pub first_seen_ms: i64,
    /// `trusted` (first seen), `verified` (compared by the user) or `identity_changed` (it shows
    /// other keys now: nothing is encrypted to it until the user accepts them).
    pub state: String,
    /// The other Ed25519 key it now shows, when changed.
    pub changed_fingerprint: Option<String>,
}

/// A received ciphertext that failed a check, and why (nothing of it was kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    pub sender_device: String,
    pub reason: String,
    pub at_ms: i64,
}

/// This device's messaging.
pub struct Messaging<'a> {
    pub(crate) cx: &'a Context,
    pub(crate) registry: &'a crate::pathway::Registry,
}

impl Messaging<'_> {
    /// Writes a message to `conversation` (a citizen's id: their own as a citizen, one in their
    /// care as a professional). Works offline: it is encrypted and sent on the next sync.
    pub fn send(&self, conversation: &str, body: &str) -> Result<Message> {
        self.compose(conversation, body, None)
    }

    /// Sends a file (a photo of a wound, a PDF of lab results) to `conversation`: sealed now with
    /// a fresh key, uploaded and announced on the next sync (works offline). `mime` defaults to a
    /// guess from the name's extension. The file is at most 10 MB.
    pub fn attach(
        &self,
        conversation: &str,
        name: &str,
        mime: Option<&str>,
        data: &[u8],
    ) -> Result<Message> {
        let mime = mime.unwrap_or_else(|| guess_mime(name));
        let r = attachment::new_ref(name, mime, data)?;
        self.compose(conversation, name, Some((&r, data)))
    }

    fn compose(
        &self,
        conversation: &str,
        body: &str,
        file: Option<(&attachment::AttachmentRef, &[u8])>,
    ) -> Result<Message> {
        let (user, device) =
            crate::sync::server_identity(&self.cx.store)?.ok_or(Error::NotEnrolled)?;
        let n = body.chars().count();
        if body.trim().is_empty() || n > MAX_BODY_CHARS {
            return Err(Error::validation(
                "body",
                format!("{n} characters"),
                format!("1–{MAX_BODY_CHARS} characters"),
            ));
        }
        if conversation.trim().is_empty() || conversation.len() > 100 {
            return Err(Error::validation(
                "conversation",
                conversation,
                "a citizen's id (1–100 characters)",
            ));
        }
        let changed: Vec<String> = self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT p.device_id FROM peer_device p JOIN conversation_member m ON m.user_id = p.user_id
                 WHERE m.conversation = ?1 AND p.changed_ms IS NOT NULL ORDER BY p.device_id",
            )?;
            let rows = stmt.query_map([conversation], |r| r.get(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        })?;
        if !changed.is_empty() {
            return Err(Error::IdentityChanged { devices: changed });
        }
        let now = self.cx.clock.now().timestamp_millis();
        let id = uuid::Uuid::now_v7().to_string();
        let message = self.cx.store.write(|tx| {
            let seq: i64 = tx.query_row(
                "SELECT coalesce(max(seq), 0) + 1 FROM message WHERE sender_device = ?1",
                [&device],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO message (id, conversation, sender_user, sender_device, seq, sent_ms, body, received_ms, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 'queued')",
                params![id, conversation, user, device, seq, now, body],
            )?;
            if let Some((r, data)) = file {
                attachment::save(tx, &id, r, Some(data), now)?;
            }
            Ok(Message {
                id: id.clone(),
                conversation: conversation.to_owned(),
                sender_user: user.clone(),
                sender_device: device.clone(),
                seq,
                sent_ms: now,
                body: body.to_owned(),
                state: "queued".into(),
                read_ms: Some(now),
                receipts: Vec::new(),
                attachment: file.map(|(r, _)| Attachment {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    mime: r.mime.clone(),
                    size: r.size,
                    on_device: true,
                }),
            })
        })?;
        if self.cx.device_role()? == Some(polku_protocol::Role::Citizen)
            && conversation == self.cx.subject
        {
            crate::pathway::Pathways {
                cx: self.cx,
                registry: self.registry,
            }
            .message_sent()?;
        }
        Ok(message)
    }

    /// The messages of `conversation` on this device, oldest first.
    pub fn messages(&self, conversation: &str) -> Result<Vec<Message>> {
        self.page(conversation, None, u32::MAX)
    }

    /// At most `limit` messages of `conversation` written before message `before` (the newest
    /// when `None`), oldest first: what a screen scrolled back shows.
    pub fn page(
        &self,
        conversation: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let user = crate::sync::server_identity(&self.cx.store)?.map(|(u, _)| u);
        self.cx.store.read(|c| {
            let bound: Option<(i64, String, i64)> = match before {
                None => None,
                Some(id) => Some(
                    c.prepare_cached("SELECT sent_ms, sender_device, seq FROM message WHERE id = ?1 AND conversation = ?2")?
                        .query_row(params![id, conversation], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?
                        .ok_or_else(|| Error::NotFound { what: "message", id: id.to_owned() })?,
                ),
            };
            let mut stmt = c.prepare_cached(
                "SELECT id, conversation, sender_user, sender_device, seq, sent_ms, body, state, read_ms FROM message
                 WHERE conversation = ?1 AND (?2 IS NULL OR (sent_ms, sender_device, seq) < (?2, ?3, ?4))
                 ORDER BY sent_ms DESC, sender_device DESC, seq DESC LIMIT ?5",
            )?;
            let (b_ms, b_dev, b_seq) = match &bound {
                Some((m, d, q)) => (Some(*m), Some(d.as_str()), Some(*q)),
                None => (None, None, None),
            };
            let rows = stmt.query_map(params![conversation, b_ms, b_dev, b_seq, limit as i64], |r| {
                Ok(Message {
                    id: r.get(0)?,
                    conversation: r.get(1)?,
                    sender_user: r.get(2)?,
                    sender_device: r.get(3)?,
                    seq: r.get(4)?,
                    sent_ms: r.get(5)?,
                    body: r.get(6)?,
                    state: r.get(7)?,
                    read_ms: r.get(8)?,
                    receipts: Vec::new(),
                    attachment: None,
                })
            })?;
            let mut out = rows.collect::<std::result::Result<Vec<_>, _>>()?;
            out.reverse();
            for m in out.iter_mut() {
                m.attachment = attachment::shown(c, &m.id)?;
            }
            let mut receipts = c.prepare_cached(
                "SELECT user_id, delivered_ms, read_ms FROM message_receipt WHERE message_id = ?1 ORDER BY user_id",
            )?;
            for m in out.iter_mut().filter(|m| Some(&m.sender_user) == user.as_ref()) {
                m.receipts = receipts
                    .query_map([&m.id], |r| {
                        Ok(Receipt {
                            user: r.get(0)?,
                            delivered_ms: r.get(1)?,
                            read_ms: r.get(2)?,
                        })
                    })?
                    .collect::<std::result::Result<_, _>>()?;
                if m.state == "sent" || m.state == "received" {
                    if m.receipts.iter().any(|r| r.read_ms.is_some()) {
                        m.state = "read".into();
                    } else if !m.receipts.is_empty() {
                        m.state = "delivered".into();
                    }
                }
            }
            Ok(out)
        })
    }

    /// The file of attachment `id`: from this device when it has it, otherwise downloaded, checked
    /// against the SHA-256 its message named, opened and kept (then the server is told this device
    /// has it, so it can delete the blob once every recipient has). Needs the server the first
    /// time only.
    pub async fn fetch_attachment(&self, id: &str) -> Result<Vec<u8>> {
        let not_found = || Error::NotFound {
            what: "attachment",
            id: id.to_owned(),
        };
        let (message_id, data): (String, Option<Vec<u8>>) = self
            .cx
            .store
            .read(|c| {
                Ok(
                    c.prepare_cached("SELECT message_id, data FROM attachment WHERE id = ?1")?
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?,
                )
            })?
            .ok_or_else(not_found)?;
        if let Some(data) = data {
            return Ok(data);
        }
        let r = self
            .cx
            .store
            .read(|c| attachment::of_message(c, &message_id))?
            .ok_or_else(not_found)?;
        let http = crate::sync::http_for(self.cx)?;
        let blob = http.get_bytes(&format!("/v1/attachments/{id}")).await?;
        let data = attachment::open(&r, blob).map_err(|why| Error::Crypto(why.into()))?;
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            tx.execute(
                "UPDATE attachment SET data = ?2, fetched_ms = ?3 WHERE id = ?1",
                params![id, data, now],
            )?;
            Ok(())
        })?;
        // Kept here first: if this is lost, the server deletes the blob after its retention.
        let _: std::result::Result<(polku_protocol::attachment::FetchedResponse, usize), _> = http
            .post(
                &format!("/v1/attachments/{id}/fetched"),
                &serde_json::json!({}),
            )
            .await;
        Ok(data)
    }

    /// Marks every message of `conversation` read; read receipts go to their senders (and this
    /// user's other devices) on the next sync. Returns how many were unread.
    pub fn mark_read(&self, conversation: &str) -> Result<u32> {
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "UPDATE message SET read_ms = ?2 WHERE conversation = ?1 AND read_ms IS NULL AND state = 'received'
                     RETURNING id",
                )?;
                let rows = stmt.query_map(params![conversation, now], |r| r.get(0))?;
                rows.collect::<std::result::Result<_, _>>()?
            };
            for id in &ids {
                tx.prepare_cached("INSERT OR IGNORE INTO receipt_out (message_id, kind) VALUES (?1, 'read')")?
                    .execute([id])?;
            }
            Ok(ids.len() as u32)
        })
    }

    /// Every conversation this device knows, those with unread messages first, then the most
    /// recent.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "WITH ids AS (SELECT conversation AS id FROM conversation_member
                              UNION SELECT conversation FROM message)
                 SELECT ids.id,
                   (SELECT count(*) FROM message m WHERE m.conversation = ids.id AND m.read_ms IS NULL AND m.state = 'received'),
                   (SELECT count(*) FROM message m WHERE m.conversation = ids.id),
                   (SELECT max(sent_ms) FROM message m WHERE m.conversation = ids.id),
                   (SELECT group_concat(user_id, char(10)) FROM (SELECT user_id FROM conversation_member cm
                      WHERE cm.conversation = ids.id ORDER BY user_id))
                 FROM ids",
            )?;
            let rows = stmt.query_map([], |r| {
                let members: Option<String> = r.get(4)?;
                Ok(ConversationSummary {
                    id: r.get(0)?,
                    unread: r.get(1)?,
                    messages: r.get(2)?,
                    last_sent_ms: r.get(3)?,
                    members: members
                        .map(|m| m.split('\n').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?;
            let mut out = rows.collect::<std::result::Result<Vec<_>, _>>()?;
            out.sort_by(|a, b| {
                (b.unread > 0, b.last_sent_ms, &a.id).cmp(&(a.unread > 0, a.last_sent_ms, &b.id))
            });
            Ok(out)
        })
    }

    /// The devices of the members of this user's conversations, as this device knows them.
    pub fn devices(&self) -> Result<Vec<PeerDevice>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT device_id, user_id, ed25519, first_seen_ms, changed_ms IS NOT NULL, verified_ms IS NOT NULL, changed_ed25519
                 FROM peer_device ORDER BY user_id, first_seen_ms, device_id",
            )?;
            let rows = stmt.query_map([], |r| {
                let (changed, verified): (bool, bool) = (r.get(4)?, r.get(5)?);
                Ok(PeerDevice {
                    device_id: r.get(0)?,
                    user_id: r.get(1)?,
                    fingerprint: r.get(2)?,
                    first_seen_ms: r.get(3)?,
                    state: if changed {
                        "identity_changed"
                    } else if verified {
                        "verified"
                    } else {
                        "trusted"
                    }
                    .into(),
                    changed_fingerprint: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    /// Accepts the new identity keys a device now shows (after its owner confirmed them): what
    /// waited for it is encrypted on the next sync, and what it sent is opened now.
    pub fn accept_identity(&self, device_id: &str) -> Result<()> {
        let (user, device) =
            crate::sync::server_identity(&self.cx.store)?.ok_or(Error::NotEnrolled)?;
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            if !session::accept_change(tx, device_id)? {
                return Err(Error::NotFound {
                    what: "device with changed identity keys",
                    id: device_id.to_owned(),
                });
            }
            exchange::release_held(
                tx,
                exchange::Me {
                    user: &user,
                    device: &device,
                },
                now,
            )
        })
    }

    /// Wakes after every committed write of this device (a received message, a receipt, a state
    /// change): a screen reads `conversations` or `page` again and compares.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cx.store.watch_writes()
    }

    /// Received ciphertexts that failed a check, newest last.
    pub fn rejected(&self) -> Result<Vec<Rejected>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT sender_device, reason, at_ms FROM message_rejected ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Rejected {
                    sender_device: r.get(0)?,
                    reason: r.get(1)?,
                    at_ms: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
    }

    /// This device's identity keys as the server has (or will have) them, once it has an
    /// account (made on its first sync after enrolling).
    pub fn identity(&self) -> Result<Option<IdentityKeys>> {
        let (user, device) = match crate::sync::server_identity(&self.cx.store)? {
            Some(x) => x,
            None => return Ok(None),
        };
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            let s = account::load_or_create(tx, now)?;
            Ok(Some(account::identity(&s.account, &user, &device)))
        })
    }
}
