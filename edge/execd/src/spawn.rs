//! Starting one service: its own process group, its inherited channels, its cgroup, its user,
//! and in process-group mode its subreaper shim (`shim.rs`).
//!
//! Everything that can allocate or fail in an interesting way (paths, the `cgroup.procs`
//! descriptor, the socket pairs, the environment) is prepared before the fork. Between fork
//! and exec the child only makes raw system calls ([`child_setup`]).
//!
//! In process-group mode the process execd forks becomes the service's shim: it leads the
//! process group, forks the service from inside std's `pre_exec` (so std's environment, path
//! search and exec-error reporting serve the service unchanged: the shim closes its copy of
//! std's exec-error pipe, so `spawn` returns once the service has exec'd, or fails with the
//! service's exec error after the shim has reaped it), and never execs itself. The service
//! stays in the shim's process group and drops its privileges; the shim keeps execd's.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use rustix::io::FdFlags;
use rustix::process::{pidfd_open, Pid, PidfdFlags, WaitOptions};

use crate::manifest::ServiceSpec;

/// What the child inherits besides stdout and stderr.
#[derive(Debug, Default)]
pub(crate) struct Inherit<'a> {
    /// The service's end of its memstat channel, exported as `OOMD_MEMSTAT_FD`.
    pub(crate) memstat: Option<BorrowedFd<'a>>,
    /// The watchdog's end of the authority channel, exported as `OOMD_AUTHORITY_FD`.
    pub(crate) authority: Option<BorrowedFd<'a>>,
    /// An open `cgroup.procs` of the service's cgroup, which the child joins before exec.
    pub(crate) cgroup_procs: Option<BorrowedFd<'a>>,
}

/// The root of a started service: its shim (process-group mode) or its main process (cgroup
/// mode), execd's child.
#[derive(Debug)]
pub(crate) struct Child {
    /// Its pid, which is also the service's process group id.
    pub(crate) pid: Pid,
    /// Its pidfd, held until it is reaped.
    pub(crate) pidfd: OwnedFd,
}

/// Starts `spec` in a process group of its own, under a subreaper shim when `shim` (process
/// group mode; never in cgroup mode, where the cgroup holds the service).
pub(crate) fn spawn(spec: &ServiceSpec, inherit: &Inherit<'_>, shim: bool) -> io::Result<Child> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .env_remove(memstat::ENV_FD)
        .env_remove(oomd_proto::ENV_AUTHORITY_FD);
    for (key, value) in &spec.env {
        cmd.env(key, value);
    }
    if let Some(fd) = inherit.memstat {
        cmd.env(memstat::ENV_FD, fd.as_raw_fd().to_string());
    }
    if let Some(fd) = inherit.authority {
        cmd.env(oomd_proto::ENV_AUTHORITY_FD, fd.as_raw_fd().to_string());
    }
    let setup = ChildSetup {
        cgroup_procs: inherit.cgroup_procs.map(|fd| fd.as_raw_fd()),
        keep: [
            inherit.memstat.map(|fd| fd.as_raw_fd()),
            inherit.authority.map(|fd| fd.as_raw_fd()),
        ],
        uid: spec.uid,
        gid: spec.gid,
        shim,
    };
    install(&mut cmd, setup);
    let child = cmd.spawn()?;
    let pid = Pid::from_child(&child);
    // Nothing has reaped this child yet: execd's loop (even with `reap_all`, which waits for
    // any child) runs on this thread, after this function returns. So the pid still names it.
    match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => Ok(Child { pid, pidfd }),
        Err(e) => {
            // Unreaped, so its group id is still ours to signal.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
            Err(e.into())
        }
    }
}

/// What the child does between fork and exec, as plain numbers (no allocation, no locks).
#[derive(Debug, Clone, Copy)]
struct ChildSetup {
    cgroup_procs: Option<RawFd>,
    keep: [Option<RawFd>; 2],
    uid: Option<u32>,
    gid: Option<u32>,
    /// Fork the service under a shim first (the shim never returns from `child_setup`).
    shim: bool,
}

#[allow(unsafe_code)]
fn install(cmd: &mut Command, setup: ChildSetup) {
    // SAFETY: `child_setup` is async-signal-safe: it only makes raw system calls through
    // rustix's linux_raw backend (no allocation, no locks, no libc state), on descriptors the
    // parent keeps open until `spawn` returns, and the shim's async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || child_setup(setup));
    }
}

/// In the child, after fork: become the shim and fork the service (process-group mode), join
/// the cgroup (cgroup mode, while still privileged), make the channels inheritable, then drop
/// to the service's user.
#[allow(unsafe_code)]
fn child_setup(setup: ChildSetup) -> io::Result<()> {
    if setup.shim {
        // Returns in the service only: the shim reaps, and exits from inside.
        crate::shim::split()?;
    }
    if let Some(raw) = setup.cgroup_procs {
        // SAFETY: open in the parent for the duration of spawn, so open in the child.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        rustix::io::write(fd, b"0")?;
    }
    for raw in setup.keep.into_iter().flatten() {
        // SAFETY: as above.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
    }
    // The child has one thread, so the per-thread calls change the whole process. Groups
    // first: once the uid is dropped, they can no longer be changed.
    if setup.uid.is_some() || setup.gid.is_some() {
        rustix::thread::set_thread_groups(&[])?;
    }
    if let Some(gid) = setup.gid {
        rustix::thread::set_thread_gid(rustix::thread::Gid::from_raw_unchecked(gid))?;
    }
    if let Some(uid) = setup.uid {
        rustix::thread::set_thread_uid(rustix::thread::Uid::from_raw_unchecked(uid))?;
    }
    Ok(())
}
