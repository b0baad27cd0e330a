//! Attachments (issue 10): a file is padded, sealed with a random AES-256-GCM key (ring) and
//! uploaded as an opaque blob; its key, nonce and the blob's SHA-256 travel only inside the Olm
//! message ([`AttachmentRef`]). A download is checked against the hash before it is opened, and
//! the open checks the tag: a blob swapped or altered on the server never becomes a file.

use base64::Engine;
use polku_protocol::attachment::{blob_len, DEFAULT_MAX_ATTACHMENT_BYTES, TAG_BYTES};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// A message's attachment as this device has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub mime: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Whether the file is on this device (the sender's always is; a recipient's after fetching).
    pub on_device: bool,
}

/// What the Olm message says of an attachment: enough to fetch, check and open the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachmentRef {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// Hex SHA-256 of the sealed blob.
    pub sha256: String,
    /// Base64 of the 32-byte AES-256-GCM key.
    pub key: String,
    /// Base64 of the 12-byte nonce.
    pub nonce: String,
}

impl AttachmentRef {
    /// The key and nonce, or why they are not a 32-byte key and a 12-byte nonce.
    fn secret(&self) -> std::result::Result<([u8; 32], [u8; 12]), &'static str> {
        let key = B64
            .decode(&self.key)
            .map_err(|_| "attachment key not base64")?;
        let nonce = B64
            .decode(&self.nonce)
            .map_err(|_| "attachment nonce not base64")?;
        match (key.try_into(), nonce.try_into()) {
            (Ok(k), Ok(n)) => Ok((k, n)),
            _ => Err("attachment key or nonce of the wrong length"),
        }
    }

    /// Whether a received reference is well formed (what the receiver checks before keeping it).
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        self.secret()?;
        if uuid::Uuid::parse_str(&self.id).is_err() {
            return Err("attachment id not a UUID");
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("attachment hash not a SHA-256");
        }
        if check_name(&self.name).is_err() || check_mime(&self.mime).is_err() {
            return Err("attachment name or type malformed");
        }
        if self.size == 0 || self.size > MAX_RECEIVED_BYTES {
            return Err("attachment size out of range");
        }
        Ok(())
    }
}

/// The largest attachment a device accepts to receive (a server may be set to take larger files
/// than the default; beyond this a device would not hold it in memory).
const MAX_RECEIVED_BYTES: u64 = 512 * 1024 * 1024;

pub(crate) fn check_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if name.trim().is_empty()
        || n > 255
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(Error::validation(
            "name",
            name,
            "a file name of 1–255 characters without path separators or control characters",
        ));
    }
    Ok(())
}

pub(crate) fn check_mime(mime: &str) -> Result<()> {
    let ok = mime.len() <= 100
        && mime.split_once('/').is_some_and(|(t, s)| {
            let tok = |x: &str| {
                !x.is_empty()
                    && x.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
            };
            tok(t) && tok(s)
        });
    if !ok {
        return Err(Error::validation(
            "mime",
            mime,
            "a media type such as image/jpeg or application/pdf (at most 100 characters)",
        ));
    }
    Ok(())
}

/// The file's media type from its name's extension (what the CLI and shells send by default).
pub fn guess_mime(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

fn sealing_key(key: &[u8]) -> Result<LessSafeKey> {
    let k = UnboundKey::new(&AES_256_GCM, key)
        .map_err(|_| Error::Storage("an attachment key of the wrong length".into()))?;
    Ok(LessSafeKey::new(k))
}

/// Seals `data` (padded with zeros to whole units) under `key` and `nonce`: the same inputs give
/// the same blob, so the sender keeps only the file and seals it again to upload.
pub(crate) fn seal_with(key: &[u8], nonce: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let mut blob = Vec::with_capacity(blob_len(data.len()));
    blob.extend_from_slice(data);
    blob.resize(blob_len(data.len()) - TAG_BYTES, 0);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::Storage("an attachment nonce of the wrong length".into()))?;
    sealing_key(key)?
        .seal_in_place_append_tag(nonce, Aad::empty(), &mut blob)
        .map_err(|_| Error::Storage("an attachment could not be sealed".into()))?;
    Ok(blob)
}

/// The blob of `data` under the key and nonce of `r` (what the sender uploads).
pub(crate) fn seal(r: &AttachmentRef, data: &[u8]) -> Result<Vec<u8>> {
    let (key, nonce) = r.secret().map_err(|e| Error::Storage(e.into()))?;
    seal_with(&key, &nonce, data)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a downloaded blob is not the attachment (the hash is checked before the blob is opened).
pub(crate) fn open(
    r: &AttachmentRef,
    mut blob: Vec<u8>,
) -> std::result::Result<Vec<u8>, &'static str> {
    if sha256_hex(&blob) != r.sha256 {
        return Err("the downloaded attachment does not match its SHA-256");
    }
    let (key, nonce) = r.secret()?;
    let nonce = Nonce::assume_unique_for_key(nonce);
    let k = sealing_key(&key).map_err(|_| "attachment key length")?;
    let plain = k
        .open_in_place(nonce, Aad::empty(), &mut blob)
        .map_err(|_| "the attachment does not open with its key")?;
    let size = usize::try_from(r.size).map_err(|_| "attachment size")?;
    if size > plain.len() || plain[size..].iter().any(|b| *b != 0) {
        return Err("the attachment's padding is altered");
    }
    Ok(plain[..size].to_vec())
}

/// A new attachment of `data` to store with its message: a fresh key and nonce, and the hash of
/// the blob they make.
pub(crate) fn new_ref(name: &str, mime: &str, data: &[u8]) -> Result<AttachmentRef> {
    check_name(name)?;
    check_mime(mime)?;
    if data.is_empty() || data.len() > DEFAULT_MAX_ATTACHMENT_BYTES {
        return Err(Error::validation(
            "file",
            format!("{} bytes", data.len()),
            format!("1–{DEFAULT_MAX_ATTACHMENT_BYTES} bytes"),
        ));
    }
    let rng = SystemRandom::new();
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    rng.fill(&mut key)
        .and_then(|_| rng.fill(&mut nonce))
        .map_err(|_| Error::Storage("no randomness for an attachment key".into()))?;
    let blob = seal_with(&key, &nonce, data)?;
    Ok(AttachmentRef {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        mime: mime.to_owned(),
        size: data.len() as u64,
        sha256: sha256_hex(&blob),
        key: B64.encode(key),
        nonce: B64.encode(nonce),
    })
}

/// Keeps an attachment of message `message_id`; `data` is the file when this device has it.
pub(crate) fn save(
    tx: &Transaction<'_>,
    message_id: &str,
    r: &AttachmentRef,
    data: Option<&[u8]>,
    now: i64,
) -> Result<()> {
    let (key, nonce) = r.secret().map_err(|e| Error::Storage(e.into()))?;
    tx.prepare_cached(
        "INSERT INTO attachment (id, message_id, name, mime, size, sha256, key, nonce, data, fetched_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        r.id,
        message_id,
        r.name,
        r.mime,
        r.size as i64,
        r.sha256,
        key,
        nonce,
        data,
        data.map(|_| now)
    ])?;
    Ok(())
}

/// Message `message_id`'s attachment as its Olm message carries it, and whether the file is here.
fn load(c: &rusqlite::Connection, message_id: &str) -> Result<Option<(AttachmentRef, bool)>> {
    Ok(c.prepare_cached(
        "SELECT id, name, mime, size, sha256, key, nonce, data IS NOT NULL FROM attachment WHERE message_id = ?1",
    )?
    .query_row([message_id], |r| {
        let a = AttachmentRef {
            id: r.get(0)?,
            name: r.get(1)?,
            mime: r.get(2)?,
            size: r.get::<_, i64>(3)? as u64,
            sha256: r.get(4)?,
            key: B64.encode(r.get::<_, Vec<u8>>(5)?),
            nonce: B64.encode(r.get::<_, Vec<u8>>(6)?),
        };
        Ok((a, r.get(7)?))
    })
    .optional()?)
}

/// The reference of message `message_id`'s attachment, as its Olm message carries it.
pub(crate) fn of_message(
    c: &rusqlite::Connection,
    message_id: &str,
) -> Result<Option<AttachmentRef>> {
    Ok(load(c, message_id)?.map(|(a, _)| a))
}

/// What a message list shows of message `message_id`'s attachment.
pub(crate) fn shown(c: &rusqlite::Connection, message_id: &str) -> Result<Option<Attachment>> {
    Ok(load(c, message_id)?.map(|(a, on_device)| Attachment {
        id: a.id,
        name: a.name,
        mime: a.mime,
        size: a.size,
        on_device,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polku_protocol::attachment::{check_blob_len, PAD_UNIT};
    use polku_protocol::mutation::Mutator;

    #[test]
    fn a_sealed_attachment_opens_only_unaltered() {
        let file = b"%PDF-1.7 lab results: HbA1c 53 mmol/mol".repeat(500);
        let r = new_ref("lab.pdf", "application/pdf", &file).unwrap();
        r.check().unwrap();
        let key = B64.decode(&r.key).unwrap();
        let nonce = B64.decode(&r.nonce).unwrap();
        let blob = seal_with(&key, &nonce, &file).unwrap();
        check_blob_len(blob.len(), DEFAULT_MAX_ATTACHMENT_BYTES).unwrap();
        assert_eq!(blob.len() % PAD_UNIT, TAG_BYTES);
        assert_eq!(open(&r, blob.clone()).unwrap(), file);
        assert!(!blob.windows(9).any(|w| w == b"lab resul"));
        // Every altered byte, at a stride, is refused by the hash; with the hash forged to
        // match, by the tag.
        for i in (0..blob.len()).step_by(997) {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                open(&r, bad.clone()).unwrap_err(),
                "the downloaded attachment does not match its SHA-256"
            );
            let forged = AttachmentRef {
                sha256: sha256_hex(&bad),
                ..r.clone()
            };
            assert!(open(&forged, bad).is_err(), "byte {i}");
        }
        // Another key does not open it either.
        let other = new_ref("lab.pdf", "application/pdf", &file).unwrap();
        assert!(open(
            &AttachmentRef {
                sha256: r.sha256.clone(),
                ..other
            },
            blob
        )
        .is_err());
    }

    #[test]
    fn attachments_are_refused_with_the_rule() {
        let e = new_ref("x.bin", "application/octet-stream", &[]).unwrap_err();
        assert!(e.to_string().contains("1–10485760 bytes"), "{e}");
        let e = new_ref("../etc/passwd", "text/plain", b"x").unwrap_err();
        assert!(e.to_string().contains("path separators"), "{e}");
        let e = new_ref("a.txt", "text", b"x").unwrap_err();
        assert!(e.to_string().contains("media type"), "{e}");
        assert_eq!(guess_mime("Haava.JPG"), "image/jpeg");
    }

    /// Seeded mutations of an attachment reference (it arrives inside a decrypted envelope from
    /// another device): parsing and checking never panic, and what passes is well formed.
    #[test]
    fn mutated_attachment_references_parse_or_are_refused() {
        let r = new_ref("haava.jpg", "image/jpeg", &[7u8; 3000]).unwrap();
        let json = serde_json::to_vec(&r).unwrap();
        let mut m = Mutator::new(0x5eed_a77a);
        let mut parsed = 0;
        for _ in 0..20_000 {
            let bytes = m.mutate(&json);
            if let Ok(x) = serde_json::from_slice::<AttachmentRef>(&bytes) {
                parsed += 1;
                if x.check().is_ok() {
                    assert_eq!(B64.decode(&x.key).unwrap().len(), 32);
                    assert!(x.size > 0);
                }
            }
        }
        assert!(parsed > 1000, "{parsed}");
    }
}
