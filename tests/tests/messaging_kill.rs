//! `kill -9` between the steps of receiving and sending a message (issue 10): the device's sync
//! runs in a child process that SIGKILLs itself at a named crash point (feature `crash-points`),
//! then runs again. No message is lost or stored twice, no one-time key is burned without its
//! message, and the sessions go on working.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use polku_e2e::{CareTeam, Device};
use polku_server::Role;

/// One sync of the profile at `path` in a child process, killed at `crash_at` when given.
fn sync_in_child(path: &Path, crash_at: Option<&str>) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sync-node"));
    c.args(["sync", path.to_str().unwrap()]);
    match crash_at {
        Some(p) => c.env("POLKU_CRASH_AT", p),
        None => c.env_remove("POLKU_CRASH_AT"),
    };
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match crash_at {
        Some(p) => assert_eq!(out.status.signal(), Some(9), "not killed at {p}: {stderr}"),
        None => assert!(out.status.success(), "{stderr}"),
    }
}

fn bodies(d: &Device, conversation: &str) -> Vec<String> {
    let all = d.polku.messaging().messages(conversation).unwrap();
    all.into_iter().map(|m| m.body).collect()
}

/// A device of `user` whose database outlives this handle (child processes open it too).
fn device(team: &CareTeam, user: &str) -> Device {
    Device::enrolled(&team.server.url(), &team.server.code(user))
}

#[test]
fn a_receiver_killed_between_fetch_decrypt_and_store_loses_nothing() {
    let team = CareTeam::new(Role::Professional);
    let nurse = device(&team, &team.worker);
    team.phone.sync().unwrap();
    nurse.sync().unwrap();
    let conv = team.citizen.clone();
    let mut sent = Vec::new();
    // The first round carries pre-key messages: killed after decrypting them (the one-time key
    // used in memory, nothing committed), the restarted device must still open them.
    for point in [
        "messaging.decrypted",
        "messaging.fetched",
        "messaging.stored",
        "messaging.decrypted",
    ] {
        for i in 0..2 {
            let text = format!("{point} {i} ({})", sent.len());
            team.phone.polku.messaging().send(&conv, &text).unwrap();
            sent.push(text);
        }
        team.phone.sync().unwrap();
        sync_in_child(&nurse.path(), Some(point));
        sync_in_child(&nurse.path(), None);
        assert_eq!(bodies(&nurse, &conv), sent, "after a kill at {point}");
    }
    assert!(nurse.polku.messaging().rejected().unwrap().is_empty());
    assert_eq!(nurse.polku.store().integrity_check().unwrap(), vec!["ok"]);
    // The sessions both ways still work.
    nurse
        .polku
        .messaging()
        .send(&conv, "Kaikki tuli perille.")
        .unwrap();
    nurse.sync().unwrap();
    team.phone.sync().unwrap();
    assert_eq!(
        bodies(&team.phone, &conv).last().unwrap(),
        "Kaikki tuli perille."
    );
    assert!(team.phone.polku.messaging().rejected().unwrap().is_empty());
}

#[test]
fn a_sender_killed_between_encrypting_and_relaying_sends_each_message_once() {
    let team = CareTeam::new(Role::Professional);
    let phone = device(&team, &team.citizen);
    phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let conv = team.citizen.clone();
    let mut sent = Vec::new();
    for point in [
        "messaging.encrypted",
        "messaging.relayed",
        "messaging.encrypted",
    ] {
        let text = format!("kirjoitettu ennen: {point} ({})", sent.len());
        phone.polku.messaging().send(&conv, &text).unwrap();
        sent.push(text);
        sync_in_child(&phone.path(), Some(point));
        sync_in_child(&phone.path(), None);
        team.worker_device.sync().unwrap();
        assert_eq!(
            bodies(&team.worker_device, &conv),
            sent,
            "after a kill at {point}"
        );
    }
    let states: Vec<String> = phone
        .polku
        .messaging()
        .messages(&conv)
        .unwrap()
        .into_iter()
        .map(|m| m.state)
        .collect();
    assert!(
        states.iter().all(|s| s == "sent" || s == "delivered"),
        "{states:?}"
    );
    assert!(team
        .worker_device
        .polku
        .messaging()
        .rejected()
        .unwrap()
        .is_empty());
}
