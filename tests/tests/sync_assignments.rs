//! Assignments decide what a worker's device holds: when one ends, the subject's records leave
//! the device on its next sync, and a record the worker wrote while assigned but uploaded after
//! is held on the server for review (and audit-logged), never dropped and never slipped in.

use polku_core::diary::{EntryData, NewEntry};

use polku_server::{Role, Storage};

#[test]
fn ended_assignment_purges_the_device_and_holds_late_writes_for_review() {
    let polku_e2e::CareTeam {
        server,
        citizen,
        worker: nurse,
        phone,
        worker_device: tablet,
    } = polku_e2e::CareTeam::new(Role::Outreach);
    let kept = phone
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.0 }))
        .unwrap();
    phone.sync().unwrap();

    tablet.sync().unwrap();
    let view = tablet.polku.for_subject(&citizen).unwrap();
    assert_eq!(
        view.diary().get(kept.id).unwrap().id,
        kept.id,
        "assigned: the record is on the tablet"
    );

    // Offline visit note, then the assignment ends before the tablet syncs.
    let late = view
        .diary()
        .add(NewEntry::new(EntryData::Note).note("home visit"))
        .unwrap();
    server.storage.unassign(&nurse, &citizen).unwrap();
    let r = tablet.sync().unwrap();
    assert_eq!(r.removed_subjects, vec![citizen.clone()]);
    assert_eq!(r.quarantined, 1);

    let status = tablet.polku.sync().status().unwrap();
    assert_eq!(status.quarantined.len(), 1);
    assert_eq!(status.quarantined[0].code, "assignment_ended");
    assert!(
        tablet
            .polku
            .for_subject(&citizen)
            .unwrap()
            .diary()
            .get(kept.id)
            .is_err(),
        "purged"
    );
    assert!(
        tablet
            .polku
            .for_subject(&citizen)
            .unwrap()
            .diary()
            .get(late.id)
            .is_ok(),
        "the worker's own unuploaded note stays on the tablet"
    );

    // Not slipped into the citizen's record; audit-logged for review.
    phone.sync().unwrap();
    assert!(phone.polku.diary().get(late.id).is_err());
    let audit = server.storage.audit(&citizen).unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "write_after_assignment" && a.actor_id == nurse));
    // A later sync neither re-sends nor loses it.
    let again = tablet.sync().unwrap();
    assert_eq!((again.pushed, again.quarantined), (0, 0));
    assert_eq!(tablet.polku.sync().status().unwrap().quarantined.len(), 1);
}
