//! Attachments of end-to-end encrypted messages (issue 10): a photo of a wound, a PDF of lab
//! results. The device seals the file with a random AES-256-GCM key (ring) and uploads the sealed
//! blob; the key, nonce and SHA-256 of the blob travel only inside the Olm message. The server
//! stores opaque blobs of whole padding units, hands one only to the devices it was uploaded for,
//! and deletes it when they all fetched it or after a retention period.

use serde::{Deserialize, Serialize};

/// The largest attachment (the file itself) a server takes unless configured otherwise.
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
/// How long a server keeps a blob not every recipient device fetched, unless configured otherwise.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;
/// A file is padded with zeros to a whole number of these before sealing, so a blob's size tells
/// the server no more than this.
pub const PAD_UNIT: usize = 16 * 1024;
/// AES-256-GCM's tag, after the sealed bytes.
pub const TAG_BYTES: usize = 16;

/// The size of the sealed blob of a file of `len` bytes.
pub fn blob_len(len: usize) -> usize {
    len.max(1).div_ceil(PAD_UNIT) * PAD_UNIT + TAG_BYTES
}

/// Whether `n` bytes can be the blob of a file of at most `max` bytes, or the rule it breaks.
pub fn check_blob_len(n: usize, max: usize) -> Result<(), String> {
    if n < TAG_BYTES + PAD_UNIT || (n - TAG_BYTES) % PAD_UNIT != 0 || n > blob_len(max) {
        return Err(format!(
            "a sealed attachment is a whole number of {PAD_UNIT}-byte units plus a {TAG_BYTES}-byte tag, \
             at most {} bytes (files up to {max} bytes)",
            blob_len(max)
        ));
    }
    Ok(())
}

/// `PUT /v1/attachments/{id}?conversation=…` answers this (again, the same, for a retry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub id: String,
    /// Hex SHA-256 of the blob as the server stored it.
    pub sha256: String,
    /// Devices it waits for.
    pub recipients: u32,
}

/// `POST /v1/attachments/{id}/fetched`: the device has it; the server forgets the blob when every
/// recipient device said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedResponse {
    /// The blob is gone from the server now.
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_whole_padding_units_plus_a_tag() {
        assert_eq!(blob_len(1), PAD_UNIT + TAG_BYTES);
        assert_eq!(blob_len(PAD_UNIT), PAD_UNIT + TAG_BYTES);
        assert_eq!(blob_len(PAD_UNIT + 1), 2 * PAD_UNIT + TAG_BYTES);
        let max = DEFAULT_MAX_ATTACHMENT_BYTES;
        check_blob_len(blob_len(max), max).unwrap();
        check_blob_len(blob_len(1), max).unwrap();
        for bad in [
            0,
            15,
            TAG_BYTES,
            PAD_UNIT,
            PAD_UNIT + TAG_BYTES + 1,
            blob_len(max + 1),
        ] {
            let e = check_blob_len(bad, max).unwrap_err();
            assert!(e.contains("16384-byte units"), "{e}");
        }
    }
}
