//! Spawning hogs the tests own, reading their frames, and looking at them through /proc.
//!
//! Every hog is spawned in a process group of its own (`process_group(0)`), never the test's,
//! and every hog gets a short `--lifetime-ms`, so it ends by itself even if a test dies
//! without cleaning up. [`Hog`] kills its group on drop. The leader is never reaped before
//! that (exits are observed with `waitid(WNOWAIT)`), so its PID, and with it the group id,
//! cannot have been reused by the time the group is signalled.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memstat::{Frame, MAX_FRAME_LEN};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::{fcntl_setfd, Errno, FdFlags};
use rustix::net::{recv, socketpair, AddressFamily, RecvFlags, SocketFlags, SocketType};
use rustix::process::{
    kill_process, kill_process_group, waitid, Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus,
};

pub(crate) const KIB: u64 = 1024;
pub(crate) const MIB: u64 = 1024 * KIB;

/// How long any one wait of a test may take. Generous: the machine has two cores and runs
/// the tests in parallel.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Every hog the tests spawn ends by itself after this (milliseconds), whatever happens,
/// unless the test gives a shorter `--lifetime-ms`.
pub(crate) const LIFETIME_MS: &str = "20000";

/// Allocator bytes a hog holds besides its arena: the parsed arguments and the control
/// socket's path (575 bytes measured at the start, the `initial ... alloc=` log line), plus
/// the chunk list (24 bytes per slot: 384 for the 16 chunks of 1 MiB / 64 KiB). Measured at
/// 959 bytes in all by `honest_hog_*`, which prints it; the bound leaves room for a different
/// std or clap.
pub(crate) const OVERHEAD: u64 = 4 * KIB;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitStatus {
    /// It exited with this code.
    Exited(Pid, i32),
    /// This signal killed it; `true` if it dumped core.
    Signaled(Pid, Signal, bool),
}

impl WaitStatus {
    /// What `waitid(P_PID, pid, WEXITED)` reported for `pid` (the only child it can report
    /// on): an exit or a death by signal, the only states `WEXITED` waits for.
    fn of_waitid(pid: Pid, status: &WaitIdStatus) -> Self {
        if let Some(code) = status.exit_status() {
            return Self::Exited(pid, code);
        }
        let sig = status.terminating_signal().unwrap_or_else(|| {
            panic!("waitid(WEXITED) reported neither exit nor signal: {status:?}")
        });
        let sig = Signal::from_named_raw(sig).unwrap_or_else(|| panic!("unnamed signal {sig}"));
        Self::Signaled(pid, sig, status.dumped())
    }

    /// What `waitpid` reported for `pid`, which it names.
    pub(crate) fn of_waitpid(pid: Pid, status: rustix::process::WaitStatus) -> Self {
        if let Some(code) = status.exit_status() {
            return Self::Exited(pid, code);
        }
        let sig = status
            .terminating_signal()
            .unwrap_or_else(|| panic!("waitpid reported neither exit nor signal: {status:?}"));
        let sig = Signal::from_named_raw(sig).unwrap_or_else(|| panic!("unnamed signal {sig}"));
        // WCOREDUMP: bit 7 of the raw status.
        Self::Signaled(pid, sig, status.as_raw() & 0x80 != 0)
    }
}

/// Held while a non-close-on-exec fd exists in this process, so that no hog spawned by a
/// concurrent test inherits another test's memstat socket.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// A hog this test spawned, in its own process group. Dropping it kills the group.
pub(crate) struct Hog {
    child: Child,
    pid: Pid,
    stderr_path: PathBuf,
    /// The fd number the hog's publisher was given, if any.
    memstat_fd: Option<RawFd>,
    exited: Option<WaitStatus>,
}

/// The test's end of a hog's memstat socket.
pub(crate) struct Frames {
    fd: OwnedFd,
}

pub(crate) fn path_in_tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.{}", std::process::id()))
}

/// Spawns a hog with a memstat socket (`OOMD_MEMSTAT_FD`) and returns the reading end.
pub(crate) fn spawn(name: &str, args: &[&str]) -> (Hog, Frames) {
    let (hog, frames) = spawn_with(name, args, true, &[]);
    (hog, frames.expect("a publishing hog has frames"))
}

/// Spawns a hog without any memstat variable, plus `env`.
pub(crate) fn spawn_unpublished(name: &str, args: &[&str], env: &[(&str, &str)]) -> Hog {
    spawn_with(name, args, false, env).0
}

fn spawn_with(
    name: &str,
    args: &[&str],
    publish: bool,
    env: &[(&str, &str)],
) -> (Hog, Option<Frames>) {
    let stderr_path = path_in_tmp(&format!("{name}.stderr"));
    let stderr = File::create(&stderr_path).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_hog-fixture"));
    command.args(args);
    if !args.contains(&"--lifetime-ms") {
        command.args(["--lifetime-ms", LIFETIME_MS]);
    }
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .env_remove(memstat::ENV_FD)
        .env_remove(memstat::ENV_SOCKET)
        .envs(env.iter().copied());

    let _lock = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut frames = None;
    let mut memstat_fd = None;
    let mut theirs = None;
    if publish {
        let (ours, child_end) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::empty(),
            None,
        )
        .unwrap();
        fcntl_setfd(&ours, FdFlags::CLOEXEC).unwrap();
        // The child end stays inheritable: the hog finds it under the same number.
        command.env(memstat::ENV_FD, child_end.as_raw_fd().to_string());
        memstat_fd = Some(child_end.as_raw_fd());
        frames = Some(Frames { fd: ours });
        theirs = Some(child_end);
    }
    let child = command.spawn().unwrap();
    // Ours no longer: only the hog holds the child end, so its exit is our EOF.
    drop(theirs);
    drop(_lock);

    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).expect("a child's pid is not 0");
    let hog = Hog {
        child,
        pid,
        stderr_path,
        memstat_fd,
        exited: None,
    };
    (hog, frames)
}

impl Hog {
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    pub(crate) fn memstat_fd(&self) -> Option<RawFd> {
        self.memstat_fd
    }

    /// Everything the hog (and its children) wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle` at least `times` times; panics with the log at
    /// the deadline.
    pub(crate) fn wait_log_n(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let log = self.stderr();
            if log.matches(needle).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} x{times} never logged:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn wait_log(&self, needle: &str) {
        self.wait_log_n(needle, 1);
    }

    /// Looks (without reaping) whether the hog has exited.
    pub(crate) fn try_exit_status(&mut self) -> Option<WaitStatus> {
        if self.exited.is_none() {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            if let Some(status) = waitid(WaitId::Pid(self.pid), options).unwrap() {
                self.exited = Some(WaitStatus::of_waitid(self.pid, &status));
            }
        }
        self.exited
    }

    /// Waits (bounded) for the hog to exit and returns how; panics with the log at the
    /// deadline. The hog stays unreaped until drop.
    pub(crate) fn wait_exit(&mut self) -> WaitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.try_exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hog did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` to the hog alone.
    pub(crate) fn signal(&self, signal: Signal) {
        kill_process(self.pid, signal).unwrap();
    }

    /// Sends `signal` to the hog's process group (its own: spawned with `process_group(0)`).
    pub(crate) fn signal_group(&self, signal: Signal) {
        kill_process_group(self.pid, signal).unwrap();
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        // The leader is not reaped yet, so the group id is still this hog's.
        let _ = kill_process_group(self.pid, Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Frames {
    /// The next frame, or `None` at EOF (the hog and everything holding its end exited) or
    /// at `deadline`.
    pub(crate) fn next_before(&mut self, deadline: Instant) -> Option<Frame> {
        self.next_message_before(deadline)
            .map(|m| Frame::decode(&m).expect("a valid frame"))
    }

    /// The next message of any kind (a frame, a reclaim acknowledgement), as its bytes, or
    /// `None` at EOF or at `deadline`.
    pub(crate) fn next_message_before(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_FRAME_LEN + 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let timeout = Timespec {
                tv_sec: i64::from(ms / 1000),
                tv_nsec: i64::from(ms % 1000) * 1_000_000,
            };
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => panic!("poll: {e}"),
            }
            match recv(&self.fd, &mut buf, RecvFlags::DONTWAIT) {
                Ok((0, _)) => return None,
                Ok((n, _)) => return Some(buf[..n].to_vec()),
                Err(Errno::AGAIN | Errno::INTR) => continue,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    /// Sends one message to the hog (a reclaim request, as oomd would).
    pub(crate) fn send(&self, message: &[u8]) {
        let sent = rustix::net::send(&self.fd, message, rustix::net::SendFlags::DONTWAIT)
            .expect("the hog's socket takes it");
        assert_eq!(sent, message.len());
    }

    /// The next frame; panics if none comes before the deadline.
    pub(crate) fn next(&mut self) -> Frame {
        self.next_before(Instant::now() + DEADLINE)
            .expect("a frame before the deadline")
    }

    /// Frames until one satisfies `done` (included); panics if none does before the deadline.
    pub(crate) fn until(&mut self, mut done: impl FnMut(&Frame) -> bool) -> Vec<Frame> {
        let deadline = Instant::now() + DEADLINE;
        let mut frames = Vec::new();
        loop {
            let frame = self
                .next_before(deadline)
                .unwrap_or_else(|| panic!("EOF or deadline after {frames:?}"));
            frames.push(frame);
            if done(&frame) {
                return frames;
            }
        }
    }

    /// Every frame until EOF; panics if EOF does not come before the deadline.
    pub(crate) fn all(&mut self) -> Vec<Frame> {
        let deadline = Instant::now() + DEADLINE;
        let mut frames = Vec::new();
        while let Some(frame) = self.next_before(deadline) {
            frames.push(frame);
        }
        assert!(Instant::now() < deadline, "no EOF before the deadline");
        frames
    }
}

/// What `/proc/<pid>/stat` says, read by the edge's own scanner (`proctree`), so that the
/// tests and the code under test agree on what a live process is.
pub(crate) use proctree::Stat;

pub(crate) fn stat(pid: i32) -> Option<Stat> {
    proctree::read_stat(pid).ok()
}

/// The resident size of `pid`, in bytes.
pub(crate) fn vm_rss(pid: i32) -> Option<u64> {
    proctree::mem::rss(pid).ok()
}

/// The live processes whose parent is `pid`.
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let mut children = Vec::new();
    proctree::scan(|s| {
        if s.ppid == pid && !s.has_exited() {
            children.push(s.pid);
        }
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan /proc");
    children.sort_unstable();
    children
}

/// Whether the process identified by `pid` and its `starttime` is gone: no such pid, a
/// zombie nobody reaped yet, or a different process that reused the pid.
pub(crate) fn is_gone(pid: i32, starttime: u64) -> bool {
    stat(pid).is_none_or(|s| s.has_exited() || s.starttime != starttime)
}

/// What `/proc/<pid>/fd/<fd>` points at (`socket:[1234]`, …).
pub(crate) fn fd_target(pid: i32, fd: RawFd) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Everything `pid`'s fds point at.
pub(crate) fn fd_targets(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until `done` holds; panics with `what` at the deadline.
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
