//! Files beside the database, written so that a crash leaves them whole or absent, and a file
//! that cannot be read moved aside rather than deleted.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Result;

pub(crate) fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Renames the database and its companions (`-wal`, `-shm`, `.keycheck`) to
/// `<name>.corrupt-<UTC time>`; returns the new database path. Nothing is deleted.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let target = sibling(path, &format!(".corrupt-{stamp}"));
    fs::rename(path, &target)?;
    for companion in ["-wal", "-shm", ".keycheck"] {
        let from = sibling(path, companion);
        if from.exists() {
            fs::rename(&from, sibling(&target, companion))?;
        }
    }
    sync_dir(path);
    Ok(target)
}

/// Writes a small file so that it is complete on disk or absent: temp file, fsync, rename, fsync dir.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path);
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}
