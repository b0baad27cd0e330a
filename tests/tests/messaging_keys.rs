//! The device side of the key directory (issue 10): a device's Olm account (vodozemac) is made
//! on its first sync after enrolling, its keys are published and kept topped up, and its
//! identity keys never change across syncs and restarts. Real server on loopback.

use polku_e2e::api::Api;
use polku_e2e::{CareTeam, Device};
use polku_protocol::keys::*;
use polku_server::{Role, Storage};
use serde_json::json;

fn claim(api: &Api, token: &str, device: &str) -> KeysClaimResponse {
    let (status, v) = api.call(
        "POST",
        "/v1/keys/claim",
        Some(token),
        Some(json!({ "devices": [device] }).to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

fn device_id(d: &Device) -> String {
    d.polku.sync().enrollment().unwrap().unwrap().device_id
}

#[test]
fn a_device_publishes_its_keys_on_sync_and_tops_them_up() {
    let team = CareTeam::new(Role::Professional);
    let phone_id = device_id(&team.phone);
    // Not published before the first sync.
    let api = Api::new(&team.server);
    let (second_phone, _) = api.token(&team.server.code(&team.citizen));
    assert!(claim(&api, &second_phone, &phone_id).claimed.is_empty());

    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let identity = team.phone.polku.messaging().identity().unwrap().unwrap();

    // The nurse's device claims 40 of the phone's 50 one-time keys; each verifies against the
    // identity the phone reports, and none comes twice.
    let (nurse_token, _) = api.token(&team.server.code(&team.worker));
    let mut ids = Vec::new();
    for _ in 0..40 {
        let c = claim(&api, &nurse_token, &phone_id).claimed.pop().unwrap();
        assert!(!c.fallback);
        assert_eq!(c.device.identity, identity);
        assert_eq!(c.device.user_id, team.citizen);
        check_key(&phone_id, &identity.ed25519, &c.key, false).unwrap();
        ids.push(c.key.key_id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);

    // The phone's next sync sees 10 left (under two thirds) and tops up to 50 again, with the
    // same identity: 50 more one-time keys can be claimed before the fallback key.
    team.phone.sync().unwrap();
    let more: Vec<ClaimedKey> = (0..51)
        .map(|_| claim(&api, &nurse_token, &phone_id).claimed.pop().unwrap())
        .collect();
    assert_eq!(more.iter().filter(|c| !c.fallback).count(), 50);
    assert!(more[50].fallback);
    check_key(&phone_id, &identity.ed25519, &more[50].key, true).unwrap();
    assert!(more.iter().all(|c| c.device.identity == identity));
    // No one-time key came twice (a fallback key's id counts apart: vodozemac numbers them
    // separately).
    assert!(more[..50].iter().all(|c| !ids.contains(&c.key.key_id)));
}

#[test]
fn identity_keys_survive_restarts_and_live_only_in_the_encrypted_database() {
    let mut team = CareTeam::new(Role::Professional);
    team.phone.sync().unwrap();
    let before = team.phone.polku.messaging().identity().unwrap().unwrap();
    team.phone.reopen();
    // Another sync after a restart: no new identity (the server would refuse it).
    team.phone.sync().unwrap();
    assert_eq!(
        team.phone.polku.messaging().identity().unwrap().unwrap(),
        before
    );
    // Both devices see each other in the directory.
    team.worker_device.sync().unwrap();
    let nurse_id = device_id(&team.worker_device);
    let phone_id = device_id(&team.phone);
    let api = Api::new(&team.server);
    let (token, _) = api.token(&team.server.code(&team.citizen));
    let (_, v) = api.call("GET", "/v1/keys/devices", Some(&token), None);
    let listed: DevicesResponse = serde_json::from_value(v).unwrap();
    let ids: Vec<&str> = listed
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    assert!(
        ids.contains(&phone_id.as_str()) && ids.contains(&nurse_id.as_str()),
        "{ids:?}"
    );
    // The Olm account's pickle (its private keys) is in no file of the device in the clear:
    // neither its field names nor the keys it holds, in the database or its WAL.
    for entry in std::fs::read_dir(team.phone.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [
            "diffie_hellman_key",
            "signing_key",
            before.curve25519.as_str(),
            before.ed25519.as_str(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in the clear"
            );
        }
    }
    // A revoked device leaves the directory.
    let revoked = phone_id.clone();
    team.server.storage.revoke_device(&revoked).unwrap();
    let (_, v) = api.call("GET", "/v1/keys/devices", Some(&token), None);
    assert!(!v.to_string().contains(&revoked));
}

#[test]
fn a_quiet_sync_sends_no_keys_and_a_server_that_lost_them_gets_them_again() {
    let team = CareTeam::new(Role::Professional);
    let first = team.phone.sync().unwrap();
    assert_eq!(
        first.requests, 4,
        "the pull, the first publication, the conversations and their devices"
    );
    // Keys enough on the server and the directory unchanged: the pull alone (it says how many
    // keys are left and the directory's digest).
    let quiet = team.phone.sync().unwrap();
    assert_eq!(quiet.requests, 1);
    let identity = team.phone.polku.messaging().identity().unwrap().unwrap();

    // The server restored from a backup taken before the phone published: its keys are gone.
    let c = team.server.db();
    for table in ["device_keys", "one_time_key", "fallback_key"] {
        c.execute(&format!("DELETE FROM {table}"), []).unwrap();
    }
    drop(c);
    let api = Api::new(&team.server);
    let (nurse_token, _) = api.token(&team.server.code(&team.worker));
    let phone_id = device_id(&team.phone);
    assert!(claim(&api, &nurse_token, &phone_id).claimed.is_empty());

    // The next sync publishes the same identity again, with new one-time keys and a fallback.
    team.phone.sync().unwrap();
    let got = claim(&api, &nurse_token, &phone_id).claimed.pop().unwrap();
    assert_eq!(got.device.identity, identity);
    assert!(!got.fallback);
    check_key(&phone_id, &identity.ed25519, &got.key, false).unwrap();
}
