//! What travels inside each Olm ciphertext, and how a ciphertext is padded for the relay.
//!
//! The envelope names the conversation, the sender's user and device, the recipient device, the
//! message's id, the sender's sequence number and when it was sent: a receiver that finds any of
//! them different from what the relay says, or an id it has already seen, rejects the message
//! (a re-routed, swapped or replayed ciphertext never becomes a message). Receipts travel the
//! same way: delivery and reading are end-to-end encrypted too.

use base64::Engine;
use polku_protocol::relay::{Ciphertext, PAD_BUCKETS};
use serde::{Deserialize, Serialize};
use vodozemac::olm::OlmMessage;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Envelope {
    pub v: u32,
    pub conversation: String,
    pub sender_user: String,
    pub sender_device: String,
    pub recipient_device: String,
    pub id: String,
    pub seq: i64,
    pub sent_ms: i64,
    pub content: Content,
}

/// What an envelope carries: a message's text, or receipts for messages of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Content {
    Text {
        body: String,
    },
    Receipt {
        kind: ReceiptKind,
        messages: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReceiptKind {
    Delivered,
    Read,
}

impl ReceiptKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivered" => Some(ReceiptKind::Delivered),
            "read" => Some(ReceiptKind::Read),
            _ => None,
        }
    }
}

/// Most message ids one receipt names (a receipt stays within the smallest padding buckets).
pub(crate) const MAX_RECEIPT_IDS: usize = 100;

/// An Olm message as the relay takes it: `[type][length u32 BE][message][zeros]` up to the next
/// padding bucket, in unpadded base64.
pub(crate) fn pad(msg: &OlmMessage) -> Result<Ciphertext> {
    let (ty, bytes) = msg.to_parts();
    let need = bytes.len() + 5;
    let bucket = PAD_BUCKETS
        .iter()
        .copied()
        .find(|b| *b >= need)
        .ok_or_else(|| Error::validation("message", format!("{need} bytes"), "at most 128 KiB"))?;
    let mut out = Vec::with_capacity(bucket);
    out.push(ty as u8);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    out.resize(bucket, 0);
    Ok(Ciphertext(
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(out),
    ))
}

/// The Olm message inside a relayed ciphertext, or why it is not one.
pub(crate) fn unpad(c: &Ciphertext) -> std::result::Result<OlmMessage, &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&c.0)
        .map_err(|_| "not base64")?;
    if bytes.len() < 5 {
        return Err("too short");
    }
    let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let body = bytes.get(5..5 + len).ok_or("length beyond the padding")?;
    if bytes[5 + len..].iter().any(|b| *b != 0) {
        return Err("padding altered");
    }
    OlmMessage::from_parts(bytes[0] as usize, body).map_err(|_| "not an Olm message")
}
