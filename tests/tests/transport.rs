//! Tokens and health data never travel in clear (issue 9, finding 2): a device refuses plain HTTP
//! to anything but its own machine, takes no proxy from the environment for it, and says what a
//! failed TLS handshake was about.

use std::io::Read;
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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("self-signed.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("self-signed.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
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
