//! Blocking clients of the two control sockets, for oomctl and the selftest client. They
//! allocate freely: they are tools, not the watchdog.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::{
    decode, encode, ControlError, ControlReply, ControlRequest, EventView, ExecdReply,
    ExecdRequest, Receiver, SubjectView, WireError, MAX_MESSAGE_LEN, MAX_PAGE,
};

/// Why a client call failed, phrased for the person at the terminal.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens at the path (not running, or another socket path).
    NotRunning(PathBuf, io::Error),
    /// The socket exists but this user may not connect to it.
    NotAllowed(PathBuf),
    /// No complete answer in time.
    Timeout,
    /// The channel failed.
    Wire(WireError),
    /// The service refused the request.
    Refused(ControlError),
    /// The service answered something this client does not expect.
    Unexpected(String),
}

impl core::fmt::Display for ClientError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotRunning(p, e) => {
                write!(
                    f,
                    "nothing is listening at {} ({e}): is the service running?",
                    p.display()
                )
            }
            Self::NotAllowed(p) => write!(f, "not allowed to connect to {}", p.display()),
            Self::Timeout => f.write_str("no answer in time"),
            Self::Wire(e) => write!(f, "{e}"),
            Self::Refused(e) => write!(f, "{e}"),
            Self::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Io(e) if e.kind() == io::ErrorKind::WouldBlock => ClientError::Timeout,
            e => ClientError::Wire(e),
        }
    }
}

/// A connection to one control socket.
#[derive(Debug)]
pub struct Client {
    fd: OwnedFd,
    rx: Receiver,
    buf: Box<[u8; MAX_MESSAGE_LEN]>,
}

impl Client {
    /// Connects to the socket at `path`; every later receive waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let fd = crate::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => ClientError::NotAllowed(path.to_owned()),
            _ => ClientError::NotRunning(path.to_owned(), e),
        })?;
        let tv = TimeVal::new(
            i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            i64::from(timeout.subsec_micros()),
        );
        setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(|e| ClientError::Wire(e.into()))?;
        Ok(Client {
            fd,
            rx: Receiver::new(),
            buf: Box::new([0; MAX_MESSAGE_LEN]),
        })
    }

    /// Sends one message.
    pub fn send<T: serde::Serialize>(&mut self, msg: &T) -> Result<(), ClientError> {
        let bytes = encode(msg, &mut self.buf)?;
        crate::send(self.fd.as_fd(), bytes, &[])?;
        Ok(())
    }

    /// Receives one message (waiting at most the timeout).
    pub fn recv<T: for<'a> serde::Deserialize<'a>>(&mut self) -> Result<T, ClientError> {
        let received = self.rx.recv(self.fd.as_fd())?;
        Ok(decode(self.rx.bytes(&received))?)
    }

    /// An oomd control request and every reply up to the last (`End`, `Done`, `Policy`, `Error`).
    pub fn control(&mut self, request: &ControlRequest) -> Result<Vec<ControlReply>, ClientError> {
        self.send(request)?;
        let mut replies = Vec::new();
        loop {
            let reply: ControlReply = self.recv()?;
            let more = matches!(reply, ControlReply::Subject(_) | ControlReply::Event(_));
            replies.push(reply);
            if !more {
                return Ok(replies);
            }
        }
    }

    /// Every subject the oomd service watches, asking page by page.
    pub fn status(&mut self) -> Result<Vec<SubjectView>, ClientError> {
        let mut all = Vec::new();
        let mut from = 0u32;
        loop {
            let mut page = 0;
            for reply in self.control(&ControlRequest::Status { from })? {
                match reply {
                    ControlReply::Subject(view) => {
                        page += 1;
                        all.push(view);
                    }
                    ControlReply::End { next, .. } => {
                        from = u32::try_from(next).unwrap_or(u32::MAX)
                    }
                    ControlReply::Error(e) => return Err(ClientError::Refused(e)),
                    other => return Err(ClientError::Unexpected(format!("{other:?}"))),
                }
            }
            if page < MAX_PAGE {
                return Ok(all);
            }
        }
    }

    /// One page of events from `since`: the events, how many were lost before them, and the
    /// `since` of the next page.
    pub fn events(&mut self, since: u64) -> Result<(Vec<EventView>, u64, u64), ClientError> {
        let mut events = Vec::new();
        let (mut lost, mut next) = (0, since);
        for reply in self.control(&ControlRequest::Events {
            since,
            limit: MAX_PAGE,
        })? {
            match reply {
                ControlReply::Event(view) => events.push(view),
                ControlReply::End { lost: l, next: n } => (lost, next) = (l, n),
                ControlReply::Error(e) => return Err(ClientError::Refused(e)),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok((events, lost, next))
    }

    /// An execd request and every reply up to the last (`List` ends with `End`).
    pub fn execd(&mut self, request: &ExecdRequest) -> Result<Vec<ExecdReply>, ClientError> {
        self.send(request)?;
        let mut replies = Vec::new();
        loop {
            let reply: ExecdReply = self.recv()?;
            let more = matches!(reply, ExecdReply::Service(_));
            replies.push(reply);
            if !more {
                return Ok(replies);
            }
        }
    }
}
