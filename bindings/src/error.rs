//! The one public error of the FFI, mapped from the core's rich error in one place, and the guard
//! that turns a panic inside a call into `PolkuError::Internal` instead of a crash.

use std::panic::{catch_unwind, AssertUnwindSafe};

use polku_core::Error as CoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Record)]
#[error("line {line}: {problem}")]
pub struct ImportProblem {
    pub line: u64,
    pub problem: String,
}

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PolkuError {
    /// Input outside the allowed range: the field, the value typed, what is allowed.
    #[error("invalid {field}: {value} (allowed: {allowed})")]
    Validation {
        field: String,
        value: String,
        allowed: String,
    },
    /// The key does not open this database; the file is untouched.
    #[error("wrong database key")]
    WrongKey,
    /// The database file was unreadable and has been moved aside to `moved_to` (never deleted).
    #[error("database corrupt, moved aside to {moved_to}")]
    Corrupt { moved_to: String },
    /// Written by a newer app version.
    #[error("database schema {found} is newer than this app's {supported}")]
    NewerSchema { found: i64, supported: i64 },
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    #[error("conflict: {detail}")]
    Conflict { detail: String },
    /// An import file with malformed rows; nothing was imported.
    #[error("import rejected: {} problem(s)", problems.len())]
    ImportRejected { problems: Vec<ImportProblem> },
    /// Encryption unavailable or the key store failed.
    #[error("crypto: {detail}")]
    Crypto { detail: String },
    #[error("storage: {detail}")]
    Storage { detail: String },
    /// Sync: not enrolled, the server unreachable (`retryable`), or the server refused with a
    /// stable `code` (e.g. `device_revoked`).
    #[error("sync: {detail}")]
    Sync {
        code: String,
        detail: String,
        retryable: bool,
    },
    /// Devices of the conversation show new identity keys: accept them
    /// (`messaging().acceptIdentity`) after checking with their owner, then send.
    #[error("identity keys changed: {}", devices.join(", "))]
    IdentityChanged { devices: Vec<String> },
    /// A bug: a panic or an impossible state. The app keeps running.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl From<CoreError> for PolkuError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Validation {
                field,
                value,
                allowed,
            } => PolkuError::Validation {
                field,
                value,
                allowed,
            },
            CoreError::WrongKey { .. } => PolkuError::WrongKey,
            CoreError::Corrupt { moved_to } => PolkuError::Corrupt {
                moved_to: moved_to.display().to_string(),
            },
            CoreError::NewerSchema { found, supported } => {
                PolkuError::NewerSchema { found, supported }
            }
            CoreError::EncryptionUnavailable | CoreError::Crypto(_) => PolkuError::Crypto {
                detail: e.to_string(),
            },
            CoreError::NotFound { what, id } => PolkuError::NotFound {
                what: what.to_owned(),
                id,
            },
            CoreError::Conflict(detail) => PolkuError::Conflict { detail },
            CoreError::Import(problems) => PolkuError::ImportRejected {
                problems: problems
                    .into_iter()
                    .map(|p| ImportProblem {
                        line: p.line,
                        problem: p.message,
                    })
                    .collect(),
            },
            CoreError::Storage(detail) | CoreError::Io(detail) => PolkuError::Storage { detail },
            CoreError::IdentityChanged { devices } => PolkuError::IdentityChanged { devices },
            e @ (CoreError::NotEnrolled | CoreError::Network(_) | CoreError::Server { .. }) => {
                let retryable = polku_core::sync::retryable(&e);
                let code = match &e {
                    CoreError::Server { code, .. } => code.clone(),
                    other => other.code().to_owned(),
                };
                PolkuError::Sync {
                    code,
                    detail: e.to_string(),
                    retryable,
                }
            }
        }
    }
}

/// A failure inside a foreign implementation (e.g. the shell's key provider threw).
impl From<uniffi::UnexpectedUniFFICallbackError> for PolkuError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PolkuError::Crypto {
            detail: format!("key provider failed: {}", e.reason),
        }
    }
}

pub type Result<T> = std::result::Result<T, PolkuError>;

/// Runs an FFI call so that a panic becomes `PolkuError::Internal`. The panic's message is not
/// passed on: it could quote data.
pub(crate) fn guard<T>(op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(PolkuError::Internal {
            detail: format!("{op} failed unexpectedly"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r: Result<()> = guard("test", || panic!("secret 5.6 mmol/L"));
        match r {
            Err(PolkuError::Internal { detail }) => {
                assert_eq!(detail, "test failed unexpectedly");
                assert!(!detail.contains("5.6"));
            }
            other => panic!("expected Internal, got {other:?}"),
        }
    }
}
