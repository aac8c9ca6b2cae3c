//! The files of `/proc` a [`Meter`](crate::Meter) keeps open between reads of one tree, and the
//! walk that reads them again.
//!
//! A read of a tree by path opens, reads and closes a file per question (`stat` of the root,
//! the `task` directory and a `children` file per thread of each member, `statm` of each
//! member): about 22 system calls for a root with one child, most of their cost the path
//! lookup in `/proc`. Kept open, each file is read again with one `pread` at offset 0 (`/proc`
//! writes it anew at each read from the start), and three files per process answer
//! everything a tick asks:
//!
//! - `/proc/<pid>/statm` gives the resident pages (its second field), and says the process is
//!   gone;
//! - `/proc/<pid>/task`, opened `O_PATH`, gives the thread count with one `fstat`: the kernel
//!   reports its link count as 2 plus the process's tasks not yet released (live threads,
//!   and a leader that exited while others run), and 2 once the process is reaped;
//! - `/proc/<pid>/task/<pid>/children`, the main thread's children, is all the children when
//!   that count is one: then the only task is the main thread (a leader that exits first
//!   stays counted until the last thread), and the `task` directory is not listed. A process
//!   with more threads is listed by path, as before (every thread's `children`).
//!
//! The root's memory is not counted, so its `statm` is not kept: the root costs an `fstat`
//! and a `pread`, each member a `pread`, an `fstat` and a `pread`. (`stat` would give the
//! resident pages and the thread count in one file, but the kernel takes about 2.6 µs to
//! write it, against 0.85 µs for `statm` and 0.36 µs for the `fstat`: measured on the
//! machine of `docs/perf.md`.)
//!
//! A thread started between the count and the `children` read hides the children it
//! forks at once for this read only: at the next read, either it runs (the count is more than
//! one, so every thread is listed), or it has exited, and its children went to another thread
//! of the process (`children` of the main thread, or a listed thread) or, with the whole
//! process gone, to the nearest subreaper above, the root or a member (execd's shim is one:
//! orphans land under it, never outside). A fork by a known thread is in that thread's
//! `children` file from the fork on, so it is seen at the next read.
//!
//! # Identity
//!
//! A kept file names the process it was opened for, not its pid: once that process is reaped
//! a read of its `statm` fails with `ESRCH`, its `task` counts no thread and its `children`
//! reads empty, even if the pid has been handed to another process since. So a member read
//! through its kept files is the one that was first seen there; a member whose kept files
//! read as gone is dropped with them. A pid met for the first time (from a `children` file
//! read just before) is opened by path: its `stat` first, then the files to keep, then the
//! `stat` is read (if that read works, the pid still named the process when all were
//! opened: a pid is not handed out again while its process, even a zombie, holds it), and it
//! counts only if its parent is the root or a member already found: a pid that was freed and
//! handed to a stranger in between has another parent.
//!
//! # Bounds
//!
//! Per tree, the root's two files and the three of each of [`MEMBERS_KEPT`] members; across a
//! meter, at most its budget of open files ([`KEPT_FILES`] unless set). A member past either
//! bound is read by path at every read, as without kept files: its `stat` (checked for its
//! parent as above), then its children by path, which leaves the window the walk by path
//! always had (a pid freed and handed to a stranger between the two reads would have the
//! stranger's children listed). A member with more than one thread has its children listed
//! by path too, and then counts only if its kept `task` still counts a thread after.

use rustix::fd::OwnedFd;
use rustix::fs::OFlags;

use crate::mem::parse_statm_resident;
use crate::path::{open_at, pread_small, Path};
use crate::stat::{stat_of, Stat};
use crate::walk::{
    children_files, main_thread_children, pread_children, push_unique, read_children,
};
use crate::{Error, Pid};

/// Members of one tree whose files a meter keeps open (the root's come on top): a service is
/// a shim and a handful of processes; the rest of a larger tree is read by path.
pub const MEMBERS_KEPT: usize = 8;

/// Files a meter keeps open at most unless told otherwise ([`Meter::with_kept_files`]): two
/// for a root and three per member, so 64 services of a shim and one process each; well
/// under the usual soft limit of 1024 descriptors. Each `statm` and `children` kept costs the
/// kernel a page for its text while open; a `task` opened `O_PATH` costs none.
///
/// [`Meter::with_kept_files`]: crate::Meter::with_kept_files
pub const KEPT_FILES: usize = 320;

/// How many files a meter may keep open, and how many it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) used: usize,
    pub(crate) max: usize,
}

impl Budget {
    fn room(&self, files: usize) -> bool {
        self.used.saturating_add(files) <= self.max
    }

    pub(crate) fn is_full(&self) -> bool {
        !self.room(MEMBER_FILES)
    }
}

const ROOT_FILES: usize = 2;
const MEMBER_FILES: usize = 3;

/// The kept files of one process.
#[derive(Debug)]
struct Files {
    /// `task/`, `O_PATH`: its link count tells the threads.
    task: OwnedFd,
    /// The main thread's `children`.
    children: OwnedFd,
    /// `statm` (a member's; the root's memory is not counted).
    statm: Option<OwnedFd>,
}

impl Files {
    fn count(&self) -> usize {
        2 + usize::from(self.statm.is_some())
    }

    fn release(self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(self.count());
    }

    /// Its tasks not yet released (0: it is gone, reaped).
    fn threads(&self) -> Result<u64, Error> {
        let st = rustix::fs::fstat(&self.task)?;
        // `nlink_t` is u64 on some targets, u32 on others.
        #[allow(clippy::useless_conversion)]
        let links = u64::from(st.st_nlink);
        Ok(links.saturating_sub(2))
    }

    /// Its resident pages; gone ([`Error::is_gone`]) once it is reaped.
    fn rss_pages(&self) -> Result<u64, Error> {
        let Some(fd) = &self.statm else {
            return Err(Error::Malformed);
        };
        let mut buf = [0u8; crate::mem::MAX_STATM_LEN];
        let len = pread_small(fd, &mut buf)?;
        parse_statm_resident(&buf[..len]).ok_or(Error::Malformed)
    }
}

/// Reads `pid`'s `stat` by path and, if `keep` and the budget has room, opens the files to
/// keep (with `statm` if `member`) before the `stat` is read. Returns the files if kept
/// (counted in the budget). A process that is gone is an error ([`Error::is_gone`]).
fn open_files(
    pid: Pid,
    member: bool,
    keep: bool,
    budget: &mut Budget,
) -> Result<(Stat, Option<Files>), Error> {
    let path = Path::proc(pid, "stat").ok_or(Error::Malformed)?;
    let stat = open_at(None, &path, OFlags::empty())?;
    let need = if member { MEMBER_FILES } else { ROOT_FILES };
    if !keep || !budget.room(need) {
        return Ok((stat_of(&stat)?, None));
    }
    let open = |path: Option<Path>, flags| path.and_then(|p| open_at(None, &p, flags).ok());
    let task = open(Path::proc(pid, "task"), OFlags::DIRECTORY | OFlags::PATH);
    let children = open(main_thread_children(pid), OFlags::empty());
    let statm = match member {
        true => open(Path::proc(pid, "statm"), OFlags::empty()).map(Some),
        false => Some(None),
    };
    // Read after the opens: if it works, the pid named this process when all were opened.
    let read = stat_of(&stat)?;
    let files = match (task, children, statm) {
        (Some(task), Some(children), Some(statm)) => Files {
            task,
            children,
            statm,
        },
        // Gone since, or no `children` files on this kernel: read by path.
        _ => return Ok((read, None)),
    };
    budget.used += files.count();
    Ok((read, Some(files)))
}

/// Calls `f` for each child of `pid`, which has `threads` tasks: through the kept `children`
/// file of its main thread when that thread is its only task, else by path (the main
/// thread's `children` alone if it has one thread, else every thread's). Returns whether the
/// children were read by path.
fn children(
    pid: Pid,
    threads: u64,
    kept: Option<&OwnedFd>,
    f: &mut impl FnMut(Pid) -> Result<(), Error>,
) -> Result<bool, Error> {
    if threads == 1 {
        if let Some(fd) = kept {
            pread_children(fd, f)?;
            return Ok(false);
        }
        let path = main_thread_children(pid).ok_or(Error::Malformed)?;
        if let Ok(fd) = open_at(None, &path, OFlags::empty()) {
            read_children(&fd, f)?;
            return Ok(true);
        }
        // Gone, or no `children` files on this kernel: the listing below tells which.
    }
    children_files(pid, f)?;
    Ok(true)
}

#[derive(Debug)]
struct Member {
    pid: Pid,
    files: Files,
    /// Found by the read under way (members not found are dropped at its end).
    seen: bool,
}

/// What a walk found: `buf[..n]` are the members read (each once, parents before children),
/// with their resident pages summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Walk {
    pub(crate) n: usize,
    pub(crate) truncated: bool,
    pub(crate) rss_pages: u64,
}

/// The kept files of one tree: its root's and those of up to [`MEMBERS_KEPT`] members.
#[derive(Debug)]
pub(crate) struct Kept {
    root: Option<Files>,
    members: [Option<Member>; MEMBERS_KEPT],
}

impl Kept {
    const NO_MEMBER: Option<Member> = None;
    pub(crate) const EMPTY: Kept = Kept {
        root: None,
        members: [Self::NO_MEMBER; MEMBERS_KEPT],
    };

    /// How many files it keeps open.
    pub(crate) fn files(&self) -> usize {
        let members: usize = self.members.iter().flatten().map(|m| m.files.count()).sum();
        self.root.as_ref().map_or(0, Files::count) + members
    }

    /// Closes every file it keeps.
    pub(crate) fn release(&mut self, budget: &mut Budget) {
        if let Some(files) = self.root.take() {
            files.release(budget);
        }
        for slot in &mut self.members {
            if let Some(m) = slot.take() {
                m.files.release(budget);
            }
        }
    }

    /// The root's tasks, told by its kept `task`: `None` if not kept; 0 if the process it was
    /// opened for is gone, even if `root` now names another.
    pub(crate) fn root_threads(&self) -> Option<Result<u64, Error>> {
        self.root.as_ref().map(Files::threads)
    }

    /// The root's `stat` read by path, its files kept if `keep` and there is room (they
    /// replace any kept before).
    pub(crate) fn open_root(
        &mut self,
        root: Pid,
        keep: bool,
        budget: &mut Budget,
    ) -> Result<Stat, Error> {
        let (stat, files) = open_files(root, false, keep, budget)?;
        if let Some(old) = core::mem::replace(&mut self.root, files) {
            old.release(budget);
        }
        Ok(stat)
    }

    /// Whether the member `pid` found by the last walk is still the process it read: false if
    /// its kept files say it is gone; true if not kept (nothing to tell by).
    pub(crate) fn still_there(&self, pid: Pid) -> bool {
        match self.find(pid).and_then(|i| self.members[i].as_ref()) {
            Some(m) => m.files.threads().is_ok_and(|t| t > 0),
            None => true,
        }
    }

    fn find(&self, pid: Pid) -> Option<usize> {
        self.members
            .iter()
            .position(|m| matches!(m, Some(m) if m.pid == pid))
    }

    fn drop_member(&mut self, i: usize, budget: &mut Budget) {
        if let Some(m) = self.members[i].take() {
            m.files.release(budget);
        }
    }

    /// Every descendant of `root` (which has `root_threads` tasks, just read) into `buf`,
    /// breadth first, and the sum of their resident pages: what [`Tree::descendants`] and a
    /// `statm` per member give, through kept files where it can (module docs). A member gone
    /// before it is read is not in `buf`. On a full `buf`, the members that fit are read
    /// (`truncated`).
    ///
    /// [`Tree::descendants`]: crate::Tree::descendants
    pub(crate) fn walk(
        &mut self,
        root: Pid,
        root_threads: u64,
        buf: &mut [Pid],
        budget: &mut Budget,
    ) -> Result<Walk, Error> {
        for m in self.members.iter_mut().flatten() {
            m.seen = false;
        }
        let mut w = Walk::default();
        let kept = self.root.as_ref().map(|f| &f.children);
        let by_path = children(root, root_threads, kept, &mut |c| {
            push_child(buf, &mut w, root, c)
        })?;
        if by_path {
            // Listed by path: the root must still be the process whose threads were counted.
            if let Some(threads) = self.root_threads() {
                if threads? == 0 {
                    return Err(Error::Io(rustix::io::Errno::SRCH));
                }
            }
        }
        let mut next = 0;
        while next < w.n {
            let pid = buf[next];
            let Some((threads, rss_pages, slot)) = self.member(pid, root, &buf[..w.n], budget)?
            else {
                // Gone, or its pid names a stranger: not a member.
                buf.copy_within(next + 1..w.n, next);
                w.n -= 1;
                continue;
            };
            if !w.truncated {
                let before = w.n;
                let files = slot
                    .and_then(|i| self.members[i].as_ref())
                    .map(|m| &m.files);
                let by_path = children(pid, threads, files.map(|f| &f.children), &mut |c| {
                    push_child(buf, &mut w, root, c)
                })?;
                let gone = by_path && files.is_some_and(|f| !f.threads().is_ok_and(|t| t > 0));
                if gone {
                    // Its listing by path may be another process's.
                    w.n = before;
                    w.truncated = false;
                    if let Some(i) = slot {
                        self.drop_member(i, budget);
                    }
                    buf.copy_within(next + 1..w.n, next);
                    w.n -= 1;
                    continue;
                }
            }
            w.rss_pages = w.rss_pages.saturating_add(rss_pages);
            next += 1;
        }
        for i in 0..MEMBERS_KEPT {
            if matches!(&self.members[i], Some(m) if !m.seen) {
                self.drop_member(i, budget);
            }
        }
        Ok(w)
    }

    /// Member `pid` of the tree of `root` (`found` are the members found so far): its tasks,
    /// its resident pages, and its slot if its files are kept; `None` if it is gone or not a
    /// descendant.
    #[allow(clippy::type_complexity)]
    fn member(
        &mut self,
        pid: Pid,
        root: Pid,
        found: &[Pid],
        budget: &mut Budget,
    ) -> Result<Option<(u64, u64, Option<usize>)>, Error> {
        if let Some(i) = self.find(pid) {
            if let Some(m) = &mut self.members[i] {
                match m.files.rss_pages() {
                    Ok(pages) => {
                        let threads = m.files.threads()?;
                        m.seen = true;
                        return Ok(Some((threads, pages, Some(i))));
                    }
                    // The process first seen there is gone: the pid may name another now.
                    Err(e) if e.is_gone() => self.drop_member(i, budget),
                    Err(e) => return Err(e),
                }
            }
        }
        let free = self.members.iter().position(Option::is_none);
        let (stat, files) = match open_files(pid, true, free.is_some(), budget) {
            Ok(read) => read,
            Err(e) if e.is_gone() => return Ok(None),
            Err(e) => return Err(e),
        };
        if stat.ppid != root && !found.contains(&stat.ppid) {
            // Freed and handed to a stranger since its parent listed it.
            if let Some(files) = files {
                files.release(budget);
            }
            return Ok(None);
        }
        let read = (stat.num_threads, stat.rss_pages);
        let (Some(i), Some(files)) = (free, files) else {
            return Ok(Some((read.0, read.1, None)));
        };
        self.members[i] = Some(Member {
            pid,
            files,
            seen: true,
        });
        Ok(Some((read.0, read.1, Some(i))))
    }
}

/// Adds a child to the walk (the root, if listed under a member, is not its own descendant);
/// a full buffer marks the walk truncated and takes no more.
fn push_child(buf: &mut [Pid], w: &mut Walk, root: Pid, c: Pid) -> Result<(), Error> {
    if c == root || w.truncated {
        return Ok(());
    }
    if push_unique(buf, &mut w.n, c).is_err() {
        w.truncated = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_files_read_again_and_as_gone_once_their_process_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        let mut budget = Budget { used: 0, max: 3 };
        let (stat, files) = open_files(pid, true, true, &mut budget).unwrap();
        let files = files.unwrap();
        assert_eq!((stat.pid, budget.used), (pid, files.count()));
        assert_eq!(files.threads().unwrap(), 1);
        assert!(files.rss_pages().unwrap() > 0);
        // No room left: read, not kept.
        assert!(open_files(pid, true, true, &mut budget)
            .unwrap()
            .1
            .is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: its pid is free (and may name another process soon), its files say gone.
        assert!(files.rss_pages().unwrap_err().is_gone());
        assert_eq!(files.threads().unwrap(), 0);
        let mut none = true;
        pread_children(&files.children, &mut |_| {
            none = false;
            Ok(())
        })
        .unwrap();
        assert!(none, "a gone thread has no children");
        files.release(&mut budget);
        assert_eq!(budget.used, 0);
    }

    #[test]
    fn a_pid_whose_parent_is_not_in_the_tree_is_not_a_member() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        let mut kept = Kept::EMPTY;
        let mut budget = Budget { used: 0, max: 64 };
        // Listed under a tree whose root is another process: refused, nothing kept.
        let stranger = kept.member(pid, pid + 1, &[pid + 2], &mut budget);
        assert_eq!(stranger.unwrap(), None);
        assert_eq!(budget.used, 0);
        // Under its real parent: a member, kept.
        let me = std::process::id() as Pid;
        let member = kept.member(pid, me, &[], &mut budget).unwrap();
        assert!(matches!(member, Some((1, _, Some(_)))), "{member:?}");
        assert_eq!(budget.used, kept.files());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!kept.still_there(pid));
        kept.release(&mut budget);
        assert_eq!(budget.used, 0);
    }
}
