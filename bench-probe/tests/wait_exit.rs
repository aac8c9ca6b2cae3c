//! The stopwatch against a process whose exit time we know.

use std::process::{Command, Stdio};

fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).expect("the monotonic clock is not negative");
    secs * 1_000_000_000 + u64::try_from(t.tv_nsec).expect("nanoseconds are not negative")
}

fn probe(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bench-probe"))
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("bench-probe runs");
    let stdout = String::from_utf8(out.stdout).expect("bench-probe prints text");
    (out.status.code(), stdout)
}

#[test]
fn wait_exit_reports_the_exit_of_a_process_it_did_not_start_after_it_happened() {
    let started = monotonic_ns();
    let mut sleeper = Command::new("sleep").arg("0.3").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let (code, out) = probe(&["wait-exit", &pid, "10000"]);
    let reaped = monotonic_ns();
    sleeper.wait().unwrap();
    assert_eq!(code, Some(0), "{out}");
    let at: u64 = out
        .trim()
        .strip_prefix(&format!("exit pid={pid} at_ns="))
        .unwrap_or_else(|| panic!("{out:?}"))
        .parse()
        .unwrap();
    // Readable once the sleeper exited (0.3 s after its start), before we reaped it.
    assert!(at >= started + 300_000_000, "{at} vs start {started}");
    assert!(at <= reaped, "{at} <= {reaped}");
}

#[test]
fn a_timeout_and_a_missing_process_are_told_apart_from_an_exit() {
    let mut sleeper = Command::new("sleep").arg("5").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let (code, out) = probe(&["wait-exit", &pid, "100"]);
    assert_eq!(
        (code, out.trim()),
        (Some(1), &*format!("timeout pid={pid}"))
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // Reaped: the pid names no process now (pid reuse within this test is not plausible).
    let (code, out) = probe(&["wait-exit", &pid]);
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert_eq!(probe(&["wait-exit", "0"]).0, Some(2));
    assert_eq!(probe(&["frobnicate"]).0, Some(2));
}

/// The voluntary context switches of `pid`: each wake of a process that sleeps is one.
fn voluntary_switches(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .expect("the field")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn tick_floor_wakes_once_a_period_and_refuses_a_period_out_of_range() {
    let mut floor = Command::new(env!("CARGO_BIN_EXE_bench-probe"))
        .args(["tick-floor", "10"])
        .spawn()
        .expect("bench-probe runs");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = voluntary_switches(floor.id());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let woke = voluntary_switches(floor.id()) - before;
    floor.kill().expect("ours to end");
    floor.wait().expect("reaped");
    // 50 periods of 10 ms: a timer that wakes it every period, not once, and not spinning.
    assert!((35..=70).contains(&woke), "{woke} wakes in 500 ms");
    for bad in ["0", "60001", "x", "-5"] {
        assert_eq!(probe(&["tick-floor", bad]).0, Some(2), "{bad}");
    }
}
