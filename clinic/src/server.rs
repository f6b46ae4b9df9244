//! Binding, TLS and the running server's handle; `GET /healthz` (liveness)
//! and `GET /readyz` (readiness: the database takes a write).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::config::{Config, ConfigError};
use crate::error::{ApiError, ErrorBody};
use crate::limits::{Guarded, Limits};
use crate::state::AppState;
use crate::storage::{ClinicStorage, PgStorage, RecordKey, SqliteStorage, StorageError};

/// How long a graceful shutdown waits for open requests.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    let opening = config.clone();
    let storage = tokio::task::spawn_blocking(move || open_storage(&opening))
        .await
        .map_err(|e| ServeError::Storage(StorageError::Database(e.to_string())))??;
    serve_app(crate::app(AppState::configured(storage, &config)), &config).await
}

/// Reads `config`'s record keys (creating the key file first when
/// [`Config::create_record_key`] says so) and opens its database, sealed:
/// PostgreSQL when [`Config::database_url`] is set, else the SQLite file.
///
/// # Errors
/// [`StorageError::RecordKey`] for a missing or unreadable key file, and
/// the errors of [`SqliteStorage::open_sealed`] or [`PgStorage::connect_sealed`].
pub fn open_storage(config: &Config) -> Result<Arc<dyn ClinicStorage>, StorageError> {
    if config.create_record_key && !config.record_key.exists() {
        RecordKey::generate().write_new(&config.record_key)?;
    }
    let key = RecordKey::from_file(&config.record_key)?;
    let old = config.old_record_keys.iter().map(|file| RecordKey::from_file(file)).collect::<Result<Vec<_>, _>>()?;
    Ok(match &config.database_url {
        Some(url) => Arc::new(PgStorage::connect_sealed(url.as_str(), &config.pg_options(), &key, &old)?),
        None => Arc::new(SqliteStorage::open_sealed(&config.db, &key, &old)?),
    })
}

/// Binds `config.listen` (TLS when configured) and serves `router` in a
/// background task, with the connection bounds of `config.limits`
/// ([`crate::Limits`]).
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
    let limits = config.limits.clone();
    let task = match &config.tls {
        Some(files) => {
            install_crypto_provider();
            let tls = RustlsConfig::from_pem_file(&files.cert, &files.key).await.map_err(ServeError::Tls)?;
            let tls = RustlsAcceptor::new(tls).handshake_timeout(limits.header_read_timeout);
            let acceptor = Guarded::new(tls, limits.clone(), &config.trusted_proxies);
            let mut server = axum_server::from_tcp(listener).map_err(bind_error)?.acceptor(acceptor);
            bound_headers(server.http_builder(), &limits);
            tokio::spawn(server.handle(handle.clone()).serve(service))
        }
        None => {
            let mut server = axum_server::from_tcp(listener).map_err(bind_error)?.acceptor(Guarded::new(
                DefaultAcceptor,
                limits.clone(),
                &config.trusted_proxies,
            ));
            bound_headers(server.http_builder(), &limits);
            tokio::spawn(server.handle(handle.clone()).serve(service))
        }
    };
    tracing::info!(%addr, tls = config.tls.is_some(), "listening");
    Ok(ServerHandle { addr, scheme: config.scheme(), handle, task })
}

/// Gives hyper its timer and the header-read timeout (HTTP/1; it also
/// bounds how long an idle keep-alive connection waits for a request).
fn bound_headers(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &Limits,
) {
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(hyper_util::rt::TokioTimer::new());
}

/// Installs rustls' `ring` provider as the process default, once.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What `/healthz` and `/readyz` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /healthz` and `GET /readyz`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// Liveness: the process serves requests. It does not touch the database,
/// so a busy or read-only database does not get a live server restarted.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Serving", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the database takes a write now. A load balancer sends no
/// traffic to an instance answering `503`.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready: the database takes a write", body = Health),
        (status = 503, description = "The database is busy, read-only or full; see Retry-After", body = ErrorBody),
        (status = 500, description = "The database does not answer", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.db(|s| s.check_writable()).await?;
    Ok(Json(Health { status: "ok".into() }))
}
