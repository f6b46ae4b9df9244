//! Arbitrary bytes as `POST /v1/sync` request and response bodies, merged into a record like the server does.
//! See `katcore_fuzz::sync_body`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    katcore_fuzz::sync_body(data);
});
