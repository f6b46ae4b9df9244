//! The UniFFI binding generator, built from this workspace so that it always
//! matches the UniFFI version the library was compiled with.
//!
//! `scripts/bindings.sh` runs it in library mode on the built `katcore_ffi`
//! library; see that script for the exact command lines.

fn main() {
    uniffi::uniffi_bindgen_main()
}
