//! How a real hog starts, refuses bad setups, stops by itself, survives or dies to signals,
//! and how its forker children live and die with its process group.

mod common;

use common::WaitStatus;
use common::{
    children_of, fd_target, fd_targets, is_gone, path_in_tmp, spawn, spawn_unpublished, stat,
    vm_rss, wait_until, MIB,
};
use rustix::process::Signal;

/// A hog that holds a little and then waits for a long time: only a signal or its lifetime
/// ends it.
const LINGERING: [&str; 8] = [
    "--chunk",
    "64KiB",
    "--max",
    "128KiB",
    "--interval-ms",
    "1",
    "--linger-ms",
    "15000",
];

fn lingering<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = LINGERING.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn forker_children_hold_memory_in_the_hogs_group_and_die_with_the_group() {
    let (mut hog, mut frames) = spawn(
        "forker",
        &lingering(&[
            "--mode",
            "forker",
            "--children",
            "3",
            "--child-bytes",
            "1MiB",
        ]),
    );
    let _ = frames.next();
    hog.wait_log("children spawned n=3 bytes_each=1048576 ");
    hog.wait_log_n("child of=", 3);
    let pid = hog.pid().as_raw_pid();
    let hog_stat = stat(pid).unwrap();
    assert_eq!(hog_stat.pgrp, pid, "the hog leads its own group");

    let children = children_of(pid);
    assert_eq!(children.len(), 3, "{}", hog.stderr());
    let memstat_socket = fd_target(pid, hog.memstat_fd().unwrap()).unwrap();
    assert!(memstat_socket.starts_with("socket:["), "{memstat_socket}");
    let mut identities = Vec::new();
    for &child in &children {
        let child_stat = stat(child).unwrap();
        assert_eq!(
            child_stat.pgrp, hog_stat.pgrp,
            "child {child} in the hog's group"
        );
        assert!(
            vm_rss(child).unwrap() >= MIB,
            "child {child} holds its bytes"
        );
        assert!(
            !fd_targets(child).contains(&memstat_socket),
            "child {child} must not hold the memstat socket"
        );
        identities.push((child, child_stat.starttime));
    }

    hog.signal_group(Signal::KILL);
    assert_eq!(
        hog.wait_exit(),
        WaitStatus::Signaled(hog.pid(), Signal::KILL, false)
    );
    wait_until("every child is gone", || {
        identities.iter().all(|&(p, start)| is_gone(p, start))
    });
}

#[test]
fn forker_ends_its_children_when_it_exits_by_itself() {
    let mut hog = spawn_unpublished(
        "forker-exit",
        &[
            "--mode",
            "forker",
            "--children",
            "2",
            "--child-bytes",
            "256KiB",
            "--max",
            "0",
            "--no-publish",
            "--linger-ms",
            "1000",
        ],
        &[],
    );
    hog.wait_log_n("child of=", 2);
    let children: Vec<_> = children_of(hog.pid().as_raw_pid())
        .into_iter()
        .filter_map(|p| Some((p, stat(p)?.starttime)))
        .collect();
    assert_eq!(children.len(), 2, "{}", hog.stderr());
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    assert!(log.contains("children ended n=2"), "{log}");
    assert!(log.contains("exit reason=linger"), "{log}");
    // Reaped by the hog before it exited.
    assert!(children.iter().all(|&(p, start)| is_gone(p, start)));
}

#[test]
fn ignoring_hog_survives_sigterm_and_dies_to_sigkill() {
    let (mut hog, mut frames) = spawn("ignore-sigterm", &lingering(&["--ignore-sigterm"]));
    let _ = frames.next();
    hog.signal(Signal::TERM);
    hog.wait_log("SIGTERM received from pid=");
    assert_eq!(hog.try_exit_status(), None, "{}", hog.stderr());
    hog.signal_group(Signal::KILL);
    assert_eq!(
        hog.wait_exit(),
        WaitStatus::Signaled(hog.pid(), Signal::KILL, false)
    );
}

#[test]
fn ordinary_hog_dies_to_sigterm() {
    let (mut hog, mut frames) = spawn("sigterm", &lingering(&[]));
    let _ = frames.next();
    hog.signal(Signal::TERM);
    assert_eq!(
        hog.wait_exit(),
        WaitStatus::Signaled(hog.pid(), Signal::TERM, false)
    );
}

#[test]
fn hog_stops_at_its_lifetime_whatever_it_waits_for() {
    let control = path_in_tmp("lifetime.sock");
    let (mut hog, mut frames) = spawn(
        "lifetime",
        &[
            "--grow-on-inject",
            "--control",
            control.to_str().unwrap(),
            "--linger-ms",
            "60000",
            "--lifetime-ms",
            "300",
        ],
    );
    let _ = frames.next();
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    assert!(log.contains("exit reason=lifetime held=0"), "{log}");
    assert!(!control.exists(), "the control socket is removed at exit");
}

#[test]
fn idle_injection_hog_exits_after_its_linger() {
    let control = path_in_tmp("idle.sock");
    let mut hog = spawn_unpublished(
        "idle",
        &[
            "--grow-on-inject",
            "--control",
            control.to_str().unwrap(),
            "--no-publish",
            "--linger-ms",
            "100",
        ],
        &[],
    );
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    assert!(hog.stderr().contains("exit reason=idle held=0"));
}

#[test]
fn without_a_publisher_it_warns_and_runs() {
    let mut hog = spawn_unpublished("no-publisher", &["--max", "64KiB", "--linger-ms", "0"], &[]);
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    assert!(
        log.contains("warning: neither OOMD_MEMSTAT_FD nor OOMD_MEMSTAT_SOCKET is set"),
        "{log}"
    );
    assert!(log.contains("publisher=none "), "{log}");
}

#[test]
fn required_publisher_missing_is_exit_2() {
    let mut hog = spawn_unpublished("require", &["--require-publisher"], &[]);
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 2));
    let log = hog.stderr();
    assert!(
        log.contains("error: --require-publisher: neither OOMD_MEMSTAT_FD nor"),
        "{log}"
    );
}

#[test]
fn a_bad_memstat_fd_is_exit_2_even_without_require() {
    let mut hog = spawn_unpublished("bad-fd", &[], &[("OOMD_MEMSTAT_FD", "999")]);
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 2));
    let log = hog.stderr();
    assert!(
        log.contains("error: publisher: OOMD_MEMSTAT_FD=999 is not an open fd"),
        "{log}"
    );
}

#[test]
fn bad_arguments_are_exit_2_with_a_clear_message() {
    let cases: [(&[&str], &str); 4] = [
        (&["--max", "1MB"], "unknown suffix \"MB\""),
        (&["--chunk", "lots"], "size \"lots\" is not a number"),
        (&["--mode", "spoof"], "--spoof-as"),
        (
            &["--mode", "flood", "--no-publish"],
            "--no-publish makes --mode flood",
        ),
    ];
    for (i, (args, message)) in cases.into_iter().enumerate() {
        let mut hog = spawn_unpublished(&format!("bad-args-{i}"), args, &[]);
        assert_eq!(
            hog.wait_exit(),
            WaitStatus::Exited(hog.pid(), 2),
            "{args:?}"
        );
        let log = hog.stderr();
        assert!(log.contains(message), "{args:?}: {log}");
    }
}

/// CLOCK_MONOTONIC in nanoseconds, as the hog reads it.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).expect("the monotonic clock is not negative");
    secs * 1_000_000_000 + u64::try_from(t.tv_nsec).expect("nanoseconds are not negative")
}

/// The `key=<u64>` field of a log line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

#[test]
fn mark_bytes_logs_one_crossing_at_the_byte_with_a_monotonic_time_between_start_and_exit() {
    let before = monotonic_ns();
    let mut hog = spawn_unpublished(
        "mark",
        &[
            "--chunk",
            "64KiB",
            "--max",
            "1MiB",
            "--interval-ms",
            "1",
            "--linger-ms",
            "0",
            "--mark-bytes",
            "300000",
        ],
        &[],
    );
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let after = monotonic_ns();
    let log = hog.stderr();
    let crossed: Vec<&str> = log.lines().filter(|l| l.contains(" crossed ")).collect();
    assert_eq!(crossed.len(), 1, "exactly one crossing:\n{log}");
    let line = crossed[0];
    // 300000 bytes is 4 chunks of 65536 and 37856 bytes into the fifth: marked there.
    assert_eq!(field(line, "mark"), 300_000);
    assert_eq!(field(line, "held"), 300_000);
    assert_eq!(field(line, "charge"), 300_000, "no base: the arena's bytes");
    let at = field(line, "at_ns");
    assert!(before < at && at < after, "{before} < {at} < {after}");
    assert!(field(line, "grow_ns") <= after - before);
    // Between the fourth chunk's line and the fifth's.
    let chunk4 = log.find("held=262144 ").unwrap();
    let chunk5 = log.find("held=327680 ").unwrap();
    let mark = log.find(line).unwrap();
    assert!(chunk4 < mark && mark < chunk5, "{log}");
}

#[test]
fn mark_base_adds_what_the_file_says_and_a_missing_file_is_an_error() {
    let base = path_in_tmp("mark-base");
    std::fs::write(&base, "131072\n").unwrap();
    let base_arg = base.to_str().unwrap();
    let mut hog = spawn_unpublished(
        "mark-base",
        &[
            "--chunk",
            "64KiB",
            "--max",
            "512KiB",
            "--interval-ms",
            "1",
            "--linger-ms",
            "0",
            "--mark-bytes",
            "160KiB",
            "--mark-base",
            base_arg,
        ],
        &[],
    );
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 0));
    let log = hog.stderr();
    let line = log.lines().find(|l| l.contains(" crossed ")).unwrap();
    // The file says 128 KiB before the first chunk, so the charge reaches 160 KiB 32 KiB
    // into it (the file is read once per chunk, and the mark fires once).
    assert_eq!(field(line, "held"), 32 * 1024, "{log}");
    assert_eq!(field(line, "charge"), 160 * 1024, "{log}");
    assert_eq!(log.matches(" crossed ").count(), 1, "{log}");

    let missing = path_in_tmp("no-such-base");
    let mut hog = spawn_unpublished(
        "mark-missing",
        &[
            "--mark-bytes",
            "1MiB",
            "--mark-base",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(hog.wait_exit(), WaitStatus::Exited(hog.pid(), 2));
    assert!(
        hog.stderr().contains("error: --mark-base "),
        "{}",
        hog.stderr()
    );
}
