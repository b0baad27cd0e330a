//! The Polku sync server: device enrollment, permissioned subject streams, the audit log.
//! `polku-server` (main.rs) is the admin and serve front end; tests start [`serve`] in-process
//! on a loopback port, the same code the binary runs.

pub mod api;
pub mod error;
pub mod limits;
mod listen;
pub mod storage;

use std::sync::Arc;

pub use error::{ApiError, ApiResult};
pub use limits::Limits;
pub use storage::{AttachmentRules, KeySource, Role, ServerKey, SqliteStorage, Storage};

/// Serves `storage` on `listener` with the default [`Limits`] until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    storage: Arc<dyn Storage>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, storage, Limits::default(), shutdown).await
}

/// Serves `storage` on `listener` under `limits` until `shutdown` resolves.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    storage: Arc<dyn Storage>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    listen::serve(
        listener,
        api::router(storage, limits.clone()),
        limits,
        shutdown,
    )
    .await
}
