//! End-to-end encrypted messaging between citizens and their care team (issue 10,
//! docs/messaging.md). Olm sessions per device pair (vodozemac); the server relays ciphertext
//! and keeps a directory of public keys.
//!
//! Built so far: this device's Olm account (`account.rs`) and its keys kept published in the
//! server's directory on every sync (`publish.rs`).

mod account;
mod publish;

pub(crate) use publish::KEY_PUBLISHER;

use polku_protocol::keys::IdentityKeys;

use crate::context::Context;
use crate::error::Result;

/// This device's messaging.
pub struct Messaging<'a> {
    pub(crate) cx: &'a Context,
}

impl Messaging<'_> {
    /// This device's identity keys as the server has (or will have) them, once it has an
    /// account (made on its first sync after enrolling).
    pub fn identity(&self) -> Result<Option<IdentityKeys>> {
        let (user, device) = match crate::sync::server_identity(&self.cx.store)? {
            Some(x) => x,
            None => return Ok(None),
        };
        let now = self.cx.clock.now().timestamp_millis();
        self.cx.store.write(|tx| {
            let s = account::load_or_create(tx, now)?;
            Ok(Some(account::identity(&s.account, &user, &device)))
        })
    }
}
