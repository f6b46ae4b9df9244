//! `katctl clinic …`: bootstrap, upgrade and re-key a clinic server's database.
//!
//! Tokens are printed once, in the JSON output; the database keeps only
//! their SHA-256. Keys are never printed: the record key and a generated
//! pack-signing key are written to new files readable only by their owner.

use std::path::PathBuf;

use clap::Subcommand;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use katcore::pack::parse_verifying_key;
use katcore_clinic::{
    init_clinic_in, upgrade, ClinicStorage, InitOutput, PgOptions, PgStorage, RecordKey, SqliteStorage,
};

use crate::input::to_json;

/// The clinic server's database: a SQLite file or a PostgreSQL URL (one of
/// the two, checked when it is opened, so that the error names both).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Database {
    /// The clinic server's SQLite database.
    #[arg(long, value_name = "PATH", conflicts_with = "database_url")]
    db: Option<PathBuf>,
    /// Or its PostgreSQL database (`postgres://USER@HOST:PORT/DB`), as `katcore-clinic --database-url`.
    #[arg(long, value_name = "URL", env = "KATCORE_CLINIC_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// PEM CA certificates PostgreSQL's TLS certificate must chain to (default: the public web's roots).
    #[arg(long, value_name = "FILE", env = "KATCORE_CLINIC_DATABASE_CA", requires = "database_url")]
    database_ca: Option<PathBuf>,
}

impl Database {
    /// The SQLite file `path`.
    #[cfg(test)]
    fn sqlite(path: &std::path::Path) -> Database {
        Database { db: Some(path.to_path_buf()), database_url: None, database_ca: None }
    }

    /// A small pool (one command, one connection at a time) and the CA file.
    fn pg_options(&self) -> PgOptions {
        PgOptions { pool_size: 2, ca_file: self.database_ca.clone() }
    }

    /// How errors name the database (never the URL: it may hold a password).
    fn name(&self) -> String {
        match &self.db {
            Some(path) => path.display().to_string(),
            None => "the PostgreSQL database".into(),
        }
    }

    /// Opened without the record key (bootstrap commands read no record).
    fn open(&self) -> Result<Box<dyn ClinicStorage>, String> {
        let opened: Result<Box<dyn ClinicStorage>, _> = match (&self.db, &self.database_url) {
            (_, Some(url)) => {
                PgStorage::connect(url, &self.pg_options()).map(|s| Box::new(s) as Box<dyn ClinicStorage>)
            }
            (Some(path), None) => SqliteStorage::open(path).map(|s| Box::new(s) as Box<dyn ClinicStorage>),
            (None, None) => return Err(NO_DATABASE.into()),
        };
        opened.map_err(|e| format!("{}: {e}", self.name()))
    }

    /// Opened with the record key `key` (and `old` keys still to read).
    fn open_sealed(&self, key: &RecordKey, old: &[RecordKey]) -> Result<Sealed, String> {
        let opened = match (&self.db, &self.database_url) {
            (_, Some(url)) => PgStorage::connect_sealed(url, &self.pg_options(), key, old).map(Sealed::Postgres),
            (Some(path), None) => SqliteStorage::open_sealed(path, key, old).map(Sealed::Sqlite),
            (None, None) => return Err(NO_DATABASE.into()),
        };
        opened.map_err(|e| format!("{}: {e}", self.name()))
    }
}

/// What a clinic command without a database says.
const NO_DATABASE: &str =
    "give the clinic server's database: --db PATH (SQLite) or --database-url URL (PostgreSQL; or KATCORE_CLINIC_DATABASE_URL)";

/// A database opened with the record key.
enum Sealed {
    Sqlite(SqliteStorage),
    Postgres(PgStorage),
}

impl Sealed {
    fn storage(&self) -> &dyn ClinicStorage {
        match self {
            Sealed::Sqlite(storage) => storage,
            Sealed::Postgres(storage) => storage,
        }
    }

    fn reseal_records(&self) -> Result<u64, katcore_clinic::StorageError> {
        match self {
            Sealed::Sqlite(storage) => storage.reseal_records(),
            Sealed::Postgres(storage) => storage.reseal_records(),
        }
    }
}

/// Clinic subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ClinicCommand {
    /// Create the database if needed, a clinic with a fresh pack-signing key, and its first clinician.
    Init {
        #[command(flatten)]
        database: Database,
        /// The clinic's name, shown to devices at enrollment.
        #[arg(long)]
        name: String,
        /// The first clinician's display name.
        #[arg(long)]
        clinician: String,
        /// The clinic's pack-signing public key (from `katctl pack keygen`); the private key stays offline.
        #[arg(long, value_name = "FILE", conflicts_with = "signing_key_out")]
        pack_public_key: Option<PathBuf>,
        /// Or: generate the pack-signing pair and write the private key here (PKCS#8 PEM, mode 0600).
        #[arg(long, value_name = "FILE", required_unless_present = "pack_public_key")]
        signing_key_out: Option<PathBuf>,
        /// Create a record key here for the server (`katcore-clinic --record-key`), unless the file exists.
        #[arg(long, value_name = "FILE")]
        record_key_out: Option<PathBuf>,
        /// Also give the clinician this dashboard login; the password is read from standard input.
        #[arg(long)]
        login: Option<String>,
    },
    /// Upgrade a database of an older server: seal its records and take out its private pack-signing keys.
    Upgrade {
        /// The clinic server's SQLite database (stop the server first).
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// The record key to seal with (created if the file does not exist).
        #[arg(long, value_name = "FILE")]
        record_key: PathBuf,
        /// Where each clinic's private pack-signing key is written; take them offline afterwards.
        #[arg(long, value_name = "DIR")]
        signing_keys_out: PathBuf,
    },
    /// Finish a record-key rotation: seal every record blob again under the new key.
    Reseal {
        #[command(flatten)]
        database: Database,
        /// The new record key.
        #[arg(long, value_name = "FILE")]
        record_key: PathBuf,
        /// The key (or keys) being retired.
        #[arg(long, value_name = "FILE", required = true)]
        old_record_key: Vec<PathBuf>,
    },
    /// Create a new record key file (mode 0600), e.g. to rotate keys.
    RecordKey {
        /// The file to create; never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Give a clinician a dashboard sign-in (or a new password): the password is read from standard input.
    Password {
        #[command(flatten)]
        database: Database,
        /// The clinician's id (from `katctl clinic init` or `add-clinician`).
        #[arg(long)]
        clinician: String,
        /// The login they sign in with (case does not matter).
        #[arg(long)]
        login: String,
    },
    /// Export clients' records as FHIR R4 bundles (docs/fhir.md): one client to standard output,
    /// or every client of a clinic to a directory (`<client id>.json` each).
    Fhir {
        #[command(flatten)]
        database: Database,
        /// The record key the server runs with.
        #[arg(long, value_name = "FILE")]
        record_key: PathBuf,
        /// One client, to standard output.
        #[arg(long, conflicts_with_all = ["clinic", "out"], required_unless_present = "clinic")]
        client: Option<String>,
        /// Every client of this clinic, to `--out`.
        #[arg(long, requires = "out")]
        clinic: Option<String>,
        /// The directory for `--clinic` (created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Include the clients' shared journal entries (left out by default).
        #[arg(long)]
        journal: bool,
    },
    /// Copy a clinic server's SQLite database into an empty PostgreSQL database (stop the server
    /// first); the server then runs with `--database-url` and the same record key (docs/deployment.md).
    CopyToPostgres {
        /// The SQLite database to copy (left as it is).
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// The PostgreSQL database to copy into; it must hold no clinic yet.
        #[arg(long, value_name = "URL", env = "KATCORE_CLINIC_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// PEM CA certificates PostgreSQL's TLS certificate must chain to (default: the public web's roots).
        #[arg(long, value_name = "FILE", env = "KATCORE_CLINIC_DATABASE_CA")]
        database_ca: Option<PathBuf>,
    },
    /// Add a clinician to an existing clinic.
    AddClinician {
        #[command(flatten)]
        database: Database,
        /// The clinic's id (from `katctl clinic init`).
        #[arg(long)]
        clinic: String,
        /// The clinician's display name.
        #[arg(long)]
        name: String,
        /// Also give them this dashboard login; the password is read from standard input.
        #[arg(long)]
        login: Option<String>,
    },
}

/// Runs a clinic subcommand.
pub(crate) fn run(command: ClinicCommand) -> Result<String, String> {
    match command {
        ClinicCommand::Init { database, name, clinician, pack_public_key, signing_key_out, record_key_out, login } => {
            // The password first: nothing is created when it cannot be read.
            let password = login.as_ref().map(|_| read_password()).transpose()?;
            let created = init(&database, &name, &clinician, pack_public_key, signing_key_out, record_key_out)?;
            let clinician_id = created.clinician_id.clone();
            with_login(&database, &clinician_id, created, login.zip(password))
        }
        ClinicCommand::Upgrade { db, record_key, signing_keys_out } => {
            if !record_key.exists() {
                RecordKey::generate().write_new(&record_key).map_err(|e| e.to_string())?;
            }
            let key = RecordKey::from_file(&record_key).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&signing_keys_out)
                .map_err(|e| format!("{}: cannot create: {e}", signing_keys_out.display()))?;
            let report = upgrade(&db, &key, &signing_keys_out).map_err(|e| format!("{}: {e}", db.display()))?;
            to_json(&report)
        }
        ClinicCommand::Reseal { database, record_key, old_record_key } => {
            let key = RecordKey::from_file(&record_key).map_err(|e| e.to_string())?;
            let old = old_record_key
                .iter()
                .map(|path| RecordKey::from_file(path))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let storage = database.open_sealed(&key, &old)?;
            let resealed = storage.reseal_records().map_err(|e| format!("{}: {e}", database.name()))?;
            to_json(&serde_json::json!({"resealed": resealed, "record_key_id": key.id()}))
        }
        ClinicCommand::RecordKey { out } => {
            let key = RecordKey::generate();
            key.write_new(&out).map_err(|e| e.to_string())?;
            to_json(&serde_json::json!({"record_key_id": key.id(), "file": out.display().to_string()}))
        }
        ClinicCommand::Password { database, clinician, login } => {
            let password = read_password()?;
            let storage = database.open()?;
            let login = katcore_clinic::set_password(storage.as_ref(), &clinician, &login, &password)
                .map_err(|e| format!("{}: {e}", database.name()))?;
            to_json(&serde_json::json!({"clinician_id": clinician, "login": login, "dashboard": "/dashboard"}))
        }
        ClinicCommand::Fhir { database, record_key, client, clinic, out, journal } => {
            let key = RecordKey::from_file(&record_key).map_err(|e| e.to_string())?;
            let sealed = database.open_sealed(&key, &[])?;
            let storage = sealed.storage();
            let options = katcore_clinic::FhirOptions { include_journal: journal };
            let export = |client_id: &str| {
                katcore_clinic::fhir_export(storage, client_id, options, chrono::Utc::now())
                    .map_err(|e| format!("client {client_id}: {}", e.message()))
            };
            match (client, clinic, out) {
                (Some(client_id), _, _) => to_json(&export(&client_id)?),
                (None, Some(clinic_id), Some(out)) => {
                    std::fs::create_dir_all(&out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
                    let clients =
                        storage.client_summaries(&clinic_id).map_err(|e| format!("{}: {e}", database.name()))?;
                    for summary in &clients {
                        let file = out.join(format!("{}.json", summary.id));
                        std::fs::write(&file, to_json(&export(&summary.id)?)?)
                            .map_err(|e| format!("{}: cannot write: {e}", file.display()))?;
                    }
                    to_json(&serde_json::json!({"clinic_id": clinic_id, "exported": clients.len(), "out": out}))
                }
                _ => Err("give --client ID, or --clinic ID --out DIR".into()),
            }
        }
        ClinicCommand::CopyToPostgres { db, database_url, database_ca } => {
            let source = SqliteStorage::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            let target = PgStorage::connect(&database_url, &PgOptions { pool_size: 1, ca_file: database_ca })
                .map_err(|e| format!("the PostgreSQL database: {e}"))?;
            let report = target.copy_from_sqlite(&source).map_err(|e| format!("the copy: {e}"))?;
            let rows: serde_json::Map<String, serde_json::Value> =
                report.tables.into_iter().map(|(table, rows)| (table, rows.into())).collect();
            to_json(&serde_json::json!({"copied_rows": rows}))
        }
        ClinicCommand::AddClinician { database, clinic, name, login } => {
            let password = login.as_ref().map(|_| read_password()).transpose()?;
            let created = katcore_clinic::add_clinician_in(database.open()?.as_ref(), &clinic, &name)
                .map_err(|e| format!("{}: {e}", database.name()))?;
            let clinician_id = created.clinician_id.clone();
            with_login(&database, &clinician_id, created, login.zip(password))
        }
    }
}

/// Creates the database if needed, a clinic and its first clinician (see
/// [`ClinicCommand::Init`]).
fn init(
    database: &Database,
    name: &str,
    clinician: &str,
    pack_public_key: Option<PathBuf>,
    signing_key_out: Option<PathBuf>,
    record_key_out: Option<PathBuf>,
) -> Result<InitOutput, String> {
    if let Some(path) = &record_key_out {
        if !path.exists() {
            RecordKey::generate().write_new(path).map_err(|e| e.to_string())?;
        }
    }
    match (pack_public_key, signing_key_out) {
        (Some(public), _) => {
            let text =
                std::fs::read_to_string(&public).map_err(|e| format!("{}: cannot read: {e}", public.display()))?;
            let key = parse_verifying_key(&text).map_err(|e| format!("{}: {e}", public.display()))?;
            let storage = database.open()?;
            init_clinic_in(storage.as_ref(), name, clinician, &key).map_err(|e| format!("{}: {e}", database.name()))
        }
        (None, Some(out)) => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("cannot encode the key: {e}"))?;
            // The key file first (never overwritten), so a clinic never
            // exists without its private key; removed if the clinic is not created.
            crate::packs::write_private(&out, pem.as_bytes())?;
            let created = database.open().and_then(|storage| {
                init_clinic_in(storage.as_ref(), name, clinician, &key.verifying_key())
                    .map_err(|e| format!("{}: {e}", database.name()))
            });
            if created.is_err() {
                let _ = std::fs::remove_file(&out);
            }
            created
        }
        (None, None) => Err("give --pack-public-key FILE or --signing-key-out FILE".into()),
    }
}

/// `created` as JSON, after giving clinician `clinician_id` the dashboard
/// sign-in `login` (with its password) when one was asked for; the JSON
/// then names the login.
fn with_login(
    database: &Database,
    clinician_id: &str,
    created: impl serde::Serialize,
    login: Option<(String, String)>,
) -> Result<String, String> {
    let mut json = serde_json::to_value(&created).map_err(|e| e.to_string())?;
    if let Some((login, password)) = login {
        let storage = database.open()?;
        let login = katcore_clinic::set_password(storage.as_ref(), clinician_id, &login, &password)
            .map_err(|e| format!("{}: {e}", database.name()))?;
        json["login"] = serde_json::Value::String(login);
    }
    to_json(&json)
}

/// The first line of standard input, without its line ending: a password,
/// never an argument (arguments are visible to every user of the machine).
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("give the password on standard input, e.g. `katctl clinic password … < file`".into());
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_without_a_database_names_both_kinds() {
        let none = Database { db: None, database_url: None, database_ca: None };
        let error =
            run(ClinicCommand::AddClinician { database: none, clinic: "c".into(), name: "N".into(), login: None })
                .unwrap_err();
        assert!(error.contains("--db PATH") && error.contains("--database-url URL"), "{error}");
    }

    #[test]
    fn init_then_add_a_clinician() {
        let dir = std::env::temp_dir().join(format!("katctl-clinic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("clinic.db");
        let _ = std::fs::remove_file(dir.join("signing.pem"));
        let _ = std::fs::remove_file(dir.join("record.key"));
        let init = ClinicCommand::Init {
            database: Database::sqlite(&db),
            name: "Riverside".into(),
            clinician: "Dr. R".into(),
            pack_public_key: None,
            signing_key_out: Some(dir.join("signing.pem")),
            record_key_out: Some(dir.join("record.key")),
            login: None,
        };
        let output = run(init).unwrap();
        let created: serde_json::Value = serde_json::from_str(&output).unwrap();
        assert!(created["clinician_token"].as_str().unwrap().starts_with("kc_"));
        assert_eq!(created["key_id"].as_str().unwrap().len(), 16);
        // The private key went to its file, not to the output.
        let private = std::fs::read_to_string(dir.join("signing.pem")).unwrap();
        let signing = katcore::pack::parse_signing_key(&private).unwrap();
        assert_eq!(katcore::pack::key_id(&signing.verifying_key()), created["key_id"].as_str().unwrap());
        assert!(!output.contains("PRIVATE KEY"));
        assert!(RecordKey::from_file(&dir.join("record.key")).is_ok());

        let clinic = created["clinic_id"].as_str().unwrap().to_owned();
        let added = run(ClinicCommand::AddClinician {
            database: Database::sqlite(&db),
            clinic,
            name: "Nurse N".into(),
            login: None,
        })
        .unwrap();
        assert!(added.contains("\"clinician_token\": \"kc_"));
        let unknown = run(ClinicCommand::AddClinician {
            database: Database::sqlite(&db),
            clinic: "nope".into(),
            name: "X".into(),
            login: None,
        });
        assert!(unknown.unwrap_err().contains("no clinic with id nope"));
        let empty = run(ClinicCommand::Init {
            database: Database::sqlite(&db),
            name: " ".into(),
            clinician: "Dr. R".into(),
            pack_public_key: None,
            signing_key_out: Some(dir.join("other.pem")),
            record_key_out: None,
            login: None,
        });
        assert!(empty.unwrap_err().contains("clinic name"));
        assert!(!dir.join("other.pem").exists(), "no key file for a clinic that was not created");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
