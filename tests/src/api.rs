//! The sync API spoken directly over HTTP, as a device that does not use the core would (or an
//! attacker with an enrolled device's token): what the server must answer on its own.

use serde_json::{json, Value};

use crate::{block_on, TestServer};

pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &TestServer) -> Api {
        polku_core::sync::install_crypto_provider();
        Api {
            base: server.url(),
            http: reqwest::Client::new(),
        }
    }

    /// A client whose connections come from `local` (any 127.x.y.z: every loopback address is
    /// this machine's), so tests can play several clients' addresses.
    pub fn from(server: &TestServer, local: &str) -> Api {
        polku_core::sync::install_crypto_provider();
        Api {
            base: server.url(),
            http: reqwest::Client::builder()
                .local_address(local.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap(),
        }
    }

    /// Like [`Api::call`] with extra request headers.
    pub fn call_with(&self, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        block_on(async {
            let mut req = self
                .http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_string());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap())
        })
    }

    /// (status, body) of a request with an optional token.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        block_on(async {
            let mut req = match method {
                "GET" => self.http.get(format!("{}{path}", self.base)),
                "PUT" => self.http.put(format!("{}{path}", self.base)),
                _ => self.http.post(format!("{}{path}", self.base)),
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{path}: non-JSON reply {status}: {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            (status, v)
        })
    }

    pub fn enroll(&self, code: &str) -> (u16, Value) {
        self.call(
            "POST",
            "/v1/enroll",
            None,
            Some(json!({"code": code}).to_string().into_bytes()),
        )
    }

    pub fn token(&self, code: &str) -> (String, String) {
        let (s, v) = self.enroll(code);
        assert_eq!(s, 200, "{v}");
        (
            v["token"].as_str().unwrap().to_owned(),
            v["device_id"].as_str().unwrap().to_owned(),
        )
    }
}

/// A weight entry written by `author` (the server stamps authorship: it must be the pusher).
pub fn weight_op(author: &str, stream: &str, device_seq: i64) -> Value {
    let id = uuid::Uuid::now_v7().to_string();
    json!({
        "op_id": id, "stream": stream, "device_seq": device_seq,
        "hlc": format!("{:016x}-0000-test", chrono_ms()), "kind": "diary.entry_version", "schema_version": 1,
        "payload": {
            "version_id": id, "entry_id": uuid::Uuid::now_v7().to_string(), "version": 1, "kind": "weight",
            "at_ms": chrono_ms(), "utc_offset_s": 7200, "author": author, "created_ms": chrono_ms(),
            "note": null, "data": "{\"kind\":\"weight\",\"kg\":70.0}", "deleted_reason": null,
            "import_key": null, "hlc": format!("{:016x}-0000-test", chrono_ms()), "resolves": null
        }
    })
}

pub fn chrono_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn push(api: &Api, token: &str, ops: Vec<Value>) -> (u16, Value) {
    api.call(
        "POST",
        "/v1/push",
        Some(token),
        Some(json!({ "ops": ops }).to_string().into_bytes()),
    )
}

pub fn pull(api: &Api, token: &str) -> (u16, Value) {
    api.call(
        "POST",
        "/v1/pull",
        Some(token),
        Some(json!({ "streams": [] }).to_string().into_bytes()),
    )
}

/// Whether `bytes` hold one whole HTTP/1.1 message: its headers and a body of its
/// content-length (none without one). For tests that speak HTTP over a raw socket.
pub fn message_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    bytes.len() >= end + 4 + len
}
