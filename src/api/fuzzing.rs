//! What the `api_request` fuzz target checks (and `tests/run_all_fuzz_files.rs`
//! replays): the API's parsers never panic on any bytes a client can send,
//! and what they accept is consistent.
//!
//! The input is a whole request as it arrives (head and body). It goes
//! through the head parser with the server's limits, the bearer-token check,
//! the body length and body extraction, the routing of job paths, and the
//! JSON bodies of `POST /v1/replay` and `POST /v1/positions`; the input is
//! also given to the body parsers and the UID decoding as it is, so they see
//! arbitrary bytes and not only well-framed requests.

use super::auth::{self, Token};
use super::http;
use super::positions::{parse_body, percent_decode, percent_encode};
use super::replay::parse_start;
use super::{job_path, Limits};

/// The token the fuzz target's requests are checked against.
const TOKEN: &str = "fuzz-token-0123456789abcdef";

/// Runs every API parser over `data`; panics when an invariant breaks.
pub fn check_request(data: &[u8]) {
    let limits = Limits::default();
    match http::parse_request(data, limits.max_head) {
        Ok(Some(request)) => {
            assert!(request.head_len <= data.len().min(limits.max_head), "head past the input or the limit");
            let refused = auth::refuse(&request, Some(&Token::from_text(TOKEN)));
            let authorizations: Vec<&str> = request
                .headers
                .iter()
                .filter(|(name, _)| name == "authorization")
                .map(|(_, value)| value.as_str())
                .collect();
            if refused.is_none() {
                assert!(
                    authorizations.len() == 1 && authorizations[0].ends_with(TOKEN),
                    "let in without the token: {authorizations:?}"
                );
            }
            if let Ok(length) = http::body_length(&request, limits.max_body) {
                assert!(length <= limits.max_body, "a body longer than the limit");
                if let Some(body) = http::take_body(data, &request, length) {
                    assert_eq!(body.len(), length);
                    check_body(&body);
                }
            }
            for collection in ["/v1/replay", "/v1/positions"] {
                if let Some(Some(id)) = job_path(&request.path, collection) {
                    assert!(!id.is_empty() && !id.contains('/'));
                    check_uid(id);
                }
            }
        }
        Ok(None) => assert!(data.len() < limits.max_head, "an incomplete head past the limit"),
        Err(e) => {
            let _ = e.status();
        }
    }
    check_body(data);
    check_uid(&String::from_utf8_lossy(data));
}

/// The JSON bodies: accepted or refused with a message, never a panic.
fn check_body(body: &[u8]) {
    if let Err(message) = parse_start(body) {
        assert!(!message.is_empty());
    }
    match parse_body(body) {
        Ok((uid, replicas)) => assert!(!uid.is_empty() && !replicas.is_empty()),
        Err(message) => assert!(!message.is_empty()),
    }
}

/// A UID from a URL: what decodes encodes back to itself.
fn check_uid(text: &str) {
    if let Some(uid) = percent_decode(text) {
        assert_eq!(percent_decode(&percent_encode(&uid)).as_deref(), Some(uid.as_str()));
    }
}
