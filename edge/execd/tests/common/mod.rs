//! Test fixtures: execd running in-process on a thread, a control client, and the test playing
//! the oomd service on a ready authority channel.
//!
//! Every process a test starts ends within a bounded time whatever happens: services sleep at
//! most 30 s, and dropping a [`Harness`] (also on a failed assertion) stops execd's loop, whose
//! own drop kills every service it spawned and waits for them. Nothing signals anything else.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use execd::{Execd, Log, LogLines, Manifest, Options};
use oomd_proto::{ExecdReply, ExecdRequest, FromAuthority, Receiver, ToAuthority, MAX_FDS};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use serde::de::DeserializeOwned;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The longest execd runs in a test, whatever the test does.
const EXECD_LIFETIME: Duration = Duration::from_secs(60);

/// execd on a thread, with a control socket in a temporary directory.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// The test's end of the authority channel, when it plays the oomd service.
    pub oomd: Option<OwnedFd>,
    pub log: LogLines,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    /// execd with `manifest`, booted; the test is the oomd service if `as_oomd`.
    pub fn start(manifest: &str, as_oomd: bool) -> Self {
        let manifest = Manifest::parse(manifest).expect("test manifest");
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("execd.sock");
        let (log, lines) = Log::memory();
        let mut options = Options::new();
        options.socket = Some(socket.clone());
        options.log = log;
        let mut oomd = None;
        if as_oomd {
            let (execd_end, oomd_end) = oomd_proto::seqpacket_pair().unwrap();
            options.authority = Some(execd_end);
            oomd = Some(oomd_end);
        }
        let mut execd = Execd::new(manifest, options).expect("execd setup");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            execd.boot();
            let deadline = Instant::now() + EXECD_LIFETIME;
            let _ =
                execd.run_until(|_| stopped.load(Ordering::Relaxed) || Instant::now() > deadline);
            drop(execd); // kills and reaps what still runs
        });
        Harness {
            dir,
            socket,
            oomd,
            log: lines,
            stop,
            thread: Some(thread),
        }
    }

    /// A new control connection.
    pub fn client(&self) -> OwnedFd {
        oomd_proto::connect(&self.socket).expect("connect to execd")
    }

    /// Sends a request on the authority channel, as the oomd service does.
    pub fn send_to_execd(&self, msg: &ToAuthority) {
        send(self.oomd.as_ref().expect("authority channel"), msg);
    }

    /// The next message on the authority channel.
    pub fn recv_from_execd(&self) -> (FromAuthority, [Option<OwnedFd>; MAX_FDS]) {
        recv(self.oomd.as_ref().expect("authority channel"), PATIENCE)
            .expect("a message from execd in time")
    }

    /// Messages on the authority channel until `want` matches one (which is returned).
    pub fn recv_from_execd_until(
        &self,
        mut want: impl FnMut(&FromAuthority) -> bool,
    ) -> (FromAuthority, [Option<OwnedFd>; MAX_FDS]) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = recv(self.oomd.as_ref().expect("authority channel"), left)
                .expect("the expected message from execd in time");
            if want(&got.0) {
                return got;
            }
        }
    }

    /// Stops execd (which kills what it still runs) and waits for its thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends one message.
pub fn send<T: serde::Serialize + oomd_proto::Message>(fd: &OwnedFd, msg: &T) {
    let mut buf = [0u8; oomd_proto::MAX_MESSAGE_LEN];
    let bytes = oomd_proto::encode(msg, &mut buf).unwrap();
    oomd_proto::send(fd.as_fd(), bytes, &[]).unwrap();
}

/// Waits up to `timeout` for one message.
pub fn recv<T: DeserializeOwned + oomd_proto::Message>(
    fd: &OwnedFd,
    timeout: Duration,
) -> Option<(T, [Option<OwnedFd>; MAX_FDS])> {
    if !readable(fd, timeout) {
        return None;
    }
    let mut receiver = Receiver::new();
    let (msg, fds) = receiver.recv_msg::<T>(fd.as_fd()).expect("a message");
    Some((msg, fds))
}

/// Whether `fd` becomes readable within `timeout`.
pub fn readable(fd: &impl AsFd, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

/// Sends a control request and collects replies until `End` (for `List`) or the first one.
pub fn request(client: &OwnedFd, req: &ExecdRequest) -> Vec<ExecdReply> {
    send(client, req);
    let mut replies = Vec::new();
    loop {
        let (reply, _) = recv::<ExecdReply>(client, PATIENCE).expect("a reply in time");
        let done = !matches!(reply, ExecdReply::Service(_));
        replies.push(reply);
        if done {
            return replies;
        }
    }
}

/// The pids whose process group is `pgid` (zombies included), read with the scanner execd
/// itself uses (`proctree`), so that the tests and execd agree on what a member is.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    proctree::scan(|s| {
        if s.pgrp == pgid {
            pids.push(s.pid);
        }
        std::ops::ControlFlow::Continue(())
    })
    .expect("scan /proc");
    pids
}

/// The process group of `pid`, or `None` if there is no such process.
pub fn pgrp_of(pid: i32) -> Option<i32> {
    proctree::read_stat(pid).ok().map(|s| s.pgrp)
}

/// Whether `pid` is a live (not exited) member of group `pgid`.
pub fn alive_in_group(pid: i32, pgid: i32) -> bool {
    proctree::read_stat(pid).is_ok_and(|s| s.pgrp == pgid && !s.has_exited())
}

/// Waits until group `pgid` has at least `n` live members; returns them.
pub fn wait_for_group(pgid: i32, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let members: Vec<i32> = group_members(pgid)
            .into_iter()
            .filter(|&p| alive_in_group(p, pgid))
            .collect();
        if members.len() >= n {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "group {pgid} has {members:?}, expected {n} members"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The live descendants of `root` (a service's shim), parents before children.
pub fn tree_of(root: i32) -> Vec<i32> {
    // As large as the tree needs: a fork storm can pass any fixed size between two walks.
    let mut buf = vec![0; 256];
    let n = loop {
        match proctree::Tree::new().descendants(root, &mut buf) {
            Ok(n) => break n,
            Err(proctree::Error::Overflow) => buf.resize(buf.len() * 2, 0),
            Err(e) => panic!("the tree under a shim: {e:?}"),
        }
    };
    buf[..n]
        .iter()
        .copied()
        .filter(|&p| proctree::read_stat(p).is_ok_and(|s| !s.has_exited()))
        .collect()
}

/// Waits until `root` has at least `n` live descendants; returns them.
pub fn wait_for_tree(root: i32, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let members = tree_of(root);
        if members.len() >= n {
            return members;
        }
        assert!(
            Instant::now() < deadline,
            "the tree under {root} has {members:?}, expected {n} members"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `done` holds (bounded by [`PATIENCE`]); panics with `what` otherwise.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pidfds on `pids`, opened now: whatever their numbers come to mean later, each names the
/// process it named now.
pub fn pin(pids: &[i32]) -> Vec<(i32, OwnedFd)> {
    pids.iter()
        .map(|&p| {
            let pid = rustix::process::Pid::from_raw(p).expect("a pid");
            let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                .unwrap_or_else(|e| panic!("pidfd of {p}: {e}"));
            (p, fd)
        })
        .collect()
}

/// The pinned processes that are still running (have not exited), checked once, now.
pub fn still_running(pinned: &[(i32, OwnedFd)]) -> Vec<i32> {
    pinned
        .iter()
        .filter(|(_, fd)| !readable(fd, Duration::ZERO))
        .map(|(p, _)| *p)
        .collect()
}

/// Asserts that none of `pids` is still in group `pgid` (a pid may have been reused by a
/// stranger, which then is in another group).
pub fn assert_all_gone(pids: &[i32], pgid: i32) {
    for &pid in pids {
        assert_ne!(
            pgrp_of(pid),
            Some(pgid),
            "pid {pid} of group {pgid} still exists"
        );
    }
}
