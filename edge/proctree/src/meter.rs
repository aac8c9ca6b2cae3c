//! [`Meter`]: the resident memory of process trees, read every tick at the cost of `statm`.
//!
//! `Pss:` of `smaps_rollup` is what counts shared pages once, but the kernel computes it by
//! walking every page of the process: about 15 µs per resident MiB (`docs/perf.md`), 15 ms a
//! tick for a service of a GiB. `statm` costs the same whatever the size (about 6 µs) but
//! counts a page shared by *n* processes *n* times (a fork shares every page at once).
//!
//! A meter reads both, and the expensive one only when it may have changed: it remembers, per
//! tree, the PSS sum of its last full read and the RSS sum and member count read with it. At
//! each [`Meter::read`] it walks the tree and sums `statm`; if the members are as many as then,
//! the RSS sum moved by at most [`PSS_TOLERANCE`] and the full read is younger than
//! [`PSS_MAX_AGE`], the figure is the remembered PSS sum moved by the RSS change (exact for
//! private pages, which move both sums alike); otherwise PSS is read again for every member.
//! A fork (a new member) or growth past the tolerance is therefore always read in full at
//! once; what the estimate can miss is a change of *sharing* without a change of RSS (another
//! process outside the tree mapping or dropping pages the tree shares), for at most
//! [`PSS_MAX_AGE`].

use core::time::Duration;
use std::time::Instant;

use crate::mem::{resident, rss, Resident, TreeResident};
use crate::{read_stat, Error, Pid, Tree};

/// How far the RSS sum of a tree may move from the one read with its last PSS sum before PSS
/// is read again: one MiB (a hog's chunk, or a real service's slow drift, re-reads at once).
pub const PSS_TOLERANCE: u64 = 1 << 20;

/// How long a tree's last PSS sum is used at most, whatever its RSS does.
pub const PSS_MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Memo {
    root: Pid,
    /// The root's start time: a root pid reused by another process is another tree.
    start: u64,
    members: usize,
    rss: u64,
    figure: TreeResident,
    at: Instant,
}

/// The figure of a tree whose last full read is `m`, now that it has `members` members with
/// `rss` bytes: the remembered PSS sum moved by the RSS change, or `None` if PSS must be read
/// again (another member count, the RSS sum moved past the tolerance, or the read is too old).
fn estimate(m: &Memo, members: usize, rss: u64, now: Instant) -> Option<u64> {
    let fresh = now.saturating_duration_since(m.at) < PSS_MAX_AGE;
    if !fresh || m.members != members || m.rss.abs_diff(rss) > PSS_TOLERANCE {
        return None;
    }
    let moved = i128::from(rss) - i128::from(m.rss);
    let bytes = (i128::from(m.figure.bytes) + moved).clamp(0, i128::from(u64::MAX));
    u64::try_from(bytes).ok()
}

/// Remembers the last full read of up to `N` trees (a fixed table: no allocation). When a
/// tree not in it is read and it is full, the tree read longest ago makes room.
#[derive(Debug)]
pub struct Meter<const N: usize> {
    memos: [Option<Memo>; N],
}

impl<const N: usize> Default for Meter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Meter<N> {
    const NON_EMPTY: () = assert!(N > 0, "a meter remembers at least one tree");

    /// An empty meter.
    #[must_use]
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NON_EMPTY;
        Meter { memos: [None; N] }
    }

    /// The resident memory of the descendants of `root` (not of `root` itself), as
    /// [`mem::tree_resident`](crate::mem::tree_resident) gives it, or estimated from its last
    /// full read as the module docs say ([`TreeResident::estimated`]). `now` is the caller's
    /// clock (monotonic). Fails if `root` is gone or the walk fails.
    pub fn read(
        &mut self,
        tree: &Tree,
        root: Pid,
        buf: &mut [Pid],
        now: Instant,
    ) -> Result<TreeResident, Error> {
        let start = read_stat(root)?.starttime;
        let (n, truncated) = match tree.descendants(root, buf) {
            Ok(n) => (n, false),
            Err(Error::Overflow) => (buf.len(), true),
            Err(e) => return Err(e),
        };
        let mut members = 0;
        let mut rss_sum: u64 = 0;
        for &pid in &buf[..n] {
            if let Ok(bytes) = rss(pid) {
                rss_sum = rss_sum.saturating_add(bytes);
                members += 1;
            }
        }
        let known = self
            .memos
            .iter()
            .position(|m| matches!(m, Some(m) if m.root == root && m.start == start));
        if let Some(m) = known.and_then(|i| self.memos[i]) {
            if let Some(bytes) = estimate(&m, members, rss_sum, now) {
                return Ok(TreeResident {
                    bytes,
                    truncated,
                    estimated: true,
                    ..m.figure
                });
            }
        }
        let mut figure = TreeResident {
            truncated,
            ..TreeResident::default()
        };
        for &pid in &buf[..n] {
            if let Ok(r) = resident(pid) {
                figure.bytes = figure.bytes.saturating_add(r.bytes());
                figure.counted += 1;
                figure.rss |= matches!(r, Resident::Rss(_));
            }
        }
        let memo = Memo {
            root,
            start,
            members,
            rss: rss_sum,
            figure,
            at: now,
        };
        let slot = known
            .or_else(|| self.memos.iter().position(Option::is_none))
            .unwrap_or_else(|| self.oldest());
        self.memos[slot] = Some(memo);
        Ok(figure)
    }

    /// How many trees it remembers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.memos.iter().filter(|m| m.is_some()).count()
    }

    /// Whether it remembers no tree.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn oldest(&self) -> usize {
        let mut oldest = 0;
        for (i, m) in self.memos.iter().enumerate() {
            if let (Some(m), Some(o)) = (m, &self.memos[oldest]) {
                if m.at < o.at {
                    oldest = i;
                }
            }
        }
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memo(at: Instant) -> Memo {
        Memo {
            root: 10,
            start: 99,
            members: 3,
            rss: 100 << 20,
            figure: TreeResident {
                bytes: 90 << 20,
                counted: 3,
                ..TreeResident::default()
            },
            at,
        }
    }

    #[test]
    fn an_unchanged_tree_keeps_its_pss_sum() {
        let t = Instant::now();
        assert_eq!(estimate(&memo(t), 3, 100 << 20, t), Some(90 << 20));
    }

    #[test]
    fn rss_moves_within_the_tolerance_move_the_figure_alike() {
        let t = Instant::now();
        let m = memo(t);
        assert_eq!(
            estimate(&m, 3, (100 << 20) + PSS_TOLERANCE, t),
            Some((90 << 20) + PSS_TOLERANCE)
        );
        assert_eq!(
            estimate(&m, 3, (100 << 20) - 4096, t),
            Some((90 << 20) - 4096)
        );
        // A figure never goes below zero.
        let small = Memo {
            figure: TreeResident {
                bytes: 4096,
                ..m.figure
            },
            rss: 1 << 20,
            ..m
        };
        assert_eq!(estimate(&small, 3, 0, t), Some(0));
    }

    #[test]
    fn growth_past_the_tolerance_a_new_member_or_age_read_pss_again() {
        let t = Instant::now();
        let m = memo(t);
        assert_eq!(estimate(&m, 3, (100 << 20) + PSS_TOLERANCE + 1, t), None);
        assert_eq!(estimate(&m, 3, (100 << 20) - PSS_TOLERANCE - 1, t), None);
        assert_eq!(estimate(&m, 4, 100 << 20, t), None, "a fork");
        assert_eq!(estimate(&m, 2, 100 << 20, t), None, "an exit");
        assert_eq!(estimate(&m, 3, 100 << 20, t + PSS_MAX_AGE), None);
        assert!(estimate(&m, 3, 100 << 20, t + PSS_MAX_AGE - Duration::from_millis(1)).is_some());
    }

    #[test]
    fn a_full_meter_makes_room_with_the_oldest() {
        let t = Instant::now();
        let mut meter = Meter::<2>::new();
        meter.memos[0] = Some(Memo {
            root: 1,
            ..memo(t + Duration::from_secs(2))
        });
        meter.memos[1] = Some(Memo { root: 2, ..memo(t) });
        assert_eq!(meter.oldest(), 1);
        assert_eq!(meter.len(), 2);
        assert!(Meter::<4>::new().is_empty());
    }
}
