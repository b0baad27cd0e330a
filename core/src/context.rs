//! What every domain operation runs in: the store, whose record it acts on, who writes, the
//! clocks. One per subject view; the root object (`client.rs`) builds it, the domains borrow it.
//! It holds nothing of any domain, so every domain can stand on it (docs/architecture.md).

use std::sync::Arc;

use chrono_tz::Tz;
use polku_protocol::hlc::HlcClock;
use polku_protocol::Role;
use rusqlite::Transaction;

use crate::error::Result;
use crate::store::{outbox, Store};
use crate::time::Clock;

/// The profile key of the role this device was enrolled with (written by sync's enrollment).
pub(crate) const KEY_ROLE: &str = "sync.role";

pub(crate) struct Context {
    /// Shared by the views of every subject on this device (`Polku::for_subject`).
    pub store: Arc<Store>,
    /// Whose record this view acts on (the citizen's subject id).
    pub subject: String,
    /// The subject's local number (`subject.no`), the key rows and indexes use.
    pub subject_no: i64,
    /// Who writes from this device.
    pub author: String,
    pub device_id: String,
    pub tz: Tz,
    pub clock: Arc<dyn Clock>,
    /// This device's hybrid logical clock, shared by every subject view (stamps sync operations).
    pub hlc: Arc<HlcClock>,
}

impl Context {
    /// A copy for acting on another subject of the same device.
    pub(crate) fn view(&self, subject: String, subject_no: i64) -> Context {
        Context {
            store: self.store.clone(),
            subject,
            subject_no,
            author: self.author.clone(),
            device_id: self.device_id.clone(),
            tz: self.tz,
            clock: self.clock.clone(),
            hlc: self.hlc.clone(),
        }
    }

    /// Queues record `record_id` of `kind` for upload, stamped with the device's clock now, in
    /// the transaction that writes it.
    pub(crate) fn queue(&self, tx: &Transaction<'_>, kind: &str, record_id: &str) -> Result<()> {
        let hlc = self
            .hlc
            .tick(self.clock.now().timestamp_millis().max(0) as u64);
        outbox::enqueue(tx, kind, record_id, self.subject_no, &hlc.to_string())
    }

    /// The role this device was enrolled with, if enrolled.
    pub(crate) fn device_role(&self) -> Result<Option<Role>> {
        Ok(self
            .store
            .profile_get(KEY_ROLE)?
            .and_then(|r| Role::parse(&r)))
    }
}
