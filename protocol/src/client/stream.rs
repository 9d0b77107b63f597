use std::time::Duration;

use bytes::Bytes;

use super::{ClientError, Connection};
use crate::binlog::{SemiSyncAck, StreamPacket};

/// One event off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The event, header to checksum, as the primary wrote it.
    pub bytes: Bytes,
    /// Semi-sync: the primary waits for an ACK of this event
    /// ([`BinlogStream::ack`]) before it tells the client "committed".
    pub needs_ack: bool,
}

/// A connection that has sent a binlog dump command.
#[derive(Debug)]
pub struct BinlogStream {
    conn: Connection,
    semi_sync: bool,
    idle_timeout: Option<Duration>,
}

impl BinlogStream {
    pub(super) fn new(conn: Connection, semi_sync: bool, idle_timeout: Option<Duration>) -> Self {
        BinlogStream { conn, semi_sync, idle_timeout }
    }

    /// The next event; `None` when the primary ends a non-blocking dump.
    ///
    /// Cancel-safe (use it in `select!`): bytes already read are kept. With
    /// an idle timeout, silence longer than it is an error: heartbeats keep
    /// a healthy idle stream talking, so silence means the link is gone.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, ClientError> {
        let payload = match self.idle_timeout {
            None => self.conn.read_payload().await?,
            Some(after) => tokio::time::timeout(after, self.conn.read_payload())
                .await
                .map_err(|_| ClientError::Silent { addr: self.conn.addr.clone(), after })??,
        };
        self.decode(payload)
    }

    /// The next event if it is already buffered, without waiting:
    /// `Ok(None)` means "nothing buffered, [`next`](Self::next) would wait"
    /// — the moment to flush output. `Ok(Some(None))` is the end of a
    /// non-blocking dump.
    #[allow(clippy::option_option)]
    pub fn try_next(&mut self) -> Result<Option<Option<StreamEvent>>, ClientError> {
        match self.conn.framer.decode(&mut self.conn.rbuf).map_err(|e| self.conn.protocol(e))? {
            None => Ok(None),
            Some(payload) => self.decode(payload).map(Some),
        }
    }

    fn decode(&mut self, payload: Bytes) -> Result<Option<StreamEvent>, ClientError> {
        match StreamPacket::decode(payload, self.semi_sync).map_err(|e| self.conn.protocol(e))? {
            StreamPacket::Event { event, needs_ack } => {
                if needs_ack {
                    // The primary flushes such an event and resets its packet
                    // count as if it had read the ACK (sequence 0): the next
                    // packet carries 1, whenever the ACK actually arrives.
                    self.conn.framer.set_sequence(1);
                }
                Ok(Some(StreamEvent { bytes: event, needs_ack }))
            }
            StreamPacket::End => Ok(None),
            StreamPacket::Error(error) => Err(ClientError::Server { addr: self.conn.addr.clone(), error }),
        }
    }

    /// Acknowledges (semi-sync) everything up to `position` in binlog
    /// `file`. Call it only once the event is durable on this side: the
    /// primary takes the ACK as "the replica has it".
    pub async fn ack(&mut self, file: &[u8], position: u64) -> Result<(), ClientError> {
        let ack = SemiSyncAck { position, file: file.to_vec() };
        self.conn.send_detached(&ack.encode(), 0).await
    }

    /// Whether the session negotiated semi-sync headers.
    pub fn semi_sync(&self) -> bool {
        self.semi_sync
    }

    /// The connection underneath (server version, address).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
