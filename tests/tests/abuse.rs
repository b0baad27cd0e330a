//! Issue 9, finding 6: limits on abuse, against a real `polku-server` on loopback. Wrong
//! enrollment codes and device tokens are counted per address and per code prefix and lock the
//! guesser out (logged, without the codes or tokens); a request must send its headers and body
//! in time; connections are capped; a request is authenticated before its body is read.
//!
//! Clients play several addresses by binding to 127.x.y.z (all of 127/8 is this machine). The
//! read deadlines below are hang guards (a failure shows as a timeout error), not timings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use polku_e2e::api::{message_complete, Api};
use polku_e2e::{block_on, Device, TestServer};
use polku_server::{Limits, Role, Storage};
use serde_json::{json, Value};

/// How long a raw read may wait before the test calls it a hang.
const HANG: Duration = Duration::from_secs(30);

fn limits(burst: u32) -> Limits {
    Limits {
        failure_burst: burst,
        failure_refill: Duration::from_secs(3600),
        lockout: Duration::from_secs(3600),
        ..Limits::default()
    }
}

/// A wrong code whose first group is `prefix`.
fn wrong_code(prefix: &str, n: usize) -> String {
    format!("{prefix}-{}-ZZZZ", letters(n))
}

/// Four code letters numbered `n` (no digits: the log's times and addresses have those).
fn letters(n: usize) -> String {
    const L: &[u8; 16] = b"ABCDEFGHJKMNPQRS";
    (0..4)
        .rev()
        .map(|i| L[(n >> (4 * i)) & 15] as char)
        .collect()
}

fn code_of(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A TCP connection to the server from `local`.
fn raw(server: &TestServer, local: &str) -> TcpStream {
    let addr = server.addr;
    let local: std::net::IpAddr = local.parse().unwrap();
    let s = block_on(async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::new(local, 0)).unwrap();
        sock.connect(addr).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s
}

/// Everything the server sends until it closes the connection or stops sending after a reply.
fn read_reply(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if message_complete(&out) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no reply and no close ({e}); so far: {}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn wrong_codes_lock_out_the_address_and_are_logged_without_the_codes() {
    let server = TestServer::start_with(limits(5));
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let attacker = Api::from(&server, "127.0.0.11");

    // 200 guesses, as fast as they come: the first five are answered, the sixth locks the
    // address out, and the rest are refused without a lookup.
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    let mut tried = Vec::new();
    for n in 0..200 {
        // A new prefix each time: only the address limit is in play here.
        let guess = wrong_code(&letters(n), n);
        let (status, v) = attacker.enroll(&guess);
        *answers
            .entry(format!("{status} {}", code_of(&v)))
            .or_default() += 1;
        tried.push(guess);
    }
    assert_eq!(answers.get("401 invalid_code"), Some(&6), "{answers:?}");
    assert_eq!(
        answers.get("429 too_many_attempts"),
        Some(&194),
        "{answers:?}"
    );

    // The right code from the locked-out address is refused too, and stays unused.
    let (status, v) = attacker.enroll(&code);
    assert_eq!((status, code_of(&v)), (429, "too_many_attempts"), "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("try again in"));
    // Another address is not affected, and the code still works there.
    let (status, v) = Api::from(&server, "127.0.0.12").enroll(&code);
    assert_eq!(status, 200, "{v}");
    // Devices already enrolled still sync from the locked-out address: tokens count apart.
    let token = v["token"].as_str().unwrap();
    let (status, v) = attacker.call("GET", "/v1/subjects", Some(token), None);
    assert_eq!(status, 200, "{v}");

    // The failure log: six failures and one lockout, from that address, and no code in it.
    let log = server.storage.failures(0).unwrap();
    let codes: Vec<&str> = log.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "invalid_code").count(), 6);
    assert_eq!(codes.iter().filter(|c| **c == "locked_out").count(), 1);
    assert!(log
        .iter()
        .all(|f| f.source == "127.0.0.11" && f.attempt == "enroll"));
    let text = serde_json::to_string(&log).unwrap();
    for secret in tried.iter().chain([&code]) {
        assert!(!text.contains(secret.as_str()), "{secret} in the log");
        assert!(!text.contains(&secret[..4]), "a code prefix in the log");
    }
}

#[test]
fn wrong_codes_for_one_prefix_from_many_addresses_lock_that_prefix() {
    let server = TestServer::start_with(limits(3));
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let prefix = &code[..4];
    // Four addresses, one wrong guess each, all in the real code's first group.
    for n in 0..4 {
        let (status, v) =
            Api::from(&server, &format!("127.0.1.{}", n + 1)).enroll(&wrong_code(prefix, n));
        assert_eq!((status, code_of(&v)), (401, "invalid_code"), "{v}");
    }
    // Now the prefix is locked: even the right code from a fifth address is refused.
    let (status, v) = Api::from(&server, "127.0.1.9").enroll(&code);
    assert_eq!((status, code_of(&v)), (429, "too_many_attempts"), "{v}");
    // A code with another first group is not.
    let bertta = server.user(Role::Citizen, "Bertta");
    let other = loop {
        let c = server.code(&bertta);
        if c[..4] != *prefix {
            break c;
        }
    };
    let (status, v) = Api::from(&server, "127.0.1.9").enroll(&other);
    assert_eq!(status, 200, "{v}");
    let log = server.storage.failures(0).unwrap();
    let lockouts: Vec<_> = log.iter().filter(|f| f.code == "locked_out").collect();
    assert_eq!(lockouts.len(), 1, "{log:?}");
    assert!(lockouts[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("an enrollment code prefix"));
}

#[test]
fn a_lockout_ends_and_the_right_code_then_works() {
    let server = TestServer::start_with(Limits {
        lockout: Duration::from_millis(500),
        ..limits(1)
    });
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let api = Api::from(&server, "127.0.2.1");
    for n in 0..2 {
        assert_eq!(api.enroll(&wrong_code("0000", n)).0, 401);
    }
    assert_eq!(api.enroll(&code).0, 429);
    std::thread::sleep(Duration::from_millis(800));
    let (status, v) = api.enroll(&code);
    assert_eq!(status, 200, "{v}");
}

#[test]
fn random_tokens_lock_out_the_address_but_not_devices_elsewhere() {
    let server = TestServer::start_with(limits(5));
    let aino = server.user(Role::Citizen, "Aino");
    let (token, _) = Api::new(&server).token(&server.code(&aino));
    let attacker = Api::from(&server, "127.0.3.1");
    let mut statuses = Vec::new();
    let mut tried = Vec::new();
    for n in 0..100 {
        let _ = n;
        let guess = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        statuses.push(attacker.call("GET", "/v1/subjects", Some(&guess), None).0);
        tried.push(guess);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 6);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 94);
    // A real token from the locked-out address is refused before it is looked up…
    let (status, v) = attacker.call("GET", "/v1/subjects", Some(&token), None);
    assert_eq!((status, code_of(&v)), (429, "too_many_attempts"), "{v}");
    // …and works from anywhere else.
    let (status, v) =
        Api::from(&server, "127.0.3.2").call("GET", "/v1/subjects", Some(&token), None);
    assert_eq!(status, 200, "{v}");
    // Enrollment from that address is counted apart, and still open.
    let (status, v) = attacker.enroll(&server.code(&aino));
    assert_eq!(status, 200, "{v}");

    let log = server.storage.failures(0).unwrap();
    assert_eq!(log.iter().filter(|f| f.code == "unauthorized").count(), 6);
    assert!(log
        .iter()
        .all(|f| f.attempt == "token" && f.source == "127.0.3.1"));
    let text = serde_json::to_string(&log).unwrap();
    assert!(tried
        .iter()
        .chain([&token])
        .all(|t| !text.contains(t.as_str())));
}

#[test]
fn a_device_locked_out_gets_a_typed_error_naming_the_wait() {
    let server = TestServer::start_with(limits(1));
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let device = Device::new();
    for guess in ["ZZZZ-ZZZZ-ZZZZ", "YYYY-YYYY-YYYY"] {
        let wrong = block_on(device.polku.sync().enroll(&server.url(), guess, None)).unwrap_err();
        assert!(
            matches!(&wrong, polku_core::Error::Server { status: 401, .. }),
            "{wrong:?}"
        );
    }
    let locked = block_on(device.polku.sync().enroll(&server.url(), &code, None)).unwrap_err();
    match &locked {
        polku_core::Error::Server {
            status,
            code,
            message,
        } => {
            assert_eq!((*status, code.as_str()), (429, "too_many_attempts"));
            assert!(message.contains("try again in"), "{message}");
        }
        other => panic!("expected a typed refusal, got {other:?}"),
    }
    // A lockout is not a network blip to retry at once.
    assert!(!polku_core::sync::retryable(&locked));
}

#[test]
fn a_request_that_stops_halfway_through_its_headers_is_closed() {
    let server = TestServer::start_with(Limits {
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let mut s = raw(&server, "127.0.4.1");
    s.write_all(b"POST /v1/push HTTP/1.1\r\nHost: polku\r\nAuthorization: Bea")
        .unwrap();
    // The server gives up on the headers and closes (a hang here fails at the guard).
    let reply = read_reply(&mut s);
    assert!(!reply.contains("200 OK"), "{reply}");

    // An idle kept-alive connection is closed the same way after its reply.
    let mut s = raw(&server, "127.0.4.1");
    s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: polku\r\n\r\n")
        .unwrap();
    assert!(read_reply(&mut s).starts_with("HTTP/1.1 200"));
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the idle connection was not closed");
    assert!(rest.is_empty());
}

#[test]
fn a_body_that_stops_arriving_is_answered_408() {
    let server = TestServer::start_with(Limits {
        body_timeout: Duration::from_millis(500),
        ..Limits::default()
    });
    let aino = server.user(Role::Citizen, "Aino");
    let (token, _) = Api::new(&server).token(&server.code(&aino));
    let mut s = raw(&server, "127.0.5.1");
    write!(
        s,
        "POST /v1/pull HTTP/1.1\r\nHost: polku\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"streams\":"
    )
    .unwrap();
    let reply = read_reply(&mut s);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout"), "{reply}");
}

#[test]
fn an_unauthenticated_push_is_refused_before_its_body_is_read() {
    // A body deadline longer than the hang guard: a server that waited for the body would hang.
    let server = TestServer::start_with(Limits {
        body_timeout: HANG * 10,
        ..Limits::default()
    });
    let aino = server.user(Role::Citizen, "Aino");
    let (token, _) = Api::new(&server).token(&server.code(&aino));
    // 32 connections announce 4 MB bodies with a bad token and send none of it: each is answered
    // 401 at once (a server that read bodies first would wait for them until the guard).
    let mut conns: Vec<TcpStream> = (0..32).map(|_| raw(&server, "127.0.6.1")).collect();
    for s in &mut conns {
        write!(
            s,
            "POST /v1/push HTTP/1.1\r\nHost: polku\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n",
            "0".repeat(64)
        )
        .unwrap();
    }
    let mut answered = 0;
    for s in &mut conns {
        let reply = read_reply(s);
        assert!(
            reply.starts_with("HTTP/1.1 401") || reply.starts_with("HTTP/1.1 429"),
            "{reply}"
        );
        answered += 1;
    }
    assert_eq!(answered, 32);
    // With a good token, a body declared over the limit is refused before it is read.
    let mut s = raw(&server, "127.0.6.2");
    write!(
        s,
        "POST /v1/push HTTP/1.1\r\nHost: polku\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\n\r\n"
    )
    .unwrap();
    let reply = read_reply(&mut s);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("body_too_large"), "{reply}");
}

#[test]
fn connections_over_the_limits_are_answered_503() {
    let server = TestServer::start_with(Limits {
        max_connections: 6,
        max_connections_per_address: 4,
        ..Limits::default()
    });
    let health = |s: &mut TcpStream| {
        s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: polku\r\n\r\n")
            .unwrap();
        read_reply(s)
    };
    // Four from one address are served; the fifth is refused with a typed 503.
    let mut held: Vec<TcpStream> = (0..4).map(|_| raw(&server, "127.0.7.1")).collect();
    for s in &mut held {
        assert!(health(s).starts_with("HTTP/1.1 200"));
    }
    let reply = health(&mut raw(&server, "127.0.7.1"));
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too_many_connections"), "{reply}");
    // Two more from another address fill the server; a seventh from a third is refused.
    let mut other: Vec<TcpStream> = (0..2).map(|_| raw(&server, "127.0.7.2")).collect();
    for s in &mut other {
        assert!(health(s).starts_with("HTTP/1.1 200"));
    }
    assert!(health(&mut raw(&server, "127.0.7.3")).starts_with("HTTP/1.1 503"));
    // A closed connection gives its place back (as soon as the server sees the close).
    drop(held.pop());
    let served = (0..200).any(|_| {
        let reply = health(&mut raw(&server, "127.0.7.1"));
        if reply.starts_with("HTTP/1.1 200") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
        false
    });
    assert!(
        served,
        "the place of a closed connection was not given back"
    );
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_address_is_counted() {
    let server = TestServer::start_with(Limits {
        trusted_proxies: vec!["127.0.8.1".parse().unwrap()],
        ..limits(2)
    });
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let proxy = Api::from(&server, "127.0.8.1");
    let as_client = |ip: &str, code: &str| {
        proxy.call_with(
            "/v1/enroll",
            &[("x-forwarded-for", ip)],
            json!({ "code": code }),
        )
    };
    for n in 0..3 {
        assert_eq!(
            as_client("198.51.100.1", &wrong_code(&letters(n), n)).0,
            401
        );
    }
    assert_eq!(as_client("198.51.100.1", &code).0, 429);
    // Another client through the same proxy is not locked out.
    let (status, v) = as_client("198.51.100.2", &code);
    assert_eq!(status, 200, "{v}");
    let log = server.storage.failures(0).unwrap();
    assert!(log.iter().all(|f| f.source == "198.51.100.1"), "{log:?}");

    // An untrusted client cannot dodge its lockout by writing the header itself.
    let direct = Api::from(&server, "127.0.8.2");
    for n in 0..3 {
        let (status, _) = direct.call_with(
            "/v1/enroll",
            &[("x-forwarded-for", &format!("203.0.113.{n}"))],
            json!({ "code": wrong_code(&letters(10 + n), n) }),
        );
        assert_eq!(status, 401);
    }
    let (status, _) = direct.call_with(
        "/v1/enroll",
        &[("x-forwarded-for", "203.0.113.99")],
        json!({ "code": "ABCD-EFGH-JKMN" }),
    );
    assert_eq!(status, 429);
}

#[test]
fn a_refused_push_still_gets_its_typed_answer_while_sending_its_body() {
    // A revoked phone pushing a large batch must learn it was revoked (a typed 401), not see a
    // reset connection it would take for the network: the server discards the body it refused.
    let server = TestServer::start();
    let aino = server.user(Role::Citizen, "Aino");
    let api = Api::new(&server);
    let (token, device) = api.token(&server.code(&aino));
    server.storage.revoke_device(&device).unwrap();
    for _ in 0..5 {
        let (status, v) = api.call(
            "POST",
            "/v1/push",
            Some(&token),
            Some(vec![b' '; 1_000_000]),
        );
        assert_eq!((status, code_of(&v)), (401, "device_revoked"), "{v}");
    }
}
