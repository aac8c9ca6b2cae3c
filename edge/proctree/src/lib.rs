//! proctree: the Linux process tree, read from `/proc` without allocating.
//!
//! # What it is
//!
//! The one place in the workspace that knows how `/proc` describes processes:
//!
//! - [`Stat`]: the fields of `/proc/<pid>/stat` the edge needs (state, parent, process group,
//!   session, start time), parsed from after the **last** `)` ([`parse_stat`]), because the
//!   command name in parentheses may hold spaces and parentheses of its own.
//! - [`Tree`]: who is whose child. [`Tree::children`] and [`Tree::descendants`] fill a
//!   caller's buffer of pids; [`scan`] visits every process once. Children are found through
//!   `/proc/<pid>/task/<tid>/children` of every thread when the kernel offers that file
//!   (`CONFIG_PROC_CHILDREN`), else by a scan of all of `/proc` by parent ([`Method`]).
//! - [`mem`]: a process's resident memory, `Pss:` of `/proc/<pid>/smaps_rollup` (shared pages
//!   divided among their sharers), or the resident pages of `/proc/<pid>/statm` where
//!   `smaps_rollup` does not exist or may not be read; and a [`Meter`] that reads the PSS of
//!   a tree again only when its RSS, or its membership, has moved (PSS costs a walk of every
//!   page; `statm` does not). With `children` files, the meter keeps each tree's `/proc`
//!   files open between reads (`stat` and the main thread's `children` of the root and of up
//!   to [`MEMBERS_KEPT`] members, within [`KEPT_FILES`] for the meter) and reads them again
//!   with one `pread` each; a kept file names its process, not its pid, so a reaped member
//!   reads as gone and a reused pid is never taken for it.
//!
//! Nothing here allocates (kept files live in the meter's fixed table): paths are built on the
//! stack, directories are read with `getdents64` into a stack buffer ([`rustix::fs::RawDir`]),
//! files into stack buffers, and results go into slices the caller provides. A buffer too
//! small is an error ([`Error::Overflow`]) that leaves a valid prefix behind, never a silent
//! truncation.
//! `tests/no_alloc.rs` proves it with a counting allocator.
//!
//! # What it is not
//!
//! - **Not a snapshot.** `/proc` is read file by file while processes fork, exit and are
//!   reparented; a walk can miss a process born during it, or list one that has just died,
//!   and a pid read from `/proc` may name another process by the time it is used. A caller
//!   that acts on a pid must pin it first (a pidfd) and check again after the pin that it is
//!   still what it was (execd does: `execd/src/tree.rs`); a caller that must not miss a late
//!   fork walks again until two walks agree.
//! - **Not a signaller** or a process manager: it only reads.
//! - **Not portable**: Linux `/proc` only. Not a container or pid-namespace tool either: pids
//!   are those of the `/proc` mounted at `/proc`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod kept;
pub mod mem;
mod meter;
mod path;
mod stat;
mod walk;

pub use kept::{KEPT_FILES, MEMBERS_KEPT};
pub use meter::{Meter, PSS_MAX_AGE, PSS_TOLERANCE};
pub use stat::{parse_stat, read_stat, Stat, MAX_STAT_LEN};
pub use walk::{parse_pids, scan, Method, Tree};

use rustix::io::Errno;

/// A process id, as the kernel prints it in `/proc`.
pub type Pid = i32;

/// Why a read of `/proc` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The caller's buffer is full: it holds a valid prefix of the result (for
    /// [`Tree::descendants`], in breadth-first order), but there is more.
    Overflow,
    /// A file of `/proc` could not be read (`ENOENT`/`ESRCH` when the process is gone).
    Io(Errno),
    /// A file of `/proc` did not read as the kernel writes it (or did not fit the buffer).
    Malformed,
    /// This kernel does not offer what was asked ([`Method::Children`] without
    /// `CONFIG_PROC_CHILDREN`: use [`Method::Scan`]).
    Unsupported,
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::Io(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Overflow => f.write_str("buffer full: more processes than it holds"),
            Error::Io(e) => write!(f, "reading /proc: {e}"),
            Error::Malformed => f.write_str("a /proc file did not read as expected"),
            Error::Unsupported => f.write_str("this kernel has no /proc/<pid>/task/<tid>/children"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether this says the process is gone (`ENOENT` or `ESRCH`).
    #[must_use]
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Io(Errno::NOENT | Errno::SRCH))
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(errno) => errno.into(),
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}
