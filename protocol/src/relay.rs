//! The message relay (issue 10): the server keeps, per recipient device, an ordered queue of
//! opaque ciphertext and deletes each message once its device acknowledged it. The server never
//! sees a plaintext, and a message's length tells it no more than its padding bucket: a relayed
//! ciphertext is the unpadded base64 of exactly one of [`PAD_BUCKETS`] bytes.

use serde::{Deserialize, Serialize};

/// The sizes (bytes before base64) a relayed ciphertext may have; a device pads up to the next.
pub const PAD_BUCKETS: [usize; 5] = [512, 2 * 1024, 8 * 1024, 32 * 1024, 128 * 1024];
/// Messages in one send.
pub const MAX_MESSAGES_PER_SEND: usize = 100;
/// Messages in one fetch, at most.
pub const MAX_FETCH: u32 = 500;

/// A padded ciphertext as it travels: opaque to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ciphertext(pub String);

impl Ciphertext {
    /// Unpadded standard base64 of a padding bucket's size, or why not (the field is `ciphertext`).
    pub fn check(&self) -> Result<(), String> {
        let allowed = || {
            format!(
                "unpadded base64 of {} bytes",
                PAD_BUCKETS.map(|b| b.to_string()).join(", ")
            )
        };
        // The text length alone tells the decoded size (no decoding of 128 KB to refuse it).
        let n = self.0.len();
        if !PAD_BUCKETS.iter().any(|b| n == (b * 4).div_ceil(3)) {
            return Err(allowed());
        }
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&self.0)
            .map(|_| ())
            .map_err(|_| allowed())
    }
}

/// One copy of a message, for one recipient device. `id` is the sender's id of this copy: sending
/// it again stores it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outgoing {
    pub id: String,
    pub recipient_device: String,
    pub ciphertext: Ciphertext,
}

/// `POST /v1/messages/send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub messages: Vec<Outgoing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    /// In the recipient device's queue now.
    Queued,
    /// Already queued (or delivered) before: not stored again.
    Duplicate,
    /// A device the sender may not reach (not a conversation partner's, revoked, unknown).
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResult {
    pub id: String,
    pub status: SendStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    pub results: Vec<SendResult>,
}

/// `POST /v1/messages/fetch`: acknowledges every message up to `after` (they are deleted) and
/// returns the next ones in order. A device commits what it received and its `after` in one
/// transaction, so a crash between fetch and store loses nothing: the next fetch returns the
/// same messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    pub after: i64,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A queued message as its recipient device receives it; the sender is stamped by the server
/// from the sender's token (the device checks it against the sender inside the ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub seq: i64,
    pub id: String,
    pub sender_user: String,
    pub sender_device: String,
    pub ciphertext: Ciphertext,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    pub messages: Vec<Delivered>,
    pub more: bool,
}

/// A conversation: a citizen and the professionals assigned to them now. Its id is the citizen's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub members: Vec<String>,
}

/// `GET /v1/conversations`: the conversations the caller is a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationsResponse {
    pub conversations: Vec<Conversation>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn only_whole_padding_buckets_are_relayed() {
        let enc = |n: usize| {
            Ciphertext(base64::engine::general_purpose::STANDARD_NO_PAD.encode(vec![7u8; n]))
        };
        for b in PAD_BUCKETS {
            enc(b).check().unwrap();
            assert!(enc(b - 1).check().is_err());
            assert!(enc(b + 1).check().is_err());
        }
        let mut bad = enc(512).0;
        bad.replace_range(0..1, "*");
        assert!(Ciphertext(bad).check().is_err());
    }

    /// Seeded mutations of a send request: nothing panics, and a ciphertext that still passes
    /// the relay's check is a whole padding bucket of base64.
    #[test]
    fn mutated_send_requests_parse_or_are_refused_without_panicking() {
        let body = serde_json::to_vec(&SendRequest {
            messages: vec![Outgoing {
                id: "0f0e0d0c-0b0a-4908-8706-050403020100".into(),
                recipient_device: "d1".into(),
                ciphertext: Ciphertext(
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode([9u8; 512]),
                ),
            }],
        })
        .unwrap();
        let mut m = crate::mutation::Mutator::new(0x5eed_0002);
        let mut parsed = 0;
        for round in 0..20_000 {
            let bytes = m.mutate(&body);
            if let Ok(r) = serde_json::from_slice::<SendRequest>(&bytes) {
                parsed += 1;
                for o in r.messages {
                    if o.ciphertext.check().is_ok() {
                        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
                            .decode(&o.ciphertext.0)
                            .unwrap();
                        assert!(PAD_BUCKETS.contains(&raw.len()), "round {round}");
                    }
                }
            }
        }
        assert!(
            parsed > 1000,
            "the mutations stay near valid: {parsed} parsed"
        );
    }
}
