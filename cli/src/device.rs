//! `katctl device …`: act as a client's device on a local encrypted store.
//!
//! Every command opens core's [`Device`] (the aggregate the mobile apps use,
//! with the same start gate) on `<data-dir>/device.db`, does one thing and
//! prints JSON. The store key (32 bytes, hex) comes from
//! `KATCORE_DEVICE_KEY` or from a key file (default `<data-dir>/device.key`,
//! written by `katctl device init` with mode 0600). Instants are RFC 3339
//! and default to now.
//!
//! `katctl device start` on a session whose fresh evaluation is not `ready`
//! prints the evaluation, names the status on stderr and exits with
//! [`NOT_READY_EXIT`]; the decision is recorded either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use katcore::checklist::{Answer, BloodPressureReading};
use katcore::device::{Device, DeviceError};
use katcore::instruments::InstrumentKind;
use katcore::record::{JournalLinks, Severity};
use katcore::store::StoreKey;
use katcore::sync::transport::Transport;
use katcore::sync::{http_client, SyncTrigger};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::input::{read_input, read_text, to_json};

/// The exit code of `katctl device start` when the session is not ready.
pub(crate) const NOT_READY_EXIT: u8 = 3;

/// The environment variable that may hold the store key (64 hex digits).
const KEY_ENV: &str = "KATCORE_DEVICE_KEY";

/// Where the device's store is and how it is opened.
#[derive(Args, Debug)]
pub(crate) struct DeviceArgs {
    /// The device's directory: `device.db` (and by default `device.key`) live here.
    #[arg(long, value_name = "DIR", global = true, default_value = ".")]
    data_dir: PathBuf,
    /// The store key file (64 hex digits); `KATCORE_DEVICE_KEY` takes precedence when set.
    #[arg(long, value_name = "FILE", global = true)]
    key_file: Option<PathBuf>,
    /// A PEM file of extra root certificates, for a clinic behind a private CA.
    #[arg(long, value_name = "FILE", global = true)]
    ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: DeviceCommand,
}

/// Device subcommands.
#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Create the store and, unless `KATCORE_DEVICE_KEY` is set, a new key file.
    Init,
    /// Enroll with a clinic using a one-time code.
    Enroll {
        /// The clinic server's URL.
        #[arg(long)]
        server: String,
        /// The one-time enrollment code.
        #[arg(long)]
        code: String,
        /// How the clinic will see this device.
        #[arg(long, default_value = "katctl")]
        label: String,
    },
    /// Schedule a session.
    Schedule {
        /// The scheduled start (RFC 3339).
        #[arg(long)]
        start: String,
        /// The client's IANA time zone.
        #[arg(long)]
        tz: String,
    },
    /// Answer checklist items: one with `--item` and `--value`, or many with `--answers`.
    Answer {
        /// The session.
        #[arg(long)]
        session: String,
        /// The item id.
        #[arg(long, requires = "value", conflicts_with = "answers")]
        item: Option<String>,
        /// Its answer as JSON (`true`, `"none"`, `{"systolic":120,"diastolic":80}`, `null` to clear).
        #[arg(long)]
        value: Option<String>,
        /// A JSON object of answers by item id, from a file or `-` for stdin.
        #[arg(long, value_name = "FILE", required_unless_present = "item")]
        answers: Option<PathBuf>,
        /// When it was answered.
        #[arg(long)]
        at: Option<String>,
    },
    /// List every session, by scheduled start (those the clinic scheduled arrive with a sync).
    Sessions,
    /// Evaluate a session's checklist.
    Evaluate {
        /// The session.
        #[arg(long)]
        session: String,
        /// Locale of the messages.
        #[arg(long, default_value = "en")]
        locale: String,
    },
    /// Start a session: refused (exit 3) unless its fresh evaluation is ready.
    Start {
        /// The session.
        #[arg(long)]
        session: String,
        /// Locale of the messages.
        #[arg(long, default_value = "en")]
        locale: String,
        /// When it starts.
        #[arg(long)]
        at: Option<String>,
    },
    /// End a started session; prints the session and its aftercare plan.
    End {
        /// The session.
        #[arg(long)]
        session: String,
        /// Locale of the aftercare plan.
        #[arg(long, default_value = "en")]
        locale: String,
        /// When it ended.
        #[arg(long)]
        at: Option<String>,
    },
    /// Record a blood-pressure reading.
    Vitals {
        /// Systolic, mmHg.
        #[arg(long)]
        systolic: u16,
        /// Diastolic, mmHg.
        #[arg(long)]
        diastolic: u16,
        /// The session it belongs to.
        #[arg(long)]
        session: Option<String>,
        /// When it was taken.
        #[arg(long)]
        at: Option<String>,
    },
    /// Report a side effect the pack lists.
    SideEffect {
        /// The pack's side-effect id.
        #[arg(long)]
        effect: String,
        /// `mild`, `moderate` or `severe`.
        #[arg(long)]
        severity: String,
        /// The session it follows.
        #[arg(long)]
        session: Option<String>,
        /// When it was reported.
        #[arg(long)]
        at: Option<String>,
    },
    /// Record a questionnaire (`--instrument phq9 --answers 0,1,…`) or a mood (`--mood 7`).
    CheckIn {
        /// `phq9` or `gad7`.
        #[arg(long, requires = "answers", conflicts_with = "mood")]
        instrument: Option<String>,
        /// The answers, 0 to 3 each, comma-separated, in item order.
        #[arg(long)]
        answers: Option<String>,
        /// A mood rating from 0 (worst) to 10 (best).
        #[arg(long, required_unless_present = "instrument")]
        mood: Option<u8>,
        /// Locale of a crisis message.
        #[arg(long, default_value = "en")]
        locale: String,
        /// When it was completed.
        #[arg(long)]
        at: Option<String>,
    },
    /// Write a journal entry, or with no `--text` list every entry.
    Journal {
        /// The entry's text.
        #[arg(long)]
        text: Option<String>,
        /// Keep it on this device only (never synced).
        #[arg(long, requires = "text")]
        private: bool,
        /// The integration prompt it answers.
        #[arg(long, requires = "text")]
        prompt: Option<String>,
        /// The session it relates to.
        #[arg(long, requires = "text")]
        session: Option<String>,
        /// When it was written.
        #[arg(long, requires = "text")]
        at: Option<String>,
    },
    /// Sync with the clinic now.
    Sync,
    /// Enrollment, sync status, the pack in force, upcoming sessions and due prompts.
    Status {
        /// Locale of the due prompts.
        #[arg(long, default_value = "en")]
        locale: String,
    },
}

/// Why a device command failed: the message, and the exit code.
pub(crate) struct Failure {
    /// One line for stderr.
    pub message: String,
    /// The process's exit code.
    pub code: u8,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, code: 1 }
    }
}

impl From<DeviceError> for Failure {
    fn from(error: DeviceError) -> Self {
        Failure { message: error.to_string(), code: 1 }
    }
}

/// Runs one device command; `Ok` is what to print.
///
/// # Errors
/// A [`Failure`] naming what went wrong; a refused start prints its
/// evaluation first and fails with [`NOT_READY_EXIT`].
pub(crate) fn run(args: DeviceArgs) -> Result<String, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let key_file = args.key_file.clone().unwrap_or_else(|| args.data_dir.join("device.key"));
    let device = match args.command {
        DeviceCommand::Init => return init(&args.data_dir, &key_file),
        _ => open(&args, &key_file)?,
    };
    let now = Utc::now();
    let output = match args.command {
        // Never reached: `init` returned above, before a store was opened.
        DeviceCommand::Init => return init(&args.data_dir, &key_file),
        DeviceCommand::Enroll { server, code, label } => {
            to_json(&runtime.block_on(device.enroll(&server, &code, &label))?)?
        }
        DeviceCommand::Schedule { start, tz } => to_json(&device.schedule(instant("start", Some(&start), now)?, &tz)?)?,
        DeviceCommand::Answer { session, item, value, answers, at } => {
            let at = instant("at", at.as_deref(), now)?;
            let given: Vec<(String, Value)> = match (item, value, answers) {
                (Some(item), Some(value), _) => vec![(item, parse_json("value", value.as_bytes())?)],
                (_, _, Some(file)) => match parse_json("answers", &read_input(&file)?)? {
                    Value::Object(map) => map.into_iter().collect(),
                    _ => return Err("answers: expected a JSON object of answers by item id".to_owned().into()),
                },
                _ => return Err("give --item and --value, or --answers".to_owned().into()),
            };
            let pack = device.pack();
            for (item, value) in &given {
                let answer = Answer::parse_for(&pack, item, value).map_err(|e| format!("answers.{item}: {e}"))?;
                device.answer(&session, item, answer.as_ref(), at)?;
            }
            to_json(&json!({"session": session, "answered": given.len()}))?
        }
        DeviceCommand::Sessions => to_json(&device.sessions())?,
        DeviceCommand::Evaluate { session, locale } => to_json(&device.evaluate(&session, &locale)?)?,
        DeviceCommand::Start { session, locale, at } => {
            match device.start(&session, &locale, instant("at", at.as_deref(), now)?) {
                Ok(evaluation) => to_json(&evaluation)?,
                Err(DeviceError::NotReady { status, evaluation }) => {
                    outln!("{}", to_json(&evaluation)?);
                    return Err(Failure {
                        message: format!(
                            "session {session} is not ready to start: its checklist is {} (the decision is recorded)",
                            status.as_str()
                        ),
                        code: NOT_READY_EXIT,
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        DeviceCommand::End { session, locale, at } => {
            device.end(&session, instant("at", at.as_deref(), now)?)?;
            to_json(&json!({"session": device.session(&session)?, "aftercare": device.aftercare(&session, &locale)?}))?
        }
        DeviceCommand::Vitals { systolic, diastolic, session, at } => {
            let reading = BloodPressureReading { systolic, diastolic };
            to_json(&device.record_blood_pressure(reading, session.as_deref(), instant("at", at.as_deref(), now)?)?)?
        }
        DeviceCommand::SideEffect { effect, severity, session, at } => {
            let severity = match severity.as_str() {
                "mild" => Severity::Mild,
                "moderate" => Severity::Moderate,
                "severe" => Severity::Severe,
                _ => return Err("severity: expected mild, moderate or severe".to_owned().into()),
            };
            let at = instant("at", at.as_deref(), now)?;
            to_json(&device.report_side_effect(&effect, severity, session.as_deref(), at)?)?
        }
        DeviceCommand::CheckIn { instrument, answers, mood, locale, at } => {
            let at = instant("at", at.as_deref(), now)?;
            match (instrument, answers, mood) {
                (Some(instrument), Some(answers), _) => {
                    let kind = InstrumentKind::parse(&instrument).map_err(|e| format!("instrument: {e}"))?;
                    let answers = crate::engine::parse_answers(&answers)?;
                    to_json(&device.check_in(kind, answers, &locale, at)?)?
                }
                (_, _, Some(mood)) => to_json(&json!({"check_in_id": device.record_mood(mood, at)?}))?,
                _ => return Err("give --instrument and --answers, or --mood".to_owned().into()),
            }
        }
        DeviceCommand::Journal { text: None, .. } => to_json(&device.journal())?,
        DeviceCommand::Journal { text: Some(text), private, prompt, session, at } => {
            let links = JournalLinks { prompt_id: prompt, session_id: session };
            let id = device.write_journal(&text, &links, private, instant("at", at.as_deref(), now)?)?;
            to_json(&json!({"entry_id": id, "private": private}))?
        }
        DeviceCommand::Sync => to_json(&runtime.block_on(device.sync(SyncTrigger::User))?)?,
        DeviceCommand::Status { locale } => {
            let pack = device.pack();
            to_json(&json!({
                "enrollment": device.enrollment()?,
                "sync": device.sync_status(),
                "pack": {"id": pack.id, "version": pack.version},
                "upcoming_sessions": device.upcoming(now),
                "due_prompts": device.due_prompts(&locale, now),
            }))?
        }
    };
    Ok(output)
}

/// `katctl device init`: the directory, the key (unless given in the environment) and the store.
fn init(dir: &Path, key_file: &Path) -> Result<String, Failure> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let from_env = std::env::var_os(KEY_ENV).is_some();
    let created_key = !from_env && !key_file.exists();
    if created_key {
        let key = Zeroizing::new(rand::random::<[u8; 32]>());
        let hex = Zeroizing::new(key.iter().map(|b| format!("{b:02x}")).collect::<String>());
        crate::packs::write_private(key_file, hex.as_bytes())?;
    }
    let path = dir.join("device.db");
    let store_key = store_key(key_file)?;
    Device::open(&path, &store_key, None)?;
    to_json(&json!({
        "store": path,
        "key": if from_env { json!({"env": KEY_ENV}) } else { json!({"file": key_file, "created": created_key}) },
    }))
    .map_err(Failure::from)
}

/// Opens the device in `args.data_dir`, with an HTTPS-capable transport.
fn open(args: &DeviceArgs, key_file: &Path) -> Result<Device, Failure> {
    let path = args.data_dir.join("device.db");
    if !path.exists() {
        return Err(format!("{}: no device store here; run `katctl device init` first", path.display()).into());
    }
    let roots = args.ca_cert.as_deref().map(read_input).transpose()?;
    let http = http_client(roots.as_deref()).map_err(|e| format!("ca-cert: {e}"))?;
    let transport: Arc<dyn Transport> = Arc::new(http);
    Ok(Device::open(&path, &store_key(key_file)?, Some(transport))?)
}

/// The store key from `KATCORE_DEVICE_KEY`, else from `key_file`.
fn store_key(key_file: &Path) -> Result<StoreKey, Failure> {
    let (hex, source) = match std::env::var(KEY_ENV) {
        Ok(hex) => (Zeroizing::new(hex), KEY_ENV.to_owned()),
        Err(_) => (Zeroizing::new(read_text(key_file)?), key_file.display().to_string()),
    };
    let hex = hex.trim();
    let bytes: Option<Zeroizing<Vec<u8>>> = (hex.len() == 64)
        .then(|| (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>())
        .flatten()
        .map(Zeroizing::new);
    let bytes = bytes.ok_or_else(|| format!("{source}: the store key must be 64 hex digits"))?;
    Ok(StoreKey::from_bytes(&bytes).map_err(|e| format!("{source}: {e}"))?)
}

/// `value` (RFC 3339) as UTC, or `now` when absent; `field` names it in errors.
fn instant(field: &str, value: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match value {
        None => Ok(now),
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .filter(katcore::checklist::in_rfc3339_range)
            .map(|t| t.to_utc())
            .ok_or(())
            .map_err(|_| format!("{field}: expected an RFC 3339 instant such as 2026-05-01T15:00:00-04:00")),
    }
}

fn parse_json(field: &str, bytes: &[u8]) -> Result<Value, String> {
    katcore::json::from_slice(bytes).map_err(|e| format!("{field}: not JSON: {e}"))
}
