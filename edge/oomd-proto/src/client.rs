//! Blocking clients of the two control sockets, for oomctl and the selftest client. They
//! allocate freely: they are tools, not the watchdog.
//!
//! A client survives the server's defences against idle and hostile connections: when the
//! server closed an idle connection to make room for a newcomer (or after its idle timeout),
//! the next request reconnects once and is sent again (the server never read it). A server
//! whose table is full of clients it may not displace answers `Busy`, and the client says so.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::sockopt::{set_socket_timeout, Timeout};

use crate::{
    decode, encode, ControlError, ControlReply, ControlRequest, EventView, ExecdError, ExecdReply,
    ExecdRequest, KillReportView, Message, PeerFault, Protocol, Receiver, SubjectView, WireError,
    MAX_MESSAGE_LEN, MAX_PAGE,
};

/// Why a client call failed, phrased for the person at the terminal.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens at the path (not running, or another socket path).
    NotRunning(PathBuf, io::Error),
    /// The socket exists but this user may not connect to it.
    NotAllowed(PathBuf),
    /// The socket at the path speaks another protocol (`found`, if it is one of ours).
    WrongSocket {
        /// The path connected to.
        path: PathBuf,
        /// The protocol this client speaks.
        expected: Protocol,
        /// The protocol the server answered in, if it is one of ours.
        found: Option<Protocol>,
    },
    /// No complete answer in time.
    Timeout,
    /// The channel failed.
    Wire(WireError),
    /// The service refused the request.
    Refused(ControlError),
    /// execd refused the request.
    ExecdRefused(ExecdError),
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
            Self::WrongSocket {
                path,
                expected,
                found: Some(found),
            } => write!(
                f,
                "{} is not {} socket: it answers in {found}",
                path.display(),
                expected.socket_of()
            ),
            Self::WrongSocket {
                path,
                expected,
                found: None,
            } => write!(
                f,
                "{} is not {} socket: its answer is not of {expected}",
                path.display(),
                expected.socket_of()
            ),
            Self::Timeout => f.write_str("no answer in time"),
            Self::Wire(e) => write!(f, "{e}"),
            Self::Refused(e) => write!(f, "{e}"),
            Self::ExecdRefused(e) => write!(f, "{e}"),
            Self::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotRunning(_, e) => Some(e),
            Self::Wire(e) => Some(e),
            _ => None,
        }
    }
}

/// One page of [`Client::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// The events, in sequence order.
    pub events: Vec<EventView>,
    /// The kill report of each `kill confirmed` event in `events` the service still keeps
    /// (its `report.seq` is the event's).
    pub reports: Vec<KillReportView>,
    /// Events overwritten before they could be read.
    pub lost: u64,
    /// The `since` of the next page.
    pub next: u64,
}

/// A connection to one control socket.
#[derive(Debug)]
pub struct Client {
    fd: OwnedFd,
    path: PathBuf,
    timeout: Duration,
    rx: Receiver,
    buf: Box<[u8; MAX_MESSAGE_LEN]>,
    /// Re-sent after a reconnection: the connection asked for execd's exit notifications.
    subscribed: bool,
}

/// What ended a conversation before its answer: worth one reconnection, or not.
enum Attempt<T> {
    Done(T),
    /// The server closed this connection before reading the request (idle eviction, idle
    /// timeout): reconnect and send it again.
    Reconnect,
}

impl Client {
    /// Connects to the socket at `path`; every later receive waits at most `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        Ok(Client {
            fd: open(path, timeout)?,
            path: path.to_owned(),
            timeout,
            rx: Receiver::new(),
            buf: Box::new([0; MAX_MESSAGE_LEN]),
            subscribed: false,
        })
    }

    fn reconnect(&mut self) -> Result<(), ClientError> {
        self.fd = open(&self.path, self.timeout)?;
        if self.subscribed {
            self.send_once(&ExecdRequest::Subscribe)?;
        }
        Ok(())
    }

    fn wire_error(&self, e: WireError, expected: Protocol) -> ClientError {
        match e {
            e if e.is_would_block() => ClientError::Timeout,
            WireError::Peer(PeerFault::WrongProtocol { found, .. }) => ClientError::WrongSocket {
                path: self.path.clone(),
                expected,
                found,
            },
            e => ClientError::Wire(e),
        }
    }

    fn send_once<T: serde::Serialize + Message>(&mut self, msg: &T) -> Result<(), ClientError> {
        let bytes = encode(msg, &mut self.buf).map_err(ClientError::Wire)?;
        crate::send(self.fd.as_fd(), bytes, &[]).map_err(|e| self.wire_error(e, T::PROTOCOL))
    }

    /// Sends one message.
    pub fn send<T: serde::Serialize + Message>(&mut self, msg: &T) -> Result<(), ClientError> {
        self.send_once(msg)
    }

    /// Asks execd for its exit notifications (read them with [`recv`](Self::recv)); asked
    /// again after a reconnection.
    pub fn subscribe(&mut self) -> Result<(), ClientError> {
        self.subscribed = true;
        self.send_once(&ExecdRequest::Subscribe)
    }

    /// Receives one message (waiting at most the timeout).
    pub fn recv<T: for<'a> serde::Deserialize<'a> + Message>(&mut self) -> Result<T, ClientError> {
        let received = self
            .rx
            .recv(self.fd.as_fd())
            .map_err(|e| self.wire_error(e, T::PROTOCOL))?;
        decode(self.rx.bytes(&received)).map_err(|e| self.wire_error(e, T::PROTOCOL))
    }

    /// Sends `request` and collects replies until `last(reply)`; reconnects once if the server
    /// had closed this connection before reading it.
    fn converse<Q, R>(
        &mut self,
        request: &Q,
        more: fn(&R) -> bool,
        closed_notice: fn(&R) -> bool,
    ) -> Result<Vec<R>, ClientError>
    where
        Q: serde::Serialize + Message,
        R: for<'a> serde::Deserialize<'a> + Message,
    {
        match self.attempt(request, more, closed_notice)? {
            Attempt::Done(replies) => Ok(replies),
            Attempt::Reconnect => {
                self.reconnect()?;
                match self.attempt(request, more, closed_notice)? {
                    Attempt::Done(replies) => Ok(replies),
                    Attempt::Reconnect => Err(ClientError::Wire(WireError::Closed)),
                }
            }
        }
    }

    fn attempt<Q, R>(
        &mut self,
        request: &Q,
        more: fn(&R) -> bool,
        closed_notice: fn(&R) -> bool,
    ) -> Result<Attempt<Vec<R>>, ClientError>
    where
        Q: serde::Serialize + Message,
        R: for<'a> serde::Deserialize<'a> + Message,
    {
        // A notice the server left before closing (evicted, busy) is read first: the request
        // was then never read.
        match self.send_once(request) {
            Ok(()) => {}
            Err(ClientError::Wire(WireError::Closed)) => {
                return match self.recv::<R>() {
                    Ok(notice) if closed_notice(&notice) => Ok(Attempt::Reconnect),
                    Ok(notice) => Ok(Attempt::Done(vec![notice])),
                    Err(_) => Ok(Attempt::Reconnect),
                };
            }
            Err(e) => return Err(e),
        }
        let mut replies = Vec::new();
        loop {
            let reply: R = match self.recv() {
                Ok(reply) => reply,
                Err(ClientError::Wire(WireError::Closed)) if replies.is_empty() => {
                    return Ok(Attempt::Reconnect)
                }
                Err(e) => return Err(e),
            };
            if replies.is_empty() && closed_notice(&reply) {
                return Ok(Attempt::Reconnect);
            }
            let go_on = more(&reply);
            replies.push(reply);
            if !go_on {
                return Ok(Attempt::Done(replies));
            }
        }
    }

    /// An oomd control request and every reply up to the last (`End`, `Done`, `Policy`, `Error`,
    /// ...).
    pub fn control(&mut self, request: &ControlRequest) -> Result<Vec<ControlReply>, ClientError> {
        self.converse(request, ControlReply::more_follows, |r| {
            matches!(r, ControlReply::Error(ControlError::Evicted))
        })
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

    /// One page of events from `since`: the events, the kill reports of the confirmed kills
    /// among them, how many events were lost before them, and the `since` of the next page.
    pub fn events(&mut self, since: u64) -> Result<EventPage, ClientError> {
        let mut page = EventPage {
            events: Vec::new(),
            reports: Vec::new(),
            lost: 0,
            next: since,
        };
        for reply in self.control(&ControlRequest::Events {
            since,
            limit: MAX_PAGE,
        })? {
            match reply {
                ControlReply::Event(view) => page.events.push(view),
                ControlReply::KillReport(view) => page.reports.push(view),
                ControlReply::End { lost, next } => (page.lost, page.next) = (lost, next),
                ControlReply::Error(e) => return Err(ClientError::Refused(e)),
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
        Ok(page)
    }

    /// An execd request and every reply up to the last (`List` ends with `End`).
    pub fn execd(&mut self, request: &ExecdRequest) -> Result<Vec<ExecdReply>, ClientError> {
        self.converse(
            request,
            |r| matches!(r, ExecdReply::Service(_)),
            |r| matches!(r, ExecdReply::Error(ExecdError::Evicted)),
        )
    }
}

fn open(path: &Path, timeout: Duration) -> Result<OwnedFd, ClientError> {
    let fd = crate::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => ClientError::NotAllowed(path.to_owned()),
        _ => ClientError::NotRunning(path.to_owned(), e),
    })?;
    // SO_RCVTIMEO is whole microseconds, and zero of them is "no timeout" (rustix refuses a
    // zero `Duration` and rounds a sub-microsecond one up, so both are made explicit here).
    let whole_micros = Duration::new(timeout.as_secs(), timeout.subsec_micros() * 1000);
    let timeout = (whole_micros != Duration::ZERO).then_some(whole_micros);
    set_socket_timeout(&fd, Timeout::Recv, timeout).map_err(|e| ClientError::Wire(e.into()))?;
    Ok(fd)
}
