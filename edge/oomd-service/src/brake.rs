//! The kernel brake and the kernel push, for services execd placed in a cgroup (v2).
//!
//! - **Brake.** For a service with a hard limit, oomd sets its cgroup's `memory.high` a little
//!   above hard: `hard + max(hard / 16, 2 MiB)` ([`high_for`]). Past `memory.high` the kernel
//!   reclaims from the group and then throttles its allocating tasks, so a runaway is slowed
//!   down instead of outrunning the kill; the headroom keeps an honest service whose report
//!   trails the kernel's charge (by one publish quantum and the page tables, stacks and
//!   allocator overhead its allocator never sees) from being stalled just under its kill.
//!   Never `memory.max`: that would have the kernel kill the service, and oomd would report
//!   a kill it did not make. The brake is set only where the kernel figure can decide the
//!   kill: the policy enforces it (`enforce_kernel`), or the service does not report. A
//!   reporting service judged on its report alone gets none: throttled at the brake before
//!   its report reached hard (an allocation that stalls before the service publishes), it
//!   would be held there and never killed (the boot selftest's rate-limit hogs did exactly
//!   that). Critical services, services in observe-only mode and services without a hard
//!   limit (`hard_bytes = u64::MAX`) get `max` too. The brake follows every policy change.
//! - **Push.** oomd watches the group's `memory.events` (`POLLPRI`, which the kernel raises
//!   when a counter changes); a new `high` event makes oomd read the group's `memory.current`
//!   at once and feed it as a kernel reading, so a crossing is decided then (at most one such
//!   reading per service per tick, whatever the kernel's event rate).
//!
//! Without cgroups (a host on cgroup v1, process-group mode) there is neither: the service is
//! watched as before, and oomd says so once per service.
//!
//! Every call works on paths formatted on the stack and allocates nothing.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{open, Mode, OFlags};
use rustix::io::Errno;

use crate::kernel::{CgroupPath, Cursor};

const MIB: u64 = 1 << 20;
/// The brake's headroom over hard, at least.
pub(crate) const MIN_HEADROOM: u64 = 2 * MIB;
/// The brake's headroom over hard, as a fraction of hard (1/16), when that is more.
pub(crate) const HEADROOM_DIVISOR: u64 = 16;

/// The `memory.high` for a hard limit: `None` means `max` (no brake) for a service without a
/// hard limit.
#[must_use]
pub(crate) fn high_for(hard: u64) -> Option<u64> {
    (hard != u64::MAX).then(|| hard.saturating_add((hard / HEADROOM_DIVISOR).max(MIN_HEADROOM)))
}

/// Writes `memory.high` of `<root>/<dir>`: `high` bytes, or `max` for `None`.
pub(crate) fn set_high(root: &str, dir: &str, high: Option<u64>) -> Result<(), Errno> {
    let path = CgroupPath::new(root, dir, "memory.high").ok_or(Errno::NAMETOOLONG)?;
    let path = path.as_cstr().ok_or(Errno::INVAL)?;
    // O_TRUNC as a shell's `echo max > memory.high` does: cgroupfs ignores it, and a plain
    // file (the tests' stand-in for a cgroup) holds exactly the last value.
    let fd = open(
        path,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut text = [0u8; 24];
    let mut w = Cursor {
        buf: &mut text,
        len: 0,
    };
    let written = match high {
        Some(bytes) => core::fmt::write(&mut w, format_args!("{bytes}\n")),
        None => core::fmt::write(&mut w, format_args!("max\n")),
    };
    written.map_err(|_| Errno::INVAL)?;
    let len = w.len;
    let n = rustix::io::write(&fd, &text[..len])?;
    if n == len {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}

/// Opens `memory.events` of `<root>/<dir>` for watching (`POLLPRI`).
pub(crate) fn open_events(root: &str, dir: &str) -> Option<OwnedFd> {
    open_file(root, dir, "memory.events")
}

/// Opens `memory.current` of `<root>/<dir>`, kept open for the kernel figure (`pread`).
pub(crate) fn open_current(root: &str, dir: &str) -> Option<OwnedFd> {
    open_file(root, dir, "memory.current")
}

fn open_file(root: &str, dir: &str, file: &str) -> Option<OwnedFd> {
    let path = CgroupPath::new(root, dir, file)?;
    open(
        path.as_cstr()?,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// The `high` counter of an open `memory.events`, read from its start (which also
/// acknowledges the change to the kernel, so `POLLPRI` is raised again only by the next one).
pub(crate) fn high_events(fd: BorrowedFd<'_>) -> Option<u64> {
    let mut buf = [0u8; 256];
    let n = rustix::io::pread(fd, &mut buf, 0).ok()?;
    parse_high(&buf[..n])
}

/// The `high N` line of a `memory.events` text.
fn parse_high(text: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("high "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brake_is_a_little_above_hard_and_none_without_a_hard_limit() {
        assert_eq!(high_for(16 * MIB), Some(18 * MIB));
        assert_eq!(high_for(64 * MIB), Some(68 * MIB));
        assert_eq!(high_for(2_000), Some(2_000 + MIN_HEADROOM));
        assert_eq!(high_for(u64::MAX - 1), Some(u64::MAX));
        assert_eq!(high_for(u64::MAX), None);
    }

    #[test]
    fn the_high_counter_is_read_from_memory_events() {
        let text = b"low 0\nhigh 17\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n";
        assert_eq!(parse_high(text), Some(17));
        assert_eq!(parse_high(b"low 0\nmax 3\n"), None);
        assert_eq!(parse_high(b"high x\n"), None);
        assert_eq!(parse_high(b"\xff\xfe"), None);
    }

    #[test]
    fn memory_high_is_written_and_events_are_read_in_a_cgroup_directory() {
        let dir = std::env::temp_dir().join(format!("oomd-brake-{}", std::process::id()));
        let group = dir.join("svc");
        std::fs::create_dir_all(&group).expect("dir");
        std::fs::write(group.join("memory.high"), "max\n").expect("file");
        std::fs::write(group.join("memory.events"), "low 0\nhigh 4\nmax 0\n").expect("file");
        let root = dir.to_str().expect("utf-8");
        set_high(root, "svc", Some(12_345)).expect("written");
        let high = std::fs::read_to_string(group.join("memory.high")).expect("read");
        assert_eq!(high, "12345\n");
        set_high(root, "svc", None).expect("written");
        let high = std::fs::read_to_string(group.join("memory.high")).expect("read");
        assert_eq!(high, "max\n");
        let events = open_events(root, "svc").expect("opened");
        assert_eq!(high_events(std::os::fd::AsFd::as_fd(&events)), Some(4));
        assert_eq!(set_high(root, "absent", Some(1)), Err(Errno::NOENT));
        assert!(open_events(root, "absent").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
