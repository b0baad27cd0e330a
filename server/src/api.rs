//! HTTP routes. A request is authenticated from its headers before its body is read; the body
//! is then read under a size limit and a deadline and decoded by [`decode`], so every malformed,
//! oversized or stalled request gets a typed 4xx (never a 500) and the decoder can be fuzzed.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use http_body_util::{BodyExt, Limited};
use polku_protocol::attachment::{FetchedResponse, UploadResponse};
use polku_protocol::keys::*;
use polku_protocol::relay::*;
use polku_protocol::wire::*;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::limits::{Attempter, Attempts, Limits};
use crate::storage::{AuthFailure, DeviceAuth, Storage};

type Db = Arc<dyn Storage>;

/// The client's address, put on every request by the accept loop (`listen`): the peer's, or
/// what a trusted proxy says in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct Source(pub IpAddr);

#[derive(Clone)]
struct App {
    db: Db,
    attempts: Arc<Attempts>,
    limits: Arc<Limits>,
}

pub fn router(storage: Db, limits: Arc<Limits>) -> Router {
    let app = App {
        db: storage,
        attempts: Arc::new(Attempts::new(&limits)),
        limits,
    };
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/subjects", get(subjects))
        .route("/v1/push", post(push))
        .route("/v1/pull", post(pull))
        .route("/v1/keys/upload", post(upload_keys))
        .route("/v1/keys/devices", get(devices))
        .route("/v1/keys/claim", post(claim_keys))
        .route("/v1/conversations", get(conversations))
        .route("/v1/messages/send", post(send_messages))
        .route("/v1/messages/fetch", post(fetch_messages))
        .route(
            "/v1/attachments/{id}",
            put(upload_attachment).get(attachment),
        )
        .route("/v1/attachments/{id}/fetched", post(attachment_fetched))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .with_state(app)
}

/// Decodes a request body: size, JSON syntax and shape, each with its own stable code.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    // UTF-8 is checked once for the whole body here, not string by string while parsing.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad(
            "malformed_json",
            format!("request body: not UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    serde_json::from_str(text).map_err(|e| {
        // serde's message names the line, column and expected shape and may quote a value of the
        // request: it goes back only to the device that sent it, and 4xx answers are not logged.
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_body",
            _ => "malformed_json",
        };
        ApiError::bad(code, format!("request body: {e}"))
    })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn too_large() -> ApiError {
    too_large_for(MAX_BODY_BYTES)
}

fn too_large_for(limit: usize) -> ApiError {
    ApiError::TooLarge(format!("the body is over {limit} bytes"))
}

impl App {
    /// Authenticates a request from its headers, then reads its body. A refused request's body
    /// is never read into memory; it is discarded (`drain`) so the client can read the refusal.
    async fn authed_body(&self, source: IpAddr, req: Request) -> ApiResult<(DeviceAuth, Bytes)> {
        let (parts, body) = req.into_parts();
        match self.auth(source, &parts.headers).await {
            Ok(who) => Ok((who, self.body(&parts.headers, body).await?)),
            Err(e) => {
                self.drain(&parts.headers, body);
                Err(e)
            }
        }
    }

    /// Discards a refused request's body in the background, up to its declared length (at most
    /// twice the body limit) and the body deadline, without keeping it. Closing the connection
    /// with the body unread would reset it before the client read the typed refusal; a client
    /// that declares more than that gets the reset.
    fn drain(&self, headers: &HeaderMap, body: Body) {
        let declared = declared_length(headers).unwrap_or(MAX_BODY_BYTES as u64);
        if declared > 2 * MAX_BODY_BYTES as u64 {
            return;
        }
        let deadline = self.limits.body_timeout;
        tokio::spawn(async move {
            let mut body = body;
            let mut seen = 0u64;
            let _ = tokio::time::timeout(deadline, async {
                while let Some(Ok(frame)) = body.frame().await {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > declared {
                        break;
                    }
                }
            })
            .await;
        });
    }

    /// Reads a body of at most [`MAX_BODY_BYTES`] within the body deadline. A declared length
    /// over the limit is refused before a byte of it is kept.
    async fn body(&self, headers: &HeaderMap, body: Body) -> ApiResult<Bytes> {
        self.body_up_to(headers, body, MAX_BODY_BYTES, self.limits.body_timeout)
            .await
    }

    /// Reads a body of at most `limit` bytes within `deadline`.
    async fn body_up_to(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
        deadline: std::time::Duration,
    ) -> ApiResult<Bytes> {
        if declared_length(headers).is_some_and(|n| n > limit as u64) {
            self.drain(headers, body);
            return Err(too_large_for(limit));
        }
        let read = Limited::new(body, limit).collect();
        match tokio::time::timeout(deadline, read).await {
            Err(_) => Err(ApiError::Timeout(format!(
                "the request body did not arrive within {} s",
                deadline.as_secs()
            ))),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large_for(limit)),
            Ok(Err(_)) => Err(ApiError::bad(
                "unreadable_body",
                "the request body could not be read",
            )),
            Ok(Ok(c)) => Ok(c.to_bytes()),
        }
    }

    /// Runs `attempt` unless `who` is locked out; a refusal of the attempt is counted, logged
    /// (where from and why, never the code or token) and may lock `who` out.
    async fn attempt<T: Send + 'static>(
        &self,
        kind: &'static str,
        who: Vec<Attempter>,
        source: IpAddr,
        attempt: impl FnOnce(&Db) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        self.attempts.admit(&who)?;
        let app = self.clone();
        blocking(move || {
            let result = attempt(&app.db);
            if let Err(ApiError::Unauthorized { code, .. }) = &result {
                let log = |code: &str, detail: Option<String>| {
                    app.db.record_failure(&AuthFailure {
                        at: String::new(),
                        source: source.to_string(),
                        attempt: kind.to_owned(),
                        code: code.to_owned(),
                        detail,
                    })
                };
                log(code, None)?;
                for w in app.attempts.failed(&who) {
                    log(
                        "locked_out",
                        Some(format!(
                            "{} locked out for {} s",
                            w.describe(),
                            app.limits.lockout.as_secs()
                        )),
                    )?;
                }
            }
            result
        })
        .await
    }

    async fn auth(&self, source: IpAddr, headers: &HeaderMap) -> ApiResult<DeviceAuth> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "unauthorized",
                    "a device token is required (Authorization: Bearer …)",
                )
            })?
            .to_owned();
        self.attempt(
            "token",
            vec![Attempter::authenticating(source)],
            source,
            move |db| db.authenticate(&token),
        )
        .await
    }
}

/// Runs blocking storage work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("task: {e}")))?
}

async fn health(State(app): State<App>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::json!({"status": "ok", "epoch": app.db.epoch()?}),
    ))
}

async fn enroll(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<EnrollResponse>> {
    // A locked-out address is refused before its body is read.
    app.attempts.admit(&[Attempter::enrolling(source)])?;
    let (parts, body) = req.into_parts();
    let req: EnrollRequest = decode(&app.body(&parts.headers, body).await?)?;
    if req.code.len() > 64 {
        return Err(ApiError::bad(
            "invalid_code",
            "the code is at most 64 characters",
        ));
    }
    let who = std::iter::once(Attempter::enrolling(source))
        .chain(Attempter::code_prefix(&req.code))
        .collect();
    Ok(Json(
        app.attempt("enroll", who, source, move |db| {
            db.enroll(&req.code, req.device_name.as_deref())
        })
        .await?,
    ))
}

async fn subjects(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    headers: HeaderMap,
) -> ApiResult<Json<SubjectsResponse>> {
    let who = app.auth(source, &headers).await?;
    let db = app.db.clone();
    Ok(Json(SubjectsResponse {
        subjects: blocking(move || db.subjects(&who)).await?,
    }))
}

async fn push(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<PushResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let req: PushRequest = decode(&body)?;
    let db = app.db.clone();
    let epoch = db.epoch()?;
    let results = blocking(move || db.push(&who, req.ops)).await?;
    Ok(Json(PushResponse {
        results,
        server_ms: chrono::Utc::now().timestamp_millis().max(0) as u64,
        epoch,
    }))
}

async fn pull(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<PullResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let req: PullRequest = decode(&body)?;
    if req.streams.len() > 10_000 {
        return Err(ApiError::bad(
            "too_many_streams",
            "at most 10 000 stream cursors per pull",
        ));
    }
    let db = app.db.clone();
    Ok(Json(blocking(move || db.pull(&who, req)).await?))
}

async fn upload_keys(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<KeysUploadResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let up: KeysUpload = decode(&body)?;
    let db = app.db.clone();
    Ok(Json(blocking(move || db.upload_keys(&who, &up)).await?))
}

async fn devices(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    headers: HeaderMap,
) -> ApiResult<Json<DevicesResponse>> {
    let who = app.auth(source, &headers).await?;
    let db = app.db.clone();
    Ok(Json(DevicesResponse {
        devices: blocking(move || db.devices(&who)).await?,
    }))
}

async fn claim_keys(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<KeysClaimResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let claim: KeysClaim = decode(&body)?;
    let db = app.db.clone();
    Ok(Json(
        blocking(move || db.claim_keys(&who, &claim.devices)).await?,
    ))
}

async fn send_messages(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<SendResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let send: SendRequest = decode(&body)?;
    let db = app.db.clone();
    Ok(Json(
        blocking(move || db.send_messages(&who, send.messages)).await?,
    ))
}

async fn fetch_messages(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    req: Request,
) -> ApiResult<Json<FetchResponse>> {
    let (who, body) = app.authed_body(source, req).await?;
    let fetch: FetchRequest = decode(&body)?;
    let db = app.db.clone();
    Ok(Json(
        blocking(move || db.fetch_messages(&who, &fetch)).await?,
    ))
}

async fn conversations(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    headers: HeaderMap,
) -> ApiResult<Json<ConversationsResponse>> {
    let who = app.auth(source, &headers).await?;
    let db = app.db.clone();
    Ok(Json(ConversationsResponse {
        conversations: blocking(move || db.conversations(&who)).await?,
    }))
}

/// `?conversation=ID` of an upload (ids are UUIDs: nothing to percent-decode).
fn conversation_of(uri: &axum::http::Uri) -> ApiResult<String> {
    uri.query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("conversation="))
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 100
                && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_conversation",
                "conversation: the citizen's id in the query (?conversation=ID)",
            )
        })
}

/// A sealed attachment: raw bytes, a larger limit than JSON bodies and time for a slow mobile
/// uplink (a 10 MB photo at 0.5 Mbit/s takes almost three minutes).
async fn upload_attachment(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Json<UploadResponse>> {
    let (parts, body) = req.into_parts();
    let conversation = match conversation_of(&parts.uri) {
        Ok(c) => c,
        Err(e) => {
            app.drain(&parts.headers, body);
            return Err(e);
        }
    };
    let who = match app.auth(source, &parts.headers).await {
        Ok(who) => who,
        Err(e) => {
            app.drain(&parts.headers, body);
            return Err(e);
        }
    };
    let rules = app.limits.attachments.clone();
    let limit = polku_protocol::attachment::blob_len(rules.max_bytes);
    let deadline = app
        .limits
        .body_timeout
        .max(std::time::Duration::from_secs(600));
    let blob = app
        .body_up_to(&parts.headers, body, limit, deadline)
        .await
        .map_err(|e| match e {
            ApiError::TooLarge(_) => ApiError::TooLarge(format!(
                "attachments on this server are at most {} bytes (sealed and padded: {limit} bytes)",
                rules.max_bytes
            )),
            e => e,
        })?;
    let db = app.db.clone();
    Ok(Json(
        blocking(move || db.upload_attachment(&who, &id, &conversation, &blob, &rules)).await?,
    ))
}

async fn attachment(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    let who = app.auth(source, &headers).await?;
    let db = app.db.clone();
    let rules = app.limits.attachments.clone();
    let blob = blocking(move || db.attachment(&who, &id, &rules)).await?;
    axum::response::Response::builder()
        .header("content-type", "application/octet-stream")
        .body(Body::from(blob))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn attachment_fetched(
    State(app): State<App>,
    Extension(Source(source)): Extension<Source>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<FetchedResponse>> {
    let who = app.auth(source, &headers).await?;
    let db = app.db.clone();
    Ok(Json(
        blocking(move || db.attachment_fetched(&who, &id)).await?,
    ))
}
