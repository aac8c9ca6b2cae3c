//! The kernel's figure for a service, read without allocating.

use std::os::fd::AsRawFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

/// Where the kernel's figure for one service is read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// cgroup v2: `<root>/<dir>/memory.current`, bytes charged to the whole group.
    Cgroup { root: &'a str, dir: &'a str },
    /// No cgroup: resident pages of the main process (`/proc/<pid>/statm`, second field).
    Statm { pid: i32 },
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
        Source::Statm { pid } => core::fmt::write(&mut w, format_args!("/proc/{pid}/statm")),
    };
    ok.ok()?;
    let len = w.len;
    let text = read_small(&path[..len])?;
    let text = core::str::from_utf8(&text.0[..text.1]).ok()?;
    match source {
        Source::Cgroup { .. } => text.trim().parse().ok(),
        Source::Statm { .. } => {
            let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
            Some(pages.saturating_mul(page_size()))
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
    use super::*;

    #[test]
    fn our_own_resident_size_is_readable_and_plausible() {
        let bytes = read_bytes(Source::Statm {
            pid: std::process::id() as i32,
        })
        .expect("statm");
        assert!(bytes > 64 * 1024, "{bytes}");
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
