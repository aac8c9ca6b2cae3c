//! A process's resident memory: `Pss:` of `/proc/<pid>/smaps_rollup`, or the resident pages of
//! `/proc/<pid>/statm` where that file does not exist (Linux before 4.14) or may not be read.
//!
//! Summed over the processes of a service, PSS counts a page the service's processes share
//! among themselves once, and a page they share with others in proportion; RSS counts a
//! shared page once in every process that maps it (more than the service holds).

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::path::{open_at, parse_u64, read_small, Path};
use crate::{Error, Pid, Tree};

/// The longest `smaps_rollup` read: about 900 bytes on Linux 6.x (23 lines).
pub const MAX_ROLLUP_LEN: usize = 4096;
/// The longest `statm` read: seven numbers.
pub const MAX_STATM_LEN: usize = 256;

/// Resident bytes of one process, and how they were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resident {
    /// Proportional set size (`Pss:` of `smaps_rollup`): private pages in full, each shared
    /// page divided by the number of processes that map it.
    Pss(u64),
    /// Resident set size (`statm`'s second field × the page size): shared pages in full.
    Rss(u64),
}

impl Resident {
    /// The bytes, however counted.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        match self {
            Resident::Pss(b) | Resident::Rss(b) => b,
        }
    }
}

/// The `Pss:` line of a `smaps_rollup` text, in bytes (the kernel prints kB).
#[must_use]
pub fn parse_pss(rollup: &[u8]) -> Option<u64> {
    let line = rollup
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"Pss:"))?;
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let kib = parse_u64(fields.next()?)?;
    match (fields.next()?, fields.next()) {
        (b"kB", None) => kib.checked_mul(1024),
        _ => None,
    }
}

/// The resident pages of a `statm` text (its second field).
#[must_use]
pub fn parse_statm_resident(statm: &[u8]) -> Option<u64> {
    let mut fields = statm
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let _size = parse_u64(fields.next()?)?;
    parse_u64(fields.next()?)
}

/// The resident memory of `pid`: [`Resident::Pss`] where `smaps_rollup` can be read, else
/// [`Resident::Rss`]. A process that is gone, or has no memory (a zombie, a kernel thread),
/// is an error ([`Error::is_gone`] for the first).
pub fn resident(pid: Pid) -> Result<Resident, Error> {
    let path = Path::proc(pid, "smaps_rollup").ok_or(Error::Malformed)?;
    match open_at(None, &path, OFlags::empty()) {
        Ok(fd) => {
            let mut buf = [0u8; MAX_ROLLUP_LEN];
            match read_small(&fd, &mut buf) {
                Ok(len) => {
                    return parse_pss(&buf[..len])
                        .map(Resident::Pss)
                        .ok_or(Error::Malformed)
                }
                // A process without memory, or one that exited since the open.
                Err(Error::Io(Errno::SRCH)) => return Err(Error::Io(Errno::SRCH)),
                // Not ours to read (ptrace rules): statm is readable by anyone.
                Err(Error::Io(Errno::ACCESS | Errno::PERM)) => {}
                Err(e) => return Err(e),
            }
        }
        // No such file on this kernel (or no such process: statm says which).
        Err(Error::Io(Errno::NOENT | Errno::ACCESS | Errno::PERM)) => {}
        Err(e) => return Err(e),
    }
    rss(pid).map(Resident::Rss)
}

/// Resident bytes of `pid` from `statm`.
pub fn rss(pid: Pid) -> Result<u64, Error> {
    let path = Path::proc(pid, "statm").ok_or(Error::Malformed)?;
    let fd = open_at(None, &path, OFlags::empty())?;
    let mut buf = [0u8; MAX_STATM_LEN];
    let len = read_small(&fd, &mut buf)?;
    let pages = parse_statm_resident(&buf[..len]).ok_or(Error::Malformed)?;
    Ok(pages.saturating_mul(rustix::param::page_size() as u64))
}

/// The resident memory of a tree of processes, summed by [`tree_resident`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TreeResident {
    /// The sum of every counted member's [`Resident::bytes`].
    pub bytes: u64,
    /// Members counted (those that exited between the walk and their read are not).
    pub counted: usize,
    /// Whether some member was counted by RSS (no `smaps_rollup` to read), which counts the
    /// pages it shares with others in full.
    pub rss: bool,
    /// Whether the walk found more members than the buffer holds: then the sum is over the
    /// first `buffer.len()` found (parents before children), a lower bound.
    pub truncated: bool,
    /// Whether `bytes` is a [`Meter`](crate::Meter)'s estimate (its last full read moved by
    /// the RSS change since) rather than a full read of every member's PSS.
    pub estimated: bool,
}

/// The resident memory of the descendants of `root` (not of `root` itself): one walk into
/// `buf`, then [`resident`] of each member. Only the walk can fail; a member that exits
/// before its read is left out. Like any walk, a snapshot of moving parts: a process born
/// during it may be missed, and a member that dies and whose pid is handed to a stranger
/// between the walk and its read (microseconds) would be counted as the stranger.
pub fn tree_resident(tree: &Tree, root: Pid, buf: &mut [Pid]) -> Result<TreeResident, Error> {
    let mut figure = TreeResident::default();
    let n = match tree.descendants(root, buf) {
        Ok(n) => n,
        Err(Error::Overflow) => {
            figure.truncated = true;
            buf.len()
        }
        Err(e) => return Err(e),
    };
    for &pid in &buf[..n] {
        // A member that exited since the walk (or a zombie, or unreadable) is not counted.
        if let Ok(r) = resident(pid) {
            figure.bytes = figure.bytes.saturating_add(r.bytes());
            figure.counted += 1;
            figure.rss |= matches!(r, Resident::Rss(_));
        }
    }
    Ok(figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from Linux 6.18 (`cat /proc/self/smaps_rollup`).
    const ROLLUP: &[u8] =
        b"560c557a2000-7fff1eba3000 ---p 00000000 00:00 0                          [rollup]
Rss:                1696 kB
Pss:                 686 kB
Pss_Dirty:           112 kB
Pss_Anon:            112 kB
Pss_File:            574 kB
Pss_Shmem:             0 kB
Shared_Clean:       1376 kB
Shared_Dirty:          0 kB
Private_Clean:       208 kB
Private_Dirty:       112 kB
Referenced:         1696 kB
Anonymous:           112 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
";

    #[test]
    fn pss_is_read_from_its_own_line() {
        assert_eq!(parse_pss(ROLLUP), Some(686 * 1024));
        // Pss_Dirty and friends are not Pss.
        assert_eq!(parse_pss(b"Pss_Dirty:  112 kB\nPss_Anon:  112 kB\n"), None);
        assert_eq!(parse_pss(b"Pss:  12 MB\n"), None);
        assert_eq!(parse_pss(b"Pss:  x kB\n"), None);
        assert_eq!(parse_pss(b""), None);
    }

    #[test]
    fn statm_gives_its_second_field() {
        assert_eq!(parse_statm_resident(b"765 440 412 5 0 123 0\n"), Some(440));
        assert_eq!(parse_statm_resident(b"765\n"), None);
        assert_eq!(parse_statm_resident(b"765 -1 0\n"), None);
    }

    #[test]
    fn our_own_memory_is_readable_and_plausible() {
        let me = std::process::id() as Pid;
        let mine = resident(me).unwrap();
        assert!(mine.bytes() > 64 * 1024, "{mine:?}");
        let rss = rss(me).unwrap();
        // PSS divides shared pages: never above RSS (allow for pages touched in between).
        assert!(mine.bytes() <= rss + (1 << 20), "{mine:?} > rss {rss}");
        assert!(resident(i32::MAX).unwrap_err().is_gone());
    }
}
