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
mod envelope;
mod exchange;
mod publish;
mod session;

pub(crate) use exchange::MESSAGE_RELAY;
pub(crate) use publish::KEY_PUBLISHER;

use polku_protocol::keys::IdentityKeys;
use rusqlite::params;
use serde::Serialize;

use crate::context::Context;
use crate::error::{Error, Result};

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
    /// `queued` (on this device, not yet encrypted), `sending`, `sent`, `received`, or
    /// `undeliverable` (written to a conversation this user is not, or no longer, a member of).
    pub state: String,
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
}

impl Messaging<'_> {
    /// Writes a message to `conversation` (a citizen's id: their own as a citizen, one in their
    /// care as a professional). Works offline: it is encrypted and sent on the next sync.
    pub fn send(&self, conversation: &str, body: &str) -> Result<Message> {
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
        let now = self.cx.clock.now().timestamp_millis();
        let id = uuid::Uuid::now_v7().to_string();
        self.cx.store.write(|tx| {
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
            Ok(Message {
                id: id.clone(),
                conversation: conversation.to_owned(),
                sender_user: user.clone(),
                sender_device: device.clone(),
                seq,
                sent_ms: now,
                body: body.to_owned(),
                state: "queued".into(),
            })
        })
    }

    /// The messages of `conversation` on this device, oldest first.
    pub fn messages(&self, conversation: &str) -> Result<Vec<Message>> {
        self.cx.store.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, conversation, sender_user, sender_device, seq, sent_ms, body, state FROM message
                 WHERE conversation = ?1 ORDER BY sent_ms, sender_device, seq",
            )?;
            let rows = stmt.query_map([conversation], |r| {
                Ok(Message {
                    id: r.get(0)?,
                    conversation: r.get(1)?,
                    sender_user: r.get(2)?,
                    sender_device: r.get(3)?,
                    seq: r.get(4)?,
                    sent_ms: r.get(5)?,
                    body: r.get(6)?,
                    state: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
        })
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
