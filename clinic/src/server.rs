//! Binding, TLS and the running server's handle; `GET /healthz`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::config::{Config, ConfigError};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::storage::{SqliteStorage, StorageError};

/// How long a graceful shutdown waits for open requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Storage(#[from] StorageError),
    /// The certificate or key could not be read.
    #[error("cannot load the TLS certificate or key: {0}")]
    Tls(io::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    scheme: &'static str,
    handle: Handle<SocketAddr>,
    task: JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash). With
    /// TLS the host is the IP address, so the certificate must name it, or
    /// connect to `https://localhost:{port}` instead.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting connections and waits up to 10 seconds for
    /// open requests.
    ///
    /// # Errors
    /// The I/O error the server stopped with, if any.
    pub async fn shutdown(self) -> io::Result<()> {
        self.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        self.wait().await
    }

    /// Waits until the server stops (after [`ServerHandle::shutdown`] from
    /// another handle clone, or an I/O error).
    ///
    /// # Errors
    /// The I/O error the server stopped with, if any.
    pub async fn wait(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }

    /// A handle that can trigger shutdown while another task waits.
    pub fn shutdown_trigger(&self) -> impl Fn() + Send + Sync + 'static {
        let handle = self.handle.clone();
        move || handle.graceful_shutdown(Some(SHUTDOWN_GRACE))
    }
}

/// Opens the database named by `config` and serves [`crate::app`] over it.
///
/// # Errors
/// See [`ServeError`].
pub async fn serve(config: Config) -> Result<ServerHandle, ServeError> {
    let db = config.db.clone();
    let storage = tokio::task::spawn_blocking(move || SqliteStorage::open(&db))
        .await
        .map_err(|e| ServeError::Storage(StorageError::Database(e.to_string())))??;
    serve_app(crate::app(AppState::new(Arc::new(storage))), &config).await
}

/// Binds `config.listen` (TLS when configured) and serves `router` in a
/// background task.
///
/// # Errors
/// See [`ServeError`].
pub async fn serve_app(router: Router, config: &Config) -> Result<ServerHandle, ServeError> {
    config.validate()?;
    let bind_error = |source| ServeError::Bind { addr: config.listen, source };
    let listener = std::net::TcpListener::bind(config.listen).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let handle = Handle::new();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = match &config.tls {
        Some(files) => {
            install_crypto_provider();
            let tls = RustlsConfig::from_pem_file(&files.cert, &files.key).await.map_err(ServeError::Tls)?;
            let server = axum_server::from_tcp_rustls(listener, tls).map_err(bind_error)?.handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
        None => {
            let server = axum_server::from_tcp(listener).map_err(bind_error)?.handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
    };
    tracing::info!(%addr, tls = config.tls.is_some(), "listening");
    Ok(ServerHandle { addr, scheme: config.scheme(), handle, task })
}

/// Installs rustls' `ring` provider as the process default, once.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What `/healthz` answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /healthz`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// Liveness and database check.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Serving, database reachable", body = Health),
        (status = 500, description = "The database does not answer", body = ErrorBody),
    )
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.db(|s| s.ping()).await?;
    Ok(Json(Health { status: "ok".into() }))
}
