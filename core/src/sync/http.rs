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

impl Http {
    pub fn new(base: &str, token: Option<String>) -> Result<Http> {
        install_crypto_provider();
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::validation(
                "server",
                &base,
                "an http:// or https:// address",
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_DEADLINE)
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

    async fn finish<A: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(A, usize)> {
        let resp = req.send().await.map_err(network)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(network)?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => Error::Server {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                // A proxy's HTML page or a cut body: transient as far as the device can tell.
                Err(_) => Error::Network(format!("HTTP {status} without a Polku error body")),
            });
        }
        let a = serde_json::from_slice(&body).map_err(|e| {
            Error::Network(format!("reply could not be read ({})", e.classify_name()))
        })?;
        Ok((a, body.len()))
    }
}

fn network(e: reqwest::Error) -> Error {
    // reqwest's message names the URL and the failure, never a body.
    Error::Network(e.without_url().to_string())
}
