//! Packet framing: a 3-byte length and a 1-byte sequence id in front of every
//! payload, and payloads of 16 MiB − 1 bytes or more split across frames.
//!
//! A payload of exactly `0xff_ffff` bytes or more is sent as frames of
//! `0xff_ffff` bytes followed by a shorter one (possibly empty); the reader
//! joins them. Binlog events larger than 16 MiB arrive this way, and clients
//! that forget the joining step lose them.
//!
//! Every frame carries the next sequence id (wrapping at 256). The client
//! starts each command at 0; the server answers with 1, 2, ….
//! [`Framer`] keeps that count for both directions, so a lost or reordered
//! frame is an error instead of a silently garbled message.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::ProtocolError;

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;
/// The largest payload of one frame; a frame this full means "more follows".
pub const MAX_FRAME_PAYLOAD: usize = 0xff_ffff;

/// Splits an incoming byte stream into payloads and frames outgoing ones.
#[derive(Debug)]
pub struct Framer {
    seq: u8,
    /// Frames of a payload that is still being joined.
    partial: Option<BytesMut>,
    max_payload: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

impl Framer {
    /// A framer with no limit on the size of a joined payload but the
    /// address space (binlog events may legally be 1 GiB).
    pub fn new() -> Self {
        Framer { seq: 0, partial: None, max_payload: usize::MAX }
    }

    /// Refuses joined payloads bigger than `limit` bytes.
    pub fn with_max_payload(mut self, limit: usize) -> Self {
        self.max_payload = limit;
        self
    }

    /// Starts a new command: the next frame sent carries sequence id 0.
    pub fn reset(&mut self) {
        self.seq = 0;
        self.partial = None;
    }

    /// Sets the sequence id the next frame must carry: a semi-sync primary
    /// restarts its count after each event it wants acknowledged.
    pub fn set_sequence(&mut self, seq: u8) {
        self.seq = seq;
    }

    /// The sequence id the next frame (in either direction) must carry.
    pub fn sequence(&self) -> u8 {
        self.seq
    }

    /// Takes one whole payload off the front of `src`, or returns `None` when
    /// `src` does not hold all of it yet (read more and call again).
    ///
    /// A payload that fits one frame is split off `src` without copying.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        loop {
            if src.len() < HEADER_LEN {
                return Ok(None);
            }
            let len = usize::from(src[0]) | usize::from(src[1]) << 8 | usize::from(src[2]) << 16;
            // Checked from the header alone, before waiting for (and
            // reserving room for) a body that may never be wanted.
            let got = src[3];
            if got != self.seq {
                return Err(ProtocolError::OutOfOrder { expected: self.seq, got });
            }
            let joined = self.partial.as_ref().map_or(0, BytesMut::len) + len;
            if joined > self.max_payload {
                self.partial = None;
                return Err(ProtocolError::TooLarge { size: joined, limit: self.max_payload });
            }
            if src.len() < HEADER_LEN + len {
                src.reserve(HEADER_LEN + len - src.len());
                return Ok(None);
            }
            self.seq = self.seq.wrapping_add(1);
            src.advance(HEADER_LEN);
            let frame = src.split_to(len);
            match (self.partial.take(), len == MAX_FRAME_PAYLOAD) {
                (None, false) => return Ok(Some(frame.freeze())),
                (None, true) => self.partial = Some(frame),
                (Some(mut partial), more) => {
                    // Adjacent halves join for free; otherwise this copies.
                    partial.unsplit(frame);
                    if !more {
                        return Ok(Some(partial.freeze()));
                    }
                    self.partial = Some(partial);
                }
            }
        }
    }

    /// Appends `payload` to `dst` as one or more frames with the next
    /// sequence ids.
    pub fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) {
        self.seq = encode_frames(payload, self.seq, dst);
    }
}

/// Frames `payload` starting at sequence id `seq` without touching any
/// [`Framer`]'s count; returns the id after the last frame. Semi-sync ACKs
/// travel this way: they start at 0 while the event stream keeps counting.
pub fn encode_frames(payload: &[u8], mut seq: u8, dst: &mut BytesMut) -> u8 {
    dst.reserve(payload.len() + HEADER_LEN * (1 + payload.len() / MAX_FRAME_PAYLOAD));
    let mut chunks = payload.chunks(MAX_FRAME_PAYLOAD);
    loop {
        let chunk = chunks.next().unwrap_or(&[]);
        dst.extend_from_slice(&(chunk.len() as u32).to_le_bytes()[..3]);
        dst.extend_from_slice(&[seq]);
        dst.extend_from_slice(chunk);
        seq = seq.wrapping_add(1);
        // A full last frame needs an empty one after it to say "no more".
        if chunk.len() < MAX_FRAME_PAYLOAD {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        out.push(seq);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn small_payloads_in_sequence() {
        let mut src = BytesMut::new();
        src.extend_from_slice(&frame(1, b"hello"));
        src.extend_from_slice(&frame(2, b""));
        src.extend_from_slice(&frame(3, b"x")[..3]);
        let mut f = Framer::new();
        f.seq = 1;
        assert_eq!(f.decode(&mut src).unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(f.decode(&mut src).unwrap().unwrap(), &b""[..]);
        assert_eq!(f.decode(&mut src).unwrap(), None, "partial header waits");
        src.extend_from_slice(&[3]);
        assert_eq!(f.decode(&mut src).unwrap(), None, "payload not there yet");
        src.extend_from_slice(b"x");
        assert_eq!(f.decode(&mut src).unwrap().unwrap(), &b"x"[..]);
        assert_eq!(f.sequence(), 4);
        assert!(src.is_empty());
    }

    #[test]
    fn wrong_sequence_is_an_error() {
        let mut src = BytesMut::from(&frame(5, b"a")[..]);
        assert_eq!(Framer::new().decode(&mut src), Err(ProtocolError::OutOfOrder { expected: 0, got: 5 }));
    }

    #[test]
    fn sequence_wraps_at_256() {
        let mut f = Framer::new();
        let mut src = BytesMut::new();
        for i in 0..300u32 {
            src.extend_from_slice(&frame(i as u8, &i.to_le_bytes()));
        }
        for i in 0..300u32 {
            assert_eq!(f.decode(&mut src).unwrap().unwrap(), &i.to_le_bytes()[..]);
        }
    }

    /// Sizes around the 16 MiB frame limit, through encode and decode, fed
    /// in uneven pieces so every split point of the header is exercised.
    #[test]
    fn payloads_over_16_mib_are_split_and_joined() {
        for len in
            [MAX_FRAME_PAYLOAD - 1, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD + 1, 2 * MAX_FRAME_PAYLOAD + 7]
        {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut wire = BytesMut::new();
            let mut tx = Framer::new();
            tx.encode(&payload, &mut wire);
            let frames = 1 + len / MAX_FRAME_PAYLOAD;
            assert_eq!(wire.len(), len + HEADER_LEN * frames, "len {len}");
            assert_eq!(tx.sequence() as usize, frames);
            tx.encode(b"next", &mut wire);

            let mut rx = Framer::new();
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(4_000_001) {
                src.extend_from_slice(piece);
                while let Some(p) = rx.decode(&mut src).unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(got.len(), 2, "len {len}");
            assert!(got[0] == payload, "payload of {len} bytes changed on the way");
            assert_eq!(got[1], &b"next"[..]);
        }
    }

    #[test]
    fn joined_payload_limit() {
        let payload = vec![7u8; MAX_FRAME_PAYLOAD + 10];
        let mut wire = BytesMut::new();
        Framer::new().encode(&payload, &mut wire);
        let mut rx = Framer::new().with_max_payload(MAX_FRAME_PAYLOAD + 5);
        assert_eq!(
            rx.decode(&mut wire),
            Err(ProtocolError::TooLarge { size: MAX_FRAME_PAYLOAD + 10, limit: MAX_FRAME_PAYLOAD + 5 })
        );
    }

    #[test]
    fn detached_frames_leave_the_count_alone() {
        let mut wire = BytesMut::new();
        assert_eq!(encode_frames(b"ack", 0, &mut wire), 1);
        assert_eq!(&wire[..], &frame(0, b"ack")[..]);
    }
}
