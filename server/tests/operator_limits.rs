//! The abuse limits as an operator sets and reads them (issue 9, finding 6): `serve` with
//! `--failure-burst`, then `audit --failures` lists the failed attempts and the lockout, with no
//! code in them. The real `polku-server` binary on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

fn polku_server(data: &Path, key: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_polku-server"));
    c.arg("--data")
        .arg(data)
        .arg("--key-file")
        .arg(key)
        .env_remove("POLKU_SERVER_KEY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("POLKU_TRUSTED_PROXIES");
    c
}

fn run(mut c: Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// POSTs an enrollment with `code`; the status of the reply.
fn enroll(addr: &str, code: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let body = format!("{{\"code\":\"{code}\"}}");
    write!(
        s,
        "POST /v1/enroll HTTP/1.1\r\nHost: polku\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn failed_enrollments_lock_out_and_show_in_the_failure_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("server.key");
    let mut c = polku_server(&data, &key);
    c.arg("init");
    assert_eq!(run(c).0, 0);

    let mut c = polku_server(&data, &key);
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--failure-burst",
        "2",
        "--lockout-minutes",
        "5",
    ])
    .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("listening on http://")
        .to_owned();
    let guesses = [
        "KQ7M-2XVB-9TRD",
        "HC4W-8NZP-3FJA",
        "MB6T-1RGK-5YEQ",
        "PS2D-7HVX-4WNC",
    ];
    let statuses: Vec<u16> = guesses.iter().map(|g| enroll(&addr, g)).collect();
    let _ = child.kill();
    let _ = child.wait();
    // Two in a row are allowed, the third locks the address out, the fourth is not tried.
    assert_eq!(statuses, [401, 401, 401, 429]);

    let mut c = polku_server(&data, &key);
    c.args(["--json", "audit", "--failures"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = rows.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["invalid_code", "invalid_code", "invalid_code", "locked_out"]
    );
    assert!(rows
        .iter()
        .all(|r| r["source"] == "127.0.0.1" && r["attempt"] == "enroll"));
    for g in guesses {
        assert!(!out.contains(g) && !out.contains(&g[..4]), "{g} in {out}");
    }
    let mut c = polku_server(&data, &key);
    c.args(["audit", "--failures"]);
    let (_, text, _) = run(c);
    assert!(text.contains("locked out for 300 s"), "{text}");

    // `audit` needs a subject or --failures: a usage error, not an empty list.
    let mut c = polku_server(&data, &key);
    c.arg("audit");
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--subject"), "{err}");
}
