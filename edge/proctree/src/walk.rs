//! Who is whose child: the `children` files of every thread, or a scan of `/proc` by parent.

use core::mem::MaybeUninit;
use core::ops::ControlFlow;

use rustix::fd::OwnedFd;
use rustix::fs::{Access, OFlags, RawDir};
use rustix::io::Errno;

use crate::path::{open_at, parse_pid, Path};
use crate::stat::{stat_of, Stat};
use crate::{Error, Pid};

/// Bytes of directory entries read per `getdents64` (about 150 entries of `/proc`).
const DIR_BUF: usize = 4096;
/// Bytes of a `children` file read per `read`.
const CHILDREN_BUF: usize = 512;
/// Processes seen before their parent in one scan pass (a child whose pid is lower than its
/// parent's, after pid numbers wrapped) that are remembered and resolved at the end of the
/// pass. More than this costs one more pass, nothing else.
const DEFERRED: usize = 64;

/// How children are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// `/proc/<pid>/task/<tid>/children` of every thread of each member (Linux 3.5+, built
    /// with `CONFIG_PROC_CHILDREN`): a few reads per member of the tree, whatever else runs.
    Children,
    /// `/proc/<pid>/stat` of every process on the machine, matched by parent: a read per
    /// process per pass (one pass, unless pid numbers wrapped inside the tree).
    Scan,
}

impl Method {
    /// [`Method::Children`] when this kernel offers `children` files, else [`Method::Scan`].
    #[must_use]
    pub fn detect() -> Method {
        match rustix::fs::access(c"/proc/thread-self/children", Access::EXISTS) {
            Ok(()) => Method::Children,
            Err(_) => Method::Scan,
        }
    }
}

/// Reads parent–child links of the process tree with one [`Method`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    method: Method,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// A tree read with [`Method::detect`]'s method (one `access` call: detect once, keep
    /// the value).
    #[must_use]
    pub fn new() -> Tree {
        Tree {
            method: Method::detect(),
        }
    }

    /// A tree read with `method`. [`Method::Children`] on a kernel without `children` files
    /// fails with [`Error::Unsupported`], never with an empty answer.
    #[must_use]
    pub const fn with_method(method: Method) -> Tree {
        Tree { method }
    }

    /// How this tree is read.
    #[must_use]
    pub const fn method(&self) -> Method {
        self.method
    }

    /// The children of `pid` (of all of its threads), each once, into `out`; returns how
    /// many. A process that does not exist has none.
    pub fn children(&self, pid: Pid, out: &mut [Pid]) -> Result<usize, Error> {
        let mut n = 0;
        match self.method {
            Method::Children => children_files(pid, |c| push_unique(out, &mut n, c))?,
            Method::Scan => {
                let mut full = false;
                scan(|s| {
                    if s.ppid == pid && push_unique(out, &mut n, s.pid).is_err() {
                        full = true;
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                })?;
                if full {
                    return Err(Error::Overflow);
                }
            }
        }
        Ok(n)
    }

    /// Every descendant of `root` (children, their children, …; not `root` itself), each
    /// once, in breadth-first order, into `out`; returns how many. A process reparented to a
    /// child subreaper inside the tree is still found under it; one that is not a descendant
    /// any more (reparented outside) is not. On [`Error::Overflow`], `out` is full of
    /// descendants, parents before their children.
    pub fn descendants(&self, root: Pid, out: &mut [Pid]) -> Result<usize, Error> {
        match self.method {
            Method::Children => descendants_by_children(root, out),
            Method::Scan => descendants_by_scan(root, out),
        }
    }
}

pub(crate) fn push_unique(out: &mut [Pid], n: &mut usize, pid: Pid) -> Result<(), Error> {
    if out[..*n].contains(&pid) {
        return Ok(());
    }
    let slot = out.get_mut(*n).ok_or(Error::Overflow)?;
    *slot = pid;
    *n += 1;
    Ok(())
}

/// Calls `f` for every process in `/proc` with its [`Stat`], in `/proc` order (ascending
/// pids), until `f` breaks. Processes that exit during the scan are skipped.
pub fn scan(mut f: impl FnMut(&Stat) -> ControlFlow<()>) -> Result<(), Error> {
    let mut root = Path::new();
    root.push(b"/proc").ok_or(Error::Malformed)?;
    let proc = open_at(None, &root, OFlags::DIRECTORY)?;
    let mut buf = [MaybeUninit::<u8>::uninit(); DIR_BUF];
    let mut dir = RawDir::new(&proc, &mut buf);
    while let Some(entry) = dir.next() {
        let entry = entry?;
        let Some(pid) = parse_pid(entry.file_name().to_bytes()) else {
            continue;
        };
        let mut path = Path::new();
        path.push_int(pid)
            .and_then(|p| p.push(b"/stat"))
            .ok_or(Error::Malformed)?;
        let stat = match open_at(Some(&proc), &path, OFlags::empty()).and_then(|fd| stat_of(&fd)) {
            Ok(stat) => stat,
            Err(e) if e.is_gone() => continue,
            Err(e) => return Err(e),
        };
        if f(&stat).is_break() {
            break;
        }
    }
    Ok(())
}

/// Parses the text of a `children` file (`"123 456 "`) into `out`; returns how many pids.
pub fn parse_pids(text: &[u8], out: &mut [Pid]) -> Result<usize, Error> {
    let mut n = 0;
    let mut parser = PidParser::default();
    parser.feed(text, |p| push_unique(out, &mut n, p))?;
    parser.finish(|p| push_unique(out, &mut n, p))?;
    Ok(n)
}

/// Decimal pids separated by spaces or newlines, fed in chunks that may split a number.
#[derive(Default)]
struct PidParser {
    digits: Option<u64>,
}

impl PidParser {
    fn feed(
        &mut self,
        bytes: &[u8],
        mut f: impl FnMut(Pid) -> Result<(), Error>,
    ) -> Result<(), Error> {
        for &b in bytes {
            match b {
                b'0'..=b'9' => {
                    let v = self.digits.unwrap_or(0);
                    let v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .filter(|&v| v <= i32::MAX as u64)
                        .ok_or(Error::Malformed)?;
                    self.digits = Some(v);
                }
                b' ' | b'\n' => self.finish(&mut f)?,
                _ => return Err(Error::Malformed),
            }
        }
        Ok(())
    }

    fn finish(&mut self, mut f: impl FnMut(Pid) -> Result<(), Error>) -> Result<(), Error> {
        match self.digits.take() {
            Some(0) => Err(Error::Malformed),
            // At most i32::MAX, checked digit by digit.
            Some(v) => f(Pid::try_from(v).map_err(|_| Error::Malformed)?),
            None => Ok(()),
        }
    }
}

/// Calls `f` for each child listed in the `children` file of every thread of `pid`.
pub(crate) fn children_files(
    pid: Pid,
    mut f: impl FnMut(Pid) -> Result<(), Error>,
) -> Result<(), Error> {
    let path = Path::proc(pid, "task").ok_or(Error::Malformed)?;
    let task = match open_at(None, &path, OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.is_gone() => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut buf = [MaybeUninit::<u8>::uninit(); DIR_BUF];
    let mut dir = RawDir::new(&task, &mut buf);
    while let Some(entry) = dir.next() {
        let entry = match entry {
            Ok(entry) => entry,
            // The process exited while its threads were listed.
            Err(Errno::NOENT | Errno::SRCH) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(tid) = parse_pid(entry.file_name().to_bytes()) else {
            continue;
        };
        let mut rel = Path::new();
        rel.push_int(tid).ok_or(Error::Malformed)?;
        let mut file = Path::new();
        file.push_int(tid)
            .and_then(|p| p.push(b"/children"))
            .ok_or(Error::Malformed)?;
        match open_at(Some(&task), &file, OFlags::empty()) {
            Ok(fd) => read_children(&fd, &mut f)?,
            Err(e) if e.is_gone() => {
                // Either the thread is gone, or this kernel has no children files at all.
                if open_at(Some(&task), &rel, OFlags::DIRECTORY | OFlags::PATH).is_ok() {
                    return Err(Error::Unsupported);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `/proc/<pid>/task/<pid>/children`: the children of the main thread of `pid`.
pub(crate) fn main_thread_children(pid: Pid) -> Option<Path> {
    let mut path = Path::proc(pid, "task/")?;
    path.push_int(pid)?.push(b"/children")?;
    Some(path)
}

/// Calls `f` for each child listed in a `children` file kept open, read again from offset 0
/// with `pread` (the kernel lists the children anew at each read from the start). A read
/// shorter than the buffer is the end of the list: the kernel fills the caller's buffer
/// until the children run out (its own buffer, a page, is larger than ours), so a thread
/// with up to about 80 children costs one system call. A thread that is gone has none (its
/// file reads empty; its children went to another thread or to a subreaper).
pub(crate) fn pread_children(
    fd: &OwnedFd,
    f: &mut impl FnMut(Pid) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = [0u8; CHILDREN_BUF];
    let mut parser = PidParser::default();
    let mut offset = 0u64;
    loop {
        match rustix::io::pread(fd, &mut buf, offset) {
            Ok(0) => break,
            Ok(n) => {
                parser.feed(&buf[..n], &mut *f)?;
                if n < buf.len() {
                    break;
                }
                offset += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(Errno::NOENT | Errno::SRCH) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    parser.finish(f)
}

pub(crate) fn read_children(
    fd: &OwnedFd,
    f: &mut impl FnMut(Pid) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = [0u8; CHILDREN_BUF];
    let mut parser = PidParser::default();
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => parser.feed(&buf[..n], &mut *f)?,
            Err(Errno::INTR) => {}
            // The thread exited: it has no children any more.
            Err(Errno::NOENT | Errno::SRCH) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    parser.finish(f)
}

fn descendants_by_children(root: Pid, out: &mut [Pid]) -> Result<usize, Error> {
    let mut n = 0;
    let mut next = 0;
    let mut parent = root;
    loop {
        children_files(parent, |c| match c == root {
            true => Ok(()),
            false => push_unique(out, &mut n, c),
        })?;
        if next == n {
            return Ok(n);
        }
        parent = out[next];
        next += 1;
    }
}

/// Passes over `/proc` adding every process whose parent is `root` or already found. One
/// pass finds the whole tree when every child has a higher pid than its parent (pids are
/// handed out in rising order until they wrap); a child seen before its parent is
/// remembered and resolved at the end of the pass, and only if that adds someone is another
/// pass made (their children may have been passed over). A pass that adds no one ends it.
fn descendants_by_scan(root: Pid, out: &mut [Pid]) -> Result<usize, Error> {
    let mut n = 0;
    loop {
        let before = n;
        let mut deferred = [(0, 0); DEFERRED];
        let mut deferred_n = 0;
        let mut deferred_lost = false;
        let mut full = false;
        scan(|s| {
            let member = |p: Pid, n: usize| p == root || out[..n].contains(&p);
            if s.pid == root || out[..n].contains(&s.pid) {
                // Already found (a later pass).
            } else if member(s.ppid, n) {
                if push_unique(out, &mut n, s.pid).is_err() {
                    full = true;
                    return ControlFlow::Break(());
                }
            } else if s.ppid > s.pid {
                // Its parent comes later in this pass, and may turn out to be a member.
                match deferred.get_mut(deferred_n) {
                    Some(slot) => {
                        *slot = (s.pid, s.ppid);
                        deferred_n += 1;
                    }
                    None => deferred_lost = true,
                }
            }
            ControlFlow::Continue(())
        })?;
        if full {
            return Err(Error::Overflow);
        }
        let mut resolved = false;
        loop {
            let mut changed = false;
            for &(pid, ppid) in &deferred[..deferred_n] {
                let known = out[..n].contains(&pid);
                if !known && (ppid == root || out[..n].contains(&ppid)) {
                    push_unique(out, &mut n, pid)?;
                    changed = true;
                    resolved = true;
                }
            }
            if !changed {
                break;
            }
        }
        if n == before || !(resolved || deferred_lost) {
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_children_file_parses() {
        let mut out = [0; 8];
        assert_eq!(parse_pids(b"2312 2313 4000 \n", &mut out), Ok(3));
        assert_eq!(out[..3], [2312, 2313, 4000]);
        assert_eq!(parse_pids(b"", &mut out), Ok(0));
        assert_eq!(parse_pids(b"7", &mut out), Ok(1));
    }

    #[test]
    fn bad_children_text_is_refused() {
        let mut out = [0; 8];
        for text in [&b"12 x3 "[..], b"-4 ", b"0 ", b"2147483648 ", b"1\t2"] {
            assert_eq!(
                parse_pids(text, &mut out),
                Err(Error::Malformed),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn a_children_file_split_across_reads_parses_the_same() {
        let text = b"101 2020 30303 ";
        for cut in 0..=text.len() {
            let mut got = [0; 4];
            let mut n = 0;
            let mut parser = PidParser::default();
            parser
                .feed(&text[..cut], |p| push_unique(&mut got, &mut n, p))
                .unwrap();
            parser
                .feed(&text[cut..], |p| push_unique(&mut got, &mut n, p))
                .unwrap();
            parser.finish(|p| push_unique(&mut got, &mut n, p)).unwrap();
            assert_eq!(got[..n], [101, 2020, 30303], "cut at {cut}");
        }
    }

    #[test]
    fn a_full_buffer_is_an_overflow_with_a_valid_prefix() {
        let mut out = [0; 2];
        assert_eq!(parse_pids(b"1 2 3", &mut out), Err(Error::Overflow));
        assert_eq!(out, [1, 2]);
        // Duplicates are kept once and do not overflow.
        assert_eq!(parse_pids(b"5 5 5 6", &mut out), Ok(2));
    }

    #[test]
    fn detection_follows_the_kernel() {
        let offered = std::path::Path::new("/proc/thread-self/children").exists();
        let expected = if offered {
            Method::Children
        } else {
            Method::Scan
        };
        assert_eq!(Method::detect(), expected);
        assert_eq!(Tree::new().method(), expected);
    }
}
