//! # katcore
//!
//! The offline-first core of an at-home ketamine-assisted therapy (KAT) app.
//!
//! - [`pack`]: the clinic's protocol as signed, versioned, localizable data,
//!   with a safe default built in.
//! - [`checklist`]: evaluates a session's pre-session answers into
//!   `ready` / `wait` / `incomplete` / `blocked`, explains every item and
//!   returns the reminders to schedule.
//! - [`aftercare`]: when driving is acceptable again, side-effect check-ins
//!   and the integration prompt schedule after a session.
//! - [`instruments`]: PHQ-9 and GAD-7 scoring with crisis handling.
//!
//! Everything here is pure Rust with no I/O; the bindings and the clinic
//! server build on it.
//!
//! ```
//! use katcore::checklist::{evaluate, Answers, ReadinessStatus};
//! use katcore::pack::Pack;
//!
//! let pack = Pack::default_pack();
//! let start = chrono::DateTime::parse_from_rfc3339("2026-05-01T15:00:00-04:00").unwrap();
//! let answers = Answers::from_json(&pack, &serde_json::json!({
//!     "last_solid_food": "2026-05-01T12:00:00-04:00",
//! })).unwrap();
//! let result = evaluate(&pack, start, &answers, "en");
//! // Most items are still unanswered, so the session is not ready.
//! assert_eq!(result.status, ReadinessStatus::Incomplete);
//! ```

pub mod aftercare;
pub mod care_store;
pub mod checklist;
pub mod device;
pub mod instruments;
pub mod locale;
pub mod pack;
pub mod persist;
pub mod record;
pub mod sqlite;
pub mod store;
pub mod sync;
pub mod zone;
