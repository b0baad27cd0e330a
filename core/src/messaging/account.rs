//! This device's Olm account: its identity keys and the one-time and fallback keys it publishes.
//! vodozemac keeps it; its pickle lives only in the encrypted database (`olm_account`), and it
//! is saved in the transaction that changes it, before anything it generated leaves the device.

use polku_protocol::keys::{identity_statement, key_statement, IdentityKeys, SignedKey};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use vodozemac::olm::{Account, AccountPickle};
use vodozemac::{Curve25519PublicKey, KeyId};

use crate::error::{Error, Result};

/// The account, and whether its identity keys are on the server.
pub(crate) struct Stored {
    pub account: Account,
    pub published: bool,
}

fn load(c: &Connection) -> Result<Option<Stored>> {
    let row: Option<(String, bool)> = c
        .query_row(
            "SELECT pickle, published FROM olm_account WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(pickle, published)| {
        // The pickle's JSON never appears in an error: it holds the private keys.
        let pickle: AccountPickle = serde_json::from_str(&pickle)
            .map_err(|_| Error::Storage("the Olm account does not load".into()))?;
        Ok(Stored {
            account: Account::from_pickle(pickle),
            published,
        })
    })
    .transpose()
}

/// Whether the account exists with every key of it on the server (read without unpickling it).
pub(crate) fn all_published(c: &Connection) -> Result<bool> {
    Ok(c.query_row(
        "SELECT published AND NOT upload_pending FROM olm_account WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .optional()?
    .unwrap_or(false))
}

/// The device's account, made on first use.
pub(crate) fn load_or_create(tx: &Transaction<'_>, now_ms: i64) -> Result<Stored> {
    if let Some(s) = load(tx)? {
        return Ok(s);
    }
    let s = Stored {
        account: Account::new(),
        published: false,
    };
    save(tx, &s, now_ms)?;
    Ok(s)
}

pub(crate) fn save(tx: &Transaction<'_>, s: &Stored, now_ms: i64) -> Result<()> {
    let pickle = serde_json::to_string(&s.account.pickle())
        .map_err(|_| Error::Storage("the Olm account does not save".into()))?;
    let upload_pending = !s.published
        || !s.account.one_time_keys().is_empty()
        || !s.account.fallback_key().is_empty();
    tx.execute(
        "INSERT INTO olm_account (id, pickle, published, updated_ms, upload_pending) VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET pickle = excluded.pickle, published = excluded.published,
             updated_ms = excluded.updated_ms, upload_pending = excluded.upload_pending",
        params![pickle, s.published, now_ms, upload_pending],
    )?;
    Ok(())
}

/// The account's identity keys, signed for the user and device the server enrolled.
pub(crate) fn identity(account: &Account, user_id: &str, device_id: &str) -> IdentityKeys {
    let keys = account.identity_keys();
    let (curve, ed) = (keys.curve25519.to_base64(), keys.ed25519.to_base64());
    let signature = account
        .sign(identity_statement(user_id, device_id, &curve, &ed))
        .to_base64();
    IdentityKeys {
        curve25519: curve,
        ed25519: ed,
        signature,
    }
}

/// Keys of the account signed for publication.
pub(crate) fn signed(
    account: &Account,
    device_id: &str,
    keys: impl IntoIterator<Item = (KeyId, Curve25519PublicKey)>,
    fallback: bool,
) -> Vec<SignedKey> {
    let mut out: Vec<SignedKey> = keys
        .into_iter()
        .map(|(id, key)| {
            let mut k = SignedKey {
                key_id: id.to_base64(),
                key: key.to_base64(),
                signature: String::new(),
            };
            k.signature = account
                .sign(key_statement(device_id, &k, fallback))
                .to_base64();
            k
        })
        .collect();
    out.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    out
}
