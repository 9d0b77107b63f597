//! JSON lines rendered from mutated binlogs (fuzz target `jsonl_render`),
//! kept here so that `cargo test` replays the corpus through the same code.
//!
//! The input layout is that of the decoder's `event_decoder` target: input
//! that starts with the binlog magic is a whole file; any other input is a
//! selector byte (which FORMAT_DESCRIPTION goes in front) and events. The
//! file is read without checksum verification, so mutated bodies reach the
//! renderer.
//!
//! Invariants: no panic; every line the renderer writes is one complete
//! JSON object, even when an event fails to render part-way (the lines
//! before the failure stay whole, nothing half-written is left).

use gapless_decoder::fuzzing::format_prefix;
use gapless_decoder::{BinlogReader, Decoder};

use super::jsonl::JsonlRender;
use super::{Context, Render};

/// Renders every event of `data` that decodes and checks each line;
/// returns how many lines there were.
pub fn check_jsonl(data: &[u8]) -> usize {
    let file = if data.starts_with(&gapless_decoder::header::BINLOG_MAGIC) {
        data.to_vec()
    } else {
        let Some((&selector, events)) = data.split_first() else { return 0 };
        let mut file = format_prefix(selector);
        file.extend_from_slice(events);
        file
    };
    let Ok(mut reader) = BinlogReader::new(&file, Decoder::new().verify_checksums(false)) else { return 0 };
    let mut render = JsonlRender::in_memory(0);
    let cx = Context { file: "fuzz-bin.000001", gtid: Some("0-1-1"), in_trx: None };
    while let Some(Ok(event)) = reader.next() {
        // A row that fails to decode ends the event; what came before it
        // must still be whole lines.
        let _ = render.event(&cx, &event);
    }
    let out = render.take_output();
    assert!(out.is_empty() || out.ends_with(b"\n"), "the output ends inside a line");
    let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    for line in &lines {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(other) => panic!("a line is not an object: {other}"),
            Err(e) => panic!("a line is not JSON ({e}): {}", String::from_utf8_lossy(line)),
        }
    }
    lines.len()
}
