//! The sync wire format, shared by the device and the server so both read the same bytes.
//! JSON over HTTP; every route is under `/v1`. See docs/sync.md for the exchange step by step.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest push the server takes (operations per request); the client sends at most this.
pub const MAX_PUSH_OPS: usize = 500;
/// The largest request body the server reads.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The largest single operation payload (serialised JSON).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Default and upper bound of one pull page.
pub const DEFAULT_PULL_BYTES: usize = 512 * 1024;
pub const MAX_PULL_BYTES: usize = 4 * 1024 * 1024;

/// One change, as a device sends it. `op_id` is the id of the immutable record it carries, so
/// sending it twice can only ever store it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    pub op_id: String,
    /// The subject stream (the subject's id).
    pub stream: String,
    /// Position in this device's outbox: strictly increasing, never reused.
    pub device_seq: i64,
    pub hlc: String,
    pub kind: String,
    /// The record kind's schema version this payload follows.
    pub schema_version: u32,
    pub payload: Value,
}

/// An operation as the server hands it out: with its place in the stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamOp {
    pub seq: i64,
    pub op_id: String,
    pub device_id: String,
    pub hlc: String,
    pub kind: String,
    pub schema_version: u32,
    /// Passed through as stored: the server neither parses nor re-encodes it.
    pub payload: Box<serde_json::value::RawValue>,
    /// The stamp was far ahead of the server's clock when it arrived (kept, ordered by `seq`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub future: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Stored now, at `seq`.
    Applied,
    /// Stored before (a retry); `seq` is where.
    Duplicate,
    /// Not stored in the stream; the device keeps it quarantined with `reason`.
    Rejected,
    /// Kept aside by the server for a person to review (e.g. written while assigned, uploaded after
    /// the assignment ended); the device keeps it quarantined with `reason`.
    Held,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpResult {
    pub op_id: String,
    pub status: OpStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// A stable code (`forbidden_stream`, `payload_too_large`, …) for rejected or held operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<OpResult>,
    pub server_ms: u64,
    pub epoch: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamCursor {
    pub id: String,
    /// The last sequence number the device has applied (0 for none).
    pub after: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The server epoch the cursors belong to; a different epoch restarts every stream at 0.
    #[serde(default)]
    pub epoch: Option<String>,
    pub streams: Vec<StreamCursor>,
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamPage {
    pub id: String,
    pub ops: Vec<StreamOp>,
    /// The cursor to store with these operations: the last `seq` the server looked at (the
    /// device's own operations are skipped, not sent back).
    pub next_after: i64,
    /// More operations wait beyond this page.
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullResponse {
    pub epoch: String,
    pub server_ms: u64,
    /// Every stream this device may read, each with at most one page.
    pub streams: Vec<StreamPage>,
    /// Streams the request named that this device may no longer read: purge them locally.
    pub removed: Vec<String>,
    /// This device's unclaimed one-time keys in the key directory, once it has published its
    /// identity keys (absent before, and on a server restored without them): the device tops up
    /// below two thirds without a request of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_keys: Option<u32>,
    /// Messages waiting in this device's relay queue (fetched or not, until acknowledged): the
    /// device fetches only when there are some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u32>,
    /// A digest of what `GET /v1/conversations` and `GET /v1/keys/devices` (apart from the
    /// device's own keys) would answer this device now: a device holding the answers of the same
    /// digest does not ask again. Absent for an administrator's device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub code: String,
    #[serde(default)]
    pub device_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device_id: String,
    /// The device's secret: sent once, stored by the server only as a SHA-256 hash.
    pub token: String,
    pub user_id: String,
    pub role: String,
    pub name: String,
    pub epoch: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectInfo {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectsResponse {
    pub subjects: Vec<SubjectInfo>,
}

/// Every error the server returns: a stable `code` to branch on and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
