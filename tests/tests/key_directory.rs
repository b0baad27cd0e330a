//! The messaging key directory (issue 10) against a real `polku-server` on loopback, spoken to
//! directly over HTTP as any client (or attacker with a device token) could: signatures are
//! checked before a key is stored, identity keys never change, a one-time key is handed out once
//! even to concurrent claimers, then the fallback key; only conversation partners see a device's
//! keys, and a revoked device's keys leave at once.
//!
//! The devices here sign with ring's Ed25519 (the algorithm and bytes vodozemac uses); the core's
//! own Olm account is tested in `messaging_keys.rs`.

use base64::Engine;
use polku_e2e::api::Api;
use polku_e2e::TestServer;
use polku_protocol::keys::*;
use polku_server::{Role, Storage};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

/// An enrolled device with an Ed25519 key of its own.
struct Dev {
    token: String,
    device_id: String,
    user_id: String,
    ed: Ed25519KeyPair,
}

impl Dev {
    fn enroll(api: &Api, server: &TestServer, user: &str) -> Dev {
        let (token, device_id) = api.token(&server.code(user));
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Dev {
            token,
            device_id,
            user_id: user.to_owned(),
            ed: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn identity(&self, curve: u8) -> IdentityKeys {
        let ed = b64(self.ed.public_key().as_ref());
        let curve = b64(&[curve; 32]);
        let statement = identity_statement(&self.user_id, &self.device_id, &curve, &ed);
        IdentityKeys {
            curve25519: curve,
            ed25519: ed,
            signature: b64(self.ed.sign(statement.as_bytes()).as_ref()),
        }
    }

    fn key(&self, n: u32, fallback: bool) -> SignedKey {
        let mut k = SignedKey {
            key_id: format!("{n:08}"),
            key: b64(&[(n % 251) as u8 + 1; 32]),
            signature: String::new(),
        };
        k.signature = b64(self
            .ed
            .sign(key_statement(&self.device_id, &k, fallback).as_bytes())
            .as_ref());
        k
    }

    fn upload(&self, api: &Api, up: &KeysUpload) -> (u16, Value) {
        api.call(
            "POST",
            "/v1/keys/upload",
            Some(&self.token),
            Some(serde_json::to_vec(up).unwrap()),
        )
    }

    /// Identity keys, one-time keys 1..=n and a fallback key.
    fn publish(&self, api: &Api, n: u32) {
        let (status, v) = self.upload(
            api,
            &KeysUpload {
                identity: Some(self.identity(9)),
                one_time_keys: (1..=n).map(|i| self.key(i, false)).collect(),
                fallback_key: Some(self.key(0, true)),
            },
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["one_time_keys"], n);
    }

    fn claim(&self, api: &Api, devices: &[&str]) -> KeysClaimResponse {
        let (status, v) = api.call(
            "POST",
            "/v1/keys/claim",
            Some(&self.token),
            Some(json!({ "devices": devices }).to_string().into_bytes()),
        );
        assert_eq!(status, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }

    fn devices(&self, api: &Api) -> Vec<String> {
        let (status, v) = api.call("GET", "/v1/keys/devices", Some(&self.token), None);
        assert_eq!(status, 200, "{v}");
        let r: DevicesResponse = serde_json::from_value(v).unwrap();
        r.devices.into_iter().map(|d| d.device_id).collect()
    }
}

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn keys_are_checked_before_they_are_stored_and_identity_keys_never_change() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let aino = server.user(Role::Citizen, "Aino");
    let phone = Dev::enroll(&api, &server, &aino);

    // One-time keys before the identity: refused.
    let (status, v) = phone.upload(
        &api,
        &KeysUpload {
            one_time_keys: vec![phone.key(1, false)],
            ..Default::default()
        },
    );
    assert_eq!((status, code_of(&v)), (400, "no_identity_keys"), "{v}");

    // Identity keys signed for another device id (copied from elsewhere): refused.
    let mut stolen = phone.identity(9);
    let statement =
        identity_statement(&aino, "another-device", &stolen.curve25519, &stolen.ed25519);
    stolen.signature = b64(phone.ed.sign(statement.as_bytes()).as_ref());
    let (status, v) = phone.upload(
        &api,
        &KeysUpload {
            identity: Some(stolen),
            ..Default::default()
        },
    );
    assert_eq!((status, code_of(&v)), (400, "invalid_key"), "{v}");

    phone.publish(&api, 50);
    // The same upload again (a retry after a lost reply) changes nothing.
    phone.publish(&api, 50);

    // New identity keys for the same device: a conflict, never a silent replacement.
    let (status, v) = phone.upload(
        &api,
        &KeysUpload {
            identity: Some(phone.identity(10)),
            ..Default::default()
        },
    );
    assert_eq!((status, code_of(&v)), (409, "identity_keys_changed"), "{v}");

    // A one-time key whose signature does not match, or signed as a fallback key: refused.
    let mut forged = phone.key(51, false);
    forged.key = b64(&[200u8; 32]);
    let fallback_as_one_time = phone.key(52, true);
    for bad in [forged, fallback_as_one_time] {
        let (status, v) = phone.upload(
            &api,
            &KeysUpload {
                one_time_keys: vec![bad],
                ..Default::default()
            },
        );
        assert_eq!((status, code_of(&v)), (400, "invalid_key"), "{v}");
    }
    // The same key id with another key: a conflict.
    let mut reused = phone.key(52, false);
    reused.key_id = phone.key(1, false).key_id;
    reused.signature = b64(phone
        .ed
        .sign(key_statement(&phone.device_id, &reused, false).as_bytes())
        .as_ref());
    let (status, v) = phone.upload(
        &api,
        &KeysUpload {
            one_time_keys: vec![reused],
            ..Default::default()
        },
    );
    assert_eq!((status, code_of(&v)), (409, "key_id_reused"), "{v}");
    // An empty upload tells the device how many it has left.
    let (status, v) = phone.upload(&api, &KeysUpload::default());
    assert_eq!((status, v["one_time_keys"].as_u64()), (200, Some(50)));
}

#[test]
fn concurrent_claims_never_get_the_same_one_time_key_and_then_get_the_fallback() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let aino = server.user(Role::Citizen, "Aino");
    let nurse = server.user(Role::Professional, "Hoitaja");
    let doctor = server.user(Role::Professional, "Lääkäri");
    server.storage.assign(&nurse, &aino).unwrap();
    server.storage.assign(&doctor, &aino).unwrap();
    let phone = Dev::enroll(&api, &server, &aino);
    phone.publish(&api, 20);
    let claimers = [
        Dev::enroll(&api, &server, &nurse),
        Dev::enroll(&api, &server, &nurse),
        Dev::enroll(&api, &server, &doctor),
        Dev::enroll(&api, &server, &aino),
    ];
    // Four devices claim 8 times each at once: 32 claims for 20 one-time keys.
    let results: Vec<ClaimedKey> = std::thread::scope(|s| {
        let handles: Vec<_> = claimers
            .iter()
            .map(|c| {
                let api = Api::new(&server);
                let target = phone.device_id.clone();
                s.spawn(move || {
                    (0..8)
                        .flat_map(|_| c.claim(&api, &[&target]).claimed)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), 32);
    let one_time: Vec<&str> = results
        .iter()
        .filter(|c| !c.fallback)
        .map(|c| c.key.key_id.as_str())
        .collect();
    let mut unique = one_time.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(one_time.len(), 20, "every one-time key handed out");
    assert_eq!(unique.len(), 20, "none of them twice");
    assert!(results
        .iter()
        .filter(|c| c.fallback)
        .all(|c| c.key == phone.key(0, true)));
    // Every claimed key verifies against the identity it came with, as the claimer checks.
    for c in &results {
        check_identity(&c.device.user_id, &c.device.device_id, &c.device.identity).unwrap();
        check_key(
            &c.device.device_id,
            &c.device.identity.ed25519,
            &c.key,
            c.fallback,
        )
        .unwrap();
    }
    // The phone learns it ran out and tops up; keys already claimed are never handed out again,
    // even when a retry uploads them once more.
    let (_, v) = phone.upload(&api, &KeysUpload::default());
    assert_eq!(v["one_time_keys"], 0);
    let (_, v) = phone.upload(
        &api,
        &KeysUpload {
            one_time_keys: (1..=25).map(|i| phone.key(i, false)).collect(),
            ..Default::default()
        },
    );
    assert_eq!(v["one_time_keys"], 5, "only keys 21–25 are new");
    let got = claimers[0].claim(&api, &[&phone.device_id]);
    assert_eq!(got.claimed[0].key.key_id, phone.key(21, false).key_id);
}

#[test]
fn only_conversation_partners_see_and_claim_a_device_and_revoked_keys_leave() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let aino = server.user(Role::Citizen, "Aino");
    let bertta = server.user(Role::Citizen, "Bertta");
    let nurse = server.user(Role::Professional, "Hoitaja");
    let stranger = server.user(Role::Professional, "Vieras");
    server.storage.assign(&nurse, &aino).unwrap();
    server.storage.assign(&nurse, &bertta).unwrap();
    let aino_phone = Dev::enroll(&api, &server, &aino);
    let bertta_phone = Dev::enroll(&api, &server, &bertta);
    let nurse_laptop = Dev::enroll(&api, &server, &nurse);
    let stranger_laptop = Dev::enroll(&api, &server, &stranger);
    for d in [&aino_phone, &bertta_phone, &nurse_laptop, &stranger_laptop] {
        d.publish(&api, 5);
    }
    let mut seen = aino_phone.devices(&api);
    seen.sort();
    let mut expected = vec![aino_phone.device_id.clone(), nurse_laptop.device_id.clone()];
    expected.sort();
    assert_eq!(seen, expected, "Aino sees her own and her nurse's devices");
    assert_eq!(nurse_laptop.devices(&api).len(), 3);
    // Two citizens of one nurse are not each other's partners; a stranger is nobody's.
    let r = aino_phone.claim(&api, &[&bertta_phone.device_id, &stranger_laptop.device_id]);
    assert!(r.claimed.is_empty());
    assert_eq!(r.unavailable.len(), 2);
    assert!(stranger_laptop
        .claim(&api, &[&aino_phone.device_id])
        .claimed
        .is_empty());
    assert_eq!(
        stranger_laptop.devices(&api),
        vec![stranger_laptop.device_id.clone()]
    );

    // The assignment ends: the nurse no longer reaches Aino's phone, nor Aino the nurse's laptop.
    server.storage.unassign(&nurse, &aino).unwrap();
    assert!(nurse_laptop
        .claim(&api, &[&aino_phone.device_id])
        .claimed
        .is_empty());
    assert_eq!(aino_phone.devices(&api), vec![aino_phone.device_id.clone()]);

    // A revoked device's keys leave the directory at once.
    assert_eq!(
        bertta_phone
            .claim(&api, &[&nurse_laptop.device_id])
            .claimed
            .len(),
        1
    );
    server
        .storage
        .revoke_device(&nurse_laptop.device_id)
        .unwrap();
    let r = bertta_phone.claim(&api, &[&nurse_laptop.device_id]);
    assert!(r.claimed.is_empty());
    assert!(!bertta_phone.devices(&api).contains(&nurse_laptop.device_id));

    // An administrator takes part in no conversation.
    let admin = server.user(Role::Admin, "Ylläpito");
    let (token, _) = api.token(&server.code(&admin));
    let (status, _) = api.call("GET", "/v1/keys/devices", Some(&token), None);
    assert_eq!(status, 403);
}
