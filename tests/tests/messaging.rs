//! End-to-end encrypted messages between a citizen and her care team (issue 10), through a real
//! `polku-server` on loopback: Olm sessions per device pair, every device of every member gets
//! each message exactly once, and a tampered, re-routed or replayed ciphertext is rejected while
//! the session keeps working.

use polku_e2e::{CareTeam, Device};
use polku_server::{Role, Storage};

fn bodies(d: &Device, conversation: &str) -> Vec<String> {
    d.polku
        .messaging()
        .messages(conversation)
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// The server's relay queue, read straight from its database (as an attacker with a copy of it
/// and the key would): (seq, recipient, sender device, ciphertext).
fn relay_rows(team: &CareTeam) -> Vec<(i64, String, String, String)> {
    let c = team.server.db();
    let mut stmt = c
        .prepare("SELECT seq, recipient, sender_device, ciphertext FROM relay ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    rows
}

/// Puts `ciphertext` into `recipient`'s queue as if `sender` had sent it (a replay or a forgery
/// by someone who holds the sender's token).
fn inject(team: &CareTeam, sender: &Device, recipient: &str, ciphertext: &str) -> String {
    let token = sender.token();
    let api = polku_e2e::api::Api::new(&team.server);
    let (status, v) = api.call(
        "POST",
        "/v1/messages/send",
        Some(&token),
        Some(
            serde_json::json!({"messages": [{
                "id": uuid::Uuid::new_v4().to_string(),
                "recipient_device": recipient,
                "ciphertext": ciphertext,
            }]})
            .to_string()
            .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "{v}");
    v["results"][0]["status"].as_str().unwrap().to_owned()
}

/// A care team whose citizen also has a tablet, every device's keys published.
fn team_with_tablet() -> (CareTeam, Device) {
    let team = CareTeam::new(Role::Professional);
    let tablet = Device::enrolled(&team.server.url(), &team.server.code(&team.citizen));
    for d in [&team.phone, &tablet, &team.worker_device] {
        d.sync().unwrap();
    }
    (team, tablet)
}

fn device_id(d: &Device) -> String {
    d.polku.sync().enrollment().unwrap().unwrap().device_id
}

#[test]
fn every_device_of_every_member_gets_each_message_once() {
    let team = CareTeam::new(Role::Professional);
    let doctor = team.server.user(Role::Professional, "Lääkäri");
    team.server.storage.assign(&doctor, &team.citizen).unwrap();
    let tablet = Device::enrolled(&team.server.url(), &team.server.code(&team.citizen));
    let doctor_laptop = Device::enrolled(&team.server.url(), &team.server.code(&doctor));
    let doctor_phone = Device::enrolled(&team.server.url(), &team.server.code(&doctor));
    let everyone = [
        &team.phone,
        &tablet,
        &team.worker_device,
        &doctor_laptop,
        &doctor_phone,
    ];
    // Every device publishes its keys.
    for d in everyone {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    // Written offline, two in a row; sent on the next sync.
    let m1 = team
        .phone
        .polku
        .messaging()
        .send(&conv, "Aamuarvo oli 3,1. Mitä teen?")
        .unwrap();
    team.phone
        .polku
        .messaging()
        .send(&conv, "Söin jo rypälesokeria.")
        .unwrap();
    assert_eq!(m1.state, "queued");
    team.phone.sync().unwrap();
    assert!(team
        .phone
        .polku
        .messaging()
        .messages(&conv)
        .unwrap()
        .iter()
        .all(|m| m.state == "sent"));
    // Each other device, synced twice (the second sync finds nothing new): each message once, in order.
    for d in [&tablet, &team.worker_device, &doctor_laptop, &doctor_phone] {
        d.sync().unwrap();
        d.sync().unwrap();
        assert_eq!(
            bodies(d, &conv),
            ["Aamuarvo oli 3,1. Mitä teen?", "Söin jo rypälesokeria."]
        );
        assert!(d.polku.messaging().rejected().unwrap().is_empty());
    }
    // The nurse answers: the citizen's two devices and the doctor's two get it, and the nurse's
    // own message is on her device as sent.
    team.worker_device
        .polku
        .messaging()
        .send(&conv, "Mittaa uudelleen 15 minuutin päästä.")
        .unwrap();
    team.worker_device.sync().unwrap();
    for d in everyone {
        d.sync().unwrap();
        let b = bodies(d, &conv);
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(b[2], "Mittaa uudelleen 15 minuutin päästä.");
    }
    // The relay holds nothing once every device acknowledged (the delivery receipts too, after
    // one more round), and never held a word of it.
    for d in everyone {
        d.sync().unwrap();
    }
    assert!(relay_rows(&team).is_empty());

    // The doctor's assignment ends: a new message does not reach the doctor's devices, and they
    // purge what they had.
    team.server
        .storage
        .unassign(&doctor, &team.citizen)
        .unwrap();
    team.phone.polku.messaging().send(&conv, "Kiitos!").unwrap();
    team.phone.sync().unwrap();
    doctor_laptop.sync().unwrap();
    team.worker_device.sync().unwrap();
    assert_eq!(bodies(&team.worker_device, &conv).len(), 4);
    // The doctor's devices no longer hold the conversation (as sync purges her records).
    assert!(bodies(&doctor_laptop, &conv).is_empty());
    assert!(doctor_laptop
        .polku
        .messaging()
        .conversations()
        .unwrap()
        .iter()
        .all(|c| c.id != conv));
    // What the doctor writes there now is shown as undeliverable, and reaches nobody.
    let late = doctor_laptop
        .polku
        .messaging()
        .send(&conv, "Vielä yksi asia")
        .unwrap();
    doctor_laptop.sync().unwrap();
    let mine = doctor_laptop.polku.messaging().messages(&conv).unwrap();
    let state = &mine.iter().find(|m| m.id == late.id).unwrap().state;
    assert_eq!(state, "undeliverable");
    team.phone.sync().unwrap();
    assert_eq!(bodies(&team.phone, &conv).len(), 4);
}

#[test]
fn tampered_rerouted_and_replayed_ciphertexts_are_rejected_and_the_session_goes_on() {
    let (team, tablet) = team_with_tablet();
    let conv = team.citizen.clone();
    let nurse = device_id(&team.worker_device);
    let tablet_id = device_id(&tablet);
    team.phone
        .polku
        .messaging()
        .send(&conv, "ensimmäinen")
        .unwrap();
    team.phone.sync().unwrap();
    let rows = relay_rows(&team);
    let to_nurse = rows.iter().find(|r| r.1 == nurse).unwrap().3.clone();
    // The server's own database holds ciphertext only: the words in no form it could read.
    for (_, _, _, ct) in &rows {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(ct)
            .unwrap();
        for canary in ["ensimmäinen".as_bytes(), b"\"body\""] {
            assert!(!bytes.windows(canary.len()).any(|w| w == canary));
            assert!(!ct.as_bytes().windows(canary.len()).any(|w| w == canary));
        }
    }
    team.worker_device.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(bodies(&team.worker_device, &conv), ["ensimmäinen"]);

    // Replayed: the same ciphertext again into the nurse's queue.
    assert_eq!(inject(&team, &team.phone, &nurse, &to_nurse), "queued");
    // Re-routed: the nurse's copy into the tablet's queue.
    assert_eq!(inject(&team, &team.phone, &tablet_id, &to_nurse), "queued");
    // Tampered: every 37th byte position of the Olm part flipped in turn, and the padding.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let raw = b64.decode(&to_nurse).unwrap();
    let olm_len = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
    let mut positions: Vec<usize> = (0..5 + olm_len).step_by(37).collect();
    positions.push(raw.len() - 1);
    for &i in &positions {
        let mut t = raw.clone();
        t[i] ^= 0x01;
        inject(&team, &team.phone, &nurse, &b64.encode(&t));
    }
    team.worker_device.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(bodies(&team.worker_device, &conv), ["ensimmäinen"]);
    assert_eq!(bodies(&tablet, &conv), ["ensimmäinen"]);
    let rejected = team.worker_device.polku.messaging().rejected().unwrap();
    assert_eq!(rejected.len(), 1 + positions.len(), "{rejected:?}");
    assert!(rejected[0].reason.contains("replayed") || rejected[0].reason.contains("decrypt"));
    assert_eq!(tablet.polku.messaging().rejected().unwrap().len(), 1);

    // The next genuine message still gets through to both.
    team.phone.polku.messaging().send(&conv, "toinen").unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(
        bodies(&team.worker_device, &conv),
        ["ensimmäinen", "toinen"]
    );
    assert_eq!(bodies(&tablet, &conv), ["ensimmäinen", "toinen"]);
}

fn state_of(d: &Device, conversation: &str, id: &str) -> String {
    let all = d.polku.messaging().messages(conversation).unwrap();
    all.into_iter().find(|m| m.id == id).unwrap().state
}

fn unread(d: &Device, conversation: &str) -> u32 {
    d.polku
        .messaging()
        .conversations()
        .unwrap()
        .into_iter()
        .find(|c| c.id == conversation)
        .map(|c| c.unread)
        .unwrap_or(0)
}

#[test]
fn receipts_and_unread_counts_follow_every_device_and_a_message_completes_the_pathway_step() {
    let (team, tablet) = team_with_tablet();
    let conv = team.citizen.clone();

    // The citizen's pathway has reached its `message-care-team` step.
    use polku_core::pathway::Actor;
    let paths = team.phone.polku.pathways();
    let e = paths.enroll("t2d-care-path", Actor::Citizen).unwrap();
    paths.complete(e.id, "welcome", Actor::Citizen).unwrap();
    paths.complete(e.id, "t2d-basics", Actor::Citizen).unwrap();
    for step in ["glucose-profile", "bp-series", "hba1c", "nurse-review"] {
        paths.skip(e.id, step, "käyty vastaanotolla").unwrap();
    }
    let step = |d: &Device| {
        let p = d.polku.pathways().progress(e.id).unwrap();
        let s = p
            .steps
            .into_iter()
            .find(|s| s.step_id == "message-care-team");
        s.unwrap().state.as_str().to_owned()
    };
    assert_eq!(step(&team.phone), "available");

    let m = team
        .phone
        .polku
        .messaging()
        .send(&conv, "Onko 3,9 liian matala?")
        .unwrap();
    // Writing to the care team is what completes the step.
    assert_eq!(step(&team.phone), "done");
    team.phone.sync().unwrap();
    assert_eq!(state_of(&team.phone, &conv, &m.id), "sent");

    // The nurse has one unread message; the citizen's own tablet has none (her own message).
    team.worker_device.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(unread(&team.worker_device, &conv), 1);
    assert_eq!(unread(&tablet, &conv), 0);
    let listed = team
        .worker_device
        .polku
        .messaging()
        .conversations()
        .unwrap();
    let c = listed.iter().find(|c| c.id == conv).unwrap();
    assert!(c.members.contains(&team.citizen) && c.members.contains(&team.worker));

    // The nurse's device sent a delivery receipt with its sync: delivered, not read.
    team.phone.sync().unwrap();
    let mine = team.phone.polku.messaging().messages(&conv).unwrap();
    assert_eq!(mine[0].state, "delivered");
    assert_eq!(mine[0].receipts.len(), 1);
    assert_eq!(mine[0].receipts[0].user, team.worker);
    assert!(mine[0].receipts[0].read_ms.is_none());

    // She reads it: read on the citizen's phone and tablet after their syncs.
    assert_eq!(
        team.worker_device
            .polku
            .messaging()
            .mark_read(&conv)
            .unwrap(),
        1
    );
    assert_eq!(unread(&team.worker_device, &conv), 0);
    assert_eq!(
        team.worker_device
            .polku
            .messaging()
            .mark_read(&conv)
            .unwrap(),
        0
    );
    team.worker_device.sync().unwrap();
    team.phone.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(state_of(&team.phone, &conv, &m.id), "read");
    assert_eq!(state_of(&tablet, &conv, &m.id), "read");

    // Her answer is unread on both of the citizen's devices; read on the phone, it is read on
    // the tablet too.
    let answer = team
        .worker_device
        .polku
        .messaging()
        .send(&conv, "Ei ole, jos oireita ei ole. Syö välipala.")
        .unwrap();
    team.worker_device.sync().unwrap();
    team.phone.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(unread(&team.phone, &conv), 1);
    assert_eq!(unread(&tablet, &conv), 1);
    assert_eq!(team.phone.polku.messaging().mark_read(&conv).unwrap(), 1);
    team.phone.sync().unwrap();
    tablet.sync().unwrap();
    assert_eq!(unread(&tablet, &conv), 0);
    team.worker_device.sync().unwrap();
    assert_eq!(state_of(&team.worker_device, &conv, &answer.id), "read");
    // Receipts are messages like any other: nothing rejected anywhere, the relay empty.
    for d in [&team.phone, &tablet, &team.worker_device] {
        assert!(d.polku.messaging().rejected().unwrap().is_empty());
    }
    assert!(relay_rows(&team).is_empty());
}

/// Replaces a device's identity keys in the server's key directory with keys the server made
/// itself (what a compromised server would do to read messages), signed so they pass the
/// signature check. Returns the genuine ones (curve25519, ed25519, signature).
fn substitute_identity(team: &CareTeam, device_id: &str, user: &str) -> (String, String, String) {
    use base64::Engine;
    use ring::signature::KeyPair;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let ed = b64.encode(pair.public_key().as_ref());
    let curve = b64.encode([7u8; 32]);
    let statement = polku_protocol::keys::identity_statement(user, device_id, &curve, &ed);
    let sig = b64.encode(pair.sign(statement.as_bytes()).as_ref());
    let c = team.server.db();
    let old = c
        .query_row(
            "SELECT curve25519, ed25519, signature FROM device_keys WHERE device_id = ?1",
            [device_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    c.execute(
        "UPDATE device_keys SET curve25519 = ?2, ed25519 = ?3, signature = ?4 WHERE device_id = ?1",
        rusqlite::params![device_id, curve, ed, sig],
    )
    .unwrap();
    old
}

#[test]
fn a_changed_identity_key_blocks_sending_to_that_device_until_accepted() {
    let team = CareTeam::new(Role::Professional);
    for d in [&team.phone, &team.worker_device] {
        d.sync().unwrap();
    }
    let conv = team.citizen.clone();
    let nurse = device_id(&team.worker_device);
    team.phone
        .polku
        .messaging()
        .send(&conv, "ensimmäinen")
        .unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    assert_eq!(bodies(&team.worker_device, &conv), ["ensimmäinen"]);

    // The server now hands out other keys for the nurse's device. A message written before the
    // phone noticed is held for that device, not encrypted to the new keys.
    let genuine = substitute_identity(&team, &nurse, &team.worker);
    let held = team.phone.polku.messaging().send(&conv, "toinen").unwrap();
    team.phone.sync().unwrap();
    assert!(relay_rows(&team).iter().all(|r| r.1 != nurse));
    // Its only recipient device is held: shown as held, not as a send that never ends.
    assert_eq!(state_of(&team.phone, &conv, &held.id), "held");
    let devices = team.phone.polku.messaging().devices().unwrap();
    let d = devices.iter().find(|d| d.device_id == nurse).unwrap();
    assert_eq!(d.state, "identity_changed");
    assert_eq!(d.fingerprint, genuine.1);
    assert!(d.changed_fingerprint.is_some());
    // Writing more is refused with a typed error naming the device.
    match team.phone.polku.messaging().send(&conv, "kolmas") {
        Err(polku_core::Error::IdentityChanged { devices }) => {
            assert_eq!(devices, std::slice::from_ref(&nurse))
        }
        other => panic!("expected identity_changed, got {other:?}"),
    }

    // The genuine keys come back: the change clears and the held message goes out with the
    // session the phone already had.
    team.server.db()
        .execute(
            "UPDATE device_keys SET curve25519 = ?2, ed25519 = ?3, signature = ?4 WHERE device_id = ?1",
            rusqlite::params![nurse, genuine.0, genuine.1, genuine.2],
        )
        .unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    assert_eq!(
        bodies(&team.worker_device, &conv),
        ["ensimmäinen", "toinen"]
    );
    assert_eq!(state_of(&team.phone, &conv, &held.id), "sent");
    let d = team.phone.polku.messaging().devices().unwrap();
    assert_eq!(
        d.iter().find(|d| d.device_id == nurse).unwrap().state,
        "trusted"
    );

    // Changed again and accepted by the user: the new key is trusted and sending is allowed
    // (nothing decrypts for keys without a signed one-time key: it stays held, never lost).
    substitute_identity(&team, &nurse, &team.worker);
    // (The nurse's delivery receipt waits for the phone: its sync reads the directory again.)
    team.phone.sync().unwrap();
    assert!(team.phone.polku.messaging().send(&conv, "neljäs").is_err());
    team.phone
        .polku
        .messaging()
        .accept_identity(&nurse)
        .unwrap();
    let d = team.phone.polku.messaging().devices().unwrap();
    let d = d.iter().find(|d| d.device_id == nurse).unwrap();
    assert_eq!(
        (d.state.as_str(), d.changed_fingerprint.as_ref()),
        ("trusted", None)
    );
    assert!(team.phone.polku.messaging().send(&conv, "neljäs").is_ok());
    assert!(matches!(
        team.phone.polku.messaging().accept_identity(&nurse),
        Err(polku_core::Error::NotFound { .. })
    ));
}

/// The conversations and their devices are asked for again only when the pull's digest of them
/// changed: a steady conversation costs the pull and the send, and a member's new device is
/// noticed on the next sync and gets the next message.
#[test]
fn the_directory_is_asked_for_again_only_when_it_changed() {
    let team = CareTeam::new(Role::Professional);
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let conv = team.citizen.clone();
    team.phone.polku.messaging().send(&conv, "yksi").unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    team.phone.sync().unwrap(); // takes the delivery receipt
    team.phone.polku.messaging().send(&conv, "kaksi").unwrap();
    let steady = team.phone.sync().unwrap();
    assert_eq!(steady.requests, 2, "the pull and the send");

    let laptop = Device::enrolled(&team.server.url(), &team.server.code(&team.worker));
    laptop.sync().unwrap();
    team.phone.polku.messaging().send(&conv, "kolme").unwrap();
    let changed = team.phone.sync().unwrap();
    assert_eq!(
        changed.requests,
        2 + 2 + 1,
        "the pull, conversations and devices, a key claim for the laptop, the send"
    );
    laptop.sync().unwrap();
    assert_eq!(bodies(&laptop, &conv), ["kolme"]);
}
