//! Encoding, and the SOCK_SEQPACKET plumbing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;
use rustix::net::{
    self as socket, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketAddrUnix, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

/// The protocol version: the byte after the magic of every message.
pub const VERSION: u8 = 1;
/// The longest message, header included. A policy document (a global policy and the limits of
/// [`MAX_OVERRIDES`](oomd::bounds::MAX_OVERRIDES) services) fits.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The most file descriptors one message carries.
pub const MAX_FDS: usize = 2;
/// Magic and version: the bytes before every message's body.
pub const HEADER_LEN: usize = 3;

/// The conversations of the Linux edge. Every message starts with its protocol's two magic
/// bytes and [`VERSION`], so a message sent to the wrong socket is recognized as such by both
/// sides instead of being read as some other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// execd ↔ the oomd service: `OA`.
    Authority,
    /// clients → the oomd service's control socket: `OC`.
    OomdControl,
    /// clients → execd's control socket: `EC`.
    ExecdControl,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 3] = [Self::Authority, Self::OomdControl, Self::ExecdControl];

    /// The two bytes every message of this protocol starts with.
    #[must_use]
    pub const fn magic(self) -> [u8; 2] {
        match self {
            Self::Authority => *b"OA",
            Self::OomdControl => *b"OC",
            Self::ExecdControl => *b"EC",
        }
    }

    /// The protocol these magic bytes name, if any.
    #[must_use]
    pub fn from_magic(magic: [u8; 2]) -> Option<Protocol> {
        Self::ALL.into_iter().find(|p| p.magic() == magic)
    }

    /// What the protocol is, for a person: "oomd's control protocol".
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::Authority => "the authority channel's protocol",
            Self::OomdControl => "oomd's control protocol",
            Self::ExecdControl => "execd's control protocol",
        }
    }

    /// Whose socket speaks it: "an oomd", "an execd", for "not an oomd socket".
    #[must_use]
    pub const fn socket_of(self) -> &'static str {
        match self {
            Self::Authority => "an authority channel",
            Self::OomdControl => "an oomd",
            Self::ExecdControl => "an execd",
        }
    }
}

impl core::fmt::Display for Protocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// A message type of one of the [`Protocol`]s: what [`encode`] and [`decode`] accept.
pub trait Message {
    /// The protocol its messages belong to.
    const PROTOCOL: Protocol;
}

/// What a peer sent that this side cannot take. The channel itself is still usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerFault {
    /// The message belongs to another protocol (`found`, when its magic names one of ours),
    /// or to none: the peer is talking to the wrong socket.
    WrongProtocol {
        /// The protocol this side speaks.
        expected: Protocol,
        /// The protocol the message's magic names, if any.
        found: Option<Protocol>,
    },
    /// The version byte is not [`VERSION`].
    UnsupportedVersion(u8),
    /// The bytes are not a message of the expected type (or are too short for a header).
    Malformed,
    /// The packet was longer than [`MAX_MESSAGE_LEN`] and was cut.
    Truncated,
}

impl core::fmt::Display for PeerFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongProtocol {
                expected,
                found: Some(found),
            } => write!(
                f,
                "not {} socket: the peer speaks {found}, not {expected}",
                expected.socket_of()
            ),
            Self::WrongProtocol {
                expected,
                found: None,
            } => write!(
                f,
                "not {} socket: the peer's message is not of {expected}",
                expected.socket_of()
            ),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            Self::Malformed => f.write_str("malformed message"),
            Self::Truncated => write!(f, "packet longer than {MAX_MESSAGE_LEN} bytes"),
        }
    }
}

/// Why a message could not be encoded, decoded, sent or received, by who is at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum WireError {
    /// The peer sent something this side cannot take (see [`PeerFault`]).
    Peer(PeerFault),
    /// A message of ours does not fit in [`MAX_MESSAGE_LEN`]: a bug on this side.
    TooLong,
    /// The peer closed the channel.
    Closed,
    /// The socket failed, or (non-blocking) had nothing to do: see
    /// [`is_would_block`](Self::is_would_block).
    Io(io::Error),
}

impl WireError {
    /// The one test for "a non-blocking socket had nothing to read, or no room to write".
    #[must_use]
    pub fn is_would_block(&self) -> bool {
        matches!(self, Self::Io(e) if would_block(e))
    }
}

/// Whether an I/O error means "try again later" on a non-blocking socket (`EAGAIN`, or
/// `ENOBUFS` from a Unix socket whose peer's queue is full): memstat's test, the one oomd
/// uses everywhere.
pub use memstat::publish::io_would_block as would_block;

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Peer(fault) => write!(f, "{fault}"),
            Self::TooLong => write!(f, "message longer than {MAX_MESSAGE_LEN} bytes"),
            Self::Closed => f.write_str("channel closed by peer"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Errno> for WireError {
    fn from(e: Errno) -> Self {
        WireError::Io(io::Error::from(e))
    }
}

impl From<PeerFault> for WireError {
    fn from(fault: PeerFault) -> Self {
        WireError::Peer(fault)
    }
}

/// Encodes `msg` behind its protocol's header into `buf` and returns the bytes to send.
pub fn encode<'b, T: Serialize + Message>(
    msg: &T,
    buf: &'b mut [u8; MAX_MESSAGE_LEN],
) -> Result<&'b [u8], WireError> {
    let [a, b] = T::PROTOCOL.magic();
    buf[..HEADER_LEN].copy_from_slice(&[a, b, VERSION]);
    let n = postcard::to_slice(msg, &mut buf[HEADER_LEN..])
        .map_err(|_| WireError::TooLong)?
        .len();
    Ok(&buf[..HEADER_LEN + n])
}

/// Decodes one whole message of `T`'s protocol; a message of another protocol, another
/// version, or with trailing bytes is the peer's fault.
pub fn decode<'a, T: Deserialize<'a> + Message>(bytes: &'a [u8]) -> Result<T, WireError> {
    let expected = T::PROTOCOL;
    let (Some(&[a, b, version]), Some(body)) = (
        bytes
            .get(..HEADER_LEN)
            .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()),
        bytes.get(HEADER_LEN..),
    ) else {
        // Too short for a header: one of ours if the bytes there are a magic's start.
        return Err(match bytes {
            [] => PeerFault::Malformed,
            [x, ..] if *x == expected.magic()[0] => PeerFault::Malformed,
            _ => PeerFault::WrongProtocol {
                expected,
                found: None,
            },
        }
        .into());
    };
    if [a, b] != expected.magic() {
        return Err(PeerFault::WrongProtocol {
            expected,
            found: Protocol::from_magic([a, b]),
        }
        .into());
    }
    if version != VERSION {
        return Err(PeerFault::UnsupportedVersion(version).into());
    }
    match postcard::take_from_bytes(body) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(PeerFault::Malformed.into()),
    }
}

/// Sends one packet, with up to [`MAX_FDS`] descriptors as `SCM_RIGHTS` (more is an
/// `InvalidInput` error, nothing sent). Never raises SIGPIPE. Blocks only if the socket is
/// blocking. Allocates nothing: the control message is built on the stack.
pub fn send(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), WireError> {
    let iov = [io::IoSlice::new(bytes)];
    let mut space = [core::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    // The space fits MAX_FDS (and, with its alignment padding, maybe more): the bound is
    // checked, not left to the buffer.
    if fds.len() > MAX_FDS
        || (!fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)))
    {
        return Err(WireError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more descriptors than MAX_FDS in one message",
        )));
    }
    match socket::sendmsg(fd, &iov, &mut control, SendFlags::NOSIGNAL) {
        Ok(n) if n == bytes.len() => Ok(()),
        // SOCK_SEQPACKET sends a message whole or not at all: a short send is a socket of
        // another type, our own mistake.
        Ok(_) => Err(WireError::Io(io::Error::other(
            "short send on a seqpacket socket",
        ))),
        Err(Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN) => Err(WireError::Closed),
        Err(e) => Err(e.into()),
    }
}

/// One received packet: its bytes are in the [`Receiver`]'s buffer.
#[derive(Debug)]
pub struct Received {
    /// Length of the packet.
    pub len: usize,
    /// Descriptors that came with it (close-on-exec).
    pub fds: [Option<OwnedFd>; MAX_FDS],
}

/// Receives packets into a buffer it owns, so that receiving never allocates.
#[derive(Debug)]
pub struct Receiver {
    buf: [u8; MAX_MESSAGE_LEN],
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// A receiver with its buffers.
    #[must_use]
    pub fn new() -> Self {
        Receiver {
            buf: [0; MAX_MESSAGE_LEN],
        }
    }

    /// Receives one packet from `fd`. `Err(WireError::Io(WouldBlock))` on a non-blocking
    /// socket with nothing to read; [`WireError::Closed`] at end of stream.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> Result<Received, WireError> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
        // Received descriptors come as an iterator over this stack buffer: no allocation.
        let mut space = [core::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [io::IoSliceMut::new(&mut self.buf)];
        let msg = rustix::net::recvmsg(fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
            .map_err(|e| WireError::Io(e.into()))?;
        let mut fds: [Option<OwnedFd>; MAX_FDS] = [None, None];
        let mut slots = fds.iter_mut();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                for owned in received {
                    // Descriptors beyond MAX_FDS are dropped, and so closed, at once.
                    if let Some(slot) = slots.next() {
                        *slot = Some(owned);
                    }
                }
            }
        }
        if msg
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        {
            return Err(PeerFault::Truncated.into());
        }
        if msg.bytes == 0 {
            return Err(WireError::Closed);
        }
        Ok(Received {
            len: msg.bytes,
            fds,
        })
    }

    /// The bytes of the last packet received, given its length.
    #[must_use]
    pub fn bytes(&self, received: &Received) -> &[u8] {
        &self.buf[..received.len.min(MAX_MESSAGE_LEN)]
    }

    /// Receives and decodes one message.
    pub fn recv_msg<'a, T: Deserialize<'a> + Message>(
        &'a mut self,
        fd: BorrowedFd<'_>,
    ) -> Result<(T, [Option<OwnedFd>; MAX_FDS]), WireError> {
        let received = self.recv(fd)?;
        let Received { len, fds } = received;
        let msg = decode(&self.buf[..len])?;
        Ok((msg, fds))
    }
}

/// A connected pair of SOCK_SEQPACKET sockets, close-on-exec.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// Binds and listens on a SOCK_SEQPACKET socket at `path` (close-on-exec), replacing a stale
/// socket file left by a previous run.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let (fd, addr) = unbound(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(path)?;
        }
        _ => {}
    }
    socket::bind(&fd, &addr)?;
    socket::listen(&fd, 16)?;
    Ok(fd)
}

/// Accepts one connection on a listening socket (close-on-exec). On a non-blocking listener
/// with nothing pending, fails with `WouldBlock`.
pub fn accept(listener: &impl AsFd) -> io::Result<OwnedFd> {
    Ok(socket::accept_with(listener, SocketFlags::CLOEXEC)?)
}

/// Connects to the SOCK_SEQPACKET socket at `path` (close-on-exec).
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let (fd, addr) = unbound(path)?;
    socket::connect(&fd, &addr)?;
    Ok(fd)
}

/// A new SOCK_SEQPACKET socket (close-on-exec) and the address of `path`.
fn unbound(path: &Path) -> io::Result<(OwnedFd, SocketAddrUnix)> {
    let fd = socket::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((fd, SocketAddrUnix::new(path)?))
}

/// The pid of the process at the other end of a connected Unix socket, from the kernel
/// (`SO_PEERCRED`, read by [`admission::peer_cred`](crate::admission::peer_cred): 0 when
/// the peer's pid is not visible from here).
pub fn peer_pid(fd: &impl AsFd) -> io::Result<i32> {
    Ok(crate::admission::peer_cred(fd)?.pid)
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let flags = fcntl_getfl(fd)?;
    fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}
