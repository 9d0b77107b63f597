//! Mutated binlogs rendered as SQL, as replay renders it: see
//! `gapless::render::fuzzing::check_sql` for the input layout and the
//! invariants (no panic, every row statement one line with its quotes
//! closed).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _rows = gapless::render::fuzzing::check_sql(data);
});
