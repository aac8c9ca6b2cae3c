//! Connections to execd's control socket: non-blocking, each with a bounded reply queue, so a
//! slow or dead client never blocks execd.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use oomd_proto::{ExecdReply, WireError, MAX_MESSAGE_LEN};

use crate::limits::CLIENT_QUEUE;

/// One control connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) fd: OwnedFd,
    /// The peer's pid as the kernel saw it at connect time (`SO_PEERCRED`), for the log.
    pub(crate) pid: i32,
    /// Wants `Exited` pushes.
    pub(crate) subscribed: bool,
    /// To be dropped at the end of this loop step.
    pub(crate) closed: bool,
    out: VecDeque<ExecdReply>,
}

impl Client {
    pub(crate) fn new(fd: OwnedFd, pid: i32) -> Self {
        Client {
            fd,
            pid,
            subscribed: false,
            closed: false,
            out: VecDeque::new(),
        }
    }

    /// Nothing waits to be sent: its next request may be read (its whole reply then fits).
    pub(crate) fn is_idle(&self) -> bool {
        self.out.is_empty()
    }

    /// Queues a reply or push; `false` if the queue is full (the message is dropped).
    pub(crate) fn push(&mut self, reply: ExecdReply) -> bool {
        if self.out.len() < CLIENT_QUEUE {
            self.out.push_back(reply);
            true
        } else {
            false
        }
    }

    /// Sends what the socket takes; marks the client closed if it is gone or failing.
    pub(crate) fn flush(&mut self) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        while let Some(front) = self.out.front() {
            let sent = oomd_proto::encode(front, &mut buf)
                .and_then(|bytes| oomd_proto::send(self.fd.as_fd(), bytes, &[]));
            match sent {
                Ok(()) => {
                    self.out.pop_front();
                }
                Err(WireError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_does_not_read_never_blocks_and_its_queue_is_bounded() {
        let (ours, _theirs) = oomd_proto::seqpacket_pair().unwrap();
        oomd_proto::set_nonblocking(&ours).unwrap();
        let mut client = Client::new(ours, 0);
        // Fill the socket buffer: flush returns (WouldBlock) instead of blocking.
        let mut sent = 0;
        while client.push(ExecdReply::End) {
            client.flush();
            if !client.is_idle() {
                break;
            }
            sent += 1;
            assert!(sent < 1_000_000, "the socket never filled");
        }
        assert!(!client.closed);
        // Then the queue fills up to its bound, and no further.
        let queued = (0..2 * CLIENT_QUEUE)
            .filter(|_| client.push(ExecdReply::End))
            .count();
        assert_eq!(queued, CLIENT_QUEUE - 1);
        assert!(!client.push(ExecdReply::End));
    }
}
