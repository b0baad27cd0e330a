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
        /// A sealed file: its blob waits on the server; its key and hash are only here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<super::attachment::AttachmentRef>,
    },
    Receipt {
        kind: ReceiptKind,
        messages: Vec<String>,
    },
    /// A step of verifying the recipient device (`verify.rs`).
    Verification {
        txn: String,
        step: super::verify::Step,
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
    // Exactly the bucket `pad` chose: one Olm message has one padded form (the padding is not
    // under Olm's authentication, so its length is checked here).
    if PAD_BUCKETS.iter().copied().find(|b| *b >= len + 5) != Some(bytes.len()) {
        return Err("not padded to its bucket");
    }
    if bytes[5 + len..].iter().any(|b| *b != 0) {
        return Err("padding altered");
    }
    OlmMessage::from_parts(bytes[0] as usize, body).map_err(|_| "not an Olm message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use polku_protocol::mutation::Mutator;
    use vodozemac::olm::{Account, Session, SessionConfig};

    fn envelope(body: &str) -> Envelope {
        Envelope {
            v: 1,
            conversation: "c1".into(),
            sender_user: "u1".into(),
            sender_device: "d1".into(),
            recipient_device: "d2".into(),
            id: "0f0e0d0c-0b0a-4908-8706-050403020100".into(),
            seq: 2,
            sent_ms: 1_764_000_000_000,
            content: Content::Text {
                body: body.into(),
                attachment: None,
            },
        }
    }

    /// Alice's session with Bob and Bob's with Alice, after Bob took Alice's first message.
    fn pair() -> (Session, Session) {
        let alice = Account::new();
        let mut bob = Account::new();
        bob.generate_one_time_keys(1);
        let otk = *bob.one_time_keys().values().next().unwrap();
        let mut a = alice
            .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
            .unwrap();
        let OlmMessage::PreKey(first) = a.encrypt(b"hello").unwrap() else {
            panic!("the first message is a pre-key message")
        };
        let b = bob
            .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &first)
            .unwrap()
            .session;
        (a, b)
    }

    fn copy(s: &Session) -> Session {
        Session::from_pickle(s.pickle())
    }

    /// Seeded mutations of a padded ciphertext, before and after base64: nothing panics, and no
    /// mutated ciphertext decrypts (Olm authenticates the message, `session::open` the pre-key
    /// wrapper's keys, `unpad` the padding). The genuine one still does afterwards.
    #[test]
    fn no_mutated_ciphertext_decrypts() {
        let (mut a, mut b) = pair();
        let plain = serde_json::to_vec(&envelope("Aamuarvo 3,1")).unwrap();
        // A pre-key message (Bob has not answered yet), then, after his answer, a normal one.
        let first = a.encrypt(&plain).unwrap();
        mutations_never_open(&first, &b, &plain, 0x5eed_0003);
        let reply = b.encrypt(b"ok").unwrap();
        a.decrypt(&reply).unwrap();
        let normal = a.encrypt(&plain).unwrap();
        assert!(matches!(normal, OlmMessage::Normal(_)));
        mutations_never_open(&normal, &b, &plain, 0x5eed_0005);
    }

    fn mutations_never_open(msg: &OlmMessage, receiver: &Session, plain: &[u8], seed: u64) {
        let padded = pad(msg).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let raw = b64.decode(&padded.0).unwrap();
        let mut m = Mutator::new(seed);
        let mut opened = 0;
        for round in 0..4_000 {
            let text = if round % 2 == 0 {
                b64.encode(m.mutate(&raw))
            } else {
                String::from_utf8_lossy(&m.mutate(padded.0.as_bytes())).into_owned()
            };
            if text == padded.0 {
                continue;
            }
            if let Ok(inner) = unpad(&Ciphertext(text)) {
                opened += 1;
                assert!(
                    super::super::session::open(&mut copy(receiver), &inner).is_none(),
                    "seed {seed} round {round}: a mutated ciphertext decrypted"
                );
            }
        }
        assert!(opened > 100, "mutations reach the decryption: {opened}");
        let genuine = unpad(&padded).unwrap();
        assert_eq!(
            super::super::session::open(&mut copy(receiver), &genuine).as_deref(),
            Some(plain)
        );
    }

    /// Seeded mutations of a decrypted envelope: it parses or is refused, never panics, and
    /// unknown or missing fields are refused.
    #[test]
    fn mutated_envelopes_parse_or_are_refused() {
        let json = serde_json::to_vec(&envelope("Söin rypälesokeria.")).unwrap();
        let receipt = serde_json::to_vec(&Envelope {
            content: Content::Receipt {
                kind: ReceiptKind::Read,
                messages: vec!["m1".into(), "m2".into()],
            },
            ..envelope("")
        })
        .unwrap();
        let mut m = Mutator::new(0x5eed_0004);
        let mut parsed = 0;
        for _ in 0..20_000 {
            for base in [&json, &receipt] {
                if serde_json::from_slice::<Envelope>(&m.mutate(base)).is_ok() {
                    parsed += 1;
                }
            }
        }
        assert!(parsed > 100, "{parsed}");
        let mut extra: serde_json::Value = serde_json::from_slice(&json).unwrap();
        extra["forwarded_to"] = "d9".into();
        assert!(serde_json::from_value::<Envelope>(extra).is_err());
        let mut missing: serde_json::Value = serde_json::from_slice(&json).unwrap();
        missing.as_object_mut().unwrap().remove("recipient_device");
        assert!(serde_json::from_value::<Envelope>(missing).is_err());
    }
}
