//! Home-care visits that work for days without a connection (issue 11), through a real
//! `polku-server` on loopback: two workers' devices with the plans, three simulated days offline
//! (a fake clock), then one sync each. Every record exists once everywhere, the visit both marked
//! done is the one conflict, and a blood pressure measured at a visit is in the citizen's diary.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use polku_core::diary::{BloodPressure, EntryData, EntryKind, EntryQuery, NewEntry};
use polku_core::time::FixedClock;
use polku_core::visits::Visit;
use polku_e2e::{Device, TestServer};
use polku_server::{Role, Storage};

const PLAN: &str = r#"{"visits": [
    {"slot": "morning", "name": "Aamukäynti", "days": ["daily"], "from": "07:00", "to": "09:00",
     "tasks": ["medication", "blood_pressure"]},
    {"slot": "evening", "name": "Iltakäynti", "days": ["daily"], "from": "19:00", "to": "21:00",
     "tasks": ["meal", "safety_check"]}
]}"#;

/// A worker's device enrolled as `user`, on a clock the test moves.
fn worker(server: &TestServer, user: &str, clock: Arc<FixedClock>) -> Device {
    Device::enrolled_on_clock(&server.url(), &server.code(user), clock)
}

fn at(clock: &FixedClock, day: NaiveDate, hh: u32, mm: u32) {
    let t = chrono_tz::Europe::Helsinki
        .from_local_datetime(&day.and_hms_opt(hh, mm, 0).unwrap())
        .unwrap();
    clock.set(t.with_timezone(&Utc));
}

/// Every visit of `days` on a device, as JSON lines (equal on every device after sync).
fn state(d: &Device, days: &[NaiveDate]) -> Vec<String> {
    days.iter()
        .flat_map(|day| d.polku.visits_on(*day).unwrap())
        .map(|v| serde_json::to_string(&v).unwrap())
        .collect()
}

fn visits_of(d: &Device, day: NaiveDate) -> Vec<Visit> {
    d.polku.visits_on(day).unwrap()
}

#[test]
fn two_workers_three_days_offline_lose_nothing_and_the_double_visit_is_one_conflict() {
    let mut server = TestServer::start();
    let (a_user, b_user) = (
        server.user(Role::Professional, "Hoitaja A"),
        server.user(Role::Professional, "Hoitaja B"),
    );
    let clients: Vec<String> = (0..9)
        .map(|i| server.user(Role::Citizen, &format!("Asiakas {i}")))
        .collect();
    for c in &clients {
        server.storage.assign(&a_user, c).unwrap();
        server.storage.assign(&b_user, c).unwrap();
    }
    let citizen_phone = Device::enrolled(&server.url(), &server.code(&clients[0]));
    // Three days that ended before now (the server takes no record stamped in its future).
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .date_naive();
    let days: Vec<NaiveDate> = (1..=3).rev().map(|k| today - Duration::days(k)).collect();
    let (ca, cb) = (
        Arc::new(FixedClock::new(Utc::now())),
        Arc::new(FixedClock::new(Utc::now())),
    );
    let (a, b) = (
        worker(&server, &a_user, ca.clone()),
        worker(&server, &b_user, cb.clone()),
    );
    // The coordinator (A) sets every client's plan; both devices download before going out.
    a.sync().unwrap();
    at(&ca, days[0] - Duration::days(1), 15, 0);
    for c in &clients {
        let p = a.polku.for_subject(c).unwrap();
        p.visits().set_plan(PLAN, days[0]).unwrap();
    }
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(visits_of(&b, days[0]).len(), 18, "9 clients × 2 visits");

    // Offline for three days (the server is down: a sync fails and keeps everything queued).
    // A takes clients 0–4, B clients 5–8; both do client 0's first morning visit (nobody told B
    // that A had it).
    server.stop();
    let mut written = 0;
    let mut entries = 0;
    for (k, day) in days.iter().enumerate() {
        for (w, clock, mine) in [(&a, &ca, 0..5), (&b, &cb, 5..9)] {
            for slot_hour in [7, 19] {
                for i in mine.clone() {
                    at(clock, *day, slot_hour, 10 + i as u32);
                    let v = visits_of(w, *day)
                        .into_iter()
                        .find(|v| {
                            v.subject == clients[i]
                                && v.from.format("%H").to_string() == format!("{slot_hour:02}")
                        })
                        .unwrap();
                    let m = w.polku.for_visit(&v.id).unwrap();
                    let visits = m.visits();
                    // Client 3 is not at home on the second evening.
                    if k == 1 && slot_hour == 19 && i == 3 {
                        visits
                            .not_done(&v.id, "not_at_home", Some("Ei avannut ovea"))
                            .unwrap();
                        written += 1;
                        continue;
                    }
                    // A hands client 4's last evening visit to B, who does it.
                    if k == 2 && slot_hour == 19 && i == 4 {
                        visits
                            .handover(&v.id, &b_user, "Avain on naapurilla.")
                            .unwrap();
                        let bv = b.polku.for_visit(&v.id).unwrap();
                        at(&cb, *day, 19, 40);
                        bv.visits().arrive(&v.id).unwrap();
                        for t in ["meal", "safety_check"] {
                            bv.visits().task(&v.id, t, "done", None).unwrap();
                        }
                        bv.visits().finish(&v.id).unwrap();
                        written += 5;
                        continue;
                    }
                    visits.arrive(&v.id).unwrap();
                    written += 1;
                    for t in &v.tasks {
                        if t.code == "blood_pressure" {
                            let e = NewEntry {
                                at: None,
                                note: None,
                                data: EntryData::BloodPressure(BloodPressure {
                                    systolic: 128 + i as u16,
                                    diastolic: 82,
                                    pulse: Some(70),
                                    arm: None,
                                    series: None,
                                }),
                            };
                            visits.measure(&v.id, e).unwrap();
                            written += 1;
                            entries += 1;
                        }
                        visits.task(&v.id, &t.code, "done", None).unwrap();
                        written += 1;
                    }
                    if i == 2 {
                        visits
                            .note(&v.id, "Söi hyvin, mieliala hyvä.", Some("nutrition"))
                            .unwrap();
                        written += 1;
                    }
                    clock.set(clock_now(clock) + Duration::minutes(20));
                    visits.finish(&v.id).unwrap();
                    written += 1;
                }
            }
        }
        if k == 0 {
            // B also goes to client 0's first morning visit, offline, and marks it done.
            let v = visits_of(&b, *day)
                .into_iter()
                .find(|v| v.subject == clients[0] && v.slot == "morning")
                .unwrap();
            at(&cb, *day, 7, 30);
            let m = b.polku.for_visit(&v.id).unwrap();
            m.visits().arrive(&v.id).unwrap();
            m.visits().finish(&v.id).unwrap();
            written += 2;
        }
    }

    let tried = a.sync().unwrap_err();
    assert_eq!(tried.code(), "network", "{tried}");
    assert_eq!(
        a.polku.sync().status().unwrap().pending as i64
            + b.polku.sync().status().unwrap().pending as i64,
        written + entries,
        "every event and blood pressure queued"
    );
    server.resume();
    // Back in coverage: one sync each (and once more for what the other uploaded meanwhile).
    for d in [&a, &b, &a, &citizen_phone] {
        d.sync().unwrap();
    }
    let (sa, sb) = (state(&a, &days), state(&b, &days));
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(x, y, "both devices show the same visits");
    }
    let all: Vec<Visit> = days.iter().flat_map(|d| visits_of(&a, *d)).collect();
    assert_eq!(all.len(), 54);
    let conflicted: Vec<&Visit> = all.iter().filter(|v| !v.conflicts.is_empty()).collect();
    assert_eq!(conflicted.len(), 1, "exactly one conflict");
    let double = conflicted[0];
    assert_eq!(
        (double.subject.as_str(), double.slot.as_str(), double.date),
        (clients[0].as_str(), "morning", days[0])
    );
    assert_eq!(double.state, "conflict");
    assert_eq!(double.conflicts[0].about, "visit");
    let authors: Vec<&str> = double.conflicts[0]
        .outcomes
        .iter()
        .map(|o| o.author.as_str())
        .collect();
    assert!(authors.contains(&a_user.as_str()) && authors.contains(&b_user.as_str()));
    assert_eq!(double.arrivals.len(), 2, "both arrivals kept as recorded");
    assert_eq!(all.iter().filter(|v| v.state == "finished").count(), 52);
    let missed: Vec<&Visit> = all.iter().filter(|v| v.state == "not_done").collect();
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].not_done_reason.as_deref(), Some("not_at_home"));
    let handed = all
        .iter()
        .find(|v| v.assigned_to.as_deref() == Some(b_user.as_str()))
        .unwrap();
    assert_eq!(
        handed.handover_note.as_deref(),
        Some("Avain on naapurilla.")
    );
    assert_eq!(handed.state, "finished");
    let mine = |d: &Device| {
        d.polku
            .worker_day(handed.date)
            .unwrap()
            .iter()
            .any(|v| v.id == handed.id)
    };
    assert!(
        mine(&b) && !mine(&a),
        "a handed-over visit is in the new worker's day only"
    );
    assert!(all
        .iter()
        .filter(|v| v.state == "finished")
        .all(|v| v.tasks_left == 0 || v.id == double.id));
    // Every record once: as many events on each device and on the server as were written.
    let count = |d: &Device| -> i64 {
        let c = rusqlite::Connection::open(d.path()).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        c.query_row("SELECT count(*) FROM visit_event", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&a), written);
    assert_eq!(count(&b), written);
    let on_server: i64 = server
        .db()
        .query_row(
            "SELECT count(*) FROM op WHERE kind = 'visits.event'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(on_server, written);
    // Client 0's own device holds her visits' events too, once each (she may read them).
    let hers: i64 = server
        .db()
        .query_row(
            "SELECT count(*) FROM op WHERE kind = 'visits.event' AND stream = ?1",
            [&clients[0]],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hers > 0);
    assert_eq!(count(&citizen_phone), hers);
    // The blood pressures measured at client 0's visits are in her own diary, by the workers.
    let bp = citizen_phone
        .polku
        .diary()
        .list_all(EntryQuery {
            kinds: vec![EntryKind::BloodPressure],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(bp.len(), 3, "one a morning for three days");
    assert!(bp.iter().all(|e| e.author == a_user));
    // The coordinator settles the conflict, keeping A's outcome; B's device agrees after sync.
    let keep = double.conflicts[0]
        .outcomes
        .iter()
        .find(|o| o.author == a_user)
        .unwrap()
        .event_id
        .clone();
    at(&ca, today, 8, 0);
    let resolved = a
        .polku
        .for_visit(&double.id)
        .unwrap()
        .visits()
        .resolve(
            &double.id,
            "visit",
            &keep,
            "Kaksi käyntiä samaan aikaan; A:n kirjaus jää.",
        )
        .unwrap();
    assert_eq!(
        (resolved.state.as_str(), resolved.conflicts.len()),
        ("finished", 0)
    );
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(
        b.polku
            .for_visit(&double.id)
            .unwrap()
            .visits()
            .visit(&double.id)
            .unwrap()
            .state,
        "finished"
    );
    assert_eq!(b.polku.sync().status().unwrap().conflicts, 0);

    // An urgent concern raised at a visit puts the client first in the care team's caseload and
    // the visit first in the day's list, on the other worker's device too.
    let worried = visits_of(&a, days[2])
        .into_iter()
        .find(|v| v.subject == clients[6])
        .unwrap();
    let raised = a
        .polku
        .raise_concern(&worried.id, "Kaatunut yöllä, mustelma otsassa.")
        .unwrap();
    assert!(raised.message.is_some(), "{:?}", raised.message_error);
    a.sync().unwrap();
    b.sync().unwrap();
    // The team hears of it in the client's conversation, end-to-end encrypted.
    let said = b.polku.messaging().messages(&clients[6]).unwrap();
    assert!(
        said.iter()
            .any(|m| m.body.contains("Kaatunut yöllä") && m.sender_user == a_user),
        "{said:?}"
    );
    let caseload = b.polku.caseload().unwrap();
    assert_eq!(
        (caseload[0].subject.as_str(), caseload[0].visit_concerns),
        (clients[6].as_str(), 1)
    );
    assert!(caseload[1..].iter().all(|c| c.visit_concerns == 0));
    assert_eq!(visits_of(&b, days[2])[0].id, worried.id);
}

fn clock_now(c: &FixedClock) -> chrono::DateTime<Utc> {
    use polku_core::time::Clock;
    c.now()
}

#[test]
fn bad_input_gets_a_typed_error_naming_the_field() {
    let server = TestServer::start();
    let nurse = server.user(Role::Professional, "Hoitaja");
    let client = server.user(Role::Citizen, "Asiakas");
    let stranger = server.user(Role::Citizen, "Vieras");
    server.storage.assign(&nurse, &client).unwrap();
    let d = Device::enrolled(&server.url(), &server.code(&nurse));
    d.sync().unwrap();
    let p = d.polku.for_subject(&client).unwrap();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .date_naive();
    // Plans: an unknown task category, overlapping visits.
    let e = p
        .visits()
        .set_plan(&PLAN.replace("\"meal\"", "\"juggling\""), today)
        .unwrap_err();
    assert!(
        e.to_string().contains("plan.visits[1].tasks") && e.to_string().contains("medication"),
        "{e}"
    );
    let e = p
        .visits()
        .set_plan(&PLAN.replace("\"19:00\"", "\"08:00\""), today)
        .unwrap_err();
    assert!(
        e.to_string().contains("plan.visits[1].from") && e.to_string().contains("overlapping"),
        "{e}"
    );
    p.visits()
        .set_plan(PLAN, today - Duration::days(1))
        .unwrap();
    let v = p.visits().schedule(today, 1).unwrap().remove(0);
    // A task not in the plan; leaving before arriving; arriving after leaving.
    let e = p
        .visits()
        .task(&v.id, "wound_care", "done", None)
        .unwrap_err();
    assert!(
        e.to_string().contains("invalid task") && e.to_string().contains("blood_pressure"),
        "{e}"
    );
    let e = p
        .visits()
        .task(&v.id, "medication", "not_done", None)
        .unwrap_err();
    assert!(e.to_string().contains("invalid note"), "{e}");
    let e = p.visits().finish(&v.id).unwrap_err();
    assert!(e.to_string().contains("arrive first"), "{e}");
    let e = p
        .visits()
        .note(&v.id, "Tähdet", Some("astrology"))
        .unwrap_err();
    assert!(
        e.to_string().contains("invalid category") && e.to_string().contains("nutrition"),
        "{e}"
    );
    let noted = p
        .visits()
        .note(&v.id, "Juo vähän.", Some("nutrition"))
        .unwrap();
    assert_eq!(noted.notes[0].category.as_deref(), Some("nutrition"));
    p.visits().arrive(&v.id).unwrap();
    p.visits().finish(&v.id).unwrap();
    let e = p.visits().arrive(&v.id).unwrap_err();
    assert_eq!(e.code(), "conflict", "{e}");
    let e = p.visits().not_done(&v.id, "bored", None).unwrap_err();
    assert!(e.to_string().contains("not_at_home"), "{e}");
    // A visit of a client not on this device: not found.
    assert_eq!(
        d.polku
            .for_visit(&uuid::Uuid::new_v4().to_string())
            .unwrap_err()
            .code(),
        "not_found"
    );
    // A coordinator gives tomorrow's visit to a colleague: it leaves this worker's day.
    let tomorrow = p
        .visits()
        .schedule(today + Duration::days(1), 1)
        .unwrap()
        .remove(0);
    assert!(d
        .polku
        .worker_day(tomorrow.date)
        .unwrap()
        .iter()
        .any(|v| v.id == tomorrow.id));
    p.visits().assign(&tomorrow.id, "colleague").unwrap();
    assert!(!d
        .polku
        .worker_day(tomorrow.date)
        .unwrap()
        .iter()
        .any(|v| v.id == tomorrow.id));
    assert_eq!(
        p.visits()
            .visit(&tomorrow.id)
            .unwrap()
            .assigned_to
            .as_deref(),
        Some("colleague")
    );
    // A client's device cannot write visits (care team only): the server refuses the upload.
    let phone = Device::enrolled(&server.url(), &server.code(&stranger));
    phone.polku.visits().set_plan(PLAN, today).unwrap();
    let r = phone.sync().unwrap();
    assert_eq!(r.quarantined, 1, "{r:?}");
}

/// A school nurse's contacts with a student and a home-care worker's visits of an older client
/// never reach each other's devices: each sees only the people assigned to them. A student's
/// questionnaire given at a contact is named by it, and the follow-up is listed when due.
#[test]
fn outreach_and_home_care_records_stay_with_the_workers_assigned() {
    use polku_core::questionnaire::{InstrumentId, Lang};
    use polku_core::visits::NewContact;
    let server = TestServer::start();
    let school_nurse = server.user(Role::Outreach, "Kouluterveydenhoitaja");
    let home_care = server.user(Role::Professional, "Kotihoitaja");
    let student = server.user(Role::Citizen, "Oppilas");
    let elder = server.user(Role::Citizen, "Vanhus");
    server.storage.assign(&school_nurse, &student).unwrap();
    server.storage.assign(&home_care, &elder).unwrap();
    let nurse_dev = Device::enrolled(&server.url(), &server.code(&school_nurse));
    let home_dev = Device::enrolled(&server.url(), &server.code(&home_care));
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .date_naive();

    // The school nurse meets the student with a PHQ-9 and sets a follow-up.
    let s = nurse_dev.polku.for_subject(&student).unwrap();
    let phq = s
        .questionnaires()
        .answer(
            InstrumentId::Phq9,
            Lang::Fi,
            &[1, 2, 1, 1, 0, 1, 1, 0, 0],
            None,
        )
        .unwrap();
    let bad = s.outreach().record(NewContact {
        kind: "chat".into(),
        ..Default::default()
    });
    assert!(bad.unwrap_err().to_string().contains("with_guardian"));
    let bad = s.outreach().record(NewContact {
        kind: "individual".into(),
        questionnaires: vec![uuid::Uuid::new_v4().to_string()],
        ..Default::default()
    });
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("invalid questionnaire"));
    let bad = s.outreach().record(NewContact {
        kind: "individual".into(),
        follow_up: Some(today - Duration::days(1)),
        ..Default::default()
    });
    assert!(bad.unwrap_err().to_string().contains("invalid follow_up"));
    s.outreach()
        .record(NewContact {
            kind: "individual".into(),
            setting: Some("Koulu".into()),
            note: Some("Väsymystä, nukkuu huonosti.".into()),
            questionnaires: vec![phq.id.to_string()],
            follow_up: Some(today + Duration::days(7)),
            referral: None,
        })
        .unwrap();
    assert_eq!(
        nurse_dev
            .polku
            .follow_ups(today + Duration::days(7))
            .unwrap()
            .len(),
        1
    );
    assert!(nurse_dev.polku.follow_ups(today).unwrap().is_empty());
    // The home-care worker visits the older client.
    let e = home_dev.polku.for_subject(&elder).unwrap();
    e.visits().set_plan(PLAN, today).unwrap();
    let v = e.visits().schedule(today, 1).unwrap().remove(0);
    e.visits().arrive(&v.id).unwrap();
    e.visits()
        .note(&v.id, "Kotona kaikki hyvin.", None)
        .unwrap();
    for d in [&nurse_dev, &home_dev, &nurse_dev, &home_dev] {
        d.sync().unwrap();
    }
    // Each device holds only its own people's records.
    assert_eq!(
        nurse_dev
            .polku
            .subjects()
            .unwrap()
            .iter()
            .filter(|x| **x == elder)
            .count(),
        0
    );
    assert_eq!(
        home_dev
            .polku
            .subjects()
            .unwrap()
            .iter()
            .filter(|x| **x == student)
            .count(),
        0
    );
    assert!(nurse_dev.polku.visits_on(today).unwrap().is_empty());
    assert_eq!(home_dev.polku.visits_on(today).unwrap().len(), 2);
    let count = |d: &Device, table: &str| -> i64 {
        let c = rusqlite::Connection::open(d.path()).unwrap();
        c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        (
            count(&home_dev, "outreach_contact"),
            count(&nurse_dev, "outreach_contact")
        ),
        (0, 1)
    );
    assert_eq!(
        (
            count(&nurse_dev, "visit_event"),
            count(&home_dev, "visit_event")
        ),
        (0, 2)
    );
    // A second device of the school nurse gets the contact with its questionnaire.
    let nurse2 = Device::enrolled(&server.url(), &server.code(&school_nurse));
    nurse2.sync().unwrap();
    let got = nurse2
        .polku
        .for_subject(&student)
        .unwrap()
        .outreach()
        .contacts()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].questionnaires, vec![phq.id.to_string()]);
    assert_eq!(got[0].follow_up, Some(today + Duration::days(7)));
    // The student's own device cannot write a contact (care team only): quarantined by the server.
    let phone = Device::enrolled(&server.url(), &server.code(&student));
    phone
        .polku
        .outreach()
        .record(NewContact {
            kind: "individual".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(phone.sync().unwrap().quarantined, 1);
}

/// A coordinator (a professional assigned with the `coordination` scope) plans and hands out a
/// client's visits and sees whether they happened, but receives no note, task outcome,
/// measurement or diary of the client, writes nothing clinical, and is in no conversation of
/// theirs. Their reads are audited like any professional's.
#[test]
fn a_coordinator_sees_plans_and_attendance_not_clinical_records() {
    let server = TestServer::start();
    let nurse = server.user(Role::Professional, "Kotihoitaja");
    let coordinator = server.user(Role::Professional, "Koordinaattori");
    let client = server.user(Role::Citizen, "Asiakas");
    server.storage.assign(&nurse, &client).unwrap();
    server.storage.coordinate(&coordinator, &client).unwrap();
    let n = Device::enrolled(&server.url(), &server.code(&nurse));
    let c = Device::enrolled(&server.url(), &server.code(&coordinator));
    let today = Utc::now()
        .with_timezone(&chrono_tz::Europe::Helsinki)
        .date_naive();
    // The coordinator writes the plan and gives today's visit to the nurse.
    c.sync().unwrap();
    let cv = c.polku.for_subject(&client).unwrap();
    cv.visits().set_plan(PLAN, today).unwrap();
    let morning = cv.visits().schedule(today, 1).unwrap().remove(0);
    cv.visits().assign(&morning.id, &nurse).unwrap();
    assert_eq!(c.sync().unwrap().quarantined, 0);
    // The nurse does the visit, with a note, tasks and a blood pressure; the client writes in
    // her diary too.
    n.sync().unwrap();
    let nv = n.polku.for_visit(&morning.id).unwrap();
    let x = nv.visits();
    x.arrive(&morning.id).unwrap();
    x.note(&morning.id, "Huimausta aamulla.", Some("mobility"))
        .unwrap();
    x.measure(
        &morning.id,
        NewEntry::new(EntryData::BloodPressure(BloodPressure {
            systolic: 150,
            diastolic: 92,
            pulse: None,
            arm: None,
            series: None,
        })),
    )
    .unwrap();
    x.task(&morning.id, "medication", "done", None).unwrap();
    x.finish(&morning.id).unwrap();
    n.sync().unwrap();
    c.sync().unwrap();
    // The coordinator's device: the plan, the assignment, arrival and leaving; nothing clinical.
    let seen = c
        .polku
        .for_visit(&morning.id)
        .unwrap()
        .visits()
        .visit(&morning.id)
        .unwrap();
    assert_eq!(seen.state, "finished");
    assert_eq!(seen.assigned_to.as_deref(), Some(nurse.as_str()));
    assert!(seen.notes.is_empty() && seen.measurements.is_empty());
    assert!(
        seen.tasks.iter().all(|t| t.outcome.is_none()),
        "no task outcomes"
    );
    let count = |d: &Device, sql: &str| -> i64 {
        let db = rusqlite::Connection::open(d.path()).unwrap();
        db.execute_batch(&format!("PRAGMA key = \"x'{}'\";", "09".repeat(32)))
            .unwrap();
        db.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count(&c, "SELECT count(*) FROM entry_version"), 0);
    assert_eq!(count(&c, "SELECT count(*) FROM visit_event WHERE kind IN ('note', 'task', 'measured', 'concern')"), 0);
    assert_eq!(
        count(
            &n,
            "SELECT count(*) FROM visit_event WHERE kind IN ('note', 'task', 'measured')"
        ),
        3
    );
    // A coordinator cannot write a clinical record: the server refuses it.
    let next = cv
        .visits()
        .schedule(today + Duration::days(1), 1)
        .unwrap()
        .remove(0);
    cv.visits().arrive(&next.id).unwrap();
    let r = c.sync().unwrap();
    assert_eq!(r.quarantined, 1, "{r:?}");
    // No conversation with the client for the coordinator; the nurse has one.
    assert!(c.polku.messaging().conversations().unwrap().is_empty());
    assert_eq!(n.polku.messaging().conversations().unwrap().len(), 1);
    // The coordinator's reads are audited.
    let audit = server.storage.audit(&client).unwrap();
    assert!(audit
        .iter()
        .any(|a| a.actor_id == coordinator && a.action == "read"));
}
