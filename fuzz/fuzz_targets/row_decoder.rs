//! A TABLE_MAP body and a row event body decoded against it: see
//! `gapless_decoder::fuzzing::check_rows` for the input layout and the
//! invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless_decoder::fuzzing::check_rows(data, gapless_fuzz::serde_json_parses);
});
