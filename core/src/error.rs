//! The core's rich error type. Bindings map it to their small public enum in one place.
//!
//! Messages never contain stored health values or note text: only a validation error, which goes
//! back to the person who typed the value, echoes that value.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input outside the allowed range: names the field, the value typed and what is allowed.
    #[error("invalid {field}: {value} (allowed: {allowed})")]
    Validation {
        field: String,
        value: String,
        allowed: String,
    },

    /// The key does not open this database. The file is left untouched.
    #[error("the database key is wrong for {path}")]
    WrongKey { path: PathBuf },

    /// The file is not a readable Polku database. It was renamed (never deleted) to `moved_to`.
    #[error("the database file is corrupt; it was moved aside to {moved_to}")]
    Corrupt { moved_to: PathBuf },

    /// Written by a newer app version: opening it here could lose data, so we refuse.
    #[error("the database has schema version {found}; this app supports up to {supported}: update the app")]
    NewerSchema { found: i64, supported: i64 },

    /// The binary was linked against plain SQLite: health data would be stored in the clear.
    #[error("SQLCipher is not available in this build; refusing to store health data unencrypted")]
    EncryptionUnavailable,

    #[error("{what} {id} was not found")]
    NotFound { what: &'static str, id: String },

    /// A change that conflicts with the stored state (e.g. editing a deleted entry).
    #[error("{0}")]
    Conflict(String),

    /// An import where some rows were malformed: nothing was imported.
    #[error("import rejected, nothing was imported: {}", summarize(.0))]
    Import(Vec<ImportProblem>),

    #[error("storage error: {0}")]
    Storage(String),

    #[error("file error: {0}")]
    Io(String),

    /// This device has not been enrolled with a server (`enroll` first).
    #[error("this device is not enrolled with a sync server")]
    NotEnrolled,

    /// The server could not be reached or the connection broke; nothing was lost, try again.
    #[error("network error: {0}")]
    Network(String),

    /// A device of the conversation shows other identity keys than the ones this device trusts:
    /// nothing is sent until the user accepts them (`messaging().accept_identity`) after checking
    /// with the device's owner.
    #[error("the identity keys of {} changed: check with the owner, then accept them before sending", .devices.join(", "))]
    IdentityChanged { devices: Vec<String> },

    /// Received bytes failed an integrity check (an attachment altered on the server, a
    /// verification whose codes or keys do not match): nothing of them was kept.
    #[error("integrity check failed: {0}")]
    Crypto(String),

    /// The server answered with a typed error (`code` is stable, e.g. `device_revoked`).
    #[error("server refused ({status} {code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
}

/// One malformed row of an import file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImportProblem {
    /// 1-based line number in the file.
    pub line: u64,
    pub message: String,
}

fn summarize(problems: &[ImportProblem]) -> String {
    let shown: Vec<String> = problems
        .iter()
        .take(5)
        .map(|p| format!("line {}: {}", p.line, p.message))
        .collect();
    let more = problems.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

impl From<polku_protocol::validate::FieldError> for Error {
    fn from(e: polku_protocol::validate::FieldError) -> Self {
        Error::Validation {
            field: e.field,
            value: e.value,
            allowed: e.allowed,
        }
    }
}

impl Error {
    /// The stable machine code of this kind of error: what the CLI prints as `error.code` and
    /// the FFI's sync errors carry (a server's refusal carries the server's own code there).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "validation",
            Error::WrongKey { .. } => "wrong_key",
            Error::Corrupt { .. } => "corrupt",
            Error::NewerSchema { .. } => "newer_schema",
            Error::EncryptionUnavailable => "encryption_unavailable",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Crypto(_) => "crypto",
            Error::Import(_) => "import_rejected",
            Error::Storage(_) => "storage",
            Error::Io(_) => "io",
            Error::NotEnrolled => "not_enrolled",
            Error::Network(_) => "network",
            Error::Server { .. } => "server",
            Error::IdentityChanged { .. } => "identity_changed",
        }
    }

    pub fn validation(
        field: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Error::Validation {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite messages carry SQL text and error codes, never bound parameter values.
        Error::Storage(e.to_string())
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        Error::Storage(format!("stored value has an unexpected type: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Storage(format!(
            "stored record could not be decoded: {}",
            e.classify_name()
        ))
    }
}

/// The category of a JSON error, without its message (which can quote the input: health data).
pub(crate) trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    // The serde_json message can quote the offending input; keep only its category.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
    }
}
