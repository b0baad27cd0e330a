//! Messaging benchmark over loopback (docs/benchmarks.md), with a real server in this process:
//! 1. send → receive → decrypt latency of a 500-byte message to one recipient device (the
//!    sender's sync, then the recipient's), median and p99 over 200 messages; peer: the relay
//!    floor, the same 512-byte padded body posted and fetched through the same server's relay
//!    with no Olm and no device database;
//! 2. throughput: 1 000 messages queued offline, sent in one sync and received in one sync;
//! 3. fan-out: 100 messages to a conversation with 1 recipient device and with 5;
//! 4. a 10 MB attachment: sealed on the phone, uploaded with its message, fetched, checked and
//!    opened on the nurse's device; peers: the same blob put and got over HTTP with no crypto and
//!    no device store, and AES-256-GCM seal + open of the file in memory.
//!
//! Usage: cargo run --release -p polku-e2e --bin message-bench

use std::time::Instant;

use polku_e2e::api::Api;
use polku_e2e::{CareTeam, Device};
use polku_server::{Role, Storage};

fn text(i: usize) -> String {
    // 500 bytes of Finnish-like text, different each time.
    let base =
        format!("Viesti {i}: aamuarvo oli matala, söin rypälesokeria ja mittasin uudelleen. ");
    base.repeat(8).chars().take(500).collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn count(d: &Device, conversation: &str) -> usize {
    d.polku.messaging().messages(conversation).unwrap().len()
}

fn main() {
    // 1. Latency, one recipient device.
    let team = CareTeam::new(Role::Professional);
    let conv = team.citizen.clone();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    // Sessions both ways first (the first message of a session is a pre-key message).
    team.phone.polku.messaging().send(&conv, "hei").unwrap();
    team.phone.sync().unwrap();
    team.worker_device.sync().unwrap();
    let mut lat = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        team.phone.polku.messaging().send(&conv, &text(i)).unwrap();
        team.phone.sync().unwrap();
        team.worker_device.sync().unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(count(&team.worker_device, &conv), i + 2);
    }
    lat.sort_by(f64::total_cmp);
    // Peer: the relay floor for the same bucket, straight HTTP, no crypto, no device store.
    let api = Api::new(&team.server);
    let (send_token, fetch_token) = (team.phone.token(), team.worker_device.token());
    let nurse_device = team
        .worker_device
        .polku
        .sync()
        .enrollment()
        .unwrap()
        .unwrap()
        .device_id;
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 512]);
    let mut floor = Vec::new();
    let mut after = 0i64;
    for _ in 0..200 {
        let t = Instant::now();
        let req = serde_json::json!({"messages": [{"id": uuid::Uuid::new_v4().to_string(),
            "recipient_device": nurse_device, "ciphertext": body}]});
        let (s, _) = api.call(
            "POST",
            "/v1/messages/send",
            Some(&send_token),
            Some(req.to_string().into_bytes()),
        );
        assert_eq!(s, 200);
        let req = serde_json::json!({"after": after});
        let (s, v) = api.call(
            "POST",
            "/v1/messages/fetch",
            Some(&fetch_token),
            Some(req.to_string().into_bytes()),
        );
        assert_eq!(s, 200);
        after = v["messages"].as_array().unwrap().last().unwrap()["seq"]
            .as_i64()
            .unwrap();
        floor.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Acknowledge the last floor message so the device's next fetch starts clean.
    api.call(
        "POST",
        "/v1/messages/fetch",
        Some(&fetch_token),
        Some(serde_json::json!({"after": after}).to_string().into_bytes()),
    );
    floor.sort_by(f64::total_cmp);
    println!(
        "latency  500-byte message, 1 recipient device, send→sync→sync→stored: median {:.2} ms, p99 {:.2} ms (n=200)",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    println!(
        "peer     relay floor, 512-byte body posted and fetched over HTTP, no Olm, no device store: median {:.2} ms, p99 {:.2} ms",
        pct(&floor, 0.5),
        pct(&floor, 0.99)
    );

    // 2. Throughput: 1 000 written offline, one sync out, one sync in.
    for i in 0..1000 {
        team.phone.polku.messaging().send(&conv, &text(i)).unwrap();
    }
    let t = Instant::now();
    let up = team.phone.sync().unwrap();
    let send_s = t.elapsed().as_secs_f64();
    let before = count(&team.worker_device, &conv);
    let t = Instant::now();
    let down = team.worker_device.sync().unwrap();
    let recv_s = t.elapsed().as_secs_f64();
    assert_eq!(count(&team.worker_device, &conv), before + 1000);
    println!(
        "throughput 1 000 messages: sent in one sync {:.2} s ({:.0} msg/s, {} requests, {:.2} MB), received in one sync {:.2} s ({:.0} msg/s, {} requests, {:.2} MB)",
        send_s,
        1000.0 / send_s,
        up.requests,
        up.bytes as f64 / 1e6,
        recv_s,
        1000.0 / recv_s,
        down.requests,
        down.bytes as f64 / 1e6
    );

    // 3. Fan-out: 100 messages to 1 recipient device, then to 5.
    let one = fan_out(0);
    let five = fan_out(2);
    println!(
        "fan-out  100 messages, sender's sync: 1 recipient device {:.1} ms/message ({:.0} KB sent), 5 recipient devices {:.1} ms/message ({:.0} KB sent), {:.2}× the time",
        one.0 * 10.0,
        one.1 as f64 / 1e3,
        five.0 * 10.0,
        five.1 as f64 / 1e3,
        five.0 / one.0
    );

    // 4. A 10 MB attachment, five times.
    attachments(&team);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn attachments(team: &CareTeam) {
    use polku_protocol::attachment::{blob_len, DEFAULT_MAX_ATTACHMENT_BYTES};
    let conv = &team.citizen;
    let n = DEFAULT_MAX_ATTACHMENT_BYTES;
    // Incompressible bytes (a photo is).
    let mut file = vec![0u8; n];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in file.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let (mut seal, mut up, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let m = team
            .phone
            .polku
            .messaging()
            .attach(conv, "kuva.jpg", None, &file)
            .unwrap();
        seal.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        team.phone.sync().unwrap();
        up.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        team.worker_device.sync().unwrap();
        let id = m.attachment.unwrap().id;
        let got = polku_e2e::block_on(team.worker_device.polku.messaging().fetch_attachment(&id))
            .unwrap();
        down.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(got.len(), n);
    }
    // Peer 1: the same size of blob through the server with no crypto and no device store.
    let blob = vec![5u8; blob_len(n)];
    let (send_token, fetch_token) = (team.phone.token(), team.worker_device.token());
    let http = reqwest::Client::new();
    let base = team.server.url();
    let mut raw = Vec::new();
    for _ in 0..5 {
        let id = uuid::Uuid::new_v4().to_string();
        let t = Instant::now();
        polku_e2e::block_on(async {
            let r = http
                .put(format!("{base}/v1/attachments/{id}?conversation={conv}"))
                .bearer_auth(&send_token)
                .body(blob.clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let r = http
                .get(format!("{base}/v1/attachments/{id}"))
                .bearer_auth(&fetch_token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.bytes().await.unwrap().len(), blob.len());
            http.post(format!("{base}/v1/attachments/{id}/fetched"))
                .bearer_auth(&fetch_token)
                .body("{}")
                .send()
                .await
                .unwrap();
        });
        raw.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Peer 2: AES-256-GCM seal + open of the file in memory (ring).
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[3u8; 32]).unwrap());
    let mut crypto = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut buf = file.clone();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::empty(),
            &mut buf,
        )
        .unwrap();
        key.open_in_place(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::empty(),
            &mut buf,
        )
        .unwrap();
        crypto.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "attachment 10 MB, median of 5: sealed and stored on the phone {:.0} ms, phone's sync (upload + message) {:.0} ms, nurse's sync + fetch + check + open + store {:.0} ms",
        median(seal),
        median(up),
        median(down)
    );
    println!(
        "peer     the same blob put, got and acknowledged over HTTP, no crypto, no device store: {:.0} ms; AES-256-GCM seal + open in memory: {:.0} ms",
        median(raw),
        median(crypto)
    );
}

/// Seconds and bytes for the citizen's phone to send 100 messages (in one sync, sessions already
/// started) to the nurse's device plus `extra` × (a citizen's tablet, a doctor's device) pairs.
fn fan_out(extra: usize) -> (f64, u64) {
    let team = CareTeam::new(Role::Professional);
    let conv = team.citizen.clone();
    let mut others = vec![];
    for i in 0..extra {
        let doctor = team
            .server
            .user(Role::Professional, &format!("Lääkäri {i}"));
        team.server.storage.assign(&doctor, &team.citizen).unwrap();
        others.push(Device::enrolled(
            &team.server.url(),
            &team.server.code(&doctor),
        ));
        others.push(Device::enrolled(
            &team.server.url(),
            &team.server.code(&team.citizen),
        ));
    }
    for d in std::iter::once(&team.worker_device).chain(&others) {
        d.sync().unwrap();
    }
    team.phone.sync().unwrap();
    team.phone.polku.messaging().send(&conv, "hei").unwrap();
    team.phone.sync().unwrap();
    for i in 0..100 {
        team.phone.polku.messaging().send(&conv, &text(i)).unwrap();
    }
    let t = Instant::now();
    let r = team.phone.sync().unwrap();
    let s = t.elapsed().as_secs_f64();
    for d in std::iter::once(&team.worker_device).chain(&others) {
        d.sync().unwrap();
        assert_eq!(count(d, &conv), 101);
    }
    (s, r.bytes)
}
