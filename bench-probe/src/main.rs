//! `bench-probe`: the stopwatch `scripts/bench-overshoot.sh` runs in its guest, and the floor
//! `scripts/bench-daemon.sh` measures beside the daemons.
//!
//! ```text
//! bench-probe wait-exit PID [TIMEOUT_MS]   # exit pid=<pid> at_ns=<CLOCK_MONOTONIC ns>
//! bench-probe now                          # now_ns=<CLOCK_MONOTONIC ns>
//! bench-probe tick-floor PERIOD_MS          # wakes every PERIOD_MS, does nothing, forever
//! ```
//!
//! `tick-floor` is the floor `scripts/bench-daemon.sh` measures next to the daemons: a process
//! that only wakes on a `CLOCK_MONOTONIC` timerfd every `PERIOD_MS` and reads it, which is the
//! least any daemon polling at that period pays on this machine for its wakes alone.
//!
//! `wait-exit` opens a pidfd on `PID` (any process, not only a child: the hog is execd's child
//! in oomd's runs) and waits in `poll(2)` until it is readable, which the kernel makes it when
//! the whole process (every thread) has exited, whether or not anyone reaped it yet; then it
//! reads `CLOCK_MONOTONIC` and prints one line. The hog reads the same clock for its
//! `crossed … at_ns=` line (`hog-fixture --mark-bytes`), so the two subtract.
//!
//! Exit status: 0 after the line; 1 on a timeout (`timeout pid=<pid>`, default 60 s); 2 for bad
//! arguments, or when `PID` does not exist (then nothing was measured). `tick-floor` runs until
//! it is ended (2 if its timer cannot be set up). It signals nothing.
//!
//! Not a benchmark harness: it measures one exit, or stands for a daemon that does nothing.
//! Medians, rates and tables are the scripts'.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

const USAGE: &str =
    "usage: bench-probe wait-exit PID [TIMEOUT_MS] | bench-probe now | bench-probe tick-floor PERIOD_MS";
const DEFAULT_TIMEOUT_MS: u64 = 60_000;

fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// One line on stdout with one `write` (the guest's console interleaves processes).
fn say(line: &str) {
    let line = format!("{line}\n");
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

fn usage(why: &str) -> ExitCode {
    eprintln!("bench-probe: {why}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["now"] => {
            say(&format!("now_ns={}", monotonic_ns()));
            ExitCode::SUCCESS
        }
        ["wait-exit", pid] => wait_exit(pid, DEFAULT_TIMEOUT_MS),
        ["wait-exit", pid, timeout] => match timeout.parse() {
            Ok(ms) => wait_exit(pid, ms),
            Err(_) => usage(&format!("TIMEOUT_MS {timeout:?} is not a number")),
        },
        ["tick-floor", period] => match period.parse::<u64>() {
            Ok(ms) if (1..=60_000).contains(&ms) => tick_floor(ms),
            _ => usage(&format!(
                "PERIOD_MS {period:?} is not a number of 1..=60000"
            )),
        },
        _ => usage("unknown arguments"),
    }
}

fn tick_floor(period_ms: u64) -> ExitCode {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags,
    };
    let timer = match timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("bench-probe: timerfd_create: {e}");
            return ExitCode::from(2);
        }
    };
    let every = Timespec {
        tv_sec: i64::try_from(period_ms / 1000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from((period_ms % 1000) * 1_000_000).unwrap_or(0),
    };
    let spec = Itimerspec {
        it_interval: every,
        it_value: every,
    };
    if let Err(e) = timerfd_settime(&timer, TimerfdTimerFlags::empty(), &spec) {
        eprintln!("bench-probe: timerfd_settime: {e}");
        return ExitCode::from(2);
    }
    let mut expirations = [0u8; 8];
    loop {
        match rustix::io::read(&timer, &mut expirations) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                eprintln!("bench-probe: read: {e}");
                return ExitCode::from(2);
            }
        }
    }
}

fn wait_exit(pid: &str, timeout_ms: u64) -> ExitCode {
    let Some(raw) = pid.parse::<i32>().ok().filter(|&p| p > 0) else {
        return usage(&format!("PID {pid:?} is not a process id"));
    };
    let Some(target) = Pid::from_raw(raw) else {
        return usage(&format!("PID {pid:?} is not a process id"));
    };
    let pidfd = match pidfd_open(target, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("bench-probe: pidfd_open({raw}): {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = monotonic_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));
    loop {
        let now = monotonic_ns();
        if now >= deadline {
            say(&format!("timeout pid={raw}"));
            return ExitCode::from(1);
        }
        let left = deadline - now;
        let timeout = Timespec {
            tv_sec: i64::try_from(left / 1_000_000_000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from(left % 1_000_000_000).unwrap_or(0),
        };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) if fds[0].revents().intersects(PollFlags::IN | PollFlags::HUP) => {
                let at = monotonic_ns();
                say(&format!("exit pid={raw} at_ns={at}"));
                return ExitCode::SUCCESS;
            }
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                eprintln!("bench-probe: poll: {e}");
                return ExitCode::from(2);
            }
        }
    }
}
