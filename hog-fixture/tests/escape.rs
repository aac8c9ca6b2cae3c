//! Forker children that escape the hog's process group and session: they really are
//! elsewhere, hold their bytes, publish nothing, outlive the hog's group being killed, and
//! still end by themselves.
//!
//! This test process makes itself a child subreaper, so the children the hog orphans come to
//! it; it ends and reaps only processes whose parent it is (an unreaped child's pid cannot
//! have been reused).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{
    fd_target, fd_targets, is_gone, spawn, stat, vm_rss, wait_until, WaitStatus, DEADLINE, MIB,
};
use rustix::process::{kill_process, waitpid, Pid, Signal, WaitOptions};

fn become_subreaper() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
}

/// `pid`, a child's (never 0).
fn pid(pid: i32) -> Pid {
    Pid::from_raw(pid).expect("a child's pid is not 0")
}

fn me() -> i32 {
    std::process::id() as i32
}

/// A forker whose `n` children hold 1 MiB each and escape as `how`; lingers 15 s.
fn forker(name: &str, how: &str, n: &str, extra: &[&str]) -> (common::Hog, common::Frames) {
    let mut args = vec![
        "--mode",
        "forker",
        "--children",
        n,
        "--child-escape",
        how,
        "--child-bytes",
        "1MiB",
        "--chunk",
        "64KiB",
        "--max",
        "128KiB",
        "--interval-ms",
        "1",
        "--linger-ms",
        "15000",
    ];
    args.extend_from_slice(extra);
    spawn(name, &args)
}

/// The pids of the hog's `children spawned … pids=a,b …` line.
fn logged_pids(hog: &common::Hog) -> Vec<i32> {
    let log = hog.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("children spawned"))
        .unwrap_or_else(|| panic!("no children line:\n{log}"));
    let pids = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pids="))
        .unwrap();
    pids.split(',').map(|p| p.parse().unwrap()).collect()
}

/// Kills and reaps `pid` if it is this process's child (adopted).
fn end_adopted(pid: i32) {
    if stat(pid).is_some_and(|s| s.ppid == me()) {
        let _ = kill_process(self::pid(pid), Signal::KILL);
        let _ = waitpid(Some(self::pid(pid)), WaitOptions::empty());
    }
}

#[test]
fn setsid_children_lead_sessions_of_their_own_and_outlive_the_hogs_group() {
    become_subreaper();
    let (mut hog, mut frames) = forker("escape-setsid", "setsid", "2", &[]);
    let _ = frames.next();
    hog.wait_log("children spawned n=2 bytes_each=1048576 ");
    hog.wait_log_n(" escape=setsid sid=", 2);
    let pid = hog.pid().as_raw_pid();
    let hog_stat = stat(pid).unwrap();
    let children = logged_pids(&hog);
    assert_eq!(children.len(), 2);
    let memstat_socket = fd_target(pid, hog.memstat_fd().unwrap()).unwrap();
    let mut identities = Vec::new();
    for &child in &children {
        let s = stat(child).unwrap();
        assert_eq!(s.ppid, pid, "{child} is the hog's child");
        assert_eq!(
            (s.session, s.pgrp),
            (child, child),
            "{child} leads its own session"
        );
        assert_ne!(
            s.session, hog_stat.session,
            "{child} left the hog's session"
        );
        assert_ne!(s.pgrp, hog_stat.pgrp, "{child} left the hog's group");
        assert!(vm_rss(child).unwrap() >= MIB, "{child} holds its bytes");
        assert!(!fd_targets(child).contains(&memstat_socket));
        identities.push((child, s.starttime));
    }

    hog.signal_group(Signal::KILL);
    assert_eq!(
        hog.wait_exit(),
        WaitStatus::Signaled(hog.pid(), Signal::KILL, false)
    );
    // The group is gone, the escaped children are not: orphaned, adopted by this process.
    wait_until("the children are adopted", || {
        children
            .iter()
            .all(|&c| stat(c).is_some_and(|s| s.ppid == me()))
    });
    assert!(identities.iter().all(|&(p, start)| !is_gone(p, start)));
    children.iter().copied().for_each(end_adopted);
}

#[test]
fn double_forked_holders_are_orphans_outside_the_hogs_group_and_session() {
    become_subreaper();
    let (mut hog, mut frames) = forker("escape-double", "double-fork", "2", &[]);
    let _ = frames.next();
    hog.wait_log("children spawned n=2 bytes_each=1048576 ");
    hog.wait_log_n(" escape=none sid=", 2);
    let pid = hog.pid().as_raw_pid();
    let hog_stat = stat(pid).unwrap();
    let holders = logged_pids(&hog);
    assert_eq!(holders.len(), 2);
    // Their middle processes exited (and were reaped by the hog): the holders are orphans.
    assert_eq!(common::children_of(pid), Vec::<i32>::new());
    for &holder in &holders {
        let s = stat(holder).unwrap();
        assert_eq!(
            s.ppid,
            me(),
            "{holder} was adopted by the nearest subreaper"
        );
        assert_ne!(
            s.session, hog_stat.session,
            "{holder} left the hog's session"
        );
        assert_ne!(s.pgrp, hog_stat.pgrp, "{holder} left the hog's group");
        assert_ne!(
            s.session, holder,
            "{holder} is in its middle's session, not a leader"
        );
        assert!(vm_rss(holder).unwrap() >= MIB, "{holder} holds its bytes");
    }
    hog.signal_group(Signal::KILL);
    let _ = hog.wait_exit();
    for &holder in &holders {
        assert!(stat(holder).is_some_and(|s| !s.has_exited()));
        end_adopted(holder);
    }
}

#[test]
fn escaped_children_end_by_themselves_after_their_lifetime() {
    become_subreaper();
    let (mut hog, mut frames) = forker(
        "escape-lifetime",
        "double-fork",
        "1",
        &["--lifetime-ms", "1500"],
    );
    let _ = frames.next();
    hog.wait_log(" escape=none sid=");
    let [holder] = logged_pids(&hog)[..] else {
        panic!("one holder: {}", hog.stderr())
    };
    // The hog is killed; nothing kills the holder: its lifetime ends it, exit 0.
    hog.signal_group(Signal::KILL);
    let _ = hog.wait_exit();
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some((reported, status)) = waitpid(Some(pid(holder)), WaitOptions::NOHANG).unwrap() {
            break WaitStatus::of_waitpid(reported, status);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the holder outlived its lifetime"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status, WaitStatus::Exited(pid(holder), 0));
    assert!(hog.stderr().contains("child exit reason=lifetime"));
}
