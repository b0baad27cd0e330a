//! The server's contract, over real HTTP on loopback: the authorization matrix (every endpoint ×
//! every role × own/other subject), revoked devices, expired and reused enrollment codes,
//! oversized and malformed bodies (with a seeded mutation fuzzer over the request decoder), the
//! audit log, and operations from newer app versions kept rather than dropped.

use std::time::Duration;

use polku_core::sync::protocol::*;
use polku_e2e::api::{chrono_ms, pull, push, weight_op, Api};
use polku_e2e::{Device, TestServer};
use polku_server::{Role, Storage};
use serde_json::{json, Value};

fn streams_of(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    s.sort();
    s
}

#[test]
fn authorization_matrix() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let own = server.user(Role::Citizen, "Aino");
    let other = server.user(Role::Citizen, "Bertta");
    let nurse = server.user(Role::Professional, "Nurse");
    let outreach = server.user(Role::Outreach, "Outreach");
    let admin = server.user(Role::Admin, "Admin");
    server.storage.assign(&nurse, &own).unwrap();
    server.storage.assign(&outreach, &other).unwrap();

    // (role, user, the subject it may use, the subject it may not)
    let cases = [
        ("citizen", own.clone(), Some(own.clone()), other.clone()),
        (
            "professional",
            nurse.clone(),
            Some(own.clone()),
            other.clone(),
        ),
        (
            "outreach",
            outreach.clone(),
            Some(other.clone()),
            own.clone(),
        ),
        ("admin", admin.clone(), None, own.clone()),
    ];
    for (role, user, allowed, denied) in &cases {
        let (token, _) = api.token(&server.code(user));
        // push: own/assigned subject accepted, any other quarantined with a reason
        let (s, v) = push(&api, &token, vec![weight_op(user, denied, 1)]);
        if *role == "admin" {
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{role} push"
            );
        } else {
            assert_eq!(s, 200, "{role}: {v}");
            assert_eq!(
                v["results"][0]["status"], "rejected",
                "{role} writing to another subject"
            );
            assert_eq!(v["results"][0]["code"], "forbidden_stream");
        }
        if let Some(allowed) = allowed {
            let (s, v) = push(&api, &token, vec![weight_op(user, allowed, 2)]);
            assert_eq!(s, 200);
            assert_eq!(
                v["results"][0]["status"], "applied",
                "{role} writing to own/assigned subject"
            );
        }
        // pull and subjects: exactly the permitted streams
        let (s, v) = pull(&api, &token);
        let (s2, subjects) = api.call("GET", "/v1/subjects", Some(&token), None);
        if *role == "admin" {
            assert_eq!(s, 403, "admin reads no health data");
            assert_eq!(s2, 200);
            assert_eq!(subjects["subjects"], json!([]));
        } else {
            assert_eq!(s, 200);
            assert_eq!(
                streams_of(&v),
                vec![allowed.clone().unwrap()],
                "{role} pull"
            );
            assert_eq!(
                subjects["subjects"][0]["id"],
                json!(allowed.clone().unwrap())
            );
            assert_eq!(subjects["subjects"].as_array().unwrap().len(), 1);
        }
        // a pull naming a stream it may not read gets it back as removed, not its data
        let (_, v) = api.call(
            "POST",
            "/v1/pull",
            Some(&token),
            Some(
                json!({"streams": [{"id": denied, "after": 0}]})
                    .to_string()
                    .into_bytes(),
            ),
        );
        if *role != "admin" {
            assert_eq!(v["removed"], json!([denied]), "{role}");
            assert!(!streams_of(&v).contains(denied));
        }
    }

    // Every endpoint refuses a missing or unknown token.
    for (m, path) in [
        ("POST", "/v1/push"),
        ("POST", "/v1/pull"),
        ("GET", "/v1/subjects"),
    ] {
        let body = (m == "POST").then(|| b"{\"ops\":[]}".to_vec());
        let (s, v) = api.call(m, path, None, body.clone());
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        let (s, _) = api.call(m, path, Some("00ff"), body);
        assert_eq!(s, 401, "{path}");
    }

    // Professional reads are audited: who, which subject, which device.
    let audit = server.storage.audit(&own).unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor_id == nurse && a.action == "read" && a.device_id.is_some()),
        "{audit:?}"
    );
    assert!(
        audit.iter().all(|a| a.actor_id != own),
        "a citizen's own reads are not professional reads"
    );
}

#[test]
fn revoked_devices_and_enrollment_codes() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let code = server.code(&citizen);
    let (token, device) = api.token(&code);
    assert_eq!(pull(&api, &token).0, 200);

    // A code works once.
    let (s, v) = api.enroll(&code);
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("code_used")));
    // Unknown and expired codes.
    assert_eq!(
        api.enroll("AAAA-BBBB-CCCC").1["error"]["code"],
        "invalid_code"
    );
    let short = server
        .storage
        .invite(&citizen, Duration::from_secs(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(api.enroll(&short).1["error"]["code"], "code_expired");

    // Revocation applies to the very next request.
    server.storage.revoke_device(&device).unwrap();
    let (s, v) = pull(&api, &token);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("device_revoked"))
    );
    let (s, _) = push(&api, &token, vec![weight_op(&citizen, &citizen, 1)]);
    assert_eq!(s, 401);
}

#[test]
fn malformed_and_oversized_bodies_are_typed_4xx() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let (token, _) = api.token(&server.code(&citizen));

    let (s, v) = api.call(
        "POST",
        "/v1/push",
        Some(&token),
        Some(b"{not json".to_vec()),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (s, v) = api.call(
        "POST",
        "/v1/push",
        Some(&token),
        Some(b"{\"ops\": 5}".to_vec()),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let big = vec![b' '; MAX_BODY_BYTES + 10];
    let (s, v) = api.call("POST", "/v1/push", Some(&token), Some(big));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let too_many: Vec<Value> = (1..=(MAX_PUSH_OPS as i64 + 1))
        .map(|i| weight_op(&citizen, &citizen, i))
        .collect();
    let (s, v) = push(&api, &token, too_many);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("too_many_ops"))
    );

    // Per-operation problems are per-operation answers; the rest of the batch goes through.
    let mut bad = weight_op(&citizen, &citizen, 1);
    bad["payload"]["data"] = json!("{\"kind\":\"weight\"}");
    let mut huge = weight_op(&citizen, &citizen, 2);
    huge["payload"]["note"] = json!("x".repeat(MAX_PAYLOAD_BYTES));
    let good = weight_op(&citizen, &citizen, 3);
    let (s, v) = push(&api, &token, vec![bad, huge, good]);
    assert_eq!(s, 200, "{v}");
    let codes: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap_or(r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        vec!["invalid_payload", "payload_too_large", "applied"]
    );

    // A retry of the same batch gets the same answers, and nothing is stored twice.
    let again = push(&api, &token, vec![weight_op(&citizen, &citizen, 4)]).1;
    assert_eq!(again["results"][0]["status"], "applied");
    let first = &v["results"][2];
    let op_id = first["op_id"].as_str().unwrap();
    // Another device of the same citizen reads the stream (a device is not sent its own ops).
    let (reader, _) = api.token(&server.code(&citizen));
    let (_, pulled) = pull(&api, &reader);
    let n = pulled["streams"][0]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["op_id"] == op_id)
        .count();
    assert_eq!(n, 1);
}

/// Seeded mutations of valid request bodies: the decoder answers every one with a typed error
/// or a value, never a panic; the live server answers a sample with a 4xx or 200, never a 5xx.
#[test]
fn request_decoder_fuzz() {
    let seed: u64 = std::env::var("POLKU_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261123);
    let mut rng = polku_e2e::Rng::new(seed);
    let mut next = move || rng.next_u64();
    let valid = json!({"ops": [weight_op("s", "s", 1)]})
        .to_string()
        .into_bytes();
    let pull_body = br#"{"epoch":"e","streams":[{"id":"s","after":3}],"max_bytes":1000}"#.to_vec();
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let (token, _) = api.token(&server.code(&citizen));
    for i in 0..20_000u32 {
        let base = if i % 2 == 0 { &valid } else { &pull_body };
        let mut b = base.clone();
        for _ in 0..(1 + next() % 8) {
            let pos = (next() as usize) % (b.len() + 1);
            match next() % 4 {
                0 if pos < b.len() => b[pos] = (next() % 256) as u8,
                1 if pos < b.len() => {
                    b.remove(pos);
                }
                2 => {
                    let alphabet = b"{}[]\",:0-9eE\\";
                    b.insert(pos, alphabet[(next() as usize) % alphabet.len()])
                }
                _ => b.truncate(pos),
            }
        }
        let decoded = std::panic::catch_unwind(|| {
            let _ = polku_server::api::decode::<PushRequest>(&b);
            let _ = polku_server::api::decode::<PullRequest>(&b);
        });
        assert!(decoded.is_ok(), "decoder panicked on seed {seed} case {i}");
        if i % 400 == 0 {
            let path = if i % 800 == 0 { "/v1/push" } else { "/v1/pull" };
            let (s, _) = api.call("POST", path, Some(&token), Some(b.clone()));
            assert!(
                s == 200 || (400..500).contains(&s),
                "seed {seed} case {i}: status {s}"
            );
        }
    }
}

/// An operation of a kind or schema version this build does not know is stored by the server and
/// kept (not applied, not dropped) by an older device, ready for the app update that knows it.
#[test]
fn newer_schema_operations_are_kept() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let citizen = server.user(Role::Citizen, "Aino");
    let (token, _) = api.token(&server.code(&citizen));
    let mut newer = weight_op(&citizen, &citizen, 1);
    newer["schema_version"] = json!(99);
    newer["payload"]["new_field"] = json!({"nested": [1, 2]});
    let unknown = json!({
        "op_id": uuid::Uuid::now_v7().to_string(), "stream": citizen, "device_seq": 2,
        "hlc": format!("{:016x}-0000-test", chrono_ms()), "kind": "homecare.visit", "schema_version": 1,
        "payload": {"anything": "future"}
    });
    let (s, v) = push(&api, &token, vec![newer, unknown]);
    assert_eq!(s, 200);
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "applied"),
        "{v}"
    );

    let d = Device::enrolled(&server.url(), &server.code(&citizen));
    let r = d.sync().unwrap();
    assert_eq!(r.held, 2);
    let status = d.polku.sync().status().unwrap();
    assert_eq!(status.held, 2, "kept on the device for a newer app version");
    assert!(d
        .polku
        .diary()
        .list(&Default::default())
        .unwrap()
        .entries
        .is_empty());
    // Syncing again neither duplicates nor loses them.
    d.sync().unwrap();
    assert_eq!(d.polku.sync().status().unwrap().held, 2);
}
