//! One row of the subject table, and the public view of it.

use memstat::SubjectId;

use crate::{Limits, Policy, SubjectClass, TerminationMode, Tick, Ticket};

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
/// optional values are packed behind [`Flags`] to keep the row at 72 bytes (the id lives in a
/// separate sorted array; the table is paid `SUBJECTS` times over: see `tests/size.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subject {
    reported: u64,
    kernel: u64,
    last_seq: u64,
    over_soft_since: Tick,
    /// The tick of the last accepted frame, or of the registration until one is accepted: the
    /// start of the current silence.
    silent_since: Tick,
    pub(crate) kill: KillState,
    pub(crate) class: SubjectClass,
    flags: Flags,
    pub(crate) frames_this_tick: u16,
    /// Index into the watchdog's limits-override table, or [`Subject::NO_OVERRIDE`].
    pub(crate) override_slot: u8,
}

/// Booleans of a row, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags(u16);

impl Flags {
    const RUNNING: u16 = 1 << 0;
    const CRITICAL: u16 = 1 << 1;
    const UNDERREPORT_NOTED: u16 = 1 << 2;
    /// A frame was accepted: `reported` and `last_seq` hold its values.
    const HAS_REPORTED: u16 = 1 << 3;
    const HAS_KERNEL: u16 = 1 << 4;
    const OVER_SOFT: u16 = 1 << 5;
    /// The registration says the subject publishes memstat frames.
    const REPORTS: u16 = 1 << 6;
    /// The report-stale event of the current silence was logged.
    const STALE_NOTED: u16 = 1 << 7;
    /// The coalesced latest frame of the current tick was taken.
    const LATEST_TAKEN: u16 = 1 << 8;
    /// A reclaim request (or, observe-only, a would-request) of the current incident is
    /// waiting for its target or its deadline. Its id is the incident's start tick.
    const RECLAIM_PENDING: u16 = 1 << 9;
    /// The subject acknowledged the pending reclaim request (or the last met one).
    const RECLAIM_ACKED: u16 = 1 << 10;
    /// No incident is open and `over_soft_since` holds the id (the tick) of the last reclaim
    /// request that was met (the field is free between incidents): the next crossing within
    /// a kill window of it asks for nothing, and a late acknowledgement of it is taken.
    const RECLAIM_MET: u16 = 1 << 11;
    /// The pending request is an observe-only would-request: nothing was sent.
    const RECLAIM_WOULD: u16 = 1 << 12;

    const fn get(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u16, on: bool) {
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
        kernel: 0,
        last_seq: 0,
        over_soft_since: Tick::ZERO,
        silent_since: Tick::ZERO,
        kill: KillState::Idle,
        class: SubjectClass::Standard,
        flags: Flags(0),
        frames_this_tick: 0,
        override_slot: Self::NO_OVERRIDE,
    };

    /// A running subject, registered at `now`, that has reported nothing yet.
    pub(crate) fn new(class: SubjectClass, critical: bool, reports: bool, now: Tick) -> Subject {
        let mut s = Subject {
            class,
            silent_since: now,
            ..Self::VACANT
        };
        s.set_running(true);
        s.set_critical(critical);
        s.flags.set(Flags::REPORTS, reports);
        s
    }

    /// Forgets everything observed about the previous instance (not its identity, class,
    /// criticality, limits override or this tick's frame account); its silence starts at
    /// `now`.
    pub(crate) fn clear_observations(&mut self, now: Tick) {
        // The frames taken in this tick (and whether its latest frame was) are the sender's
        // work account, not an observation: an exit and a restart within one tick do not
        // give a sender a fresh frame budget (the next tick does).
        let keep = Flags::RUNNING | Flags::CRITICAL | Flags::REPORTS | Flags::LATEST_TAKEN;
        self.flags = Flags(self.flags.0 & keep);
        self.reported = 0;
        self.kernel = 0;
        self.last_seq = 0;
        self.over_soft_since = Tick::ZERO;
        self.silent_since = now;
        self.kill = KillState::Idle;
    }

    #[inline]
    fn opt<T>(&self, bit: u16, value: T) -> Option<T> {
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
    pub(crate) const fn reports(&self) -> bool {
        self.flags.get(Flags::REPORTS)
    }
    pub(crate) fn set_reports(&mut self, on: bool) {
        self.flags.set(Flags::REPORTS, on);
    }
    #[inline]
    pub(crate) fn reported(&self) -> Option<u64> {
        self.opt(Flags::HAS_REPORTED, self.reported)
    }
    /// Takes an accepted frame's figures at `now`: the silence, and a stale report, end.
    pub(crate) fn set_report(&mut self, seq: u64, bytes: u64, now: Tick) {
        self.reported = bytes;
        self.last_seq = seq;
        self.silent_since = now;
        self.flags.set(Flags::HAS_REPORTED, true);
        self.flags.set(Flags::STALE_NOTED, false);
    }
    pub(crate) const fn silent_since(&self) -> Tick {
        self.silent_since
    }
    pub(crate) const fn stale_noted(&self) -> bool {
        self.flags.get(Flags::STALE_NOTED)
    }
    pub(crate) fn set_stale_noted(&mut self) {
        self.flags.set(Flags::STALE_NOTED, true);
    }
    pub(crate) const fn latest_taken(&self) -> bool {
        self.flags.get(Flags::LATEST_TAKEN)
    }
    pub(crate) fn set_latest_taken(&mut self, on: bool) {
        self.flags.set(Flags::LATEST_TAKEN, on);
    }
    /// The id of the pending reclaim request (the tick of its incident's start), if one is
    /// pending.
    #[inline]
    pub(crate) fn reclaim_pending(&self) -> Option<u64> {
        if self.flags.get(Flags::RECLAIM_PENDING) {
            self.over_soft_since().map(|t| t.0)
        } else {
            None
        }
    }
    /// A reclaim request went out (`Some(would)`: `would` for an observe-only would-request),
    /// or the pending one was settled (`None`).
    pub(crate) fn set_reclaim_pending(&mut self, sent: Option<bool>) {
        self.flags.set(Flags::RECLAIM_PENDING, sent.is_some());
        self.flags.set(Flags::RECLAIM_WOULD, sent == Some(true));
        self.flags.set(Flags::RECLAIM_ACKED, false);
    }
    /// The pending request is a would-request (nothing was sent).
    pub(crate) const fn reclaim_would(&self) -> bool {
        self.flags.get(Flags::RECLAIM_WOULD)
    }
    pub(crate) const fn reclaim_acked(&self) -> bool {
        self.flags.get(Flags::RECLAIM_ACKED)
    }
    pub(crate) fn set_reclaim_acked(&mut self) {
        self.flags.set(Flags::RECLAIM_ACKED, true);
    }
    /// Whether the subject should have reported by `now` and has not: it runs, it reports,
    /// and its silence is at least `stale_ticks` long.
    #[inline]
    pub(crate) fn report_is_stale(&self, now: Tick, stale_ticks: u32) -> bool {
        self.running() && self.reports() && now.since(self.silent_since) >= u64::from(stale_ticks)
    }
    #[inline]
    pub(crate) fn kernel(&self) -> Option<u64> {
        self.opt(Flags::HAS_KERNEL, self.kernel)
    }
    pub(crate) fn set_kernel(&mut self, bytes: u64) {
        self.kernel = bytes;
        self.flags.set(Flags::HAS_KERNEL, true);
    }
    pub(crate) fn last_seq(&self) -> Option<u64> {
        self.opt(Flags::HAS_REPORTED, self.last_seq)
    }
    #[inline]
    pub(crate) fn over_soft_since(&self) -> Option<Tick> {
        self.opt(Flags::OVER_SOFT, self.over_soft_since)
    }
    /// Begins (`Some`) or ends (`None`) an incident; either way no reclaim is pending, and
    /// the last met request is forgotten.
    pub(crate) fn set_over_soft_since(&mut self, since: Option<Tick>) {
        self.over_soft_since = since.unwrap_or(Tick::ZERO);
        self.flags.set(Flags::OVER_SOFT, since.is_some());
        self.flags.set(Flags::RECLAIM_MET, false);
        self.set_reclaim_pending(None);
    }
    /// The incident ends because its pending reclaim request was met: the request's id (the
    /// incident's start) and whether it was acknowledged stay, in the incident's own field,
    /// free until the next crossing (a would-request counts as acknowledged: nothing was sent,
    /// so nothing may acknowledge it).
    pub(crate) fn end_incident_reclaim_met(&mut self) {
        let id = self.over_soft_since;
        let acked = self.reclaim_acked() || self.reclaim_would();
        self.set_over_soft_since(None);
        self.over_soft_since = id;
        self.flags.set(Flags::RECLAIM_MET, true);
        self.flags.set(Flags::RECLAIM_ACKED, acked);
    }
    /// The id (tick) of the last met reclaim request, if no incident began since.
    #[inline]
    pub(crate) fn reclaim_met(&self) -> Option<u64> {
        if self.flags.get(Flags::RECLAIM_MET) && !self.flags.get(Flags::OVER_SOFT) {
            Some(self.over_soft_since.0)
        } else {
            None
        }
    }

    /// The figure limits are enforced on at `now`: the report, or the larger of the report
    /// and the kernel figure when the policy enforces kernel readings, or when the subject is
    /// silent (no frame accepted yet, or its report is stale) and the policy judges silent
    /// subjects on the kernel's figure.
    #[inline]
    pub(crate) fn enforced(&self, policy: &Policy, now: Tick) -> u64 {
        let reported = self.reported();
        let silent = reported.is_none() || self.report_is_stale(now, policy.report_stale_ticks);
        let use_kernel = policy.enforce_kernel || (policy.enforce_kernel_when_silent && silent);
        let reported = reported.unwrap_or(0);
        match self.kernel() {
            Some(kernel) if use_kernel => reported.max(kernel),
            _ => reported,
        }
    }

    #[inline]
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
    /// The registration says it publishes memstat frames.
    pub reports: bool,
    /// The tick of its last accepted frame, `None` if it never had one accepted.
    pub last_frame_at: Option<Tick>,
    /// It reports, and its last accepted frame (or its registration) is at least the
    /// policy's `report_stale_ticks` old.
    pub report_stale: bool,
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
    /// The pending reclaim request, if any: its id (the tick it was made) and whether the
    /// subject acknowledged it.
    pub reclaim: Option<(u64, bool)>,
    /// Last accepted sequence number.
    pub last_seq: Option<u64>,
    /// Frames accepted in the current tick.
    pub frames_this_tick: u16,
}
