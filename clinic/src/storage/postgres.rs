//! [`ClinicStorage`] on PostgreSQL, for several server instances on one
//! database (`--database-url postgres://…`, docs/deployment.md).
//!
//! The driver is `tokio-postgres` with a `deadpool-postgres` pool. The
//! storage trait is synchronous (the server calls it on blocking threads),
//! so [`PgStorage`] owns a small Tokio runtime of its own that drives the
//! connections; each method blocks its caller on one short transaction
//! there. That keeps the driver's tasks off the server's runtime, and lets
//! `katctl` use the same storage without a runtime of its own.
//!
//! The schema is applied by refinery (`migrations/postgres`, history in
//! `refinery_schema_history`) under an advisory lock, so instances starting
//! together migrate once; a database migrated by a newer server is refused.
//!
//! What several instances need, and how each is kept correct here:
//!
//! - **A record's changes** are numbered (seq) per client. An append names
//!   the last seq its writer's replica holds, takes the client's row lock
//!   (held until commit) and is stored only if that is still the record's
//!   last seq. An instance that lost the race gets
//!   [`StorageError::Conflict`], reloads the record and merges again
//!   (`crate::replica`): nothing is lost, and alerts, keyed by the record's
//!   item, are raised once (`ON CONFLICT DO NOTHING`).
//! - **Enrollment codes** are redeemed by one `UPDATE … RETURNING`: a code
//!   row is locked by the first redeemer, and the second sees it used.
//! - **Revocation, sign-in sessions and packs** live only here; no instance
//!   caches them.
//! - **Failed attempts** are counted per address and minute in
//!   `auth_failures`, shared by every instance ([`ClinicStorage::count_failure`]).
//!
//! Connections use TLS whenever the server offers it, verified against
//! [`PgOptions::ca_file`] or the public web's roots; every call is bounded
//! in time (`CALL_TIMEOUT`), so a database that stops answering costs a
//! `503`, never a request held forever.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::sealing::{RecordKey, Sealed, Sealer};
use super::{
    urgent_kind_from_name, urgent_kind_name, ActorOwner, Alert, Client, ClientSummary, Clinic, ClinicStorage,
    Clinician, ClinicianLogin, Device, NewDevice, PlannedSession, PublishOutcome, RecordUpdate, SecretHash,
    StorageError, StoredDocument, StoredPack, WebSession,
};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// The schema version this build writes (the newest migration's number).
pub(crate) const PG_VERSION: u32 = 1;

/// The advisory lock taken while migrating (`"katcore"` in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6174_636f_7265;

/// Connections the pool opens by default.
pub const DEFAULT_POOL_SIZE: usize = 16;

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

/// How to connect to PostgreSQL, beyond the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections the pool may open.
    pub pool_size: usize,
    /// PEM certificates of the authorities the database's TLS certificate
    /// must chain to; `None` trusts the public web's roots (Mozilla's, as
    /// compiled in). TLS is used whenever the server offers it (the URL's
    /// `sslmode`: `prefer`, the default; `require` refuses a server
    /// without it; `disable` never asks), and its certificate is always
    /// verified, host name included.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions { pool_size: DEFAULT_POOL_SIZE, ca_file: None }
    }
}

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

/// The PostgreSQL storage. See the module documentation.
pub struct PgStorage {
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// Seals and opens record blobs; `None` when opened without a record key.
    sealer: Option<Sealer>,
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
    fn block<T>(&self, future: impl std::future::Future<Output = Result<T, StorageError>>) -> Result<T, StorageError> {
        self.block_within(Some(CALL_TIMEOUT), future)
    }

    /// [`PgStorage::block`] within `limit` (`None`: a copy, whose length is
    /// the size of what it copies).
    fn block_within<T>(
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

    async fn client(&self) -> Result<Object, StorageError> {
        Ok(self.pool.get().await?)
    }

    fn sealer(&self) -> Result<&Sealer, StorageError> {
        self.sealer.as_ref().ok_or_else(|| {
            StorageError::RecordKey("records need the record key; this storage was opened without one".into())
        })
    }

    /// Seals again, under the current key, every record blob sealed under a
    /// previous one; returns how many.
    ///
    /// # Errors
    /// [`StorageError::RecordKey`] when a blob's key was not given.
    pub fn reseal_records(&self) -> Result<u64, StorageError> {
        let sealer = self.sealer()?;
        // A maintenance command over every record: as long as it takes.
        self.block_within(None, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let mut rewritten = 0;
            for (table, select, update) in [
                (
                    Sealed::Change,
                    "SELECT client_id, seq, blob FROM record_changes FOR UPDATE",
                    "UPDATE record_changes SET blob = $3 WHERE client_id = $1 AND seq = $2",
                ),
                (
                    Sealed::Snapshot,
                    "SELECT client_id, through_seq, blob FROM record_snapshots FOR UPDATE",
                    "UPDATE record_snapshots SET blob = $3 WHERE client_id = $1 AND through_seq = $2",
                ),
            ] {
                for row in tx.query(select, &[]).await? {
                    let (client_id, seq, blob): (String, i64, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
                    if let Some(sealed) = sealer.reseal(table, &client_id, seq, &blob)? {
                        tx.execute(update, &[&client_id, &seq, &sealed]).await?;
                        rewritten += 1;
                    }
                }
            }
            tx.commit().await?;
            Ok(rewritten)
        })
    }

    /// Copies every row of the SQLite database `source` (schema version 4;
    /// open it with [`super::SqliteStorage::open`], with its server
    /// stopped) into this database, which must hold no clinic yet, in one
    /// transaction: tokens, codes and passwords stay valid (their hashes are
    /// copied), record blobs are copied still sealed (the server goes on
    /// with the same record key), and alerts keep their acknowledgements.
    /// Devices notice nothing but the new address, if it changed.
    ///
    /// # Errors
    /// [`StorageError::Database`] when this database already holds a
    /// clinic or a row does not read; nothing is copied then.
    pub fn copy_from_sqlite(&self, source: &super::SqliteStorage) -> Result<CopyReport, StorageError> {
        self.block_within(None, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let clinics: i64 = tx.query_one("SELECT count(*) FROM clinics", &[]).await?.get(0);
            if clinics > 0 {
                return Err(StorageError::Database(
                    "the PostgreSQL database already holds clinics: copy into an empty one".into(),
                ));
            }
            let mut report = CopyReport::default();
            for (table, columns) in COPIED_TABLES {
                let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
                let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let insert = tx
                    .prepare(&format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.join(", "),
                        placeholders.join(", ")
                    ))
                    .await?;
                let mut after = 0;
                let mut copied = 0u64;
                loop {
                    let rows = source.table_rows(table, &names, after, COPY_BATCH)?;
                    let Some((last, _)) = rows.last() else { break };
                    after = *last;
                    for (_, values) in rows {
                        let params = columns
                            .iter()
                            .zip(values)
                            .map(|((_, kind), value)| kind.param(value))
                            .collect::<Result<Vec<_>, _>>()?;
                        let refs: Vec<&(dyn ToSql + Sync)> =
                            params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                        tx.execute(&insert, &refs).await?;
                        copied += 1;
                    }
                }
                report.tables.push((table.to_owned(), copied));
            }
            tx.commit().await?;
            Ok(report)
        })
    }

    /// Runs one statement that changes rows, in its own transaction.
    fn execute(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<u64, StorageError> {
        self.block(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await?;
            Ok(client.execute(&statement, params).await?)
        })
    }

    /// The rows of one query.
    fn query(
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
    fn query_opt(
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

/// What [`PgStorage::copy_from_sqlite`] copied: rows per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Each table, in the order copied, and its rows.
    pub tables: Vec<(String, u64)>,
}

/// The PostgreSQL type of a copied column.
#[derive(Clone, Copy)]
enum Column {
    Text,
    Int,
    Blob,
    /// SQLite's 0/1.
    Bool,
}

impl Column {
    /// `value` (from SQLite) as a parameter of this type; NULL stays NULL.
    fn param(self, value: rusqlite::types::Value) -> Result<Box<dyn ToSql + Sync + Send>, StorageError> {
        use rusqlite::types::Value;
        Ok(match (self, value) {
            (Column::Text, Value::Null) => Box::new(None::<String>),
            (Column::Int, Value::Null) => Box::new(None::<i64>),
            (Column::Blob, Value::Null) => Box::new(None::<Vec<u8>>),
            (Column::Bool, Value::Null) => Box::new(None::<bool>),
            (Column::Text, Value::Text(text)) => Box::new(text),
            (Column::Int, Value::Integer(n)) => Box::new(n),
            (Column::Blob, Value::Blob(bytes)) => Box::new(bytes),
            (Column::Bool, Value::Integer(n)) => Box::new(n != 0),
            _ => return Err(StorageError::Corrupt("a SQLite value is not of its column's type")),
        })
    }
}

/// Rows copied per read from SQLite (record blobs may be megabytes each).
const COPY_BATCH: usize = 64;

/// Every table of the schema with a row worth keeping, parents first, and
/// its columns (`auth_failures` and `readiness_probe` are transient).
const COPIED_TABLES: [(&str, &[(&str, Column)]); 11] = {
    use Column::{Blob, Bool, Int, Text};
    [
        ("clinics", &[("id", Text), ("name", Text), ("pack_public_key", Blob), ("created_at", Int)]),
        (
            "clinicians",
            &[
                ("id", Text),
                ("clinic_id", Text),
                ("display_name", Text),
                ("token_hash", Blob),
                ("revoked", Bool),
                ("created_at", Int),
                ("login", Text),
                ("password_hash", Text),
            ],
        ),
        (
            "clients",
            &[("id", Text), ("clinic_id", Text), ("label", Text), ("planned_sessions", Text), ("created_at", Int)],
        ),
        (
            "enrollment_codes",
            &[("code_hash", Blob), ("client_id", Text), ("created_at", Int), ("expires_at", Int), ("used_at", Int)],
        ),
        (
            "devices",
            &[
                ("id", Text),
                ("client_id", Text),
                ("label", Text),
                ("token_hash", Blob),
                ("enrolled_at", Int),
                ("last_sync_at", Int),
                ("revoked_at", Int),
                ("pack_version", Int),
            ],
        ),
        ("record_snapshots", &[("client_id", Text), ("through_seq", Int), ("blob", Blob)]),
        ("record_changes", &[("client_id", Text), ("seq", Int), ("blob", Blob)]),
        (
            "alerts",
            &[
                ("id", Text),
                ("client_id", Text),
                ("urgent_key", Text),
                ("kind", Text),
                ("at", Int),
                ("raised_at", Int),
                ("acknowledged_at", Int),
                ("acknowledged_by", Text),
            ],
        ),
        ("record_actors", &[("client_id", Text), ("actor", Text), ("device_id", Text), ("first_seen_at", Int)]),
        (
            "packs",
            &[
                ("clinic_id", Text),
                ("version", Int),
                ("pack_id", Text),
                ("signed_json", Text),
                ("etag", Text),
                ("published_at", Int),
            ],
        ),
        (
            "web_sessions",
            &[
                ("id_hash", Blob),
                ("clinician_id", Text),
                ("csrf_token", Text),
                ("created_at", Int),
                ("last_seen_at", Int),
                ("expires_at", Int),
            ],
        ),
    ]
};

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn time(millis: i64) -> Result<DateTime<Utc>, StorageError> {
    DateTime::from_timestamp_millis(millis).ok_or(StorageError::Corrupt("a timestamp is out of range"))
}

fn optional_time(millis: Option<i64>) -> Result<Option<DateTime<Utc>>, StorageError> {
    millis.map(time).transpose()
}

fn version(value: i64) -> Result<u32, StorageError> {
    u32::try_from(value).map_err(|_| StorageError::Corrupt("a pack version is out of range"))
}

fn clinician_row(row: &Row) -> Clinician {
    Clinician { id: row.get(0), clinic_id: row.get(1), display_name: row.get(2), revoked: row.get(3) }
}

const DEVICE_COLUMNS: &str = "id, client_id, label, enrolled_at, last_sync_at, revoked_at, pack_version";

fn device_row(row: &Row) -> Result<Device, StorageError> {
    Ok(Device {
        id: row.get(0),
        client_id: row.get(1),
        label: row.get(2),
        enrolled_at: time(row.get(3))?,
        last_sync_at: optional_time(row.get(4))?,
        revoked_at: optional_time(row.get(5))?,
        pack_version: row.get::<_, Option<i64>>(6).map(version).transpose()?,
    })
}

const ALERT_COLUMNS: &str =
    "a.id, a.client_id, a.urgent_key, a.kind, a.at, a.raised_at, a.acknowledged_at, a.acknowledged_by";

fn alert_row(row: &Row) -> Result<Alert, StorageError> {
    let kind: String = row.get(3);
    Ok(Alert {
        id: row.get(0),
        client_id: row.get(1),
        key: row.get(2),
        kind: urgent_kind_from_name(&kind).ok_or(StorageError::Corrupt("unknown alert kind"))?,
        at: time(row.get(4))?,
        raised_at: time(row.get(5))?,
        acknowledged_at: optional_time(row.get(6))?,
        acknowledged_by: row.get(7),
    })
}

fn pack_row(row: &Row) -> Result<StoredPack, StorageError> {
    Ok(StoredPack { pack_id: row.get(0), version: version(row.get(1))?, signed_json: row.get(2), etag: row.get(3) })
}

/// The highest seq assigned to a client's record (`$1`): its last change,
/// or the snapshot's `through_seq` once every change was compacted away.
const LAST_SEQ: &str = "SELECT greatest(
        COALESCE((SELECT max(seq) FROM record_changes WHERE client_id = $1), 0),
        COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = $1), 0))";

/// Takes the client's row lock (`$1`), held until commit: appends to one
/// record are serialised across instances. Sets the planned sessions when
/// `$2` is not NULL.
const LOCK_CLIENT: &str = "UPDATE clients SET planned_sessions = COALESCE($2, planned_sessions) WHERE id = $1";

/// Stores change `$2 + 1` of client `$1`'s record (blob `$3`) only if `$2`
/// is still its last seq: an append made from a stale copy stores nothing.
const APPEND_CHANGE: &str = "INSERT INTO record_changes (client_id, seq, blob)
     SELECT $1, $2::BIGINT + 1, $3
     WHERE greatest(
         COALESCE((SELECT max(seq) FROM record_changes WHERE client_id = $1), 0),
         COALESCE((SELECT through_seq FROM record_snapshots WHERE client_id = $1), 0)) = $2";

/// Raises an alert per urgent item (ids `$2`, keys `$3`, kinds `$4`, times
/// `$5`, raised at `$6`) of client `$1` not alerted yet.
const RAISE_ALERTS: &str = "INSERT INTO alerts (id, client_id, urgent_key, kind, at, raised_at)
     SELECT u.id, $1, u.urgent_key, u.kind, u.at, $6
     FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[]) AS u (id, urgent_key, kind, at)
     ON CONFLICT (client_id, urgent_key) DO NOTHING";

/// Binds the actors `$2` first seen in client `$1`'s record to device `$3`
/// (NULL: the clinic) at `$4`.
const BIND_ACTORS: &str = "INSERT INTO record_actors (client_id, actor, device_id, first_seen_at)
     SELECT $1, u.actor, $3, $4 FROM unnest($2::TEXT[]) AS u (actor)
     ON CONFLICT (client_id, actor) DO NOTHING";

/// The pack a client's record is read with (`$1` the client, `$2` the
/// assigned version or NULL): that version if published, else the newest.
const CLIENT_PACK: &str = "FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id WHERE c.id = $1
     ORDER BY (p.version = $2) IS TRUE DESC, p.version DESC LIMIT 1";

impl ClinicStorage for PgStorage {
    fn ping(&self) -> Result<(), StorageError> {
        self.query_opt("SELECT 1", &[]).map(|_| ())
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        let now = ms(Utc::now());
        self.execute(
            "INSERT INTO readiness_probe (id, checked_at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
            &[&now],
        )
        .map(|_| ())
    }

    fn insert_clinic(&self, clinic: &Clinic, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clinics (id, name, pack_public_key, created_at) VALUES ($1, $2, $3, $4)",
            &[&clinic.id, &clinic.name, &clinic.pack_public_key.as_slice(), &ms(at)],
        )
        .map(|_| ())
    }

    fn clinic(&self, id: &str) -> Result<Option<Clinic>, StorageError> {
        self.query_opt("SELECT id, name, pack_public_key FROM clinics WHERE id = $1", &[&id])?
            .map(|row| {
                let key: Vec<u8> = row.get(2);
                let pack_public_key = <[u8; 32]>::try_from(key.as_slice())
                    .map_err(|_| StorageError::Corrupt("the public key is not 32 bytes"))?;
                Ok(Clinic { id: row.get(0), name: row.get(1), pack_public_key })
            })
            .transpose()
    }

    fn insert_clinician(
        &self,
        clinician: &Clinician,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clinicians (id, clinic_id, display_name, token_hash, revoked, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &clinician.id,
                &clinician.clinic_id,
                &clinician.display_name,
                &token_hash.as_slice(),
                &clinician.revoked,
                &ms(at),
            ],
        )
        .map(|_| ())
    }

    fn clinician_by_token(&self, token_hash: &SecretHash) -> Result<Option<Clinician>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT id, clinic_id, display_name, revoked FROM clinicians WHERE token_hash = $1",
                &[&token_hash.as_slice()],
            )?
            .map(|row| clinician_row(&row)))
    }

    fn set_clinician_password(
        &self,
        clinician_id: &str,
        login: &str,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let changed = tx
                .execute(
                    "UPDATE clinicians SET login = $2, password_hash = $3 WHERE id = $1",
                    &[&clinician_id, &login, &password_hash],
                )
                .await?;
            // A new password ends the sessions signed in with the old one.
            tx.execute("DELETE FROM web_sessions WHERE clinician_id = $1", &[&clinician_id]).await?;
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    fn clinician_by_login(&self, login: &str) -> Result<Option<ClinicianLogin>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT id, clinic_id, display_name, revoked, password_hash FROM clinicians
                 WHERE login = $1 AND password_hash IS NOT NULL",
                &[&login],
            )?
            .map(|row| ClinicianLogin { clinician: clinician_row(&row), password_hash: row.get(4) }))
    }

    fn insert_web_session(&self, session: &WebSession) -> Result<(), StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("DELETE FROM web_sessions WHERE expires_at <= $1", &[&ms(session.created_at)]).await?;
            tx.execute(
                "INSERT INTO web_sessions (id_hash, clinician_id, csrf_token, created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &session.id_hash.as_slice(),
                    &session.clinician_id,
                    &session.csrf_token,
                    &ms(session.created_at),
                    &ms(session.last_seen_at),
                    &ms(session.expires_at),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn web_session(
        &self,
        id_hash: &SecretHash,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<(WebSession, Clinician)>, StorageError> {
        let Some(row) = self.query_opt(
            "SELECT s.clinician_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at,
                    c.clinic_id, c.display_name, c.revoked
             FROM web_sessions s JOIN clinicians c ON c.id = s.clinician_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND NOT c.revoked",
            &[&id_hash.as_slice(), &ms(now), &ms(now - idle)],
        )?
        else {
            return Ok(None);
        };
        let session = WebSession {
            id_hash: *id_hash,
            clinician_id: row.get(0),
            csrf_token: row.get(1),
            created_at: time(row.get(2))?,
            last_seen_at: time(row.get(3))?,
            expires_at: time(row.get(4))?,
        };
        let clinician = Clinician {
            id: session.clinician_id.clone(),
            clinic_id: row.get(5),
            display_name: row.get(6),
            revoked: row.get(7),
        };
        if now - session.last_seen_at >= chrono::Duration::minutes(1) {
            self.execute(
                "UPDATE web_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE id_hash = $1",
                &[&id_hash.as_slice(), &ms(now)],
            )?;
        }
        Ok(Some((session, clinician)))
    }

    fn delete_web_session(&self, id_hash: &SecretHash) -> Result<(), StorageError> {
        self.execute("DELETE FROM web_sessions WHERE id_hash = $1", &[&id_hash.as_slice()]).map(|_| ())
    }

    fn insert_client(&self, client: &Client, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO clients (id, clinic_id, label, created_at) VALUES ($1, $2, $3, $4)",
            &[&client.id, &client.clinic_id, &client.label, &ms(at)],
        )
        .map(|_| ())
    }

    fn client(&self, id: &str) -> Result<Option<Client>, StorageError> {
        Ok(self.query_opt("SELECT id, clinic_id, label FROM clients WHERE id = $1", &[&id])?.map(|row| Client {
            id: row.get(0),
            clinic_id: row.get(1),
            label: row.get(2),
        }))
    }

    fn client_summaries(&self, clinic_id: &str) -> Result<Vec<ClientSummary>, StorageError> {
        self.query(
            "SELECT c.id, c.label, c.planned_sessions,
                    (SELECT max(d.last_sync_at) FROM devices d WHERE d.client_id = c.id),
                    (SELECT count(*) FROM alerts a WHERE a.client_id = c.id AND a.acknowledged_at IS NULL)
             FROM clients c WHERE c.clinic_id = $1 ORDER BY c.created_at, c.id",
            &[&clinic_id],
        )?
        .iter()
        .map(|row| {
            let planned: String = row.get(2);
            Ok(ClientSummary {
                id: row.get(0),
                label: row.get(1),
                planned_sessions: serde_json::from_str::<Vec<PlannedSession>>(&planned)
                    .map_err(|_| StorageError::Corrupt("planned sessions are not valid JSON"))?,
                last_sync: optional_time(row.get(3))?,
                open_alerts: u32::try_from(row.get::<_, i64>(4)).unwrap_or(u32::MAX),
            })
        })
        .collect()
    }

    fn insert_enrollment_code(
        &self,
        code_hash: &SecretHash,
        client_id: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.execute(
            "INSERT INTO enrollment_codes (code_hash, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&code_hash.as_slice(), &client_id, &ms(created_at), &ms(expires_at)],
        )
        .map(|_| ())
    }

    fn redeem_enrollment_code(
        &self,
        code_hash: &SecretHash,
        device: &NewDevice,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // The row lock this takes makes a concurrent redeemer (on any
            // instance) wait, then see the code used.
            let Some(row) = tx
                .query_opt(
                    "UPDATE enrollment_codes SET used_at = $2
                     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING client_id",
                    &[&code_hash.as_slice(), &ms(now)],
                )
                .await?
            else {
                return Ok(None);
            };
            let client_id: String = row.get(0);
            tx.execute(
                "INSERT INTO devices (id, client_id, label, token_hash, enrolled_at) VALUES ($1, $2, $3, $4, $5)",
                &[&device.id, &client_id, &device.label, &device.token_hash.as_slice(), &ms(now)],
            )
            .await?;
            tx.commit().await?;
            Ok(Some(client_id))
        })
    }

    fn device_by_token(&self, token_hash: &SecretHash) -> Result<Option<Device>, StorageError> {
        self.query_opt(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE token_hash = $1"),
            &[&token_hash.as_slice()],
        )?
        .map(|row| device_row(&row))
        .transpose()
    }

    fn devices(&self, client_id: &str) -> Result<Vec<Device>, StorageError> {
        self.query(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE client_id = $1 ORDER BY enrolled_at, id"),
            &[&client_id],
        )?
        .iter()
        .map(device_row)
        .collect()
    }

    fn revoke_device(&self, clinic_id: &str, device_id: &str, at: DateTime<Utc>) -> Result<bool, StorageError> {
        let found = self.query_opt(
            "UPDATE devices d SET revoked_at = COALESCE(d.revoked_at, $3)
             FROM clients c WHERE c.id = d.client_id AND d.id = $1 AND c.clinic_id = $2
             RETURNING d.id",
            &[&device_id, &clinic_id, &ms(at)],
        )?;
        Ok(found.is_some())
    }

    fn record_device_pack(&self, device_id: &str, version: u32) -> Result<(), StorageError> {
        self.execute(
            "UPDATE devices SET pack_version = $2 WHERE id = $1 AND pack_version IS DISTINCT FROM $2",
            &[&device_id, &i64::from(version)],
        )
        .map(|_| ())
    }

    fn record_device_sync(&self, device_id: &str, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute("UPDATE devices SET last_sync_at = $2 WHERE id = $1", &[&device_id, &ms(at)]).map(|_| ())
    }

    fn load_record(&self, client_id: &str) -> Result<StoredDocument, StorageError> {
        let sealer = self.sealer()?;
        let (snapshot, changes) = self.block(async {
            let mut client = self.client().await?;
            // One snapshot of the database for both reads: a compaction
            // committed between them cannot hide changes.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let snapshot = tx
                .query_opt("SELECT through_seq, blob FROM record_snapshots WHERE client_id = $1", &[&client_id])
                .await?
                .map(|row| (row.get::<_, i64>(0), row.get::<_, Vec<u8>>(1)));
            let through = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
            let changes: Vec<(i64, Vec<u8>)> = tx
                .query(
                    "SELECT seq, blob FROM record_changes WHERE client_id = $1 AND seq > $2 ORDER BY seq",
                    &[&client_id, &through],
                )
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            tx.commit().await?;
            Ok((snapshot, changes))
        })?;
        let (snapshot_through_seq, snapshot) = match snapshot {
            Some((seq, blob)) => (seq, Some(sealer.open(Sealed::Snapshot, client_id, seq, &blob)?)),
            None => (0, None),
        };
        let changes = changes
            .into_iter()
            .map(|(seq, blob)| Ok((seq, sealer.open(Sealed::Change, client_id, seq, &blob)?)))
            .collect::<Result<_, StorageError>>()?;
        Ok(StoredDocument { snapshot, snapshot_through_seq, changes })
    }

    fn record_seq(&self, client_id: &str) -> Result<i64, StorageError> {
        Ok(self.query_opt(LAST_SEQ, &[&client_id])?.map_or(0, |row| row.get(0)))
    }

    fn append_record_change(&self, client_id: &str, update: &RecordUpdate<'_>) -> Result<i64, StorageError> {
        let planned = update
            .planned_sessions
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Database(format!("cannot encode planned sessions: {e}")))?;
        let sealer = self.sealer()?;
        let expected = update.expected_seq;
        let next = expected.checked_add(1).ok_or(StorageError::Corrupt("record change numbers are exhausted"))?;
        let blob = sealer.seal(Sealed::Change, client_id, next, update.change)?;
        let at = ms(update.at);
        let alert_ids: Vec<String> = update.urgent.iter().map(|_| katcore::record::new_id()).collect();
        let alert_keys: Vec<&str> = update.urgent.iter().map(|item| item.key.as_str()).collect();
        let alert_kinds: Vec<&str> = update.urgent.iter().map(|item| urgent_kind_name(item.kind)).collect();
        let alert_times: Vec<i64> = update.urgent.iter().map(|item| ms(item.at)).collect();
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let lock = tx.prepare_cached(LOCK_CLIENT).await?;
            let append = tx.prepare_cached(APPEND_CHANGE).await?;
            let synced = tx.prepare_cached("UPDATE devices SET last_sync_at = $2 WHERE id = $1").await?;
            let raise = tx.prepare_cached(RAISE_ALERTS).await?;
            let bind = tx.prepare_cached(BIND_ACTORS).await?;
            // Sent together (tokio-postgres pipelines what is awaited
            // together) and run in this order: the client's row lock first,
            // so the append's check sees every append committed before it.
            let lock_params: [&(dyn ToSql + Sync); 2] = [&client_id, &planned];
            let append_params: [&(dyn ToSql + Sync); 3] = [&client_id, &expected, &blob];
            let synced_params: [&(dyn ToSql + Sync); 2] = [&update.synced_device, &at];
            let raise_params: [&(dyn ToSql + Sync); 6] =
                [&client_id, &alert_ids, &alert_keys, &alert_kinds, &alert_times, &at];
            let bind_params: [&(dyn ToSql + Sync); 4] = [&client_id, &update.new_actors, &update.synced_device, &at];
            let (locked, appended, synced, raised, bound) = tokio::join!(
                tx.execute(&lock, &lock_params),
                tx.execute(&append, &append_params),
                tx.execute(&synced, &synced_params),
                tx.execute(&raise, &raise_params),
                tx.execute(&bind, &bind_params),
            );
            if locked? != 1 {
                return Err(StorageError::Database("no such client".into()));
            }
            if appended? != 1 {
                // Dropping the transaction rolls the other statements back.
                return Err(StorageError::Conflict);
            }
            let raised = raised?;
            synced?;
            bound?;
            tx.commit().await?;
            if raised > 0 {
                tracing::info!(client_id, raised, "alerts raised");
            }
            Ok(next)
        })
    }

    fn actor_owner(&self, client_id: &str, actor: &str) -> Result<Option<ActorOwner>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT device_id FROM record_actors WHERE client_id = $1 AND actor = $2",
                &[&client_id, &actor],
            )?
            .map(|row| row.get::<_, Option<String>>(0).map_or(ActorOwner::Clinic, ActorOwner::Device)))
    }

    fn client_pack(&self, client_id: &str, version: Option<u32>) -> Result<Option<StoredPack>, StorageError> {
        let version = version.map(i64::from);
        self.query_opt(
            &format!("SELECT p.pack_id, p.version, p.signed_json, p.etag {CLIENT_PACK}"),
            &[&client_id, &version],
        )?
        .map(|row| pack_row(&row))
        .transpose()
    }

    fn client_pack_etag(&self, client_id: &str, version: Option<u32>) -> Result<Option<String>, StorageError> {
        let version = version.map(i64::from);
        Ok(self.query_opt(&format!("SELECT p.etag {CLIENT_PACK}"), &[&client_id, &version])?.map(|row| row.get(0)))
    }

    fn compact_record(&self, client_id: &str, snapshot: &[u8], through_seq: i64) -> Result<(), StorageError> {
        let sealed = self.sealer()?.seal(Sealed::Snapshot, client_id, through_seq, snapshot)?;
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT 1 FROM clients WHERE id = $1 FOR UPDATE", &[&client_id]).await?;
            let last: i64 = tx.query_one(LAST_SEQ, &[&client_id]).await?.get(0);
            let stored: i64 = tx
                .query_opt("SELECT through_seq FROM record_snapshots WHERE client_id = $1", &[&client_id])
                .await?
                .map_or(0, |row| row.get(0));
            if through_seq < stored || through_seq > last {
                return Err(StorageError::Database(
                    "a snapshot must cover the stored one and no unknown change".into(),
                ));
            }
            tx.execute(
                "INSERT INTO record_snapshots (client_id, through_seq, blob) VALUES ($1, $2, $3)
                 ON CONFLICT (client_id) DO UPDATE SET through_seq = excluded.through_seq, blob = excluded.blob",
                &[&client_id, &through_seq, &sealed],
            )
            .await?;
            tx.execute("DELETE FROM record_changes WHERE client_id = $1 AND seq <= $2", &[&client_id, &through_seq])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn alerts(&self, clinic_id: &str, open_only: bool) -> Result<Vec<Alert>, StorageError> {
        self.query(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE c.clinic_id = $1 AND (NOT $2 OR a.acknowledged_at IS NULL)
                 ORDER BY a.acknowledged_at IS NOT NULL, a.at DESC, a.raised_at DESC, a.id"
            ),
            &[&clinic_id, &open_only],
        )?
        .iter()
        .map(alert_row)
        .collect()
    }

    fn alerts_to_show(
        &self,
        clinic_id: &str,
        client_id: Option<&str>,
        acknowledged: usize,
    ) -> Result<Vec<Alert>, StorageError> {
        let limit = i64::try_from(acknowledged).unwrap_or(i64::MAX);
        self.query(
            &format!(
                "(SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                     WHERE c.clinic_id = $1 AND ($2::TEXT IS NULL OR a.client_id = $2) AND a.acknowledged_at IS NULL)
                 UNION ALL
                 (SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                     WHERE c.clinic_id = $1 AND ($2::TEXT IS NULL OR a.client_id = $2) AND a.acknowledged_at IS NOT NULL
                     ORDER BY a.acknowledged_at DESC, a.id LIMIT $3)"
            ),
            &[&clinic_id, &client_id, &limit],
        )?
        .iter()
        .map(alert_row)
        .collect()
    }

    fn alert(&self, clinic_id: &str, alert_id: &str) -> Result<Option<Alert>, StorageError> {
        self.query_opt(
            &format!(
                "SELECT {ALERT_COLUMNS} FROM alerts a JOIN clients c ON c.id = a.client_id
                 WHERE a.id = $1 AND c.clinic_id = $2"
            ),
            &[&alert_id, &clinic_id],
        )?
        .map(|row| alert_row(&row))
        .transpose()
    }

    fn acknowledge_alert(&self, alert_id: &str, by: &str, at: DateTime<Utc>) -> Result<(), StorageError> {
        self.execute(
            "UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1 AND acknowledged_at IS NULL",
            &[&alert_id, &ms(at), &by],
        )
        .map(|_| ())
    }

    fn current_pack(&self, clinic_id: &str) -> Result<Option<StoredPack>, StorageError> {
        self.query_opt(
            "SELECT pack_id, version, signed_json, etag FROM packs WHERE clinic_id = $1 ORDER BY version DESC LIMIT 1",
            &[&clinic_id],
        )?
        .map(|row| pack_row(&row))
        .transpose()
    }

    fn current_pack_etag_for_client(&self, client_id: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .query_opt(
                "SELECT p.etag FROM packs p JOIN clients c ON c.clinic_id = p.clinic_id
                 WHERE c.id = $1 ORDER BY p.version DESC LIMIT 1",
                &[&client_id],
            )?
            .map(|row| row.get(0)))
    }

    fn publish_pack(
        &self,
        clinic_id: &str,
        pack: &StoredPack,
        at: DateTime<Utc>,
    ) -> Result<PublishOutcome, StorageError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            // The clinic's row lock orders concurrent publishes.
            tx.execute("SELECT 1 FROM clinics WHERE id = $1 FOR UPDATE", &[&clinic_id]).await?;
            let current: Option<i64> =
                tx.query_one("SELECT max(version) FROM packs WHERE clinic_id = $1", &[&clinic_id]).await?.get(0);
            if let Some(current) = current.filter(|current| *current >= i64::from(pack.version)) {
                return Ok(PublishOutcome::NotNewer { current: version(current)? });
            }
            tx.execute(
                "INSERT INTO packs (clinic_id, version, pack_id, signed_json, etag, published_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&clinic_id, &i64::from(pack.version), &pack.pack_id, &pack.signed_json, &pack.etag, &ms(at)],
            )
            .await?;
            tx.commit().await?;
            Ok(PublishOutcome::Published)
        })
    }

    fn count_failure(&self, address: &[u8; 8], at: DateTime<Utc>) -> Result<Option<u32>, StorageError> {
        let window = at.timestamp().div_euclid(60) * 60;
        let row = self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_one(
                    "INSERT INTO auth_failures (address, window_start, failures) VALUES ($1, $2, 1)
                     ON CONFLICT (address, window_start) DO UPDATE SET failures = auth_failures.failures + 1
                     RETURNING failures",
                    &[&address.as_slice(), &window],
                )
                .await?;
            let failures: i32 = row.get(0);
            if failures == 1 {
                // A new window for this address: forget windows that ended.
                tx.execute("DELETE FROM auth_failures WHERE window_start < $1", &[&(window - 60)]).await?;
            }
            tx.commit().await?;
            Ok(failures)
        })?;
        Ok(Some(u32::try_from(row).unwrap_or(0)))
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
