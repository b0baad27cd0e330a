//! Short-authentication-string verification of a device (issue 10) between two real devices
//! through a real `polku-server` on loopback: the steps travel end-to-end encrypted through the
//! relay, both devices show the same numbers, and each then shows the other `verified`.

use polku_core::messaging::{Verification, VerificationState};
use polku_e2e::{CareTeam, Device};
use polku_server::Role;

fn device_id(d: &Device) -> String {
    d.polku.sync().enrollment().unwrap().unwrap().device_id
}

fn state_of(d: &Device, peer: &str) -> String {
    d.polku
        .messaging()
        .devices()
        .unwrap()
        .into_iter()
        .find(|x| x.device_id == peer)
        .unwrap()
        .state
}

/// Syncs and polls both sides until `done` holds for both states (at most 12 rounds).
fn rounds(
    sides: &mut [(&Device, &mut Verification); 2],
    done: impl Fn(&VerificationState) -> bool,
) -> [VerificationState; 2] {
    for _ in 0..12 {
        let mut states = Vec::new();
        for (d, v) in sides.iter_mut() {
            d.sync().unwrap();
            states.push(v.poll(&d.polku.messaging()).unwrap());
        }
        if states.iter().all(&done) {
            return [states[0].clone(), states[1].clone()];
        }
    }
    panic!("the verification did not get there");
}

fn numbers(s: &VerificationState) -> [u16; 3] {
    match s {
        VerificationState::Compare { decimals } => *decimals,
        s => panic!("not comparing: {s:?}"),
    }
}

/// A citizen and her nurse, each device knowing the other's keys, and the two devices' ids.
fn team() -> (CareTeam, String, String) {
    let team = CareTeam::new(Role::Professional);
    for d in [&team.phone, &team.worker_device, &team.phone] {
        d.sync().unwrap();
    }
    let (phone, nurse) = (device_id(&team.phone), device_id(&team.worker_device));
    (team, phone, nurse)
}

#[test]
fn a_citizen_and_her_nurse_compare_numbers_and_verify_each_others_device() {
    let (team, phone_id, nurse_id) = team();
    assert_eq!(state_of(&team.phone, &nurse_id), "trusted");
    // Unknown devices and this device itself cannot be verified.
    let m = team.phone.polku.messaging();
    assert_eq!(
        m.verify("no-such-device").err().unwrap().code(),
        "not_found"
    );
    assert_eq!(m.verify(&phone_id).err().unwrap().code(), "not_found");

    let mut mine = m.verify(&nurse_id).unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let nm = team.worker_device.polku.messaging();
    let requests = nm.verification_requests().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].device_id.as_str(), requests[0].user_id.as_str()),
        (phone_id.as_str(), team.citizen.as_str())
    );
    let mut theirs = nm.accept_verification(&requests[0].txn).unwrap();
    assert!(nm.verification_requests().unwrap().is_empty(), "taken up");
    assert_eq!(theirs.txn(), mine.txn());

    let [a, b] = rounds(
        &mut [(&team.phone, &mut mine), (&team.worker_device, &mut theirs)],
        |s| matches!(s, VerificationState::Compare { .. }),
    );
    assert_eq!(
        numbers(&a),
        numbers(&b),
        "both devices show the same numbers"
    );
    // The two people say the numbers match.
    mine.confirm(&m, true).unwrap();
    theirs.confirm(&nm, true).unwrap();
    rounds(
        &mut [(&team.phone, &mut mine), (&team.worker_device, &mut theirs)],
        |s| *s == VerificationState::Verified,
    );
    assert_eq!(state_of(&team.phone, &nurse_id), "verified");
    assert_eq!(state_of(&team.worker_device, &phone_id), "verified");
    // Messages still flow, and nothing was rejected on the way.
    m.send(&team.citizen, "Kiitos!").unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    assert_eq!(nm.messages(&team.citizen).unwrap().len(), 1);
    assert!(m.rejected().unwrap().is_empty() && nm.rejected().unwrap().is_empty());
}

#[test]
fn both_pressing_verify_at_once_goes_on_with_one_and_a_no_ends_it_on_both() {
    let (team, phone_id, nurse_id) = team();
    let (m, nm) = (
        team.phone.polku.messaging(),
        team.worker_device.polku.messaging(),
    );
    let mut a = m.verify(&nurse_id).unwrap();
    let mut b = nm.verify(&phone_id).unwrap();
    let [sa, sb] = rounds(
        &mut [(&team.phone, &mut a), (&team.worker_device, &mut b)],
        |s| matches!(s, VerificationState::Compare { .. }),
    );
    assert_eq!(numbers(&sa), numbers(&sb));
    assert_eq!(a.txn(), b.txn(), "one of the two starts went on");
    // The nurse sees other numbers on her screen than the citizen reads out: she says no.
    b.confirm(&nm, false).unwrap();
    a.confirm(&m, true).unwrap();
    rounds(
        &mut [(&team.phone, &mut a), (&team.worker_device, &mut b)],
        |s| matches!(s, VerificationState::Cancelled { .. }),
    );
    assert_eq!(state_of(&team.phone, &nurse_id), "trusted");
    assert_eq!(state_of(&team.worker_device, &phone_id), "trusted");
}
