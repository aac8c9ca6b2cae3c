//! `Hog`: when to grow the arena and when to stop, as a pure function of the elapsed time.
//!
//! Time is a [`Duration`] since the hog started, passed in by the caller (the runtime reads
//! the clock once per turn; tests pass any value). Nothing here reads a clock or sleeps.
//!
//! Methods, in the order a driver calls them:
//! - constructor [`Hog::new`], then [`Hog::start`] once (the `--start` growth, at time 0);
//! - output [`Hog::poll`]: what to do at `now` ([`Action`]);
//! - inputs [`Hog::grow_chunk`] (when `poll` said so) and [`Hog::inject`] (a control
//!   message), each returning what happened ([`Grew`]);
//! - getters [`Hog::arena`], [`Hog::state`].
//!
//! Time that goes backwards is taken as no time passing: every comparison is against
//! deadlines computed with saturating arithmetic, so nothing panics and nothing fires early.

use std::time::Duration;

use crate::arena::{AllocError, Arena};

/// How the arena grows after the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// One chunk every `interval`, until `max`.
    Timer {
        /// Time between two chunks.
        interval: Duration,
    },
    /// Only on `grow <bytes>` control messages ([`Hog::inject`]).
    Inject,
}

/// When the hog ends by itself. Both bounds are hard: whatever happens, [`Hog::poll`]
/// answers [`Action::Exit`] once `lifetime` has elapsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// After reaching `max` (or, growing by injection, after the last injection or the start
    /// while waiting for one), stay this long, then exit.
    pub linger: Duration,
    /// Exit when this much time has passed since the start, whatever the state.
    pub lifetime: Duration,
}

/// Where the hog is, with the time each state began or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Timer growth, below `max`: the next chunk is due at `due`.
    Growing {
        /// Elapsed time at which the next chunk is due.
        due: Duration,
    },
    /// Injection growth, below `max`: waiting for a command since `since`.
    Waiting {
        /// The start, or the last injection.
        since: Duration,
    },
    /// The arena holds `max` since `since`.
    Full {
        /// When `max` was reached.
        since: Duration,
    },
}

/// Why the hog ends by itself. All of these exit with status 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// `max` was reached and `linger` passed.
    Lingered,
    /// Growing by injection, no command came for `linger`.
    Idle,
    /// `lifetime` passed.
    Lifetime,
}

impl ExitReason {
    /// The word the log uses: `linger`, `idle` or `lifetime`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lingered => "linger",
            Self::Idle => "idle",
            Self::Lifetime => "lifetime",
        }
    }
}

/// What the driver should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// A chunk is due: call [`Hog::grow_chunk`].
    GrowChunk,
    /// Nothing is due before this elapsed time; wait for it (or for a control message).
    WaitUntil(Duration),
    /// Stop and exit 0.
    Exit(ExitReason),
}

/// The result of one growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Grew {
    /// Bytes added by this growth (0 if the arena was already full).
    pub added: u64,
    /// Bytes held after it.
    pub held: u64,
    /// Whether this growth is the one that reached `max`.
    pub reached_max: bool,
}

/// The arena and the schedule that grows it. See the module documentation.
#[derive(Debug)]
pub struct Hog {
    arena: Arena,
    growth: Growth,
    bounds: Bounds,
    state: State,
}

impl Hog {
    /// A hog with an empty arena, at time 0, before [`start`](Self::start).
    #[must_use]
    pub fn new(arena: Arena, growth: Growth, bounds: Bounds) -> Self {
        let mut hog = Self {
            arena,
            growth,
            bounds,
            state: State::Waiting {
                since: Duration::ZERO,
            },
        };
        hog.settle(Duration::ZERO);
        hog
    }

    /// Grows to `start_bytes` (capped at `max`) at time 0. Under timer growth the first chunk
    /// is then due one `interval` later.
    pub fn start(&mut self, start_bytes: u64) -> Result<Grew, AllocError> {
        self.grow(Duration::ZERO, start_bytes)
    }

    /// What to do at `now`.
    pub fn poll(&self, now: Duration) -> Action {
        let lifetime = self.bounds.lifetime;
        if now >= lifetime {
            return Action::Exit(ExitReason::Lifetime);
        }
        let (deadline, reason) = match self.state {
            State::Growing { due } if now >= due => return Action::GrowChunk,
            State::Growing { due } => return Action::WaitUntil(due.min(lifetime)),
            State::Waiting { since } => {
                (since.saturating_add(self.bounds.linger), ExitReason::Idle)
            }
            State::Full { since } => (
                since.saturating_add(self.bounds.linger),
                ExitReason::Lingered,
            ),
        };
        if now >= deadline {
            Action::Exit(reason)
        } else {
            Action::WaitUntil(deadline.min(lifetime))
        }
    }

    /// Adds one chunk (at most `max - held` bytes) at `now`.
    pub fn grow_chunk(&mut self, now: Duration) -> Result<Grew, AllocError> {
        let chunk = self.arena.chunk();
        self.grow(now, chunk)
    }

    /// Adds exactly `min(bytes, max - held)` bytes at `now`, in chunks: the `grow <bytes>`
    /// control message. Growing by injection, it restarts the idle linger; growing by timer,
    /// the next chunk stays due when it was.
    pub fn inject(&mut self, now: Duration, bytes: u64) -> Result<Grew, AllocError> {
        self.grow(now, bytes)
    }

    fn grow(&mut self, now: Duration, bytes: u64) -> Result<Grew, AllocError> {
        let was_full = self.arena.is_full();
        let result = self.arena.grow_by(bytes);
        // Even after a failure part of the growth may have happened: keep the state true.
        self.settle(now);
        let added = result?;
        Ok(Grew {
            added,
            held: self.arena.held(),
            reached_max: !was_full && self.arena.is_full(),
        })
    }

    /// Moves to the state the arena and the growth mode call for after an event at `now`.
    fn settle(&mut self, now: Duration) {
        self.state = match self.state {
            State::Full { since } => State::Full { since },
            _ if self.arena.is_full() => State::Full { since: now },
            // Only timer growth is ever `Growing`; an injection between two chunks does not
            // move the next one.
            State::Growing { due } if now < due => State::Growing { due },
            _ => match self.growth {
                Growth::Timer { interval } => State::Growing {
                    due: now.saturating_add(interval),
                },
                Growth::Inject => State::Waiting { since: now },
            },
        };
    }

    /// The arena.
    #[must_use]
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// Frees the arena's newest chunk (a reclaim); returns its bytes, 0 when the arena is
    /// empty. Growth goes on as before: a hog asked to reclaim may grow again.
    pub fn free_chunk(&mut self) -> u64 {
        self.arena.pop_chunk()
    }

    /// Where the hog is.
    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bounds(linger: u64, lifetime: u64) -> Bounds {
        Bounds {
            linger: ms(linger),
            lifetime: ms(lifetime),
        }
    }

    fn timer_hog(chunk: u64, max: u64, interval: u64) -> Hog {
        Hog::new(
            Arena::new(chunk, max),
            Growth::Timer {
                interval: ms(interval),
            },
            bounds(100, 10_000),
        )
    }

    /// Drives a hog the way the runtime does, jumping straight to every deadline, and
    /// returns (time, held) after each growth and the exit.
    fn run(hog: &mut Hog) -> (Vec<(u64, u64)>, Duration, ExitReason) {
        let mut now = Duration::ZERO;
        let mut growths = Vec::new();
        loop {
            match hog.poll(now) {
                Action::GrowChunk => {
                    let grew = hog.grow_chunk(now).unwrap();
                    let at = u64::try_from(now.as_millis()).unwrap();
                    growths.push((at, grew.held));
                }
                Action::WaitUntil(t) => {
                    assert!(t > now, "a wait must move time forward");
                    now = t;
                }
                Action::Exit(reason) => return (growths, now, reason),
            }
        }
    }

    #[test]
    fn timer_growth_adds_one_chunk_per_interval_until_max_then_lingers() {
        let mut hog = timer_hog(64 * KIB, 200 * KIB, 20);
        let start = hog.start(0).unwrap();
        assert_eq!((start.added, start.held, start.reached_max), (0, 0, false));
        let (growths, end, reason) = run(&mut hog);
        assert_eq!(
            growths,
            [
                (20, 64 * KIB),
                (40, 128 * KIB),
                (60, 192 * KIB),
                (80, 200 * KIB)
            ]
        );
        assert_eq!((end, reason), (ms(180), ExitReason::Lingered));
    }

    #[test]
    fn the_same_arguments_give_the_same_run() {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let mut hog = timer_hog(10 * KIB, 95 * KIB, 3);
                let _ = hog.start(25 * KIB).unwrap();
                run(&mut hog)
            })
            .collect();
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn start_growth_happens_at_once_and_may_reach_max() {
        let mut hog = timer_hog(64 * KIB, 128 * KIB, 20);
        let grew = hog.start(1024 * KIB).unwrap();
        assert_eq!(
            (grew.added, grew.held, grew.reached_max),
            (128 * KIB, 128 * KIB, true)
        );
        assert_eq!(hog.state(), State::Full { since: ms(0) });
        assert_eq!(hog.poll(ms(0)), Action::WaitUntil(ms(100)));
        assert_eq!(hog.poll(ms(100)), Action::Exit(ExitReason::Lingered));
    }

    #[test]
    fn lifetime_ends_the_hog_whatever_its_state() {
        let mut hog = Hog::new(
            Arena::new(KIB, 1024 * KIB),
            Growth::Timer { interval: ms(50) },
            bounds(100_000, 120),
        );
        let _ = hog.start(0).unwrap();
        let (growths, end, reason) = run(&mut hog);
        assert_eq!(growths, [(50, KIB), (100, 2 * KIB)]);
        assert_eq!((end, reason), (ms(120), ExitReason::Lifetime));
        // A later look, or a wait computed past the lifetime, still says exit.
        assert_eq!(hog.poll(ms(500)), Action::Exit(ExitReason::Lifetime));
    }

    #[test]
    fn injection_growth_waits_and_each_injection_restarts_the_idle_linger() {
        let mut hog = Hog::new(
            Arena::new(64 * KIB, 1024 * KIB),
            Growth::Inject,
            bounds(100, 10_000),
        );
        let _ = hog.start(0).unwrap();
        assert_eq!(hog.poll(ms(0)), Action::WaitUntil(ms(100)));
        let grew = hog.inject(ms(60), 300_000).unwrap();
        assert_eq!(
            (grew.added, grew.held, grew.reached_max),
            (300_000, 300_000, false)
        );
        assert_eq!(hog.poll(ms(100)), Action::WaitUntil(ms(160)));
        assert_eq!(hog.poll(ms(160)), Action::Exit(ExitReason::Idle));
    }

    #[test]
    fn injection_is_capped_and_reaching_max_is_reported_once() {
        let mut hog = Hog::new(
            Arena::new(64 * KIB, 256 * KIB),
            Growth::Inject,
            bounds(100, 10_000),
        );
        let first = hog.inject(ms(10), 10 * 1024 * KIB).unwrap();
        assert_eq!(
            (first.added, first.held, first.reached_max),
            (256 * KIB, 256 * KIB, true)
        );
        let again = hog.inject(ms(50), 1).unwrap();
        assert_eq!(
            (again.added, again.held, again.reached_max),
            (0, 256 * KIB, false)
        );
        // The linger counts from reaching max, not from the later injection.
        assert_eq!(hog.poll(ms(50)), Action::WaitUntil(ms(110)));
    }

    #[test]
    fn an_injection_between_chunks_does_not_move_the_next_chunk() {
        let mut hog = timer_hog(64 * KIB, 1024 * KIB, 20);
        let _ = hog.start(0).unwrap();
        let grew = hog.inject(ms(5), 1000).unwrap();
        assert_eq!(grew.held, 1000);
        assert_eq!(hog.poll(ms(5)), Action::WaitUntil(ms(20)));
        let grew = hog.grow_chunk(ms(20)).unwrap();
        assert_eq!(grew.held, 1000 + 64 * KIB);
    }

    #[test]
    fn time_going_backwards_fires_nothing_early() {
        let mut hog = timer_hog(64 * KIB, 1024 * KIB, 20);
        let _ = hog.start(0).unwrap();
        let _ = hog.grow_chunk(ms(40)).unwrap();
        assert_eq!(hog.poll(ms(10)), Action::WaitUntil(ms(60)));
    }

    #[test]
    fn exit_reasons_have_log_words() {
        let words =
            [ExitReason::Lingered, ExitReason::Idle, ExitReason::Lifetime].map(ExitReason::as_str);
        assert_eq!(words, ["linger", "idle", "lifetime"]);
    }
}
