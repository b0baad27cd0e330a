//! The SQLite backend: one SQLCipher file (`DATA/polku-server.db`, mode 0600, its key kept outside
//! the data folder: `key.rs`), WAL with `synchronous = FULL`, so an operation answered "applied"
//! survives a crash.
//!
//! Per-stream sequence numbers come from a counter row updated in the same transaction that
//! stores the operation (a global autoincrement can commit out of order and make a reader skip a
//! row). Deduplication is on the operation id, inside that transaction.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use polku_protocol::hlc::{Hlc, MAX_FORWARD_DRIFT_MS};
use polku_protocol::wire::*;
use ring::rand::SecureRandom;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use rusqlite_migration::{Migrations, M};

use super::{
    AttachmentRules, AuditRecord, AuthFailure, DeviceAuth, Role, ServerKey, Storage, User,
};
use crate::error::{ApiError, ApiResult};
use polku_protocol::keys::{DeviceKeys, KeysClaimResponse, KeysUpload, KeysUploadResponse};

mod attachments;
mod coordination;
mod directory;
mod relay;

const SCHEMA_V1: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE user (
    id         TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('citizen', 'professional', 'outreach', 'admin')),
    name       TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE enrollment_code (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES user (id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER
);
CREATE TABLE device (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES user (id),
    token_hash  TEXT NOT NULL UNIQUE,
    name        TEXT,
    enrolled_ms INTEGER NOT NULL,
    revoked_ms  INTEGER,
    last_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE assignment (
    professional_id TEXT NOT NULL REFERENCES user (id),
    subject_id      TEXT NOT NULL REFERENCES user (id),
    since_ms        INTEGER NOT NULL,
    until_ms        INTEGER,
    PRIMARY KEY (professional_id, subject_id)
);
CREATE TABLE stream (id TEXT PRIMARY KEY NOT NULL, last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE op (
    stream         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    op_id          TEXT NOT NULL UNIQUE,
    device_id      TEXT NOT NULL,
    device_seq     INTEGER NOT NULL,
    hlc            TEXT NOT NULL,
    kind           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT NOT NULL,
    received_ms    INTEGER NOT NULL,
    future         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream, seq)
);
CREATE TABLE op_outcome (
    op_id     TEXT PRIMARY KEY NOT NULL,
    device_id TEXT NOT NULL,
    status    TEXT NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE TABLE review_op (
    op_id       TEXT PRIMARY KEY NOT NULL,
    stream      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    reason      TEXT NOT NULL
);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    actor_id   TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    device_id  TEXT,
    subject_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    detail     TEXT
);
CREATE INDEX audit_by_subject ON audit (subject_id, at_ms);
"#;

/// Issue 9: an operation id is unique within its stream, not across streams (a device cannot
/// learn that an id exists in a stream it may not see, nor block its owner's push); outcomes of
/// refused pushes are kept per device (a refusal of one device never answers another's push);
/// `owner` is the record an operation belongs to (`KindSpec::belongs_to`: a diary entry, a
/// pathway enrollment), which must stay in one stream.
const SCHEMA_V2: &str = r#"
CREATE TABLE op_v2 (
    stream         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    op_id          TEXT NOT NULL,
    device_id      TEXT NOT NULL,
    device_seq     INTEGER NOT NULL,
    hlc            TEXT NOT NULL,
    kind           TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        TEXT NOT NULL,
    received_ms    INTEGER NOT NULL,
    future         INTEGER NOT NULL DEFAULT 0,
    owner          BLOB,
    PRIMARY KEY (stream, seq),
    UNIQUE (stream, op_id)
);
INSERT INTO op_v2 (stream, seq, op_id, device_id, device_seq, hlc, kind, schema_version, payload, received_ms, future)
    SELECT stream, seq, op_id, device_id, device_seq, hlc, kind, schema_version, payload, received_ms, future FROM op;
DROP TABLE op;
ALTER TABLE op_v2 RENAME TO op;
CREATE INDEX op_by_owner ON op (owner) WHERE owner IS NOT NULL;
CREATE TABLE op_outcome_v2 (
    device_id TEXT NOT NULL,
    op_id     TEXT NOT NULL,
    status    TEXT NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (device_id, op_id)
);
INSERT INTO op_outcome_v2 (device_id, op_id, status, code, reason)
    SELECT device_id, op_id, status, code, reason FROM op_outcome;
DROP TABLE op_outcome;
ALTER TABLE op_outcome_v2 RENAME TO op_outcome;
"#;

/// Issue 9, finding 6: failed enrollment and token attempts, and the lockouts they caused. No
/// code or token is kept, not even a part of one: only when, from where, and what failed.
const SCHEMA_V3: &str = r#"
CREATE TABLE auth_failure (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    source  TEXT NOT NULL,
    attempt TEXT NOT NULL,
    code    TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX auth_failure_by_time ON auth_failure (at_ms);
"#;

/// The owner of every stored operation of a known kind, from the kind's own description.
fn backfill_owners(tx: &Transaction<'_>) -> rusqlite_migration::HookResult {
    let mut rows = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT rowid, kind, payload FROM op")?;
        let mut q = stmt.query([])?;
        while let Some(r) = q.next()? {
            let (kind, payload): (String, String) = (r.get(1)?, r.get(2)?);
            let Some(spec) = polku_protocol::op::known(&kind) else {
                continue;
            };
            let obj: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&payload).unwrap_or_default();
            if let Some(owner) = spec.owner(&obj).and_then(owner_key) {
                rows.push((r.get::<_, i64>(0)?, owner));
            }
        }
    }
    for (rowid, owner) in rows {
        tx.execute(
            "UPDATE op SET owner = ?1 WHERE rowid = ?2",
            params![owner, rowid],
        )?;
    }
    Ok(())
}

/// A pushed operation with what can be worked out before the writer is taken: its payload as
/// stored, the protocol's verdict on it, and the record it belongs to.
struct Prepared {
    op: Op,
    payload_text: String,
    check: Result<(), polku_protocol::op::Invalid>,
    owner: Option<Vec<u8>>,
}

impl Prepared {
    fn new(op: Op, now: i64) -> Prepared {
        let payload_text = op.payload.to_string();
        let check = polku_protocol::op::check_op(&op, &payload_text, now);
        let owner = polku_protocol::op::known(&op.kind)
            .filter(|k| op.schema_version <= k.schema_version)
            .and_then(|k| k.owner(op.payload.as_object()?))
            .and_then(owner_key);
        Prepared {
            op,
            payload_text,
            check,
            owner,
        }
    }
}

/// An owner as stored: the 16 bytes of its UUID (one stored per operation, so kept small: a
/// push writes it and its index entry for every record).
fn owner_key(id: &str) -> Option<Vec<u8>> {
    uuid::Uuid::parse_str(id)
        .ok()
        .map(|u| u.as_bytes().to_vec())
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_V1),
        M::up_with_hook(SCHEMA_V2, backfill_owners),
        M::up(SCHEMA_V3),
        M::up(directory::SCHEMA_V4),
        M::up(relay::SCHEMA_V5),
        M::up(attachments::SCHEMA_V6),
        M::up(coordination::SCHEMA_V7),
    ])
}

pub struct SqliteStorage {
    conn: Mutex<Connection>,
    epoch: String,
}

pub fn db_path(data: &Path) -> PathBuf {
    data.join("polku-server.db")
}

/// Where versions before issue 9 kept the key: beside the data it protects.
fn old_key_path(data: &Path) -> PathBuf {
    data.join("server.key")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs SQLite's and SQLCipher's one-time start-up to completion before the first connection.
/// `sqlite3_initialize` marks SQLite initialised before SQLCipher's own start-up has finished, so
/// a second thread opening a database in that window fails `PRAGMA key` (the core's
/// `store::initialise_sqlcipher` has the whole story). Seen in CI: three test servers started at
/// once in one process.
fn initialise_sqlcipher() -> ApiResult<()> {
    static RC: std::sync::OnceLock<std::os::raw::c_int> = std::sync::OnceLock::new();
    // SAFETY: sqlite3_initialize takes no arguments and may be called from any thread; the
    // OnceLock makes every other caller wait until the first call has returned.
    let rc = *RC.get_or_init(|| unsafe { rusqlite::ffi::sqlite3_initialize() });
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(ApiError::Internal(format!(
            "SQLite/SQLCipher initialisation failed (code {rc})"
        )))
    }
}

fn rfc3339(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::Internal("the OS random source failed".into()))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(s: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref())
}

/// Crockford base32 without I, L, O, U: easy to read aloud and type on a phone.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn new_code() -> ApiResult<String> {
    let raw = random_bytes::<12>()?;
    let chars: String = raw
        .iter()
        .map(|b| CODE_ALPHABET[(*b & 31) as usize] as char)
        .collect();
    Ok(format!(
        "{}-{}-{}",
        &chars[0..4],
        &chars[4..8],
        &chars[8..12]
    ))
}

fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl SqliteStorage {
    /// Creates the data folder (mode 0700) and its database (0600), encrypted with `key`, which
    /// the caller keeps outside the folder. Refuses to touch an existing one.
    pub fn init(data: &Path, key: &ServerKey) -> ApiResult<SqliteStorage> {
        std::fs::create_dir_all(data)
            .map_err(|e| ApiError::Internal(format!("{}: {e}", data.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| ApiError::Internal(format!("{}: {e}", data.display())))?;
        }
        if old_key_path(data).exists() || db_path(data).exists() {
            return Err(ApiError::bad(
                "already_initialised",
                format!("{} already holds a Polku server", data.display()),
            ));
        }
        // SQLite gives its -wal and -shm files the database file's mode.
        super::key::write_private(&db_path(data), "")?;
        Self::open(data, key)
    }

    pub fn open(data: &Path, key: &ServerKey) -> ApiResult<SqliteStorage> {
        if old_key_path(data).exists() {
            return Err(ApiError::bad(
                "key_in_data_folder",
                format!(
                    "{} holds the database key beside the data: a copy of the folder would be a full breach. Move it out (e.g. `mv {} /etc/polku/server.key`) and start with --key-file /etc/polku/server.key (docs/operations.md)",
                    data.display(),
                    old_key_path(data).display()
                ),
            ));
        }
        if !db_path(data).exists() {
            return Err(ApiError::bad(
                "not_initialised",
                format!(
                    "{} holds no Polku server: run `polku-server init --data {} --key-file PATH`",
                    data.display(),
                    data.display()
                ),
            ));
        }
        initialise_sqlcipher()?;
        let mut conn = Connection::open(db_path(data))?;
        conn.execute_batch(&format!("PRAGMA key = {};", key.pragma()))?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|_| {
            ApiError::bad(
                "wrong_key",
                "the server database does not open with this key",
            )
        })?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(ApiError::Internal(format!("WAL unavailable ({mode})")));
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
        )?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| ApiError::Internal(format!("migration: {e}")))?;
        // The epoch names this database's history; after a restore from backup the operator runs
        // `polku-server new-epoch`, and devices then re-upload what the backup lacks.
        let epoch: String = match conn
            .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
                r.get(0)
            })
            .optional()?
        {
            Some(e) => e,
            None => {
                let e = uuid::Uuid::new_v4().to_string();
                conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?1)", [&e])?;
                e
            }
        };
        Ok(SqliteStorage {
            conn: Mutex::new(conn),
            epoch,
        })
    }

    /// Gives the database a new epoch: run after restoring a backup. Devices that see it read
    /// every stream again and upload everything they hold, so what the backup lacked comes back.
    pub fn new_epoch(data: &Path, key: &ServerKey) -> ApiResult<String> {
        let s = Self::open(data, key)?;
        let e = uuid::Uuid::new_v4().to_string();
        s.lock()
            .execute("UPDATE meta SET value = ?1 WHERE key = 'epoch'", [&e])?;
        Ok(e)
    }

    /// Re-encrypts the database under `new` (the server stopped; restart it with the new key).
    /// The new key is written to `new_file` first, so no moment exists when the data is under a
    /// key the operator does not hold.
    pub fn rekey(data: &Path, old: &ServerKey, new: &ServerKey, new_file: &Path) -> ApiResult<()> {
        let s = Self::open(data, old)?;
        new.write_new(new_file, data)?;
        let c = s.lock();
        // SQLCipher re-encrypts in rollback-journal mode; WAL again after.
        c.query_row("PRAGMA journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        })?;
        let out = c.execute_batch(&format!("PRAGMA rekey = {};", new.pragma()));
        c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        if let Err(e) = out {
            let _ = std::fs::remove_file(new_file);
            return Err(e.into());
        }
        Ok(())
    }

    /// `PRAGMA integrity_check` of the server database (["ok"] when sound).
    pub fn integrity_check(&self) -> ApiResult<Vec<String>> {
        let c = self.lock();
        let mut stmt = c.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> ApiResult<T>) -> ApiResult<T> {
        let mut c = self.lock();
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn user(c: &Connection, id: &str) -> ApiResult<User> {
        c.query_row("SELECT id, role, name FROM user WHERE id = ?1", [id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?
        .map(|(id, role, name)| User {
            id,
            role: Role::parse(&role).unwrap_or(Role::Citizen),
            name,
        })
        .ok_or_else(|| ApiError::NotFound(format!("no user {id}")))
    }

    /// The streams `auth` may read and write now.
    fn streams(c: &Connection, auth: &DeviceAuth) -> ApiResult<Vec<String>> {
        Ok(match auth.role {
            Role::Citizen => vec![auth.user_id.clone()],
            Role::Professional | Role::Outreach => {
                let mut stmt = c.prepare_cached(
                    "SELECT subject_id FROM assignment WHERE professional_id = ?1 AND until_ms IS NULL ORDER BY subject_id",
                )?;
                let rows = stmt.query_map([&auth.user_id], |r| r.get(0))?;
                rows.collect::<Result<Vec<String>, _>>()?
            }
            Role::Admin => Vec::new(),
        })
    }

    fn audit_row(
        tx: &Connection,
        auth: &DeviceAuth,
        subject: &str,
        action: &str,
        detail: Option<&str>,
    ) -> ApiResult<()> {
        tx.prepare_cached(
            "INSERT INTO audit (at_ms, actor_id, actor_role, device_id, subject_id, action, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            now_ms(),
            auth.user_id,
            auth.role.as_str(),
            auth.device_id,
            subject,
            action,
            detail
        ])?;
        Ok(())
    }

    fn push_one(
        tx: &Transaction<'_>,
        auth: &DeviceAuth,
        allowed: &[String],
        coordinated: &[String],
        p: Prepared,
        now: i64,
    ) -> ApiResult<OpResult> {
        let Prepared {
            op,
            payload_text,
            check,
            owner,
        } = p;
        let result = |status, seq, code: Option<&str>, reason: Option<String>| OpResult {
            op_id: op.op_id.clone(),
            status,
            seq,
            code: code.map(str::to_owned),
            reason,
        };
        // A repeat gets the answer the first copy got. Ids are unique per stream: whether an id
        // exists in a stream this device may not see is never told.
        if let Some(seq) = tx
            .prepare_cached("SELECT seq FROM op WHERE stream = ?1 AND op_id = ?2")?
            .query_row([&op.stream, &op.op_id], |r| r.get::<_, i64>(0))
            .optional()?
        {
            return Ok(result(OpStatus::Duplicate, Some(seq), None, None));
        }
        // This device's own earlier refusal of the same operation (another device's never).
        if let Some((status, code, reason)) = tx
            .prepare_cached(
                "SELECT status, code, reason FROM op_outcome WHERE device_id = ?1 AND op_id = ?2",
            )?
            .query_row([&auth.device_id, &op.op_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?
        {
            let status = if status == "held" {
                OpStatus::Held
            } else {
                OpStatus::Rejected
            };
            return Ok(OpResult {
                op_id: op.op_id,
                status,
                seq: None,
                code: Some(code),
                reason: Some(reason),
            });
        }
        let refuse = |status: OpStatus,
                      code: &'static str,
                      reason: String|
         -> ApiResult<OpResult> {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO op_outcome (device_id, op_id, status, code, reason) VALUES (?2, ?1, ?3, ?4, ?5)",
            )?
            .execute(params![
                op.op_id,
                auth.device_id,
                if status == OpStatus::Held { "held" } else { "rejected" },
                code,
                reason
            ])?;
            Ok(OpResult {
                op_id: op.op_id.clone(),
                status,
                seq: None,
                code: Some(code.to_owned()),
                reason: Some(reason),
            })
        };
        if let Err(bad) = check {
            return refuse(OpStatus::Rejected, bad.code, bad.reason);
        }
        // Authorship is stamped, never claimed: a record names the user whose device sent it.
        if let Some(author) = op.payload.get("author").and_then(|a| a.as_str()) {
            if author != auth.user_id {
                return refuse(
                    OpStatus::Rejected,
                    "forbidden_author",
                    "author must be the user this device is enrolled as".into(),
                );
            }
        }
        // Whatever its schema version: a newer version of a care-team kind is still one.
        let spec = polku_protocol::op::known(&op.kind);
        if spec.is_some_and(|k| k.care_team_only) && !auth.role.reads_others() {
            // A safety flag's acknowledgement is the care team's word that it was handled.
            return refuse(
                OpStatus::Rejected,
                "forbidden_kind",
                format!("only the care team writes {}", op.kind),
            );
        }
        if coordinated.contains(&op.stream)
            && !coordination::coordinator_writes(&op.kind, &op.payload)
        {
            return refuse(
                OpStatus::Rejected,
                "forbidden_kind",
                "a coordinator writes service plans and visit assignments only".into(),
            );
        }
        if !allowed.iter().any(|s| s == &op.stream) {
            let ended: bool = auth.role.reads_others()
                && tx
                    .prepare_cached(
                        "SELECT 1 FROM assignment WHERE professional_id = ?1 AND subject_id = ?2 AND until_ms IS NOT NULL",
                    )?
                    .exists(params![auth.user_id, op.stream])?;
            if ended {
                // Written while assigned, uploaded after: kept for review, never dropped.
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO review_op (op_id, stream, device_id, user_id, kind, payload, received_ms, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'assignment ended before upload')",
                )?
                .execute(params![op.op_id, op.stream, auth.device_id, auth.user_id, op.kind, payload_text, now])?;
                Self::audit_row(
                    tx,
                    auth,
                    &op.stream,
                    "write_after_assignment",
                    Some(&op.kind),
                )?;
                return refuse(
                    OpStatus::Held,
                    "assignment_ended",
                    "the assignment ended before this was uploaded; kept on the server for review"
                        .into(),
                );
            }
            return refuse(
                OpStatus::Rejected,
                "forbidden_stream",
                "this device may not write to that subject".into(),
            );
        }
        // A record that belongs to another (a version to its entry, an event to its enrollment)
        // stays in that one's stream: no device moves another person's entry into its own.
        if let Some(owner) = &owner {
            let elsewhere = tx
                .prepare_cached("SELECT 1 FROM op WHERE owner = ?1 AND stream != ?2 LIMIT 1")?
                .exists(params![owner, op.stream])?;
            if elsewhere {
                return refuse(
                    OpStatus::Rejected,
                    "foreign_record",
                    "this record belongs to a record of another subject".into(),
                );
            }
        }
        let future = Hlc::parse(&op.hlc)
            .is_some_and(|h| h.ms > (now.max(0) as u64).saturating_add(MAX_FORWARD_DRIFT_MS));
        tx.prepare_cached("INSERT OR IGNORE INTO stream (id, last_seq) VALUES (?1, 0)")?
            .execute([&op.stream])?;
        let seq: i64 = tx
            .prepare_cached(
                "UPDATE stream SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
            )?
            .query_row([&op.stream], |r| r.get(0))?;
        tx.prepare_cached(
            "INSERT INTO op (stream, seq, op_id, device_id, device_seq, hlc, kind, schema_version, payload, received_ms, future, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            op.stream,
            seq,
            op.op_id,
            auth.device_id,
            op.device_seq,
            op.hlc,
            op.kind,
            op.schema_version,
            payload_text,
            now,
            future,
            owner
        ])?;
        Ok(result(OpStatus::Applied, Some(seq), None, None))
    }
}

impl Storage for SqliteStorage {
    fn epoch(&self) -> ApiResult<String> {
        Ok(self.epoch.clone())
    }

    fn create_user(&self, role: Role, name: &str) -> ApiResult<User> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::bad(
                "invalid_name",
                "name must be 1–200 characters",
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO user (id, role, name, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id, role.as_str(), name, now_ms()],
            )?;
            Ok(())
        })?;
        Ok(User {
            id,
            role,
            name: name.to_owned(),
        })
    }

    fn invite(&self, user_id: &str, ttl: std::time::Duration) -> ApiResult<String> {
        if ttl.as_secs() == 0 || ttl.as_secs() > 7 * 24 * 3600 {
            return Err(ApiError::bad(
                "invalid_ttl",
                "the code must expire within 1 second – 7 days",
            ));
        }
        let code = new_code()?;
        self.write(|tx| {
            Self::user(tx, user_id)?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO enrollment_code (code_hash, user_id, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![sha256_hex(&normalise_code(&code)), user_id, now, now + ttl.as_millis() as i64],
            )?;
            Ok(())
        })?;
        Ok(code)
    }

    fn assign(&self, professional_id: &str, subject_id: &str) -> ApiResult<()> {
        self.assign_scoped(professional_id, subject_id, "care")
    }

    fn coordinate(&self, professional_id: &str, subject_id: &str) -> ApiResult<()> {
        self.assign_scoped(professional_id, subject_id, "coordination")
    }

    fn unassign(&self, professional_id: &str, subject_id: &str) -> ApiResult<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE assignment SET until_ms = ?3 WHERE professional_id = ?1 AND subject_id = ?2 AND until_ms IS NULL",
                params![professional_id, subject_id, now_ms()],
            )?;
            if n == 0 {
                return Err(ApiError::NotFound("no such active assignment".into()));
            }
            // Their devices can no longer fetch the conversation's attachments.
            Self::forget_recipient_devices(
                tx,
                "device_id IN (SELECT id FROM device WHERE user_id = ?1)
                 AND attachment_id IN (SELECT id FROM attachment WHERE conversation = ?2)",
                params![professional_id, subject_id],
            )
        })
    }

    fn revoke_device(&self, device_id: &str) -> ApiResult<()> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE device SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                params![device_id, now_ms()],
            )?;
            if n == 0 {
                return Err(ApiError::NotFound(format!("no active device {device_id}")));
            }
            Self::forget_keys(tx, device_id)?;
            Self::forget_queue(tx, device_id)?;
            Self::forget_recipient_devices(tx, "device_id = ?1", [device_id])
        })
    }

    fn audit(&self, subject_id: &str) -> ApiResult<Vec<AuditRecord>> {
        let c = self.lock();
        let mut stmt = c.prepare_cached(
            "SELECT at_ms, actor_id, actor_role, device_id, subject_id, action, detail FROM audit
             WHERE subject_id = ?1 ORDER BY at_ms, id",
        )?;
        let rows = stmt.query_map([subject_id], |r| {
            Ok(AuditRecord {
                at: rfc3339(r.get(0)?),
                actor_id: r.get(1)?,
                actor_role: r.get(2)?,
                device_id: r.get(3)?,
                subject_id: r.get(4)?,
                action: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn upload_keys(&self, auth: &DeviceAuth, up: &KeysUpload) -> ApiResult<KeysUploadResponse> {
        self.write(|tx| Self::upload_keys_tx(tx, auth, up))
    }

    fn devices(&self, auth: &DeviceAuth) -> ApiResult<Vec<DeviceKeys>> {
        Self::devices_of_partners(&self.lock(), auth)
    }

    fn claim_keys(&self, auth: &DeviceAuth, devices: &[String]) -> ApiResult<KeysClaimResponse> {
        self.write(|tx| Self::claim_tx(tx, auth, devices))
    }

    fn conversations(
        &self,
        auth: &DeviceAuth,
    ) -> ApiResult<Vec<polku_protocol::relay::Conversation>> {
        Self::conversations_of(&self.lock(), auth)
    }

    fn send_messages(
        &self,
        auth: &DeviceAuth,
        messages: Vec<polku_protocol::relay::Outgoing>,
    ) -> ApiResult<polku_protocol::relay::SendResponse> {
        self.write(|tx| Self::send_tx(tx, auth, messages))
    }

    fn fetch_messages(
        &self,
        auth: &DeviceAuth,
        req: &polku_protocol::relay::FetchRequest,
    ) -> ApiResult<polku_protocol::relay::FetchResponse> {
        self.write(|tx| Self::fetch_tx(tx, auth, req))
    }

    fn upload_attachment(
        &self,
        auth: &DeviceAuth,
        id: &str,
        conversation: &str,
        blob: &[u8],
        rules: &AttachmentRules,
    ) -> ApiResult<polku_protocol::attachment::UploadResponse> {
        self.write(|tx| Self::sweep_attachments(tx, rules))?;
        self.write(|tx| Self::upload_attachment_tx(tx, auth, id, conversation, blob, rules))
    }

    fn attachment(
        &self,
        auth: &DeviceAuth,
        id: &str,
        rules: &AttachmentRules,
    ) -> ApiResult<Vec<u8>> {
        self.write(|tx| Self::sweep_attachments(tx, rules))?;
        self.write(|tx| Self::attachment_blob(tx, auth, id))
    }

    fn attachment_fetched(
        &self,
        auth: &DeviceAuth,
        id: &str,
    ) -> ApiResult<polku_protocol::attachment::FetchedResponse> {
        self.write(|tx| Self::attachment_fetched_tx(tx, auth, id))
    }

    fn record_failure(&self, f: &AuthFailure) -> ApiResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO auth_failure (at_ms, source, attempt, code, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![now_ms(), f.source, f.attempt, f.code, f.detail])?;
            Ok(())
        })
    }

    fn failures(&self, since_ms: i64) -> ApiResult<Vec<AuthFailure>> {
        let c = self.lock();
        let mut stmt = c.prepare_cached(
            "SELECT at_ms, source, attempt, code, detail FROM auth_failure WHERE at_ms >= ?1 ORDER BY at_ms, id",
        )?;
        let rows = stmt.query_map([since_ms], |r| {
            Ok(AuthFailure {
                at: rfc3339(r.get(0)?),
                source: r.get(1)?,
                attempt: r.get(2)?,
                code: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn enroll(&self, code: &str, device_name: Option<&str>) -> ApiResult<EnrollResponse> {
        let hash = sha256_hex(&normalise_code(code));
        let token = hex(&random_bytes::<32>()?);
        let device_id = uuid::Uuid::new_v4().to_string();
        let name = device_name.map(|n| n.chars().take(100).collect::<String>());
        self.write(|tx| {
            let row: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT user_id, expires_ms, used_ms FROM enrollment_code WHERE code_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((user_id, expires_ms, used_ms)) = row else {
                return Err(ApiError::unauthorized("invalid_code", "this enrollment code is not known"));
            };
            if used_ms.is_some() {
                return Err(ApiError::unauthorized("code_used", "this enrollment code was already used; ask for a new one"));
            }
            let now = now_ms();
            if now >= expires_ms {
                return Err(ApiError::unauthorized("code_expired", "this enrollment code has expired; ask for a new one"));
            }
            tx.execute("UPDATE enrollment_code SET used_ms = ?2 WHERE code_hash = ?1", params![hash, now])?;
            tx.execute(
                "INSERT INTO device (id, user_id, token_hash, name, enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![device_id, user_id, sha256_hex(&token), name, now],
            )?;
            let user = Self::user(tx, &user_id)?;
            Ok(EnrollResponse {
                device_id: device_id.clone(),
                token: token.clone(),
                user_id: user.id,
                role: user.role.as_str().to_owned(),
                name: user.name,
                epoch: self.epoch.clone(),
            })
        })
    }

    fn authenticate(&self, token: &str) -> ApiResult<DeviceAuth> {
        let c = self.lock();
        let row: Option<(String, String, String, Option<i64>)> = c
            .prepare_cached(
                "SELECT d.id, d.user_id, u.role, d.revoked_ms FROM device d JOIN user u ON u.id = d.user_id
                 WHERE d.token_hash = ?1",
            )?
            .query_row([sha256_hex(token)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        match row {
            None => Err(ApiError::unauthorized(
                "unauthorized",
                "unknown device token",
            )),
            Some((_, _, _, Some(_))) => Err(ApiError::unauthorized(
                "device_revoked",
                "this device was revoked",
            )),
            Some((device_id, user_id, role, None)) => Ok(DeviceAuth {
                device_id,
                user_id,
                role: Role::parse(&role)
                    .ok_or_else(|| ApiError::Internal("unknown role".into()))?,
            }),
        }
    }

    fn subjects(&self, auth: &DeviceAuth) -> ApiResult<Vec<SubjectInfo>> {
        let c = self.lock();
        let ids = Self::streams(&c, auth)?;
        ids.into_iter()
            .map(|id| {
                let u = Self::user(&c, &id)?;
                Ok(SubjectInfo {
                    id: u.id,
                    name: u.name,
                })
            })
            .collect()
    }

    fn push(&self, auth: &DeviceAuth, ops: Vec<Op>) -> ApiResult<Vec<OpResult>> {
        if auth.role == Role::Admin {
            return Err(ApiError::Forbidden(
                "administrators manage users; they hold no health records".into(),
            ));
        }
        if ops.len() > MAX_PUSH_OPS {
            return Err(ApiError::bad(
                "too_many_ops",
                format!(
                    "{} operations in one push; at most {MAX_PUSH_OPS}",
                    ops.len()
                ),
            ));
        }
        // What needs no database is done before taking the one writer: other pushes write
        // meanwhile (the check and the encoding are most of a push's CPU outside SQLite).
        let now = now_ms();
        let prepared: Vec<Prepared> = ops.into_iter().map(|op| Prepared::new(op, now)).collect();
        self.write(|tx| {
            let allowed = Self::streams(tx, auth)?;
            let coordinated = Self::coordinated_streams(tx, auth)?;
            let mut written: Vec<String> = Vec::new();
            let mut out = Vec::with_capacity(prepared.len());
            let mut last_seq = 0;
            for p in prepared {
                let stream = p.op.stream.clone();
                let seq = p.op.device_seq;
                let r = Self::push_one(tx, auth, &allowed, &coordinated, p, now)?;
                if r.status == OpStatus::Applied {
                    last_seq = last_seq.max(seq);
                    if auth.role.reads_others() && !written.contains(&stream) {
                        written.push(stream);
                    }
                }
                out.push(r);
            }
            tx.prepare_cached("UPDATE device SET last_seq = max(last_seq, ?2) WHERE id = ?1")?
                .execute(params![auth.device_id, last_seq])?;
            for s in &written {
                Self::audit_row(tx, auth, s, "write", None)?;
            }
            Ok(out)
        })
    }

    fn pull(&self, auth: &DeviceAuth, req: PullRequest) -> ApiResult<PullResponse> {
        if auth.role == Role::Admin {
            return Err(ApiError::Forbidden(
                "administrators manage users; they read no health records".into(),
            ));
        }
        let budget = req
            .max_bytes
            .unwrap_or(DEFAULT_PULL_BYTES)
            .clamp(1024, MAX_PULL_BYTES);
        let restart = req.epoch.as_deref().is_some_and(|e| e != self.epoch);
        self.write(|tx| {
            let allowed = Self::streams(tx, auth)?;
            let coordinated = Self::coordinated_streams(tx, auth)?;
            let mut used = 0usize;
            let mut pages = Vec::with_capacity(allowed.len());
            for id in &allowed {
                let after = if restart {
                    0
                } else {
                    req.streams.iter().find(|s| &s.id == id).map_or(0, |s| s.after.max(0))
                };
                let mut ops = Vec::new();
                let mut more = false;
                let planning_only = coordinated.contains(id);
                // The device's own operations are not sent back (it has them), but the cursor
                // still moves past them.
                let mut scanned = after;
                {
                    let mut stmt = tx.prepare_cached(
                        "SELECT seq, op_id, device_id, hlc, kind, schema_version, payload, future FROM op
                         WHERE stream = ?1 AND seq > ?2 ORDER BY seq",
                    )?;
                    let mut rows = stmt.query(params![id, after])?;
                    while let Some(r) = rows.next()? {
                        let seq: i64 = r.get(0)?;
                        let device: String = r.get(2)?;
                        if device == auth.device_id {
                            scanned = seq;
                            continue;
                        }
                        let payload: String = r.get(6)?;
                        if planning_only && !coordination::coordinator_reads(&r.get::<_, String>(4)?, &payload) {
                            scanned = seq;
                            continue;
                        }
                        // Always at least one operation per page, so a large one cannot stall a stream.
                        if used + payload.len() > budget && (!ops.is_empty() || used > 0) {
                            more = true;
                            break;
                        }
                        used += payload.len() + 200;
                        scanned = seq;
                        ops.push(StreamOp {
                            seq,
                            op_id: r.get(1)?,
                            device_id: device,
                            hlc: r.get(3)?,
                            kind: r.get(4)?,
                            schema_version: r.get(5)?,
                            payload: serde_json::value::RawValue::from_string(payload)?,
                            future: r.get(7)?,
                        });
                    }
                }
                if auth.role.reads_others() {
                    Self::audit_row(tx, auth, id, "read", Some(&format!("{} operations after {after}", ops.len())))?;
                }
                let next_after = scanned;
                pages.push(StreamPage {
                    id: id.clone(),
                    ops,
                    next_after,
                    more,
                });
            }
            let removed = req
                .streams
                .iter()
                .filter(|s| !allowed.contains(&s.id))
                .map(|s| s.id.clone())
                .collect();
            let one_time_keys = Self::one_time_keys_left(tx, &auth.device_id)?;
            // Every member of conversations gets it, keys published or not: a device's first sync
            // (which publishes) already learns the directory, and later ones only when it changes.
            let directory = match auth.role {
                Role::Admin => None,
                _ => Some(Self::directory_digest(tx, auth)?),
            };
            Ok(PullResponse {
                epoch: self.epoch.clone(),
                server_ms: now_ms().max(0) as u64,
                streams: pages,
                removed,
                one_time_keys,
                messages: Some(Self::waiting(tx, &auth.device_id)?),
                directory,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A county's database from before issue 9 is upgraded in place: every stored operation of a
    /// kind that belongs to a record gets that record's owner, and refusals keep their device.
    #[test]
    fn an_upgraded_database_knows_the_owner_of_every_operation() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let key = ServerKey::generate().unwrap();
        let entry = uuid::Uuid::now_v7();
        {
            let mut c = Connection::open(db_path(&data)).unwrap();
            c.execute_batch(&format!("PRAGMA key = {};", key.pragma()))
                .unwrap();
            Migrations::new(vec![M::up(SCHEMA_V1)])
                .to_latest(&mut c)
                .unwrap();
            let payload = serde_json::json!({"version_id": "v", "entry_id": entry.to_string()});
            c.execute(
                "INSERT INTO op (stream, seq, op_id, device_id, device_seq, hlc, kind, schema_version, payload, received_ms)
                 VALUES ('s', 1, 'o1', 'd', 1, 'h', 'diary.entry_version', 1, ?1, 0),
                        ('s', 2, 'o3', 'd', 2, 'h', 'questionnaire.response', 1, '{}', 0)",
                [payload.to_string()],
            )
            .unwrap();
            c.execute(
                "INSERT INTO op_outcome (op_id, device_id, status, code, reason) VALUES ('o2', 'd', 'rejected', 'x', 'y')",
                [],
            )
            .unwrap();
        }
        let st = SqliteStorage::open(&data, &key).unwrap();
        let c = st.lock();
        let owner = |op: &str| -> Option<Vec<u8>> {
            c.query_row("SELECT owner FROM op WHERE op_id = ?1", [op], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(owner("o1"), Some(entry.as_bytes().to_vec()));
        assert_eq!(owner("o3"), None, "a response belongs to no other record");
        let kept: i64 = c
            .query_row(
                "SELECT count(*) FROM op_outcome WHERE device_id = 'd' AND op_id = 'o2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 1);
    }

    /// Tables (their columns), indexes and user_version of a database.
    fn shape(c: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut stmt = c
            .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")
            .unwrap();
        let rows: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for (ty, name, sql) in rows {
            if ty == "table" {
                // A renamed table keeps its old CREATE text: compare the columns instead.
                let mut cols = c
                    .prepare(&format!("PRAGMA table_info(\"{name}\")"))
                    .unwrap();
                let cols: Vec<String> = cols
                    .query_map([], |r| {
                        Ok(format!(
                            "{}:{}:{}:{}",
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(5)?
                        ))
                    })
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                out.push(format!("table {name} {}", cols.join(",")));
            } else {
                out.push(format!(
                    "{ty} {name} {}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        out.push(format!("user_version {v}"));
        out
    }

    #[test]
    fn a_database_upgraded_from_the_first_schema_equals_a_fresh_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate().unwrap();
        let old = dir.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        {
            let mut c = Connection::open(db_path(&old)).unwrap();
            c.execute_batch(&format!("PRAGMA key = {};", key.pragma()))
                .unwrap();
            Migrations::new(vec![M::up(SCHEMA_V1)])
                .to_latest(&mut c)
                .unwrap();
        }
        let upgraded = SqliteStorage::open(&old, &key).unwrap();
        let fresh = SqliteStorage::init(&dir.path().join("fresh"), &key).unwrap();
        let (a, b) = (shape(&upgraded.lock()), shape(&fresh.lock()));
        assert_eq!(a, b);
        assert!(a.iter().any(|l| l.starts_with("table one_time_key")));
    }
}
