//! End-to-end encrypted messaging over FFI: conversations, messages, receipts, the devices a
//! user trusts, and a subscription that tells the shell when its conversation list changed.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use polku_core::messaging as cm;
use polku_core::Polku;

use crate::convert::ms;
use crate::error::{guard, Result};

/// Where a message stands. This user's: queued → sending → sent → delivered → read (or
/// undeliverable when written to a conversation they are no longer a member of). Others': received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageState {
    Queued,
    Sending,
    /// Waiting only for devices that show changed identity keys (see `devices`) or cannot be
    /// reached yet.
    Held,
    Sent,
    Delivered,
    Read,
    Received,
    Undeliverable,
}

impl MessageState {
    fn parse(s: &str) -> MessageState {
        match s {
            "queued" => MessageState::Queued,
            "sending" => MessageState::Sending,
            "held" => MessageState::Held,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "read" => MessageState::Read,
            "undeliverable" => MessageState::Undeliverable,
            _ => MessageState::Received,
        }
    }
}

/// Another member's receipt for one of this user's messages.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MessageReceipt {
    pub user_id: String,
    pub delivered_at: Option<SystemTime>,
    pub read_at: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChatMessage {
    pub id: String,
    /// The conversation: the citizen's id.
    pub conversation: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub sent_at: SystemTime,
    pub body: String,
    pub state: MessageState,
    /// When this user read it (their own messages count as read).
    pub read_at: Option<SystemTime>,
    pub receipts: Vec<MessageReceipt>,
    /// A file sent with the message (the body is its name).
    pub attachment: Option<ChatAttachment>,
}

/// A message's file: a photo of a wound, a PDF of lab results.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChatAttachment {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// On this device already (else `fetchAttachment` downloads it).
    pub on_device: bool,
}

impl From<cm::Message> for ChatMessage {
    fn from(m: cm::Message) -> Self {
        ChatMessage {
            id: m.id,
            conversation: m.conversation,
            sender_user_id: m.sender_user,
            sender_device_id: m.sender_device,
            sent_at: ms(m.sent_ms),
            body: m.body,
            state: MessageState::parse(&m.state),
            read_at: m.read_ms.map(ms),
            receipts: m
                .receipts
                .into_iter()
                .map(|r| MessageReceipt {
                    user_id: r.user,
                    delivered_at: r.delivered_ms.map(ms),
                    read_at: r.read_ms.map(ms),
                })
                .collect(),
            attachment: m.attachment.map(|a| ChatAttachment {
                id: a.id,
                name: a.name,
                mime: a.mime,
                size: a.size,
                on_device: a.on_device,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Conversation {
    /// The citizen's id.
    pub id: String,
    /// The members as the server last named them (empty until the first sync).
    pub members: Vec<String>,
    pub unread: u32,
    pub messages: u32,
    pub last_sent_at: Option<SystemTime>,
}

impl From<cm::ConversationSummary> for Conversation {
    fn from(c: cm::ConversationSummary) -> Self {
        Conversation {
            id: c.id,
            members: c.members,
            unread: c.unread,
            messages: c.messages,
            last_sent_at: c.last_sent_ms.map(ms),
        }
    }
}

/// How far this device trusts a member's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeviceTrust {
    /// Its keys as first seen.
    Trusted,
    /// Compared by the user.
    Verified,
    /// It shows other identity keys now: nothing is sent to it until the user accepts them.
    IdentityChanged,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct MemberDevice {
    pub device_id: String,
    pub user_id: String,
    /// The Ed25519 identity key this device trusts for it.
    pub fingerprint: String,
    pub first_seen: SystemTime,
    pub trust: DeviceTrust,
    /// The other key it shows now, when its identity changed.
    pub changed_fingerprint: Option<String>,
}

/// A received ciphertext that failed a check (nothing of it was kept).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct RejectedMessage {
    pub sender_device_id: String,
    pub reason: String,
    pub at: SystemTime,
}

/// Where a verification of a device stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum VerificationState {
    /// Waiting for the other device.
    Waiting,
    /// Both devices show these three numbers: the two people compare them, then `confirm`.
    Compare {
        decimals: Vec<u16>,
    },
    /// This side confirmed; waiting for the other side.
    Confirmed,
    /// The other device's identity key is confirmed (it is shown `Verified`).
    Verified,
    Cancelled {
        reason: String,
    },
}

impl From<cm::VerificationState> for VerificationState {
    fn from(s: cm::VerificationState) -> Self {
        match s {
            cm::VerificationState::Waiting => VerificationState::Waiting,
            cm::VerificationState::Compare { decimals } => VerificationState::Compare {
                decimals: decimals.to_vec(),
            },
            cm::VerificationState::Confirmed => VerificationState::Confirmed,
            cm::VerificationState::Verified => VerificationState::Verified,
            cm::VerificationState::Cancelled { reason } => VerificationState::Cancelled { reason },
        }
    }
}

/// Another device asks to verify this one.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VerificationRequest {
    pub txn: String,
    pub device_id: String,
    pub user_id: String,
    pub at: SystemTime,
}

/// A verification of one device in progress: keep it while both people compare the numbers.
/// The secret it holds lives only in memory; dropping it ends the verification on this side.
#[derive(uniffi::Object)]
pub struct DeviceVerification {
    inner: Arc<Polku>,
    verification: Mutex<cm::Verification>,
}

impl DeviceVerification {
    /// Wraps a verification just started or accepted and sends its first step at once (best
    /// effort: offline, it goes with the next sync).
    async fn begin(inner: &Arc<Polku>, v: cm::Verification) -> Arc<DeviceVerification> {
        let v = Arc::new(DeviceVerification {
            inner: inner.clone(),
            verification: Mutex::new(v),
        });
        v.exchange().await;
        v
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut cm::Verification, &cm::Messaging<'_>) -> polku_core::Result<T>,
    ) -> Result<T> {
        guard("messages.verification", || {
            let mut v = self.verification.lock().unwrap_or_else(|p| p.into_inner());
            Ok(f(&mut v, &self.inner.messaging())?)
        })
    }

    /// Sends what is queued and receives what arrived (best effort: offline, it waits).
    async fn exchange(&self) {
        let _ = crate::sync::futures_guard(self.inner.sync().sync(None)).await;
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl DeviceVerification {
    /// The device being verified.
    pub fn device_id(&self) -> String {
        self.verification
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device()
            .to_owned()
    }

    pub fn state(&self) -> VerificationState {
        self.verification
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state()
            .into()
    }

    /// Syncs, takes the other device's steps and sends the answers: call it until the state
    /// changes (every second or two while the screen is open).
    pub async fn advance(&self) -> Result<VerificationState> {
        self.exchange().await;
        let s = self.with(|v, m| v.poll(m))?;
        self.exchange().await;
        Ok(s.into())
    }

    /// Whether both devices show the same numbers, as the two people told each other.
    pub async fn confirm(&self, matches: bool) -> Result<VerificationState> {
        let s = self.with(|v, m| v.confirm(m, matches))?;
        self.exchange().await;
        Ok(s.into())
    }

    pub async fn cancel(&self) -> Result<()> {
        self.with(|v, m| v.cancel(m))?;
        self.exchange().await;
        Ok(())
    }
}

/// Implemented by the shell: called with the conversation list when the subscription starts
/// and whenever it changes (a message arrived or was read, a receipt came back).
#[uniffi::export(with_foreign)]
pub trait ConversationsListener: Send + Sync {
    fn on_update(&self, conversations: Vec<Conversation>);
}

/// A running subscription: cancelled by `cancel` or when the shell drops it.
#[derive(uniffi::Object)]
pub struct TaskHandle {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[uniffi::export]
impl TaskHandle {
    pub fn cancel(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Where subscriptions wait: one small runtime for the library, apart from the shell's threads.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("polku-subscriptions")
        .enable_all()
        .build()
        .map_err(|e| crate::error::PolkuError::Internal {
            detail: format!("no thread for subscriptions: {e}"),
        })?;
    Ok(RUNTIME.get_or_init(|| rt))
}

#[derive(uniffi::Object)]
pub struct MessagesClient {
    pub(crate) inner: Arc<Polku>,
}

impl MessagesClient {
    /// Tries to deliver a just-queued message at once (best effort: a failure leaves it queued
    /// for the next sync) and returns it as it stands then.
    async fn deliver(&self, queued: cm::Message) -> Result<ChatMessage> {
        let _ = crate::sync::futures_guard(self.inner.sync().sync(None)).await;
        let now = guard("messages.deliver", || {
            Ok(self
                .inner
                .messaging()
                .page(&queued.conversation, None, u32::MAX)?)
        })?;
        Ok(now
            .into_iter()
            .find(|m| m.id == queued.id)
            .unwrap_or(queued)
            .into())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl MessagesClient {
    /// Writes a message to `conversation` (a citizen's id) and tries to deliver it at once. Offline
    /// (or when the server cannot be reached) it stays queued and goes out with the next sync:
    /// the returned message's state says which. A device whose identity keys changed is the
    /// typed error `IdentityChanged`.
    pub async fn send(&self, conversation: String, text: String) -> Result<ChatMessage> {
        let queued = guard("messages.send", || {
            Ok(self.inner.messaging().send(&conversation, &text)?)
        })?;
        self.deliver(queued).await
    }

    /// Sends a file (at most 10 MB) to `conversation`: sealed with a fresh key at once, uploaded
    /// and announced now if the server can be reached, otherwise with the next sync. `mime`
    /// defaults to a guess from the name's extension.
    pub async fn attach(
        &self,
        conversation: String,
        name: String,
        mime: Option<String>,
        data: Vec<u8>,
    ) -> Result<ChatMessage> {
        let queued = guard("messages.attach", || {
            Ok(self
                .inner
                .messaging()
                .attach(&conversation, &name, mime.as_deref(), &data)?)
        })?;
        self.deliver(queued).await
    }

    /// The file of attachment `id`: from this device, or downloaded, checked against the hash
    /// its message named and opened (an altered one is the typed error `Crypto`).
    pub async fn fetch_attachment(&self, id: String) -> Result<Vec<u8>> {
        crate::sync::futures_guard(self.inner.messaging().fetch_attachment(&id)).await
    }

    /// At most `limit` messages written before message `before` (the newest when null), oldest
    /// first.
    pub fn messages(
        &self,
        conversation: String,
        before: Option<String>,
        limit: u32,
    ) -> Result<Vec<ChatMessage>> {
        guard("messages.messages", || {
            Ok(self
                .inner
                .messaging()
                .page(&conversation, before.as_deref(), limit)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The conversations on this device, those with unread messages first.
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        guard("messages.conversations", || {
            Ok(self
                .inner
                .messaging()
                .conversations()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Marks the conversation read; read receipts go with the next sync. Returns how many were
    /// unread.
    pub fn mark_read(&self, conversation: String) -> Result<u32> {
        guard("messages.mark_read", || {
            Ok(self.inner.messaging().mark_read(&conversation)?)
        })
    }

    /// The members' devices as this device trusts them.
    pub fn devices(&self) -> Result<Vec<MemberDevice>> {
        guard("messages.devices", || {
            Ok(self
                .inner
                .messaging()
                .devices()?
                .into_iter()
                .map(|d| MemberDevice {
                    trust: match d.state.as_str() {
                        "identity_changed" => DeviceTrust::IdentityChanged,
                        "verified" => DeviceTrust::Verified,
                        _ => DeviceTrust::Trusted,
                    },
                    device_id: d.device_id,
                    user_id: d.user_id,
                    fingerprint: d.fingerprint,
                    first_seen: ms(d.first_seen_ms),
                    changed_fingerprint: d.changed_fingerprint,
                })
                .collect())
        })
    }

    /// Accepts the new identity keys `device_id` shows, after the user checked with its owner.
    pub fn accept_identity(&self, device_id: String) -> Result<()> {
        guard("messages.accept_identity", || {
            Ok(self.inner.messaging().accept_identity(&device_id)?)
        })
    }

    /// Starts verifying `device_id` by comparing numbers with its owner (in person or on a call).
    pub async fn verify(&self, device_id: String) -> Result<Arc<DeviceVerification>> {
        let v = guard("messages.verify", || {
            Ok(self.inner.messaging().verify(&device_id)?)
        })?;
        Ok(DeviceVerification::begin(&self.inner, v).await)
    }

    /// Other devices' requests to verify this one (the last ten minutes'), as of the last sync.
    pub fn verification_requests(&self) -> Result<Vec<VerificationRequest>> {
        guard("messages.verification_requests", || {
            Ok(self
                .inner
                .messaging()
                .verification_requests()?
                .into_iter()
                .map(|r| VerificationRequest {
                    txn: r.txn,
                    device_id: r.device_id,
                    user_id: r.user_id,
                    at: ms(r.at_ms),
                })
                .collect())
        })
    }

    /// Accepts a request to verify this device.
    pub async fn accept_verification(&self, txn: String) -> Result<Arc<DeviceVerification>> {
        let v = guard("messages.accept_verification", || {
            Ok(self.inner.messaging().accept_verification(&txn)?)
        })?;
        Ok(DeviceVerification::begin(&self.inner, v).await)
    }

    /// This device's Ed25519 identity key (what another person compares), once it has one.
    pub fn fingerprint(&self) -> Result<Option<String>> {
        guard("messages.fingerprint", || {
            Ok(self.inner.messaging().identity()?.map(|k| k.ed25519))
        })
    }

    pub fn rejected(&self) -> Result<Vec<RejectedMessage>> {
        guard("messages.rejected", || {
            Ok(self
                .inner
                .messaging()
                .rejected()?
                .into_iter()
                .map(|r| RejectedMessage {
                    sender_device_id: r.sender_device,
                    reason: r.reason,
                    at: ms(r.at_ms),
                })
                .collect())
        })
    }

    /// Calls `listener` with the conversation list now, then whenever it changes, until the
    /// returned handle is cancelled or dropped.
    pub fn subscribe(&self, listener: Arc<dyn ConversationsListener>) -> Result<Arc<TaskHandle>> {
        guard("messages.subscribe", || {
            let inner = self.inner.clone();
            let mut writes = inner.messaging().watch();
            let task = runtime()?.spawn(async move {
                let mut shown: Option<Vec<cm::ConversationSummary>> = None;
                loop {
                    if let Ok(now) = inner.messaging().conversations() {
                        if shown.as_ref() != Some(&now) {
                            listener.on_update(now.iter().cloned().map(Into::into).collect());
                            shown = Some(now);
                        }
                    }
                    if writes.changed().await.is_err() {
                        return;
                    }
                }
            });
            Ok(Arc::new(TaskHandle {
                task: Mutex::new(Some(task)),
            }))
        })
    }
}
