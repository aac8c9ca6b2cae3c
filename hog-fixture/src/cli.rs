//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::bounds::{MAX_CHILDREN, MAX_FLOOD_FRAMES};
use crate::hog::{Bounds, Growth};
use crate::size::{parse_size, SizeError};

/// How the hog reports (or misreports) what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Mode {
    /// Publishes exactly what its allocator holds.
    Honest,
    /// Publishes what its allocator holds divided by `--under-factor`.
    Under,
    /// Publishes honest figures claiming to be `--spoof-as` (another subject).
    Spoof,
    /// Publishes `--flood-frames` frames per chunk, as fast as it can.
    Flood,
    /// Spawns `--children` children that hold `--child-bytes` each and publish nothing;
    /// publishes its own figures honestly.
    Forker,
}

impl Mode {
    /// The name used on the command line and in the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Under => "under",
            Self::Spoof => "spoof",
            Self::Flood => "flood",
            Self::Forker => "forker",
        }
    }
}

/// What the hog does when oomd asks it to reclaim (`--reclaim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Reclaim {
    /// Never reads oomd's requests (a service that does not know the contract).
    Ignore,
    /// Frees arena chunks until its allocator holds at most the target, publishes, then
    /// acknowledges.
    Cooperative,
    /// Acknowledges and frees nothing.
    Stubborn,
    /// Acknowledges, and from then on reports at most the target while keeping every byte:
    /// caught only by the kernel figure, where oomd enforces it.
    Liar,
}

impl Reclaim {
    /// The name used on the command line and in the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "ignore",
            Self::Cooperative => "cooperative",
            Self::Stubborn => "stubborn",
            Self::Liar => "liar",
        }
    }
}

/// How forker children escape the hog's process group and session (`--child-escape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Escape {
    /// They stay in the hog's process group and session.
    None,
    /// Each calls `setsid()`: a session and a process group of its own, still the hog's child.
    Setsid,
    /// Each is started by a middle process that calls `setsid()`, starts it and exits: the
    /// holder is orphaned (adopted by the nearest child subreaper, or init), in the middle's
    /// session and group, neither the hog's.
    DoubleFork,
}

impl Escape {
    /// The name used on the command line and in the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Setsid => "setsid",
            Self::DoubleFork => "double-fork",
        }
    }
}

fn size(input: &str) -> Result<u64, SizeError> {
    parse_size(input)
}

/// A deterministic memory hog for oomd's tests: grows a bounded arena in chunks, touching
/// every page, publishes memstat (allocator bytes) after each chunk, and exits 0 by itself.
///
/// Sizes accept plain bytes or the suffixes K, KiB, M, MiB, G, GiB (all powers of 1024).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "hog-fixture",
    version,
    after_help = "Examples:\n  hog-fixture --chunk 1MiB --interval-ms 10 --max 64MiB          grow to 64 MiB, then linger\n  hog-fixture --mode under --chunk 1MiB --max 32MiB              report a sixteenth of it\n  hog-fixture --publish-on-growth --chunk 4MiB --interval-ms 1   report from the allocator"
)]
#[non_exhaustive]
pub struct Args {
    /// Bytes added per chunk.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = size)]
    pub chunk: u64,
    /// Hard cap on the arena: never exceeded, whatever the growth or the commands.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = size)]
    pub max: u64,
    /// Grow to this at once at start (capped at --max).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = size)]
    pub start: u64,
    /// Milliseconds between two chunks (timer growth).
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub interval_ms: u64,
    /// What to publish.
    #[arg(long, value_enum, default_value_t = Mode::Honest)]
    pub mode: Mode,
    /// Under mode: publish the allocator's figures divided by this.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub under_factor: u64,
    /// Spoof mode: claim to be the service of this name (SubjectId::from_name).
    #[arg(long, value_name = "SERVICE", required_if_eq("mode", "spoof"))]
    pub spoof_as: Option<String>,
    /// Flood mode: frames offered per chunk, as fast as possible.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_FLOOD_FRAMES))]
    pub flood_frames: u64,
    /// Forker mode: children to spawn.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CHILDREN)))]
    pub children: u32,
    /// Forker mode: touched bytes each child holds.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = size)]
    pub child_bytes: u64,
    /// Forker mode: how the children leave the hog's process group and session.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Escape::None)]
    pub child_escape: Escape,
    /// What to do with oomd's reclaim requests, which arrive on the memstat channel.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Reclaim::Ignore)]
    pub reclaim: Reclaim,
    /// Do not grow by timer: grow only on `grow <bytes>` messages on --control.
    #[arg(long, requires = "control")]
    pub grow_on_inject: bool,
    /// Bind a Unix datagram socket here; each message `grow <SIZE>` grows the arena by that
    /// much (capped at --max) and publishes.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// After reaching --max (or, with --grow-on-inject, after the last command), stay alive
    /// this long, then exit 0.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub linger_ms: u64,
    /// Exit 0 after this long whatever happens.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    pub lifetime_ms: u64,
    /// Ignore SIGTERM (log it and go on), so that only a forced kill ends the hog.
    #[arg(long)]
    pub ignore_sigterm: bool,
    /// Never publish (the silent service).
    #[arg(long)]
    pub no_publish: bool,
    /// Never call the publisher from the hog's loop: the allocator publishes by itself
    /// (`memstat::publish::GrowthPublisher`), from a thread it wakes each time the live bytes
    /// grow by the publisher's quantum (64 KiB), plus the heartbeat. Honest mode only.
    #[arg(long, conflicts_with = "no_publish")]
    pub publish_on_growth: bool,
    /// Exit 2 if neither OOMD_MEMSTAT_FD nor OOMD_MEMSTAT_SOCKET is set (instead of warning
    /// and running without publishing).
    #[arg(long, conflicts_with = "no_publish")]
    pub require_publisher: bool,
    /// Log `crossed mark=<N> … at_ns=<CLOCK_MONOTONIC ns>` once, the first time the hog's
    /// charge reaches this many bytes (the arena's written bytes, or --mark-base's figure),
    /// to the byte: for measuring how long a watchdog takes from a crossing to the exit.
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub mark_bytes: Option<u64>,
    /// With --mark-bytes: a file holding a byte count (the hog's cgroup's memory.current),
    /// read before each chunk; the charge is what it says plus the chunk's bytes written since.
    #[arg(long, value_name = "FILE", requires = "mark_bytes")]
    pub mark_base: Option<PathBuf>,
    /// Internal: run as a forker child (hold --child-bytes, publish nothing, live
    /// --lifetime-ms).
    #[arg(long, hide = true)]
    pub child: bool,
}

/// A combination of arguments that clap's rules cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Args {
    /// Checks what clap cannot: flags that only mean something in one mode.
    pub fn check(&self) -> Result<(), UsageError> {
        if self.spoof_as.is_some() && self.mode != Mode::Spoof {
            return Err(UsageError(format!(
                "--spoof-as only applies to --mode spoof (mode is {})",
                self.mode.as_str()
            )));
        }
        if self.child_escape != Escape::None && self.mode != Mode::Forker && !self.child {
            return Err(UsageError(format!(
                "--child-escape only applies to --mode forker (mode is {})",
                self.mode.as_str()
            )));
        }
        if self.publish_on_growth && self.mode != Mode::Honest {
            return Err(UsageError(format!(
                "--publish-on-growth only applies to --mode honest (mode is {})",
                self.mode.as_str()
            )));
        }
        if self.reclaim != Reclaim::Ignore && (self.no_publish || self.publish_on_growth) {
            return Err(UsageError(format!(
                "--reclaim {} needs the hog's own publisher: not with --no-publish or \
                 --publish-on-growth",
                self.reclaim.as_str()
            )));
        }
        if self.reclaim != Reclaim::Ignore && self.mode != Mode::Honest {
            return Err(UsageError(format!(
                "--reclaim {} only applies to --mode honest (mode is {})",
                self.reclaim.as_str(),
                self.mode.as_str()
            )));
        }
        if self.no_publish && matches!(self.mode, Mode::Under | Mode::Spoof | Mode::Flood) {
            return Err(UsageError(format!(
                "--no-publish makes --mode {} meaningless: it is about what is published",
                self.mode.as_str()
            )));
        }
        Ok(())
    }

    /// How the arena grows.
    #[must_use]
    pub fn growth(&self) -> Growth {
        if self.grow_on_inject {
            Growth::Inject
        } else {
            Growth::Timer {
                interval: Duration::from_millis(self.interval_ms),
            }
        }
    }

    /// When the hog stops by itself.
    #[must_use]
    pub fn bounds(&self) -> Bounds {
        Bounds {
            linger: Duration::from_millis(self.linger_ms),
            lifetime: Duration::from_millis(self.lifetime_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hog-fixture").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.chunk, args.max, args.start), (1 << 20, 64 << 20, 0));
        assert_eq!(
            (args.interval_ms, args.linger_ms, args.lifetime_ms),
            (20, 30_000, 120_000)
        );
        assert_eq!(args.mode, Mode::Honest);
        assert_eq!((args.under_factor, args.flood_frames), (16, 10_000));
        assert_eq!((args.children, args.child_bytes), (2, 8 << 20));
        assert_eq!(args.child_escape, Escape::None);
        assert!(!args.grow_on_inject && !args.ignore_sigterm && !args.no_publish);
        assert!(!args.child && !args.require_publisher);
        assert_eq!((args.mark_bytes, args.mark_base.as_deref()), (None, None));
        assert_eq!(args.reclaim, Reclaim::Ignore);
        assert_eq!(args.check(), Ok(()));
    }

    #[test]
    fn reclaim_modes_need_the_hogs_own_honest_publisher() {
        for how in ["cooperative", "stubborn", "liar"] {
            assert_eq!(parse(&["--reclaim", how]).unwrap().check(), Ok(()), "{how}");
            for other in [
                &["--no-publish"][..],
                &["--publish-on-growth"],
                &["--mode", "under"],
            ] {
                let args = parse(&[&["--reclaim", how][..], other].concat()).unwrap();
                assert!(args.check().is_err(), "{how} {other:?}");
            }
        }
        assert!(parse(&["--reclaim", "maybe"]).is_err());
    }

    #[test]
    fn sizes_take_suffixes_and_bad_sizes_are_usage_errors() {
        let args = parse(&["--chunk", "64KiB", "--max", "1M", "--start", "4096"]).unwrap();
        assert_eq!((args.chunk, args.max, args.start), (65536, 1 << 20, 4096));
        let err = parse(&["--max", "1MB"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown suffix \"MB\""), "{err}");
    }

    #[test]
    fn spoof_needs_a_name_and_the_name_needs_spoof() {
        assert!(parse(&["--mode", "spoof"]).is_err());
        let args = parse(&["--mode", "spoof", "--spoof-as", "samgrd"]).unwrap();
        assert_eq!(args.check(), Ok(()));
        let args = parse(&["--spoof-as", "samgrd"]).unwrap();
        assert!(args.check().is_err());
    }

    #[test]
    fn counts_are_bounded() {
        assert!(parse(&["--under-factor", "0"]).is_err());
        assert!(parse(&["--children", "0"]).is_err());
        assert!(parse(&["--children", "65"]).is_err());
        assert!(parse(&["--flood-frames", "1000001"]).is_err());
        assert!(parse(&["--children", "64", "--flood-frames", "1000000"]).is_ok());
    }

    #[test]
    fn inject_growth_needs_a_control_socket() {
        assert!(parse(&["--grow-on-inject"]).is_err());
        let args = parse(&["--grow-on-inject", "--control", "/tmp/x"]).unwrap();
        assert_eq!(args.growth(), Growth::Inject);
    }

    #[test]
    fn silence_excludes_the_modes_that_are_about_publishing() {
        for mode in ["under", "flood"] {
            let args = parse(&["--no-publish", "--mode", mode]).unwrap();
            assert!(args.check().is_err(), "{mode}");
        }
        for mode in ["honest", "forker"] {
            let args = parse(&["--no-publish", "--mode", mode]).unwrap();
            assert_eq!(args.check(), Ok(()), "{mode}");
        }
        assert!(parse(&["--no-publish", "--require-publisher"]).is_err());
    }

    #[test]
    fn a_mark_base_needs_a_mark() {
        assert!(parse(&["--mark-base", "/sys/fs/cgroup/x/memory.current"]).is_err());
        let args = parse(&["--mark-bytes", "64MiB", "--mark-base", "/tmp/x"]).unwrap();
        assert_eq!(args.mark_bytes, Some(64 << 20));
        assert_eq!(args.mark_base, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn escaping_children_need_forker_mode() {
        for how in ["setsid", "double-fork"] {
            let args = parse(&["--mode", "forker", "--child-escape", how]).unwrap();
            assert_eq!(args.check(), Ok(()), "{how}");
            let args = parse(&["--child-escape", how]).unwrap();
            let err = args.check().unwrap_err();
            assert!(
                err.0
                    .contains("--child-escape only applies to --mode forker"),
                "{err}"
            );
        }
        assert!(parse(&["--child-escape", "fork"]).is_err());
    }
}
