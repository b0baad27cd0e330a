//! The server database's key, kept apart from the data it protects: a copy of the data folder
//! (a backup, a snapshot, a disk image) is ciphertext without it (docs/operations.md).
//!
//! The key comes from a file the operator names (`--key-file`, `POLKU_SERVER_KEY_FILE`, or
//! systemd's `LoadCredential=polku-server.key:...` in `$CREDENTIALS_DIRECTORY`) or from
//! `POLKU_SERVER_KEY`. A key file inside the data folder, or one others may read, is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use ring::rand::SecureRandom;

use crate::error::{ApiError, ApiResult};

/// 32 random bytes, written as 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey(String);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

/// Where the key lives, as the operator named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// `POLKU_SERVER_KEY` (hex) in the environment.
    Env,
}

impl ServerKey {
    pub fn generate() -> ApiResult<ServerKey> {
        let mut b = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| ApiError::Internal("the OS random source failed".into()))?;
        Ok(ServerKey(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    pub fn from_hex(text: &str) -> ApiResult<ServerKey> {
        let t = text.trim();
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad(
                "invalid_key",
                "a server key is 64 hex digits (32 random bytes)",
            ));
        }
        Ok(ServerKey(t.to_ascii_lowercase()))
    }

    /// The SQLCipher `PRAGMA key` value.
    pub(crate) fn pragma(&self) -> String {
        format!("\"x'{}'\"", self.0)
    }

    /// Reads the key named by `source` for the data folder `data`.
    pub fn load(source: &KeySource, data: &Path) -> ApiResult<ServerKey> {
        match source {
            KeySource::Env => ServerKey::from_hex(
                &std::env::var("POLKU_SERVER_KEY")
                    .map_err(|_| ApiError::bad("no_key", "POLKU_SERVER_KEY is not set"))?,
            ),
            KeySource::File(path) => {
                check_apart(path, data)?;
                check_private(path)?;
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ApiError::bad("no_key", format!("key file {}: {e}", path.display()))
                })?;
                ServerKey::from_hex(&text).map_err(|_| {
                    ApiError::bad(
                        "invalid_key",
                        format!(
                            "{} does not hold a server key (64 hex digits)",
                            path.display()
                        ),
                    )
                })
            }
        }
    }

    /// Writes this key to a new file at `path` (mode 0600; never over an existing file), which
    /// must lie outside the data folder `data`.
    pub fn write_new(&self, path: &Path, data: &Path) -> ApiResult<()> {
        check_apart(path, data)?;
        write_private(path, &format!("{}\n", self.0))
    }
}

/// The key must not sit inside the data folder it protects.
fn check_apart(key: &Path, data: &Path) -> ApiResult<()> {
    let inside = |k: &Path, d: &Path| k.starts_with(d);
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let canon = |p: &Path| {
        // The file may not exist yet (init): canonicalise its folder.
        match (p.parent(), p.file_name()) {
            (Some(dir), Some(name)) => dir
                .canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| abs(p)),
            _ => abs(p),
        }
    };
    let data_canon = data.canonicalize().unwrap_or_else(|_| abs(data));
    if inside(&canon(key), &data_canon) || inside(&abs(key), &abs(data)) {
        return Err(ApiError::bad(
            "key_in_data_folder",
            format!(
                "the key file {} lies inside the data folder {}: a copy of the folder would carry its own key. Keep it elsewhere (e.g. /etc/polku/server.key, mode 600) and name it with --key-file",
                key.display(),
                data.display()
            ),
        ));
    }
    Ok(())
}

/// Only the server's own user may read the key.
fn check_private(path: &Path) -> ApiResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| ApiError::bad("no_key", format!("key file {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ApiError::bad(
                "key_readable_by_others",
                format!(
                    "the key file {} has mode {mode:o}: others may read it. Run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Creates `path` with `content`, readable by its owner only, failing if it exists.
pub(crate) fn write_private(path: &Path, content: &str) -> ApiResult<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| ApiError::bad("key_file", format!("{}: {e}", path.display())))?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| ApiError::Internal(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_inside_the_data_folder_is_refused_however_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        let key = ServerKey::generate().unwrap();
        for inside in [
            data.join("server.key"),
            data.join("sub/../server.key"),
            dir.path().join("./data/k"),
        ] {
            let e = key.write_new(&inside, &data).unwrap_err();
            assert!(e.to_string().contains("inside the data folder"), "{e}");
        }
        let outside = dir.path().join("server.key");
        key.write_new(&outside, &data).unwrap();
        assert_eq!(
            ServerKey::load(&KeySource::File(outside.clone()), &data).unwrap(),
            key
        );
        // Never written over.
        assert!(key.write_new(&outside, &data).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let path = dir.path().join("server.key");
        ServerKey::generate()
            .unwrap()
            .write_new(&path, &data)
            .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ServerKey::load(&KeySource::File(path), &data).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
