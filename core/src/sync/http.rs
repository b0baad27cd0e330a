//! The device's HTTP transport: reqwest with rustls on ring, a deadline on every request, and the
//! server's typed JSON errors turned into [`Error::Server`].

use std::sync::OnceLock;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::protocol::ErrorBody;
use crate::error::{ClassifyName, Error, Result};

/// Every request ends within this, whatever the network does (a stalled reply is a retry).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// An attachment's upload or download ends within this (10 MB at 0.2 Mbit/s).
const BULK_DEADLINE: Duration = Duration::from_secs(600);

pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// Makes ring rustls' process-wide provider (reqwest is built without one; no aws-lc-rs).
pub fn install_crypto_provider() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // `Err` means the host app installed a provider first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// TLS with the platform's verifier (its roots, revocation where the OS checks it), as reqwest
/// builds it, but once per process: loading the platform's roots took ~6 ms, paid on every sync
/// before (docs/benchmarks.md).
fn platform_tls() -> Result<rustls::ClientConfig> {
    static CONFIG: std::sync::Mutex<Option<std::sync::Arc<rustls::ClientConfig>>> =
        std::sync::Mutex::new(None);
    let mut cached = CONFIG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = cached.as_ref() {
        return Ok((**c).clone());
    }
    let tls = |e: String| Error::Network(format!("TLS set-up: {e}"));
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| tls(e.to_string()))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    *cached = Some(std::sync::Arc::new(config.clone()));
    Ok(config)
}

impl Http {
    /// A transport to `base`. With `pinned_ca` (PEM), only that CA is trusted for the server's
    /// certificate, not the platform's roots: for a county that runs its own CA.
    pub fn new(base: &str, token: Option<String>, pinned_ca: Option<&str>) -> Result<Http> {
        install_crypto_provider();
        let base = base.trim_end_matches('/').to_owned();
        let plain = transport(&base)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_DEADLINE);
        if plain {
            // Plain HTTP stays on this machine: no proxy from the environment sees it.
            builder = builder.no_proxy();
        }
        match pinned_ca {
            Some(pem) => builder = builder.tls_certs_only(pinned_certs(pem)?),
            None => builder = builder.use_preconfigured_tls(platform_tls()?),
        }
        let client = builder
            .build()
            .map_err(|e| Error::Network(format!("HTTP client: {e}")))?;
        Ok(Http {
            client,
            base,
            token,
        })
    }

    pub async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        body: &Q,
    ) -> Result<(A, usize)> {
        let bytes = serde_json::to_vec(body)?;
        let sent = bytes.len();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(bytes);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let (a, received) = self.finish(req).await?;
        Ok((a, sent + received))
    }

    pub async fn get<A: DeserializeOwned>(&self, path: &str) -> Result<A> {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        Ok(self.finish(req).await?.0)
    }

    /// Uploads raw bytes (a sealed attachment), with time for a slow uplink.
    pub async fn put_bytes<A: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(A, usize)> {
        let sent = bytes.len();
        let mut req = self
            .client
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/octet-stream")
            .timeout(BULK_DEADLINE)
            .body(bytes);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let (a, received) = self.finish(req).await?;
        Ok((a, sent + received))
    }

    /// Downloads raw bytes (a sealed attachment).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .timeout(BULK_DEADLINE);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(network)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(network)?;
        if !status.is_success() {
            return Err(server_error(status, &body));
        }
        Ok(body.to_vec())
    }

    async fn finish<A: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(A, usize)> {
        let resp = req.send().await.map_err(network)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(network)?;
        if !status.is_success() {
            return Err(server_error(status, &body));
        }
        let a = serde_json::from_slice(&body).map_err(|e| {
            Error::Network(format!("reply could not be read ({})", e.classify_name()))
        })?;
        Ok((a, body.len()))
    }
}

fn server_error(status: reqwest::StatusCode, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => Error::Server {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
        },
        // A proxy's HTML page or a cut body: transient as far as the device can tell.
        Err(_) => Error::Network(format!("HTTP {status} without a Polku error body")),
    }
}

/// The CA certificates of a PEM text, or a validation error naming the field.
pub(crate) fn pinned_certs(pem: &str) -> Result<Vec<reqwest::Certificate>> {
    const RULE: &str = "the county CA's certificate(s) in PEM (-----BEGIN CERTIFICATE-----)";
    let summary = || format!("{} bytes of text", pem.len());
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|_| Error::validation("ca", summary(), RULE))?;
    if certs.is_empty() || !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::validation("ca", summary(), RULE));
    }
    Ok(certs)
}

/// Whether `base` is a plain-HTTP address, which is allowed only to this machine: tokens and
/// health data never cross a network in clear.
fn transport(base: &str) -> Result<bool> {
    const RULE: &str =
        "an https:// address (plain http:// only to this machine: localhost, 127.0.0.1, ::1)";
    let url = reqwest::Url::parse(base).map_err(|_| Error::validation("server", base, RULE))?;
    match url.scheme() {
        "https" => Ok(false),
        "http" => {
            let host = url.host_str().unwrap_or("");
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback());
            if loopback {
                Ok(true)
            } else {
                Err(Error::validation("server", base, RULE))
            }
        }
        _ => Err(Error::validation("server", base, RULE)),
    }
}

fn network(e: reqwest::Error) -> Error {
    if let Some(why) = tls_failure(&e) {
        return Error::Network(why);
    }
    // reqwest's message names the URL and the failure, never a body.
    Error::Network(e.without_url().to_string())
}

/// What a failed TLS handshake was about, in words a person can act on (not "error sending
/// request"): the certificate's issuer unknown, its dates, its name.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            let what = match tls {
                rustls::Error::InvalidCertificate(c) => match c {
                    C::UnknownIssuer => "the server's certificate is not trusted: its issuer is unknown to this device".to_owned(),
                    C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".to_owned(),
                    C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet (or this device's clock is wrong)".to_owned(),
                    C::NotValidForName | C::NotValidForNameContext { .. } => "the server's certificate is for another name than the address enrolled with".to_owned(),
                    C::Revoked => "the server's certificate is revoked".to_owned(),
                    other => {
                        // The variant's name only (its context may be long byte lists).
                        let name = format!("{other:?}");
                        let name = name.split([' ', '(', '{']).next().unwrap_or("").to_owned();
                        format!("the server's certificate is not trusted by this device ({name})")
                    }
                },
                other => format!("the secure connection failed ({other})"),
            };
            return Some(format!("TLS: {what}"));
        }
        // An I/O error wrapping another hands on the wrapped one's source, not the wrapped one.
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}
