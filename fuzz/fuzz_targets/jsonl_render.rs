//! Mutated binlogs rendered as JSON lines: see
//! `gapless::render::fuzzing::check_jsonl` for the input layout and the
//! invariants (every line a whole JSON object, no panic).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _lines = gapless::render::fuzzing::check_jsonl(data);
});
