//! The key directory (issue 10): each device publishes its Olm identity keys (Curve25519 and
//! Ed25519), one-time keys and a fallback key, each signed with its Ed25519 key; a device that
//! starts an Olm session with another claims one of its keys. Keys travel as vodozemac prints
//! them (unpadded base64). The server checks every signature before it stores a key, and the
//! claiming device checks them again: neither trusts the other (docs/messaging.md).

use serde::{Deserialize, Serialize};

/// One-time keys a device keeps on the server.
pub const ONE_TIME_KEYS_TARGET: usize = 50;
/// Below this many (two thirds of the target) a device uploads more on its next sync.
pub const ONE_TIME_KEYS_LOW: usize = ONE_TIME_KEYS_TARGET * 2 / 3;
/// Keys in one upload.
pub const MAX_KEYS_PER_UPLOAD: usize = 100;
/// Devices in one claim or query.
pub const MAX_DEVICES_PER_CLAIM: usize = 200;

/// A device's long-term keys, bound to its user and device id by its Ed25519 signature over
/// [`identity_statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityKeys {
    pub curve25519: String,
    pub ed25519: String,
    pub signature: String,
}

/// A one-time or fallback Curve25519 key, signed over [`key_statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedKey {
    pub key_id: String,
    pub key: String,
    pub signature: String,
}

/// `POST /v1/keys/upload`: the identity keys once, then more one-time keys and a new fallback key
/// whenever the device makes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysUpload {
    #[serde(default)]
    pub identity: Option<IdentityKeys>,
    #[serde(default)]
    pub one_time_keys: Vec<SignedKey>,
    #[serde(default)]
    pub fallback_key: Option<SignedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysUploadResponse {
    /// One-time keys the server now holds for this device.
    pub one_time_keys: u32,
}

/// A device of someone the caller may talk to, with its identity keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    pub user_id: String,
    pub device_id: String,
    pub identity: IdentityKeys,
}

/// `GET /v1/keys/devices`: the published devices of everyone the caller shares a conversation
/// with (their own other devices included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesResponse {
    pub devices: Vec<DeviceKeys>,
}

/// `POST /v1/keys/claim`: one key of each named device, to start a session with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysClaim {
    pub devices: Vec<String>,
}

/// A claimed key: a one-time key, never handed out again, or (when they ran out) the device's
/// fallback key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    pub device: DeviceKeys,
    pub key: SignedKey,
    pub fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysClaimResponse {
    pub claimed: Vec<ClaimedKey>,
    /// Devices the caller may not reach, or that published no keys.
    pub unavailable: Vec<String>,
}

/// What a device's Ed25519 key signs to publish its identity keys: both keys bound to the user
/// and device the server enrolled (a key copied to another device id does not verify).
pub fn identity_statement(
    user_id: &str,
    device_id: &str,
    curve25519: &str,
    ed25519: &str,
) -> String {
    format!("polku-identity-keys-v1\n{user_id}\n{device_id}\n{curve25519}\n{ed25519}")
}

/// What a device signs for one of its one-time or fallback keys.
pub fn key_statement(device_id: &str, key: &SignedKey, fallback: bool) -> String {
    let kind = if fallback { "fallback" } else { "one-time" };
    format!(
        "polku-{kind}-key-v1\n{device_id}\n{}\n{}",
        key.key_id, key.key
    )
}

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> KeyError {
    KeyError {
        field,
        reason: reason.into(),
    }
}

/// Unpadded standard base64 of exactly `len` bytes.
fn b64(field: &'static str, text: &str, len: usize) -> Result<Vec<u8>, KeyError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| bad(field, "unpadded base64"))?;
    if bytes.len() != len {
        return Err(bad(field, format!("{len} bytes in unpadded base64")));
    }
    Ok(bytes)
}

/// Checks that `signature` is `ed25519`'s signature of `statement`.
pub fn verify(ed25519: &str, statement: &str, signature: &str) -> Result<(), KeyError> {
    let public = b64("ed25519", ed25519, 32)?;
    let sig = b64("signature", signature, 64)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(statement.as_bytes(), &sig)
        .map_err(|_| {
            bad(
                "signature",
                "not a signature of these keys by this device's Ed25519 key",
            )
        })
}

/// Checks a device's identity keys: well-formed and signed for this user and device.
pub fn check_identity(user_id: &str, device_id: &str, id: &IdentityKeys) -> Result<(), KeyError> {
    b64("curve25519", &id.curve25519, 32)?;
    verify(
        &id.ed25519,
        &identity_statement(user_id, device_id, &id.curve25519, &id.ed25519),
        &id.signature,
    )
}

/// Checks a one-time or fallback key: well-formed and signed by the device's Ed25519 key.
pub fn check_key(
    device_id: &str,
    ed25519: &str,
    key: &SignedKey,
    fallback: bool,
) -> Result<(), KeyError> {
    if key.key_id.is_empty() || key.key_id.len() > 64 {
        return Err(bad("key_id", "1–64 characters"));
    }
    b64("key", &key.key, 32)?;
    verify(
        ed25519,
        &key_statement(device_id, key, fallback),
        &key.signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::signature::KeyPair;

    fn b64e(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
    }

    /// A device's Ed25519 key (ring's, standing in for vodozemac's: same algorithm, same bytes).
    fn device() -> ring::signature::Ed25519KeyPair {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn identity_keys_verify_only_for_their_user_and_device() {
        let d = device();
        let ed = b64e(d.public_key().as_ref());
        let curve = b64e(&[7u8; 32]);
        let sig = b64e(
            d.sign(identity_statement("u1", "d1", &curve, &ed).as_bytes())
                .as_ref(),
        );
        let id = IdentityKeys {
            curve25519: curve.clone(),
            ed25519: ed.clone(),
            signature: sig,
        };
        check_identity("u1", "d1", &id).unwrap();
        assert_eq!(
            check_identity("u1", "d2", &id).unwrap_err().field,
            "signature"
        );
        assert_eq!(
            check_identity("u2", "d1", &id).unwrap_err().field,
            "signature"
        );
        let swapped = IdentityKeys {
            curve25519: b64e(&[8u8; 32]),
            ..id.clone()
        };
        assert_eq!(
            check_identity("u1", "d1", &swapped).unwrap_err().field,
            "signature"
        );
        let short = IdentityKeys {
            curve25519: b64e(&[8u8; 31]),
            ..id
        };
        assert_eq!(
            check_identity("u1", "d1", &short).unwrap_err().field,
            "curve25519"
        );
    }

    #[test]
    fn a_one_time_key_does_not_verify_as_a_fallback_key_or_for_another_device() {
        let d = device();
        let ed = b64e(d.public_key().as_ref());
        let mut k = SignedKey {
            key_id: "AAAAAQ".into(),
            key: b64e(&[3u8; 32]),
            signature: String::new(),
        };
        k.signature = b64e(d.sign(key_statement("d1", &k, false).as_bytes()).as_ref());
        check_key("d1", &ed, &k, false).unwrap();
        assert!(check_key("d1", &ed, &k, true).is_err());
        assert!(check_key("d2", &ed, &k, false).is_err());
        let other = device();
        assert!(check_key("d1", &b64e(other.public_key().as_ref()), &k, false).is_err());
    }

    /// Seeded mutations of a devices list and a claim answer as the server sends them: no input
    /// panics, and whatever still parses and verifies names exactly the genuine keys (a bit
    /// changed in a key, an id or a signature never yields a key that verifies).
    #[test]
    fn mutated_key_bundles_never_verify_as_other_keys() {
        let d = device();
        let ed = b64e(d.public_key().as_ref());
        let curve = b64e(&[7u8; 32]);
        let identity = IdentityKeys {
            signature: b64e(
                d.sign(identity_statement("u1", "d1", &curve, &ed).as_bytes())
                    .as_ref(),
            ),
            curve25519: curve.clone(),
            ed25519: ed.clone(),
        };
        let genuine = DeviceKeys {
            user_id: "u1".into(),
            device_id: "d1".into(),
            identity,
        };
        let mut key = SignedKey {
            key_id: "AAAAAQ".into(),
            key: b64e(&[3u8; 32]),
            signature: String::new(),
        };
        key.signature = b64e(d.sign(key_statement("d1", &key, false).as_bytes()).as_ref());
        let devices = serde_json::to_vec(&DevicesResponse {
            devices: vec![genuine.clone()],
        })
        .unwrap();
        let claim = serde_json::to_vec(&KeysClaimResponse {
            claimed: vec![ClaimedKey {
                device: genuine.clone(),
                key: key.clone(),
                fallback: false,
            }],
            unavailable: vec![],
        })
        .unwrap();
        let mut m = crate::mutation::Mutator::new(0x5eed_0001);
        for round in 0..20_000 {
            let bytes = m.mutate(&devices);
            if let Ok(r) = serde_json::from_slice::<DevicesResponse>(&bytes) {
                for x in r.devices {
                    if check_identity(&x.user_id, &x.device_id, &x.identity).is_ok() {
                        assert_eq!(
                            x,
                            genuine,
                            "round {round}: {}",
                            String::from_utf8_lossy(&bytes)
                        );
                    }
                }
            }
            let bytes = m.mutate(&claim);
            if let Ok(r) = serde_json::from_slice::<KeysClaimResponse>(&bytes) {
                for c in r.claimed {
                    // The device checks a claimed key against the identity it trusts.
                    if check_key(&c.device.device_id, &ed, &c.key, c.fallback).is_ok() {
                        assert_eq!(
                            (
                                c.device.device_id.as_str(),
                                &c.key.key,
                                &c.key.key_id,
                                c.fallback
                            ),
                            ("d1", &key.key, &key.key_id, false),
                            "round {round}"
                        );
                    }
                }
            }
        }
    }
}
