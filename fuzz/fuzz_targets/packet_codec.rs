//! Bytes of a connection: framing, every message decoder, the COM_QUERY
//! answer reader and the auth exchanges. See
//! `gapless_protocol::fuzzing::check_packets` for the input layout and the
//! invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gapless_protocol::fuzzing::check_packets(data);
});
