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

/// Writes to stdout; see [`closed_pipe`] for a reader that went away.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        closed_pipe(&e);
    }
}

/// Flushes stdout; see [`closed_pipe`].
pub(crate) fn flush_stdout() {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        closed_pipe(&e);
    }
}

/// Ends the process quietly with code 141 (128 + `SIGPIPE`, what a shell
/// reports for a Unix tool ended by a closed pipe) when stdout's reader is
/// gone, as in `katctl … | head`: nothing more can be shown, and a panic's
/// backtrace would only alarm. Any other write error is reported once on
/// stderr with code 1.
pub(crate) fn closed_pipe(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("katctl: cannot write the output: {error}");
    std::process::exit(1);
}
