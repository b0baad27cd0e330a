//! Database keys. The shells keep a random 32-byte key in the Android Keystore / iOS Keychain and
//! hand it over through the FFI's `KeyProvider` foreign trait; the CLI derives one from a passphrase.

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// A raw SQLCipher key. Opened with `PRAGMA key = "x'…'"`, so opening costs no key stretching.
#[derive(Clone, PartialEq, Eq)]
pub struct DbKey([u8; 32]);

impl DbKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DbKey(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::validation("key", format!("{} bytes", bytes.len()), "exactly 32 bytes")
        })?;
        Ok(DbKey(arr))
    }

    /// A fresh random key, for a shell that stores it in the platform key store.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 32];
        SystemRandom::new()
            .fill(&mut k)
            .map_err(|_| Error::Io("system random generator failed".into()))?;
        Ok(DbKey(k))
    }

    /// The raw bytes, for a shell that stores a freshly generated key in the platform key store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn sqlcipher_literal(&self) -> String {
        format!("x'{}'", hex(&self.0))
    }

    /// A value that identifies the key without revealing it (HMAC-SHA256 of a fixed label),
    /// stored beside the database so a wrong key is told apart from a corrupt file.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let tag = ring::hmac::sign(&k, b"polku database key check v1");
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey(…)")
    }
}

impl Drop for DbKey {
    fn drop(&mut self) {
        // Best effort: do not leave the key in freed memory.
        for b in self.0.iter_mut() {
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// OWASP 2023 guidance for PBKDF2-HMAC-SHA256.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;

/// A passphrase a new profile's key may be derived from: at least 12 characters (OWASP ASVS 4.0,
/// V2.1.1), and not one or a few characters repeated. A copied database can be attacked offline,
/// so the passphrase is the only thing between it and the health data in it.
pub fn check_new_passphrase(passphrase: &str) -> Result<()> {
    let n = passphrase.chars().count();
    let distinct = passphrase
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if n < MIN_PASSPHRASE_CHARS || distinct < 5 {
        return Err(Error::validation(
            "passphrase",
            format!("{n} characters, {distinct} different"),
            format!(
                "at least {MIN_PASSPHRASE_CHARS} characters, not one or a few repeated (a few unrelated words make a good one)"
            ),
        ));
    }
    Ok(())
}

pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Derives a key from a passphrase with PBKDF2-HMAC-SHA256; the random salt lives in `salt_path`
/// (created on first use). The salt is not secret; losing it makes the database unopenable.
pub fn derive_from_passphrase(passphrase: &str, salt_path: &Path, create: bool) -> Result<DbKey> {
    if passphrase.is_empty() {
        return Err(Error::validation(
            "passphrase",
            "(empty)",
            "at least 1 character",
        ));
    }
    let salt = match std::fs::read(salt_path) {
        Ok(s) if s.len() == SALT_LEN => s,
        Ok(_) => {
            return Err(Error::Io(format!(
                "salt file {} is damaged",
                salt_path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut s = vec![0u8; SALT_LEN];
            SystemRandom::new()
                .fill(&mut s)
                .map_err(|_| Error::Io("system random generator failed".into()))?;
            super::file::write_durably(salt_path, &s)?;
            s
        }
        Err(e) => {
            return Err(Error::Io(format!(
                "cannot read salt file {}: {e}",
                salt_path.display()
            )))
        }
    };
    Ok(derive_with_salt(passphrase, &salt, PBKDF2_ITERATIONS))
}

pub fn derive_with_salt(passphrase: &str, salt: &[u8], iterations: u32) -> DbKey {
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(iterations.max(1)).expect("max(1) is non-zero");
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut out,
    );
    DbKey(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc7914_vector() {
        // RFC 7914 §11, PBKDF2-HMAC-SHA256 P="passwd", S="salt", c=1, first 32 bytes.
        let k = derive_with_salt("passwd", b"salt", 1);
        assert_eq!(
            k.sqlcipher_literal(),
            "x'55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc'"
        );
    }

    #[test]
    fn salt_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let salt = dir.path().join("salt");
        assert!(
            derive_from_passphrase("pw", &salt, false).is_err(),
            "no salt and create=false"
        );
        let a = derive_from_passphrase("pw", &salt, true).unwrap();
        let b = derive_from_passphrase("pw", &salt, false).unwrap();
        let c = derive_from_passphrase("other", &salt, false).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(std::fs::read(&salt).unwrap().len(), SALT_LEN);
    }

    #[test]
    fn debug_does_not_print_key() {
        let k = DbKey::from_bytes([7u8; 32]);
        assert_eq!(format!("{k:?}"), "DbKey(…)");
    }
}
