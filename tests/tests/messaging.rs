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
    let dir = team.server.data.path().join("server");
    let hex = std::fs::read_to_string(dir.with_extension("key")).unwrap();
    let c = rusqlite::Connection::open(dir.join("polku-server.db")).unwrap();
    c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex.trim()))
        .unwrap();
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
    let token = {
        let c = rusqlite::Connection::open(sender.path()).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        c.query_row(
            "SELECT value FROM profile WHERE key = 'sync.token'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap()
    };
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
    // The relay holds nothing once every device acknowledged, and never held a word of it.
    assert!(relay_rows(&team).is_empty());

    // The doctor's assignment ends: a new message does not reach the doctor's devices.
    team.server
        .storage
        .unassign(&doctor, &team.citizen)
        .unwrap();
    team.phone.polku.messaging().send(&conv, "Kiitos!").unwrap();
    team.phone.sync().unwrap();
    doctor_laptop.sync().unwrap();
    team.worker_device.sync().unwrap();
    assert_eq!(bodies(&doctor_laptop, &conv).len(), 3);
    assert_eq!(bodies(&team.worker_device, &conv).len(), 4);
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
    let team = CareTeam::new(Role::Professional);
    let tablet = Device::enrolled(&team.server.url(), &team.server.code(&team.citizen));
    for d in [&team.phone, &tablet, &team.worker_device] {
        d.sync().unwrap();
    }
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
