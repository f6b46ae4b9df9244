//! A fresh, empty clinic database for tests, benchmarks and load runs, on
//! the backend the environment names: a SQLite file by default, or, when
//! [`TEST_POSTGRES_ENV`] holds a `postgres://` URL, a new schema of that
//! PostgreSQL database (`scripts/postgres-test.sh` starts a cluster and
//! runs the clinic's suites this way). One suite, both backends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::bootstrap::{init_clinic_with_new_key, BootstrapError, InitOutput};
use crate::config::Config;
use crate::storage::{ClinicStorage, PgOptions, PgStorage, SqliteStorage, StorageError};

/// The variable naming the PostgreSQL database tests run on (unset: SQLite).
pub const TEST_POSTGRES_ENV: &str = "KATCORE_TEST_POSTGRES";

/// The variable naming the PEM CA file of that database's TLS certificate,
/// when it speaks TLS (`scripts/postgres-test.sh` makes one).
pub const TEST_POSTGRES_CA_ENV: &str = "KATCORE_TEST_POSTGRES_CA";

/// A fresh clinic database. See the module documentation.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    /// The directory of the database's files: the SQLite file and the
    /// record key (only the record key on PostgreSQL).
    dir: PathBuf,
    /// The PostgreSQL URL (with its own schema), if on PostgreSQL.
    url: Option<String>,
    /// The CA file of PostgreSQL's TLS certificate.
    ca_file: Option<PathBuf>,
}

impl TestDatabase {
    /// A fresh database whose files go in `dir` (which must exist): on
    /// PostgreSQL when [`TEST_POSTGRES_ENV`] is set, else `dir/clinic.db`.
    ///
    /// # Errors
    /// The PostgreSQL server cannot be reached or the schema not created.
    pub fn new(dir: &Path) -> Result<TestDatabase, StorageError> {
        match std::env::var(TEST_POSTGRES_ENV).ok().filter(|url| !url.is_empty()) {
            Some(base) => TestDatabase::postgres(&base, dir),
            None => Ok(TestDatabase { dir: dir.to_path_buf(), url: None, ca_file: None }),
        }
    }

    /// A fresh schema of the PostgreSQL database at `base`, with the record
    /// key in `dir` (and its TLS verified with [`TEST_POSTGRES_CA_ENV`]'s CA, if set).
    ///
    /// # Errors
    /// As [`PgStorage::url_with_schema`].
    pub fn postgres(base: &str, dir: &Path) -> Result<TestDatabase, StorageError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let schema = format!("t_{}_{}_{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let ca_file = std::env::var_os(TEST_POSTGRES_CA_ENV).filter(|path| !path.is_empty()).map(PathBuf::from);
        let url = PgStorage::url_with_schema(base, &schema, &PgOptions { pool_size: 1, ca_file: ca_file.clone() })?;
        Ok(TestDatabase { dir: dir.to_path_buf(), url: Some(url), ca_file })
    }

    /// Whether this database is on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.is_some()
    }

    /// The PostgreSQL URL (with its schema), if on PostgreSQL.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The SQLite file (meaningful only when not on PostgreSQL).
    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.join("clinic.db")
    }

    /// [`Config::local`] (loopback, a free port, the record key created if
    /// missing) on this database.
    pub fn config(&self) -> Config {
        match &self.url {
            Some(url) => {
                let mut config = Config::local_postgres(url.clone(), self.dir.join("clinic.db.record-key"));
                config.database_ca.clone_from(&self.ca_file);
                config
            }
            None => Config::local(self.sqlite_path()),
        }
    }

    /// The database opened with its record key (created if missing), as
    /// the server opens it.
    ///
    /// # Errors
    /// As [`crate::open_storage`].
    pub fn open(&self) -> Result<Arc<dyn ClinicStorage>, StorageError> {
        crate::server::open_storage(&self.config())
    }

    /// The database opened without the record key, as `katctl` opens it
    /// for commands that read no record.
    ///
    /// # Errors
    /// As [`SqliteStorage::open`] or [`PgStorage::connect`].
    pub fn open_unsealed(&self) -> Result<Arc<dyn ClinicStorage>, StorageError> {
        Ok(match &self.url {
            Some(url) => Arc::new(PgStorage::connect(url, &PgOptions { pool_size: 2, ca_file: self.ca_file.clone() })?),
            None => Arc::new(SqliteStorage::open(&self.sqlite_path())?),
        })
    }

    /// The `katcore-clinic` command-line arguments that name this database
    /// and its record key (created if missing).
    ///
    /// # Errors
    /// The record key cannot be written.
    pub fn server_args(&self) -> Result<Vec<String>, StorageError> {
        let config = self.config();
        if !config.record_key.exists() {
            crate::storage::RecordKey::generate().write_new(&config.record_key)?;
        }
        let mut args = match &self.url {
            Some(url) => {
                let mut args = vec!["--database-url".to_owned(), url.clone()];
                if let Some(ca) = &self.ca_file {
                    args.extend(["--database-ca".to_owned(), ca.display().to_string()]);
                }
                args
            }
            None => vec!["--db".to_owned(), self.sqlite_path().display().to_string()],
        };
        args.extend(["--record-key".to_owned(), config.record_key.display().to_string()]);
        Ok(args)
    }

    /// A clinic with a fresh pack-signing key pair and its first clinician,
    /// as [`crate::init_clinic`] makes them.
    ///
    /// # Errors
    /// As [`crate::init_clinic`].
    pub fn init_clinic(&self, clinic_name: &str, clinician_name: &str) -> Result<InitOutput, BootstrapError> {
        init_clinic_with_new_key(self.open_unsealed()?.as_ref(), clinic_name, clinician_name)
    }
}
