//! One row of the subject table, and the public view of it.

use memstat::SubjectId;

use crate::{Limits, SubjectClass, TerminationMode, Tick, Ticket};

/// Where a subject stands with respect to being killed. Each state carries its own times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KillState {
    /// Nothing decided.
    Idle,
    /// A kill is due but the budget is spent; retried each tick while due.
    Throttled {
        /// When it was first throttled in this incident.
        since: Tick,
    },
    /// A request is out; waiting for the answer and the exit.
    Pending {
        /// The request.
        ticket: Ticket,
        /// How hard it asked.
        mode: TerminationMode,
        /// The authority accepted this request.
        acknowledged: bool,
        /// This is an escalation, and the authority had accepted the graceful request: the kill
        /// is under way whatever becomes of this one.
        escalated_from_acknowledged: bool,
        /// When to escalate (graceful) or give up (forced).
        deadline: Tick,
        /// Enforced bytes at the decision.
        bytes: u64,
    },
    /// Critical and over its limit: the kill was denied for this incident.
    Denied {
        /// When.
        since: Tick,
    },
    /// The authority refused; not asked again before `retry_at`.
    Refused {
        /// The earliest tick of the next attempt.
        retry_at: Tick,
    },
    /// The forced request went unanswered by an exit; not retried in this incident.
    Failed {
        /// When.
        since: Tick,
    },
    /// Observe-only: the kill would have been decided.
    WouldKill {
        /// When.
        since: Tick,
    },
}

/// A subject's row. `Copy` and a `const` vacant value let the table be a plain array; the
/// optional values are packed behind [`Flags`] to keep the row at 72 bytes (the id lives in a separate sorted array) (the table is paid
/// `SUBJECTS` times over: see `tests/size.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subject {
    reported: u64,
    pub(crate) peak: u64,
    kernel: u64,
    last_seq: u64,
    over_soft_since: Tick,
    pub(crate) kill: KillState,
    pub(crate) class: SubjectClass,
    flags: Flags,
    pub(crate) frames_this_tick: u16,
    /// Index into the watchdog's limits-override table, or [`Subject::NO_OVERRIDE`].
    pub(crate) override_slot: u8,
}

/// Booleans of a row, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags(u8);

impl Flags {
    const RUNNING: u8 = 1 << 0;
    const CRITICAL: u8 = 1 << 1;
    const UNDERREPORT_NOTED: u8 = 1 << 2;
    const HAS_REPORTED: u8 = 1 << 3;
    const HAS_KERNEL: u8 = 1 << 4;
    const HAS_SEQ: u8 = 1 << 5;
    const OVER_SOFT: u8 = 1 << 6;

    const fn get(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

impl Subject {
    pub(crate) const NO_OVERRIDE: u8 = u8::MAX;

    pub(crate) const VACANT: Subject = Subject {
        reported: 0,
        peak: 0,
        kernel: 0,
        last_seq: 0,
        over_soft_since: Tick::ZERO,
        kill: KillState::Idle,
        class: SubjectClass::Standard,
        flags: Flags(0),
        frames_this_tick: 0,
        override_slot: Self::NO_OVERRIDE,
    };

    /// A running subject that has reported nothing yet.
    pub(crate) fn new(class: SubjectClass, critical: bool) -> Subject {
        let mut s = Subject {
            class,
            ..Self::VACANT
        };
        s.set_running(true);
        s.set_critical(critical);
        s
    }

    /// Forgets everything observed about the previous instance (not its identity, class,
    /// criticality or limits override).
    pub(crate) fn clear_observations(&mut self) {
        let keep = Flags::RUNNING | Flags::CRITICAL;
        self.flags = Flags(self.flags.0 & keep);
        self.frames_this_tick = 0;
        self.reported = 0;
        self.peak = 0;
        self.kernel = 0;
        self.last_seq = 0;
        self.over_soft_since = Tick::ZERO;
        self.kill = KillState::Idle;
    }

    fn opt<T>(&self, bit: u8, value: T) -> Option<T> {
        self.flags.get(bit).then_some(value)
    }

    pub(crate) const fn running(&self) -> bool {
        self.flags.get(Flags::RUNNING)
    }
    pub(crate) fn set_running(&mut self, on: bool) {
        self.flags.set(Flags::RUNNING, on);
    }
    pub(crate) const fn critical(&self) -> bool {
        self.flags.get(Flags::CRITICAL)
    }
    pub(crate) fn set_critical(&mut self, on: bool) {
        self.flags.set(Flags::CRITICAL, on);
    }
    pub(crate) const fn underreport_noted(&self) -> bool {
        self.flags.get(Flags::UNDERREPORT_NOTED)
    }
    pub(crate) fn set_underreport_noted(&mut self, on: bool) {
        self.flags.set(Flags::UNDERREPORT_NOTED, on);
    }
    pub(crate) fn reported(&self) -> Option<u64> {
        self.opt(Flags::HAS_REPORTED, self.reported)
    }
    pub(crate) fn set_reported(&mut self, bytes: u64) {
        self.reported = bytes;
        self.flags.set(Flags::HAS_REPORTED, true);
    }
    pub(crate) fn kernel(&self) -> Option<u64> {
        self.opt(Flags::HAS_KERNEL, self.kernel)
    }
    pub(crate) fn set_kernel(&mut self, bytes: u64) {
        self.kernel = bytes;
        self.flags.set(Flags::HAS_KERNEL, true);
    }
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.opt(Flags::HAS_SEQ, self.last_seq)
    }
    pub(crate) fn set_last_seq(&mut self, seq: u64) {
        self.last_seq = seq;
        self.flags.set(Flags::HAS_SEQ, true);
    }
    pub(crate) fn over_soft_since(&self) -> Option<Tick> {
        self.opt(Flags::OVER_SOFT, self.over_soft_since)
    }
    pub(crate) fn set_over_soft_since(&mut self, since: Option<Tick>) {
        self.over_soft_since = since.unwrap_or(Tick::ZERO);
        self.flags.set(Flags::OVER_SOFT, since.is_some());
    }

    /// The figure limits are enforced on.
    pub(crate) fn enforced(&self, enforce_kernel: bool) -> u64 {
        let reported = self.reported().unwrap_or(0);
        match self.kernel() {
            Some(kernel) if enforce_kernel => reported.max(kernel),
            _ => reported,
        }
    }

    pub(crate) fn under_reports(&self, margin: u64) -> bool {
        self.kernel()
            .is_some_and(|k| k > self.reported().unwrap_or(0).saturating_add(margin))
    }
}

/// What [`Watchdog::subject`](crate::Watchdog::subject) tells about one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SubjectStatus {
    /// Who.
    pub subject: SubjectId,
    /// Victim class.
    pub class: SubjectClass,
    /// Protected from kills.
    pub critical: bool,
    /// Registered and not yet seen to exit.
    pub running: bool,
    /// `current_bytes` of the last accepted frame: allocator bytes, as the subject reports.
    pub reported_bytes: Option<u64>,
    /// `peak_bytes` of the last accepted frame.
    pub peak_bytes: u64,
    /// The last kernel reading.
    pub kernel_bytes: Option<u64>,
    /// The figure limits are applied to.
    pub enforced_bytes: u64,
    /// The limits in force.
    pub limits: Limits,
    /// Whether `limits` is the subject's own override.
    pub has_override: bool,
    /// Over soft since this tick.
    pub over_soft_since: Option<Tick>,
    /// Kill state.
    pub kill: KillState,
    /// Last accepted sequence number.
    pub last_seq: Option<u64>,
    /// Frames accepted in the current tick.
    pub frames_this_tick: u16,
}
