//! [`Meter`]: the resident memory of process trees, read every tick at the cost of `statm`.
//!
//! `Pss:` of `smaps_rollup` is what counts shared pages once, but the kernel computes it by
//! walking every page of the process: about 15 µs per resident MiB (`docs/perf.md`), 15 ms a
//! tick for a service of a GiB. `statm` costs the same whatever the size (about 6 µs) but
//! counts a page shared by *n* processes *n* times (a fork shares every page at once).
//!
//! A meter reads both, and the expensive one only when it may have changed: it remembers, per
//! tree, the PSS sum of its last full read and the RSS sum and member count read with it. At
//! each [`Meter::read`] it walks the tree and sums the resident pages; if the members are as
//! many as then, the RSS sum moved by at most [`PSS_TOLERANCE`] and the full read is younger than
//! [`PSS_MAX_AGE`], the figure is the remembered PSS sum moved by the RSS change (exact for
//! private pages, which move both sums alike); otherwise PSS is read again for every member.
//! A fork (a new member) or growth past the tolerance is therefore always read in full at
//! once; what the estimate can miss is a change of *sharing* without a change of RSS (another
//! process outside the tree mapping or dropping pages the tree shares), for at most
//! [`PSS_MAX_AGE`].
//!
//! The walk and the RSS sum go through files kept open between reads where they can
//! (`kept.rs`): `statm`, `task` (its link count tells the threads) and the main thread's
//! `children` of each process, one system call each, instead of opening `task/`, `children`
//! and `statm` by path.

use core::time::Duration;
use std::time::Instant;

use crate::kept::{Budget, Kept, KEPT_FILES};
use crate::mem::{resident, rss, Resident, TreeResident};
use crate::{Error, Method, Pid, Tree};

/// How far the RSS sum of a tree may move from the one read with its last PSS sum before PSS
/// is read again: one MiB (a hog's chunk, or a real service's slow drift, re-reads at once).
pub const PSS_TOLERANCE: u64 = 1 << 20;

/// How long a tree's last PSS sum is used at most, whatever its RSS does: what bounds how late
/// a change of sharing alone (no member and no RSS change) is seen. Ten seconds: the page walk
/// of a full read was a quarter of the idle oomd service's CPU time at one second
/// (`docs/perf.md`), and a sharing change alone moves a tree's figure by what it shares.
pub const PSS_MAX_AGE: Duration = Duration::from_secs(10);

/// How long a tree may go unread before its kept files are closed when another tree needs
/// room in the budget (a service that ended is not read again).
const UNREAD: Duration = Duration::from_secs(2);

/// A tree's last full read: its PSS sum, and the member count and RSS sum read with it.
#[derive(Debug, Clone, Copy)]
struct Full {
    members: usize,
    rss: u64,
    figure: TreeResident,
    at: Instant,
}

#[derive(Debug)]
struct Memo {
    root: Pid,
    /// The root's start time: a root pid reused by another process is another tree (when
    /// the root's `stat` is not kept open; a kept one tells by itself).
    start: u64,
    full: Option<Full>,
    /// When it was last read.
    read_at: Instant,
    kept: Kept,
}

/// The figure of a tree whose last full read is `m`, now that it has `members` members with
/// `rss` bytes: the remembered PSS sum moved by the RSS change, or `None` if PSS must be read
/// again (another member count, the RSS sum moved past the tolerance, or the read is too old).
fn estimate(m: &Full, members: usize, rss: u64, now: Instant) -> Option<u64> {
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
///
/// With [`Method::Children`], it also keeps the `/proc` files of each tree open between
/// reads and reads them again with one system call each: the root's and up to
/// [`MEMBERS_KEPT`](crate::MEMBERS_KEPT) members' `task` (its thread count), main-thread
/// `children` and (members) `statm`, within a budget of open files for the whole meter
/// ([`KEPT_FILES`], or [`with_kept_files`](Meter::with_kept_files)). A process past either
/// bound is read by path at each read, as without kept files. The files of a tree go when it
/// is forgotten ([`forget`](Meter::forget)), when its root is gone, when it makes room in the
/// table, and when another tree needs room in the budget and it has not been read for two
/// seconds.
#[derive(Debug)]
pub struct Meter<const N: usize> {
    memos: [Option<Memo>; N],
    budget: Budget,
    /// No tree can have gone unread long enough to give its files back before this.
    reclaim_at: Option<Instant>,
}

impl<const N: usize> Default for Meter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Meter<N> {
    const NON_EMPTY: () = assert!(N > 0, "a meter remembers at least one tree");
    const NO_MEMO: Option<Memo> = None;

    /// An empty meter that keeps up to [`KEPT_FILES`] files open.
    #[must_use]
    pub const fn new() -> Self {
        Self::with_kept_files(KEPT_FILES)
    }

    /// An empty meter that keeps up to `files` files of `/proc` open (0: none, every read by
    /// path).
    #[must_use]
    pub const fn with_kept_files(files: usize) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::NON_EMPTY;
        Meter {
            memos: [Self::NO_MEMO; N],
            budget: Budget {
                used: 0,
                max: files,
            },
            reclaim_at: None,
        }
    }

    /// The resident memory of the descendants of `root` (not of `root` itself), as
    /// [`mem::tree_resident`](crate::mem::tree_resident) gives it, or estimated from its last
    /// full read as the module docs say ([`TreeResident::estimated`]). `now` is the caller's
    /// clock (monotonic). Fails if `root` is gone or the walk fails. `buf` holds the members
    /// read afterwards (`buf[..figure.counted]` on a full read).
    pub fn read(
        &mut self,
        tree: &Tree,
        root: Pid,
        buf: &mut [Pid],
        now: Instant,
    ) -> Result<TreeResident, Error> {
        if self.budget.is_full() && self.reclaim_at.is_none_or(|at| now >= at) {
            self.reclaim(root, now);
        }
        let children = tree.method() == Method::Children;
        let (slot, root_threads) = self.memo(root, children, now)?;
        let Some(memo) = &mut self.memos[slot] else {
            return Err(Error::Malformed);
        };
        memo.read_at = now;
        let (n, truncated, members, rss_sum) = match tree.method() {
            Method::Children => {
                let w = memo.kept.walk(root, root_threads, buf, &mut self.budget)?;
                let page = rustix::param::page_size() as u64;
                (w.n, w.truncated, w.n, w.rss_pages.saturating_mul(page))
            }
            Method::Scan => by_path(tree, root, buf)?,
        };
        if let Some(m) = &memo.full {
            if let Some(bytes) = estimate(m, members, rss_sum, now) {
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
        let mut counted = 0;
        for i in 0..n {
            let pid = buf[i];
            if let Ok(r) = resident(pid) {
                // Read by path: it counts if its kept files say it was still there after.
                if !memo.kept.still_there(pid) {
                    continue;
                }
                figure.bytes = figure.bytes.saturating_add(r.bytes());
                figure.counted += 1;
                figure.rss |= matches!(r, Resident::Rss(_));
                buf[counted] = pid;
                counted += 1;
            }
        }
        memo.full = Some(Full {
            members,
            rss: rss_sum,
            figure,
            at: now,
        });
        Ok(figure)
    }

    /// The slot of `root`'s memo and the root's task count, read through its kept `task`
    /// (which names the process it was opened for) or by path (`stat`, checked against the
    /// remembered start time); a memo about another process with the same pid is forgotten,
    /// and a new one takes an empty slot or the least recently read one. Fails if `root` is
    /// gone.
    fn memo(&mut self, root: Pid, keep: bool, now: Instant) -> Result<(usize, u64), Error> {
        let known = self
            .memos
            .iter()
            .position(|m| matches!(m, Some(m) if m.root == root));
        if let Some(i) = known {
            if let Some(m) = &mut self.memos[i] {
                match m.kept.root_threads() {
                    Some(Ok(0)) => {}
                    Some(Ok(threads)) => return Ok((i, threads)),
                    Some(Err(e)) => return Err(e),
                    None => {
                        let stat = m.kept.open_root(root, keep, &mut self.budget)?;
                        if stat.starttime == m.start {
                            return Ok((i, stat.num_threads));
                        }
                    }
                }
            }
            // The process it was about is gone; another may have the root's pid now.
            self.forget(root);
        }
        let mut kept = Kept::EMPTY;
        let stat = kept.open_root(root, keep, &mut self.budget)?;
        let slot = self
            .memos
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| self.least_recent());
        if let Some(mut old) = self.memos[slot].take() {
            old.kept.release(&mut self.budget);
        }
        self.memos[slot] = Some(Memo {
            root,
            start: stat.starttime,
            full: None,
            read_at: now,
            kept,
        });
        Ok((slot, stat.num_threads))
    }

    /// Forgets the tree of `root` and closes its kept files (its service is gone: a later
    /// read of the same pid starts afresh).
    pub fn forget(&mut self, root: Pid) {
        for slot in &mut self.memos {
            if matches!(slot, Some(m) if m.root == root) {
                if let Some(mut m) = slot.take() {
                    m.kept.release(&mut self.budget);
                }
            }
        }
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

    /// How many files of `/proc` it keeps open.
    #[must_use]
    pub fn kept_files(&self) -> usize {
        debug_assert_eq!(
            self.budget.used,
            self.memos
                .iter()
                .flatten()
                .map(|m| m.kept.files())
                .sum::<usize>()
        );
        self.budget.used
    }

    /// Closes the kept files of every tree other than `root`'s unread for [`UNREAD`], and
    /// notes when the next one may be due.
    fn reclaim(&mut self, root: Pid, now: Instant) {
        let mut next: Option<Instant> = None;
        for m in self.memos.iter_mut().flatten() {
            if m.root == root || m.kept.files() == 0 {
                continue;
            }
            let due = m.read_at + UNREAD;
            if due <= now {
                m.kept.release(&mut self.budget);
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        // Nothing to give back until the first due, or until a read of this tree.
        self.reclaim_at = Some(next.unwrap_or(now + UNREAD));
    }

    fn least_recent(&self) -> usize {
        let mut oldest = 0;
        for (i, m) in self.memos.iter().enumerate() {
            if let (Some(m), Some(o)) = (m, &self.memos[oldest]) {
                if m.read_at < o.read_at {
                    oldest = i;
                }
            }
        }
        oldest
    }
}

/// The walk by `tree` and a `statm` per member, every file by path: `(found, truncated,
/// members read, their RSS sum)`.
fn by_path(tree: &Tree, root: Pid, buf: &mut [Pid]) -> Result<(usize, bool, usize, u64), Error> {
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
    Ok((n, truncated, members, rss_sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memo(at: Instant) -> Full {
        Full {
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
        let small = Full {
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
    fn a_full_meter_makes_room_with_the_least_recently_read() {
        let t = Instant::now();
        let mut meter = Meter::<2>::new();
        let memo = |root, read_at| {
            Some(Memo {
                root,
                start: 99,
                full: None,
                read_at,
                kept: Kept::EMPTY,
            })
        };
        meter.memos[0] = memo(1, t + Duration::from_secs(2));
        meter.memos[1] = memo(2, t);
        assert_eq!(meter.least_recent(), 1);
        assert_eq!(meter.len(), 2);
        meter.forget(2);
        assert_eq!(meter.len(), 1);
        assert!(Meter::<4>::new().is_empty());
        assert_eq!(Meter::<4>::new().kept_files(), 0);
    }
}
