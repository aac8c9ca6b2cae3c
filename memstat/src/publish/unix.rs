//! `UnixTransport`: memstat frames over a Unix `SOCK_SEQPACKET` socket.
//!
//! One frame per message, message boundaries kept, and the kernel knows the peer's
//! credentials, so oomd learns *who* sent a frame from the socket, never from the frame. The
//! transport gets its socket in one of two ways:
//!
//! - **an inherited, already connected fd** whose number is in [`ENV_FD`]
//!   (`OOMD_MEMSTAT_FD`). This is preferred: the process authority created the pair and gave
//!   one end to exactly this service, so the fd *is* the authentication. If the peer goes away
//!   there is no new one to get ([`can_reconnect`](Transport::can_reconnect) is false).
//! - **a socket path** in [`ENV_SOCKET`] (`OOMD_MEMSTAT_SOCKET`) to connect to. oomd then
//!   identifies the sender by its peer credentials. When the connection breaks the core's
//!   backoff decides when [`reconnect`](Transport::reconnect) opens a new one.
//!
//! Sends use `MSG_DONTWAIT | MSG_NOSIGNAL`, receives (oomd's reclaim requests)
//! `MSG_DONTWAIT | MSG_TRUNC`, and reconnection sockets are non-blocking, so nothing here
//! waits, whether or not the socket itself is blocking; nothing here allocates after
//! construction.

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{fstat, FileType};
use rustix::io::{fcntl_getfd, fcntl_setfd, Errno, FdFlags};
use rustix::net::{
    self as socket, sockopt, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags,
    SocketType,
};

use super::{ReconnectFailed, RecvError, SendError, Transport};

/// Environment variable holding the number of an inherited, connected `SOCK_SEQPACKET` fd.
pub const ENV_FD: &str = "OOMD_MEMSTAT_FD";
/// Environment variable holding the path of oomd's `SOCK_SEQPACKET` listening socket.
pub const ENV_SOCKET: &str = "OOMD_MEMSTAT_SOCKET";

/// Set once the fd named by [`ENV_FD`] has been adopted, so this process owns (and later
/// closes) it at most once.
static INHERITED_FD_TAKEN: AtomicBool = AtomicBool::new(false);

/// Why [`UnixTransport::from_env`] (and so
/// [`Publisher::from_env`](crate::Publisher::from_env)) found no socket. All but `Connect`
/// mean the environment the service was started in is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum FromEnvError {
    /// Neither [`ENV_FD`] nor [`ENV_SOCKET`] is set: nobody asked this service to report.
    NotSet,
    /// [`ENV_FD`] is not a non-negative decimal fd number.
    FdNotANumber {
        /// The value found.
        value: OsString,
    },
    /// [`ENV_FD`] names stdin, stdout or stderr, which the publisher refuses to take over.
    FdIsStdio {
        /// The fd number.
        fd: RawFd,
    },
    /// [`ENV_FD`] names an fd that is not open in this process.
    FdNotOpen {
        /// The fd number.
        fd: RawFd,
    },
    /// [`ENV_FD`] names an open fd that is not a `SOCK_SEQPACKET` socket.
    FdNotSeqpacket {
        /// The fd number.
        fd: RawFd,
    },
    /// The fd in [`ENV_FD`] was already adopted by an earlier `from_env` in this process (it
    /// may since have been closed and its number reused).
    FdAlreadyTaken {
        /// The fd number.
        fd: RawFd,
    },
    /// [`ENV_SOCKET`] is set (and [`ENV_FD`] is not) but connecting to it failed.
    Connect {
        /// The path from the environment.
        path: PathBuf,
        /// What `socket`/`connect` said.
        source: io::Error,
    },
}

impl fmt::Display for FromEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSet => write!(f, "neither {ENV_FD} nor {ENV_SOCKET} is set"),
            Self::FdNotANumber { value } => {
                write!(f, "{ENV_FD}={value:?} is not a file descriptor number")
            }
            Self::FdIsStdio { fd } => write!(f, "{ENV_FD}={fd} names a standard stream"),
            Self::FdNotOpen { fd } => write!(f, "{ENV_FD}={fd} is not an open fd"),
            Self::FdNotSeqpacket { fd } => {
                write!(f, "{ENV_FD}={fd} is not a SOCK_SEQPACKET socket")
            }
            Self::FdAlreadyTaken { fd } => {
                write!(f, "{ENV_FD}={fd} was already taken by another publisher")
            }
            Self::Connect { path, source } => {
                write!(f, "connecting to {ENV_SOCKET}={}: {source}", path.display())
            }
        }
    }
}

impl Error for FromEnvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Connect { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A [`Transport`] over a Unix `SOCK_SEQPACKET` socket: an adopted fd (never reconnects) or
/// a path (reconnects when the core asks).
pub struct UnixTransport {
    /// `None` once the peer went away (and until a reconnection).
    socket: Option<OwnedFd>,
    /// Path mode: where to reconnect, resolved once at construction.
    reconnect_to: Option<SocketAddrUnix>,
}

impl UnixTransport {
    /// A transport over `fd`, a connected `SOCK_SEQPACKET` socket (not checked here; another
    /// socket type would lose message boundaries). It never reconnects.
    #[must_use]
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self {
            socket: Some(fd),
            reconnect_to: None,
        }
    }

    /// Connects to the `SOCK_SEQPACKET` listener at `path` and keeps the address to reconnect
    /// to it later. Fails if the path is too long for a Unix socket address or if this first
    /// connection fails (later failures are handled by the core's backoff instead).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let addr = SocketAddrUnix::new(path.as_ref())?;
        let fd = open_seqpacket(&addr)?;
        Ok(Self {
            socket: Some(fd),
            reconnect_to: Some(addr),
        })
    }

    /// The socket the service's spawner asked for.
    ///
    /// If [`ENV_FD`] is set, adopts that fd: it must be an open `SOCK_SEQPACKET` socket other
    /// than 0, 1 and 2, it is marked close-on-exec so children do not inherit the sender's
    /// identity, and it is adopted at most once per process. [`ENV_SOCKET`] is only consulted
    /// when [`ENV_FD`] is unset; a bad [`ENV_FD`] is an error, not a reason to fall back.
    ///
    /// The variables are left in the environment (changing the environment of a running,
    /// possibly multi-threaded process is not sound); a service that spawns children should
    /// remove them from the children's environment.
    pub fn from_env() -> Result<Self, FromEnvError> {
        let fd = std::env::var_os(ENV_FD);
        let socket = std::env::var_os(ENV_SOCKET);
        Self::from_env_values(fd.as_deref(), socket.as_deref())
    }

    fn from_env_values(fd: Option<&OsStr>, socket: Option<&OsStr>) -> Result<Self, FromEnvError> {
        if let Some(value) = fd {
            return Ok(Self::from_fd(adopt_inherited_fd(value)?));
        }
        if let Some(path) = socket {
            return Self::connect(path).map_err(|source| FromEnvError::Connect {
                path: PathBuf::from(path),
                source,
            });
        }
        Err(FromEnvError::NotSet)
    }

    /// Whether a socket is open now (it may still turn out dead at the next send).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// The socket, to watch for readability (oomd's reclaim requests) in the service's own
    /// event loop; `None` while disconnected. In path mode a reconnection replaces the
    /// socket, so the fd changes: fetch it again after each send.
    #[must_use]
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(AsFd::as_fd)
    }

    /// The path it reconnects to (path mode), `None` in fd mode.
    #[must_use]
    pub fn reconnect_path(&self) -> Option<&Path> {
        self.reconnect_to
            .as_ref()
            .and_then(SocketAddrUnix::path_bytes)
            .map(|bytes| Path::new(OsStr::from_bytes(bytes)))
    }
}

impl Transport for UnixTransport {
    /// One `send` with `MSG_DONTWAIT | MSG_NOSIGNAL`. `EAGAIN` is [`SendError::Full`]; a
    /// disconnection (`EPIPE`, `ECONNRESET`, …) closes the socket and is
    /// [`SendError::Closed`]; any other error, or a partial send (only a socket that is not
    /// `SOCK_SEQPACKET` can take part of a frame), is [`SendError::Other`].
    fn try_send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        let Some(fd) = &self.socket else {
            return Err(SendError::Closed);
        };
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        match socket::send(fd, frame, flags) {
            Ok(n) if n == frame.len() => Ok(()),
            Ok(_) => Err(SendError::Other),
            Err(e) => {
                let error = send_error(e);
                if error == SendError::Closed {
                    self.socket = None;
                }
                Err(error)
            }
        }
    }

    /// One `recv` with `MSG_DONTWAIT | MSG_TRUNC`, so the length returned is the message's
    /// real one even when `buf` was too short for it. `EAGAIN` is `Ok(None)`. A `SOCK_SEQPACKET`
    /// receive returns 0 both for an empty message and at the end of the channel: it is the
    /// end ([`RecvError::Closed`], and the socket is closed, so the next send says
    /// [`SendError::Closed`] and the core reacts) only if the peer shut its end
    /// (`POLLRDHUP`) and nothing is left queued; otherwise it is an empty message,
    /// `Ok(Some(0))`. A disconnection error is `Closed` too; any other error is
    /// [`RecvError::Other`]. Without a socket: `Closed`.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        let Some(fd) = &self.socket else {
            return Err(RecvError::Closed);
        };
        match socket::recv(fd, &mut *buf, RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
            Ok((_, 0)) if peer_hung_up(fd.as_fd()) => {
                self.socket = None;
                Err(RecvError::Closed)
            }
            Ok((_, len)) => Ok(Some(len)),
            Err(e) if would_block(e.raw_os_error()) || e == Errno::INTR => Ok(None),
            Err(e) if is_disconnection(e) => {
                self.socket = None;
                Err(RecvError::Closed)
            }
            Err(_) => Err(RecvError::Other),
        }
    }

    /// Path mode only.
    fn can_reconnect(&self) -> bool {
        self.reconnect_to.is_some()
    }

    /// A new non-blocking socket connected to the path: two syscalls, no allocation; with a
    /// full listen backlog `connect` fails with `EAGAIN` rather than waiting.
    fn reconnect(&mut self) -> Result<(), ReconnectFailed> {
        let addr = self.reconnect_to.as_ref().ok_or(ReconnectFailed)?;
        let fd = open_seqpacket(addr).map_err(|_| ReconnectFailed)?;
        self.socket = Some(fd);
        Ok(())
    }
}

impl fmt::Debug for UnixTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixTransport")
            .field("socket", &self.socket)
            .field("reconnect_to", &self.reconnect_path())
            .finish()
    }
}

/// Whether a failed call on a non-blocking Unix socket means "try again later": `EAGAIN`
/// (which is `EWOULDBLOCK` on Linux), or `ENOBUFS`, which a Unix socket whose peer's queue is
/// full may return instead. The one test for it in oomd: every crate that polls a socket
/// decides "would block" here (`oomd_proto::would_block` is this, for `io::Error`).
#[must_use]
pub fn would_block(errno: i32) -> bool {
    errno == Errno::AGAIN.raw_os_error() || errno == Errno::NOBUFS.raw_os_error()
}

/// [`would_block`] for an `io::Error` (std's `WouldBlock` kind, or either errno).
#[must_use]
pub fn io_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error().is_some_and(would_block)
}

/// What a failed `send` means for the core.
fn send_error(e: Errno) -> SendError {
    match e {
        e if would_block(e.raw_os_error()) => SendError::Full,
        e if is_disconnection(e) => SendError::Closed,
        _ => SendError::Other,
    }
}

/// Whether the peer of a `SOCK_SEQPACKET` socket whose receive just returned 0 shut its end
/// and left nothing queued: a real end of the channel, not an empty message (a receive
/// returns 0 for both). One `poll` with a zero timeout and one `ioctl(FIONREAD)`; no
/// allocation. (Empty messages sent just before a hang-up are taken for the end: they would
/// only have been ignored.) Both ends of a memstat channel use it: the publisher here, oomd
/// when it reads frames.
pub fn peer_hung_up(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let shut = matches!(poll(&mut fds, Some(&now)), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .intersects(PollFlags::RDHUP | PollFlags::HUP);
    shut && rustix::io::ioctl_fionread(fd).is_ok_and(|queued| queued == 0)
}

/// Errors after which the socket is useless and (path mode) worth replacing.
fn is_disconnection(e: Errno) -> bool {
    matches!(
        e,
        Errno::PIPE
            | Errno::CONNRESET
            | Errno::CONNREFUSED
            | Errno::CONNABORTED
            | Errno::NOTCONN
            | Errno::DESTADDRREQ
            | Errno::BADF
            | Errno::NOTSOCK
    )
}

/// A non-blocking, close-on-exec `SOCK_SEQPACKET` socket connected to `addr`. Makes two
/// syscalls and no allocation; with a full listen backlog `connect` fails with `EAGAIN`
/// rather than waiting.
fn open_seqpacket(addr: &SocketAddrUnix) -> Result<OwnedFd, Errno> {
    let fd = socket::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    socket::connect(&fd, addr)?;
    Ok(fd)
}

fn adopt_inherited_fd(value: &OsStr) -> Result<OwnedFd, FromEnvError> {
    let fd = value
        .to_str()
        .and_then(|s| s.parse::<RawFd>().ok())
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| FromEnvError::FdNotANumber {
            value: value.to_os_string(),
        })?;
    if fd <= 2 {
        return Err(FromEnvError::FdIsStdio { fd });
    }
    let inherited = borrow_inherited(fd);
    if fcntl_getfd(inherited).is_err() {
        return Err(FromEnvError::FdNotOpen { fd });
    }
    let is_socket = fstat(inherited)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Socket)
        .unwrap_or(false);
    if !is_socket {
        return Err(FromEnvError::FdNotSeqpacket { fd });
    }
    if INHERITED_FD_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(FromEnvError::FdAlreadyTaken { fd });
    }
    let owned = take_ownership(fd);
    if sockopt::socket_type(&owned) != Ok(SocketType::SEQPACKET) {
        // Not ours to close after all: hand the number back untouched.
        let _ = owned.into_raw_fd();
        INHERITED_FD_TAKEN.store(false, Ordering::Release);
        return Err(FromEnvError::FdNotSeqpacket { fd });
    }
    // The fd is open (checked above), so this does not fail; if it somehow did, children
    // could inherit the fd, which weakens attribution but does not break this process.
    let _ = fcntl_setfd(&owned, FdFlags::CLOEXEC);
    Ok(owned)
}

/// Makes the kernel refuse descriptors passed to the socket `fd` (`SO_PASSRIGHTS` off, Linux
/// 6.16 and later): a peer's `sendmsg` with `SCM_RIGHTS` then fails with `EPERM` at the
/// sender, and nothing is queued. Returns `Ok(false)` on a kernel (or an architecture) without
/// the option.
///
/// Why a reader of an untrusted peer wants this: a descriptor passed in a message is the
/// reader's once the message is received, and one it does not take (no control buffer, as
/// oomd reads frames) is released in the reader's own thread right after the receive. Its
/// release can block: a TCP socket with unsent data and `SO_LINGER` set waits out the linger
/// time in it, so one packet could stall the reader, and an event loop with it. On a kernel
/// without the option that stays possible; oomd says so once at start.
pub fn refuse_descriptors(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // `SO_PASSRIGHTS` is 83 in asm-generic/socket.h, which these architectures use; the others
    // (alpha, mips, parisc, sparc) number it otherwise and are not targets of this project.
    const GENERIC_NUMBERING: bool = cfg!(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            target_arch = "riscv64"
        )
    ));
    const SO_PASSRIGHTS: libc::c_int = 83;
    if !GENERIC_NUMBERING {
        return Ok(false);
    }
    let off: libc::c_int = 0;
    let len = libc::socklen_t::try_from(core::mem::size_of::<libc::c_int>())
        .expect("an int's size fits a socklen_t");
    #[allow(unsafe_code)]
    // SAFETY: `fd` is a borrowed, open descriptor for the whole call; the option value points
    // at `off`, a live `c_int` of exactly `len` bytes, which the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SOL_SOCKET,
            SO_PASSRIGHTS,
            core::ptr::from_ref(&off).cast(),
            len,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOPROTOOPT) {
        return Ok(false);
    }
    Err(e)
}

/// Borrows the inherited number `fd` (not 0..=2) to ask the kernel whether it is open and
/// what it is, before anything owns it.
#[allow(unsafe_code)]
fn borrow_inherited(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: `BorrowedFd::borrow_raw` needs `fd` not to be -1 (our caller filtered out
    // negative numbers) and to stay open while borrowed. Whether it is open at all is what the
    // borrow is for: it is only handed to `fcntl(F_GETFD)`, which reports `EBADF` for a
    // closed number and changes nothing, and, once that succeeded, to `fstat`. Nothing in
    // this process closes it meanwhile: the `OOMD_MEMSTAT_FD` contract is that the spawner
    // passed the fd for the memstat publisher alone, and it is adopted (owned) only after
    // these checks, in `take_ownership`. The borrow is not kept past `adopt_inherited_fd`.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Makes an `OwnedFd` of the inherited socket `fd`.
#[allow(unsafe_code)]
fn take_ownership(fd: RawFd) -> OwnedFd {
    // SAFETY: `OwnedFd::from_raw_fd` needs `fd` to be open and owned by nobody else in this
    // process. It is open: `fcntl(F_GETFD)` succeeded and it is neither -1 nor 0..=2. Nobody
    // else owns it: the `OOMD_MEMSTAT_FD` contract is that the spawner passed this fd for the
    // memstat publisher alone, and `INHERITED_FD_TAKEN` (set by our caller just before) makes
    // this the only adoption in the process, so it is closed at most once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn from_env(fd: Option<&str>, socket: Option<&str>) -> Result<UnixTransport, FromEnvError> {
        UnixTransport::from_env_values(fd.map(OsStr::new), socket.map(OsStr::new))
    }

    #[test]
    fn send_errors_are_full_closed_or_other() {
        assert_eq!(send_error(Errno::AGAIN), SendError::Full);
        assert_eq!(send_error(Errno::NOBUFS), SendError::Full);
        for full in [Errno::AGAIN, Errno::NOBUFS] {
            assert!(io_would_block(&io::Error::from_raw_os_error(
                full.raw_os_error()
            )));
        }
        assert!(io_would_block(&io::ErrorKind::WouldBlock.into()));
        assert!(!io_would_block(&io::Error::from_raw_os_error(
            Errno::PIPE.raw_os_error()
        )));
        for closed in [
            Errno::PIPE,
            Errno::CONNRESET,
            Errno::CONNREFUSED,
            Errno::CONNABORTED,
            Errno::NOTCONN,
            Errno::DESTADDRREQ,
            Errno::BADF,
            Errno::NOTSOCK,
        ] {
            assert_eq!(send_error(closed), SendError::Closed, "{closed}");
        }
        for other in [Errno::NOMEM, Errno::MSGSIZE, Errno::INTR] {
            assert_eq!(send_error(other), SendError::Other, "{other}");
        }
    }

    #[test]
    fn neither_variable_set_is_not_set() {
        assert!(matches!(from_env(None, None), Err(FromEnvError::NotSet)));
    }

    #[test]
    fn fd_that_is_not_a_number_is_refused() {
        for value in ["", "x", "-4", "3.0", "99999999999"] {
            let err = from_env(Some(value), None).unwrap_err();
            assert!(
                matches!(&err, FromEnvError::FdNotANumber { value: v } if v == value),
                "{value:?}: {err:?}"
            );
        }
    }

    #[test]
    fn standard_streams_are_refused() {
        for fd in 0..=2 {
            let err = from_env(Some(&fd.to_string()), None).unwrap_err();
            assert!(matches!(err, FromEnvError::FdIsStdio { fd: f } if f == fd));
        }
    }

    #[test]
    fn fd_that_is_not_open_is_refused() {
        let err = from_env(Some("1000000"), None).unwrap_err();
        assert!(matches!(err, FromEnvError::FdNotOpen { fd: 1_000_000 }));
    }

    #[test]
    fn file_that_is_not_a_socket_is_refused_and_left_open() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let err = from_env(Some(&file.as_raw_fd().to_string()), None).unwrap_err();
        assert!(
            matches!(err, FromEnvError::FdNotSeqpacket { .. }),
            "{err:?}"
        );
        assert!(fcntl_getfd(&file).is_ok());
    }

    #[test]
    fn fd_variable_wins_and_is_not_a_fallback() {
        let err = from_env(Some("junk"), Some("/nonexistent/oomd.sock")).unwrap_err();
        assert!(matches!(err, FromEnvError::FdNotANumber { .. }));
    }

    #[test]
    fn unreachable_socket_path_is_a_connect_error() {
        let err = from_env(None, Some("/nonexistent/oomd.sock")).unwrap_err();
        match &err {
            FromEnvError::Connect { path, source } => {
                assert_eq!(path, Path::new("/nonexistent/oomd.sock"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.source().is_some());
        assert!(err.to_string().contains(ENV_SOCKET));
    }

    #[test]
    fn too_long_socket_path_is_a_connect_error() {
        let long = "/tmp/".to_string() + &"x".repeat(200);
        assert!(matches!(
            from_env(None, Some(&long)),
            Err(FromEnvError::Connect { .. })
        ));
    }

    /// One test, because adoption is once per process: the refused stream socket must be
    /// tried before the seqpacket socket is adopted.
    #[test]
    fn inherited_seqpacket_fd_is_adopted_once_and_made_close_on_exec() {
        let (stream, _stream_peer) = socket::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let err = from_env(Some(&stream.as_raw_fd().to_string()), None).unwrap_err();
        assert!(
            matches!(err, FromEnvError::FdNotSeqpacket { .. }),
            "{err:?}"
        );
        // Still open and still ours: the refusal did not close it.
        assert!(fcntl_getfd(&stream).is_ok());

        let (ours, _peer) = socket::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::empty(),
            None,
        )
        .unwrap();
        // Give up ownership as a spawner would: the publisher now owns the number.
        let raw = ours.into_raw_fd();
        let transport = from_env(Some(&raw.to_string()), None).unwrap();
        assert!(transport.is_connected());
        let flags = fcntl_getfd(transport.socket.as_ref().unwrap()).unwrap();
        assert!(flags.contains(FdFlags::CLOEXEC));

        let again = from_env(Some(&raw.to_string()), None).unwrap_err();
        assert!(matches!(again, FromEnvError::FdAlreadyTaken { fd } if fd == raw));
        drop(transport);
    }
}
