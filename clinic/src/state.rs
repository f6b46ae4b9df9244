//! The state every handler shares: storage, the record cache, metrics and
//! the failed-attempt limiter.

use std::sync::Arc;

use crate::auth::FailureLimiter;
use crate::error::ApiError;
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
}

impl AppState {
    /// State over `storage`, with an empty record cache and a fresh random
    /// Automerge actor for the server's edits (one per process start).
    pub fn new(storage: Arc<dyn ClinicStorage>) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                storage,
                replicas: Replicas::new(),
                metrics: Metrics::default(),
                limiter: FailureLimiter::default(),
            }),
        }
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn limiter(&self) -> &FailureLimiter {
        &self.inner.limiter
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
    /// that client's lock (loading the record first if it is not cached).
    /// The caller must have checked that the client exists and may be reached.
    pub(crate) async fn with_replica<T: Send + 'static>(
        &self,
        client_id: &str,
        f: impl FnOnce(&mut Replica, &dyn ClinicStorage) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let storage = Arc::clone(&self.inner.storage);
        self.inner.replicas.run(client_id, storage, f).await
    }
}
