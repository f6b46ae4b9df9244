//! `katctl`: the katcore command line.
//!
//! JSON in, JSON out, so clinics, scripts and tests can drive the engine:
//! evaluate a checklist, score a check-in, plan the days after a session,
//! author, sign and verify content packs, set up a clinic server's
//! database (`katctl clinic init`), and act as a client's device
//! (`katctl device …`). Errors are one line on stderr naming what was
//! wrong, with exit code 1 (2 for a malformed command line, 3 for
//! `katctl device start` on a session that is not ready). When the reader
//! of its output goes away (`katctl … | head`), it stops quietly with exit
//! code 141, as a Unix tool ended by `SIGPIPE` does.

/// `println!` for everything `katctl` writes to stdout: when the reader has
/// closed the pipe, the process ends quietly ([`input::closed_pipe`])
/// instead of panicking with a backtrace.
macro_rules! outln {
    () => { $crate::input::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::input::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::input::write_stdout(format_args!($($arg)*)) };
}

mod clinic;
mod demo;
mod device;
mod engine;
mod input;
mod packs;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// katcore's command-line tool.
#[derive(Parser, Debug)]
#[command(
    name = "katctl",
    version,
    about = "katcore: the demo, checklist engine, check-in scoring, content-pack and clinic tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Walk a whole at-home session, offline and back online, against a real clinic server.
    Demo(demo::DemoArgs),
    /// Act as a client's device on a local encrypted store: enroll, answer, start (gated), sync, …
    Device(device::DeviceArgs),
    /// Pre-session checklist.
    #[command(subcommand)]
    Checklist(ChecklistCommand),
    /// Score a PHQ-9 or GAD-7 check-in: `katctl score phq9 0,1,2,0,1,0,0,1,0`.
    Score {
        /// `phq9` or `gad7`.
        instrument: String,
        /// The answers, 0 to 3 each, comma-separated, in item order.
        answers: String,
        /// The client's baseline total (their first check-in with this
        /// questionnaire), to flag a marked worsening.
        #[arg(long)]
        baseline: Option<u8>,
        #[command(flatten)]
        pack: engine::PackArgs,
    },
    /// When driving is acceptable again, side-effect check-ins and integration prompts after a session.
    Aftercare {
        /// When the session ended (RFC 3339).
        #[arg(long)]
        end: String,
        /// The client's IANA time zone, e.g. America/New_York.
        #[arg(long)]
        tz: String,
        #[command(flatten)]
        pack: engine::PackArgs,
    },
    /// Author, sign and verify content packs.
    #[command(subcommand)]
    Pack(packs::PackCommand),
    /// Set up a clinic server's database: the clinic and its clinicians.
    #[command(subcommand)]
    Clinic(clinic::ClinicCommand),
    /// The care record format (docs/record-format.md).
    #[command(subcommand)]
    Record(RecordCommand),
}

#[derive(Subcommand, Debug)]
enum RecordCommand {
    /// Print the JSON Schema of the record's entries (docs/record.schema.json).
    Schema,
}

#[derive(Subcommand, Debug)]
enum ChecklistCommand {
    /// Evaluate answers: input `{"session_start": RFC3339, "answers": {id: value}}` from a file or `-` for stdin.
    Evaluate {
        /// Input JSON file, or `-` for standard input.
        input: PathBuf,
        #[command(flatten)]
        pack: engine::PackArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Device(args) => match device::run(args) {
            Ok(output) => Ok(output),
            Err(failure) => {
                eprintln!("katctl: {}", failure.message);
                return ExitCode::from(failure.code);
            }
        },
        Command::Demo(args) => demo::run(args).map(|()| String::new()),
        Command::Checklist(ChecklistCommand::Evaluate { input, pack }) => engine::evaluate(&input, &pack),
        Command::Score { instrument, answers, baseline, pack } => engine::score(&instrument, &answers, baseline, &pack),
        Command::Aftercare { end, tz, pack } => engine::aftercare(&end, &tz, &pack),
        Command::Pack(command) => packs::run(command),
        Command::Clinic(command) => clinic::run(command),
        Command::Record(RecordCommand::Schema) => input::to_json(&katcore::record::json_schema()),
    };
    match result {
        Ok(output) => {
            if !output.is_empty() {
                outln!("{output}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("katctl: {message}");
            ExitCode::FAILURE
        }
    }
}
