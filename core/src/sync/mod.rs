//! Offline-first sync with the county's server: outbox up, change log down (docs/sync.md).
//!
//! - Every record this device writes is queued in `sync_outbox` in the same transaction as the
//!   record itself (`store::outbox`), so an acknowledged write is also a queued upload.
//! - [`Sync::sync`] pushes the outbox in bounded batches (`push.rs`: each operation ends applied,
//!   duplicate, or quarantined with the server's reason, never blocking the rest), then pulls
//!   every stream the device may read, one bounded page at a time (`pull.rs`); a page and its
//!   cursor commit in one transaction, so a cut connection resumes where it stopped.
//! - Sync knows no domain: it reaches the records through the registry of kinds
//!   (`store::kind`), which the root object builds (docs/architecture.md).
//! - Enrollment and the profile settings it keeps are in `enroll.rs`; status in `status.rs`;
//!   the retry policy in `retry.rs`.

mod enroll;
pub(crate) mod http;
mod pull;
mod push;
mod retry;
mod status;

pub(crate) use enroll::{http_for, server_identity};
pub use http::install_crypto_provider;
pub(crate) use http::Http;
pub use polku_protocol::{hlc, wire as protocol};
pub use retry::{retryable, Backoff};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::context::Context;
use crate::error::Result;
use crate::store::kind::Registry;
use crate::store::outbox::KEY_HLC;
use enroll::{set, KEY_LAST_ERROR, KEY_LAST_OK};

/// Who this device is on the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrollment {
    pub server: String,
    pub device_id: String,
    pub user_id: String,
    pub role: String,
    pub name: String,
}

/// An operation the server would not take, kept on the device with the server's reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quarantined {
    pub device_seq: i64,
    pub kind: String,
    pub record_id: String,
    pub subject: String,
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    pub enrollment: Option<Enrollment>,
    /// Operations waiting for upload.
    pub pending: u64,
    pub quarantined: Vec<Quarantined>,
    /// Received operations this app version cannot apply yet (newer schema, unknown kind); kept.
    pub held: u64,
    /// Open conflicts waiting for review: forks of a diary entry, and client-detail fields with
    /// concurrent values.
    pub conflicts: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What one `sync` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub pushed: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub pulled: u64,
    pub conflicts: u64,
    pub held: u64,
    pub removed_subjects: Vec<String>,
    pub requests: u64,
    pub bytes: u64,
}

/// Called after each applied page of a pull (and each pushed batch), for long first syncs.
pub trait ProgressListener: Send + std::marker::Sync {
    fn on_progress(&self, progress: SyncProgress);
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Operations done so far in this phase.
    pub done: u64,
    /// Operations left to push (push phase) or `None` when the server has not said (pull).
    pub remaining: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Push,
    Pull,
}

/// Work a domain does with the server on every sync, after the records (the messaging key
/// directory). Sync runs it without knowing the domain, as it reaches records through their kinds.
pub(crate) trait Exchange: Send + std::marker::Sync {
    fn run<'a>(
        &'a self,
        cx: &'a Context,
        http: &'a Http,
        on_server: &'a OnServer,
        report: &'a mut SyncReport,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;
}

/// Who this device is on the server, and what the server's last reply said of it.
pub(crate) struct OnServer {
    pub user_id: String,
    pub device_id: String,
    pub said: ServerSaid,
}

/// What a pull's reply said about this device beyond the records.
#[derive(Debug, Default)]
pub(crate) struct ServerSaid {
    /// Its unclaimed one-time keys in the key directory (`None`: no identity keys there).
    pub one_time_keys: Option<u32>,
    /// Messages waiting in its relay queue (`None`: the server did not say).
    pub messages: Option<u32>,
    /// The digest of its conversations and their devices (`None`: the server did not say).
    pub directory: Option<String>,
}

/// This device's sync: enrollment, status, and the exchange with the server.
pub struct Sync<'a> {
    pub(crate) cx: &'a Context,
    /// The record kinds this device syncs.
    pub(crate) kinds: &'a Registry,
    /// What the domains exchange with the server after the records.
    pub(crate) exchanges: &'a [&'static dyn Exchange],
}

impl Sync<'_> {
    /// Dropping the future cancels it; what was committed stays committed.
    pub async fn sync(&self, progress: Option<&dyn ProgressListener>) -> Result<SyncReport> {
        let out = self.sync_once(progress).await;
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            match &out {
                Ok(_) => {
                    set(tx, KEY_LAST_OK, &now.to_string())?;
                    set(tx, KEY_LAST_ERROR, "")?;
                }
                Err(e) => set(tx, KEY_LAST_ERROR, &e.to_string())?,
            }
            set(tx, KEY_HLC, &self.cx.hlc.current().to_string())
        })?;
        out
    }

    /// [`Sync::sync`] retried on network and server-busy errors with [`Backoff`]; other errors
    /// (revoked device, not enrolled) return at once.
    pub async fn sync_with_retry(
        &self,
        policy: Backoff,
        progress: Option<&dyn ProgressListener>,
    ) -> Result<SyncReport> {
        let mut n = 0;
        loop {
            match self.sync(progress).await {
                Err(e) if n + 1 < policy.attempts && retryable(&e) => {
                    tokio::time::sleep(policy.delay(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn sync_once(&self, progress: Option<&dyn ProgressListener>) -> Result<SyncReport> {
        let http = self.http()?;
        let mut report = SyncReport::default();
        let mut said = ServerSaid::default();
        self.push(&http, &mut report, progress).await?;
        if self.pull(&http, &mut report, progress, &mut said).await? {
            // A restored server: upload what it lost now rather than on the next sync.
            self.push(&http, &mut report, progress).await?;
        }
        if let Some((user_id, device_id)) = server_identity(&self.cx.store)? {
            let on_server = OnServer {
                user_id,
                device_id,
                said,
            };
            for e in self.exchanges {
                e.run(self.cx, &http, &on_server, &mut report).await?;
            }
        }
        Ok(report)
    }
}
