//! A valid ring written to a scratch directory, one of its files damaged
//! by the input, then recovered, read, appended to and read again: see
//! `gapless::ring::fuzzing::check_recovery` for the input layout and the
//! invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless::ring::fuzzing::check_recovery(data);
});
