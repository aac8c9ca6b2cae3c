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
        /// The authority accepted it.
        acknowledged: bool,
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

/// A subject's row. `Copy` and a `const` vacant value let the table be a plain array.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Subject {
    pub(crate) id: SubjectId,
    pub(crate) class: SubjectClass,
    pub(crate) critical: bool,
    pub(crate) running: bool,
    pub(crate) underreport_noted: bool,
    pub(crate) frames_this_tick: u16,
    pub(crate) reported: Option<u64>,
    pub(crate) peak: u64,
    pub(crate) kernel: Option<u64>,
    pub(crate) last_seq: Option<u64>,
    pub(crate) over_soft_since: Option<Tick>,
    pub(crate) kill: KillState,
    pub(crate) limits: Option<Limits>,
}

impl Subject {
    pub(crate) const VACANT: Subject = Subject {
        id: SubjectId(0),
        class: SubjectClass::Standard,
        critical: false,
        running: false,
        underreport_noted: false,
        frames_this_tick: 0,
        reported: None,
        peak: 0,
        kernel: None,
        last_seq: None,
        over_soft_since: None,
        kill: KillState::Idle,
        limits: None,
    };

    /// Forgets everything observed about the previous instance.
    pub(crate) fn clear_observations(&mut self) {
        self.underreport_noted = false;
        self.frames_this_tick = 0;
        self.reported = None;
        self.peak = 0;
        self.kernel = None;
        self.last_seq = None;
        self.over_soft_since = None;
        self.kill = KillState::Idle;
    }

    /// The figure limits are enforced on.
    pub(crate) fn enforced(&self, enforce_kernel: bool) -> u64 {
        let reported = self.reported.unwrap_or(0);
        match self.kernel {
            Some(kernel) if enforce_kernel => reported.max(kernel),
            _ => reported,
        }
    }

    pub(crate) fn under_reports(&self, margin: u64) -> bool {
        self.kernel
            .is_some_and(|k| k > self.reported.unwrap_or(0).saturating_add(margin))
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
