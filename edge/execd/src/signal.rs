//! Sending signals, only ever to what execd spawned and still pins.
//!
//! Always through a pidfd, so free of PID reuse: pids read from a snapshot (a walk of a shim's
//! descendants, `/proc` by process group, `cgroup.procs`) are pinned by a pidfd first and
//! signalled only if they are still members after the pin (a pidfd of a pid that was reused
//! before the pin fails that check; one whose process exits after it gets `ESRCH`). A process
//! group id is only ever tested for emptiness (`kill(-pgid, 0)` sends nothing).

use std::io;
use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

/// `sig` to the process behind `pidfd`; a process that already exited is not an error.
pub(crate) fn pidfd(pidfd: impl AsFd, sig: Signal) -> io::Result<()> {
    match pidfd_send_signal(pidfd, sig) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether process group `pgid` still has a member (zombies included). Only meaningful while
/// the group cannot have been recreated by someone else: see the module docs of `execd`.
pub(crate) fn group_exists(pgid: Pid) -> bool {
    !matches!(
        rustix::process::test_kill_process_group(pgid),
        Err(Errno::SRCH)
    )
}

/// `sig` to each of `pids` that is still a member once pinned by a pidfd.
pub(crate) fn each_verified(
    pids: &[i32],
    mut still_member: impl FnMut(i32) -> bool,
    sig: Signal,
) -> io::Result<()> {
    let mut result = Ok(());
    let mut pinned = Vec::with_capacity(pids.len());
    for &raw in pids {
        let Some(pid) = Pid::from_raw(raw) else {
            continue;
        };
        match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => pinned.push((raw, fd)),
            Err(Errno::SRCH) => {}
            Err(e) => result = Err(e.into()),
        }
    }
    for (raw, fd) in pinned {
        if still_member(raw) {
            if let Err(e) = pidfd(&fd, sig) {
                result = Err(e);
            }
        }
    }
    result
}
