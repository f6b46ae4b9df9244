//! Arbitrary bytes as a signed pack (`verify_pack`, fixed trusted key) and as a bare pack (`Pack::from_json`).
//! See `katcore_fuzz::pack_verify`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    katcore_fuzz::pack_verify(data);
});
