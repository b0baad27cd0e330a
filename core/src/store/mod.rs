//! The encrypted local store: SQLCipher with a raw 32-byte key, WAL, one writer and one reader
//! connection, migrations by `user_version`.
//!
//! Durability promise: a write returns only after its transaction has committed with
//! `synchronous = FULL` in WAL mode, i.e. after the WAL was fsynced. An acknowledged entry therefore
//! survives the app being killed (`kill -9`) and the device losing power.
//!
//! A file that cannot be read is never deleted: a wrong key leaves it untouched ([`Error::WrongKey`]);
//! a corrupt file is renamed aside ([`Error::Corrupt`]); a newer schema is refused ([`Error::NewerSchema`]).

mod file;
pub mod keys;
pub mod kind;
pub(crate) mod outbox;
mod schema;

pub(crate) use file::write_durably;
use file::{move_aside, sibling};

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use keys::DbKey;

pub use schema::LATEST as SCHEMA_VERSION;

const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Counts committed writes: what a screen's subscription waits on before it reads again.
    writes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// How a store is opened. `Plaintext` exists only to measure SQLCipher's cost in benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encryption {
    Key,
    #[cfg_attr(not(feature = "bench-plaintext"), allow(dead_code))]
    Plaintext,
}

impl Store {
    /// Opens (creating if needed) the encrypted database at `path`.
    pub fn open(path: &Path, key: &DbKey) -> Result<Store> {
        Self::open_with(path, Some(key), Encryption::Key)
    }

    /// An unencrypted store, for benchmarks that report SQLCipher's cost separately.
    #[cfg(feature = "bench-plaintext")]
    pub fn open_plaintext_for_benchmark(path: &Path) -> Result<Store> {
        Self::open_with(path, None, Encryption::Plaintext)
    }

    fn open_with(path: &Path, key: Option<&DbKey>, mode: Encryption) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let existing = fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
        if existing && mode == Encryption::Key && has_plaintext_header(path)? {
            // Not something this app wrote: keep it for inspection, start no further.
            return Err(Error::Corrupt {
                moved_to: move_aside(path)?,
            });
        }
        let check_path = key_check_path(path);
        let known_check = fs::read(&check_path).ok();
        if let (Some(key), Some(stored)) = (key, known_check.as_deref()) {
            if stored != key.check_value() {
                return Err(Error::WrongKey {
                    path: path.to_owned(),
                });
            }
        }

        let writer = match open_connection(path, key, false) {
            Ok(c) => c,
            Err(OpenFailure::NotReadable) if existing => {
                return Err(if known_check.is_some() || mode == Encryption::Plaintext {
                    // The key is proven right, so the file itself is damaged.
                    Error::Corrupt {
                        moved_to: move_aside(path)?,
                    }
                } else {
                    // Without the check file a wrong key and a damaged first page look alike;
                    // keep the file where it is and let the user retry with another key.
                    Error::WrongKey {
                        path: path.to_owned(),
                    }
                });
            }
            Err(OpenFailure::NotReadable) => {
                return Err(Error::Storage("cannot create database".into()))
            }
            Err(OpenFailure::Other(e)) => return Err(e),
        };
        let mut writer = writer;
        migrate(&mut writer)?;
        if let (Some(key), None) = (key, known_check) {
            write_durably(&check_path, &key.check_value())?;
        }
        let reader = match open_connection(path, key, true) {
            Ok(c) => c,
            Err(OpenFailure::NotReadable) => {
                return Err(Error::Storage("reader connection failed".into()))
            }
            Err(OpenFailure::Other(e)) => return Err(e),
        };
        Ok(Store {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            writes: tokio::sync::watch::Sender::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer; commits when it returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock(&self.writer);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit().map_err(map_sql)?;
        self.writes.send_modify(|n| *n += 1);
        Ok(out)
    }

    /// A receiver that wakes after every committed write (any domain's: a subscriber reads what
    /// it shows again and compares).
    pub fn watch_writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// Runs `f` on the reader connection (sees every committed write, never blocks the writer).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock(&self.reader);
        f(&conn)
    }

    fn lock<'a>(&self, m: &'a Mutex<Connection>) -> MutexGuard<'a, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back the
        // unfinished transaction when the Transaction guard drops.
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A small per-database setting (the profile's subject id, device id, ...).
    pub fn profile_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT value FROM profile WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })
    }

    /// Returns the stored value for `key`, storing `make()` first if there is none.
    pub fn profile_get_or_init(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        self.write(|tx| {
            if let Some(v) = tx
                .query_row("SELECT value FROM profile WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?
            {
                return Ok(v);
            }
            let v = make();
            tx.execute(
                "INSERT INTO profile (key, value) VALUES (?1, ?2)",
                (key, &v),
            )?;
            Ok(v)
        })
    }

    /// Full `PRAGMA integrity_check` (slow on big databases; not run at open).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }
}

enum OpenFailure {
    NotReadable,
    Other(Error),
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                OpenFailure::NotReadable
            }
            _ => OpenFailure::Other(e.into()),
        }
    }
}

fn open_connection(
    path: &Path,
    key: Option<&DbKey>,
    read_only: bool,
) -> Result<Connection, OpenFailure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    initialise_sqlcipher()?;
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        // Check before keying: a build silently linked against plain SQLite must fail loudly.
        let cipher: Option<String> = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .optional()?;
        if cipher.is_none_or(|v| v.is_empty()) {
            return Err(OpenFailure::Other(Error::EncryptionUnavailable));
        }
        // SQLCipher logs decryption failures to stderr itself; the typed error already says it.
        conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()))
            .optional()?;
        conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.sqlcipher_literal()))?;
    }
    // The first read decrypts page 1: a wrong key or a damaged file fails here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    } else {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenFailure::Other(Error::Storage(format!(
                "WAL unavailable (journal mode {mode})"
            ))));
        }
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
    )?;
    Ok(conn)
}

/// Runs SQLite's and SQLCipher's one-time start-up to completion before any connection exists.
///
/// `sqlite3_initialize` marks SQLite initialised *before* it runs SQLCipher's extra start-up
/// (provider, random seed) and runs that outside its lock (SQLCipher 4.14 `sqlite3.c`:
/// `isInit = 1` precedes `SQLITE_EXTRA_INIT`). A second thread opening its first connection in
/// that window fails `PRAGMA key` with "sqlcipher not initialized". Seen once in CI (parallel
/// tests); a shell opening the store from two threads at app start could hit it too.
fn initialise_sqlcipher() -> Result<(), OpenFailure> {
    static RC: std::sync::OnceLock<std::os::raw::c_int> = std::sync::OnceLock::new();
    // SAFETY: sqlite3_initialize takes no arguments and may be called from any thread;
    // the OnceLock makes every other caller wait until the first call has returned.
    let rc = *RC.get_or_init(|| unsafe { rusqlite::ffi::sqlite3_initialize() });
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(OpenFailure::Other(Error::Storage(format!(
            "SQLite/SQLCipher initialisation failed (code {rc})"
        ))))
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > schema::LATEST {
        return Err(Error::NewerSchema {
            found,
            supported: schema::LATEST,
        });
    }
    schema::migrations().to_latest(conn).map_err(|e| match e {
        rusqlite_migration::Error::RusqliteError { err, .. } => map_sql(err),
        other => Error::Storage(format!("migration failed: {other}")),
    })
}

fn map_sql(e: rusqlite::Error) -> Error {
    e.into()
}

fn has_plaintext_header(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let mut f = fs::File::open(path)?;
    let n = f.read(&mut buf)?;
    Ok(n == 16 && &buf == PLAINTEXT_HEADER)
}

fn key_check_path(db: &Path) -> PathBuf {
    sibling(db, ".keycheck")
}

/// Column `i` of a row as a UUID (ids are stored as text); a malformed one is a conversion error.
pub(crate) fn uuid_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<uuid::Uuid> {
    let s: String = r.get(i)?;
    uuid::Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> DbKey {
        DbKey::from_bytes([b; 32])
    }

    #[test]
    fn reopen_with_same_key_works_and_wrong_key_is_typed() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        {
            let s = Store::open(&db, &key(1)).unwrap();
            s.profile_get_or_init("subject", || "me".into()).unwrap();
        }
        let s = Store::open(&db, &key(1)).unwrap();
        assert_eq!(s.profile_get("subject").unwrap().as_deref(), Some("me"));
        drop(s);
        assert!(matches!(
            Store::open(&db, &key(2)),
            Err(Error::WrongKey { .. })
        ));
        assert!(db.exists(), "a wrong key never moves or deletes the file");
    }

    #[test]
    fn wrong_key_without_check_file_is_still_wrong_key_and_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        drop(Store::open(&db, &key(1)).unwrap());
        fs::remove_file(key_check_path(&db)).unwrap();
        assert!(matches!(
            Store::open(&db, &key(9)),
            Err(Error::WrongKey { .. })
        ));
        assert!(db.exists());
        Store::open(&db, &key(1)).unwrap();
    }

    #[test]
    fn corrupt_file_is_moved_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        drop(Store::open(&db, &key(1)).unwrap());
        let original = fs::read(&db).unwrap();
        // Damage the first page: the key is proven right by the check file, so this is corruption.
        let mut damaged = original.clone();
        for b in damaged.iter_mut().skip(100).take(200) {
            *b ^= 0x5a;
        }
        fs::write(&db, &damaged).unwrap();
        match Store::open(&db, &key(1)) {
            Err(Error::Corrupt { moved_to }) => {
                assert!(!db.exists());
                assert_eq!(
                    fs::read(&moved_to).unwrap(),
                    damaged,
                    "moved, byte for byte"
                );
                assert!(moved_to.to_string_lossy().contains(".corrupt-"));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // A fresh database can be created in its place afterwards.
        Store::open(&db, &key(1)).unwrap();
    }

    #[test]
    fn garbage_and_plaintext_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("plain.db");
        Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t(x);")
            .unwrap();
        match Store::open(&db, &key(1)) {
            Err(Error::Corrupt { moved_to }) => assert!(moved_to.exists()),
            other => panic!("expected Corrupt for a plaintext database, got {other:?}"),
        }
        let junk = dir.path().join("junk.db");
        fs::write(&junk, vec![0xabu8; 8192]).unwrap();
        assert!(matches!(
            Store::open(&junk, &key(1)),
            Err(Error::WrongKey { .. })
        ));
        assert_eq!(fs::read(&junk).unwrap(), vec![0xabu8; 8192]);
    }

    #[test]
    fn newer_schema_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        {
            let s = Store::open(&db, &key(1)).unwrap();
            s.write(|tx| Ok(tx.pragma_update(None, "user_version", schema::LATEST + 5)?))
                .unwrap();
        }
        match Store::open(&db, &key(1)) {
            Err(Error::NewerSchema { found, supported }) => {
                assert_eq!(found, schema::LATEST + 5);
                assert_eq!(supported, schema::LATEST);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert!(db.exists());
    }

    #[test]
    fn sqlcipher_is_linked_and_pragmas_hold() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("p.db"), &key(1)).unwrap();
        s.write(|tx| {
            let v: String = tx.query_row("PRAGMA cipher_version", [], |r| r.get(0))?;
            assert!(!v.is_empty());
            let j: String = tx.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            assert_eq!(j, "wal");
            let sync: i64 = tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            assert_eq!(sync, 2, "FULL");
            Ok(())
        })
        .unwrap();
        assert_eq!(s.integrity_check().unwrap(), vec!["ok".to_string()]);
    }
}
