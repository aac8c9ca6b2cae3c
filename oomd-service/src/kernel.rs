//! The kernel's figure for a service, read without allocating.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// Where the kernel's figure for one service is read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// cgroup v2: `<root>/<dir>/memory.current`, bytes charged to the whole group.
    Cgroup { root: &'a str, dir: &'a str },
    /// No cgroup: resident pages of the main process (`/proc/<pid>/statm`, second field).
    /// `alive` is a pidfd of that process: a figure read after it exited (when the pid may
    /// already name another process) is thrown away.
    Statm { pid: i32, alive: BorrowedFd<'a> },
}

/// Reads the figure, or `None` if the file is gone or unreadable (the service just exited).
pub(crate) fn read_bytes(source: Source<'_>) -> Option<u64> {
    let mut path = [0u8; 256];
    let mut w = Cursor {
        buf: &mut path,
        len: 0,
    };
    let ok = match source {
        Source::Cgroup { root, dir } => {
            core::fmt::write(&mut w, format_args!("{root}/{dir}/memory.current"))
        }
        Source::Statm { pid, .. } => core::fmt::write(&mut w, format_args!("/proc/{pid}/statm")),
    };
    ok.ok()?;
    let len = w.len;
    let text = read_small(&path[..len])?;
    let text = core::str::from_utf8(&text.0[..text.1]).ok()?;
    match source {
        Source::Cgroup { .. } => text.trim().parse().ok(),
        Source::Statm { alive, .. } => {
            let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
            // Read first, check after: if the process is still alive now, the pid named it
            // when the file was read.
            (!exited(alive)).then(|| pages.saturating_mul(page_size()))
        }
    }
}

fn read_small(path: &[u8]) -> Option<([u8; 128], usize)> {
    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    let mut buf = [0u8; 128];
    let n = nix::unistd::read(fd, &mut buf);
    let _ = nix::unistd::close(fd.as_raw_fd());
    Some((buf, n.ok()?))
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable then). An error
/// counts as exited: a figure is only used when the process is known to be alive.
fn exited(pidfd: BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(4096)
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
    use std::os::fd::AsFd;

    use super::*;

    fn pidfd(pid: u32) -> std::os::fd::OwnedFd {
        let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).expect("pidfd")
    }

    #[test]
    fn our_own_resident_size_is_readable_and_plausible() {
        let me = std::process::id();
        let alive = pidfd(me);
        let bytes = read_bytes(Source::Statm {
            pid: me as i32,
            alive: alive.as_fd(),
        });
        assert!(bytes.expect("statm") > 64 * 1024);
    }

    #[test]
    fn the_figure_of_an_exited_process_is_thrown_away() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let alive = pidfd(child.id());
        child.wait().expect("reaped");
        // The pid may now name another process, or none: its figure is never used.
        let source = Source::Statm {
            pid: child.id() as i32,
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
