//! Sync through the FFI: `sync()` is async (Kotlin `suspend`, Swift `async`) on uniffi's tokio
//! runtime; progress reaches the shell through a listener it implements; status is a plain read.

use std::sync::Arc;
use std::time::SystemTime;

use polku_core::sync as cs;
use polku_core::Polku;

use crate::convert::{system_time, DiaryEntry};
use crate::error::{guard, PolkuError, Result};

/// A person this device may see.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SubjectInfo {
    pub id: String,
    pub name: String,
}

/// Who this device is on the server.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DeviceEnrollment {
    pub server: String,
    pub device_id: String,
    pub user_id: String,
    pub role: String,
    pub name: String,
}

impl From<cs::Enrollment> for DeviceEnrollment {
    fn from(e: cs::Enrollment) -> Self {
        DeviceEnrollment {
            server: e.server,
            device_id: e.device_id,
            user_id: e.user_id,
            role: e.role,
            name: e.name,
        }
    }
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct QuarantinedOp {
    pub device_seq: i64,
    pub kind: String,
    pub record_id: String,
    pub subject: String,
    pub code: String,
    pub reason: String,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncStatus {
    pub enrollment: Option<DeviceEnrollment>,
    pub pending: u64,
    pub quarantined: Vec<QuarantinedOp>,
    pub held: u64,
    pub conflicts: u64,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, uniffi::Record)]
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

impl From<cs::SyncReport> for SyncReport {
    fn from(r: cs::SyncReport) -> Self {
        SyncReport {
            pushed: r.pushed,
            duplicates: r.duplicates,
            quarantined: r.quarantined,
            pulled: r.pulled,
            conflicts: r.conflicts,
            held: r.held,
            removed_subjects: r.removed_subjects,
            requests: r.requests,
            bytes: r.bytes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SyncPhase {
    Push,
    Pull,
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    pub done: u64,
    pub remaining: Option<u64>,
}

/// Implemented by the shell to show progress of a long first sync.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    fn on_progress(&self, progress: SyncProgress);
}

struct Forward(Arc<dyn SyncListener>);

impl cs::ProgressListener for Forward {
    fn on_progress(&self, p: cs::SyncProgress) {
        self.0.on_progress(SyncProgress {
            phase: match p.phase {
                cs::SyncPhase::Push => SyncPhase::Push,
                cs::SyncPhase::Pull => SyncPhase::Pull,
            },
            done: p.done,
            remaining: p.remaining,
        });
    }
}

/// Concurrent versions of one diary entry waiting for a person to choose.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SyncConflict {
    pub id: String,
    pub subject: String,
    pub entry_id: String,
    pub version: i64,
    pub versions: Vec<DiaryEntry>,
    pub detected_at: SystemTime,
}

#[derive(uniffi::Object)]
pub struct SyncClient {
    pub(crate) inner: Arc<Polku>,
}

#[uniffi::export(async_runtime = "tokio")]
impl SyncClient {
    /// Pushes everything written on this device, then pulls every permitted subject. Cancelling
    /// the coroutine/task stops it; what was committed stays committed and the next sync resumes.
    pub async fn sync(&self, listener: Option<Arc<dyn SyncListener>>) -> Result<SyncReport> {
        let fwd = listener.map(Forward);
        let p = fwd.as_ref().map(|f| f as &dyn cs::ProgressListener);
        match futures_guard(self.inner.sync().sync(p)).await {
            Ok(r) => Ok(r.into()),
            Err(e) => Err(e),
        }
    }

    /// The people this device may see, as the server says now: `(id, name)` pairs.
    pub async fn subjects(&self) -> Result<Vec<SubjectInfo>> {
        let s = futures_guard(self.inner.sync().remote_subjects()).await?;
        Ok(s.into_iter()
            .map(|s| SubjectInfo {
                id: s.id,
                name: s.name,
            })
            .collect())
    }

    pub fn status(&self) -> Result<SyncStatus> {
        guard("sync status", || {
            let s = self.inner.sync().status()?;
            Ok(SyncStatus {
                enrollment: s.enrollment.map(Into::into),
                pending: s.pending,
                quarantined: s
                    .quarantined
                    .into_iter()
                    .map(|q| QuarantinedOp {
                        device_seq: q.device_seq,
                        kind: q.kind,
                        record_id: q.record_id,
                        subject: q.subject,
                        code: q.code,
                        reason: q.reason,
                    })
                    .collect(),
                held: s.held,
                conflicts: s.conflicts,
                last_success: s.last_success.map(system_time),
                last_error: s.last_error,
            })
        })
    }

    pub fn conflicts(&self) -> Result<Vec<SyncConflict>> {
        guard("conflicts", || {
            Ok(self
                .inner
                .diary()
                .conflicts()?
                .into_iter()
                .map(|c| SyncConflict {
                    id: c.id,
                    subject: c.subject,
                    entry_id: c.entry_id.to_string(),
                    version: c.version,
                    versions: c.versions.into_iter().map(Into::into).collect(),
                    detected_at: system_time(c.detected_at),
                })
                .collect())
        })
    }

    /// Settles a conflict by keeping version `keep_version_id`.
    pub fn resolve_conflict(
        &self,
        conflict_id: String,
        keep_version_id: String,
    ) -> Result<DiaryEntry> {
        guard("resolve conflict", || {
            let keep = crate::convert::parse_id("keep_version_id", &keep_version_id)?;
            Ok(self
                .inner
                .diary()
                .resolve_conflict(&conflict_id, keep)?
                .into())
        })
    }
}

/// A panic inside a sync future becomes `PolkuError::Internal`, as `guard` does for plain calls.
pub(crate) async fn futures_guard<T>(
    f: impl std::future::Future<Output = polku_core::Result<T>>,
) -> Result<T> {
    use std::panic::AssertUnwindSafe;
    let mut f = std::pin::pin!(f);
    let out = std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(r)) => std::task::Poll::Ready(Ok(r)),
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    })
    .await;
    match out {
        Ok(r) => r.map_err(PolkuError::from),
        Err(()) => Err(PolkuError::Internal {
            detail: "sync failed unexpectedly (a bug); nothing was lost, try again".into(),
        }),
    }
}

/// One edit of a client-detail field.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DetailEdit {
    pub id: String,
    pub field: String,
    pub value: Option<String>,
    pub author: String,
    pub at: SystemTime,
}

/// A field's value, and the values written concurrently on other devices while in conflict.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DetailValue {
    pub field: String,
    pub current: DetailEdit,
    pub conflicting: Vec<DetailEdit>,
}

fn detail_edit(e: polku_core::details::DetailEdit) -> DetailEdit {
    DetailEdit {
        id: e.id.to_string(),
        field: e.field,
        value: e.value,
        author: e.author,
        at: system_time(e.at),
    }
}

/// Client details (phone, address, access instructions, ...), merged per field across devices.
#[derive(uniffi::Object)]
pub struct DetailsClient {
    pub(crate) inner: Arc<Polku>,
}

#[uniffi::export]
impl DetailsClient {
    /// Sets a field, or clears it with `None`; settles a conflict on that field.
    pub fn set(&self, field: String, value: Option<String>) -> Result<DetailEdit> {
        guard("set detail", || {
            Ok(detail_edit(
                self.inner.details().set(&field, value.as_deref())?,
            ))
        })
    }

    pub fn get(&self) -> Result<Vec<DetailValue>> {
        guard("details", || {
            Ok(self
                .inner
                .details()
                .get()?
                .into_iter()
                .map(|v| DetailValue {
                    field: v.field,
                    current: detail_edit(v.current),
                    conflicting: v.conflicting.into_iter().map(detail_edit).collect(),
                })
                .collect())
        })
    }

    pub fn history(&self, field: String) -> Result<Vec<DetailEdit>> {
        guard("detail history", || {
            Ok(self
                .inner
                .details()
                .history(&field)?
                .into_iter()
                .map(detail_edit)
                .collect())
        })
    }
}
