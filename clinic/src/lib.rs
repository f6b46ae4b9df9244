//! # katcore-clinic
//!
//! The reference clinic server for katcore: device enrollment, the sync
//! endpoint of `docs/sync-protocol.md`, the clinician API, alerts for urgent
//! items, and signed content packs. One SQLite file holds everything
//! ([`SqliteStorage`], behind the [`ClinicStorage`] trait), or, for several
//! instances behind a load balancer, one PostgreSQL database ([`PgStorage`],
//! `--database-url`; docs/deployment.md).
//!
//! Starting a server in-process (tests, `katctl demo`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use katcore_clinic::{init_clinic, serve, Config};
//!
//! let db = std::path::Path::new("clinic.db");
//! let clinic = init_clinic(db, "Riverside Clinic", "Dr. Rivera")?; // prints nothing; keep the token
//! let server = serve(Config::local(db)).await?; // 127.0.0.1, a free port, plain HTTP
//! println!("{} {}", server.url(), clinic.clinic_id);
//! // … call the API with `Authorization: Bearer {clinic.clinician_token}` …
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Routes (JSON unless noted; errors are `{"error", "message"}`):
//!
//! - operations: `GET /healthz` (liveness), `GET /readyz` (the database takes a
//!   write), `GET /metrics` (Prometheus text), `GET /openapi.json`;
//! - devices: `POST /v1/enroll`, `POST /v1/sync` (binary), `GET /v1/pack`;
//! - clinicians: `/v1/clients…`, `/v1/devices/{id}/revoke`, `/v1/alerts…`, `PUT /v1/pack`
//!   (a pack signed offline with the clinic's key), `GET /v1/clients/{id}/fhir`
//!   (the record as a FHIR R4 bundle, docs/fhir.md);
//! - the care team's dashboard (HTML, signed in with a password): `/dashboard…`
//!   (`web`, docs/dashboard.md).
//!
//! Record blobs are sealed at rest under the record key ([`RecordKey`],
//! `--record-key`); every connection, body, decompression and cache is
//! bounded ([`Limits`]); see `docs/operations.md`.
//!
//! ## Where each rule lives
//!
//! | concern | module | start with |
//! |---|---|---|
//! | who may call what: bearer tokens, `401`/`403`/`410` | `auth` | [`DeviceAuth`], [`ClinicianAuth`] |
//! | the failed-attempt limit (`429`), in constant memory | `failures` | [`MAX_FAILURES_PER_WINDOW`] |
//! | bounds on connections, time, bodies, the record cache | `limits`, `server` | [`Limits`] |
//! | malformed input is a typed `400`, never a panic; names are checked | `extract`, `error` | [`ApiError`] |
//! | enrollment codes, redeemed once | `enrollment` | [`EnrollRequest`] |
//! | `POST /v1/sync`: **what a device may write** is checked before anything is merged | `sync`, `replica` | `docs/sync-protocol.md`, [`katcore::record::check_changes`] |
//! | urgent items re-derived from every change's values, raised once as alerts | `replica`, `alerts` | [`AlertView`] |
//! | acknowledging with an [`Outcome`] and a note, reopening, each a line of the alert's audit trail | `alerts`, `storage` (`sqlite/alerts`, `postgres/alerts`) | [`AcknowledgeRequest`] |
//! | the clinic's own time: receipts, device clock offsets, credible times, baselines by receipt | `clock`, `replica` | `docs/record-format.md`, "The clinic's own time" |
//! | ids the clinic's packs do not know: accepted, marked where shown | `pack_ids`, `wording` | `docs/record-format.md`, "Ids from the pack" |
//! | signed packs: publishing and serving | `packs` | [`PackPublished`] |
//! | the clinician API over clients, devices, records, notes | `clinician`, `client` | [`ClinicianClient`] |
//! | the care team's dashboard: sign-in, pages, forms, plots, one time rule | `web` (`session`, `pages`, `alerts_page`, `alert_rows`, `client_page`, `actions`, `plots`, `words`) | `docs/dashboard.md` |
//! | FHIR R4 export | `fhir` | [`fhir_bundle`], `docs/fhir.md` |
//! | what the server keeps: SQLite or PostgreSQL, sealed record blobs, migrations | `storage` (`sqlite`, `postgres`, each with its `records`, `alerts`, `people`, `enrollment`, `packs`; `schema`, `sealing`, `upgrade`) | [`ClinicStorage`] |
//! | the in-memory replica cache, bounded by memory | `replica`, `state` | [`AppState`] |
//! | `/metrics`, `/healthz`, `/readyz`, `/openapi.json` | `metrics`, `server`, `openapi` | [`Metrics`], [`openapi()`] |
//! | configuration, creating a clinic | `config`, `bootstrap` | [`Config`] |
//!
//! No source file is over 800 lines and no two modules import each other
//! (`scripts/check-rooms.py`, run by `scripts/test.sh`).

mod alerts;
mod auth;
mod bootstrap;
mod client;
mod clinician;
mod clock;
mod config;
mod enrollment;
mod error;
mod extract;
mod failures;
mod fhir;
mod limits;
mod metrics;
mod openapi;
mod pack_ids;
mod packs;
mod replica;
mod server;
mod state;
mod storage;
mod sync;
mod test_database;
mod web;
mod wording;

use axum::http::Request;
use axum::Router;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use alerts::{AcknowledgeRequest, AlertStatus, AlertView, AlertsQuery, Outcome, MAX_ACK_NOTE_CHARS};
pub use auth::{
    hash_secret, new_token, ClinicianAuth, DeviceAuth, TokenKind, CLINICIAN_TOKEN_PREFIX, DEVICE_TOKEN_PREFIX,
    FAILURE_WINDOW, MAX_FAILURES_PER_WINDOW,
};
pub use bootstrap::{
    add_clinician, add_clinician_in, init_clinic, init_clinic_in, init_clinic_with_new_key, set_password,
    BootstrapError, ClinicianCreated, InitOutput,
};
pub use client::{ClinicianClient, ClinicianClientError};
pub use clinician::{
    AssignPackRequest, ClientCreated, ClientListItem, DeviceView, MoveSessionRequest, NewClientRequest, NoteCreated,
    NoteRequest, ScheduleSessionRequest, SessionCreated,
};
pub use config::{Config, ConfigError, DatabaseUrl, TlsFiles, DEFAULT_LISTEN, USAGE};
pub use enrollment::{EnrollRequest, EnrollResponse, EnrollmentCode, CODE_VALIDITY};
pub use error::{ApiError, ErrorBody};
pub use fhir::{bundle as fhir_bundle, export_from_storage as fhir_export, FhirOptions, FHIR_JSON};
pub use limits::Limits;
pub use metrics::Metrics;
pub use openapi::openapi;
pub use packs::{PackPublished, MAX_PACK_BODY};
pub use server::{install_crypto_provider, open_storage, serve, serve_app, Health, ServeError, ServerHandle};
pub use state::AppState;
pub use storage::{
    upgrade, ActorOwner, Alert, AlertAction, AlertActionKind, Client, ClientSummary, Clinic, ClinicStorage, Clinician,
    ClinicianLogin, CopyReport, Device, ExportedKey, NewAlert, NewDevice, PgOptions, PgStorage, PlannedSession,
    PublishOutcome, RecordKey, RecordUpdate, SecretHash, SqliteStorage, StorageError, StoredDocument, StoredPack,
    UpgradeReport, WebSession, DEFAULT_POOL_SIZE,
};
pub use sync::MAX_SYNC_BODY;
pub use test_database::{TestDatabase, TEST_POSTGRES_CA_ENV, TEST_POSTGRES_ENV};
pub use web::{hash_password, normalize_login, PasswordError, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// The whole HTTP API over `state`, testable without a socket
/// (`tower::ServiceExt::oneshot`). Unknown routes answer `404` JSON.
pub fn app(state: AppState) -> Router {
    // Every body but the sync's (which the sync reads itself, against its
    // budget, after the token) must arrive within the body timeout.
    let body_deadline = RequestBodyDeadlineLayer::new(state.limits().body_read_timeout);
    Router::new()
        .merge(server::router())
        .merge(metrics::endpoint::router())
        .merge(openapi::router())
        .merge(enrollment::router())
        .merge(packs::router())
        .merge(clinician::router())
        .merge(alerts::router())
        .merge(fhir::router())
        .merge(web::router())
        .layer(body_deadline)
        .merge(sync::router())
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::endpoint::count_errors))
        .layer(
            // Method and path only: never headers (tokens) or bodies.
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}
