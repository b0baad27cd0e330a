//! What the HTTP handlers need from storage. SQLite (one encrypted file under `--data`) is the
//! default; a PostgreSQL backend implements the same trait without touching the handlers.

mod key;
mod sqlite;

pub use key::{KeySource, ServerKey};

pub use sqlite::SqliteStorage;

use polku_protocol::attachment::{FetchedResponse, UploadResponse};
use polku_protocol::keys::{DeviceKeys, KeysClaimResponse, KeysUpload, KeysUploadResponse};
use polku_protocol::relay::{Conversation, FetchRequest, FetchResponse, Outgoing, SendResponse};
use polku_protocol::wire::{EnrollResponse, Op, OpResult, PullRequest, PullResponse, SubjectInfo};
use serde::Serialize;

use crate::error::ApiResult;

pub use polku_protocol::Role;

/// The device behind a request, resolved from its token on every request.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device_id: String,
    pub user_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub role: Role,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub at: String,
    pub actor_id: String,
    pub actor_role: String,
    pub device_id: Option<String>,
    pub subject_id: String,
    pub action: String,
    pub detail: Option<String>,
}

/// A failed enrollment or token attempt, or a lockout, as the failure log keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct AuthFailure {
    /// When (RFC 3339); empty when recording (the storage stamps it).
    pub at: String,
    /// The client's address.
    pub source: String,
    /// `enroll` or `token`.
    pub attempt: String,
    /// The refusal's code (`invalid_code`, `code_used`, `unauthorized`, `device_revoked`,
    /// `locked_out`).
    pub code: String,
    pub detail: Option<String>,
}

pub trait Storage: Send + Sync + 'static {
    fn epoch(&self) -> ApiResult<String>;
    fn create_user(&self, role: Role, name: &str) -> ApiResult<User>;
    /// A one-time enrollment code for `user_id`, valid for `ttl` (1 s – 7 days).
    fn invite(&self, user_id: &str, ttl: std::time::Duration) -> ApiResult<String>;
    fn assign(&self, professional_id: &str, subject_id: &str) -> ApiResult<()>;
    /// Makes a professional the coordinator of a citizen's visits: plans and attendance, no
    /// clinical records, no conversation (docs/visits.md).
    fn coordinate(&self, professional_id: &str, subject_id: &str) -> ApiResult<()>;
    /// Ends an assignment: the subject leaves the worker's devices on their next sync.
    fn unassign(&self, professional_id: &str, subject_id: &str) -> ApiResult<()>;
    fn revoke_device(&self, device_id: &str) -> ApiResult<()>;
    fn audit(&self, subject_id: &str) -> ApiResult<Vec<AuditRecord>>;
    /// Keeps a failed attempt (never the code or token tried).
    fn record_failure(&self, failure: &AuthFailure) -> ApiResult<()>;
    /// Failed attempts and lockouts since `since_ms`, oldest first.
    fn failures(&self, since_ms: i64) -> ApiResult<Vec<AuthFailure>>;

    fn enroll(&self, code: &str, device_name: Option<&str>) -> ApiResult<EnrollResponse>;
    fn authenticate(&self, token: &str) -> ApiResult<DeviceAuth>;
    fn subjects(&self, auth: &DeviceAuth) -> ApiResult<Vec<SubjectInfo>>;
    fn push(&self, auth: &DeviceAuth, ops: Vec<Op>) -> ApiResult<Vec<OpResult>>;
    fn pull(&self, auth: &DeviceAuth, req: PullRequest) -> ApiResult<PullResponse>;

    /// Publishes this device's identity keys (once; they never change), one-time keys and a
    /// fallback key, each checked against the device's signature.
    fn upload_keys(&self, auth: &DeviceAuth, up: &KeysUpload) -> ApiResult<KeysUploadResponse>;
    /// The published devices of everyone `auth` shares a conversation with.
    fn devices(&self, auth: &DeviceAuth) -> ApiResult<Vec<DeviceKeys>>;
    /// One key of each named device; a one-time key is never handed out twice.
    fn claim_keys(&self, auth: &DeviceAuth, devices: &[String]) -> ApiResult<KeysClaimResponse>;

    /// The conversations `auth` is a member of, with their members now.
    fn conversations(&self, auth: &DeviceAuth) -> ApiResult<Vec<Conversation>>;
    /// Queues opaque ciphertext for conversation partners' devices (once per message id).
    fn send_messages(&self, auth: &DeviceAuth, messages: Vec<Outgoing>) -> ApiResult<SendResponse>;
    /// Deletes this device's messages up to `req.after` and returns the next ones in order.
    fn fetch_messages(&self, auth: &DeviceAuth, req: &FetchRequest) -> ApiResult<FetchResponse>;

    /// Stores a sealed attachment for the devices of `conversation`'s members but the uploader's
    /// (the same blob again is a harmless retry).
    fn upload_attachment(
        &self,
        auth: &DeviceAuth,
        id: &str,
        conversation: &str,
        blob: &[u8],
        rules: &AttachmentRules,
    ) -> ApiResult<UploadResponse>;
    /// The sealed blob, for a device it was uploaded for whose user is still a member.
    fn attachment(
        &self,
        auth: &DeviceAuth,
        id: &str,
        rules: &AttachmentRules,
    ) -> ApiResult<Vec<u8>>;
    /// The device has the blob; it is deleted once every recipient device has it.
    fn attachment_fetched(&self, auth: &DeviceAuth, id: &str) -> ApiResult<FetchedResponse>;
}

/// How large attachments may be and how long an unfetched one is kept (`serve` options).
#[derive(Debug, Clone)]
pub struct AttachmentRules {
    /// The largest file, before sealing and padding.
    pub max_bytes: usize,
    pub retention: std::time::Duration,
}

impl Default for AttachmentRules {
    fn default() -> Self {
        AttachmentRules {
            max_bytes: polku_protocol::attachment::DEFAULT_MAX_ATTACHMENT_BYTES,
            retention: std::time::Duration::from_secs(
                polku_protocol::attachment::DEFAULT_RETENTION_DAYS * 86_400,
            ),
        }
    }
}
