//! What the fuzz targets share besides the invariants themselves (which
//! live in `gapless_decoder::fuzzing`, so that `cargo test` replays the
//! corpus through the same code).

/// The JSON parser the invariants check rendered JSON with
/// (`gapless_decoder::fuzzing::JsonParser`): serde_json, which the decoder
/// does not depend on.
pub fn serde_json_parses(text: &str) -> Result<(), String> {
    serde_json::from_str::<serde_json::Value>(text).map(drop).map_err(|e| e.to_string())
}
