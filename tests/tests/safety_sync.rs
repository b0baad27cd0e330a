//! Patient safety across devices, over a real server on loopback (issue 16): a self-harm answer
//! on no pathway reaches the nurse's caseload first and stays there, whatever later answers say,
//! until she acknowledges it; the citizen's device then shows the acknowledgement. A citizen's
//! device cannot acknowledge, even by forging its local role: the server refuses it.

use polku_core::pathway::Actor;
use polku_core::questionnaire::{InstrumentId, Lang};
use polku_core::safety::{Advice, Rule};
use polku_server::Role;

#[test]
fn self_harm_answer_stays_first_in_the_caseload_until_acknowledged() {
    let polku_e2e::CareTeam {
        server,
        citizen,
        worker: nurse,
        phone,
        worker_device: laptop,
    } = polku_e2e::CareTeam::new(Role::Professional);
    // Another person in the nurse's care, on a pathway with an overdue step.
    let other = server.user(Role::Citizen, "Other");
    polku_server::Storage::assign(&*server.storage, &nurse, &other).unwrap();
    let other_phone = polku_e2e::Device::enrolled(&server.url(), &server.code(&other));
    other_phone
        .polku
        .pathways()
        .enroll("t2d-care-path", Actor::Citizen)
        .unwrap();
    other_phone.sync().unwrap();

    // The citizen, on no pathway, answers PHQ-9 with item 9 = 1 and is told what to do now.
    let q = phone.polku.questionnaires();
    let first = q
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[1, 1, 0, 1, 0, 0, 0, 0, 1],
            None,
        )
        .unwrap();
    let s = phone.polku.safety();
    let raised = s.raised_by(first.id).unwrap();
    assert_eq!(raised.len(), 1);
    let g = s.guidance(&raised, Lang::Fi);
    assert_eq!(g[0].advice, Advice::SelfHarm);
    let said = g[0].steps.join(" ");
    assert!(
        said.contains("112") && said.contains("09 2525 0111"),
        "{said}"
    );
    assert!(!said.contains(Rule::Phq9Item9.care_team_text().fi));
    // Minutes later she answers again, item 9 = 0: the flag stays.
    let later = (phone.polku.now() + std::time::Duration::from_secs(300)).fixed_offset();
    q.answer(InstrumentId::Phq9, Lang::Fi, &[0; 9], Some(later))
        .unwrap();
    assert_eq!(s.flags(false).unwrap().len(), 1);
    phone.sync().unwrap();

    laptop.sync().unwrap();
    let caseload = laptop.polku.caseload().unwrap();
    assert_eq!(caseload[0].subject, citizen, "the urgent flag first");
    assert!(caseload[0].enrollment.is_none(), "she is on no pathway");
    assert_eq!(caseload[0].safety_flags.len(), 1);
    let flag = caseload[0].safety_flags[0].clone();
    assert_eq!(flag.rule, Rule::Phq9Item9);
    assert_eq!(flag.id, raised[0].id, "the same flag id on both devices");
    assert_eq!(caseload[1].subject, other);
    // Syncing again changes nothing: the later answer clears nothing.
    laptop.sync().unwrap();
    assert_eq!(laptop.polku.caseload().unwrap()[0].subject, citizen);

    // The nurse acknowledges with what was done.
    let view = laptop.polku.for_subject(&citizen).unwrap();
    let done = view
        .safety()
        .acknowledge(flag.id, "Soitettu, tapaaminen huomenna klo 9")
        .unwrap();
    assert_eq!(done[0].acknowledgements[0].by, nurse);
    assert!(laptop
        .polku
        .caseload()
        .unwrap()
        .iter()
        .all(|c| c.safety_flags.is_empty()));
    laptop.sync().unwrap();
    // The server audited the nurse's write to the citizen's record.
    let audit = polku_server::Storage::audit(&*server.storage, &citizen).unwrap();
    assert!(audit
        .iter()
        .any(|a| a.actor_id == nurse && a.action == "write"));

    // The citizen's device shows it acknowledged, by whom and what was done.
    phone.sync().unwrap();
    assert!(s.flags(false).unwrap().is_empty());
    let all = s.flags(true).unwrap();
    assert_eq!(all.len(), 1);
    let ack = &all[0].acknowledgements[0];
    assert_eq!(
        (ack.by.as_str(), ack.note.as_str()),
        (nurse.as_str(), "Soitettu, tapaaminen huomenna klo 9")
    );
    assert_eq!(
        polku_e2e::synced_state(&phone.path()),
        polku_e2e::synced_state(&laptop.path())
            .into_iter()
            .filter(|l| l.contains(&citizen))
            .collect::<Vec<_>>(),
        "the phone holds exactly the laptop's view of her record, flags and acknowledgements included"
    );
}

#[test]
fn a_citizen_device_cannot_acknowledge_even_with_a_forged_role() {
    let polku_e2e::CareTeam {
        server: _server,
        phone,
        worker_device: laptop,
        ..
    } = polku_e2e::CareTeam::new(Role::Professional);
    let e = phone
        .polku
        .diary()
        .add(polku_core::diary::NewEntry::new(
            polku_core::diary::EntryData::Glucose(polku_core::diary::Glucose {
                reading: polku_core::diary::GlucoseReading::Low,
                unit: polku_core::diary::GlucoseUnit::MmolL,
                context: polku_core::diary::MealContext::Night,
                hours_after_meal: None,
                source: polku_core::diary::GlucoseSource::Meter,
            }),
        ))
        .unwrap();
    let flag = phone.polku.safety().raised_by(e.id).unwrap().remove(0);
    assert_eq!(flag.rule, Rule::GlucoseVeryLow);
    // The app refuses on a citizen's device...
    assert!(phone.polku.safety().acknowledge(flag.id, "ok").is_err());
    // ...and a tampered device that claims to be a professional is refused by the server.
    phone
        .polku
        .store()
        .write(|tx| {
            tx.execute(
                "UPDATE profile SET value = 'professional' WHERE key = 'sync.role'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    phone
        .polku
        .safety()
        .acknowledge(flag.id, "handled it myself")
        .unwrap();
    let r = phone.sync().unwrap();
    assert_eq!(r.quarantined, 1);
    let q = phone.polku.sync().status().unwrap().quarantined;
    assert_eq!(q[0].code, "forbidden_kind");
    // The nurse still sees the flag open.
    laptop.sync().unwrap();
    let c = laptop.polku.caseload().unwrap();
    assert_eq!(c[0].safety_flags.len(), 1);
    assert_eq!(c[0].safety_flags[0].id, flag.id);
}
