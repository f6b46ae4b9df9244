//! The state every handler shares: storage, the record cache, metrics,
//! the failed-attempt limiter and the dashboard's settings.

use std::net::IpAddr;
use std::sync::Arc;

use katcore::zone::Zone;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::ApiError;
use crate::failures::FailureLimiter;
use crate::limits::{BodyTurns, Limits};
use crate::metrics::Metrics;
use crate::replica::{Replica, Replicas};
use crate::storage::{ClinicStorage, StorageError};

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    storage: Arc<dyn ClinicStorage>,
    replicas: Replicas,
    metrics: Metrics,
    limiter: FailureLimiter,
    limits: Limits,
    trusted_proxies: Vec<IpAddr>,
    metrics_token: Option<String>,
    /// Bytes of sync bodies being read, in KiB permits.
    body_budget: Semaphore,
    /// Sync bodies being read, per device.
    body_turns: BodyTurns,
    /// Whether the dashboard's cookies are `Secure`.
    secure_cookies: bool,
    /// The zone the dashboard shows instants in.
    time_zone: Zone,
    /// Password checks running at once (each is ~19 MiB and tens of
    /// milliseconds of Argon2id): a flood of sign-ins waits here, bounded.
    password_checks: Semaphore,
}

/// Password checks that may run at once.
const PASSWORD_CHECKS: usize = 2;

impl AppState {
    /// State over `storage` with the default [`Limits`], no trusted proxy
    /// and an open `/metrics`; an empty record cache and a fresh random
    /// Automerge actor for the server's edits (one per process start).
    pub fn new(storage: Arc<dyn ClinicStorage>) -> AppState {
        AppState::configured(storage, &Config::local("unused.db"))
    }

    /// State over `storage` with `config`'s limits, trusted proxies,
    /// metrics token and dashboard settings (an unknown time zone reads as
    /// UTC; [`Config::validate`] refuses one first).
    pub fn configured(storage: Arc<dyn ClinicStorage>, config: &Config) -> AppState {
        let limits = config.limits.clone();
        let body_kib = limits.body_bytes_in_flight.div_ceil(1024).min(Semaphore::MAX_PERMITS);
        let time_zone = Zone::named(&config.time_zone).or_else(|| Zone::named("UTC"));
        AppState {
            inner: Arc::new(Shared {
                storage,
                replicas: Replicas::new(limits.record_cache_bytes),
                metrics: Metrics::default(),
                limiter: FailureLimiter::default(),
                limits,
                trusted_proxies: config.trusted_proxies.clone(),
                metrics_token: config.metrics_token.clone(),
                body_budget: Semaphore::new(body_kib),
                body_turns: BodyTurns::default(),
                secure_cookies: config.secure_cookies(),
                time_zone: time_zone.expect("the time zone database has UTC"),
                password_checks: Semaphore::new(PASSWORD_CHECKS),
            }),
        }
    }

    /// Whether the dashboard's cookies are `Secure`.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// The zone the dashboard shows instants in.
    pub(crate) fn time_zone(&self) -> &Zone {
        &self.inner.time_zone
    }

    /// Turns for password checks.
    pub(crate) fn password_checks(&self) -> &Semaphore {
        &self.inner.password_checks
    }

    /// How many records the cache holds and their estimated memory.
    pub(crate) fn cache_size(&self) -> crate::replica::CacheSize {
        self.inner.replicas.size()
    }

    /// The server's bounds.
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub(crate) fn trusted_proxies(&self) -> &[IpAddr] {
        &self.inner.trusted_proxies
    }

    /// The token `/metrics` requires, if any.
    pub(crate) fn metrics_token(&self) -> Option<&str> {
        self.inner.metrics_token.as_deref()
    }

    /// Sync bodies being read, per device.
    pub(crate) fn body_turns(&self) -> &BodyTurns {
        &self.inner.body_turns
    }

    /// The shared budget of sync body bytes being read (KiB permits).
    pub(crate) fn body_budget(&self) -> &Semaphore {
        &self.inner.body_budget
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn limiter(&self) -> &FailureLimiter {
        &self.inner.limiter
    }

    /// Counts a failed attempt (bad token, code or password) from `peer`:
    /// in this instance's limiter and, where several instances share the
    /// database, in the database, whose count across instances limits
    /// `peer` here once it reaches the limit. A storage failure here is
    /// logged, never answered: the caller's answer stays what it was.
    pub(crate) async fn failed_attempt(&self, peer: IpAddr) {
        self.limiter().fail(peer);
        let address = crate::failures::counted(peer);
        match self.db(move |s| s.count_failure(&address, chrono::Utc::now())).await {
            Ok(Some(count)) if count >= crate::failures::MAX_FAILURES_PER_WINDOW => self.limiter().saturate(peer),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message(), "the shared failure count was not updated"),
        }
    }

    /// Runs a storage call on a blocking thread.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn ClinicStorage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = Arc::clone(&self.inner.storage);
        Ok(tokio::task::spawn_blocking(move || f(storage.as_ref())).await??)
    }

    /// Runs `f` on `client_id`'s cached record, on a blocking thread, holding
    /// that client's lock (loading the record first if it is not cached, or
    /// if another instance stored a change since). `f` runs again on the
    /// reloaded record when another instance stored a change between the
    /// load and `f`'s own append. The caller must have checked that the
    /// client exists and may be reached.
    pub(crate) async fn with_replica<T: Send + 'static>(
        &self,
        client_id: &str,
        f: impl FnMut(&mut Replica, &dyn ClinicStorage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = Arc::clone(&self.inner.storage);
        self.inner.replicas.run(client_id, storage, f).await
    }
}
