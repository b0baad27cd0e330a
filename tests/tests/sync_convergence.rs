//! Two devices of one citizen write and edit offline, then sync in every order against a real
//! server on loopback: both end with the same records, a concurrent edit of one entry becomes a
//! reviewable conflict with both versions and both authors, and nothing is lost.

use polku_core::diary::{EntryData, EntryKind, EntryQuery, NewEntry};
use polku_e2e::{synced_state, Device, TestServer};
use polku_server::Role;

fn weight(kg: f64) -> NewEntry {
    NewEntry::new(EntryData::Weight { kg })
}

fn weights(d: &Device) -> Vec<f64> {
    let page = d
        .polku
        .diary()
        .list(&EntryQuery {
            kinds: vec![EntryKind::Weight],
            ..Default::default()
        })
        .unwrap();
    sorted_kg(&page.entries)
}

/// The weights of `entries`, ascending.
fn sorted_kg(entries: &[polku_core::diary::Entry]) -> Vec<f64> {
    let mut v: Vec<f64> = entries
        .iter()
        .map(|e| match e.data {
            EntryData::Weight { kg } => kg,
            _ => unreachable!(),
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// `order` lists which device syncs, in turn, after both worked offline.
fn scenario(order: &[usize]) {
    let server = TestServer::start();
    let citizen = server.user(Role::Citizen, "Aino");
    let devices = [
        Device::enrolled(&server.url(), &server.code(&citizen)),
        Device::enrolled(&server.url(), &server.code(&citizen)),
    ];
    // A shared entry both devices know.
    let shared = devices[0].polku.diary().add(weight(80.0)).unwrap();
    devices[0].sync().unwrap();
    devices[1].sync().unwrap();
    assert_eq!(weights(&devices[1]), vec![80.0]);

    // Offline: each adds its own entries and edits the shared one differently.
    devices[0].polku.diary().add(weight(81.0)).unwrap();
    devices[1].polku.diary().add(weight(82.0)).unwrap();
    let note = devices[1]
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Note).note("ok"))
        .unwrap();
    devices[1]
        .polku
        .diary()
        .delete(note.id, "entered in error")
        .unwrap();
    devices[0]
        .polku
        .diary()
        .edit(shared.id, weight(79.5))
        .unwrap();
    devices[1]
        .polku
        .diary()
        .edit(shared.id, weight(79.0))
        .unwrap();

    for &i in order {
        devices[i].sync().unwrap();
    }
    // Whatever the order, a final round brings both up to date.
    devices[0].sync().unwrap();
    devices[1].sync().unwrap();

    let a = synced_state(&devices[0].path());
    let b = synced_state(&devices[1].path());
    assert_eq!(a, b, "devices diverged after order {order:?}");

    // Nothing lost: both versions of the shared entry and every new entry are there.
    for d in &devices {
        let history = d.polku.diary().history(shared.id).unwrap();
        assert_eq!(
            history.len(),
            3,
            "version 1 and both concurrent version 2s are kept"
        );
        let w = weights(d);
        assert!(w.contains(&81.0) && w.contains(&82.0), "{w:?}");
        assert_eq!(d.polku.sync().status().unwrap().pending, 0);

        let conflicts = d.polku.diary().conflicts().unwrap();
        assert_eq!(
            conflicts.len(),
            1,
            "the concurrent edit is a conflict for review"
        );
        let c = &conflicts[0];
        assert_eq!(c.entry_id, shared.id);
        assert_eq!(
            sorted_kg(&c.versions),
            vec![79.0, 79.5],
            "both values are shown"
        );
        assert!(c.versions.iter().all(|v| v.author == citizen));
    }

    // A person settles it on one device; the other sees it settled after syncing.
    let c = devices[0].polku.diary().conflicts().unwrap().remove(0);
    let keep = c
        .versions
        .iter()
        .find(|v| matches!(v.data, EntryData::Weight { kg } if kg == 79.0))
        .unwrap()
        .version_id;
    devices[0]
        .polku
        .diary()
        .resolve_conflict(&c.id, keep)
        .unwrap();
    devices[0].sync().unwrap();
    devices[1].sync().unwrap();
    for d in &devices {
        assert!(d.polku.diary().conflicts().unwrap().is_empty());
        let head = d.polku.diary().get(shared.id).unwrap();
        assert!(matches!(head.data, EntryData::Weight { kg } if kg == 79.0));
    }
    assert_eq!(
        synced_state(&devices[0].path()),
        synced_state(&devices[1].path())
    );
}

#[test]
fn a_then_b() {
    scenario(&[0, 1]);
}

#[test]
fn b_then_a() {
    scenario(&[1, 0]);
}

#[test]
fn interleaved_repeats() {
    scenario(&[1, 1, 0, 1, 0, 0]);
}

#[test]
fn diary_written_before_enrolling_is_uploaded() {
    let server = TestServer::start();
    let citizen = server.user(Role::Citizen, "Eino");
    let mut d = Device::new();
    let before = d.polku.diary().add(weight(90.0)).unwrap();
    polku_e2e::block_on(
        d.polku
            .sync()
            .enroll(&server.url(), &server.code(&citizen), None),
    )
    .unwrap();
    d.reopen();
    assert_eq!(
        d.polku.subject_id(),
        citizen,
        "the local record became the citizen's stream"
    );
    assert_eq!(d.polku.sync().status().unwrap().pending, 1);
    let r = d.sync().unwrap();
    assert_eq!(r.pushed, 1);
    let other = Device::enrolled(&server.url(), &server.code(&citizen));
    other.sync().unwrap();
    assert_eq!(other.polku.diary().get(before.id).unwrap().id, before.id);
}

/// Pathway progress and questionnaire responses travel like diary entries: a nurse's device sees
/// the citizen's enrollment, the step she completed and her PHQ-9 score.
#[test]
fn pathway_progress_and_questionnaires_sync_both_ways() {
    use polku_core::pathway::Actor;
    use polku_core::questionnaire::{InstrumentId, Lang};
    let polku_e2e::CareTeam {
        citizen,
        phone,
        worker_device: laptop,
        server: _running,
        ..
    } = polku_e2e::CareTeam::new(Role::Professional);

    let e = phone
        .polku
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    phone
        .polku
        .pathways()
        .complete(e.id, "welcome", Actor::Citizen)
        .unwrap();
    let phq = phone
        .polku
        .questionnaires()
        .answer(
            InstrumentId::Phq9,
            Lang::Sv,
            &[1, 1, 2, 1, 0, 1, 0, 0, 1],
            None,
        )
        .unwrap();
    phone.sync().unwrap();
    laptop.sync().unwrap();

    let view = laptop.polku.for_subject(&citizen).unwrap();
    let seen = view.pathways().progress(e.id).unwrap();
    let mine = phone.polku.pathways().progress(e.id).unwrap();
    assert_eq!(seen.finished, mine.finished);
    assert_eq!(format!("{:?}", seen.steps), format!("{:?}", mine.steps));
    let responses = view.questionnaires().list(None, 10).unwrap();
    assert_eq!(responses.len(), 1);
    // The whole response arrives, with the language and wording version the form was shown in.
    assert_eq!(responses[0], phq);
    assert_eq!(responses[0].language, Some(Lang::Sv));
    assert_eq!(responses[0].wording, "polku-1");

    assert_eq!(synced_state(&phone.path()), synced_state(&laptop.path()));
}

/// Client details merge per field: edits of different fields both stand; concurrent edits of one
/// field show the newer by HLC and keep the other as a conflict with its author, on every device,
/// until someone sets the field having seen both.
#[test]
fn client_details_merge_per_field_and_flag_concurrent_edits() {
    let polku_e2e::CareTeam {
        citizen,
        worker,
        phone,
        worker_device: tablet,
        server: _running,
    } = polku_e2e::CareTeam::new(Role::Outreach);
    phone.polku.details().set("phone", Some("040 111")).unwrap();
    phone.sync().unwrap();
    tablet.sync().unwrap();
    let mine = tablet.polku.for_subject(&citizen).unwrap();

    // Offline on both: different fields, and the same field.
    phone
        .polku
        .details()
        .set("language", Some("suomi"))
        .unwrap();
    mine.details()
        .set("access_instructions", Some("avain avainsäilössä"))
        .unwrap();
    phone.polku.details().set("phone", Some("040 222")).unwrap();
    mine.details().set("phone", Some("040 333")).unwrap();
    for d in [&phone, &tablet, &phone] {
        d.sync().unwrap();
    }
    let a = phone.polku.details().get().unwrap();
    let b = tablet
        .polku
        .for_subject(&citizen)
        .unwrap()
        .details()
        .get()
        .unwrap();
    assert_eq!(a, b, "both devices show the same");
    let fields: Vec<&str> = a.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["phone", "access_instructions", "language"]);
    let phone_field = &a[0];
    assert_eq!(
        phone_field.conflicting.len(),
        1,
        "a concurrent edit is a conflict"
    );
    let mut values = vec![
        phone_field.current.value.clone().unwrap(),
        phone_field.conflicting[0].value.clone().unwrap(),
    ];
    values.sort();
    assert_eq!(values, vec!["040 222", "040 333"]);
    let mut authors = vec![
        phone_field.current.author.clone(),
        phone_field.conflicting[0].author.clone(),
    ];
    authors.sort();
    let mut want = vec![citizen.clone(), worker.clone()];
    want.sort();
    assert_eq!(authors, want, "both authors are shown");
    assert_eq!(phone.polku.sync().status().unwrap().conflicts, 1);

    // The citizen confirms her number; everyone sees it settled.
    phone.polku.details().set("phone", Some("040 222")).unwrap();
    phone.sync().unwrap();
    tablet.sync().unwrap();
    let settled = tablet
        .polku
        .for_subject(&citizen)
        .unwrap()
        .details()
        .get()
        .unwrap();
    assert!(settled[0].conflicting.is_empty());
    assert_eq!(settled[0].current.value.as_deref(), Some("040 222"));
    assert_eq!(tablet.polku.sync().status().unwrap().conflicts, 0);
    assert_eq!(
        phone.polku.details().history("phone").unwrap().len(),
        4,
        "full history kept"
    );
}
