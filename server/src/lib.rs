//! The Polku sync server: device enrollment, permissioned subject streams, the audit log.
//! `polku-server` (main.rs) is the admin and serve front end; tests start [`serve`] in-process
//! on a loopback port, the same code the binary runs.

pub mod api;
pub mod error;
pub mod storage;

use std::sync::Arc;

pub use error::{ApiError, ApiResult};
pub use storage::{KeySource, Role, ServerKey, SqliteStorage, Storage};

/// Serves `storage` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    storage: Arc<dyn Storage>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, api::router(storage))
        .with_graceful_shutdown(shutdown)
        .await
}
