//! Arbitrary bytes as a saved care record (`CareRecord::load`) and as snapshot + changes (`load_parts`).
//! See `katcore_fuzz::record_load`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    katcore_fuzz::record_load(data);
});
