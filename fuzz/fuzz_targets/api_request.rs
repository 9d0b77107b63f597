//! Bytes a client sends to the sidecar's API, through the head parser, the
//! token check, the body framing and the JSON bodies: see
//! `gapless::api::fuzzing::check_request` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless::api::fuzzing::check_request(data);
});
