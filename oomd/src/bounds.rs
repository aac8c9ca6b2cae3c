//! Every bound the core enforces, in one place, with the reason for each.
//!
//! Capacities of the tables themselves are const generics of
//! [`Watchdog`](crate::Watchdog); the defaults live here too.

/// Default subject-table capacity: a service layer of an embedded or desktop OS runs tens to a
/// few hundred services; 256 leaves room and keeps the state machine small (see `docs/perf.md`).
pub const DEFAULT_SUBJECTS: usize = 256;

/// Default event-ring capacity: enough for several minutes of a busy incident at the default
/// tick, so a reader polling `events()` once a second loses nothing.
pub const DEFAULT_EVENTS: usize = 1024;

/// Size of the limits-override table: how many subjects may have limits of their own at once.
/// Most services share the global limits; a few big ones (a database, a compositor) differ.
/// Keeping overrides out of the subject rows keeps every row small.
pub const MAX_OVERRIDES: usize = 32;

const _: () = assert!(MAX_OVERRIDES > 0 && MAX_OVERRIDES < u8::MAX as usize);

/// Largest accepted kill budget per window. The budget is a brake on cascades; more than a few
/// dozen kills per window means the policy is wrong, not that more kills are needed. Also the
/// length of the fixed array that remembers recent kills.
pub const MAX_KILL_BUDGET: u16 = 32;

/// Longest kill window, in ticks (a day at a 1 ms tick). Longer windows are a typo.
pub const MAX_KILL_WINDOW_TICKS: u64 = 86_400_000;

/// Longest soft grace, in ticks: same bound as the kill window.
pub const MAX_SOFT_GRACE_TICKS: u64 = MAX_KILL_WINDOW_TICKS;

/// Longest silence bound for a report to turn stale, in ticks: same bound as the kill window.
pub const MAX_REPORT_STALE_TICKS: u32 = MAX_KILL_WINDOW_TICKS as u32;

const _: () = assert!(MAX_KILL_WINDOW_TICKS <= u32::MAX as u64);

/// Longest exit deadline, in ticks (an hour at a 1 ms tick); zero is refused because a kill
/// needs at least one tick to be observed.
pub const MAX_EXIT_DEADLINE_TICKS: u64 = 3_600_000;

/// Highest reclaim target, as a percentage of the soft limit: below the re-arm threshold
/// (`soft − soft/`[`SOFT_REARM_DIVISOR`], 93.75 %), so that a subject that met its reclaim is
/// out of its incident, not hovering at its soft limit.
pub const MAX_RECLAIM_TARGET_PERCENT: u8 = 93;

const _: () = assert!(
    (MAX_RECLAIM_TARGET_PERCENT as u64) * SOFT_REARM_DIVISOR < 100 * (SOFT_REARM_DIVISOR - 1),
    "the highest reclaim target is below the re-arm threshold"
);

/// Longest reclaim deadline, in ticks: the exit deadline's bound.
pub const MAX_RECLAIM_DEADLINE_TICKS: u32 = MAX_EXIT_DEADLINE_TICKS as u32;

/// The last tick: the core's clock stops here. A later tick is taken as this one (logged as
/// `TickClamped`, answered `InputError::TickBeyondEnd`), and a resume past it resumes here, so
/// that every deadline and window the core reckons from its clock (each at most
/// [`MAX_KILL_WINDOW_TICKS`] ahead) is exact and strictly later than now; at a saturated end
/// of time a kill's deadline would be now itself. Half the tick space: 290 million years
/// at the shortest sample period (1 ms).
pub const MAX_TICK: u64 = u64::MAX / 2;

const _: () = assert!(
    MAX_TICK.checked_add(MAX_KILL_WINDOW_TICKS).is_some()
        && MAX_SOFT_GRACE_TICKS <= MAX_KILL_WINDOW_TICKS
        && MAX_EXIT_DEADLINE_TICKS <= MAX_KILL_WINDOW_TICKS
        && MAX_EXIT_DEADLINE_TICKS <= u32::MAX as u64
        && MAX_REPORT_STALE_TICKS as u64 <= MAX_KILL_WINDOW_TICKS,
    "every span reckoned from a tick at MAX_TICK fits in a u64"
);

/// Most frames one sender may have accepted per tick. A service publishes at most once per
/// quantum of growth or per interval; a few per tick is generous, thousands is a flood.
pub const MAX_FRAME_BUDGET: u16 = 1024;

/// Sample period bounds in milliseconds (the edge's tick period): 1 ms to one minute.
pub const MIN_SAMPLE_PERIOD_MS: u32 = 1;
/// See [`MIN_SAMPLE_PERIOD_MS`].
pub const MAX_SAMPLE_PERIOD_MS: u32 = 60_000;

/// Soft-limit hysteresis: after crossing `soft`, a subject is re-armed (and a new incident may
/// begin) only once its enforced bytes fall below `soft - soft / SOFT_REARM_DIVISOR`, so a
/// service hovering at its soft limit produces one soft event, not one per frame.
pub const SOFT_REARM_DIVISOR: u64 = 16;

/// Subjects that are critical whatever their registration says: the process authority, the
/// watchdog itself, and the system managers the reference OS names. Matched by name-derived id.
pub const ALWAYS_CRITICAL: [&str; 5] = ["init", "execd", "oomd", "samgrd", "policyd"];
