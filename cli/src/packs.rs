//! `katctl pack …`: tools for clinics that author content packs.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use katcore::pack::{
    key_id, parse_signing_key, parse_verifying_key, sign_pack, verify_pack, Pack, SignedPack, TrustedKeys,
};

use crate::input::{read_input, read_text, to_json};

/// Pack subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum PackCommand {
    /// Check a pack (bare or signed) against the format and its rules; does not check a signature.
    Validate {
        /// The pack file, or `-`.
        file: PathBuf,
    },
    /// Sign a bare pack with a clinic's private key; writes the signed pack.
    Sign {
        /// The bare pack file, or `-`.
        file: PathBuf,
        /// The clinic's private key (PKCS#8 PEM, e.g. from `katctl pack keygen`).
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Where to write the signed pack (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Verify a signed pack against one or more trusted public keys.
    Verify {
        /// The signed pack file, or `-`.
        file: PathBuf,
        /// Trusted public key file(s): base64 of the 32-byte key, or PEM.
        #[arg(long = "trust", value_name = "KEYFILE", required = true)]
        trust: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the pack format.
    Schema,
    /// Print the built-in default pack, a starting point for a clinic's own.
    Default,
    /// Make a new clinic signing key: writes PREFIX.key (private, mode 0600) and PREFIX.pub.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
}

/// Runs a pack subcommand.
pub(crate) fn run(command: PackCommand) -> Result<String, String> {
    match command {
        PackCommand::Validate { file } => validate(&file),
        PackCommand::Sign { file, key, out } => sign(&file, &key, out.as_deref()),
        PackCommand::Verify { file, trust } => verify(&file, &trust),
        PackCommand::Schema => to_json(&katcore::pack::json_schema()),
        PackCommand::Default => Ok(Pack::default_pack_json().trim_end().to_owned()),
        PackCommand::Keygen { out } => keygen(&out),
    }
}

fn summary(pack: &Pack, extra: serde_json::Value) -> Result<String, String> {
    let mut value = serde_json::json!({
        "id": pack.id,
        "version": pack.version,
        "locales": pack.locales,
        "checklist_items": pack.checklist.len(),
        "screening_questions": pack.screening.len(),
    });
    if let (Some(map), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    to_json(&value)
}

fn validate(file: &Path) -> Result<String, String> {
    let bytes = read_input(file)?;
    let fail = |e: katcore::pack::PackError| format!("{}: {e}", file.display());
    let value: serde_json::Value =
        katcore::json::from_slice(&bytes).map_err(|e| format!("{}: pack is malformed: {e}", file.display()))?;
    let (pack, signed) = match value.get("pack") {
        Some(inner) if value.get("signature").is_some() => {
            (Pack::from_json(inner.to_string().as_bytes()).map_err(fail)?, true)
        }
        _ => (Pack::from_json(&bytes).map_err(fail)?, false),
    };
    pack.check_authoring().map_err(fail)?;
    summary(&pack, serde_json::json!({"valid": true, "signed": signed, "signature_checked": false}))
}

fn sign(file: &Path, key: &Path, out: Option<&Path>) -> Result<String, String> {
    let pack = Pack::from_json(&read_input(file)?).map_err(|e| format!("{}: {e}", file.display()))?;
    let key = parse_signing_key(&read_text(key)?).map_err(|e| format!("{}: {e}", key.display()))?;
    let signed: SignedPack = sign_pack(&pack, &key).map_err(|e| format!("{}: {e}", file.display()))?;
    match out {
        None => Ok(signed.to_json_pretty()),
        Some(out) => {
            std::fs::write(out, signed.to_json_pretty() + "\n")
                .map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
            summary(&pack, serde_json::json!({"signed_by": signed.key_id, "written": out.display().to_string()}))
        }
    }
}

fn verify(file: &Path, trust: &[PathBuf]) -> Result<String, String> {
    let mut trusted = TrustedKeys::default();
    for key in trust {
        trusted.add(parse_verifying_key(&read_text(key)?).map_err(|e| format!("{}: {e}", key.display()))?);
    }
    let bytes = read_input(file)?;
    let pack = verify_pack(&bytes, &trusted).map_err(|e| format!("{}: {e}", file.display()))?;
    let envelope: SignedPack = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    summary(&pack, serde_json::json!({"verified": true, "signed_by": envelope.key_id}))
}

fn keygen(prefix: &Path) -> Result<String, String> {
    use base64::Engine as _;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("cannot encode key: {e}"))?;
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
    let private_path = prefix.with_extension("key");
    let public_path = prefix.with_extension("pub");
    write_private(&private_path, private.as_bytes())?;
    std::fs::write(&public_path, format!("{public}\n"))
        .map_err(|e| format!("{}: cannot write: {e}", public_path.display()))?;
    to_json(&serde_json::json!({
        "key_id": key_id(&key.verifying_key()),
        "public_key": public,
        "private_key_file": private_path.display().to_string(),
        "public_key_file": public_path.display().to_string(),
    }))
}

/// Creates a new file readable only by its owner; refuses to overwrite.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}
