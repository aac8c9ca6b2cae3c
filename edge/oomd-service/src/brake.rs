//! The kernel brake and the kernel push, for services execd placed in a cgroup (v2).
//!
//! - **Brake.** For a service with a hard limit whose kill the kernel figure decides (the
//!   policy enforces it, `enforce_kernel`; the service does not report; or it is silent, no
//!   frame yet or its report gone stale, under `enforce_kernel_when_silent`), oomd sets its
//!   cgroup's `memory.high` to the hard limit itself ([`high_for`]). Past `memory.high` the
//!   kernel reclaims from the group and then throttles its allocating tasks, so a runaway is
//!   slowed down instead of outrunning the kill, and the `high` event it raises there is the
//!   push below: the crossing is decided when the kernel sees it, on a group that can barely
//!   grow any more. The brake sits exactly at the kill: the kernel figure that reaches it is
//!   killed (so the brake cannot hold a runaway just under its kill), and a group whose
//!   charge the kernel can reclaim (page cache) is held at its limit by reclaim instead of
//!   being killed for its cache. (The first version set it at `hard + max(hard / 16, 2 MiB)`;
//!   that headroom let a runaway gain it before the brake, about 5 MiB over a 64 MiB hard
//!   limit in the guest, `docs/perf.md`, and bought nothing where the kernel figure decides.)
//!   Never `memory.max`: that would have the kernel kill the service, and oomd would report
//!   a kill it did not make.
//! - **Brake above hard, for a service judged on its report.** Its report trails the kernel's
//!   charge (by the page tables, stacks, binary and allocator overhead its allocator never
//!   sees, and by a frame still on its way), so a brake at hard could hold it there with its
//!   report below hard, never killed. Its brake sits at hard plus the charge its report does
//!   not show, learnt from its kernel readings, plus a margin ([`Unseen`]): the kernel figure
//!   reaches it about when the report reaches hard, and a runaway is throttled while the
//!   frame that shows its crossing is on its way. A service held at that brake for two ticks
//!   with its report below hard has the brake raised over what it holds (its unseen charge
//!   grew), so the brake never stands in for the kill. It has none before its first kernel
//!   reading with a report.
//! - **Brake at the kill.** Once a kill of a service is decided (the request is out and the
//!   service has not exited, or the kill budget holds the kill back), its `memory.high` is set
//!   to hard whatever judges it ([`wanted`]), or to what it holds if that is more (below):
//!   the kill can no longer be prevented by it, and
//!   from the decision to the exit (tens of milliseconds through execd, under TCG) a runaway
//!   grows no further than the kernel lets past `memory.high`, instead of by its rate times
//!   that time. A kill refused or failed lifts it again (to what the rest asks).
//! - **Never below the charge.** Every brake is written no lower than what the group holds
//!   when it is written ([`not_below_charge`]): a `memory.high` below the charge has the
//!   *writer* reclaim the difference inside its `write` (the 6.1 kernel retries as long as
//!   reclaim makes progress), so a service holding reclaimable memory over its brake could
//!   stall its own watchdog, at the kill of a runaway above all. Written at the charge, every
//!   further charge of the group is over it, so its own tasks reclaim the excess (and are
//!   throttled when that falls behind); it is not pushed down to the brake wanted. A brake
//!   written at the charge comes down with the charge, at the tick's readings, to the brake
//!   wanted at the lowest. What is left is the group's growth between the read and the
//!   write (microseconds), which a 6.1 kernel still has oomd reclaim; the file is opened
//!   `O_NONBLOCK`, which kernels with the non-blocking limit option (2025) honour by skipping
//!   that reclaim, and a kill's request is sent before any brake is written, so no write
//!   holds it back.
//! - Critical services, services in observe-only mode and services without a hard limit
//!   (`hard_bytes = u64::MAX`) get `max`. The brake follows every policy change.
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

/// The `memory.high` for a hard limit: the limit itself, or `None` (`max`, no brake) for a
/// service without a hard limit.
#[must_use]
pub(crate) fn high_for(hard: u64) -> Option<u64> {
    (hard != u64::MAX).then_some(hard)
}

/// What decides a service's brake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judged {
    /// Its hard limit (`u64::MAX`: none).
    pub(crate) hard: u64,
    /// Critical, or the policy observes only: oomd acts on nothing of it.
    pub(crate) exempt: bool,
    /// Its kernel figure is enforced (`enforce_kernel`; it does not report; or it is silent
    /// under `enforce_kernel_when_silent`).
    pub(crate) kernel_decides: bool,
    /// A kill of it is decided: requested and not yet over, or held back by the kill budget.
    pub(crate) killing: bool,
    /// How far above hard the brake of a service judged on its report sits before its kill
    /// is decided ([`Unseen::headroom`]); `None` until its charge and its report are known.
    pub(crate) headroom: Option<u64>,
    /// Its report is at or over hard.
    pub(crate) over_hard: bool,
}

/// The `memory.high` a service should have (`None`: `max`): at hard where its kernel figure
/// decides its kill, and for any service whose kill is decided (the brake at the kill: from
/// the request to the exit, or while the kill budget holds the kill back, the service cannot
/// outgrow its limit by more than the kernel lets past `memory.high`; its report cannot be
/// held below hard by it, since its kill is already decided); for a service judged on its
/// report, before that, at hard plus its headroom, once that is known, and while its report
/// is below hard. A report at or over hard with no kill decided (it was refused, or it
/// failed) has none: hard plus its headroom would be below what the group holds, and a
/// `memory.high` written below that makes the writer, oomd, reclaim the group.
#[must_use]
pub(crate) fn wanted(j: Judged) -> Option<u64> {
    if j.exempt {
        None
    } else if j.kernel_decides || j.killing {
        high_for(j.hard)
    } else if j.over_hard {
        None
    } else {
        let headroom = j.headroom?;
        high_for(j.hard).map(|hard| hard.saturating_add(headroom))
    }
}

/// The `memory.high` to write for the brake `want` on a group that holds `charge` bytes now:
/// never below that charge. A `memory.high` written below what a group holds makes the
/// writer reclaim the difference in its `write` (with swap too, as long as reclaim makes
/// progress), so oomd would be stalled doing the group's reclaim, at the kill of a runaway
/// above all, for as long as that takes: a service could make its watchdog wait by holding
/// reclaimable memory over its brake. At the charge the group is held where it is (its own
/// tasks reclaim what they charge over it), not pushed down to `want`. `None` (`max`) and an
/// unknown charge leave `want` as it is.
#[must_use]
pub(crate) fn not_below_charge(want: Option<u64>, charge: Option<u64>) -> Option<u64> {
    match (want, charge) {
        (Some(high), Some(charge)) if charge > high => Some(charge),
        _ => want,
    }
}

/// Room over the unseen charge: the kernel's per-CPU charge batches (64 pages a CPU) make
/// `memory.current` move by a few hundred KiB without the service doing anything.
pub(crate) const MARGIN: u64 = 512 * 1024;
/// A headroom is lowered only by this much at least, so that a gap that wavers does not
/// rewrite the brake at every reading.
pub(crate) const LOWER_BY: u64 = 256 * 1024;
/// Ticks a service judged on its report may be held at its brake, its report below hard,
/// before the brake is raised to let it through: readings at [`RELIEF_TICKS`] + 1 successive
/// ticks (or `high` events between them) find it there, which is between one and three tick
/// periods of wall time.
pub(crate) const RELIEF_TICKS: u64 = 2;

/// Where a kernel reading next to a report comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Right after a batch of the service's frames: the report is as new as the charge, so
    /// the gap between them is the charge the report does not show. Only these lower the
    /// headroom.
    AtFrame,
    /// At a tick, or at a `high` event: the report may be up to a tick old (a service that
    /// freed memory since shows no gap at all; a runaway shows its growth since). These
    /// judge whether the service is held at its brake.
    Later,
}

/// The charge of a service judged on its report that its report does not show (page
/// tables, stacks, its binary, allocator overhead, page cache), learnt from its kernel
/// readings: its brake before the kill sits at hard plus this and [`MARGIN`], so that the
/// kernel figure reaches the brake about when the report reaches hard. A runaway is then
/// throttled while its next frame is on its way (up to the growth publisher's pacing, 13 ms,
/// megabytes at hundreds of MiB/s), not only from its kill decision on.
///
/// - The headroom is learnt at the first reading, and then follows the smallest gap seen
///   right after a frame ([`Reading::AtFrame`]), lowered by [`LOWER_BY`] at least and once a
///   tick at most. A report that trails the charge only widens the gap, so it never lowers
///   the brake; and a first reading in mid-growth, too high, is lowered at the next frame.
/// - A brake set too low (the unseen charge grew: a new thread's stack, memory mapped
///   outside the allocator) would hold the service with its report below hard, never killed
///   and never let through. So a service that the readings at ticks and `high` events find
///   at its brake (within [`LOWER_BY`] of it: reclaim keeps a group just under it) for
///   [`RELIEF_TICKS`], its report below hard all along, gets the brake raised over what the
///   kernel holds now. Only the kill is the kernel's to hasten, never to replace. A service
///   whose report stays below hard while its charge grows (a liar, a publisher that stopped)
///   raises its brake that way, two ticks at a time, without bound: it has what it had
///   without a brake.
/// - A report at or over hard moves nothing: its kill decides (or was refused, and then the
///   service has no brake before the kill, [`wanted`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unseen {
    headroom: Option<u64>,
    held_since: Option<u64>,
    /// The tick it was last lowered in: once a tick at most, so that a service whose frames
    /// swing its report (up to its frame budget a tick) moves its brake, a write to its
    /// group, no more often than that.
    lowered_at: Option<u64>,
    /// Its report at the last reading was at or over hard: a crossing either way is told to
    /// the caller, whose brake depends on it ([`Judged::over_hard`]).
    over_hard: bool,
}

impl Unseen {
    /// The headroom over hard; `None` before the first kernel reading with a report.
    #[must_use]
    pub(crate) fn headroom(self) -> Option<u64> {
        self.headroom
    }

    /// A kernel reading `kernel` at tick `now` of a service whose report is `report` and
    /// whose hard limit is `hard`, its brake where the headroom put it; whether what the
    /// brake depends on changed (and the brake must move).
    pub(crate) fn observe(
        &mut self,
        now: u64,
        kernel: u64,
        report: u64,
        hard: u64,
        reading: Reading,
    ) -> bool {
        let over_hard = report >= hard;
        let flipped = over_hard != self.over_hard;
        self.over_hard = over_hard;
        if over_hard {
            self.held_since = None;
            return flipped;
        }
        let fits = kernel.saturating_sub(report).saturating_add(MARGIN);
        let Some(headroom) = self.headroom else {
            self.headroom = Some(fits);
            return true;
        };
        match reading {
            Reading::Later => {
                let brake = hard.saturating_add(headroom);
                if kernel.saturating_add(LOWER_BY) < brake {
                    self.held_since = None;
                    return flipped;
                }
                let since = *self.held_since.get_or_insert(now);
                if now.saturating_sub(since) < RELIEF_TICKS {
                    return flipped;
                }
                // Over what it holds now, by at least the margin over the old brake.
                self.held_since = None;
                self.headroom = Some(fits.max(headroom).saturating_add(MARGIN));
                true
            }
            Reading::AtFrame => {
                if fits.saturating_add(LOWER_BY) <= headroom && self.lowered_at != Some(now) {
                    self.headroom = Some(fits);
                    self.lowered_at = Some(now);
                    return true;
                }
                flipped
            }
        }
    }
}

/// Writes `memory.high` of `<root>/<dir>`: `high` bytes, or `max` for `None`.
pub(crate) fn set_high(root: &str, dir: &str, high: Option<u64>) -> Result<(), Errno> {
    let path = CgroupPath::new(root, dir, "memory.high").ok_or(Errno::NAMETOOLONG)?;
    let path = path.as_cstr().ok_or(Errno::INVAL)?;
    // O_TRUNC as a shell's `echo max > memory.high` does: cgroupfs ignores it, and a plain
    // file (the tests' stand-in for a cgroup) holds exactly the last value. O_NONBLOCK: a
    // kernel with the non-blocking limit option skips the writer's reclaim when the value is
    // below the charge (6.1 ignores the flag, and neither its open nor its write returns
    // EAGAIN for it; the caller never writes below the charge it read, [`not_below_charge`],
    // but the group may grow between the read and the write).
    let fd = open(
        path,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::NONBLOCK | OFlags::CLOEXEC,
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

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_brake_is_at_hard_and_none_without_a_hard_limit() {
        assert_eq!(high_for(16 * MIB), Some(16 * MIB));
        assert_eq!(high_for(64 * MIB), Some(64 * MIB));
        assert_eq!(high_for(2_000), Some(2_000));
        assert_eq!(high_for(u64::MAX - 1), Some(u64::MAX - 1));
        assert_eq!(high_for(u64::MAX), None);
    }

    #[test]
    fn a_brake_where_the_kernel_figure_decides_or_a_kill_is_decided_and_never_when_exempt() {
        let j = |exempt, kernel_decides, killing| Judged {
            hard: 64 * MIB,
            exempt,
            kernel_decides,
            killing,
            headroom: None,
            over_hard: false,
        };
        assert_eq!(wanted(j(false, true, false)), Some(64 * MIB));
        assert_eq!(wanted(j(false, false, true)), Some(64 * MIB));
        assert_eq!(wanted(j(false, true, true)), Some(64 * MIB));
        // Judged on its report, nothing decided and its unseen charge not known yet: none.
        assert_eq!(wanted(j(false, false, false)), None);
        // Known: above hard by its headroom; at hard once its kill is decided.
        let headroom = Some(3 * MIB);
        let known = |killing, over_hard| Judged {
            headroom,
            over_hard,
            ..j(false, false, killing)
        };
        assert_eq!(wanted(known(false, false)), Some(67 * MIB));
        assert_eq!(wanted(known(true, false)), Some(64 * MIB));
        assert_eq!(wanted(known(true, true)), Some(64 * MIB));
        // Its report over hard and no kill decided (refused, failed): lifted.
        assert_eq!(wanted(known(false, true)), None);
        for kernel_decides in [false, true] {
            for killing in [false, true] {
                assert_eq!(wanted(j(true, kernel_decides, killing)), None);
                let exempt = Judged {
                    headroom,
                    ..j(true, kernel_decides, killing)
                };
                assert_eq!(wanted(exempt), None);
            }
        }
        for headroom in [None, Some(MIB)] {
            let unlimited = Judged {
                hard: u64::MAX,
                headroom,
                ..j(false, false, false)
            };
            assert_eq!(wanted(unlimited), None);
            assert_eq!(
                wanted(Judged {
                    killing: true,
                    ..unlimited
                }),
                None
            );
        }
    }

    use Reading::{AtFrame, Later};

    #[test]
    fn the_headroom_is_the_unseen_charge_learnt_at_the_first_reading_and_lowered_at_frames() {
        let hard = 64 * MIB;
        let mut u = Unseen::default();
        assert_eq!(u.headroom(), None);
        // A first reading at a tick in mid-growth: 6 MiB between its report and its charge.
        assert!(u.observe(1, 26 * MIB, 20 * MIB, hard, Later));
        assert_eq!(u.headroom(), Some(6 * MIB + MARGIN));
        // Read right after its next frame: 1.5 MiB of charge the report does not show.
        assert!(u.observe(1, 31 * MIB + MIB / 2, 30 * MIB, hard, AtFrame));
        assert_eq!(u.headroom(), Some(MIB + MIB / 2 + MARGIN));
        // A report that trails its charge (a runaway's next frame on its way) widens the gap:
        // the headroom stays, whatever the gap, near the brake too.
        for (now, kernel) in [(2, 50 * MIB), (3, hard), (4, hard + MIB)] {
            for reading in [Later, AtFrame] {
                assert!(!u.observe(now, kernel, 40 * MIB, hard, reading));
                assert_eq!(u.headroom(), Some(MIB + MIB / 2 + MARGIN));
            }
        }
        // A service that freed memory and has not said so yet shows no gap at the tick: that
        // lowers nothing.
        assert!(!u.observe(5, 20 * MIB, 40 * MIB, hard, Later));
        assert_eq!(u.headroom(), Some(MIB + MIB / 2 + MARGIN));
        // At a frame, a gap smaller by less than LOWER_BY moves nothing; by LOWER_BY, lowers.
        let gap = MIB + MIB / 2 - LOWER_BY;
        assert!(!u.observe(6, 20 * MIB + gap + 1, 20 * MIB, hard, AtFrame));
        assert!(u.observe(7, 20 * MIB + gap, 20 * MIB, hard, AtFrame));
        assert_eq!(u.headroom(), Some(gap + MARGIN));
        // A report ahead of the charge (bytes allocated, not yet touched) leaves no gap: the
        // headroom is the margin alone, and no lower.
        assert!(u.observe(8, 20 * MIB, 25 * MIB, hard, AtFrame));
        assert_eq!(u.headroom(), Some(MARGIN));
        assert!(!u.observe(9, 20 * MIB, 25 * MIB, hard, AtFrame));
    }

    #[test]
    fn the_headroom_is_lowered_once_a_tick_at_most() {
        let hard = 64 * MIB;
        let mut u = Unseen::default();
        assert!(u.observe(1, 30 * MIB, 20 * MIB, hard, AtFrame));
        // A sender swinging its report up a megabyte a frame within one tick: one write.
        assert!(u.observe(2, 30 * MIB, 21 * MIB, hard, AtFrame));
        for report in 22..=28 {
            assert!(
                !u.observe(2, 30 * MIB, report * MIB, hard, AtFrame),
                "{report}"
            );
        }
        assert_eq!(u.headroom(), Some(9 * MIB + MARGIN));
        // The next tick takes the smallest gap its frames show.
        assert!(u.observe(3, 30 * MIB, 28 * MIB, hard, AtFrame));
        assert_eq!(u.headroom(), Some(2 * MIB + MARGIN));
    }

    #[test]
    fn a_service_held_at_its_brake_with_its_report_below_hard_is_let_through_after_relief_ticks() {
        let hard = 64 * MIB;
        let learnt = || {
            let mut u = Unseen::default();
            assert!(u.observe(1, 21 * MIB, 20 * MIB, hard, AtFrame));
            u
        };
        let brake = hard + MIB + MARGIN;
        // Its unseen charge grew by 4 MiB: the kernel holds it at its brake (or just under
        // it, as reclaim leaves a group), its report 4 MiB below hard.
        let report = brake - 5 * MIB - MARGIN;
        let mut u = learnt();
        assert!(!u.observe(10, brake, report, hard, Later), "held at first");
        // Readings at its frames judge nothing: the count goes on.
        assert!(!u.observe(10, brake - 3 * MIB, report, hard, AtFrame));
        assert!(!u.observe(11, brake - LOWER_BY + 1, report, hard, Later));
        assert!(u.observe(10 + RELIEF_TICKS, brake, report, hard, Later));
        let raised = hard + u.headroom().expect("known");
        assert!(
            raised > brake + MARGIN,
            "over what the kernel holds: {raised}"
        );
        // The gap now (5 MiB and the margin) and the margin again.
        assert_eq!(u.headroom(), Some(5 * MIB + 3 * MARGIN));
        // Held, then clear of the brake at a tick: the count starts again.
        let mut u = learnt();
        assert!(!u.observe(10, brake, report, hard, Later));
        assert!(!u.observe(11, brake - LOWER_BY - 1, report, hard, Later));
        assert!(!u.observe(12, brake, report, hard, Later));
        assert!(!u.observe(13, brake, report, hard, Later));
        assert!(u.observe(14, brake, report, hard, Later));
        // At the brake with its report at hard is no stall: its kill is due. Nothing rises;
        // the report's crossing of hard, both ways, is what moves the brake.
        let mut u = learnt();
        assert!(u.observe(10, brake, hard, hard, Later), "over hard");
        for now in 11..20 {
            assert!(!u.observe(now, brake + 9 * MIB, hard + MIB, hard, Later));
        }
        assert_eq!(u.headroom(), Some(MIB + MARGIN));
        assert!(
            u.observe(20, brake, hard - 1, hard, AtFrame),
            "below hard again"
        );
        // It is below hard now: a report at hard once more is a crossing again.
        assert!(
            u.observe(21, brake, hard, hard, AtFrame),
            "over hard once more"
        );
    }

    #[test]
    fn a_brake_is_never_written_below_what_the_group_holds() {
        let hard = Some(64 * MIB);
        assert_eq!(not_below_charge(hard, Some(70 * MIB)), Some(70 * MIB));
        assert_eq!(not_below_charge(hard, Some(64 * MIB)), hard);
        assert_eq!(not_below_charge(hard, Some(10 * MIB)), hard);
        assert_eq!(not_below_charge(hard, None), hard, "charge unknown");
        assert_eq!(
            not_below_charge(None, Some(70 * MIB)),
            None,
            "max stays max"
        );
        assert_eq!(not_below_charge(None, None), None);
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
