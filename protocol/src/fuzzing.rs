//! Invariants the `packet_codec` fuzz target asserts, kept in the crate so
//! that the fuzz target (`fuzz/fuzz_targets/packet_codec.rs`) and the corpus
//! replay test (`tests/run_all_fuzz_files.rs`) run the very same checks.
//!
//! [`check_packets`] takes arbitrary bytes as a stream of frames, the way
//! the client reads a socket, and panics when an invariant breaks; any input
//! that decodes *or* fails with a well-formed [`ProtocolError`] passes. Not
//! part of the public API.

use std::error::Error as _;
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use crate::auth::{AuthError, AuthExchange, AuthPlugin};
use crate::binlog::{SemiSyncAck, StreamPacket, EVENT_HEADER_LEN};
use crate::command::{Command, RegisterSlave};
use crate::error::ProtocolError;
use crate::handshake::{
    caps, AuthSwitchRequest, HandshakeResponse, InitialHandshake, SslRequest, AUTH_MORE_DATA,
};
use crate::packet::{encode_frames, Framer, HEADER_LEN, MAX_FRAME_PAYLOAD};
use crate::response::{
    decode_err, decode_text_row, encode_err, encode_text_row, is_eof, is_err, is_ok, ColumnDefinition,
    OkPacket, Progress, QueryError, QueryResponse, QueryResult,
};
use crate::wire::Reader;

/// The password every [`AuthExchange`] is driven with. No error's text, no
/// `Debug` output and no response sent over an insecure connection may
/// contain it in any of its [`PASSWORD_FORMS`] (unless the input itself
/// holds that form: a server may echo anything).
pub const PASSWORD: &[u8] = b"pw-SENTINEL-123";

/// At most this many payloads of one input go through the message
/// decoders, the [`QueryResponse`] reader and the auth exchanges.
pub const MAX_PAYLOADS: usize = 64;
/// At most this many server packets per auth exchange.
pub const MAX_AUTH_STEPS: usize = 8;
/// Payloads up to this size also go through a [`Framer::encode`] round trip.
const MAX_ROUND_TRIP: usize = 64 * 1024;
/// The most values [`decode_text_row`] is asked for.
const MAX_ROW_VALUES: usize = 256;

/// Everything the `packet_codec` fuzz target checks.
///
/// `data` is read as the bytes of a connection (frames: 3-byte length,
/// sequence id, payload); the framer starts at the sequence id of the first
/// frame, so captures of any exchange can be seeds. Payloads of 16 MiB and
/// more need more bytes than a fuzz input has: [`check_joined_frames`]
/// checks them, apart.
///
/// Invariants:
///
/// * **Framing** ([`Framer::decode`]): fed all at once, in tiny and medium
///   pieces (sizes derived from the data), starting at the first frame's
///   sequence id and at 0, with and without a small payload limit, the
///   framer yields exactly what an independent reading of the frames
///   yields: the same payloads, each ending at the same stream offset with
///   the same next sequence id, then the same [`ProtocolError`]
///   (`OutOfOrder` or `TooLarge`) or "need more". Re-encoding each payload
///   ([`encode_frames`]) from the sequence id it started at gives back the
///   stream bytes it was read from; [`Framer::encode`] round-trips it; after
///   [`Framer::reset`] a frame with sequence id 0 is read.
/// * **Messages**: `data` and every payload go through every decoder
///   (greeting, handshake response, auth switch, OK, ERR, column
///   definition, text row, command, binlog stream packet in both semi-sync
///   modes, semi-sync ACK). Decode errors point inside the payload; what
///   decodes and has an encoder is a fixed point: `decode(encode(m)) == m`
///   (for [`HandshakeResponse`], up to the three capability flags `encode`
///   derives from the optional fields).
/// * **Query answers**: the payloads, as answers to COM_QUERY with and
///   without `CLIENT_DEPRECATE_EOF`, end in `Done` or an error; result rows
///   have one value per column.
/// * **Authentication**: an [`AuthExchange`] per plugin (native,
///   caching_sha2 and sha256 with `secure` false and true, client_ed25519,
///   cleartext, and the greeting's own plugin) is fed the payloads as auth
///   switches (`0xfe`) or AuthMoreData; no error text, no `Debug` output and
///   no response over an insecure connection holds [`PASSWORD`].
///
/// The work per input is bounded by [`MAX_PAYLOADS`], [`MAX_AUTH_STEPS`] and
/// [`MAX_WAIT`].
pub fn check_packets(data: &[u8]) {
    let payloads = check_framing(data);
    let has_password = PASSWORD_FORMS.iter().any(|form| contains(data, form.as_bytes()));
    check_messages(data, has_password);
    let payloads: Vec<&[u8]> = payloads.iter().take(MAX_PAYLOADS).map(|p| &p[..]).collect();
    for p in &payloads {
        check_messages(p, has_password);
    }
    // Unframed input is one payload for the stateful readers.
    let answer = if payloads.is_empty() { vec![data] } else { payloads };
    check_query_answers(&answer);
    check_auth(data, &answer, has_password);
}

// ---------------------------------------------------------------------------
// Framing

/// A payload as the framer returned it.
struct Payload {
    bytes: Bytes,
    /// Stream offset just past its last frame.
    end: usize,
    /// The framer's sequence id after it.
    seq: u8,
}

/// What reading a stream gave.
struct Framing {
    payloads: Vec<Payload>,
    /// `None`: all complete payloads read, waiting for more bytes.
    error: Option<ProtocolError>,
}

/// The frames of `stream` read without [`Framer`], as its documentation
/// describes them: a frame of `MAX_FRAME_PAYLOAD` bytes continues the
/// payload; a frame's header alone decides a wrong sequence id and a
/// payload growing past `limit` (both errors, the frame stays unread); only
/// then is the frame awaited whole.
fn reference(stream: &[u8], mut seq: u8, limit: usize) -> Framing {
    let mut payloads = Vec::new();
    let mut joined = Vec::new();
    let mut pos = 0;
    let error = loop {
        let Some(header) = stream.get(pos..pos + HEADER_LEN) else { break None };
        let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        if header[3] != seq {
            break Some(ProtocolError::OutOfOrder { expected: seq, got: header[3] });
        }
        if joined.len() + len > limit {
            break Some(ProtocolError::TooLarge { size: joined.len() + len, limit });
        }
        let Some(body) = stream.get(pos + HEADER_LEN..pos + HEADER_LEN + len) else { break None };
        seq = seq.wrapping_add(1);
        pos += HEADER_LEN + len;
        joined.extend_from_slice(body);
        if len < MAX_FRAME_PAYLOAD {
            payloads.push(Payload { bytes: Bytes::from(std::mem::take(&mut joined)), end: pos, seq });
        }
    };
    Framing { payloads, error }
}

/// Piece sizes in `1..=max`, from a xorshift generator seeded by the data.
struct Pieces {
    state: u64,
    max: usize,
}

impl Pieces {
    fn new(data: &[u8], salt: u64, max: usize) -> Self {
        // FNV-1a: the same data always splits the same way.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
        for &b in data.iter().take(4096) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Pieces { state: h | 1, max }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        1 + (self.state % self.max as u64) as usize
    }
}

/// A framer whose next frame must carry `seq`, refusing payloads over
/// `limit` bytes.
fn framer_at(seq: u8, limit: usize) -> Framer {
    let mut framer = Framer::new().with_max_payload(limit);
    let mut scratch = BytesMut::new();
    for _ in 0..seq {
        framer.encode(&[], &mut scratch);
    }
    assert_eq!(framer.sequence(), seq, "each encoded frame advances the sequence id");
    framer
}

/// Feeds `stream` to a framer in pieces (`None`: all at once), calling
/// `decode` until it asks for more after each piece. The framer must then
/// still read a frame with sequence id 0 after [`Framer::reset`].
fn run_framer(stream: &[u8], seq: u8, limit: usize, mut pieces: Option<Pieces>) -> Framing {
    let mut framer = framer_at(seq, limit);
    let mut src = BytesMut::new();
    let mut fed = 0;
    let mut payloads = Vec::new();
    let error = 'feed: loop {
        if fed == stream.len() {
            break None;
        }
        let n = pieces.as_mut().map_or(usize::MAX, Pieces::next).min(stream.len() - fed);
        src.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            match framer.decode(&mut src) {
                Ok(Some(bytes)) => {
                    payloads.push(Payload { bytes, end: fed - src.len(), seq: framer.sequence() })
                }
                Ok(None) => break,
                Err(e) => break 'feed Some(e),
            }
        }
    };
    framer.reset();
    assert_eq!(framer.sequence(), 0, "reset() starts a new command");
    let mut empty = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert_eq!(framer.decode(&mut empty), Ok(Some(Bytes::new())), "an empty frame 0 after reset()");
    Framing { payloads, error }
}

fn assert_same(what: &str, got: &Framing, want: &Framing) {
    let summary = |f: &Framing| {
        let sizes: Vec<_> = f.payloads.iter().map(|p| (p.bytes.len(), p.end, p.seq)).take(16).collect();
        format!("{} payloads (len, end, seq) {sizes:?}…, then {:?}", f.payloads.len(), f.error)
    };
    let same = got.payloads.len() == want.payloads.len()
        && got.payloads.iter().zip(&want.payloads).all(|(g, w)| {
            (g.end, g.seq, g.bytes.len()) == (w.end, w.seq, w.bytes.len()) && g.bytes == w.bytes
        })
        && got.error == want.error;
    assert!(same, "{what}: the framer read\n  {}\nwhere the frames are\n  {}", summary(got), summary(want));
}

/// Each payload, framed again from the sequence id it started at, is the
/// stream bytes it was read from.
fn assert_reencodes(stream: &[u8], mut seq: u8, framing: &Framing) {
    let mut start = 0;
    for (i, p) in framing.payloads.iter().enumerate() {
        let mut out = BytesMut::new();
        let next = encode_frames(&p.bytes, seq, &mut out);
        assert_eq!(next, p.seq, "payload {i}: sequence id after re-encoding");
        assert!(
            out[..] == stream[start..p.end],
            "payload {i} ({} bytes) re-encodes to {} bytes that differ from stream bytes {start}..{}",
            p.bytes.len(),
            out.len(),
            p.end
        );
        if p.bytes.len() <= MAX_ROUND_TRIP {
            let mut wire = BytesMut::new();
            let mut tx = Framer::new();
            tx.encode(&p.bytes, &mut wire);
            let mut rx = Framer::new();
            assert_eq!(rx.decode(&mut wire), Ok(Some(p.bytes.clone())), "payload {i}: encode/decode");
            assert!(wire.is_empty() && tx.sequence() == rx.sequence(), "payload {i}: encode/decode");
        }
        start = p.end;
        seq = p.seq;
    }
}

/// A last frame announcing more than this many bytes beyond the end of the
/// input is cut off after 3 bytes of its header before the framer sees it.
/// The framer reserves room for the whole frame while it waits, 16 MiB per
/// pass, which made the sanitized target 20 times slower; waiting on a
/// partial frame is the same code path for any length.
pub const MAX_WAIT: usize = 64 * 1024;

/// `data`, cut as [`MAX_WAIT`] says.
fn framable(data: &[u8]) -> &[u8] {
    let mut pos = 0;
    while let Some(header) = data.get(pos..pos + HEADER_LEN) {
        let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let end = pos + HEADER_LEN + len;
        if end > data.len() + MAX_WAIT {
            return &data[..pos + HEADER_LEN - 1];
        }
        pos = end;
    }
    data
}

/// The framing checks of [`check_packets`]; returns the payloads.
fn check_framing(data: &[u8]) -> Vec<Bytes> {
    let data = framable(data);
    let seq = data.get(3).copied().unwrap_or(0);
    let want = reference(data, seq, usize::MAX);
    assert_same("all at once", &run_framer(data, seq, usize::MAX, None), &want);
    let tiny = Pieces::new(data, 1, 7);
    assert_same("in pieces of 1..=7 bytes", &run_framer(data, seq, usize::MAX, Some(tiny)), &want);
    let medium = Pieces::new(data, 2, 300);
    assert_same("in pieces of 1..=300 bytes", &run_framer(data, seq, usize::MAX, Some(medium)), &want);
    if seq != 0 {
        let fresh = reference(data, 0, usize::MAX);
        assert_same("starting at sequence id 0", &run_framer(data, 0, usize::MAX, None), &fresh);
    }
    // A small limit, from the last byte: 0..=1020.
    let limit = 4 * usize::from(data.last().copied().unwrap_or(0));
    let limited = reference(data, seq, limit);
    assert_same("with the small limit", &run_framer(data, seq, limit, None), &limited);
    let pieces = Pieces::new(data, 3, 11);
    assert_same("with the small limit, in pieces", &run_framer(data, seq, limit, Some(pieces)), &limited);
    assert_reencodes(data, seq, &want);
    want.payloads.into_iter().map(|p| p.bytes).collect()
}

/// Payloads of 16 MiB and more, which no fuzz input is long enough to hold:
/// for `data` starting with `ff ff ff`, a stream whose first frame is full.
///
/// Layout: `ff ff ff seq | k | pattern [k] | rest`. The first frame's
/// `0xff_ffff` payload bytes are `pattern` repeated (zeros for `k = 0`);
/// `rest` follows as is (the frames that end or continue the payload).
/// The framing invariants of [`check_packets`] are checked on that stream:
/// all at once, in a few large pieces, with a limit just over one frame and
/// with a small one.
pub fn check_joined_frames(data: &[u8]) {
    if !data.starts_with(&[0xff; 3]) {
        return;
    }
    let Some((&k, tail)) = data.get(4..).and_then(<[u8]>::split_first) else { return };
    let (pattern, rest) = tail.split_at(usize::from(k).min(tail.len()));
    let mut stream = Vec::with_capacity(HEADER_LEN + MAX_FRAME_PAYLOAD + rest.len());
    stream.extend_from_slice(&data[..HEADER_LEN]);
    if pattern.is_empty() {
        stream.resize(HEADER_LEN + MAX_FRAME_PAYLOAD, 0);
    } else {
        stream.extend(pattern.iter().cycle().take(MAX_FRAME_PAYLOAD));
    }
    stream.extend_from_slice(rest);
    let seq = data[3];
    let want = reference(&stream, seq, usize::MAX);
    assert_same("joined frames, all at once", &run_framer(&stream, seq, usize::MAX, None), &want);
    let pieces = Pieces::new(data, 4, MAX_FRAME_PAYLOAD / 2);
    assert_same("joined frames in large pieces", &run_framer(&stream, seq, usize::MAX, Some(pieces)), &want);
    for limit in [MAX_FRAME_PAYLOAD + usize::from(k), 4 * usize::from(k)] {
        let limited = reference(&stream, seq, limit);
        let what = format!("joined frames with a {limit}-byte limit");
        assert_same(&what, &run_framer(&stream, seq, limit, None), &limited);
    }
    assert_reencodes(&stream, seq, &want);
}

// ---------------------------------------------------------------------------
// Messages

/// A decode error must describe this payload: offsets inside it, the
/// `Unexpected` summary of its first byte and length, never a framing error.
fn check_error(e: &ProtocolError, payload: &[u8]) {
    let len = payload.len();
    match e {
        ProtocolError::Truncated { offset, needed, .. } => {
            assert!(*offset <= len && *needed > 0, "{e:?} for a {len}-byte payload")
        }
        ProtocolError::Invalid { offset, .. } => assert!(*offset <= len, "{e:?} for a {len}-byte payload"),
        ProtocolError::Unexpected { first, len: l, .. } => assert_eq!(
            (*first, *l),
            (payload.first().copied().unwrap_or(0), len),
            "{e:?} does not describe the payload"
        ),
        ProtocolError::OutOfOrder { .. } | ProtocolError::TooLarge { .. } => {
            panic!("a message decoder returned a framing error: {e:?}")
        }
    }
    assert!(display_len(e) > 0, "{e:?} displays as nothing");
}

/// The length of `value`'s `Display` text, formatted without allocating
/// (allocations are what makes a sanitized fuzz target slow).
fn display_len(value: &impl std::fmt::Display) -> usize {
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut count = Count(0);
    std::fmt::write(&mut count, format_args!("{value}")).expect("Display does not fail");
    count.0
}

/// `decode(encode(m)) == m`.
fn round_trip<T: Debug + PartialEq>(
    what: &str,
    m: &T,
    encode: impl Fn(&T) -> Vec<u8>,
    decode: impl Fn(&[u8]) -> Result<T, ProtocolError>,
) {
    let bytes = encode(m);
    match decode(&bytes) {
        Ok(again) => assert!(
            again == *m,
            "{what}: decode(encode(m)) != m\n       m: {m:?}\n   again: {again:?}\n encoded: {bytes:02x?}"
        ),
        Err(e) => {
            panic!("{what}: the encoding of a decoded message fails to decode ({e}): {m:?} -> {bytes:02x?}")
        }
    }
}

/// Every decoder on one payload. `has_password`: the input holds one of
/// the [`PASSWORD_FORMS`], so it may show up in `Debug` output.
fn check_messages(p: &[u8], has_password: bool) {
    let _ = (is_ok(p), is_err(p));
    assert_eq!(is_eof(p), p.first() == Some(&0xfe) && p.len() < 9, "is_eof");

    match InitialHandshake::decode(p) {
        Ok(m) => {
            let _ = (m.is_mariadb(), m.display_version());
            round_trip("InitialHandshake", &m, InitialHandshake::encode, InitialHandshake::decode);
        }
        Err(e) => check_error(&e, p),
    }
    match HandshakeResponse::decode(p) {
        Ok(m) => check_handshake_response(&m),
        Err(e) => check_error(&e, p),
    }
    match AuthSwitchRequest::decode(p) {
        Ok(m) => round_trip("AuthSwitchRequest", &m, AuthSwitchRequest::encode, AuthSwitchRequest::decode),
        Err(e) => check_error(&e, p),
    }
    match OkPacket::decode(p) {
        Ok(m) => round_trip("OkPacket", &m, OkPacket::encode, OkPacket::decode),
        Err(e) => check_error(&e, p),
    }
    match decode_err(p) {
        Ok(m) => {
            let text = m.to_string();
            assert!(text.starts_with(&format!("ERROR {}", m.code)), "{text}");
            round_trip("ERR packet", &m, encode_err, decode_err);
        }
        Err(e) => check_error(&e, p),
    }
    match ColumnDefinition::decode(p) {
        Ok(m) => round_trip("ColumnDefinition", &m, ColumnDefinition::encode, ColumnDefinition::decode),
        Err(e) => check_error(&e, p),
    }
    check_text_rows(p);
    match Command::decode(p) {
        Ok(m) => {
            round_trip("Command", &m, Command::encode, Command::decode);
            if let Command::RegisterSlave(r) = &m {
                if !has_password {
                    let probe = RegisterSlave { password: PASSWORD.to_vec(), ..r.clone() };
                    assert_no_password("RegisterSlave Debug", &format!("{probe:?}"));
                }
            }
        }
        Err(e) => check_error(&e, p),
    }
    for semi_sync in [false, true] {
        check_stream_packet(p, semi_sync);
    }
    match SemiSyncAck::decode(p) {
        Ok(m) => round_trip("SemiSyncAck", &m, SemiSyncAck::encode, SemiSyncAck::decode),
        Err(e) => check_error(&e, p),
    }
}

/// Round trip up to the capability flags `encode` sets or clears to match
/// the optional fields; the `Debug` output hides the auth response; the
/// TLS request is the first 32 bytes of the response, alone.
fn check_handshake_response(m: &HandshakeResponse) {
    let mut want = m.clone();
    for (present, flag) in [
        (m.database.is_some(), caps::CONNECT_WITH_DB),
        (m.auth_plugin.is_some(), caps::PLUGIN_AUTH),
        (!m.attributes.is_empty(), caps::CONNECT_ATTRS),
    ] {
        want.capabilities = if present { want.capabilities | flag } else { want.capabilities & !flag };
    }
    let bytes = m.encode();
    match HandshakeResponse::decode(&bytes) {
        Ok(again) => assert!(
            again == want,
            "HandshakeResponse: decode(encode(m)) != m (flags adjusted)\n       m: {want:?}\n   again: \
             {again:?}\n encoded: {bytes:02x?}"
        ),
        Err(e) => panic!("HandshakeResponse: the encoding of {m:?} fails to decode ({e}): {bytes:02x?}"),
    }
    let text = format!("{m:?}");
    assert!(text.contains(&format!("<{} bytes>", m.auth_response.len())), "{text}");
    let ssl =
        SslRequest { capabilities: m.capabilities, max_packet: m.max_packet, charset: m.charset }.encode();
    assert_eq!(ssl.len(), 32, "SslRequest length");
    assert_eq!(ssl[..4], (m.capabilities | caps::SSL).to_le_bytes()[..], "SslRequest capabilities");
    assert_eq!(ssl[4..], bytes[4..32], "SslRequest is the prefix of the response");
    assert!(
        matches!(HandshakeResponse::decode(&ssl), Err(ProtocolError::Truncated { what: "user", .. })),
        "an SslRequest is not a whole handshake response"
    );
}

/// How many length-encoded values (or NULLs) `p` starts with, at most
/// [`MAX_ROW_VALUES`].
fn count_values(p: &[u8]) -> usize {
    let mut r = Reader::new(p);
    let mut n = 0;
    while n < MAX_ROW_VALUES && !r.is_empty() && r.lenenc_bytes_or_null("value").is_ok() {
        n += 1;
    }
    n
}

fn check_text_rows(p: &[u8]) {
    let natural = count_values(p);
    for columns in [0, 1, 2, natural] {
        match decode_text_row(p, columns) {
            Ok(row) => {
                assert_eq!(row.len(), columns, "values in a text row");
                let bytes = encode_text_row(&row);
                // Shortest length prefixes: never longer than what was read.
                assert!(bytes.len() <= p.len(), "a text row re-encodes longer than it was");
                assert_eq!(decode_text_row(&bytes, columns).as_ref(), Ok(&row), "text row round trip");
            }
            Err(e) => check_error(&e, p),
        }
    }
}

fn check_stream_packet(p: &[u8], semi_sync: bool) {
    let payload = Bytes::copy_from_slice(p);
    match StreamPacket::decode(payload.clone(), semi_sync) {
        Ok(m) => {
            match &m {
                StreamPacket::Event { event, needs_ack } => {
                    let at = if semi_sync { 3 } else { 1 };
                    assert!(event.len() >= EVENT_HEADER_LEN, "an event shorter than its header");
                    assert!(event[..] == p[at..], "the event is not the payload after the stream header");
                    assert_eq!(event.as_ptr(), payload[at..].as_ptr(), "the event is a copy, not a slice");
                    assert!(semi_sync || !needs_ack, "needs_ack without semi-sync");
                }
                StreamPacket::End => assert!(is_eof(p), "End from a non-EOF payload"),
                StreamPacket::Error(e) => assert_eq!(Ok(e), decode_err(p).as_ref(), "stream ERR"),
            }
            let what = if semi_sync { "StreamPacket (semi-sync)" } else { "StreamPacket" };
            round_trip(
                what,
                &m,
                |m| m.encode(semi_sync),
                |b| StreamPacket::decode(Bytes::copy_from_slice(b), semi_sync),
            );
        }
        Err(e) => check_error(&e, p),
    }
}

// ---------------------------------------------------------------------------
// Query answers

/// The payloads as the server's answers to successive COM_QUERYs: a new
/// [`QueryResponse`] after each `Done` or error; read following the
/// more-results flag, and counting (as many statements per query as the
/// number of payloads says, 1 to 4).
fn check_query_answers(payloads: &[&[u8]]) {
    let statements = payloads.len() as u64 % 4 + 1;
    for (capabilities, counted) in
        [(0, false), (caps::DEPRECATE_EOF, false), (0, true), (caps::DEPRECATE_EOF, true)]
    {
        let mut rest = payloads;
        while !rest.is_empty() {
            let mut q = match counted {
                true => QueryResponse::counted(capabilities, statements),
                false => QueryResponse::new(capabilities),
            };
            let mut used = 0;
            for p in rest {
                used += 1;
                match q.push(p) {
                    Ok(Progress::NeedMore) => continue,
                    Ok(Progress::Done(result)) => check_query_result(&result),
                    Err(QueryError::Server(e)) => {
                        assert!(is_err(p), "a server error from a payload that is not ERR");
                        assert_eq!(Ok(&e), decode_err(p).as_ref(), "server error");
                    }
                    Err(QueryError::Protocol(e)) => check_error(&e, p),
                }
                break;
            }
            rest = &rest[used..];
        }
    }
}

fn check_query_result(result: &QueryResult) {
    if let QueryResult::Rows(set) = result {
        assert!(!set.columns.is_empty(), "a result set without columns");
        for (i, row) in set.rows.iter().enumerate() {
            assert_eq!(row.len(), set.columns.len(), "values in row {i}");
        }
        for c in &set.columns {
            let _ = set.column(&String::from_utf8_lossy(&c.name));
        }
    }
}

// ---------------------------------------------------------------------------
// Authentication

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    haystack.len() >= needle.len()
        && haystack[..=haystack.len() - needle.len()]
            .iter()
            .enumerate()
            .any(|(i, &b)| b == first && haystack[i + 1..].starts_with(rest))
}

/// [`PASSWORD`] as text, as `Debug` shows bytes, and in hex.
pub const PASSWORD_FORMS: [&str; 3] = [
    "pw-SENTINEL-123",
    "[112, 119, 45, 83, 69, 78, 84, 73, 78, 69, 76, 45, 49, 50, 51]",
    "70772d53454e54494e454c2d313233",
];

/// `text` shows [`PASSWORD`] in none of its [`PASSWORD_FORMS`].
fn assert_no_password(what: &str, text: &str) {
    for form in PASSWORD_FORMS {
        assert!(!contains(text.as_bytes(), form.as_bytes()), "{what} shows the password: {text}");
    }
}

fn check_auth_error(e: &AuthError) {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert_no_password("an auth error", &text);
}

/// One step's outcome: a response over an insecure connection must not hold
/// the password; errors must not show it.
fn check_auth_step(ex: &AuthExchange, secure: bool, step: Result<Option<Vec<u8>>, AuthError>) {
    match step {
        Ok(Some(response)) => {
            assert!(
                secure || !contains(&response, PASSWORD),
                "{} sent the password in clear over an insecure connection",
                ex.plugin()
            );
        }
        Ok(None) => {}
        Err(e) => check_auth_error(&e),
    }
}

/// Drives an [`AuthExchange`] per plugin with the payloads as the server's
/// auth packets: `0xfe` = auth switch, `0x01` = AuthMoreData, anything else
/// is given to `more_data` whole. The nonce is the greeting's when the
/// first payload is one, else the first 20 bytes of `data`.
///
/// Every exchange computes its initial response except the fixed
/// client_ed25519 one: a signature of an arbitrary nonce costs two scalar
/// multiplications and teaches nothing. It is computed when the greeting
/// names client_ed25519, and on every switch to it.
///
/// An auth switch replaces the plugin, the nonce and the state, so after the
/// first one all exchanges with the same `secure` go on alike: only the
/// first of each goes past it (RSA and Ed25519 are slow).
fn check_auth(data: &[u8], payloads: &[&[u8]], has_password: bool) {
    let greeting = payloads.first().and_then(|p| InitialHandshake::decode(p).ok());
    let nonce = greeting.as_ref().map_or_else(|| data[..data.len().min(20)].to_vec(), |g| g.nonce.clone());
    let mut setups = vec![
        (AuthPlugin::MysqlNativePassword, false, true),
        (AuthPlugin::CachingSha2Password, false, true),
        (AuthPlugin::CachingSha2Password, true, true),
        (AuthPlugin::Sha256Password, false, true),
        (AuthPlugin::Sha256Password, true, true),
        (AuthPlugin::ClientEd25519, false, false),
        (AuthPlugin::MysqlClearPassword, false, true),
    ];
    if let Some(name) = greeting.as_ref().and_then(|g| g.auth_plugin.as_deref()) {
        setups.push((AuthPlugin::from_name(name), false, true));
    }
    let mut switched = [false; 2];
    for (plugin, secure, initial) in setups {
        let mut ex = AuthExchange::new(plugin, PASSWORD.to_vec(), nonce.clone(), secure);
        // Whether this exchange is the one that goes past the first switch.
        let mut leads = false;
        if initial {
            let first = ex.initial_response().map(Some);
            if !has_password {
                check_auth_step(&ex, secure, first);
            }
        }
        for p in payloads.iter().take(MAX_AUTH_STEPS) {
            let step = match p.first() {
                Some(&AuthSwitchRequest::HEADER) => {
                    let Ok(switch) = AuthSwitchRequest::decode(p) else { continue };
                    if !leads {
                        if std::mem::replace(&mut switched[usize::from(secure)], true) {
                            break;
                        }
                        leads = true;
                    }
                    let step = ex.switch(&switch.plugin, &switch.data).map(Some);
                    assert_eq!(ex.plugin(), &AuthPlugin::from_name(&switch.plugin), "plugin after a switch");
                    step
                }
                Some(&AUTH_MORE_DATA) => ex.more_data(&p[1..]),
                _ => ex.more_data(p),
            };
            if !has_password {
                check_auth_step(&ex, secure, step);
            }
        }
        if !has_password {
            assert_no_password("AuthExchange Debug", &format!("{ex:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_forms() {
        let hex: String = PASSWORD.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(PASSWORD_FORMS, [std::str::from_utf8(PASSWORD).unwrap(), &format!("{PASSWORD:?}"), &hex]);
    }
}
