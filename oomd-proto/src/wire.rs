//! Encoding, and the SOCK_SEQPACKET plumbing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde::{Deserialize, Serialize};

/// The protocol version: the first byte of every message.
pub const VERSION: u8 = 1;
/// The longest message, version byte included.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// The most file descriptors one message carries.
pub const MAX_FDS: usize = 2;

/// Why a message could not be encoded, decoded, sent or received.
#[derive(Debug)]
#[non_exhaustive]
pub enum WireError {
    /// The message does not fit in [`MAX_MESSAGE_LEN`] (a bug of the sender).
    TooLong,
    /// The first byte is not [`VERSION`].
    UnsupportedVersion(u8),
    /// The bytes are not a message of the expected type.
    Malformed,
    /// The packet was longer than [`MAX_MESSAGE_LEN`] and was cut.
    Truncated,
    /// The peer closed the channel.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLong => write!(f, "message longer than {MAX_MESSAGE_LEN} bytes"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            Self::Malformed => f.write_str("malformed message"),
            Self::Truncated => f.write_str("packet truncated"),
            Self::Closed => f.write_str("channel closed by peer"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<Errno> for WireError {
    fn from(e: Errno) -> Self {
        WireError::Io(io::Error::from(e))
    }
}

/// Encodes `msg` into `buf` and returns the bytes to send.
pub fn encode<'b, T: Serialize>(
    msg: &T,
    buf: &'b mut [u8; MAX_MESSAGE_LEN],
) -> Result<&'b [u8], WireError> {
    buf[0] = VERSION;
    let n = postcard::to_slice(msg, &mut buf[1..])
        .map_err(|_| WireError::TooLong)?
        .len();
    Ok(&buf[..1 + n])
}

/// Decodes one whole message; trailing bytes are an error.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    match bytes.split_first() {
        None => Err(WireError::Malformed),
        Some((&VERSION, body)) => match postcard::take_from_bytes(body) {
            Ok((msg, [])) => Ok(msg),
            _ => Err(WireError::Malformed),
        },
        Some((&v, _)) => Err(WireError::UnsupportedVersion(v)),
    }
}

/// Sends one packet, with up to [`MAX_FDS`] descriptors as `SCM_RIGHTS`. Never raises
/// SIGPIPE. Blocks only if the socket is blocking.
pub fn send(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> Result<(), WireError> {
    let iov = [io::IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    match socket::sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(WireError::Truncated),
        Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => Err(WireError::Closed),
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
        // rustix, not nix, for this one call: it hands received descriptors over as an
        // iterator on this stack buffer, where nix collects them into a Vec.
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
            return Err(WireError::Truncated);
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
    pub fn recv_msg<'a, T: Deserialize<'a>>(
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
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
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
    socket::bind(fd.as_raw_fd(), &addr)?;
    socket::listen(&fd, Backlog::new(16)?)?;
    Ok(fd)
}

/// Accepts one connection on a listening socket (close-on-exec). On a non-blocking listener
/// with nothing pending, fails with `WouldBlock`.
pub fn accept(listener: &impl AsFd) -> io::Result<OwnedFd> {
    Ok(rustix::net::accept_with(
        listener,
        rustix::net::SocketFlags::CLOEXEC,
    )?)
}

/// Connects to the SOCK_SEQPACKET socket at `path` (close-on-exec).
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let (fd, addr) = unbound(path)?;
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(fd)
}

/// A new SOCK_SEQPACKET socket (close-on-exec) and the address of `path`.
fn unbound(path: &Path) -> io::Result<(OwnedFd, UnixAddr)> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    Ok((fd, UnixAddr::new(path.as_os_str().as_bytes())?))
}

/// The pid of the process at the other end of a connected Unix socket, from the kernel.
pub fn peer_pid(fd: &impl AsFd) -> io::Result<i32> {
    let cred = socket::getsockopt(fd, socket::sockopt::PeerCredentials)?;
    Ok(cred.pid())
}

/// Makes `fd` non-blocking.
pub fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let raw = fd.as_fd().as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFL)?);
    fcntl(raw, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}
