//! # katcore
//!
//! The offline-first core of an at-home ketamine-assisted therapy (KAT)
//! app, in pure Rust with no FFI: the mobile bindings (`bindings/`), the
//! clinic server (`clinic/`) and `katctl` (`cli/`) are built on it.
//!
//! ## Where each rule lives
//!
//! | concern | module | start with |
//! |---|---|---|
//! | a client's device: the journey every front end drives, and **the start gate** | [`device`] | [`Device`], [`Device::start`] |
//! | the clinic's protocol as signed, versioned, localizable data | [`pack`] | [`Pack`], [`PackRegistry`] |
//! | pre-session checklist → `ready` / `wait` / `incomplete` / `blocked`, explained, with reminders | [`checklist`] | [`checklist::evaluate`], [`Evaluation`] |
//! | driving, side-effect check-ins and integration prompts after a session | [`aftercare`] | [`aftercare::plan`] |
//! | PHQ-9 / GAD-7 scoring and crisis handling | [`instruments`] | [`instruments::score`] |
//! | the CRDT care record (Automerge): layout, write rules, urgency | [`record`] | [`CareRecord`], [`record::check_changes`] |
//! | snapshot + change log + compaction, for device and clinic replicas | [`persist`] | [`PersistedRecord`] |
//! | the encrypted SQLite store on the phone | [`store`], [`care_store`] | [`StoreKey`], [`CareStore`] |
//! | the first view: what the app shows on opening, without loading the history | [`device::first_view`], `care_store`'s `current` | [`Device::first_view`] |
//! | SQLite conventions shared with the clinic's database | [`sqlite`] | [`sqlite::PRAGMAS`] |
//! | sync with the clinic server: client, wire format, transport | [`sync`] | [`SyncClient`], [`sync::wire`] |
//! | IANA time zones | [`zone`] | [`zone::Zone`] |
//!
//! The formats and the protocol are specified for other implementations in
//! `docs/record-format.md`, `docs/pack-format.md` and `docs/sync-protocol.md`.
//!
//! ```
//! use katcore::{Device, DeviceError, ReadinessStatus, StoreKey};
//! use chrono::{Duration, Utc};
//!
//! # let dir = std::env::temp_dir().join(format!("katcore-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! let key = StoreKey::from_bytes(&[7; 32])?;
//! let device = Device::open(&dir.join("client.db"), &key, None)?;
//! let session = device.schedule(Utc::now() + Duration::days(1), "America/New_York")?;
//! // Nothing is answered yet: the gate refuses the start and records why.
//! match device.start(&session.id, "en", Utc::now()) {
//!     Err(DeviceError::NotReady { status, .. }) => assert_eq!(status, ReadinessStatus::Incomplete),
//!     other => panic!("a session with no answers must not start: {other:?}"),
//! }
//! assert!(device.session(&session.id)?.started_at.is_none());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aftercare;
pub mod care_store;
pub mod checklist;
pub mod device;
pub mod instruments;
pub mod json;
pub mod locale;
pub mod pack;
pub mod persist;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod sync;
pub mod zone;

pub use care_store::CareStore;
pub use checklist::{Answer, Evaluation, ReadinessStatus};
pub use device::{CareChange, Device, DeviceError, Observer, Subscription};
pub use pack::{Pack, PackRegistry};
pub use persist::PersistedRecord;
pub use record::{CareRecord, RecordError};
pub use store::StoreKey;
pub use sync::{SyncClient, SyncError, SyncStatus};
