//! Processes the tests start, and their end.
//!
//! A [`Family`] is a `/bin/sh -c <script>` in a process group of its own whose script prints
//! the pids the test needs, one per line. Every process in a script is a `sleep 30` at most,
//! so nothing outlives a failed test by long. Dropping a family ends every pid it printed that
//! is still the shell's child or this process's (each through a pidfd opened first and checked
//! after), then the shell's group (the shell is not reaped before, so the group id is still
//! its own). Nothing else is ever signalled.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proctree::{read_stat, Pid};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid as RPid, PidfdFlags, Signal};

pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct Family {
    child: Child,
    /// The shell.
    pub pid: Pid,
    /// What the script printed, in order.
    pub printed: Vec<Pid>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    stdin: Option<std::process::ChildStdin>,
}

/// Starts `script` and reads the `printed` pids it writes on stdout.
pub fn family(script: &str, printed: usize) -> Family {
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg(script);
    family_of(sh, printed)
}

/// In a test binary's `main` (no harness: one thread): the variable [`family_of_subreaper`]
/// sets; if set, this process becomes a child subreaper and `exec`s `/bin/sh -c <script>`
/// (the attribute stays across `execve`), like execd's shim: orphans of the script land
/// under the shell.
pub const SUBREAPER_SH: &str = "PROCTREE_TEST_SUBREAPER_SH";

/// Becomes the subreaper shell if [`SUBREAPER_SH`] asks; returns otherwise.
pub fn subreaper_shell_if_asked() {
    if let Some(script) = std::env::var_os(SUBREAPER_SH) {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
        let err = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env_remove(SUBREAPER_SH)
            .exec();
        panic!("exec /bin/sh: {err}");
    }
}

/// A family whose shell is a child subreaper: this test binary run again with
/// [`SUBREAPER_SH`] (its `main` must call [`subreaper_shell_if_asked`] first).
pub fn family_of_subreaper(script: &str, printed: usize) -> Family {
    let mut me = Command::new(std::env::current_exe().unwrap());
    me.env(SUBREAPER_SH, script);
    family_of(me, printed)
}

/// Starts `command` (a shell, or what becomes one) like [`family`].
pub fn family_of(mut command: Command, printed: usize) -> Family {
    let mut child = command
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as Pid;
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let stdin = child.stdin.take();
    let mut family = Family {
        child,
        pid,
        printed: Vec::new(),
        lines,
        stdin,
    };
    for _ in 0..printed {
        family.read_pid();
    }
    family
}

impl Family {
    /// Reads one more pid the script prints.
    pub fn read_pid(&mut self) -> Pid {
        let line = self.lines.next().expect("a pid line").unwrap();
        let pid = line.trim().parse().expect("a pid");
        self.printed.push(pid);
        pid
    }

    /// Writes a line to the script's stdin (for a `read`).
    pub fn tell(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").unwrap();
    }
}

impl Drop for Family {
    fn drop(&mut self) {
        let me = std::process::id() as Pid;
        for &pid in &self.printed {
            let Some(fd) =
                RPid::from_raw(pid).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
            else {
                continue;
            };
            let parent = read_stat(pid).map(|s| s.ppid).unwrap_or(0);
            if parent == self.pid || parent == me {
                let _ = pidfd_send_signal(&fd, Signal::KILL);
            }
            if parent == me {
                // An orphan adopted by this process (a subreaper): ours to reap.
                let _ = rustix::process::waitpid(
                    RPid::from_raw(pid),
                    rustix::process::WaitOptions::empty(),
                );
            }
        }
        if let Some(pgid) = RPid::from_raw(self.pid) {
            let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The sorted pids of a buffer's first `n`.
pub fn sorted(pids: &[Pid]) -> Vec<Pid> {
    let mut v = pids.to_vec();
    v.sort_unstable();
    v
}
