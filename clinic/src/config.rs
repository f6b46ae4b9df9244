//! Server configuration from flags and environment variables.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--db PATH` | `KATCORE_CLINIC_DB` | this or `--database-url` |
//! | `--database-url URL` | `KATCORE_CLINIC_DATABASE_URL` | PostgreSQL instead of SQLite |
//! | `--database-pool N` | `KATCORE_CLINIC_DATABASE_POOL` | 16 (PostgreSQL connections per instance) |
//! | `--database-ca FILE` | `KATCORE_CLINIC_DATABASE_CA` | the public web's roots (PostgreSQL's TLS) |
//! | `--record-key FILE` | `KATCORE_CLINIC_RECORD_KEY` | required |
//! | `--old-record-key FILE[,FILE…]` | `KATCORE_CLINIC_OLD_RECORD_KEYS` | none |
//! | `--listen ADDR` | `KATCORE_CLINIC_LISTEN` | `127.0.0.1:8443` |
//! | `--tls-cert PEM` | `KATCORE_CLINIC_TLS_CERT` | none |
//! | `--tls-key PEM` | `KATCORE_CLINIC_TLS_KEY` | none |
//! | `--trusted-proxy IP[,IP…]` | `KATCORE_CLINIC_TRUSTED_PROXIES` | none |
//! | `--metrics-token TOKEN` | `KATCORE_CLINIC_METRICS_TOKEN` | none (`/metrics` open) |
//! | `--max-connections N` | `KATCORE_CLINIC_MAX_CONNECTIONS` | 1000 |
//! | `--max-connections-per-ip N` | `KATCORE_CLINIC_MAX_CONNECTIONS_PER_IP` | 128 |
//! | `--time-zone NAME` | `KATCORE_CLINIC_TIME_ZONE` | `UTC` (the dashboard's clock) |
//!
//! Flags win over variables. Without a certificate and key the server
//! speaks plain HTTP, which is refused unless the listen address is
//! loopback (development only).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::limits::Limits;

/// The default listen address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);

/// Usage text for `--help`.
pub const USAGE: &str = "\
katcore-clinic: the katcore reference clinic server

USAGE:
    katcore-clinic (--db PATH | --database-url URL) --record-key FILE [--listen ADDR]
                   [--tls-cert PEM --tls-key PEM]

OPTIONS:
    --db PATH        SQLite database (created if missing): one server process
                                                               [env: KATCORE_CLINIC_DB]
    --database-url URL
                     PostgreSQL instead (postgres://USER@HOST:PORT/DB): any number of
                     server instances on one database          [env: KATCORE_CLINIC_DATABASE_URL]
    --database-pool N
                     PostgreSQL connections of this instance (default 16)
                                                               [env: KATCORE_CLINIC_DATABASE_POOL]
    --database-ca FILE
                     PEM CA certificates PostgreSQL's TLS certificate must chain to (default:
                     the public web's roots); TLS is used when the server offers it, always
                     verified; `sslmode=require` in the URL insists on it
                                                               [env: KATCORE_CLINIC_DATABASE_CA]
    --record-key FILE
                     the key record blobs are sealed with (`katctl clinic init` writes one;
                     keep it out of the database's backups)    [env: KATCORE_CLINIC_RECORD_KEY]
    --old-record-key FILE[,FILE...]
                     keys still to read during a rotation      [env: KATCORE_CLINIC_OLD_RECORD_KEYS]
    --listen ADDR    IP:port to listen on (default 127.0.0.1:8443)  [env: KATCORE_CLINIC_LISTEN]
    --tls-cert PEM   TLS certificate chain (PEM)               [env: KATCORE_CLINIC_TLS_CERT]
    --tls-key PEM    TLS private key (PEM)                     [env: KATCORE_CLINIC_TLS_KEY]
    --trusted-proxy IP[,IP...]
                     reverse proxies whose X-Forwarded-For names the client
                                                               [env: KATCORE_CLINIC_TRUSTED_PROXIES]
    --metrics-token TOKEN
                     require `Authorization: Bearer TOKEN` on /metrics
                                                               [env: KATCORE_CLINIC_METRICS_TOKEN]
    --max-connections N
                     open connections in all (default 1000; keep under `ulimit -n`)
                                                               [env: KATCORE_CLINIC_MAX_CONNECTIONS]
    --max-connections-per-ip N
                     open connections from one address (default 128; raise it when many
                     phones share one NAT address)             [env: KATCORE_CLINIC_MAX_CONNECTIONS_PER_IP]
    --time-zone NAME the IANA zone the dashboard shows times in (default UTC)
                                                               [env: KATCORE_CLINIC_TIME_ZONE]
    -h, --help       Show this text

Without --tls-cert and --tls-key the server speaks plain HTTP, allowed only on a loopback address.
Create a clinic first with `katctl clinic init --db PATH --name NAME --clinician NAME`; the care
team's dashboard is at /dashboard (sign-in set with `katctl clinic password`).
Logs go to standard error; set RUST_LOG (e.g. RUST_LOG=debug) to change the level.";

/// Why the configuration is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help` was asked for.
    #[error("{USAGE}")]
    Help,
    /// A flag is unknown or lacks its value.
    #[error("{0}\n\n{USAGE}")]
    Usage(String),
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// Certificate and key files for TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// A PostgreSQL connection string. It may hold a password, so it shows
/// only its scheme when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a connection string (`postgres://…`, `postgresql://…` or
    /// libpq `key=value` pairs).
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The connection string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shows no host, user or password.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(…)")
    }
}

/// How to run the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The SQLite database (unused when [`Config::database_url`] is set).
    pub db: PathBuf,
    /// The PostgreSQL database, instead of the SQLite file.
    pub database_url: Option<DatabaseUrl>,
    /// PostgreSQL connections this instance may open.
    pub database_pool: usize,
    /// The CA certificates PostgreSQL's TLS certificate must chain to.
    pub database_ca: Option<PathBuf>,
    /// The file of the key record blobs are sealed with.
    pub record_key: PathBuf,
    /// Keys of a rotation in progress: read, never written with.
    pub old_record_keys: Vec<PathBuf>,
    /// Create the record key file when it is missing: local development
    /// only ([`Config::local`]); the server's command line never does.
    pub create_record_key: bool,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// TLS files; `None` for plain HTTP (loopback only).
    pub tls: Option<TlsFiles>,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<IpAddr>,
    /// The bearer token `/metrics` requires; `None` leaves it open (bind
    /// the server to a private address then).
    pub metrics_token: Option<String>,
    /// Connection, time and body bounds.
    pub limits: Limits,
    /// The IANA zone the dashboard shows instants in.
    pub time_zone: String,
}

impl Config {
    /// Plain HTTP on `127.0.0.1` with a free port, and a record key kept
    /// next to the database (`<db>.record-key`, created if missing): what
    /// tests and demos use, never a deployment.
    pub fn local(db: impl Into<PathBuf>) -> Config {
        let db: PathBuf = db.into();
        let mut record_key = db.clone().into_os_string();
        record_key.push(".record-key");
        Config {
            record_key: record_key.into(),
            old_record_keys: Vec::new(),
            create_record_key: true,
            db,
            database_url: None,
            database_pool: crate::storage::DEFAULT_POOL_SIZE,
            database_ca: None,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: None,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            limits: Limits::default(),
            time_zone: "UTC".into(),
        }
    }

    /// [`Config::local`] on the PostgreSQL database at `url`, with the
    /// record key in `record_key` (created if missing): tests and load
    /// runs on PostgreSQL.
    pub fn local_postgres(url: impl Into<String>, record_key: impl Into<PathBuf>) -> Config {
        let mut config = Config::local(PathBuf::new());
        config.database_url = Some(DatabaseUrl::new(url));
        config.record_key = record_key.into();
        config
    }

    /// How to connect to PostgreSQL: the pool size and the CA file.
    pub fn pg_options(&self) -> crate::storage::PgOptions {
        crate::storage::PgOptions { pool_size: self.database_pool, ca_file: self.database_ca.clone() }
    }

    /// Reads flags (without the program name) and environment variables
    /// (through `env`), then [`validate`](Config::validate)s.
    ///
    /// # Errors
    /// [`ConfigError::Help`] for `--help`, [`ConfigError::Usage`] for a bad
    /// command line, [`ConfigError::Invalid`] for unusable values.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut db = env("KATCORE_CLINIC_DB");
        let mut database_url = env("KATCORE_CLINIC_DATABASE_URL");
        let mut database_pool = env("KATCORE_CLINIC_DATABASE_POOL");
        let mut database_ca = env("KATCORE_CLINIC_DATABASE_CA");
        let mut record_key = env("KATCORE_CLINIC_RECORD_KEY");
        let mut old_record_keys = env("KATCORE_CLINIC_OLD_RECORD_KEYS");
        let mut listen = env("KATCORE_CLINIC_LISTEN");
        let mut cert = env("KATCORE_CLINIC_TLS_CERT");
        let mut key = env("KATCORE_CLINIC_TLS_KEY");
        let mut proxies = env("KATCORE_CLINIC_TRUSTED_PROXIES");
        let mut metrics_token = env("KATCORE_CLINIC_METRICS_TOKEN");
        let mut max_connections = env("KATCORE_CLINIC_MAX_CONNECTIONS");
        let mut max_per_ip = env("KATCORE_CLINIC_MAX_CONNECTIONS_PER_IP");
        let mut time_zone = env("KATCORE_CLINIC_TIME_ZONE");
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
                _ => (arg, None),
            };
            let slot = match flag.as_str() {
                "-h" | "--help" => return Err(ConfigError::Help),
                "--db" => &mut db,
                "--database-url" => &mut database_url,
                "--database-pool" => &mut database_pool,
                "--database-ca" => &mut database_ca,
                "--record-key" => &mut record_key,
                "--old-record-key" => &mut old_record_keys,
                "--listen" => &mut listen,
                "--tls-cert" => &mut cert,
                "--tls-key" => &mut key,
                "--trusted-proxy" => &mut proxies,
                "--metrics-token" => &mut metrics_token,
                "--max-connections" => &mut max_connections,
                "--max-connections-per-ip" => &mut max_per_ip,
                "--time-zone" => &mut time_zone,
                other => return Err(ConfigError::Usage(format!("unknown argument `{other}`"))),
            };
            let value =
                inline.or_else(|| args.next()).ok_or_else(|| ConfigError::Usage(format!("`{flag}` needs a value")))?;
            *slot = Some(value);
        }
        let db = db.filter(|db| !db.is_empty());
        let database_url = database_url.filter(|url| !url.is_empty());
        let db = match (db, &database_url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "give one database: --db PATH (SQLite) or --database-url URL (PostgreSQL), not both".into(),
                ))
            }
            (Some(db), None) => db,
            (None, Some(url)) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('=')) {
                    return Err(ConfigError::Invalid(
                        "--database-url must be a PostgreSQL connection string (postgres://…)".into(),
                    ));
                }
                String::new()
            }
            (None, None) => {
                return Err(ConfigError::Usage(
                    "the database is required: --db PATH (SQLite) or --database-url URL (PostgreSQL)".into(),
                ))
            }
        };
        let listen = match listen {
            None => DEFAULT_LISTEN,
            Some(text) => text.parse().map_err(|_| {
                ConfigError::Invalid(format!("listen address `{text}` is not IP:port (e.g. 0.0.0.0:8443)"))
            })?,
        };
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
            (None, None) => None,
            _ => return Err(ConfigError::Invalid("TLS needs both --tls-cert and --tls-key".into())),
        };
        let trusted_proxies = proxies
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
            .map(|ip| {
                ip.parse().map_err(|_| ConfigError::Invalid(format!("trusted proxy `{ip}` is not an IP address")))
            })
            .collect::<Result<Vec<IpAddr>, ConfigError>>()?;
        let metrics_token = metrics_token.filter(|token| !token.is_empty());
        let positive = |flag: &str, text: Option<String>, default: usize| -> Result<usize, ConfigError> {
            match text {
                None => Ok(default),
                Some(text) => text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::Invalid(format!("{flag} `{text}` is not a positive whole number"))),
            }
        };
        let database_pool = positive("--database-pool", database_pool, crate::storage::DEFAULT_POOL_SIZE)?;
        let mut limits = Limits::default();
        limits.max_connections = positive("--max-connections", max_connections, limits.max_connections)?;
        limits.max_connections_per_ip =
            positive("--max-connections-per-ip", max_per_ip, limits.max_connections_per_ip)?;
        let record_key = record_key.filter(|path| !path.is_empty()).ok_or_else(|| {
            ConfigError::Usage(
                "the record key is required: --record-key FILE or KATCORE_CLINIC_RECORD_KEY \
                 (`katctl clinic init` writes one)"
                    .into(),
            )
        })?;
        let old_record_keys = old_record_keys
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
            .collect();
        let config = Config {
            db: db.into(),
            database_url: database_url.map(DatabaseUrl::new),
            database_pool,
            database_ca: database_ca.filter(|path| !path.is_empty()).map(PathBuf::from),
            record_key: record_key.into(),
            old_record_keys,
            create_record_key: false,
            listen,
            tls,
            trusted_proxies,
            metrics_token,
            limits,
            time_zone: time_zone.filter(|name| !name.is_empty()).unwrap_or_else(|| "UTC".into()),
        };
        config.validate()?;
        Ok(config)
    }

    /// Refuses plain HTTP on a non-loopback address and an unknown time zone.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if katcore::zone::Zone::named(&self.time_zone).is_none() {
            return Err(ConfigError::Invalid(format!(
                "time zone `{}` is not an IANA zone name (e.g. America/New_York)",
                self.time_zone
            )));
        }
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing plain HTTP on {}: client data must travel over TLS; pass --tls-cert and --tls-key, \
                 or listen on a loopback address (127.0.0.1) for development",
                self.listen
            )));
        }
        Ok(())
    }

    /// Whether the dashboard's cookies are marked `Secure`: when the server
    /// speaks TLS, or sits behind a trusted proxy (which must terminate TLS,
    /// plain HTTP being allowed only on loopback).
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || !self.trusted_proxies.is_empty()
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !args.contains(&"--record-key") && !env.iter().any(|(k, _)| k == "KATCORE_CLINIC_RECORD_KEY") {
            env.push(("KATCORE_CLINIC_RECORD_KEY".into(), "record.key".into()));
        }
        Config::from_args(args.iter().map(|a| (*a).to_owned()), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn flags_env_and_defaults() {
        let config = parse(&["--db", "a.db", "--record-key", "r.key"], &[]).unwrap();
        assert_eq!(config.record_key, PathBuf::from("r.key"));
        assert!(!config.create_record_key);
        assert_eq!(config.listen, DEFAULT_LISTEN);
        assert_eq!(config.tls, None);
        let config = parse(&["--listen=127.0.0.1:9000"], &[("KATCORE_CLINIC_DB", "b.db")]).unwrap();
        assert_eq!(config.db, PathBuf::from("b.db"));
        assert_eq!(config.listen.port(), 9000);
        let config = parse(&["--db", "c.db"], &[("KATCORE_CLINIC_DB", "b.db")]).unwrap();
        assert_eq!(config.db, PathBuf::from("c.db"));
    }

    #[test]
    fn one_database_sqlite_or_postgresql() {
        let url = "postgres://katcore:secret-pw@db.internal:5432/katcore";
        let config = parse(&["--database-url", url, "--database-pool", "4", "--database-ca", "ca.pem"], &[]).unwrap();
        assert_eq!(config.database_url.as_ref().map(DatabaseUrl::as_str), Some(url));
        assert_eq!(config.pg_options(), crate::storage::PgOptions { pool_size: 4, ca_file: Some("ca.pem".into()) });
        // The URL may hold a password: printing the configuration never shows it.
        let printed = format!("{config:?}");
        assert!(!printed.contains("secret-pw") && !printed.contains("db.internal"), "{printed}");
        let from_env = parse(&[], &[("KATCORE_CLINIC_DATABASE_URL", url)]).unwrap();
        assert_eq!(from_env.database_url, config.database_url);
        assert_eq!(from_env.database_pool, crate::storage::DEFAULT_POOL_SIZE);
        assert!(parse(&["--db", "a.db"], &[]).unwrap().database_url.is_none());

        let both = parse(&["--db", "a.db", "--database-url", url], &[]).unwrap_err();
        assert!(matches!(both, ConfigError::Invalid(ref m) if m.contains("not both")), "{both}");
        let neither = parse(&[], &[]).unwrap_err();
        assert!(matches!(neither, ConfigError::Usage(ref m) if m.contains("--database-url")), "{neither}");
        let not_postgres = parse(&["--database-url", "mysql://db/katcore"], &[]).unwrap_err();
        assert!(matches!(not_postgres, ConfigError::Invalid(_)), "{not_postgres}");
        assert!(matches!(parse(&["--database-url", url, "--database-pool", "0"], &[]), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let error = parse(&["--db", "a.db", "--listen", "0.0.0.0:8443"], &[]).unwrap_err();
        assert!(error.to_string().contains("refusing plain HTTP"));
        let config =
            parse(&["--db", "a.db", "--listen", "0.0.0.0:8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"], &[])
                .unwrap();
        assert_eq!(config.scheme(), "https");
        assert!(parse(&["--db", "a.db", "--listen", "[::1]:8443"], &[]).is_ok());
    }

    #[test]
    fn proxies_metrics_token_and_connection_bound() {
        let config = parse(
            &[
                "--db",
                "a.db",
                "--trusted-proxy",
                "10.0.0.1, ::1",
                "--max-connections",
                "50",
                "--max-connections-per-ip=500",
            ],
            &[("KATCORE_CLINIC_METRICS_TOKEN", "scrape-secret")],
        )
        .unwrap();
        assert_eq!(config.trusted_proxies, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert_eq!(config.metrics_token.as_deref(), Some("scrape-secret"));
        assert_eq!(config.limits.max_connections, 50);
        assert_eq!(config.limits.max_connections_per_ip, 500);
        assert!(matches!(parse(&["--db", "a", "--max-connections-per-ip", "x"], &[]), Err(ConfigError::Invalid(_))));
        assert!(matches!(parse(&["--db", "a", "--trusted-proxy", "proxy.local"], &[]), Err(ConfigError::Invalid(_))));
        assert!(matches!(parse(&["--db", "a", "--max-connections", "0"], &[]), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn the_dashboard_time_zone_and_secure_cookies() {
        let config = parse(&["--db", "a.db", "--record-key", "r.key"], &[]).unwrap();
        assert_eq!(config.time_zone, "UTC");
        assert!(!config.secure_cookies(), "plain HTTP on loopback");
        let config =
            parse(&["--db", "a.db", "--record-key", "r.key"], &[("KATCORE_CLINIC_TIME_ZONE", "Europe/Madrid")])
                .unwrap();
        assert_eq!(config.time_zone, "Europe/Madrid");
        let error = parse(&["--db", "a.db", "--record-key", "r.key", "--time-zone", "Mars/Olympus"], &[]).unwrap_err();
        assert!(matches!(&error, ConfigError::Invalid(m) if m.contains("Mars/Olympus")), "{error:?}");
        let proxied = parse(&["--db", "a.db", "--record-key", "r.key", "--trusted-proxy", "127.0.0.1"], &[]).unwrap();
        assert!(proxied.secure_cookies(), "a trusted proxy terminates TLS");
    }

    #[test]
    fn bad_command_lines() {
        assert_eq!(parse(&["--help"], &[]), Err(ConfigError::Help));
        assert!(matches!(parse(&[], &[]), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&["--db"], &[]), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&["--db", "a", "--what"], &[]), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&["--db", "a", "--listen", "localhost"], &[]), Err(ConfigError::Invalid(_))));
        assert!(matches!(parse(&["--db", "a", "--tls-cert", "c.pem"], &[]), Err(ConfigError::Invalid(_))));
        let no_key = Config::from_args(["--db".to_owned(), "a".to_owned()], |_| None).unwrap_err();
        assert!(no_key.to_string().contains("the record key is required"), "{no_key}");
        let rotating = parse(&["--db", "a", "--old-record-key", "one.key, two.key"], &[]).unwrap();
        assert_eq!(rotating.old_record_keys, vec![PathBuf::from("one.key"), PathBuf::from("two.key")]);
    }
}
