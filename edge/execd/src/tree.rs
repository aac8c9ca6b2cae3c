//! The processes of a service in process-group mode: the descendants of its shim, each pinned
//! by a pidfd and verified after the pin, and how they are ended.
//!
//! # Which pids are members
//!
//! A walk of `/proc` ([`proctree::Tree::descendants`]) is only a list of numbers read at
//! different moments. A number becomes a member only after:
//!
//! 1. a pidfd is opened on it (from then on, whatever the number comes to mean, the pidfd
//!    names one process, and signals go through the pidfd);
//! 2. its parent is read from `/proc` *after* the pin, and is the shim or a member pinned
//!    before it;
//! 3. the process and that parent are both still alive *after* that read (their pidfds do
//!    not poll readable), so the numbers read named the pinned processes when they were read.
//!
//! The shim is execd's unreaped child, so its pid cannot have been reused. By induction every
//! member is a descendant of the shim: a pid reused by a stranger between the walk and the
//! pin fails step 2, one reused after the pin is not the pinned process.
//!
//! # How they are ended
//!
//! - **Graceful**: walk until two walks find no one new (at most
//!   [`TREE_ROUNDS`]), then `SIGTERM` every member through its pidfd. Processes started
//!   after that (a shutdown hook) are not signalled: that is what graceful means.
//! - **Forced**: each member is stopped (`SIGSTOP`) as soon as it is pinned, and the walk is
//!   repeated until it finds no one new: a stopped process cannot fork, so the tree stops
//!   growing; then every member gets `SIGKILL`. execd repeats this every
//!   [`DRAIN_INTERVAL`](crate::bounds::DRAIN_INTERVAL) until the shim has exited, so
//!   whatever still appears (a fork that raced the last walk) is killed too.
//!
//! The shim itself is never signalled.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oomd::TerminationMode;
use proctree::{Error, Pid as RawPid, Tree};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags, Signal};

use crate::bounds::{MAX_TREE, TREE_ROUNDS};
use crate::signal;

/// One verified descendant.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) pid: RawPid,
    fd: OwnedFd,
}

/// Whether the process behind `pidfd` is still running (not exited, not a zombie).
pub(crate) fn alive(pidfd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(0))
}

/// The pids below `root`, as one walk reads them (a buffer grown up to [`MAX_TREE`]).
fn walk(tree: &Tree, root: RawPid) -> io::Result<Vec<RawPid>> {
    let mut buf = vec![0; 64];
    loop {
        match tree.descendants(root, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // A full buffer of members is still worth pinning: the next round gets the rest
            // once these are stopped or gone.
            Err(Error::Overflow) if buf.len() >= MAX_TREE => return Ok(buf),
            Err(Error::Overflow) => buf.resize(buf.len() * 2, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Pins every descendant of `root` that is not in `members` yet (or whose member there has
/// exited and whose pid now names another process), after verifying it; returns how many
/// were added. `on_pin` is called on each new member at once (forced termination stops it).
pub(crate) fn pin_new(
    tree: &Tree,
    root: RawPid,
    root_fd: BorrowedFd<'_>,
    members: &mut Vec<Member>,
    mut on_pin: impl FnMut(&Member),
) -> io::Result<usize> {
    let mut added = 0;
    for pid in walk(tree, root)? {
        if let Some(i) = members.iter().position(|m| m.pid == pid) {
            if alive(members[i].fd.as_fd()) {
                continue;
            }
            members.swap_remove(i);
        }
        let Some(number) = Pid::from_raw(pid) else {
            continue;
        };
        let fd = match pidfd_open(number, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::SRCH) => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(stat) = proctree::read_stat(pid) else {
            continue; // gone since the walk
        };
        let parent_alive = if stat.ppid == root {
            alive(root_fd)
        } else {
            members
                .iter()
                .find(|m| m.pid == stat.ppid)
                .is_some_and(|m| alive(m.fd.as_fd()))
        };
        if parent_alive && alive(fd.as_fd()) {
            let member = Member { pid, fd };
            on_pin(&member);
            members.push(member);
            added += 1;
        }
    }
    Ok(added)
}

/// Ends the descendants of `root` (the shim, pinned by `root_fd`, unreaped) as `mode` says;
/// returns how many processes were signalled. See the module docs.
pub(crate) fn terminate(
    tree: &Tree,
    root: RawPid,
    root_fd: BorrowedFd<'_>,
    mode: TerminationMode,
) -> io::Result<usize> {
    let mut members = Vec::new();
    let mut result = Ok(());
    let mut stop = |m: &Member| {
        if let Err(e) = signal::pidfd(&m.fd, Signal::STOP) {
            result = Err(e);
        }
    };
    for _ in 0..TREE_ROUNDS {
        let added = match mode {
            TerminationMode::Graceful => pin_new(tree, root, root_fd, &mut members, |_| {})?,
            TerminationMode::Forced => pin_new(tree, root, root_fd, &mut members, &mut stop)?,
        };
        if added == 0 {
            break;
        }
    }
    let sig = match mode {
        TerminationMode::Graceful => Signal::TERM,
        TerminationMode::Forced => Signal::KILL,
    };
    for m in &members {
        if let Err(e) = signal::pidfd(&m.fd, sig) {
            result = Err(e);
        }
    }
    result.map(|()| members.len())
}

/// Every process whose process group is `pgrp` (zombies included), in `/proc` order. A
/// snapshot: callers that act on a pid must pin it (pidfd) and check again.
pub(crate) fn group_members(pgrp: RawPid) -> io::Result<Vec<RawPid>> {
    let mut pids = Vec::new();
    proctree::scan(|s| {
        if s.pgrp == pgrp {
            pids.push(s.pid);
        }
        core::ops::ControlFlow::Continue(())
    })?;
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_group_contains_us() {
        let me = std::process::id() as RawPid;
        let pgrp = proctree::read_stat(me).unwrap().pgrp;
        assert!(group_members(pgrp).unwrap().contains(&me));
    }

    #[test]
    fn a_process_that_ran_is_not_alive_and_we_are() {
        let me = pidfd_open(rustix::process::getpid(), PidfdFlags::empty()).unwrap();
        assert!(alive(me.as_fd()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = Pid::from_raw(child.id() as i32).unwrap();
        let fd = pidfd_open(pid, PidfdFlags::empty()).unwrap();
        child.wait().unwrap();
        assert!(!alive(fd.as_fd()));
    }
}
