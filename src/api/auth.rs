//! The API's bearer token: read from a private file, checked on every
//! request in constant time, never shown.

use std::fmt;
use std::path::Path;

use super::http::{Request, Response, Status};
use super::ApiError;

/// The flag that names the token file, in messages.
pub(crate) const TOKEN_FLAG: &str = "--api-token-file";

/// The shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// The secret every request must present as `Authorization: Bearer TOKEN`.
/// Its `Debug` shows no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<[u8]>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token from the first line of `path` (surrounding white
    /// space trimmed). The file must not be readable by group or others, and
    /// the token must be at least [`MIN_TOKEN_LEN`] printable ASCII
    /// characters. Errors name the file, never its content.
    pub fn from_file(path: &Path) -> Result<Token, ApiError> {
        let refuse = |detail: &dyn fmt::Display| {
            ApiError::TokenFile(format!("{TOKEN_FLAG} {}: {detail}", path.display()))
        };
        crate::private_file::check_private(path).map_err(|why| refuse(&why))?;
        let bytes = std::fs::read(path).map_err(|e| refuse(&e))?;
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default().trim_ascii();
        if line.is_empty() {
            return Err(refuse(&"no token in it (its first line is empty)"));
        }
        if !line.iter().all(u8::is_ascii_graphic) {
            return Err(refuse(
                &"the token must be printable ASCII without spaces (e.g. from `openssl rand -hex 32`)",
            ));
        }
        if line.len() < MIN_TOKEN_LEN {
            return Err(refuse(&format_args!(
                "the token is too short: use at least {MIN_TOKEN_LEN} characters (e.g. from `openssl rand -hex 32`)"
            )));
        }
        Ok(Token(line.into()))
    }

    /// A token from its text, for tests and the fuzz target.
    pub(crate) fn from_text(text: &str) -> Token {
        Token(text.as_bytes().into())
    }

    /// Whether `given` is the token. The time taken depends on the lengths
    /// only, never on which bytes differ.
    fn matches(&self, given: &[u8]) -> bool {
        constant_time_eq(given, &self.0)
    }
}

/// `given == expected`, looking at every byte of `expected` whatever the
/// differences, so the time taken tells nothing about where they are.
pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        // Past the end of `given` (already unequal): compare with 0, so the
        // loop still runs over all of `expected`.
        let g = given.get(i).copied().unwrap_or(0);
        diff |= g ^ e;
    }
    // Keeps the optimiser from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

/// The 401 response for `request` when `token` is set and the request
/// does not carry it; `None` lets the request through.
pub(crate) fn refuse(request: &Request, token: Option<&Token>) -> Option<Response> {
    let token = token?;
    let mut values = request.headers.iter().filter(|(n, _)| n == "authorization").map(|(_, v)| v);
    let problem = match (values.next(), values.next()) {
        (None, _) => "authentication required: send Authorization: Bearer <token>",
        (Some(_), Some(_)) => "more than one Authorization header",
        (Some(value), None) => match bearer_credentials(value) {
            None => "authentication required: the Authorization header is not a Bearer token",
            Some(given) if token.matches(given.as_bytes()) => return None,
            Some(_) => "wrong bearer token",
        },
    };
    let mut response = Response::text(Status::UNAUTHORIZED, problem);
    response.www_authenticate = Some("Bearer");
    Some(response)
}

/// The credentials of a `Bearer` Authorization value (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    let credentials = rest.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"1123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdef0", b"0123456789abcdef"));
        // A prefix padded with what the comparison pads with is no match.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer  abc"), Some("abc"));
        assert_eq!(bearer_credentials("BEARER abc"), Some("abc"));
        assert_eq!(bearer_credentials("Bearer"), None);
        assert_eq!(bearer_credentials("Bearer "), None);
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
    }

    #[test]
    fn debug_hides_the_token() {
        let shown = format!("{:?}", Token::from_text("0123456789abcdef-secret"));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
