//! The subreaper shim of a service in process-group mode.
//!
//! # Why
//!
//! Without cgroups, a process group is not a container: a process that calls `setsid()` or
//! `setpgid()` leaves it, and a double fork leaves the orphan to whoever adopts it. execd
//! therefore runs each such service under a shim, a process whose only job is to be the
//! **child subreaper** (`PR_SET_CHILD_SUBREAPER`) of the service: every orphan of the service
//! is reparented to the shim, never to execd or init, so *the descendants of the shim are
//! exactly the processes of the service*, whatever sessions or groups they moved to, and
//! *the shim has exited* means *every process of the service is gone*: it reaps until the
//! kernel says it has no child left (`ECHILD`), and only then exits.
//!
//! # How
//!
//! The shim is the process execd forks (in std's `pre_exec`, see `spawn.rs`): it leads the
//! service's process group, becomes a subreaper, and forks the service, which then does the
//! service's own setup (channels, dropping to the service's uid and gid) and execs it. So:
//!
//! - the shim keeps execd's uid: a service that runs under another uid cannot signal it;
//! - it ignores every signal that can be ignored (`kill 0` from a script in the service's
//!   group does not take it down), except `SIGCHLD` (ignoring it would make the kernel reap
//!   for it and lose the main process's status);
//! - it keeps no descriptor but stdin, stdout and stderr (it closes std's exec-error pipe,
//!   the memstat and authority channel ends, everything it inherited from execd), so no
//!   channel's end-of-file waits for it;
//! - it exits the way the service's main process (its first child) ended: the same exit
//!   code, or the same signal raised again with its default action (no core file), so execd
//!   reports the service's status, not the shim's;
//! - execd never signals it: termination walks the shim's descendants (`tree.rs`).
//!
//! It runs after `fork` in a copy of execd's address space, maybe of a multi-threaded
//! process, so it only makes async-signal-safe calls (`prctl`, `sigprocmask`, `fork`,
//! `close_range`, `sigaction`, `wait4`, `setrlimit`, `kill`, `_exit`) and never allocates,
//! locks, or returns into std.
//!
//! # What it cannot do
//!
//! A service that runs with execd's own uid may still kill its shim (`SIGKILL` cannot be
//! ignored), as it could kill execd. Its processes are then orphans of execd (itself a
//! subreaper on hosts) or init: those still in the service's process group keep the
//! service from being reported gone (execd waits for the group too, see `execd.rs`), those
//! that left the group are out of sight. Run services under their own uid (`uid = ..` in
//! the manifest) for the guarantee to hold against a hostile service.
#![allow(unsafe_code)] // fork, sigaction, close_range and _exit, each with its SAFETY note

use std::io;

// nix (and its libc) for what rustix does not do: the signal mask, fork, dispositions
// (`sigaction`, and re-raising a signal under its default one), `close_range` and `_exit`.
use nix::libc;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{fork, ForkResult};
use rustix::io::Errno;
use rustix::process::{WaitOptions, WaitStatus};

/// The exit code of a shim whose main process was never reaped by it (only possible if
/// something else waited for it: a kernel bug, or a debugger). Not an exit code execd makes
/// up: it is logged as the service's status like any other.
pub(crate) const LOST_STATUS: i32 = 125;

/// In the child execd forked for a service: become the service's shim and fork the service.
/// Returns in the service's process only (which goes on with its setup and its exec); the
/// shim itself never returns.
pub(crate) fn split() -> io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    // Nothing may reach the shim before it ignores what it can: block everything across the
    // fork. The service restores its mask (std emptied it before calling us).
    let mut before = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut before),
    )?;
    // SAFETY: this process has one thread (it is the child of execd's fork), so it is in a
    // consistent state for another fork; after it, both sides only make async-signal-safe
    // calls (the service until its exec, the shim until its `_exit`).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None)?;
            Ok(())
        }
        Ok(ForkResult::Parent { child }) => reap(child.as_raw()),
        Err(e) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
            Err(e.into())
        }
    }
}

/// The shim's life: reap every child until there is none, then end like `main` did.
fn reap(main: i32) -> ! {
    close_from(3);
    ignore_signals();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let mut status: Option<WaitStatus> = None;
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, st))) if pid.as_raw_nonzero().get() == main => status = Some(st),
            Ok(_) | Err(Errno::INTR) => {}
            // ECHILD: no child is left, live or zombie. (wait4 has no other error for a
            // valid call; any other one ends the loop rather than spin.)
            Err(_) => break,
        }
    }
    mirror(status)
}

/// Exits as `status` says the main process did.
fn mirror(status: Option<WaitStatus>) -> ! {
    if let Some(sig) = status.and_then(|s| s.terminating_signal()) {
        // The same signal, with its default action, and no core file of the shim.
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Core,
            rustix::process::Rlimit {
                current: Some(0),
                maximum: None,
            },
        );
        // SAFETY: plain system calls on this process, with valid arguments.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &action, core::ptr::null_mut());
            libc::kill(libc::getpid(), sig);
        }
        // Still here: a signal whose default action does not terminate (cannot have killed
        // the main process either). Say which, the shell's way.
        exit(128 + sig);
    }
    match status.and_then(|s| s.exit_status()) {
        Some(code) => exit(code),
        None => exit(LOST_STATUS),
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: `_exit` ends the process at once, running nothing of std or libc.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from `first` on: `close_range(2)` (Linux 5.9), else one `close`
/// per possible descriptor up to the soft limit (at most 65536).
fn close_from(first: u32) {
    // SAFETY: close_range only closes descriptors; nothing in the shim uses one after this.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if closed == 0 {
        return;
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(65_536);
    for fd in first..u32::try_from(limit).unwrap_or(65_536) {
        // SAFETY: as above; closing a descriptor that is not open only fails with EBADF
        // (which `close` ignores, as every other error).
        unsafe {
            rustix::io::close(fd as std::os::fd::RawFd);
        }
    }
}

/// Every signal that can be ignored, except `SIGCHLD`. (A fault of the shim's own still
/// kills it: the kernel resets an ignored signal to its default action when it forces a
/// fault's signal on a process.)
fn ignore_signals() {
    // 1 ..= 64: the standard and the real-time signals of Linux. SIGKILL and SIGSTOP, and
    // libc's own reserved real-time signals, refuse the change, which is fine.
    for sig in 1..=64 {
        if sig == libc::SIGCHLD {
            continue;
        }
        // SAFETY: sigaction with a zeroed action and SIG_IGN, on this process only.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(sig, &action, core::ptr::null_mut());
        }
    }
}
