//! `Publisher`: the piece a service links to send memstat frames to oomd.
//!
//! # Transport
//!
//! A Unix `SOCK_SEQPACKET` socket: one frame per message, message boundaries kept, and the
//! kernel knows the peer's credentials, so oomd learns *who* sent a frame from the socket,
//! never from the frame. A publisher gets its socket in one of two ways:
//!
//! - **an inherited, already connected fd** whose number is in [`ENV_FD`]
//!   (`OOMD_MEMSTAT_FD`). This is preferred: the process authority created the pair and gave
//!   one end to exactly this service, so the fd *is* the authentication. If the peer goes away
//!   the publisher cannot get a new one; frames are dropped and counted.
//! - **a socket path** in [`ENV_SOCKET`] (`OOMD_MEMSTAT_SOCKET`) to connect to. oomd then
//!   identifies the sender by its peer credentials. When the connection breaks the publisher
//!   reconnects, no more often than a bounded exponential backoff allows.
//!
//! # Hot path
//!
//! [`Publisher::publish`] never blocks and never allocates: it encodes into a buffer of
//! [`MAX_FRAME_LEN`] bytes held in the struct and sends with `MSG_DONTWAIT | MSG_NOSIGNAL`.
//! A frame that cannot be sent now is **dropped and counted** ([`PublisherStats`]), never queued; the
//! sequence number still advanced, so the receiver sees the gap.
//!
//! # Methods
//!
//! - constructors: [`from_env`](Publisher::from_env), [`from_fd`](Publisher::from_fd),
//!   [`connect`](Publisher::connect) (these may allocate and make blocking-free syscalls);
//! - inputs: [`publish_at`](Publisher::publish_at) takes the time from the caller (tests and
//!   event loops), [`publish`](Publisher::publish) reads `Instant::now()`,
//!   [`publish_from`](Publisher::publish_from) reads a [`CountingAlloc`];
//! - getters: [`stats`](Publisher::stats), [`next_seq`](Publisher::next_seq),
//!   [`is_connected`](Publisher::is_connected), [`config`](Publisher::config).

use std::error::Error;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{fstat, SFlag};

use crate::{CountingAlloc, Frame, SubjectId, MAX_FRAME_LEN};

/// Environment variable holding the number of an inherited, connected `SOCK_SEQPACKET` fd.
pub const ENV_FD: &str = "OOMD_MEMSTAT_FD";
/// Environment variable holding the path of oomd's `SOCK_SEQPACKET` listening socket.
pub const ENV_SOCKET: &str = "OOMD_MEMSTAT_SOCKET";

/// How often a [`Publisher`] sends, and how it retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherConfig {
    /// At most one frame per this interval, unless memory grew by [`quantum`](Self::quantum).
    /// Default 100 ms. Zero sends on every call.
    pub min_interval: Duration,
    /// The longest the publisher stays silent while it is called: figures that did not
    /// change since the last frame are sent again once this much time has passed since the
    /// last frame was built, so that the watchdog can tell a quiet service from a silent one
    /// (oomd's `report_stale_ticks`). Default 1 s. Zero (or anything below `min_interval`)
    /// sends unchanged figures every `min_interval`. See [`Publisher::next_due`] for when to
    /// call again.
    pub heartbeat: Duration,
    /// Growth in `current_bytes`, since the last frame actually sent, that is published at
    /// once whatever the interval. Default 64 KiB. Zero sends on every call.
    pub quantum: u64,
    /// Wait before the first reconnection attempt (path mode only). Default 50 ms.
    pub backoff_initial: Duration,
    /// The wait doubles after each failure up to this bound. Default 5 s. A bound below
    /// `backoff_initial` wins over it.
    pub backoff_max: Duration,
    /// The subject put in every frame's `claimed_subject`. Default `None`. Only a claim: oomd
    /// rejects a frame whose claim disagrees with the sender the transport authenticated.
    pub claimed_subject: Option<SubjectId>,
}

impl PublisherConfig {
    /// The defaults: 100 ms, a 1 s heartbeat, 64 KiB, 50 ms, 5 s, no claim.
    pub const DEFAULT: PublisherConfig = PublisherConfig {
        min_interval: Duration::from_millis(100),
        heartbeat: Duration::from_secs(1),
        quantum: 64 * 1024,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_secs(5),
        claimed_subject: None,
    };

    fn first_backoff(&self) -> Duration {
        self.backoff_initial.min(self.backoff_max)
    }
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one call to [`Publisher::publish_at`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// A frame went to the socket.
    Sent,
    /// Not due yet (rate limit); no frame was built and no sequence number used.
    Suppressed,
    /// A frame was built, with a sequence number, and then dropped.
    Dropped(DropReason),
}

/// Why a built frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The socket's buffer is full (the receiver is not keeping up): `EAGAIN`.
    WouldBlock,
    /// The peer is gone (`EPIPE`, `ECONNRESET`, …), or a reconnection attempt just failed, or
    /// (fd mode) it went away earlier and cannot come back.
    Disconnected,
    /// Path mode: disconnected, and the backoff before the next connection attempt has not
    /// elapsed, so no attempt was made.
    BackingOff,
    /// Any other send error. The socket is kept.
    Error,
}

/// Counters of everything a [`Publisher`] did. Every call lands in exactly one of `sent`,
/// `suppressed` or one `dropped_*` counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Frames sent.
    pub sent: u64,
    /// Calls that were not due (rate limit).
    pub suppressed: u64,
    /// Frames dropped because the socket buffer was full.
    pub dropped_would_block: u64,
    /// Frames dropped because the peer was gone or a reconnection attempt failed.
    pub dropped_disconnected: u64,
    /// Frames dropped while waiting out the reconnection backoff.
    pub dropped_backing_off: u64,
    /// Frames dropped for any other send error.
    pub dropped_error: u64,
    /// Reconnection attempts (path mode; the connection made by `connect` is not counted).
    pub connect_attempts: u64,
    /// Reconnection attempts that succeeded.
    pub reconnects: u64,
    /// Calls whose `peak` was below `current` and was raised to it.
    pub peak_clamped: u64,
}

impl PublisherStats {
    /// All frames dropped, whatever the reason.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_would_block
            .saturating_add(self.dropped_disconnected)
            .saturating_add(self.dropped_backing_off)
            .saturating_add(self.dropped_error)
    }
}

/// Why [`Publisher::from_env`] could not build a publisher. All but `Connect` mean the
/// environment the service was started in is wrong.
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

/// The socket, with the time each state began where it matters.
#[derive(Debug)]
enum Link {
    Up(OwnedFd),
    /// fd mode: the peer went away; there is nothing to reconnect to.
    Dead,
    /// Path mode: no socket. The next connection attempt is made by the first frame at or
    /// after `since + wait`.
    Down {
        since: Instant,
        wait: Duration,
    },
}

/// Sends memstat frames to oomd: rate-limited, non-blocking, allocation-free once built.
///
/// ```no_run
/// use memstat::publish::PublisherConfig;
/// use memstat::Publisher;
///
/// let mut publisher = Publisher::from_env(PublisherConfig::default())?;
/// let _ = publisher.publish(4096, 8192);
/// # Ok::<(), memstat::publish::FromEnvError>(())
/// ```
///
/// Rules, in the order they are applied by [`publish_at`](Self::publish_at):
///
/// 1. `peak < current` is not an error: `peak` is raised to `current` (counted in
///    [`PublisherStats::peak_clamped`]), so no invalid frame is ever built.
/// 2. **Rate limit.** A frame is due if none was built yet; or `current` grew by at least
///    `quantum` since the last frame that was actually *sent*; or `min_interval` has passed
///    since the last frame was built (sent or dropped) and either the figures changed since
///    that frame or `heartbeat` has passed too (a live service is never silent for longer
///    than its heartbeat). Otherwise the call is [`PublishOutcome::Suppressed`]. Time that goes
///    backwards counts as no time passing.
/// 3. A due frame takes the next sequence number (starting at 0), so every dropped frame
///    leaves a gap the receiver can see.
/// 4. **Send or drop.** See [`DropReason`]. In path mode a disconnection closes the socket
///    and waits `backoff` (initially `backoff_initial`) before the next connection attempt,
///    doubling the wait after each failure up to `backoff_max`; the wait returns to
///    `backoff_initial` only after a frame is sent successfully, so a peer that accepts and
///    immediately hangs up cannot make the publisher spin.
pub struct Publisher {
    link: Link,
    /// Path mode: where to reconnect, resolved once at construction.
    reconnect_to: Option<UnixAddr>,
    config: PublisherConfig,
    /// The wait to apply at the next disconnection or failed attempt.
    backoff: Duration,
    next_seq: u64,
    last_built_at: Option<Instant>,
    /// The figures of the last frame built (sent or dropped).
    last_built: (u64, u64),
    last_sent_current: u64,
    stats: PublisherStats,
    buf: [u8; MAX_FRAME_LEN],
}

/// Set once the fd named by [`ENV_FD`] has been adopted, so this process owns (and later
/// closes) it at most once.
static INHERITED_FD_TAKEN: AtomicBool = AtomicBool::new(false);

impl Publisher {
    fn new(link: Link, reconnect_to: Option<UnixAddr>, config: PublisherConfig) -> Self {
        Self {
            link,
            reconnect_to,
            config,
            backoff: config.first_backoff(),
            next_seq: 0,
            last_built_at: None,
            last_built: (0, 0),
            last_sent_current: 0,
            stats: PublisherStats::default(),
            buf: [0; MAX_FRAME_LEN],
        }
    }

    /// A publisher over `fd`, a connected `SOCK_SEQPACKET` socket (not checked here; another
    /// socket type would lose message boundaries). It never reconnects: when the peer goes
    /// away, every later frame is dropped as [`DropReason::Disconnected`].
    #[must_use]
    pub fn from_fd(fd: OwnedFd, config: PublisherConfig) -> Self {
        Self::new(Link::Up(fd), None, config)
    }

    /// Connects to the `SOCK_SEQPACKET` listener at `path` and keeps the address to reconnect
    /// to it later. Fails if the path is too long for a Unix socket address or if this first
    /// connection fails (later failures are handled by backoff instead).
    pub fn connect(path: impl AsRef<Path>, config: PublisherConfig) -> io::Result<Self> {
        let addr = UnixAddr::new(path.as_ref())?;
        let fd = open_seqpacket(&addr)?;
        Ok(Self::new(Link::Up(fd), Some(addr), config))
    }

    /// Builds the publisher the service's spawner asked for.
    ///
    /// If [`ENV_FD`] is set, adopts that fd: it must be an open `SOCK_SEQPACKET` socket other
    /// than 0, 1 and 2, it is marked close-on-exec so children do not inherit the sender's
    /// identity, and it is adopted at most once per process. [`ENV_SOCKET`] is only consulted
    /// when [`ENV_FD`] is unset; a bad [`ENV_FD`] is an error, not a reason to fall back.
    ///
    /// The variables are left in the environment (changing the environment of a running,
    /// possibly multi-threaded process is not sound); a service that spawns children should
    /// remove them from the children's environment.
    pub fn from_env(config: PublisherConfig) -> Result<Self, FromEnvError> {
        let fd = std::env::var_os(ENV_FD);
        let socket = std::env::var_os(ENV_SOCKET);
        Self::from_env_values(fd.as_deref(), socket.as_deref(), config)
    }

    fn from_env_values(
        fd: Option<&OsStr>,
        socket: Option<&OsStr>,
        config: PublisherConfig,
    ) -> Result<Self, FromEnvError> {
        if let Some(value) = fd {
            return Ok(Self::from_fd(adopt_inherited_fd(value)?, config));
        }
        if let Some(path) = socket {
            return Self::connect(path, config).map_err(|source| FromEnvError::Connect {
                path: PathBuf::from(path),
                source,
            });
        }
        Err(FromEnvError::NotSet)
    }

    /// Publishes the allocator's figures now; see [`publish_at`](Self::publish_at).
    pub fn publish(&mut self, current: u64, peak: u64) -> PublishOutcome {
        self.publish_at(Instant::now(), current, peak)
    }

    /// Publishes what `alloc` counts now; see [`publish_at`](Self::publish_at). The two
    /// counters are read one after the other, and a pair torn by a concurrent allocation is
    /// clamped like any other `peak < current`.
    pub fn publish_from<A>(&mut self, alloc: &CountingAlloc<A>) -> PublishOutcome {
        let current = alloc.live_bytes();
        let peak = alloc.peak_bytes();
        self.publish(current, peak)
    }

    /// Offers the figures `current` and `peak` (allocator bytes) at time `now`. Never blocks,
    /// never allocates, never panics. See the type's documentation for the rules.
    pub fn publish_at(&mut self, now: Instant, current: u64, peak: u64) -> PublishOutcome {
        let peak = if peak < current {
            bump(&mut self.stats.peak_clamped);
            current
        } else {
            peak
        };
        if !self.is_due(now, current, peak) {
            bump(&mut self.stats.suppressed);
            return PublishOutcome::Suppressed;
        }
        let frame = Frame {
            seq: self.next_seq,
            current_bytes: current,
            peak_bytes: peak,
            claimed_subject: self.config.claimed_subject,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        self.last_built_at = Some(now);
        self.last_built = (current, peak);
        match self.transmit(now, &frame) {
            Ok(()) => {
                bump(&mut self.stats.sent);
                PublishOutcome::Sent
            }
            Err(reason) => {
                bump(match reason {
                    DropReason::WouldBlock => &mut self.stats.dropped_would_block,
                    DropReason::Disconnected => &mut self.stats.dropped_disconnected,
                    DropReason::BackingOff => &mut self.stats.dropped_backing_off,
                    DropReason::Error => &mut self.stats.dropped_error,
                });
                PublishOutcome::Dropped(reason)
            }
        }
    }

    fn is_due(&self, now: Instant, current: u64, peak: u64) -> bool {
        let Some(last) = self.last_built_at else {
            return true;
        };
        if current.saturating_sub(self.last_sent_current) >= self.config.quantum {
            return true;
        }
        let since = now.saturating_duration_since(last);
        let changed = (current, peak) != self.last_built;
        since >= self.config.min_interval && (changed || since >= self.config.heartbeat)
    }

    /// How long from `now` until a call sends even if the figures did not change (the
    /// heartbeat, or the first frame): an event loop that waits should call
    /// [`publish`](Self::publish) again within this, so that its service never looks silent.
    /// Zero when such a call is due now.
    #[must_use]
    pub fn next_due(&self, now: Instant) -> Duration {
        let Some(last) = self.last_built_at else {
            return Duration::ZERO;
        };
        let wait = self.config.heartbeat.max(self.config.min_interval);
        wait.saturating_sub(now.saturating_duration_since(last))
    }

    fn transmit(&mut self, now: Instant, frame: &Frame) -> Result<(), DropReason> {
        if let Link::Down { since, wait } = self.link {
            if now.saturating_duration_since(since) < wait {
                return Err(DropReason::BackingOff);
            }
            self.reconnect(now)?;
        }
        let Link::Up(fd) = &self.link else {
            return Err(DropReason::Disconnected);
        };
        // Cannot fail: the buffer is MAX_FRAME_LEN long and peak was clamped to >= current.
        let len = frame.encode(&mut self.buf).map_err(|_| DropReason::Error)?;
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        match socket::send(fd.as_raw_fd(), &self.buf[..len], flags) {
            Ok(n) if n == len => {
                self.last_sent_current = frame.current_bytes;
                self.backoff = self.config.first_backoff();
                Ok(())
            }
            // Only a socket that is not SEQPACKET can take part of a frame.
            Ok(_) => Err(DropReason::Error),
            Err(Errno::EAGAIN) => Err(DropReason::WouldBlock),
            Err(e) if is_disconnection(e) => {
                self.disconnect(now);
                Err(DropReason::Disconnected)
            }
            Err(_) => Err(DropReason::Error),
        }
    }

    fn reconnect(&mut self, now: Instant) -> Result<(), DropReason> {
        let Some(addr) = self.reconnect_to else {
            return Err(DropReason::Disconnected);
        };
        bump(&mut self.stats.connect_attempts);
        match open_seqpacket(&addr) {
            Ok(fd) => {
                bump(&mut self.stats.reconnects);
                self.link = Link::Up(fd);
                Ok(())
            }
            Err(_) => {
                self.disconnect(now);
                Err(DropReason::Disconnected)
            }
        }
    }

    /// Closes the socket; in path mode, schedules the next attempt and doubles the backoff.
    fn disconnect(&mut self, now: Instant) {
        if self.reconnect_to.is_none() {
            self.link = Link::Dead;
            return;
        }
        self.link = Link::Down {
            since: now,
            wait: self.backoff,
        };
        self.backoff = self.backoff.saturating_mul(2).min(self.config.backoff_max);
    }

    /// Everything this publisher did so far.
    #[must_use]
    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    /// The sequence number the next built frame will carry.
    #[must_use]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether a socket is open now (it may still turn out dead at the next send).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    /// The configuration it was built with.
    #[must_use]
    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("link", &self.link)
            .field(
                "reconnect_to",
                &self.reconnect_to.as_ref().and_then(UnixAddr::path),
            )
            .field("config", &self.config)
            .field("backoff", &self.backoff)
            .field("next_seq", &self.next_seq)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// Errors after which the socket is useless and (path mode) worth replacing.
fn is_disconnection(e: Errno) -> bool {
    matches!(
        e,
        Errno::EPIPE
            | Errno::ECONNRESET
            | Errno::ECONNREFUSED
            | Errno::ECONNABORTED
            | Errno::ENOTCONN
            | Errno::EDESTADDRREQ
            | Errno::EBADF
            | Errno::ENOTSOCK
    )
}

/// A non-blocking, close-on-exec `SOCK_SEQPACKET` socket connected to `addr`. Makes two
/// syscalls and no allocation; with a full listen backlog `connect` fails with `EAGAIN`
/// rather than waiting.
fn open_seqpacket(addr: &UnixAddr) -> Result<OwnedFd, Errno> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::connect(fd.as_raw_fd(), addr)?;
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
    if fcntl(fd, FcntlArg::F_GETFD).is_err() {
        return Err(FromEnvError::FdNotOpen { fd });
    }
    let is_socket = fstat(fd)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK)
        .unwrap_or(false);
    if !is_socket {
        return Err(FromEnvError::FdNotSeqpacket { fd });
    }
    if INHERITED_FD_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(FromEnvError::FdAlreadyTaken { fd });
    }
    let owned = take_ownership(fd);
    if socket::getsockopt(&owned, sockopt::SockType) != Ok(SockType::SeqPacket) {
        // Not ours to close after all: hand the number back untouched.
        let _ = owned.into_raw_fd();
        INHERITED_FD_TAKEN.store(false, Ordering::Release);
        return Err(FromEnvError::FdNotSeqpacket { fd });
    }
    // The fd is open (checked above), so this does not fail; if it somehow did, children
    // could inherit the fd, which weakens attribution but does not break this process.
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    Ok(owned)
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

    fn from_env(fd: Option<&str>, socket: Option<&str>) -> Result<Publisher, FromEnvError> {
        Publisher::from_env_values(
            fd.map(OsStr::new),
            socket.map(OsStr::new),
            PublisherConfig::default(),
        )
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
        assert!(fcntl(file.as_raw_fd(), FcntlArg::F_GETFD).is_ok());
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
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let err = from_env(Some(&stream.as_raw_fd().to_string()), None).unwrap_err();
        assert!(
            matches!(err, FromEnvError::FdNotSeqpacket { .. }),
            "{err:?}"
        );
        // Still open and still ours: the refusal did not close it.
        assert!(fcntl(stream.as_raw_fd(), FcntlArg::F_GETFD).is_ok());

        let (ours, _peer) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        // Give up ownership as a spawner would: the publisher now owns the number.
        let raw = ours.into_raw_fd();
        let publisher = from_env(Some(&raw.to_string()), None).unwrap();
        assert!(publisher.is_connected());
        let flags = FdFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));

        let again = from_env(Some(&raw.to_string()), None).unwrap_err();
        assert!(matches!(again, FromEnvError::FdAlreadyTaken { fd } if fd == raw));
        drop(publisher);
    }
}
