//! HTTP routes. Bodies are read as bytes under a size limit and decoded by [`decode`], so every
//! malformed or oversized request gets a typed 4xx (never a 500) and the decoder can be fuzzed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use polku_protocol::wire::*;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};
use crate::storage::{DeviceAuth, Storage};

type Db = Arc<dyn Storage>;

pub fn router(storage: Db) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enroll", post(enroll))
        .route("/v1/subjects", get(subjects))
        .route("/v1/push", post(push))
        .route("/v1/pull", post(pull))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // Bodies over the limit are cut by `decode`'s own check; axum's is a backstop.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1))
        .with_state(storage)
}

/// Decodes a request body: size, JSON syntax and shape, each with its own stable code.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the body is {} bytes; at most {MAX_BODY_BYTES} allowed",
            body.len()
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the line, column and expected shape and may quote a value of the
        // request: it goes back only to the device that sent it, and 4xx answers are not logged.
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_body",
            _ => "malformed_json",
        };
        ApiError::bad(code, format!("request body: {e}"))
    })
}

/// The raw body, or a typed error when it was over the limit or broke off.
fn body(b: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    b.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the body is over {MAX_BODY_BYTES} bytes"))
        } else {
            ApiError::bad("unreadable_body", "the request body could not be read")
        }
    })
}

/// Runs blocking storage work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("task: {e}")))?
}

async fn auth(db: &Db, headers: &HeaderMap) -> ApiResult<DeviceAuth> {
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
    let db = db.clone();
    blocking(move || db.authenticate(&token)).await
}

async fn health(State(db): State<Db>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        serde_json::json!({"status": "ok", "epoch": db.epoch()?}),
    ))
}

async fn enroll(
    State(db): State<Db>,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<EnrollResponse>> {
    let req: EnrollRequest = decode(&body(raw)?)?;
    if req.code.len() > 64 {
        return Err(ApiError::bad(
            "invalid_code",
            "the code is at most 64 characters",
        ));
    }
    Ok(Json(
        blocking(move || db.enroll(&req.code, req.device_name.as_deref())).await?,
    ))
}

async fn subjects(State(db): State<Db>, headers: HeaderMap) -> ApiResult<Json<SubjectsResponse>> {
    let who = auth(&db, &headers).await?;
    Ok(Json(SubjectsResponse {
        subjects: blocking(move || db.subjects(&who)).await?,
    }))
}

async fn push(
    State(db): State<Db>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<PushResponse>> {
    let who = auth(&db, &headers).await?;
    let req: PushRequest = decode(&body(raw)?)?;
    let epoch = db.epoch()?;
    let results = blocking(move || db.push(&who, req.ops)).await?;
    Ok(Json(PushResponse {
        results,
        server_ms: chrono::Utc::now().timestamp_millis().max(0) as u64,
        epoch,
    }))
}

async fn pull(
    State(db): State<Db>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<PullResponse>> {
    let who = auth(&db, &headers).await?;
    let req: PullRequest = decode(&body(raw)?)?;
    if req.streams.len() > 10_000 {
        return Err(ApiError::bad(
            "too_many_streams",
            "at most 10 000 stream cursors per pull",
        ));
    }
    Ok(Json(blocking(move || db.pull(&who, req)).await?))
}
