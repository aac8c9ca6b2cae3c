//! Who may connect to a control socket, who may change things, and who gives way when the
//! table of connections is full. Shared by execd and the oomd service, so that both sockets
//! follow one rule.
//!
//! - **The socket file** gets an explicit mode and group whatever the umask
//!   ([`listen_with`]): it is bound under a umask of `0177` and then given its mode (default
//!   [`DEFAULT_SOCKET_MODE`], `0660`) and, if one is configured, its group.
//! - **Each request** is checked against the caller's kernel credentials (`SO_PEERCRED`, read
//!   at accept), never against anything the caller sends: mutating requests need root, the
//!   daemon's own user, or the configured group ([`Access::permits`]). The check uses the
//!   peer's primary group, the one group `SO_PEERCRED` reports.
//! - **The table** cannot be held by idle connections ([`admit`]): an idle connection is
//!   closed after a timeout; when the table is full, the longest-idle connection gives way to
//!   the newcomer; unprivileged clients never displace privileged ones and may hold at most
//!   part of the table, so an operator always gets in. A privileged subscriber (execd's exit
//!   notifications) is never displaced. Only a table full of connections that may not be
//!   displaced refuses a newcomer, with a "busy" reply rather than a bare reset.
//! - **Refusals are logged at a bounded rate**, with a count ([`Throttle`]).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The mode a control socket file gets unless told otherwise: owner and group may connect.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// The kernel's account of the process at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Its pid when it connected.
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective (primary) group id.
    pub gid: u32,
}

impl PeerCred {
    /// What an unreadable credential counts as: nobody, with no rights.
    pub const NOBODY: PeerCred = PeerCred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
}

/// The credentials of the peer of a connected Unix socket, from the kernel (`SO_PEERCRED`).
///
/// The one use of nix in this crate: the kernel reports pid 0 for a peer whose pid is not
/// visible from this pid namespace, and rustix 1's `UCred` holds a `Pid` (a `NonZeroI32`),
/// which cannot hold that 0 (rustix reads the struct in unchecked).
pub fn peer_cred(fd: &impl AsFd) -> io::Result<PeerCred> {
    let cred = nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(PeerCred {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

/// Who may make mutating requests (policy changes, injections, spawns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The daemon's own effective user: the operator who started it.
    pub owner_uid: u32,
    /// The configured control group, if any.
    pub group: Option<u32>,
}

impl Access {
    /// The daemon's own user, and `group` if given.
    #[must_use]
    pub fn for_this_process(group: Option<u32>) -> Access {
        Access {
            owner_uid: rustix::process::geteuid().as_raw(),
            group,
        }
    }

    /// Whether a caller with these credentials may change things: root, the daemon's own
    /// user, or a member (by primary group) of the control group.
    #[must_use]
    pub fn permits(&self, cred: &PeerCred) -> bool {
        cred.uid == 0 || cred.uid == self.owner_uid || self.group == Some(cred.gid)
    }
}

/// How a control socket file is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// Its permission bits (e.g. `0o660`); bits above `0o777` are refused.
    pub mode: u32,
    /// Its group, if not the daemon's own.
    pub group: Option<u32>,
}

impl Default for SocketAccess {
    fn default() -> Self {
        SocketAccess {
            mode: DEFAULT_SOCKET_MODE,
            group: None,
        }
    }
}

/// Binds and listens like [`listen`](crate::listen), with the socket file's mode and group
/// set explicitly. The file is created under a umask of `0177` (owner only), so no one else
/// can connect before its mode is set.
pub fn listen_with(path: &Path, access: SocketAccess) -> io::Result<OwnedFd> {
    if access.mode & !0o777 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket mode {:o} has bits beyond 0777", access.mode),
        ));
    }
    let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listened = crate::listen(path);
    rustix::process::umask(previous);
    let fd = listened?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(access.mode))?;
    if let Some(gid) = access.group {
        let gid = rustix::fs::Gid::from_raw(gid);
        rustix::fs::chown(path, None, Some(gid))?;
    }
    Ok(fd)
}

/// Parses a group given on the command line: a number, or a name looked up in `/etc/group`.
pub fn parse_group(text: &str) -> Result<u32, String> {
    if let Ok(gid) = text.parse::<u32>() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group")
        .map_err(|e| format!("cannot read /etc/group to look up group {text:?}: {e}"))?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse::<u32>().ok()?;
            (name == text).then_some(gid)
        })
        .next()
        .ok_or_else(|| format!("no group named {text:?} in /etc/group"))
}

/// Parses an octal socket mode such as `660` or `0o660`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "invalid socket mode {text:?}: expected octal permission bits like 660"
        )),
    }
}

/// One occupied connection slot, as the admission rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    /// Its caller may change things ([`Access::permits`]).
    pub privileged: bool,
    /// Never displaced and never timed out: a privileged subscriber.
    pub pinned: bool,
    /// In the middle of a request (replies still queued): not idle.
    pub busy: bool,
    /// Since when it has done nothing.
    pub idle_since: Instant,
}

/// Where a newcomer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Into this free slot.
    Free(usize),
    /// Into this slot, whose idle occupant is closed first (with an "evicted" notice).
    Evict(usize),
    /// Nowhere: reply "busy" and close.
    Busy,
}

/// Where a newcomer with `privileged` rights goes, given the table. Unprivileged clients may
/// hold at most `unprivileged_max` slots (the rest is kept for operators) and only ever
/// displace each other; a privileged newcomer displaces the longest-idle unprivileged client
/// first, then the longest-idle privileged one that is not pinned. Busy clients are never
/// displaced.
#[must_use]
pub fn admit(seats: &[Option<Seat>], privileged: bool, unprivileged_max: usize) -> Admit {
    let longest_idle = |eligible: &dyn Fn(&Seat) -> bool| {
        seats
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| !s.busy && eligible(s))
                    .map(|s| (i, s))
            })
            .min_by_key(|(i, s)| (s.idle_since, *i))
            .map(|(i, _)| i)
    };
    let unprivileged = seats.iter().flatten().filter(|s| !s.privileged).count();
    if !privileged && unprivileged >= unprivileged_max {
        return longest_idle(&|s| !s.privileged).map_or(Admit::Busy, Admit::Evict);
    }
    if let Some(free) = seats.iter().position(Option::is_none) {
        return Admit::Free(free);
    }
    if let Some(i) = longest_idle(&|s| !s.privileged) {
        return Admit::Evict(i);
    }
    if privileged {
        if let Some(i) = longest_idle(&|s| !s.pinned) {
            return Admit::Evict(i);
        }
    }
    Admit::Busy
}

/// Whether a seat has been idle for `timeout` and may be closed for it (pinned and busy seats
/// never are).
#[must_use]
pub fn idle_expired(seat: &Seat, now: Instant, timeout: Duration) -> bool {
    !seat.pinned && !seat.busy && now.saturating_duration_since(seat.idle_since) >= timeout
}

/// Counts events (refused connections, say) and says when to log them: at most once per
/// `every`, with how many happened since the last line, so that a flood of refusals costs one
/// line per interval.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    every: Duration,
    pending: u64,
    last: Option<Instant>,
}

impl Throttle {
    /// At most one line per `every`.
    #[must_use]
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            pending: 0,
            last: None,
        }
    }

    /// One more event at `now`; `Some(n)` when a line is due now, for `n` events.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.pending = self.pending.saturating_add(1);
        self.due(now)
    }

    /// `Some(n)` when events are pending and a line is due at `now` (call it now and then, so
    /// that the last ones of a burst are logged too).
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            return None;
        }
        self.last = Some(now);
        Some(core::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(privileged: bool, idle_ms: u64, t0: Instant) -> Option<Seat> {
        Some(Seat {
            privileged,
            pinned: false,
            busy: false,
            idle_since: t0 + Duration::from_millis(idle_ms),
        })
    }

    #[test]
    fn root_the_owner_and_the_group_may_change_things_and_no_one_else() {
        let access = Access {
            owner_uid: 1000,
            group: Some(50),
        };
        let cred = |uid, gid| PeerCred { pid: 1, uid, gid };
        assert!(access.permits(&cred(0, 0)));
        assert!(access.permits(&cred(1000, 1000)));
        assert!(access.permits(&cred(2000, 50)));
        assert!(!access.permits(&cred(65534, 65534)));
        assert!(!access.permits(&PeerCred::NOBODY));
        let no_group = Access {
            owner_uid: 1000,
            group: None,
        };
        assert!(!no_group.permits(&cred(2000, 50)));
    }

    #[test]
    fn a_free_slot_is_taken_first() {
        let t0 = Instant::now();
        let seats = [seat(true, 0, t0), None, seat(false, 5, t0)];
        assert_eq!(admit(&seats, false, 2), Admit::Free(1));
        assert_eq!(admit(&seats, true, 2), Admit::Free(1));
    }

    #[test]
    fn when_full_the_longest_idle_gives_way_unprivileged_first() {
        let t0 = Instant::now();
        let seats = [seat(true, 0, t0), seat(false, 10, t0), seat(false, 5, t0)];
        assert_eq!(admit(&seats, true, 3), Admit::Evict(2));
        assert_eq!(admit(&seats, false, 3), Admit::Evict(2));
        let all_privileged = [seat(true, 7, t0), seat(true, 3, t0)];
        assert_eq!(admit(&all_privileged, true, 2), Admit::Evict(1));
        // An unprivileged newcomer never displaces an operator.
        assert_eq!(admit(&all_privileged, false, 2), Admit::Busy);
    }

    #[test]
    fn unprivileged_clients_hold_at_most_their_share() {
        let t0 = Instant::now();
        let seats = [seat(false, 1, t0), seat(false, 2, t0), None, None];
        // Two of four for unprivileged clients: a third displaces the longest idle of them,
        // the free slots stay for operators.
        assert_eq!(admit(&seats, false, 2), Admit::Evict(0));
        assert_eq!(admit(&seats, true, 2), Admit::Free(2));
    }

    #[test]
    fn pinned_and_busy_clients_are_never_displaced() {
        let t0 = Instant::now();
        let mut pinned = seat(true, 0, t0);
        if let Some(s) = &mut pinned {
            s.pinned = true;
        }
        let mut busy = seat(false, 0, t0);
        if let Some(s) = &mut busy {
            s.busy = true;
        }
        assert_eq!(admit(&[pinned, busy], true, 2), Admit::Busy);
        let later = t0 + Duration::from_secs(3600);
        assert!(!idle_expired(
            &pinned.unwrap(),
            later,
            Duration::from_secs(1)
        ));
        assert!(!idle_expired(&busy.unwrap(), later, Duration::from_secs(1)));
        assert!(idle_expired(
            &seat(true, 0, t0).unwrap(),
            later,
            Duration::from_secs(1)
        ));
    }

    #[test]
    fn a_flood_of_refusals_is_one_line_per_interval_with_its_count() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert_eq!(throttle.note(t0), Some(1));
        for ms in 1..=999 {
            assert_eq!(throttle.note(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(throttle.due(t0 + Duration::from_millis(999)), None);
        assert_eq!(throttle.due(t0 + Duration::from_millis(1000)), Some(999));
        assert_eq!(throttle.due(t0 + Duration::from_millis(5000)), None);
    }

    #[test]
    fn modes_and_groups_parse() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("rw").is_err());
        assert_eq!(parse_group("0"), Ok(0));
        assert_eq!(parse_group("root"), Ok(0));
        assert!(parse_group("no-such-group-here").is_err());
    }
}
