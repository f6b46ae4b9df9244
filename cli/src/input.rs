//! Reading command inputs: files or standard input, and key files.

use std::io::Read;
use std::path::Path;

/// Reads a file, or standard input for `-`.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("stdin: cannot read: {e}"))?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Reads a UTF-8 text file (keys).
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read_input(path)?).map_err(|_| format!("{}: is not UTF-8 text", path.display()))
}

/// Serializes a result for standard output.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| format!("cannot write JSON: {e}"))
}
