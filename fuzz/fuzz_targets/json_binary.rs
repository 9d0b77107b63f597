//! One binary JSON column value rendered as JSON text, which must parse
//! with serde_json: see `gapless_decoder::fuzzing::check_json`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless_decoder::fuzzing::check_json(data, gapless_fuzz::serde_json_parses);
});
