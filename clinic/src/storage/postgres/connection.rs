//! The connection side of [`PgStorage`]: TLS, the pool and the small Tokio
//! runtime that drives it, schema migrations, the bridge that blocks a
//! synchronous caller on one bounded call, and what driver errors mean as
//! [`StorageError`]s.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{PgOptions, PgStorage};
use crate::storage::sealing::{RecordKey, Sealer};
use crate::storage::StorageError;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The schema version this build writes (the newest migration's number).
const PG_VERSION: u32 = 3;

/// The advisory lock taken while migrating (`"katcore"` in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6174_636f_7265;

/// How long a call waits for a free connection, or to open one, before the
/// database counts as unavailable (`503` with `Retry-After`).
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The longest a storage call may take, waiting for a connection included:
/// past it the call fails as unavailable (`503`), and its transaction is
/// rolled back. A database that stopped answering (a network partition
/// sends no reset) cannot hold requests forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest starting may wait for the schema: another instance's
/// migration holds the lock meanwhile.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Worker threads of the runtime that drives the connections.
const DRIVER_THREADS: usize = 2;

/// The TLS connector for `ca_file` (or the public roots).
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<MakeRustlsConnect, StorageError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StorageError::Database(format!("{}: not PEM certificates: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(StorageError::Database(format!("{}: holds no usable CA certificate", path.display())));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Database(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Shows nothing of the connection string (it may hold a password).
impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage").field("pool_size", &self.pool.status().max_size).finish_non_exhaustive()
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another
        // runtime (a server shutting down): let its threads end on their own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        let transient = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::DISK_FULL,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::QUERY_CANCELED,
        ];
        // The server's message only: its DETAIL may quote stored values.
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            // The cause too, e.g. why a TLS handshake failed.
            None => match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        };
        match e.code() {
            Some(code) if transient.contains(code) => StorageError::Unavailable(message),
            Some(_) => StorageError::Database(message),
            // No SQL state: the connection failed or closed.
            None => StorageError::Unavailable(message),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => StorageError::Unavailable(other.to_string()),
        }
    }
}

impl PgStorage {
    /// Connects to the database at `url` (a libpq-style `postgres://` URL or
    /// `key=value` string) with a pool of at most `pool_size` connections,
    /// and brings its schema up to date. Records can be neither read nor
    /// written (see [`PgStorage::connect_sealed`]).
    ///
    /// # Errors
    /// [`StorageError::Database`] for a malformed URL or a failed migration,
    /// [`StorageError::Unavailable`] when the server cannot be reached,
    /// [`StorageError::TooNew`] for a database of a newer server.
    pub fn connect(url: &str, options: &PgOptions) -> Result<PgStorage, StorageError> {
        PgStorage::connect_inner(url, options, None)
    }

    /// [`PgStorage::connect`] with the record key (and, during a rotation,
    /// the previous keys): what the server runs with.
    ///
    /// # Errors
    /// As [`PgStorage::connect`].
    pub fn connect_sealed(
        url: &str,
        options: &PgOptions,
        key: &RecordKey,
        previous: &[RecordKey],
    ) -> Result<PgStorage, StorageError> {
        PgStorage::connect_inner(url, options, Some(Sealer::new(key, previous)))
    }

    fn connect_inner(url: &str, options: &PgOptions, sealer: Option<Sealer>) -> Result<PgStorage, StorageError> {
        let storage = PgStorage::start(url, options, sealer)?;
        storage.block_within(Some(MIGRATION_TIMEOUT), storage.migrate())?;
        Ok(storage)
    }

    /// Creates the schema `schema` (lower-case letters, digits and `_`) in
    /// the database at `url` (a `postgres://` URL) if it is missing, and
    /// returns `url` with that schema as the connections' search path:
    /// several clinics' servers, or tests, each in their own schema of one
    /// database.
    ///
    /// # Errors
    /// [`StorageError::Database`] for a bad name or URL, and the errors of
    /// [`PgStorage::connect`].
    pub fn url_with_schema(url: &str, schema: &str, options: &PgOptions) -> Result<String, StorageError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase())
            && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StorageError::Database("a schema needs a postgres:// URL and a lower-case name".into()));
        }
        let storage = PgStorage::start(url, &PgOptions { pool_size: 1, ..options.clone() }, None)?;
        storage.block(async {
            let client = storage.client().await?;
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await?;
            Ok(())
        })?;
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(format!("{url}{separator}options=-c%20search_path%3D{schema}"))
    }

    /// A storage on `url` whose schema is not touched yet.
    fn start(url: &str, options: &PgOptions, sealer: Option<Sealer>) -> Result<PgStorage, StorageError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|_| StorageError::Database("the database URL is not a PostgreSQL connection string".into()))?;
        // Bounded connects (unless the URL sets its own timeout), and TCP
        // keepalives after 30 s idle, so that a dead peer is noticed.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(DRIVER_THREADS)
            .thread_name("katcore-pg")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Database(format!("cannot start the database driver: {e}")))?;
        let tls = tls_connector(options.ca_file.as_deref())?;
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = {
            let _context = runtime.enter();
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(POOL_WAIT))
                .build()
                .map_err(|e| StorageError::Database(format!("cannot build the connection pool: {e}")))?
        };
        Ok(PgStorage { runtime: Some(runtime), pool, sealer })
    }

    /// Applies the migrations this build has and the database lacks, one
    /// instance at a time.
    async fn migrate(&self) -> Result<(), StorageError> {
        let mut client = self.client().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let outcome = async {
            let tracked: bool =
                client.query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL", &[]).await?.get(0);
            let newest: Option<i32> = if tracked {
                client.query_one("SELECT max(version) FROM refinery_schema_history", &[]).await?.get(0)
            } else {
                None
            };
            if let Some(found) = newest.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > PG_VERSION) {
                return Err(StorageError::TooNew { found, supported: PG_VERSION });
            }
            embedded::migrations::runner()
                .run_async(&mut **client)
                .await
                .map_err(|e| StorageError::Database(format!("migrating the database failed: {e}")))?;
            Ok(())
        }
        .await;
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        outcome
    }

    /// Waits for `future` on the calling thread, with the driver's runtime
    /// as the context for what it spawns and its timers. The connections'
    /// I/O runs on the driver's threads, so this works on any thread: the
    /// server's blocking threads, `katctl`, and a test's async body (where
    /// it blocks that thread, as every storage call does).
    pub(super) fn block<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        self.block_within(Some(CALL_TIMEOUT), future)
    }

    /// [`PgStorage::block`] within `limit` (`None`: a copy, whose length is
    /// the size of what it copies).
    pub(super) fn block_within<T>(
        &self,
        limit: Option<Duration>,
        future: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let Some(runtime) = &self.runtime else {
            return Err(StorageError::Unavailable("the database driver has stopped".into()));
        };
        let _context = runtime.enter();
        futures_executor::block_on(async {
            let Some(limit) = limit else { return future.await };
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result,
                Err(_) => {
                    Err(StorageError::Unavailable(format!("the database did not answer within {} s", limit.as_secs())))
                }
            }
        })
    }

    pub(super) async fn client(&self) -> Result<Object, StorageError> {
        Ok(self.pool.get().await?)
    }

    pub(super) fn sealer(&self) -> Result<&Sealer, StorageError> {
        self.sealer.as_ref().ok_or_else(|| {
            StorageError::RecordKey("records need the record key; this storage was opened without one".into())
        })
    }

    /// Runs one statement that changes rows, in its own transaction.
    pub(super) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StorageError> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
    }

    /// The rows of one query.
    pub(super) fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StorageError> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query(&statement, params).await?)
        })
    }

    /// The row of a query that returns at most one.
    pub(super) fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, StorageError> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.query_opt(&statement, params).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_schema_name_on_a_postgres_url_is_taken() {
        // Refused before connecting: a name that could end the statement, or not a URL.
        for (url, schema) in [
            ("postgres://u@127.0.0.1:1/db", "t; DROP TABLE clients"),
            ("postgres://u@127.0.0.1:1/db", "Upper"),
            ("postgres://u@127.0.0.1:1/db", ""),
            ("host=127.0.0.1 dbname=db", "fine"),
        ] {
            let error = PgStorage::url_with_schema(url, schema, &PgOptions::default()).unwrap_err();
            assert!(matches!(error, StorageError::Database(ref m) if m.contains("lower-case")), "{schema}: {error}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("katcore-pg-ca-{}", katcore::record::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let error = tls_connector(Some(&missing)).err().expect("a missing file is refused");
        assert!(error.to_string().contains("missing.pem"), "{error}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = tls_connector(Some(&empty)).err().expect("a file without a certificate is refused");
        assert!(error.to_string().contains("no usable CA certificate"), "{error}");
        assert!(tls_connector(None).is_ok(), "the public roots");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
