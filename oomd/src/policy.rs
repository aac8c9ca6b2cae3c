//! What the watchdog enforces, and how a policy is checked before it is accepted.

use crate::bounds;

/// The limits of one subject. The global [`Policy`] carries the default; a subject may have an
/// override (see [`PolicyUpdate::SubjectLimits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Limits {
    /// At or above this many bytes a subject is *over soft*: one warning per crossing.
    pub soft_bytes: u64,
    /// At or above this many bytes a subject must be terminated (at the next tick).
    pub hard_bytes: u64,
    /// Ticks a subject may stay over soft before a graceful termination is requested;
    /// `0` means soft is a warning only.
    pub soft_grace_ticks: u64,
    /// Ticks to wait for the exit after each termination request before escalating
    /// (graceful → forced) or, after the forced request, reporting the kill as failed.
    pub exit_deadline_ticks: u64,
}

/// The global policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Policy {
    /// Default limits of every subject without an override.
    pub limits: Limits,
    /// The edge's tick period in milliseconds. The core counts ticks only; this is carried so
    /// that one policy document configures both.
    pub sample_period_ms: u32,
    /// At most this many kills may be decided in any `kill_window_ticks` consecutive ticks;
    /// further kills are throttled until the window allows them.
    pub kill_budget: u16,
    /// The length of the kill-budget window, in ticks. (A `u32`, like `report_stale_ticks`,
    /// to keep every input within 64 bytes; its bound, [`bounds::MAX_KILL_WINDOW_TICKS`],
    /// fits.)
    pub kill_window_ticks: u32,
    /// Frames accepted per sender per tick; more are rejected as over budget.
    pub frame_budget_per_tick: u16,
    /// When true, a subject's enforced bytes are the larger of its report and its kernel
    /// reading; when false, kernel readings are only shown and compared.
    pub enforce_kernel: bool,
    /// A kernel reading more than this many bytes above a subject's report is an
    /// under-report (one event per incident).
    pub underreport_margin_bytes: u64,
    /// Observe only (dry run): decisions are logged as would-kill events and the authority is
    /// never called.
    pub observe_only: bool,
    /// A running subject that reports (its registration says so) and whose last accepted
    /// frame, or its registration if it never had one accepted, is this many ticks old gets
    /// one `report stale` event; another only after a frame of it is accepted again.
    /// (A `u32`, unlike the other tick counts, to keep every input within 64 bytes; its bound,
    /// [`bounds::MAX_REPORT_STALE_TICKS`], fits.)
    #[cfg_attr(feature = "serde", serde(default = "defaults::report_stale_ticks"))]
    pub report_stale_ticks: u32,
    /// When true (the default), a subject without a fresh report is enforced on the larger of
    /// its report and its kernel figure, whatever `enforce_kernel` says: one that never had a
    /// frame accepted (it does not report, or has not yet), and one whose report is stale
    /// (see `report_stale_ticks`). Silence never hides a service, and a service stuck in a
    /// runaway allocation loop, which stops publishing, is still caught.
    #[cfg_attr(
        feature = "serde",
        serde(default = "defaults::enforce_kernel_when_silent")
    )]
    pub enforce_kernel_when_silent: bool,
    /// Ask before killing: when non-zero, a subject crossing its soft limit is first asked to
    /// reclaim down to this percentage of its soft limit
    /// (`1..=`[`bounds::MAX_RECLAIM_TARGET_PERCENT`]), and its soft grace does
    /// not end in a kill before `reclaim_deadline_ticks` have passed; a reclaim met in time
    /// ends the incident without a kill. `0` (the default) turns reclaim requests off. The
    /// hard limit kills at once either way (`docs/policy.md`, "Reclaim").
    #[cfg_attr(feature = "serde", serde(default))]
    pub reclaim_target_percent: u8,
    /// Ticks a subject asked to reclaim has to reach its target, from the request (the soft
    /// crossing). `1..=`[`bounds::MAX_RECLAIM_DEADLINE_TICKS`]. (A `u32` to keep every input
    /// within 64 bytes.)
    #[cfg_attr(feature = "serde", serde(default = "defaults::reclaim_deadline_ticks"))]
    pub reclaim_deadline_ticks: u32,
}

/// Defaults of the keys added after the first version, for recorded runs that lack them.
#[cfg(feature = "serde")]
mod defaults {
    pub(super) fn report_stale_ticks() -> u32 {
        super::DEFAULT_REPORT_STALE_TICKS
    }
    pub(super) fn enforce_kernel_when_silent() -> bool {
        true
    }
    pub(super) fn reclaim_deadline_ticks() -> u32 {
        super::DEFAULT_RECLAIM_DEADLINE_TICKS
    }
}

/// `Policy::default().report_stale_ticks`: 5 s at the default 100 ms tick, five times the
/// publisher's default heartbeat (`memstat::publish::PublisherConfig::heartbeat`, 1 s).
const DEFAULT_REPORT_STALE_TICKS: u32 = 50;

/// `Policy::default().reclaim_deadline_ticks`: 3 s at the default 100 ms tick.
const DEFAULT_RECLAIM_DEADLINE_TICKS: u32 = 30;

const MIB: u64 = 1024 * 1024;

impl Default for Policy {
    /// A conservative default: soft 256 MiB, hard 512 MiB, 100 ms ticks, a 5 s soft grace
    /// before a graceful kill, 2 s to exit, at most 4 kills per minute, a report stale after
    /// 5 s of silence, silent subjects judged on their kernel figure, and no reclaim requests
    /// (a 3 s reclaim deadline once `reclaim_target_percent` turns them on).
    fn default() -> Self {
        Policy {
            limits: Limits {
                soft_bytes: 256 * MIB,
                hard_bytes: 512 * MIB,
                soft_grace_ticks: 50,
                exit_deadline_ticks: 20,
            },
            sample_period_ms: 100,
            kill_budget: 4,
            kill_window_ticks: 600,
            frame_budget_per_tick: 8,
            enforce_kernel: false,
            underreport_margin_bytes: 16 * MIB,
            observe_only: false,
            report_stale_ticks: DEFAULT_REPORT_STALE_TICKS,
            enforce_kernel_when_silent: true,
            reclaim_target_percent: 0,
            reclaim_deadline_ticks: DEFAULT_RECLAIM_DEADLINE_TICKS,
        }
    }
}

/// A change of policy, fed to the core with [`Input::SetPolicy`](crate::Input::SetPolicy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PolicyUpdate {
    /// Replace the global policy.
    Global(Policy),
    /// Set (`Some`) or clear (`None`) the limits override of one registered subject.
    SubjectLimits {
        /// The subject.
        subject: memstat::SubjectId,
        /// Its own limits, or `None` to fall back to the global ones.
        limits: Option<Limits>,
    },
}

/// Why a policy was refused. The value named is the first one found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PolicyError {
    /// `hard_bytes` is zero: every subject would be killed at once.
    HardZero,
    /// `soft_bytes` is above `hard_bytes`.
    SoftAboveHard,
    /// `soft_grace_ticks` is above [`bounds::MAX_SOFT_GRACE_TICKS`].
    SoftGraceTooLong,
    /// `exit_deadline_ticks` is zero or above [`bounds::MAX_EXIT_DEADLINE_TICKS`].
    ExitDeadlineOutOfRange,
    /// `sample_period_ms` is outside
    /// [`bounds::MIN_SAMPLE_PERIOD_MS`]`..=`[`bounds::MAX_SAMPLE_PERIOD_MS`].
    SamplePeriodOutOfRange,
    /// `kill_budget` is zero or above [`bounds::MAX_KILL_BUDGET`] (use `observe_only` to
    /// never kill).
    KillBudgetOutOfRange,
    /// `kill_window_ticks` is zero or above [`bounds::MAX_KILL_WINDOW_TICKS`].
    KillWindowOutOfRange,
    /// `frame_budget_per_tick` is zero or above [`bounds::MAX_FRAME_BUDGET`].
    FrameBudgetOutOfRange,
    /// `report_stale_ticks` is zero or above [`bounds::MAX_REPORT_STALE_TICKS`].
    ReportStaleOutOfRange,
    /// `reclaim_target_percent` is above [`bounds::MAX_RECLAIM_TARGET_PERCENT`] (the target
    /// must be below the re-arm threshold, so that a met reclaim leaves the incident for good).
    ReclaimTargetOutOfRange,
    /// `reclaim_deadline_ticks` is zero or above [`bounds::MAX_RECLAIM_DEADLINE_TICKS`].
    ReclaimDeadlineOutOfRange,
    /// The subject of a limits override is not registered.
    UnknownSubject,
    /// Every slot of the override table ([`bounds::MAX_OVERRIDES`]) is taken.
    TooManyOverrides,
}

impl PolicyError {
    /// The name of the setting at fault, as policy files spell it.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::HardZero => "hard_bytes",
            Self::SoftAboveHard => "soft_bytes",
            Self::SoftGraceTooLong => "soft_grace_ticks",
            Self::ExitDeadlineOutOfRange => "exit_deadline_ticks",
            Self::SamplePeriodOutOfRange => "sample_period_ms",
            Self::KillBudgetOutOfRange => "kill_budget",
            Self::KillWindowOutOfRange => "kill_window_ticks",
            Self::FrameBudgetOutOfRange => "frame_budget_per_tick",
            Self::ReportStaleOutOfRange => "report_stale_ticks",
            Self::ReclaimTargetOutOfRange => "reclaim_target_percent",
            Self::ReclaimDeadlineOutOfRange => "reclaim_deadline_ticks",
            Self::UnknownSubject | Self::TooManyOverrides => "subject",
        }
    }
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let why = match self {
            Self::HardZero => "must be above zero",
            Self::SoftAboveHard => "must not exceed hard_bytes",
            Self::SoftGraceTooLong => "is above the maximum",
            Self::ExitDeadlineOutOfRange
            | Self::SamplePeriodOutOfRange
            | Self::KillBudgetOutOfRange
            | Self::KillWindowOutOfRange
            | Self::FrameBudgetOutOfRange
            | Self::ReportStaleOutOfRange
            | Self::ReclaimDeadlineOutOfRange => "is out of range",
            Self::ReclaimTargetOutOfRange => {
                "must be 0 (off) or 1..=93 (percent of soft_bytes, below the re-arm threshold)"
            }
            Self::UnknownSubject => "is not registered",
            Self::TooManyOverrides => "cannot have its own limits: the override table is full",
        };
        write!(f, "{} {}", self.key(), why)
    }
}

impl Limits {
    /// Checks the limits on their own.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.hard_bytes == 0 {
            return Err(PolicyError::HardZero);
        }
        if self.soft_bytes > self.hard_bytes {
            return Err(PolicyError::SoftAboveHard);
        }
        if self.soft_grace_ticks > bounds::MAX_SOFT_GRACE_TICKS {
            return Err(PolicyError::SoftGraceTooLong);
        }
        if self.exit_deadline_ticks == 0
            || self.exit_deadline_ticks > bounds::MAX_EXIT_DEADLINE_TICKS
        {
            return Err(PolicyError::ExitDeadlineOutOfRange);
        }
        Ok(())
    }

    /// The bytes a subject is asked to reclaim down to: `percent` of the soft limit, rounded
    /// down (exact for every `u64`).
    #[must_use]
    pub const fn reclaim_target(&self, percent: u8) -> u64 {
        let p = percent as u64;
        self.soft_bytes / 100 * p + self.soft_bytes % 100 * p / 100
    }

    /// Bytes below which a subject over soft is re-armed (see [`bounds::SOFT_REARM_DIVISOR`]).
    #[must_use]
    pub const fn soft_rearm_bytes(&self) -> u64 {
        self.soft_bytes - self.soft_bytes / bounds::SOFT_REARM_DIVISOR
    }
}

impl Policy {
    /// Checks every field; the error names the first one at fault.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.limits.validate()?;
        if !(bounds::MIN_SAMPLE_PERIOD_MS..=bounds::MAX_SAMPLE_PERIOD_MS)
            .contains(&self.sample_period_ms)
        {
            return Err(PolicyError::SamplePeriodOutOfRange);
        }
        if self.kill_budget == 0 || self.kill_budget > bounds::MAX_KILL_BUDGET {
            return Err(PolicyError::KillBudgetOutOfRange);
        }
        if self.kill_window_ticks == 0
            || u64::from(self.kill_window_ticks) > bounds::MAX_KILL_WINDOW_TICKS
        {
            return Err(PolicyError::KillWindowOutOfRange);
        }
        if self.frame_budget_per_tick == 0 || self.frame_budget_per_tick > bounds::MAX_FRAME_BUDGET
        {
            return Err(PolicyError::FrameBudgetOutOfRange);
        }
        if self.report_stale_ticks == 0 || self.report_stale_ticks > bounds::MAX_REPORT_STALE_TICKS
        {
            return Err(PolicyError::ReportStaleOutOfRange);
        }
        if self.reclaim_target_percent > bounds::MAX_RECLAIM_TARGET_PERCENT {
            return Err(PolicyError::ReclaimTargetOutOfRange);
        }
        if self.reclaim_deadline_ticks == 0
            || self.reclaim_deadline_ticks > bounds::MAX_RECLAIM_DEADLINE_TICKS
        {
            return Err(PolicyError::ReclaimDeadlineOutOfRange);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid() {
        assert_eq!(Policy::default().validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_refused_with_the_key_at_fault() {
        let ok = Policy::default();
        type Breakage = fn(&mut Policy);
        let cases: [(Breakage, PolicyError); 14] = [
            (|p| p.limits.hard_bytes = 0, PolicyError::HardZero),
            (
                |p| p.limits.soft_bytes = p.limits.hard_bytes + 1,
                PolicyError::SoftAboveHard,
            ),
            (
                |p| p.limits.soft_grace_ticks = u64::MAX,
                PolicyError::SoftGraceTooLong,
            ),
            (
                |p| p.limits.exit_deadline_ticks = 0,
                PolicyError::ExitDeadlineOutOfRange,
            ),
            (
                |p| p.sample_period_ms = 0,
                PolicyError::SamplePeriodOutOfRange,
            ),
            (|p| p.kill_budget = 0, PolicyError::KillBudgetOutOfRange),
            (
                |p| p.kill_budget = bounds::MAX_KILL_BUDGET + 1,
                PolicyError::KillBudgetOutOfRange,
            ),
            (
                |p| p.kill_window_ticks = 0,
                PolicyError::KillWindowOutOfRange,
            ),
            (
                |p| p.frame_budget_per_tick = 0,
                PolicyError::FrameBudgetOutOfRange,
            ),
            (
                |p| p.report_stale_ticks = 0,
                PolicyError::ReportStaleOutOfRange,
            ),
            (
                |p| p.report_stale_ticks = bounds::MAX_REPORT_STALE_TICKS + 1,
                PolicyError::ReportStaleOutOfRange,
            ),
            (
                |p| p.reclaim_target_percent = bounds::MAX_RECLAIM_TARGET_PERCENT + 1,
                PolicyError::ReclaimTargetOutOfRange,
            ),
            (
                |p| p.reclaim_deadline_ticks = 0,
                PolicyError::ReclaimDeadlineOutOfRange,
            ),
            (
                |p| p.reclaim_deadline_ticks = bounds::MAX_RECLAIM_DEADLINE_TICKS + 1,
                PolicyError::ReclaimDeadlineOutOfRange,
            ),
        ];
        for (break_it, expected) in cases {
            let mut p = ok;
            break_it(&mut p);
            assert_eq!(p.validate(), Err(expected), "{p:?}");
        }
    }

    #[test]
    fn the_reclaim_target_is_a_floor_of_the_percentage_of_soft() {
        let mut l = Policy::default().limits;
        l.soft_bytes = 1000;
        assert_eq!(l.reclaim_target(75), 750);
        l.soft_bytes = 999;
        assert_eq!(l.reclaim_target(50), 499);
        assert_eq!(l.reclaim_target(0), 0);
        l.soft_bytes = u64::MAX;
        assert_eq!(
            l.reclaim_target(99),
            (u128::from(u64::MAX) * 99 / 100) as u64
        );
        assert!(l.reclaim_target(99) < l.soft_bytes);
    }

    #[test]
    fn soft_equal_to_hard_is_allowed_and_rearm_is_below_soft() {
        let mut p = Policy::default();
        p.limits.soft_bytes = p.limits.hard_bytes;
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            p.limits.soft_rearm_bytes(),
            p.limits.soft_bytes - p.limits.soft_bytes / 16
        );
    }
}
