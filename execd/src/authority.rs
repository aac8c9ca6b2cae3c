//! execd's end of the authority channel: a non-blocking socket and a bounded queue of the
//! messages the oomd service has not taken yet.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use oomd_proto::{FromAuthority, WireError, MAX_MESSAGE_LEN};

use crate::limits::AUTHORITY_QUEUE;

/// One message for the oomd service, with the descriptor it carries (a memstat channel end),
/// closed in execd once sent or dropped.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) msg: FromAuthority,
    pub(crate) fd: Option<OwnedFd>,
}

/// The authority channel while it is open.
#[derive(Debug)]
pub(crate) struct Link {
    fd: OwnedFd,
    /// Which channel this is (1 for the first): a service announced on an earlier channel is
    /// unknown to the oomd service on this one.
    pub(crate) generation: u64,
    out: VecDeque<Outgoing>,
}

impl Link {
    pub(crate) fn new(fd: OwnedFd, generation: u64) -> io::Result<Self> {
        oomd_proto::set_nonblocking(&fd)?;
        Ok(Link {
            fd,
            generation,
            out: VecDeque::new(),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether one more message fits (requests are read only while their answer fits).
    pub(crate) fn has_room(&self) -> bool {
        self.out.len() < AUTHORITY_QUEUE
    }

    /// Whether messages wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues a message; `false` when the queue is full (the message and its descriptor are
    /// dropped).
    pub(crate) fn push(&mut self, out: Outgoing) -> bool {
        if self.has_room() {
            self.out.push_back(out);
            true
        } else {
            false
        }
    }

    /// Sends what the socket takes. `Err` means the channel is unusable (closed by the peer, or
    /// failing): the caller drops it.
    pub(crate) fn flush(&mut self) -> Result<(), WireError> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        while let Some(front) = self.out.front() {
            let bytes = oomd_proto::encode(&front.msg, &mut buf)?;
            let raw: Option<RawFd> = front.fd.as_ref().map(AsRawFd::as_raw_fd);
            let fds: &[RawFd] = raw.as_slice();
            match oomd_proto::send(self.fd.as_fd(), bytes, fds) {
                Ok(()) => {
                    self.out.pop_front();
                }
                Err(WireError::Io(e))
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error()) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
