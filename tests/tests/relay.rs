//! The message relay (issue 10) against a real `polku-server` on loopback, over HTTP as any
//! client could: opaque padded ciphertext queued per recipient device in order, stored once per
//! message id, deleted on acknowledgement, and only between conversation partners. (The Olm
//! sessions that make the ciphertext come next; here it is random bytes of a padding bucket.)

use base64::Engine;
use polku_e2e::api::Api;
use polku_e2e::TestServer;
use polku_protocol::relay::*;
use polku_server::{Role, Storage};
use serde_json::{json, Value};

struct Dev {
    token: String,
    id: String,
}

fn dev(api: &Api, server: &TestServer, user: &str) -> Dev {
    let (token, id) = api.token(&server.code(user));
    Dev { token, id }
}

fn ciphertext(fill: u8, bucket: usize) -> Ciphertext {
    Ciphertext(base64::engine::general_purpose::STANDARD_NO_PAD.encode(vec![fill; bucket]))
}

fn send(api: &Api, from: &Dev, to: &Dev, fill: u8) -> (String, Value) {
    let id = uuid::Uuid::new_v4().to_string();
    let v = send_as(api, from, &id, &to.id, ciphertext(fill, PAD_BUCKETS[0]));
    (id, v)
}

fn send_as(api: &Api, from: &Dev, id: &str, to: &str, c: Ciphertext) -> Value {
    let (status, v) = api.call(
        "POST",
        "/v1/messages/send",
        Some(&from.token),
        Some(
            json!({"messages": [{"id": id, "recipient_device": to, "ciphertext": c}]})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn status(v: &Value) -> &str {
    v["results"][0]["status"].as_str().unwrap()
}

fn fetch(api: &Api, d: &Dev, after: i64, limit: Option<u32>) -> FetchResponse {
    let (status, v) = api.call(
        "POST",
        "/v1/messages/fetch",
        Some(&d.token),
        Some(
            json!({"after": after, "limit": limit})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

fn care_team() -> (TestServer, String, String) {
    let server = TestServer::start();
    let aino = server.user(Role::Citizen, "Aino");
    let nurse = server.user(Role::Professional, "Hoitaja");
    server.storage.assign(&nurse, &aino).unwrap();
    (server, aino, nurse)
}

#[test]
fn messages_arrive_in_order_once_and_leave_when_acknowledged() {
    let (server, aino, nurse) = care_team();
    let api = Api::new(&server);
    let phone = dev(&api, &server, &aino);
    let tablet = dev(&api, &server, &aino);
    let laptop = dev(&api, &server, &nurse);

    let mut sent = Vec::new();
    for n in 0..5u8 {
        let (id, v) = send(&api, &phone, &laptop, n);
        assert_eq!(status(&v), "queued");
        sent.push(id);
    }
    // The sender's own other device is a recipient too.
    assert_eq!(status(&send(&api, &phone, &tablet, 9).1), "queued");
    // The same copy again (a retry after a lost reply): stored once.
    let again = send_as(
        &api,
        &phone,
        &sent[0],
        &laptop.id,
        ciphertext(0, PAD_BUCKETS[0]),
    );
    assert_eq!(status(&again), "duplicate");

    // In order, with the sender stamped from its token; pages of two.
    let page = fetch(&api, &laptop, 0, Some(2));
    assert!(page.more);
    let ids: Vec<&str> = page.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, [sent[0].as_str(), sent[1].as_str()]);
    assert!(page
        .messages
        .iter()
        .all(|m| m.sender_user == aino && m.sender_device == phone.id));
    assert_eq!(page.messages[1].ciphertext, ciphertext(1, PAD_BUCKETS[0]));
    // Not acknowledged yet (a crash before the device stored them): the same again.
    assert_eq!(fetch(&api, &laptop, 0, Some(2)).messages, page.messages);
    // Acknowledged up to the second: the rest, and the first two are gone from the server.
    let last = page.messages[1].seq;
    let rest = fetch(&api, &laptop, last, None);
    assert_eq!(rest.messages.len(), 3);
    assert!(!rest.more);
    assert_eq!(
        server.storage.queued_messages(&laptop.id).unwrap(),
        3,
        "acknowledged messages are deleted"
    );
    fetch(&api, &laptop, rest.messages[2].seq, None);
    assert_eq!(server.storage.queued_messages(&laptop.id).unwrap(), 0);
    // Delivered and deleted, then sent again: still never twice.
    let late = send_as(
        &api,
        &phone,
        &sent[4],
        &laptop.id,
        ciphertext(4, PAD_BUCKETS[0]),
    );
    assert_eq!(status(&late), "duplicate");
    assert!(fetch(&api, &laptop, 0, None).messages.is_empty());
    // The tablet's queue is its own.
    assert_eq!(fetch(&api, &tablet, 0, None).messages.len(), 1);
}

#[test]
fn only_padded_ciphertext_is_taken() {
    let (server, aino, nurse) = care_team();
    let api = Api::new(&server);
    let phone = dev(&api, &server, &aino);
    let laptop = dev(&api, &server, &nurse);
    let id = uuid::Uuid::new_v4().to_string();
    for bad in [
        ciphertext(1, 500),
        ciphertext(1, PAD_BUCKETS[0] + 1),
        Ciphertext("hello, nurse".into()),
        Ciphertext("*".repeat(683)),
    ] {
        let (status, v) = api.call(
            "POST",
            "/v1/messages/send",
            Some(&phone.token),
            Some(
                json!({"messages": [{"id": id, "recipient_device": laptop.id, "ciphertext": bad}]})
                    .to_string()
                    .into_bytes(),
            ),
        );
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("invalid_ciphertext")),
            "{v}"
        );
    }
    for b in PAD_BUCKETS {
        let v = send_as(
            &api,
            &phone,
            &uuid::Uuid::new_v4().to_string(),
            &laptop.id,
            ciphertext(2, b),
        );
        assert_eq!(status(&v), "queued");
    }
}

#[test]
fn only_conversation_partners_reach_a_device() {
    let (server, aino, nurse) = care_team();
    let api = Api::new(&server);
    let bertta = server.user(Role::Citizen, "Bertta");
    server.storage.assign(&nurse, &bertta).unwrap();
    let stranger = server.user(Role::Professional, "Vieras");
    let aino_phone = dev(&api, &server, &aino);
    let bertta_phone = dev(&api, &server, &bertta);
    let laptop = dev(&api, &server, &nurse);
    let outsider = dev(&api, &server, &stranger);

    assert_eq!(
        status(&send(&api, &aino_phone, &bertta_phone, 1).1),
        "unavailable"
    );
    assert_eq!(
        status(&send(&api, &outsider, &aino_phone, 1).1),
        "unavailable"
    );
    assert_eq!(
        status(&send(&api, &aino_phone, &aino_phone, 1).1),
        "unavailable"
    );
    assert_eq!(status(&send(&api, &laptop, &bertta_phone, 1).1), "queued");

    // The assignment ends: nothing new reaches either side.
    server.storage.unassign(&nurse, &aino).unwrap();
    assert_eq!(
        status(&send(&api, &laptop, &aino_phone, 1).1),
        "unavailable"
    );
    assert_eq!(
        status(&send(&api, &aino_phone, &laptop, 1).1),
        "unavailable"
    );

    // A revoked device's queue is deleted with it, and it is reached no more.
    assert_eq!(status(&send(&api, &laptop, &bertta_phone, 2).1), "queued");
    server.storage.revoke_device(&bertta_phone.id).unwrap();
    assert_eq!(server.storage.queued_messages(&bertta_phone.id).unwrap(), 0);
    assert_eq!(
        status(&send(&api, &laptop, &bertta_phone, 3).1),
        "unavailable"
    );
}
