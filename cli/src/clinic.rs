//! `katctl clinic …`: bootstrap a clinic server's database.
//!
//! Tokens are printed once, in the JSON output; the database keeps only
//! their SHA-256.

use std::path::PathBuf;

use clap::Subcommand;

use crate::input::to_json;

/// Clinic subcommands.
#[derive(Subcommand, Debug)]
pub enum ClinicCommand {
    /// Create the database if needed, a clinic with a fresh pack-signing key, and its first clinician.
    Init {
        /// The clinic server's SQLite database.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// The clinic's name, shown to devices at enrollment.
        #[arg(long)]
        name: String,
        /// The first clinician's display name.
        #[arg(long)]
        clinician: String,
    },
    /// Add a clinician to an existing clinic.
    AddClinician {
        /// The clinic server's SQLite database.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// The clinic's id (from `katctl clinic init`).
        #[arg(long)]
        clinic: String,
        /// The clinician's display name.
        #[arg(long)]
        name: String,
    },
}

/// Runs a clinic subcommand.
pub fn run(command: ClinicCommand) -> Result<String, String> {
    match command {
        ClinicCommand::Init { db, name, clinician } => katcore_clinic::init_clinic(&db, &name, &clinician)
            .map_err(|e| format!("{}: {e}", db.display()))
            .and_then(|created| to_json(&created)),
        ClinicCommand::AddClinician { db, clinic, name } => katcore_clinic::add_clinician(&db, &clinic, &name)
            .map_err(|e| format!("{}: {e}", db.display()))
            .and_then(|created| to_json(&created)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_add_a_clinician() {
        let dir = std::env::temp_dir().join(format!("katctl-clinic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("clinic.db");
        let init = ClinicCommand::Init { db: db.clone(), name: "Riverside".into(), clinician: "Dr. R".into() };
        let created: serde_json::Value = serde_json::from_str(&run(init).unwrap()).unwrap();
        assert!(created["clinician_token"].as_str().unwrap().starts_with("kc_"));
        assert_eq!(created["key_id"].as_str().unwrap().len(), 16);

        let clinic = created["clinic_id"].as_str().unwrap().to_owned();
        let added = run(ClinicCommand::AddClinician { db: db.clone(), clinic, name: "Nurse N".into() }).unwrap();
        assert!(added.contains("\"clinician_token\": \"kc_"));
        let unknown = run(ClinicCommand::AddClinician { db: db.clone(), clinic: "nope".into(), name: "X".into() });
        assert!(unknown.unwrap_err().contains("no clinic with id nope"));
        let empty = run(ClinicCommand::Init { db, name: " ".into(), clinician: "Dr. R".into() });
        assert!(empty.unwrap_err().contains("clinic name"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
