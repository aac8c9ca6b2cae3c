//! The files of `/proc` a [`Meter`](crate::Meter) keeps open between reads of one tree, and the
//! walk that reads them again.
//!
//! A read of a tree by path opens, reads and closes a file per question (`stat` of the root,
//! the `task` directory and a `children` file per thread of each member, `statm` of each
//! member): about 22 system calls for a root with one child, most of their cost the path
//! lookup in `/proc`. Kept open, each file is read again with one `pread` at offset 0 (`/proc`
//! writes it anew at each read from the start), and two files per process answer everything
//! a tick asks:
//!
//! - `/proc/<pid>/stat` gives the resident pages (field 24, what `statm` gives), the thread
//!   count (field 20) and the state;
//! - `/proc/<pid>/task/<pid>/children`, the main thread's children, is all the children when
//!   the process has one thread and it is not an exited leader (`num_threads == 1`, state not
//!   `Z`): then the only task is the main thread, and the `task` directory is not listed.
//!   A process with more threads is listed by path, as before (every thread's `children`).
//!
//! A thread started between the `stat` read and the `children` read hides the children it
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
//! every read fails with `ESRCH` (and a kept `children` file of a gone thread reads empty),
//! even if the pid has been handed to another process since. So a member read through its
//! kept `stat` is the one that was first seen there; a member whose kept file reads as gone
//! is dropped with its files. A pid met for the first time (from a `children` file read just
//! before) is opened by path, both of its files are opened before its `stat` is read through
//! the kept one (if that read works, the pid still named the process when both were opened),
//! and it counts only if its parent is the root or a member already found: a pid that was
//! freed and handed to a stranger in between has another parent.
//!
//! # Bounds
//!
//! Per tree, the root's files and those of [`MEMBERS_KEPT`] members; across a meter, at most
//! its budget of open files ([`KEPT_FILES`] unless set). A member past either bound is read by
//! path at every read, as without kept files (and with the same window: a pid freed and
//! handed on between its walk and its read may be read as the stranger); so is a member with
//! more than one thread, for its children.

use rustix::fd::OwnedFd;
use rustix::fs::OFlags;

use crate::path::{open_at, Path};
use crate::stat::{stat_at, Stat};
use crate::walk::{children_files, main_thread_children, pread_children, push_unique};
use crate::{Error, Pid};

/// Members of one tree whose files a meter keeps open (the root's come on top): a service is
/// a shim and a handful of processes; the rest of a larger tree is read by path.
pub const MEMBERS_KEPT: usize = 8;

/// Files a meter keeps open at most unless told otherwise ([`Meter::with_kept_files`]): two
/// per process (`stat` and the main thread's `children`), so 64 services of a shim and one
/// process each; well under the usual soft limit of 1024 descriptors, and each costs the
/// kernel a page for its text while open.
///
/// [`Meter::with_kept_files`]: crate::Meter::with_kept_files
pub const KEPT_FILES: usize = 256;

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
        !self.room(2)
    }
}

/// The kept files of one process.
#[derive(Debug)]
struct Files {
    stat: OwnedFd,
    /// The main thread's `children` (none if it could not be opened).
    children: Option<OwnedFd>,
}

impl Files {
    fn count(&self) -> usize {
        1 + usize::from(self.children.is_some())
    }

    fn release(self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(self.count());
    }
}

/// Opens `pid`'s `stat` and, if `keep` and the budget has room for two, its main thread's
/// `children`; reads the `stat` through the open file, after both opens. Returns the files
/// if kept (counted in the budget). A process that is gone is an error ([`Error::is_gone`]).
fn open_files(pid: Pid, keep: bool, budget: &mut Budget) -> Result<(Stat, Option<Files>), Error> {
    let path = Path::proc(pid, "stat").ok_or(Error::Malformed)?;
    let stat = open_at(None, &path, OFlags::empty())?;
    if !keep || !budget.room(2) {
        return Ok((stat_at(&stat)?, None));
    }
    let children =
        main_thread_children(pid).and_then(|path| open_at(None, &path, OFlags::empty()).ok());
    // Read after both opens: if it works, the pid named this process when both were opened
    // (a pid is not handed out again while its process, even a zombie, holds it).
    let read = stat_at(&stat)?;
    let files = Files { stat, children };
    budget.used += files.count();
    Ok((read, Some(files)))
}

/// Calls `f` for each child of `pid`, whose `stat` was just read: through the kept `children`
/// file of its main thread when that thread is its only task, else by path (every thread's
/// `children`, or the main thread's alone if it has one thread). Returns whether the children
/// were read by path.
fn children(
    pid: Pid,
    stat: &Stat,
    kept: Option<&OwnedFd>,
    f: &mut impl FnMut(Pid) -> Result<(), Error>,
) -> Result<bool, Error> {
    let single = stat.num_threads == 1 && !stat.has_exited();
    if single {
        if let Some(fd) = kept {
            pread_children(fd, f)?;
            return Ok(false);
        }
        let path = main_thread_children(pid).ok_or(Error::Malformed)?;
        if let Ok(fd) = open_at(None, &path, OFlags::empty()) {
            crate::walk::read_children(&fd, f)?;
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

    /// The root's `stat` through its kept file: `None` if not kept; gone
    /// ([`Error::is_gone`]) if the process it was opened for is gone, even if `root` now
    /// names another.
    pub(crate) fn root_stat(&self) -> Option<Result<Stat, Error>> {
        self.root.as_ref().map(|files| stat_at(&files.stat))
    }

    /// The root's `stat` read by path, its files kept if `keep` and there is room (they
    /// replace any kept before).
    pub(crate) fn open_root(
        &mut self,
        root: Pid,
        keep: bool,
        budget: &mut Budget,
    ) -> Result<Stat, Error> {
        let (stat, files) = open_files(root, keep, budget)?;
        if let Some(old) = core::mem::replace(&mut self.root, files) {
            old.release(budget);
        }
        Ok(stat)
    }

    /// Whether the member `pid` found by the last walk is still the process it read: false if
    /// its kept `stat` reads as gone; true if not kept (nothing to tell by).
    pub(crate) fn still_there(&self, pid: Pid) -> bool {
        match self.find(pid) {
            Some(i) => self.members[i]
                .as_ref()
                .map_or(true, |m| stat_at(&m.files.stat).is_ok()),
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

    /// Every descendant of `root` (whose `stat` was just read as `root_stat`) into `buf`,
    /// breadth first, and the sum of their resident pages: what [`Tree::descendants`] and a
    /// `statm` per member give, through kept files where it can (module docs). A member gone
    /// before its `stat` is read is not in `buf`. On a full `buf`, the members that fit are
    /// read (`truncated`).
    ///
    /// [`Tree::descendants`]: crate::Tree::descendants
    pub(crate) fn walk(
        &mut self,
        root: Pid,
        root_stat: &Stat,
        buf: &mut [Pid],
        budget: &mut Budget,
    ) -> Result<Walk, Error> {
        for m in self.members.iter_mut().flatten() {
            m.seen = false;
        }
        let mut w = Walk::default();
        let kept = self.root.as_ref().and_then(|f| f.children.as_ref());
        let by_path = children(root, root_stat, kept, &mut |c| {
            push_child(buf, &mut w, root, c)
        })?;
        if by_path {
            // Listed by path: the root must still be the process whose stat was read.
            if let Some(Err(e)) = self.root_stat() {
                return Err(e);
            }
        }
        let mut next = 0;
        while next < w.n {
            let pid = buf[next];
            let Some((stat, slot)) = self.member_stat(pid, root, &buf[..w.n], budget)? else {
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
                let kept = files.and_then(|f| f.children.as_ref());
                let by_path =
                    children(pid, &stat, kept, &mut |c| push_child(buf, &mut w, root, c))?;
                let gone = by_path && files.is_some_and(|f| stat_at(&f.stat).is_err());
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
            w.rss_pages = w.rss_pages.saturating_add(stat.rss_pages);
            next += 1;
        }
        for i in 0..MEMBERS_KEPT {
            if matches!(&self.members[i], Some(m) if !m.seen) {
                self.drop_member(i, budget);
            }
        }
        Ok(w)
    }

    /// The `stat` of member `pid` of the tree of `root` (`found` are the members found so
    /// far), and its slot if its files are kept; `None` if it is gone or not a descendant.
    fn member_stat(
        &mut self,
        pid: Pid,
        root: Pid,
        found: &[Pid],
        budget: &mut Budget,
    ) -> Result<Option<(Stat, Option<usize>)>, Error> {
        if let Some(i) = self.find(pid) {
            if let Some(m) = &mut self.members[i] {
                match stat_at(&m.files.stat) {
                    Ok(stat) => {
                        m.seen = true;
                        return Ok(Some((stat, Some(i))));
                    }
                    // The process first seen there is gone: the pid may name another now.
                    Err(e) if e.is_gone() => self.drop_member(i, budget),
                    Err(e) => return Err(e),
                }
            }
        }
        let free = self.members.iter().position(Option::is_none);
        let (stat, files) = match open_files(pid, free.is_some(), budget) {
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
        let (Some(i), Some(files)) = (free, files) else {
            return Ok(Some((stat, None)));
        };
        self.members[i] = Some(Member {
            pid,
            files,
            seen: true,
        });
        Ok(Some((stat, Some(i))))
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
    fn a_kept_stat_reads_again_and_as_gone_once_its_process_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as Pid;
        let mut budget = Budget { used: 0, max: 2 };
        let (stat, files) = open_files(pid, true, &mut budget).unwrap();
        let files = files.unwrap();
        assert_eq!((stat.pid, budget.used), (pid, files.count()));
        assert_eq!(stat_at(&files.stat).unwrap().starttime, stat.starttime);
        // No room left: read, not kept.
        assert!(open_files(pid, true, &mut budget).unwrap().1.is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: its pid is free (and may name another process soon), its file says gone.
        assert!(stat_at(&files.stat).unwrap_err().is_gone());
        if let Some(fd) = &files.children {
            let mut none = true;
            pread_children(fd, &mut |_| {
                none = false;
                Ok(())
            })
            .unwrap();
            assert!(none, "a gone thread has no children");
        }
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
        let stranger = kept.member_stat(pid, pid + 1, &[pid + 2], &mut budget);
        assert_eq!(stranger.unwrap().map(|(s, _)| s.pid), None);
        assert_eq!(budget.used, 0);
        // Under its real parent: a member, kept.
        let me = std::process::id() as Pid;
        let member = kept.member_stat(pid, me, &[], &mut budget).unwrap();
        assert_eq!(
            member.map(|(s, slot)| (s.pid, slot.is_some())),
            Some((pid, true))
        );
        assert_eq!(budget.used, kept.files());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!kept.still_there(pid));
        kept.release(&mut budget);
        assert_eq!(budget.used, 0);
    }
}
