//! The kernel's figure for a service, read without allocating.
//!
//! - **cgroup mode** (the guest): `memory.current` of the service's cgroup, every byte the
//!   kernel charges to any of its processes; opened once when the service starts and read
//!   with one `pread` per reading.
//! - **process-group mode** (hosts without cgroup v2): the service's processes are the
//!   descendants of its root, execd's subreaper shim (`Started.pid`; the shim itself is
//!   execd's, not the service's, and not counted). The figure is the sum over them of `Pss:`
//!   from `/proc/<pid>/smaps_rollup` (a page the service's processes share among themselves
//!   counts once, one shared with others in proportion), or of the resident pages of
//!   `/proc/<pid>/statm` where `smaps_rollup` does not exist (Linux before 4.14) or may not be
//!   read (then a shared page counts in each process that maps it). A service of more than
//!   [`MAX_TREE`] processes is summed over the first [`MAX_TREE`] found: a lower bound.
//!
//!   PSS costs the kernel a walk of every resident page (about 15 µs per MiB, `docs/perf.md`),
//!   so it is read through a [`proctree::Meter`]: every tick walks the tree and sums the
//!   resident pages (cheap); the PSS sum is read again when the service gained or lost a
//!   process, when its RSS moved by more than [`proctree::PSS_TOLERANCE`] (1 MiB), and at
//!   least every [`proctree::PSS_MAX_AGE`] (10 s); in between, the figure is the last PSS sum
//!   moved by the RSS change. The meter keeps the `/proc` files of each service open between
//!   ticks (`stat` and the main thread's `children` of the shim and of up to
//!   [`proctree::MEMBERS_KEPT`] processes, at most [`proctree::KEPT_FILES`] files in all):
//!   a tick of a service of a shim and one process is four `pread`s. A service whose shim has
//!   exited is forgotten, and its files closed, at its next reading.

use std::ffi::CStr;
use std::os::fd::BorrowedFd;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use rustix::fs::{open, Mode, OFlags};

/// Most processes of one service summed per tick (a 2 KiB buffer on the stack).
pub(crate) const MAX_TREE: usize = 512;

/// Where the kernel's figure for one service is read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// cgroup v2: `<root>/<dir>/memory.current`, bytes charged to the whole group, opened
    /// for this read.
    Cgroup { root: &'a str, dir: &'a str },
    /// cgroup v2: the group's `memory.current`, kept open, read with `pread` (one system call
    /// per reading).
    CgroupFile(BorrowedFd<'a>),
    /// No cgroup: the resident memory of every descendant of `root` (the service's shim).
    /// `alive` is a pidfd of the root: a figure read after it exited (when its pid, and
    /// those of the members, may already name other processes) is thrown away.
    Tree { root: i32, alive: BorrowedFd<'a> },
}

/// How this kernel's process tree is read: detected once (one `access` call).
fn tree() -> &'static proctree::Tree {
    static TREE: OnceLock<proctree::Tree> = OnceLock::new();
    TREE.get_or_init(proctree::Tree::new)
}

/// The last full PSS read of each service's tree (one per subject the service can watch).
static METER: Mutex<proctree::Meter<{ oomd::bounds::DEFAULT_SUBJECTS }>> =
    Mutex::new(proctree::Meter::new());

/// A path `<root>/<dir>/<file>` as a NUL-terminated string on the stack (at most 256 bytes and
/// its NUL), so that opening it allocates nothing.
pub(crate) struct CgroupPath {
    buf: [u8; 257],
    len: usize,
}

impl CgroupPath {
    pub(crate) fn new(root: &str, dir: &str, file: &str) -> Option<CgroupPath> {
        let mut buf = [0u8; 257];
        let mut w = Cursor {
            buf: &mut buf[..256],
            len: 0,
        };
        core::fmt::write(&mut w, format_args!("{root}/{dir}/{file}")).ok()?;
        let len = w.len;
        Some(CgroupPath { buf, len })
    }

    pub(crate) fn as_cstr(&self) -> Option<&CStr> {
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).ok()
    }
}

/// Reads the figure, or `None` if it cannot be read or the service just exited.
pub(crate) fn read_bytes(source: Source<'_>) -> Option<u64> {
    match source {
        Source::Cgroup { root, dir } => {
            let path = CgroupPath::new(root, dir, "memory.current")?;
            let text = read_small(path.as_cstr()?)?;
            let text = core::str::from_utf8(&text.0[..text.1]).ok()?;
            text.trim().parse().ok()
        }
        Source::CgroupFile(fd) => {
            let mut buf = [0u8; 128];
            let n = rustix::io::pread(fd, &mut buf, 0).ok()?;
            let text = core::str::from_utf8(&buf[..n]).ok()?;
            text.trim().parse().ok()
        }
        Source::Tree { root, alive } => {
            let mut pids = [0; MAX_TREE];
            let mut meter = METER.lock().unwrap_or_else(|e| e.into_inner());
            let figure = meter.read(tree(), root, &mut pids, Instant::now());
            // Read first, check after: if the root is still alive now, its pid named it
            // during the walk, so the members were its descendants.
            if exited(alive) {
                meter.forget(root);
                return None;
            }
            figure.ok().map(|f| f.bytes)
        }
    }
}

fn read_small(path: &CStr) -> Option<([u8; 128], usize)> {
    let fd = open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 128];
    let n = rustix::io::read(&fd, &mut buf);
    drop(fd);
    Some((buf, n.ok()?))
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable then). An error
/// counts as exited: a figure is only used when the process is known to be alive.
fn exited(pidfd: BorrowedFd<'_>) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::from_borrowed_fd(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    !matches!(poll(&mut fds, Some(&now)), Ok(0))
}

/// Formats `args` into `buf` and returns the text: a piece that does not fit is left out
/// whole, so the text is always valid UTF-8. Never allocates.
pub(crate) fn format_into<'a>(buf: &'a mut [u8], args: core::fmt::Arguments<'_>) -> &'a str {
    let mut c = Cursor { buf, len: 0 };
    let _ = core::fmt::write(&mut c, args);
    let Cursor { buf, len } = c;
    let buf: &'a [u8] = buf;
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// `fmt::Write` into a fixed buffer; fails when full.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a mut [u8],
    pub(crate) len: usize,
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::*;

    fn pidfd(pid: u32) -> std::os::fd::OwnedFd {
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).expect("pidfd")
    }

    /// A shell (in a process group of its own) whose children hold `mib` MiB each: `dd`
    /// fills its buffer and blocks writing it into a pipe no one reads. Killed with its group
    /// on drop (the shell is not reaped before, so the group id is still its own).
    struct Holders(std::process::Child);

    impl Holders {
        fn start(mib: &[u32]) -> Holders {
            let script: String = mib
                .iter()
                .map(|m| format!("dd if=/dev/zero bs={m}M count=1 status=none | sleep 30 & "))
                .chain(std::iter::once("echo started; wait".to_owned()))
                .collect();
            let mut child = Command::new("/bin/sh")
                .args(["-c", &script])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("sh");
            let mut line = String::new();
            let out = child.stdout.take().expect("stdout");
            BufReader::new(out).read_line(&mut line).expect("started");
            Holders(child)
        }
    }

    impl Drop for Holders {
        fn drop(&mut self) {
            if let Some(pgid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = self.0.wait();
        }
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "never happened: {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn the_figure_of_a_tree_is_what_its_descendants_hold() {
        let holders = Holders::start(&[16, 8]);
        let root = holders.0.id();
        let alive = pidfd(root);
        let read = || {
            read_bytes(Source::Tree {
                root: root as i32,
                alive: alive.as_fd(),
            })
        };
        wait_for("both buffers are filled", || {
            read().is_some_and(|b| b >= 24 << 20)
        });
        // Two dd, two sleep: their buffers and little else; not the shell's own memory.
        let bytes = read().expect("a figure");
        assert!(bytes < 32 << 20, "{bytes}");
        let shell = proctree::mem::resident(root as i32).expect("the shell's memory");
        assert!(shell.bytes() < 8 << 20, "the root is small: {shell:?}");
    }

    #[test]
    fn a_tree_without_descendants_is_zero() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let leaf = pidfd(child.id());
        let bytes = read_bytes(Source::Tree {
            root: child.id() as i32,
            alive: leaf.as_fd(),
        });
        assert_eq!(bytes, Some(0));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn the_figure_of_an_exited_root_is_thrown_away() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let alive = pidfd(child.id());
        child.wait().expect("reaped");
        // The pid may now name another process, or none: its figure is never used.
        let source = Source::Tree {
            root: child.id() as i32,
            alive: alive.as_fd(),
        };
        assert_eq!(read_bytes(source), None);
    }

    #[test]
    fn a_missing_file_is_none() {
        assert_eq!(
            read_bytes(Source::Cgroup {
                root: "/nonexistent",
                dir: "x"
            }),
            None
        );
    }
}
