//! Link settings for the shared library (`cdylib`): packed relocations.
//!
//! A position-independent library carries one load-time relocation for every
//! pointer in its constant data (vtables, panic locations, string tables). In
//! the default format each is a 24-byte entry: about 0.4 MB of this library.
//! Packed, they take a few kilobytes.
//!
//! - Android: always packed (`--pack-dyn-relocs=android`, read by Android 6.0,
//!   API 23, and later; the module's `minSdk` is 24).
//! - Linux with glibc: packed (`-z pack-relative-relocs`, RELR) only when
//!   `KATCORE_PACK_RELOCS=1`, because such a library needs glibc 2.36 or later
//!   to load. The size figure in `BENCHMARKS.md` is given both ways.
//! - iOS ships static libraries: nothing to do here.

use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=KATCORE_PACK_RELOCS");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let requested = env::var("KATCORE_PACK_RELOCS").is_ok_and(|v| v == "1");
    match (os.as_str(), target_env.as_str()) {
        ("android", _) => println!("cargo:rustc-cdylib-link-arg=-Wl,--pack-dyn-relocs=android"),
        ("linux", "gnu") if requested => println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs"),
        _ => {}
    }
}
