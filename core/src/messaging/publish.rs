//! Publishing this device's keys to the server's directory on every sync: the identity keys
//! once, then one-time keys topped up to the target whenever fewer than two thirds are left, and
//! a fallback key. Keys are generated and saved before they are uploaded, and marked published
//! only after the server took them: a cut connection re-uploads the same keys (the server takes
//! a repeat as it is), never new ones in their place.

use std::future::Future;
use std::pin::Pin;

use polku_protocol::keys::{
    KeysUpload, KeysUploadResponse, ONE_TIME_KEYS_LOW, ONE_TIME_KEYS_TARGET,
};

use super::account::{self, Stored};
use crate::context::Context;
use crate::error::Result;
use crate::sync::{Exchange, Http, OnServer, SyncReport};

pub(crate) struct KeyPublisher;

pub(crate) static KEY_PUBLISHER: KeyPublisher = KeyPublisher;

/// What is waiting to go up: the identity keys until they are published, and every one-time and
/// fallback key not yet marked published.
fn pending(s: &Stored, user_id: &str, device_id: &str) -> KeysUpload {
    let a = &s.account;
    KeysUpload {
        identity: (!s.published).then(|| account::identity(a, user_id, device_id)),
        one_time_keys: account::signed(a, device_id, a.one_time_keys(), false),
        fallback_key: account::signed(a, device_id, a.fallback_key(), true).pop(),
    }
}

impl KeyPublisher {
    /// `on.said.one_time_keys`: this device's unclaimed one-time keys on the server, as the pull
    /// said (`None`: the server has no identity keys of this device: never published, or a
    /// server restored from a backup taken before).
    async fn publish(
        &self,
        cx: &Context,
        http: &Http,
        on: &OnServer,
        report: &mut SyncReport,
    ) -> Result<()> {
        let left = on.said.one_time_keys;
        let now = || cx.clock.now().timestamp_millis();
        let (user_id, device_id) = (on.user_id.as_str(), on.device_id.as_str());
        // The common case: enough keys on the server and nothing waiting here. No write, no
        // unpickling, no request.
        if left.is_some_and(|n| n as usize >= ONE_TIME_KEYS_LOW)
            && cx.store.read(account::all_published)?
        {
            return Ok(());
        }
        let mut up = cx.store.write(|tx| {
            let mut s = account::load_or_create(tx, now())?;
            if left.is_none() {
                s.published = false;
            }
            top_up(&mut s, left.unwrap_or(0) as usize);
            account::save(tx, &s, now())?;
            Ok(pending(&s, user_id, device_id))
        })?;
        // Nothing to send (the common case): no request at all.
        for _ in 0..2 {
            if up == KeysUpload::default() {
                break;
            }
            let (r, bytes): (KeysUploadResponse, usize) = http.post("/v1/keys/upload", &up).await?;
            report.requests += 1;
            report.bytes += bytes as u64;
            up = cx.store.write(|tx| {
                let mut s = account::load_or_create(tx, now())?;
                // Only what this upload carried is marked (another sync may have added keys).
                if pending(&s, user_id, device_id) == up {
                    s.account.mark_keys_as_published();
                    s.published = true;
                }
                top_up(&mut s, r.one_time_keys as usize);
                account::save(tx, &s, now())?;
                Ok(pending(&s, user_id, device_id))
            })?;
        }
        Ok(())
    }
}

/// Makes one-time keys up to the target when fewer than two thirds are `left` on the server and
/// none are waiting for upload, and a fallback key when the server has none of this account's.
fn top_up(s: &mut Stored, left: usize) {
    if left < ONE_TIME_KEYS_LOW && s.account.one_time_keys().is_empty() {
        s.account
            .generate_one_time_keys(ONE_TIME_KEYS_TARGET.saturating_sub(left));
    }
    if !s.published && s.account.fallback_key().is_empty() {
        s.account.generate_fallback_key();
    }
}

impl Exchange for KeyPublisher {
    fn run<'a>(
        &'a self,
        cx: &'a Context,
        http: &'a Http,
        on_server: &'a OnServer,
        report: &'a mut SyncReport,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            if !super::takes_part(cx)? {
                return Ok(());
            }
            self.publish(cx, http, on_server, report).await
        })
    }
}
