//! Trust nothing a device sends (issue 9): operations pushed straight to the API by an enrolled
//! device that does not use the core, against a real `polku-server` on loopback, and operations a
//! server stored without checking them, pulled by a real device.

use polku_core::diary::{
    EntryData, Glucose, GlucoseReading, GlucoseSource, GlucoseUnit, MealContext, NewEntry,
};
use polku_e2e::api::{push, weight_op, Api};
use polku_e2e::{CareTeam, TestServer};
use polku_server::{Role, Storage};
use serde_json::{json, Value};

fn glucose_data(mmol_l: f64) -> String {
    serde_json::to_string(&EntryData::Glucose(Glucose {
        reading: GlucoseReading::Value { mmol_l },
        unit: GlucoseUnit::MmolL,
        context: MealContext::Fasting,
        hours_after_meal: None,
        source: GlucoseSource::Meter,
    }))
    .unwrap()
}

fn glucose_op(author: &str, stream: &str, seq: i64, mmol_l: f64) -> Value {
    let mut op = weight_op(author, stream, seq);
    op["payload"]["kind"] = json!("glucose");
    op["payload"]["data"] = json!(glucose_data(mmol_l));
    op
}

/// (status, code, reason) of each result.
fn outcomes(v: &Value) -> Vec<(String, String, String)> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
            (s("status"), s("code"), s("reason"))
        })
        .collect()
}

/// Stores an operation as a server that did not check it would have (an older server version,
/// or a database restored from such a one), to see what the devices make of it.
fn store_unchecked(server: &TestServer, stream: &str, op: &Value) {
    let c = server.db();
    c.execute(
        "INSERT OR IGNORE INTO stream (id, last_seq) VALUES (?1, 0)",
        [stream],
    )
    .unwrap();
    let seq: i64 = c
        .query_row(
            "UPDATE stream SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
            [stream],
            |r| r.get(0),
        )
        .unwrap();
    c.execute(
        "INSERT INTO op (stream, seq, op_id, device_id, device_seq, hlc, kind, schema_version, payload, received_ms)
         VALUES (?1, ?2, ?3, 'forged', ?2, ?4, ?5, 1, ?6, 0)",
        rusqlite::params![
            stream,
            seq,
            op["op_id"].as_str().unwrap(),
            op["hlc"].as_str().unwrap(),
            op["kind"].as_str().unwrap(),
            op["payload"].to_string()
        ],
    )
    .unwrap();
}

/// The citizen's phone records a weight and uploads it.
fn weigh_and_upload(team: &CareTeam) -> polku_core::diary::Entry {
    let e = team
        .phone
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.0 }))
        .unwrap();
    team.phone.sync().unwrap();
    e
}

/// The reasons a device holds received operations aside for.
fn held_reasons(p: &polku_core::Polku) -> Vec<String> {
    p.store()
        .read(|c| {
            let mut stmt = c.prepare("SELECT reason FROM sync_held ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .unwrap()
}

#[test]
fn implausible_payloads_pushed_to_the_api_are_rejected_naming_the_field() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let (token, _) = api.token(&server.code(&citizen));
    let op = |seq| weight_op(&citizen, &citizen, seq);
    let with = |seq, field: &str, value: Value| {
        let mut o = op(seq);
        o["payload"][field] = value;
        o
    };
    let cases: Vec<(Value, &str)> = vec![
        (glucose_op(&citizen, &citizen, 1, -5.0), "glucose.value"),
        (glucose_op(&citizen, &citizen, 2, 1e308), "glucose.value"),
        (with(3, "at_ms", json!(i64::MIN)), "at_ms"),
        (with(4, "at_ms", json!(i64::MAX)), "at_ms"),
        (with(5, "utc_offset_s", json!(2147483647)), "utc_offset_s"),
        (with(6, "created_ms", json!("yesterday")), "created_ms"),
        (with(7, "version", json!(-1)), "version"),
        (with(8, "kind", json!("mood")), "kind"),
        (with(9, "entry_id", json!("not-a-uuid")), "entry_id"),
        (with(10, "smuggled", json!("x")), "smuggled"),
    ];
    let (ops, fields): (Vec<Value>, Vec<&str>) = cases.into_iter().unzip();
    let mut batch = ops;
    batch.push(op(11));
    let (s, v) = push(&api, &token, batch);
    assert_eq!(s, 200, "{v}");
    let got = outcomes(&v);
    for ((status, code, reason), field) in got.iter().zip(&fields) {
        assert_eq!(
            (status.as_str(), code.as_str()),
            ("rejected", "invalid_payload"),
            "{field}: {reason}"
        );
        assert!(reason.contains(field), "the reason names {field}: {reason}");
    }
    assert_eq!(
        got.last().unwrap().0,
        "applied",
        "a plausible entry still goes through"
    );
}

#[test]
fn a_device_holds_what_an_unchecking_server_stored_instead_of_applying_it() {
    let team = CareTeam::new(Role::Professional);
    let good = weigh_and_upload(&team);
    store_unchecked(
        &team.server,
        &team.citizen,
        &glucose_op(&team.citizen, &team.citizen, 1, 1e308),
    );
    let mut at_min = weight_op(&team.citizen, &team.citizen, 2);
    at_min["payload"]["at_ms"] = json!(i64::MIN);
    store_unchecked(&team.server, &team.citizen, &at_min);

    let r = team.worker_device.sync().unwrap();
    assert_eq!((r.pulled, r.held), (1, 2), "{r:?}");
    let reasons = held_reasons(&team.worker_device.polku);
    assert!(reasons[0].contains("glucose.value"), "{reasons:?}");
    assert!(reasons[1].contains("at_ms"), "{reasons:?}");
    let view = team.worker_device.polku.for_subject(&team.citizen).unwrap();
    let ids: Vec<_> = view
        .diary()
        .list(&Default::default())
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        vec![good.id],
        "only the plausible entry is in the list"
    );
}

#[test]
fn authorship_is_stamped_from_the_token_never_claimed() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let nurse = server.user(Role::Professional, "Hoitaja");
    server.storage.assign(&nurse, &citizen).unwrap();
    let (citizen_token, _) = api.token(&server.code(&citizen));
    let (nurse_token, _) = api.token(&server.code(&nurse));

    // The citizen claiming the nurse wrote it, and the nurse claiming the citizen did.
    let (_, v) = push(&api, &citizen_token, vec![weight_op(&nurse, &citizen, 1)]);
    assert_eq!(outcomes(&v)[0].1, "forbidden_author", "{v}");
    let (_, v) = push(&api, &nurse_token, vec![weight_op(&citizen, &citizen, 1)]);
    assert_eq!(outcomes(&v)[0].1, "forbidden_author", "{v}");
    // Each under their own name: applied.
    let (_, v) = push(&api, &citizen_token, vec![weight_op(&citizen, &citizen, 2)]);
    assert_eq!(outcomes(&v)[0].0, "applied", "{v}");
    let (_, v) = push(&api, &nurse_token, vec![weight_op(&nurse, &citizen, 2)]);
    assert_eq!(outcomes(&v)[0].0, "applied", "{v}");
}

#[test]
fn what_a_citizen_wrote_before_enrolling_is_uploaded_under_their_server_identity() {
    let server = TestServer::start();
    let citizen = server.user(Role::Citizen, "Aino");
    let nurse = server.user(Role::Professional, "Hoitaja");
    server.storage.assign(&nurse, &citizen).unwrap();
    let mut phone = polku_e2e::Device::new();
    let early = phone
        .polku
        .diary()
        .add(NewEntry::new(EntryData::Weight { kg: 70.0 }))
        .unwrap();
    polku_e2e::block_on(
        phone
            .polku
            .sync()
            .enroll(&server.url(), &server.code(&citizen), None),
    )
    .unwrap();
    phone.reopen();
    let r = phone.sync().unwrap();
    assert_eq!((r.pushed, r.quarantined), (1, 0), "{r:?}");
    let laptop = polku_e2e::Device::enrolled(&server.url(), &server.code(&nurse));
    laptop.sync().unwrap();
    let got = laptop
        .polku
        .for_subject(&citizen)
        .unwrap()
        .diary()
        .get(early.id)
        .unwrap();
    assert_eq!(got.author, citizen);
}

#[test]
fn an_entry_stays_in_its_own_subjects_stream() {
    // A professional's device holding two subjects, A and B.
    let team = CareTeam::new(Role::Professional);
    let a = &team.citizen;
    let b = team.server.user(Role::Citizen, "Bertta");
    team.server.storage.assign(&team.worker, &b).unwrap();
    let entry = weigh_and_upload(&team);

    // Through the API: a "version 2" of A's entry pushed into B's stream is refused.
    let api = Api::new(&team.server);
    let (token, _) = api.token(&team.server.code(&team.worker));
    let mut moved = weight_op(&team.worker, &b, 1);
    moved["payload"]["entry_id"] = json!(entry.id.to_string());
    moved["payload"]["version"] = json!(2);
    let (_, v) = push(&api, &token, vec![moved.clone()]);
    assert_eq!(outcomes(&v)[0].1, "foreign_record", "{v}");

    // Stored anyway by a server that did not check: the device holds it; A's entry stays A's.
    store_unchecked(&team.server, &b, &moved);
    let r = team.worker_device.sync().unwrap();
    assert_eq!(r.held, 1, "{r:?}");
    let list = |subject: &str| {
        team.worker_device
            .polku
            .for_subject(subject)
            .unwrap()
            .diary()
            .list(&Default::default())
            .unwrap()
            .entries
            .into_iter()
            .map(|e| (e.id, e.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(list(a), vec![(entry.id, 1)]);
    assert_eq!(list(&b), vec![]);
}

#[test]
fn a_refused_operation_id_never_answers_another_devices_push() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let a = server.user(Role::Citizen, "Aino");
    let b = server.user(Role::Citizen, "Bertta");
    let (a_token, _) = api.token(&server.code(&a));
    let (b_token, _) = api.token(&server.code(&b));

    // B pushes A's (future) operation id into A's stream: refused.
    let genuine = weight_op(&a, &a, 1);
    let mut forged = genuine.clone();
    forged["payload"]["author"] = json!(b);
    let (_, v) = push(&api, &b_token, vec![forged]);
    assert_eq!(outcomes(&v)[0].1, "forbidden_stream", "{v}");
    // A's genuine push of that id is applied, not answered with B's refusal.
    let (_, v) = push(&api, &a_token, vec![genuine.clone()]);
    assert_eq!(outcomes(&v)[0].0, "applied", "{v}");

    // B reusing an id stored in A's stream, in B's own stream, learns nothing of A's: the
    // answer is a fresh id's.
    let other = weight_op(&a, &a, 2);
    let (_, v) = push(&api, &a_token, vec![other.clone()]);
    assert_eq!(outcomes(&v)[0].0, "applied", "{v}");
    let mut reuse = weight_op(&b, &b, 2);
    reuse["op_id"] = other["op_id"].clone();
    reuse["payload"]["version_id"] = other["op_id"].clone();
    let (_, v) = push(&api, &b_token, vec![reuse]);
    let fresh = push(&api, &b_token, vec![weight_op(&b, &b, 3)]).1;
    let shape = |v: &Value| {
        let (s, c, r) = &outcomes(v)[0];
        (s.clone(), c.clone(), r.clone())
    };
    assert_eq!(shape(&v), shape(&fresh), "{v} vs {fresh}");
}

#[test]
fn a_care_team_kind_is_refused_from_a_citizen_at_any_schema_version() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let (token, _) = api.token(&server.code(&citizen));
    for version in [1, 99] {
        let id = uuid::Uuid::now_v7().to_string();
        let ack = json!({
            "op_id": id, "stream": citizen, "device_seq": version,
            "hlc": format!("{:016x}-0000-test", polku_e2e::api::chrono_ms()),
            "kind": "safety.ack", "schema_version": version,
            "payload": {"id": id, "flag_id": uuid::Uuid::now_v7().to_string(), "note": "ok",
                        "author": citizen, "acked_ms": polku_e2e::api::chrono_ms()}
        });
        let (_, v) = push(&api, &token, vec![ack]);
        assert_eq!(
            outcomes(&v)[0].1,
            "forbidden_kind",
            "version {version}: {v}"
        );
    }
}
