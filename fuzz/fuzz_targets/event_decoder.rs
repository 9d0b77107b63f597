//! Whole binlog files, or events behind a chosen FORMAT_DESCRIPTION: see
//! `gapless_decoder::fuzzing::check_events` for the input layout and the
//! invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless_decoder::fuzzing::check_events(data, gapless_fuzz::serde_json_parses);
});
