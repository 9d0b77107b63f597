//! The small part of HTTP/1.1 the status API needs, without I/O: parsing a
//! request head from the bytes received so far, and encoding a response.
//!
//! Only the head of a request is read, except for the endpoints that take
//! a body (`POST /v1/replay`): theirs must come with a `Content-Length`
//! (see [`body_length`]) and is read up to it. Every response closes the
//! connection, so a body sent anyway is never mistaken for a next request.

use std::fmt::Write as _;

use super::time;

/// Why a request head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    /// Not an HTTP/1.x request head.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The head is longer than the limit.
    #[error("request head longer than {0} bytes")]
    HeadTooLarge(usize),
    /// A well-formed request of another major HTTP version.
    #[error("HTTP version not supported (only HTTP/1.x)")]
    VersionNotSupported,
    /// A body without a `Content-Length`.
    #[error("{0}")]
    LengthRequired(&'static str),
    /// A body longer than the limit.
    #[error("request body of {length} bytes is longer than the limit of {max} bytes")]
    BodyTooLarge {
        /// Its Content-Length.
        length: u64,
        /// The limit.
        max: usize,
    },
}

impl HttpError {
    /// The response status for this error.
    pub(crate) fn status(&self) -> Status {
        match self {
            HttpError::Malformed(_) => Status::BAD_REQUEST,
            HttpError::HeadTooLarge(_) => Status::HEAD_TOO_LARGE,
            HttpError::VersionNotSupported => Status::VERSION_NOT_SUPPORTED,
            HttpError::LengthRequired(_) => Status::LENGTH_REQUIRED,
            HttpError::BodyTooLarge { .. } => Status::PAYLOAD_TOO_LARGE,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The method, case-sensitive as HTTP defines it.
    pub method: String,
    /// The path of the target, without the query ("*" or an authority for
    /// the other target forms).
    pub path: String,
    /// The query, without the "?".
    pub query: Option<String>,
    /// The minor version of HTTP/1.x.
    pub minor_version: u8,
    /// Header fields in order received: names lowercased, values trimmed
    /// (bytes outside ASCII replaced by U+FFFD).
    pub headers: Vec<(String, String)>,
    /// Bytes the head took in the buffer, with its final empty line.
    pub head_len: usize,
    /// The body, for the endpoints that take one (filled in by the
    /// connection once [`body_length`] bytes after the head are in).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of the first header field named `name` (lowercase).
    #[cfg(test)]
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses the request head at the start of `buf`, the bytes received so far.
///
/// `Ok(None)`: the head is not complete yet, read more. A head (with its
/// final empty line) longer than `max_head` bytes is refused, and so are
/// bytes that cannot start an HTTP request, as soon as they arrive (a TLS
/// handshake, say), rather than after the limit or the timeout.
pub(crate) fn parse_request(buf: &[u8], max_head: usize) -> Result<Option<Request>, HttpError> {
    let window = &buf[..buf.len().min(max_head)];
    let Some(end) = head_end(window) else {
        check_prefix(window)?;
        return if buf.len() >= max_head { Err(HttpError::HeadTooLarge(max_head)) } else { Ok(None) };
    };
    parse_head(&buf[..end]).map(Some)
}

/// The end of the head (just past its empty line), if it is all in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    let start = skip_leading_empty_lines(buf);
    let mut line_start = start;
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if (line.is_empty() || line == b"\r") && line_start > start {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Servers should ignore empty lines before a request line (RFC 9112 §2.2).
fn skip_leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match &buf[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [b'\n', ..] => i += 1,
            _ => return i,
        }
    }
}

/// Refuses an incomplete head early when its first bytes cannot be a
/// request line.
fn check_prefix(buf: &[u8]) -> Result<(), HttpError> {
    let rest = &buf[skip_leading_empty_lines(buf)..];
    let rest = match rest {
        [b'\r'] => return Ok(()),
        _ => rest,
    };
    for &b in rest {
        if b == b' ' {
            return Ok(());
        }
        if !is_tchar(b) {
            return Err(HttpError::Malformed("invalid method"));
        }
    }
    Ok(())
}

fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let start = skip_leading_empty_lines(head);
    let mut lines = head[start..].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let (method, target, minor_version) = parse_request_line(request_line)?;
    let (path, query) = split_target(target);

    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        headers.push(parse_header(line)?);
    }

    let hosts = headers.iter().filter(|(n, _)| n == "host").count();
    if hosts > 1 {
        return Err(HttpError::Malformed("more than one Host header"));
    }
    if hosts == 0 && minor_version >= 1 {
        return Err(HttpError::Malformed("missing Host header (required by HTTP/1.1)"));
    }

    Ok(Request {
        method: ascii(method),
        path: ascii(path),
        query: query.map(ascii),
        minor_version,
        headers,
        head_len: head.len(),
        body: Vec::new(),
    })
}

/// The length of the body that follows `request`'s head, for an endpoint
/// that takes one: its `Content-Length`, which is required (411 without it;
/// `Transfer-Encoding` is not accepted, nor a mix of both), must be
/// decimal digits (several fields or a list must all agree), and at most
/// `max_body` (413).
pub(crate) fn body_length(request: &Request, max_body: usize) -> Result<usize, HttpError> {
    if request.headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(HttpError::LengthRequired(
            "Transfer-Encoding is not accepted: send the body with a Content-Length",
        ));
    }
    let mut length: Option<u64> = None;
    let values = request.headers.iter().filter(|(n, _)| n == "content-length");
    for value in values.flat_map(|(_, v)| v.split(',')) {
        let value = value.trim_matches([' ', '\t']);
        if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed("invalid Content-Length"));
        }
        let n: u64 = value.parse().map_err(|_| HttpError::Malformed("invalid Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(HttpError::Malformed("conflicting Content-Length values"));
        }
        length = Some(n);
    }
    let length =
        length.ok_or(HttpError::LengthRequired("a Content-Length is required for a POST with a body"))?;
    match usize::try_from(length) {
        Ok(n) if n <= max_body => Ok(n),
        _ => Err(HttpError::BodyTooLarge { length, max: max_body }),
    }
}

/// The body of `length` bytes after `request`'s head in `buf`, once all of
/// it is there (bytes past it are ignored: the connection closes after the
/// response).
pub(crate) fn take_body(buf: &[u8], request: &Request, length: usize) -> Option<Vec<u8>> {
    let end = request.head_len.checked_add(length)?;
    buf.get(request.head_len..end).map(<[u8]>::to_vec)
}

fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], u8), HttpError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().ok_or(HttpError::Malformed("no request target"))?;
    let version = parts.next().ok_or(HttpError::Malformed("no HTTP version"))?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::Malformed("invalid method"));
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(HttpError::Malformed("invalid request target"));
    }
    let minor = match version {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor] if minor.is_ascii_digit() => minor - b'0',
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HttpError::VersionNotSupported)
        }
        _ => return Err(HttpError::Malformed("invalid HTTP version")),
    };
    Ok((method, target, minor))
}

/// Splits the target into path and query; the absolute form
/// ("http://host/path") is reduced to its path.
fn split_target(target: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut rest = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if rest.len() > scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let after = &rest[scheme.len()..];
            let authority_end = after.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(after.len());
            rest = &after[authority_end..];
            if rest.first() != Some(&b'/') {
                // "http://host" or "http://host?q": the path is "/".
                return match rest.strip_prefix(b"?") {
                    Some(query) => (b"/", Some(query)),
                    None => (b"/", None),
                };
            }
            break;
        }
    }
    match rest.iter().position(|&b| b == b'?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    }
}

fn parse_header(line: &[u8]) -> Result<(String, String), HttpError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HttpError::Malformed("obsolete line folding in headers"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(HttpError::Malformed("header without a colon"))?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::Malformed("invalid header name"));
    }
    let value = trim_ows(&line[colon + 1..]);
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HttpError::Malformed("control character in a header value"));
    }
    Ok((ascii(name).to_ascii_lowercase(), String::from_utf8_lossy(value).into_owned()))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A token character (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes checked to be ASCII as a string.
fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    /// The code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: &'static str,
}

impl Status {
    pub(crate) const OK: Status = Status { code: 200, reason: "OK" };
    pub(crate) const ACCEPTED: Status = Status { code: 202, reason: "Accepted" };
    pub(crate) const BAD_REQUEST: Status = Status { code: 400, reason: "Bad Request" };
    pub(crate) const UNAUTHORIZED: Status = Status { code: 401, reason: "Unauthorized" };
    pub(crate) const NOT_FOUND: Status = Status { code: 404, reason: "Not Found" };
    pub(crate) const METHOD_NOT_ALLOWED: Status = Status { code: 405, reason: "Method Not Allowed" };
    pub(crate) const REQUEST_TIMEOUT: Status = Status { code: 408, reason: "Request Timeout" };
    pub(crate) const CONFLICT: Status = Status { code: 409, reason: "Conflict" };
    pub(crate) const LENGTH_REQUIRED: Status = Status { code: 411, reason: "Length Required" };
    pub(crate) const PAYLOAD_TOO_LARGE: Status = Status { code: 413, reason: "Content Too Large" };
    pub(crate) const HEAD_TOO_LARGE: Status = Status { code: 431, reason: "Request Header Fields Too Large" };
    pub(crate) const INTERNAL_ERROR: Status = Status { code: 500, reason: "Internal Server Error" };
    pub(crate) const UNAVAILABLE: Status = Status { code: 503, reason: "Service Unavailable" };
    pub(crate) const VERSION_NOT_SUPPORTED: Status =
        Status { code: 505, reason: "HTTP Version Not Supported" };
}

/// A response; always closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status.
    pub status: Status,
    /// The Content-Type.
    pub content_type: &'static str,
    /// The Allow header (405 responses).
    pub allow: Option<&'static str>,
    /// The WWW-Authenticate header (401 responses).
    pub www_authenticate: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

/// Content-Type of the plain text error bodies.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    /// A response with `body`.
    pub(crate) fn new(status: Status, content_type: &'static str, body: Vec<u8>) -> Self {
        Response { status, content_type, allow: None, www_authenticate: None, body }
    }

    /// A plain text response: `message` and a newline.
    pub(crate) fn text(status: Status, message: &str) -> Self {
        Response::new(status, TEXT, format!("{message}\n").into_bytes())
    }

    /// The bytes to send: head and body, or only the head (for HEAD
    /// requests: the Content-Length is still that of the body). `now`
    /// (seconds since the epoch) is for the Date header.
    pub(crate) fn encode(&self, head_only: bool, now: u64) -> Vec<u8> {
        let mut head = String::with_capacity(192);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status.code,
            self.status.reason,
            time::http_date(now),
            self.content_type,
            self.body.len(),
        );
        if let Some(allow) = self.allow {
            let _ = write!(head, "Allow: {allow}\r\n");
        }
        if let Some(challenge) = self.www_authenticate {
            let _ = write!(head, "WWW-Authenticate: {challenge}\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    fn parse(s: &str) -> Result<Option<Request>, HttpError> {
        parse_request(s.as_bytes(), MAX)
    }

    fn ok(s: &str) -> Request {
        parse(s).expect("valid").expect("complete")
    }

    #[test]
    fn parses_a_simple_get() {
        let raw = "GET /status HTTP/1.1\r\nHost: localhost:9000\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n";
        let req = ok(raw);
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/status");
        assert_eq!(req.query, None);
        assert_eq!(req.minor_version, 1);
        assert_eq!(req.header("host"), Some("localhost:9000"));
        assert_eq!(req.header("user-agent"), Some("curl/8"));
        assert_eq!(req.head_len, raw.len());
    }

    #[test]
    fn head_len_excludes_what_follows() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody bytes";
        assert_eq!(ok(raw).head_len, raw.len() - "body bytes".len());
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let full = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        for n in 0..full.len() {
            assert_eq!(parse(&full[..n]), Ok(None), "prefix of {n} bytes");
        }
        assert!(parse(full).unwrap().is_some());
    }

    #[test]
    fn accepts_bare_lf_and_leading_empty_lines() {
        let req = ok("\r\n\nGET /status?x=1&y HTTP/1.0\nX-A:  spaced value \t\n\n");
        assert_eq!(req.path, "/status");
        assert_eq!(req.query.as_deref(), Some("x=1&y"));
        assert_eq!(req.minor_version, 0);
        assert_eq!(req.header("x-a"), Some("spaced value"));
        // Leading empty lines alone are not a head.
        assert_eq!(parse("\r\n\r\n"), Ok(None));
    }

    #[test]
    fn http_1_0_needs_no_host_but_1_1_does() {
        assert!(ok("GET / HTTP/1.0\r\n\r\n").headers.is_empty());
        assert!(matches!(parse("GET / HTTP/1.1\r\n\r\n"), Err(HttpError::Malformed(_))));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn absolute_form_targets_are_reduced_to_their_path() {
        assert_eq!(ok("GET http://h:1/status?a HTTP/1.1\r\nHost: h\r\n\r\n").path, "/status");
        assert_eq!(ok("GET HTTP://h:1 HTTP/1.1\r\nHost: h\r\n\r\n").path, "/");
        let req = ok("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!((req.path.as_str(), req.query.as_deref()), ("/", Some("q")));
        assert_eq!(ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").path, "*");
    }

    #[test]
    fn other_methods_are_parsed_for_the_router_to_refuse() {
        assert_eq!(ok("DELETE /status HTTP/1.1\r\nHost: a\r\n\r\n").method, "DELETE");
        assert_eq!(ok("get /status HTTP/1.1\r\nHost: a\r\n\r\n").method, "get");
    }

    #[test]
    fn malformed_heads_are_refused() {
        let bad = [
            "GET\r\n\r\n",
            "GET /\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
            "GET / http/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
        ];
        for raw in bad {
            assert!(matches!(parse(raw), Err(HttpError::Malformed(_))), "{raw:?}: {:?}", parse(raw));
        }
    }

    #[test]
    fn other_http_versions_are_not_supported() {
        assert_eq!(parse("GET / HTTP/2.0\r\n\r\n"), Err(HttpError::VersionNotSupported));
        assert_eq!(parse("GET / HTTP/0.9\r\n\r\n"), Err(HttpError::VersionNotSupported));
        assert_eq!(ok("GET / HTTP/1.2\r\nHost: a\r\n\r\n").minor_version, 2);
    }

    #[test]
    fn garbage_is_refused_before_the_head_is_complete() {
        // The start of a TLS ClientHello.
        assert!(matches!(parse_request(&[0x16, 0x03, 0x01, 0x02, 0x00], MAX), Err(HttpError::Malformed(_))));
        assert!(matches!(parse("{\"json\":"), Err(HttpError::Malformed(_))));
        // A method still arriving is fine.
        assert_eq!(parse("GE"), Ok(None));
        assert_eq!(parse("\r"), Ok(None));
        assert_eq!(parse("\r\nGET /x"), Ok(None));
    }

    #[test]
    fn non_utf8_does_not_panic() {
        let raw = b"GET /\xff\xfe HTTP/1.1\r\nHost: \xc3\x28\r\nX: \x80\r\n\r\n";
        // Bytes above 0x7e are not allowed in the target.
        assert!(parse_request(raw, MAX).is_err());
        let raw = b"GET / HTTP/1.1\r\nHost: \xc3\x28\r\n\r\n";
        let req = parse_request(raw, MAX).unwrap().unwrap();
        assert_eq!(req.header("host"), Some("\u{fffd}("));
    }

    #[test]
    fn head_size_limit() {
        let head = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "v".repeat(100));
        let n = head.len();
        assert!(parse_request(head.as_bytes(), n).unwrap().is_some(), "exactly at the limit");
        assert_eq!(parse_request(head.as_bytes(), n - 1), Err(HttpError::HeadTooLarge(n - 1)));
        // Incomplete and already at the limit.
        assert_eq!(parse_request(&head.as_bytes()[..n - 2], n - 2), Err(HttpError::HeadTooLarge(n - 2)));
        assert_eq!(parse_request(&head.as_bytes()[..n - 2], n - 1), Ok(None));
        // A complete head within the limit followed by more bytes is fine.
        let more = format!("{head}{}", "b".repeat(100));
        assert!(parse_request(more.as_bytes(), n).unwrap().is_some());
    }

    #[test]
    fn parser_never_panics_on_any_prefix_or_byte() {
        let base = b"GET /status?q HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n";
        for n in 0..=base.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b'?', 0x80, 0xff] {
                let mut v = base[..n].to_vec();
                v.push(b);
                v.extend_from_slice(&base[n..]);
                let _ = parse_request(&v, MAX);
                let _ = parse_request(&v, 8);
            }
        }
    }

    fn post(headers: &str) -> Request {
        ok(&format!("POST /v1/replay HTTP/1.1\r\nHost: a\r\n{headers}\r\n"))
    }

    #[test]
    fn post_bodies_need_a_valid_content_length_within_the_limit() {
        assert_eq!(body_length(&post("Content-Length: 12\r\n"), 64), Ok(12));
        assert_eq!(body_length(&post("Content-Length: 0\r\n"), 64), Ok(0));
        assert_eq!(body_length(&post("Content-Length: 64\r\n"), 64), Ok(64));
        // Repeated, or a list, but only of one value.
        assert_eq!(body_length(&post("Content-Length: 5\r\nContent-Length: 5\r\n"), 64), Ok(5));
        assert_eq!(body_length(&post("Content-Length: 5, 5\r\n"), 64), Ok(5));
        assert!(matches!(body_length(&post(""), 64), Err(HttpError::LengthRequired(_))));
        let chunked = post("Transfer-Encoding: chunked\r\n");
        assert!(matches!(body_length(&chunked, 64), Err(HttpError::LengthRequired(_))));
        let both = post("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n");
        assert!(matches!(body_length(&both, 64), Err(HttpError::LengthRequired(_))));
        assert_eq!(
            body_length(&post("Content-Length: 65\r\n"), 64),
            Err(HttpError::BodyTooLarge { length: 65, max: 64 })
        );
        assert_eq!(
            body_length(&post("Content-Length: 99999999999999999\r\n"), 64),
            Err(HttpError::BodyTooLarge { length: 99999999999999999, max: 64 })
        );
        for bad in ["-1", "+5", "5 5", "0x10", "", "5, 6", "99999999999999999999", "1e3"] {
            let req = post(&format!("Content-Length: {bad}\r\n"));
            assert!(matches!(body_length(&req, 64), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        assert!(matches!(
            body_length(&post("Content-Length: 5\r\nContent-Length: 6\r\n"), 64),
            Err(HttpError::Malformed(_))
        ));
        assert_eq!(HttpError::LengthRequired("x").status().code, 411);
        assert_eq!(HttpError::BodyTooLarge { length: 2, max: 1 }.status().code, 413);
    }

    #[test]
    fn the_body_is_taken_once_complete() {
        let raw = b"POST /v1/replay HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n{\"a\":1}";
        let req = parse_request(raw, MAX).unwrap().unwrap();
        let n = body_length(&req, 64).unwrap();
        assert_eq!(take_body(raw, &req, n).as_deref(), Some(&b"{\"a\":"[..]));
        assert_eq!(take_body(&raw[..raw.len() - 3], &req, n), None);
        assert_eq!(take_body(&raw[..req.head_len], &req, 0).as_deref(), Some(&b""[..]));
        assert_eq!(take_body(raw, &req, usize::MAX), None);
    }

    #[test]
    fn encodes_responses() {
        let mut resp = Response::text(Status::METHOD_NOT_ALLOWED, "no");
        resp.allow = Some("GET, HEAD");
        let out = String::from_utf8(resp.encode(false, 784111777)).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 405 Method Not Allowed\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nCache-Control: no-store\r\n\
             Connection: close\r\nAllow: GET, HEAD\r\n\r\nno\n"
        );
        let head = String::from_utf8(resp.encode(true, 0)).unwrap();
        assert!(head.ends_with("\r\n\r\n") && head.contains("Content-Length: 3\r\n"), "{head}");

        let mut resp = Response::text(Status::UNAUTHORIZED, "who?");
        resp.www_authenticate = Some("Bearer");
        let out = String::from_utf8(resp.encode(false, 0)).unwrap();
        assert!(out.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{out}");
        assert!(out.ends_with("\r\nWWW-Authenticate: Bearer\r\n\r\nwho?\n"), "{out}");
    }
}
