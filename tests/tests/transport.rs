//! Tokens and health data never travel in clear (issue 9, finding 2): a device refuses plain HTTP
//! to anything but its own machine, takes no proxy from the environment for it, and says what a
//! failed TLS handshake was about.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use polku_core::Error;
use polku_e2e::{block_on, CareTeam, Device};
use polku_server::Role;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[test]
fn plain_http_is_refused_to_any_other_host() {
    let d = Device::new();
    for server in [
        "http://polku.example.fi",
        "http://10.0.0.5:8440",
        "http://[2001:db8::1]:8440",
        "http://127.0.0.1.example.fi",
        "ftp://localhost",
    ] {
        let e = block_on(d.polku.sync().enroll(server, "ABCD-EFGH-JKMN", None)).unwrap_err();
        match e {
            Error::Validation { field, allowed, .. } => {
                assert_eq!(field, "server");
                assert!(allowed.contains("https://"), "{allowed}");
            }
            other => panic!("{server}: {other:?}"),
        }
    }
    assert!(d.polku.sync().enrollment().unwrap().is_none());
}

#[test]
fn plain_http_to_this_machine_takes_no_proxy_from_the_environment() {
    // A "proxy" that would see every plain request sent through it.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    std::env::set_var("HTTP_PROXY", &url);
    std::env::set_var("http_proxy", &url);
    let team = CareTeam::new(Role::Professional);
    team.phone
        .polku
        .diary()
        .add(polku_core::diary::NewEntry::new(
            polku_core::diary::EntryData::Weight { kg: 70.0 },
        ))
        .unwrap();
    let r = team.phone.sync().unwrap();
    assert_eq!(r.pushed, 1);
    proxy.set_nonblocking(true).unwrap();
    assert!(proxy.accept().is_err(), "no request went through the proxy");
}

#[test]
fn a_certificate_the_device_does_not_trust_is_named_as_such() {
    let config = tls_config("self-signed");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let _ = tls.read(&mut [0u8; 64]);
        }
    });
    let d = Device::new();
    let e = block_on(d.polku.sync().enroll(
        &format!("https://localhost:{port}"),
        "ABCD-EFGH-JKMN",
        None,
    ))
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Network(_))
            && msg.contains("TLS: the server's certificate is not trusted"),
        "{msg}"
    );
}

/// A TLS server configuration presenting the fixture certificate `cert` (`fixtures/tls/`).
fn tls_config(cert: &str) -> Arc<rustls::ServerConfig> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{cert}.pem")))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{cert}.key"))).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    )
}

/// A TLS terminator in front of a real server, as a county puts one (one request per
/// connection, enough for a test): `cert` is the fixture it presents.
fn tls_front(backend: std::net::SocketAddr, cert: &str) -> u16 {
    let config = tls_config(cert);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let Some(request) = read_message(&mut tls) else {
                    return; // the device refused the certificate
                };
                let mut up = std::net::TcpStream::connect(backend).unwrap();
                up.write_all(&request).unwrap();
                let reply = read_message(&mut up).unwrap();
                // One request per connection: tell the device not to reuse it.
                let reply = String::from_utf8(reply).unwrap().replacen(
                    "\r\n",
                    "\r\nconnection: close\r\n",
                    1,
                );
                let _ = tls.write_all(reply.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

/// One HTTP message (headers and a content-length body), or `None` if the peer gave up.
fn read_message(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&buf[..n]);
        if polku_e2e::api::message_complete(&out) {
            return Some(out);
        }
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/tls")
            .join(name),
    )
    .unwrap()
}

#[test]
fn a_pinned_county_ca_is_trusted_for_enrollment_and_every_sync_and_nothing_else() {
    let server = polku_e2e::TestServer::start();
    let aino = server.user(Role::Citizen, "Aino");
    let code = server.code(&aino);
    let url = format!(
        "https://localhost:{}",
        tls_front(server.addr, "county-server")
    );
    let county_ca = fixture("county-ca.pem");

    // Without the pin, the county's CA is not among the platform's roots.
    let d = Device::new();
    let e = block_on(d.polku.sync().enroll(&url, &code, None)).unwrap_err();
    assert!(e.to_string().contains("issuer is unknown"), "{e}");
    // Pinning another CA: the platform's roots are not consulted either.
    let e = block_on(d.polku.sync().enroll_with_ca(
        &url,
        &code,
        None,
        Some(&fixture("self-signed.pem")),
    ))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("TLS: the server's certificate is not trusted"),
        "{e}"
    );
    // Not a certificate: a typed error naming the field.
    let e = block_on(
        d.polku
            .sync()
            .enroll_with_ca(&url, &code, None, Some("hello")),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Validation { field, .. } if field == "ca"),
        "{e:?}"
    );

    // With the county CA pinned: enrolled, and every later sync goes through the same pin.
    let mut d = d;
    block_on(
        d.polku
            .sync()
            .enroll_with_ca(&url, &code, Some("phone"), Some(&county_ca)),
    )
    .unwrap();
    d.reopen();
    d.polku
        .diary()
        .add(polku_core::diary::NewEntry::new(
            polku_core::diary::EntryData::Weight { kg: 70.0 },
        ))
        .unwrap();
    let r = d.sync().unwrap();
    assert_eq!(r.pushed, 1);

    // The same server behind a certificate the county CA did not sign: the pinned device refuses.
    let other = format!(
        "https://localhost:{}",
        tls_front(server.addr, "self-signed")
    );
    let mut d2 = Device::new();
    let code2 = server.code(&aino);
    let e = block_on(
        d2.polku
            .sync()
            .enroll_with_ca(&other, &code2, None, Some(&county_ca)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("TLS:"), "{e}");
    block_on(
        d2.polku
            .sync()
            .enroll_with_ca(&url, &code2, None, Some(&county_ca)),
    )
    .unwrap();
    d2.reopen();
    d2.sync().unwrap();
    assert_eq!(
        d2.polku.diary().list_all(Default::default()).unwrap().len(),
        1
    );
}
