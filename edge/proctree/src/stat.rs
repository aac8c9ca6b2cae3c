//! `/proc/<pid>/stat`: `pid (comm) state ppid pgrp session … num_threads … starttime … rss`.

use rustix::fd::OwnedFd;

use crate::path::{open_at, parse_pid, parse_u64, read_small, Path};
use crate::{Error, Pid};

/// The longest `stat` line read. The kernel's line is about 300 bytes with a 16-byte command
/// name (64 for a kernel thread's); 1 KiB leaves room for 52 fields of 20 digits.
pub const MAX_STAT_LEN: usize = 1024;

/// The fields of one `/proc/<pid>/stat` line the edge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// The process (field 1).
    pub pid: Pid,
    /// Its state letter (field 3): `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), …
    pub state: u8,
    /// Its parent (field 4): after the parent's exit, the nearest child subreaper above it, or
    /// 1. 0 for the first process and for kernel threads of the root namespace.
    pub ppid: Pid,
    /// Its process group (field 5).
    pub pgrp: Pid,
    /// Its session (field 6).
    pub session: Pid,
    /// Its threads (field 20): those that have not exited, and a thread-group leader that
    /// has exited while other threads run (then `state` is `Z`).
    pub num_threads: u64,
    /// When it started, in clock ticks after boot (field 22): with the pid, it names one
    /// process across pid reuse.
    pub starttime: u64,
    /// Its resident pages (field 24), the same count as the second field of `statm`; 0 for a
    /// process without memory (a zombie, a kernel thread).
    pub rss_pages: u64,
}

impl Stat {
    /// Whether it has exited (a zombie waiting to be reaped, or dead).
    #[must_use]
    pub fn has_exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a `stat` line. The command name may hold spaces and parentheses, so the fields are
/// counted from after the **last** `)`; the pid is the number before the first ` (`.
#[must_use]
pub fn parse_stat(line: &[u8]) -> Option<Stat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = parse_pid(line[..open].strip_suffix(b" ")?)?;
    let mut fields = line[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = match fields.next()? {
        [s] => *s,
        _ => return None,
    };
    // ppid and pgrp may be 0 (the first process, kernel threads); never negative.
    let int = |f: &[u8]| parse_u64(f).and_then(|v| Pid::try_from(v).ok());
    let ppid = int(fields.next()?)?;
    let pgrp = int(fields.next()?)?;
    let session = int(fields.next()?)?;
    // Fields 7 to 19 (tty_nr, priority and nice may be negative: skipped, not parsed), then
    // num_threads (20), itrealvalue (21, skipped), starttime (22), vsize (23, skipped), rss.
    let num_threads = parse_u64(fields.nth(13)?)?;
    let starttime = parse_u64(fields.nth(1)?)?;
    let rss_pages = parse_u64(fields.nth(1)?)?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
        session,
        num_threads,
        starttime,
        rss_pages,
    })
}

/// Reads `/proc/<pid>/stat`. A process that is gone is `Error::Io(ENOENT or ESRCH)`
/// ([`Error::is_gone`]).
pub fn read_stat(pid: Pid) -> Result<Stat, Error> {
    let path = Path::proc(pid, "stat").ok_or(Error::Malformed)?;
    let fd = open_at(None, &path, rustix::fs::OFlags::empty())?;
    stat_of(&fd)
}

/// Reads and parses an open `stat` file.
pub(crate) fn stat_of(fd: &OwnedFd) -> Result<Stat, Error> {
    let mut buf = [0u8; MAX_STAT_LEN];
    let len = read_small(fd, &mut buf)?;
    parse_stat(&buf[..len]).ok_or(Error::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from a Linux 6.x `/proc/<pid>/stat` (a `sleep` whose parent is 2310).
    const SLEEP: &[u8] = b"2312 (sleep) S 2310 2310 412 0 -1 4194304 91 0 0 0 0 0 0 0 20 0 1 0 \
        8021417 5705728 256 18446744073709551615 94243917684736 94243917701425 140734711262640 \
        0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94243917716400 94243917717736 94243944366080 \
        140734711265615 140734711265635 140734711265635 140734711267307 0\n";

    #[test]
    fn a_recorded_line_gives_its_fields() {
        let s = parse_stat(SLEEP).unwrap();
        assert_eq!(
            (s.pid, s.state, s.ppid, s.pgrp, s.session, s.starttime),
            (2312, b'S', 2310, 2310, 412, 8_021_417)
        );
        assert_eq!((s.num_threads, s.rss_pages), (1, 256));
        assert!(!s.has_exited());
    }

    #[test]
    fn fields_are_counted_from_the_last_parenthesis() {
        let line = b"42 (a) b (c)) Z 7 41 40 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.pid, s.state, s.ppid, s.pgrp, s.session),
            (42, b'Z', 7, 41, 40)
        );
        assert_eq!((s.num_threads, s.starttime, s.rss_pages), (1, 99, 0));
        assert!(s.has_exited());
    }

    #[test]
    fn the_first_process_has_parent_zero() {
        let line = b"1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(line).unwrap().ppid, 0);
    }

    #[test]
    fn short_or_garbled_lines_are_refused() {
        for line in [
            &b"42 (sh) Z 1"[..],
            b"garbage",
            b"42 sh) S 1 2 3",
            b") (x",
            b"x (sh) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"42 (sh) SS 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"42 (sh) S -1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
            // Cut before rss.
            b"42 (sh) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0",
            // A negative thread count.
            b"42 (sh) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 -1 0 5 0 0",
            b"",
        ] {
            assert_eq!(
                parse_stat(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn our_own_stat_names_us() {
        let me = std::process::id() as Pid;
        let s = read_stat(me).unwrap();
        assert_eq!(s.pid, me);
        assert_eq!(s.ppid, std::os::unix::process::parent_id() as Pid);
        assert!(s.num_threads >= 1 && s.rss_pages > 0, "{s:?}");
        assert!(read_stat(i32::MAX).unwrap_err().is_gone());
    }
}
