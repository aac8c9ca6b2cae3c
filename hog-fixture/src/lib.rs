//! hog-fixture: a deterministic memory hog for oomd's host integration tests and its QEMU
//! boot selftest.
//!
//! It grows a bounded arena in fixed chunks, writes every page of each chunk so the kernel
//! really backs and charges it, publishes a memstat frame after each chunk through
//! [`memstat::Publisher`], and stops by itself: at `--max` it never grows further, after
//! `--linger-ms` it exits 0, and after `--lifetime-ms` it exits 0 whatever happens, so a
//! broken watchdog never wedges the machine. A run is a function of its arguments: the same
//! arguments give the same chunks, in the same order, at the same offsets from the start.
//!
//! # What it is not
//!
//! - **Not a benchmark** and not a stress tool: sizes and intervals are chosen for tests, and
//!   timings are only as exact as the scheduler makes them.
//! - **Not a measure of memory.** What it publishes are **allocator bytes**: the binary's
//!   global allocator is [`memstat::CountingAlloc`], and honest mode publishes exactly what
//!   it counts (`Publisher::publish_from`): the arena plus the program's few other heap
//!   blocks (the parsed arguments, about 600 bytes, and the chunk list, 24 bytes per chunk
//!   slot; measured by the integration tests).
//!   That is not the kernel's resident set size, which also holds the binary, the stack and
//!   the allocator's own overhead. Under mode publishes less than that on purpose.
//!
//! # Modes (`--mode`)
//!
//! | mode | publishes | what it tests in oomd |
//! |---|---|---|
//! | `honest` | the allocator's figures | the ordinary limit and kill path |
//! | `under` | the allocator's figures divided by `--under-factor` (16) | reconciliation with the kernel's figure |
//! | `spoof` | honest figures, `claimed_subject` = `SubjectId::from_name(--spoof-as)` | authenticated input: the claim is rejected and counted |
//! | `flood` | `--flood-frames` (10000) frames per chunk, as fast as it can (a publisher with `min_interval` 0 and `quantum` 0; frames the socket cannot take are dropped and counted by the publisher) | per-sender rate limits, bounded queues |
//! | `forker` | honest figures; spawns `--children` (2) children holding `--child-bytes` (8 MiB) each, which with `--child-escape setsid` or `double-fork` leave its process group and session | termination ends the whole service, however its processes escaped; the kernel figure counts them all |
//!
//! Outside flood mode the publisher's `quantum` is 1 byte, so every growth is sent at once:
//! one frame at the start and one per chunk or injection.
//!
//! With `--publish-on-growth` (honest mode) the hog's loop never calls the publisher: the
//! global allocator ([`HogAlloc`], a `CountingAlloc` with `memstat::publish::GrowthPublisher`
//! as its growth signal) wakes a publishing thread each time the live bytes grow by the
//! default quantum (64 KiB), at most one frame per 13 ms with the newest figures, the way a
//! service stuck in an allocation loop would still be
//! seen. The start line then says `publisher=growth-thread`.
//!
//! # The publisher
//!
//! Built by `Publisher::from_env`: `OOMD_MEMSTAT_FD` (an inherited, connected
//! `SOCK_SEQPACKET` fd) or `OOMD_MEMSTAT_SOCKET` (a path). With neither set, the hog warns on
//! stderr and runs without publishing, so it can be run by hand; `--require-publisher` makes
//! that an error (exit 2), and `--no-publish` never publishes at all (the silent service).
//! A set but unusable variable is always an error.
//!
//! # Forker children
//!
//! Each child is this executable re-run with a hidden `--child` flag. It holds
//! `--child-bytes` touched bytes and publishes nothing (the memstat variables are removed from
//! its environment and the adopted memstat fd is close-on-exec); with `--ignore-sigterm` it
//! ignores SIGTERM too. Its lifetime ends when the hog's does. Where it lives is
//! `--child-escape`:
//!
//! - `none` (the default): in the hog's process group and session, so ending the group ends
//!   them all.
//! - `setsid`: it calls `setsid()` first: a session and a process group of its own, still the
//!   hog's child. Ending the hog's group leaves it running.
//! - `double-fork`: a middle process calls `setsid()`, starts the holder, prints its pid and
//!   exits, so the holder is an orphan (adopted by the nearest child subreaper above, or by
//!   init) in a session and group that are neither the hog's. The hog logs the holders'
//!   pids, not the middles'.
//!
//! When the hog exits by itself it kills and reaps its children first (the double-fork
//! holders are not its children: they end by their lifetime). A child does **not** exit when
//! only the hog is killed: an authority that ends the leader but not its group (or the group
//! but not what escaped it) leaves children running until their lifetime ends, which is
//! exactly what a test of that authority must see.
//!
//! # Control socket (`--control PATH`)
//!
//! A Unix **datagram** socket bound at `PATH` (a stale socket there is replaced; the path is
//! removed at a normal exit). Each datagram `grow <SIZE>` grows the arena by exactly that many
//! bytes, in chunks, capped at `--max`, then publishes; see [`control`]. With
//! `--grow-on-inject` nothing grows by timer: this is how oomd's test-only inject drives a hog
//! without fabricating frames. While waiting for commands, `--linger-ms` counts from the last
//! one.
//!
//! # Log and exit status
//!
//! One line per milestone on stderr, each written with a single `write`:
//! `hog-fixture[<pid>]: start …`, `initial …`, `chunk added=<n> held=<n> alloc=<n>`,
//! `inject grow=<n> added=<n> held=<n> alloc=<n>`, `max reached held=<n>`,
//! `children spawned n=<n> bytes_each=<n> pids=<p,..> escape=<how>`,
//! `child of=<ppid> holding=<n> lifetime_ms=<n> escape=<how> sid=<n> pgrp=<n>`, `flood offered=<n> sent=<n> dropped=<n> …`,
//! `SIGTERM received from pid=<n>, ignored`, `exit reason=linger|idle|lifetime …`,
//! and with `--mark-bytes` (below) `crossed mark=<n> held=<n> charge=<n> at_ns=<t> grow_ns=<d>`.
//! Exit status 0 when it stopped by itself, 2 on any error (with an `error: …` line).
//! Without `--ignore-sigterm`, SIGTERM ends it the default way (killed by the signal).
//!
//! # Marking a crossing (`--mark-bytes N`)
//!
//! For measurements (`scripts/bench-overshoot.sh`), not for oomd's tests: the hog logs one
//! `crossed mark=<N> held=<h> charge=<c> at_ns=<t> grow_ns=<d>` line the first time its
//! *charge* reaches `N` bytes, where the charge is what `--mark-base FILE` said before the
//! chunk (a byte count: the hog's cgroup's `memory.current`), or the arena's held bytes
//! without it, plus the bytes of the chunk written since. The chunk is written up to that
//! byte, the clock read, the line written, and then the rest of the chunk, so the mark is
//! exact to the byte of the arena (and to the kernel's charging granularity for the charge).
//! `at_ns` is `CLOCK_MONOTONIC` in nanoseconds (comparable with any other process's reading
//! on the same machine), `grow_ns` the time since the hog started, `held` the arena bytes
//! written at the mark.
//!
//! # Library layout
//!
//! The binary is a thin shell over [`main`]. The decisions live in pure, tested pieces: sizes
//! ([`parse_size`]), the [`Arena`], the [`Hog`] schedule (elapsed time passed in, no clock
//! read), the per-mode [`Policy`], and the [`control`] protocol.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod arena;
pub mod bounds;
mod cli;
pub mod control;
mod hog;
mod log;
mod mark;
mod report;
mod run;
mod size;

pub use arena::{AllocError, Arena, Probe};
pub use cli::{Args, Escape, Mode, UsageError};
pub use hog::{Action, Bounds, ExitReason, Grew, Growth, Hog, State};
pub use log::Logger;
pub use report::{Policy, Reported, Reporter};
pub use run::{main, HogAlloc, RunError, EXIT_ERROR};
pub use size::{parse_size, SizeError};
