//! The state machine: the one input method, the inputs that record facts, and the tick that
//! applies [`rules`](crate::rules) in the documented order.

use core::cmp::Reverse;

use memstat::SubjectId;

use crate::budget::KillBudget;
use crate::counters::bump;
use crate::event::EventLog;
use crate::frames::{accept_frame, Budget};
use crate::rules::{next_action, Action, Incident, Reclaim};
use crate::subject::Subject;
use crate::table::SubjectTable;
use crate::{
    bounds, Answer, Authority, Counters, DenyReason, EventKind, Events, Input, KillReason,
    KillState, Limits, Payload, Policy, PolicyError, PolicyUpdate, ReclaimRequest, Registration,
    RegistrationError, Rejection, Restore, SubjectStatus, TerminationMode, TerminationRequest,
    Tick, Ticket,
};

/// Why an input was not taken as given. The core has already counted it (and, where the
/// documentation says so, logged it); the caller may show it to whoever sent the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// A frame was rejected: the sender misbehaved.
    Frame(Rejection),
    /// A policy was refused: the caller asked for nonsense.
    Policy(PolicyError),
    /// A registration was refused.
    Registration(RegistrationError),
    /// The subject named is not registered, or not running (reading, exit, unregister).
    UnknownSubject,
    /// An answer quoted a ticket that is not pending.
    StaleAnswer,
    /// The tick was earlier than the current one and was clamped.
    TickWentBackwards,
    /// The tick was past [`bounds::MAX_TICK`], where the clock stops, and was clamped to it.
    TickBeyondEnd,
    /// A [`Restore::Resume`] reached a watchdog that already took inputs: ignored.
    NotFresh,
    /// A [`Restore::KillInFlight`] named a subject that already has a kill of its own.
    KillAlreadyPending,
}

/// The watchdog: a pure, bounded, deterministic state machine.
///
/// `SUBJECTS` is the subject-table capacity and `EVENTS` the event-ring capacity (defaults in
/// [`bounds`]). See the crate documentation for how to drive it.
#[derive(Debug, Clone)]
pub struct Watchdog<
    const SUBJECTS: usize = { bounds::DEFAULT_SUBJECTS },
    const EVENTS: usize = { bounds::DEFAULT_EVENTS },
> {
    policy: Policy,
    /// No subject's hard limit is below this (the global one and every override's, as of the
    /// last policy change; an override freed since can only have raised the true floor): a
    /// frame whose figures are both under it cannot have made a kill due.
    hard_floor: u64,
    now: Tick,
    next_ticket: u32,
    budget: KillBudget,
    /// Rejection reasons already logged as an event during the current tick (bit per reason).
    rejections_logged: u16,
    /// The frame accounts of subjects unregistered during the current tick.
    gone: GoneThisTick,
    table: SubjectTable<SUBJECTS>,
    log: EventLog<EVENTS>,
    counters: Counters,
}

impl<const SUBJECTS: usize, const EVENTS: usize> Watchdog<SUBJECTS, EVENTS> {
    /// A watchdog at [`Tick::ZERO`] with no subjects, enforcing `policy`.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        policy.validate()?;
        Ok(Watchdog {
            policy,
            hard_floor: policy.limits.hard_bytes,
            now: Tick::ZERO,
            next_ticket: 1,
            budget: KillBudget::new(),
            rejections_logged: 0,
            gone: GoneThisTick::EMPTY,
            table: SubjectTable::new(),
            log: EventLog::new(),
            counters: Counters::default(),
        })
    }

    // ----- getters -------------------------------------------------------------------------

    /// The current tick.
    #[must_use]
    pub const fn now(&self) -> Tick {
        self.now
    }

    /// The global policy in force.
    #[must_use]
    pub const fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Counters that survive the event ring.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Number of registered subjects (running or exited).
    #[must_use]
    pub const fn subject_count(&self) -> usize {
        self.table.len()
    }

    /// The status of one subject.
    #[must_use]
    pub fn subject(&self, id: SubjectId) -> Option<SubjectStatus> {
        self.table.find(id).map(|i| self.status(i))
    }

    /// Every subject's status, in subject-id order.
    pub fn subjects(&self) -> impl Iterator<Item = SubjectStatus> + '_ {
        (0..self.table.len()).map(|i| self.status(i))
    }

    /// At most `limit` events with `seq >= since_seq`, oldest first, and how many the reader
    /// lost because they were overwritten.
    #[must_use]
    pub fn events(&self, since_seq: u64, limit: usize) -> Events<'_, EVENTS> {
        self.log.read(since_seq, limit)
    }

    /// The sequence number the next event will get.
    #[must_use]
    pub const fn next_event_seq(&self) -> u64 {
        self.log.next_seq()
    }

    // ----- the one input method ------------------------------------------------------------

    /// Feeds one input. Termination requests, if any, are handed to `authority` during the
    /// call, each after its events are logged.
    pub fn handle<A: Authority + ?Sized>(
        &mut self,
        input: Input,
        authority: &mut A,
    ) -> Result<(), InputError> {
        match input {
            Input::Tick(t) => self.on_tick(t, authority),
            Input::Frame { sender, payload } => self.on_frame(sender, &payload, authority),
            Input::LatestFrame {
                sender,
                payload,
                discarded,
            } => self.on_latest_frame(sender, &payload, discarded, authority),
            Input::ReclaimAck { sender, payload } => self.on_reclaim_ack(sender, &payload),
            Input::KernelReading { subject, bytes } => self.on_reading(subject, bytes, authority),
            Input::Register(r) => self.on_register(r),
            Input::Unregister(id) => self.on_unregister(id),
            Input::SetPolicy(update) => self.on_set_policy(update),
            Input::Answer { ticket, answer } => self.on_answer(ticket, answer),
            Input::Exited(id) => self.on_exited(id),
            Input::Restore(r) => self.on_restore(r),
        }
    }

    // ----- inputs --------------------------------------------------------------------------

    fn on_tick<A: Authority + ?Sized>(
        &mut self,
        t: Tick,
        authority: &mut A,
    ) -> Result<(), InputError> {
        let went_backwards = t < self.now;
        let beyond_end = t.0 > bounds::MAX_TICK;
        if went_backwards || beyond_end {
            self.emit(EventKind::TickClamped { got: t });
        }
        if !went_backwards {
            self.now = Tick(t.0.min(bounds::MAX_TICK));
        }
        self.rejections_logged = 0;
        self.gone = GoneThisTick::EMPTY;

        // Collect the subjects with something to do, then act in the documented total order:
        // victim class ascending, enforced bytes descending, subject id ascending. A subject
        // with no action is skipped: applying it would change nothing.
        let mut order = [0u16; SUBJECTS];
        let mut n = 0;
        let (policy, now) = (self.policy, self.now);
        for i in 0..self.table.len() {
            let s = self.table.row_mut(i);
            s.frames_this_tick = 0;
            s.set_latest_taken(false);
            if !self.action(i, &policy, now).is_none() {
                order[n] = i as u16; // i < SUBJECTS < u16::MAX (the table's bound)
                n += 1;
            }
        }
        let table = &self.table;
        order[..n].sort_unstable_by_key(|&i| {
            let i = usize::from(i);
            let s = table.row(i);
            (s.class, Reverse(s.enforced(&policy, now)), table.id(i))
        });
        for &i in &order[..n] {
            self.apply(usize::from(i), authority);
        }
        if went_backwards {
            Err(InputError::TickWentBackwards)
        } else if beyond_end {
            Err(InputError::TickBeyondEnd)
        } else {
            Ok(())
        }
    }

    fn on_frame<A: Authority + ?Sized>(
        &mut self,
        sender: SubjectId,
        payload: &Payload,
        authority: &mut A,
    ) -> Result<(), InputError> {
        let budget = self.policy.frame_budget_per_tick;
        let now = self.now;
        let Some(i) = self.table.find(sender) else {
            self.reject(sender, Rejection::UnknownSender);
            return Err(InputError::Frame(Rejection::UnknownSender));
        };
        let s = self.table.row_mut(i);
        match accept_frame(s, sender, Budget::PerTick(budget), payload, now) {
            Ok(reported) => {
                self.decide_if_report_over_hard(i, reported, authority);
                Ok(())
            }
            Err(reason) => {
                self.reject(sender, reason);
                Err(InputError::Frame(reason))
            }
        }
    }

    fn on_latest_frame<A: Authority + ?Sized>(
        &mut self,
        sender: SubjectId,
        payload: &Payload,
        discarded: u16,
        authority: &mut A,
    ) -> Result<(), InputError> {
        let now = self.now;
        let Some(i) = self.table.find(sender) else {
            self.reject_many(sender, Rejection::UnknownSender, u64::from(discarded) + 1);
            return Err(InputError::Frame(Rejection::UnknownSender));
        };
        if discarded > 0 {
            self.reject_many(sender, Rejection::OverBudget, u64::from(discarded));
        }
        let s = self.table.row_mut(i);
        match accept_frame(s, sender, Budget::Latest, payload, now) {
            Ok(reported) => {
                bump(&mut self.counters.latest_frames);
                self.decide_if_report_over_hard(i, reported, authority);
                Ok(())
            }
            Err(reason) => {
                self.reject(sender, reason);
                Err(InputError::Frame(reason))
            }
        }
    }

    fn on_reclaim_ack(&mut self, sender: SubjectId, payload: &Payload) -> Result<(), InputError> {
        let row = self.table.find(sender).map(|i| (i, *self.table.row(i)));
        let reason = match row {
            None => Rejection::UnknownSender,
            Some((_, s)) if !s.running() => Rejection::NotRunning,
            Some((i, s)) => match payload.decode_ack() {
                Err(e) => Rejection::from_decode(e),
                // The pending request, or the last met one (its acknowledgement may come after
                // the frame that met it was judged), once; never a would-request, which was
                // not sent (its id is a tick: guessable, not received).
                Ok(ack)
                    if (s.reclaim_pending() == Some(ack.id) || s.reclaim_met() == Some(ack.id))
                        && !s.reclaim_acked()
                        && !s.reclaim_would() =>
                {
                    self.table.row_mut(i).set_reclaim_acked();
                    self.emit(EventKind::ReclaimAcknowledged { subject: sender });
                    return Ok(());
                }
                Ok(_) => Rejection::UnexpectedAck,
            },
        };
        self.reject(sender, reason);
        Err(InputError::Frame(reason))
    }

    fn on_reading<A: Authority + ?Sized>(
        &mut self,
        subject: SubjectId,
        bytes: u64,
        authority: &mut A,
    ) -> Result<(), InputError> {
        match self.table.find(subject) {
            Some(i) if self.table.row(i).running() => {
                self.table.row_mut(i).set_kernel(bytes);
                self.decide_if_over_hard(i, authority);
                Ok(())
            }
            _ => {
                bump(&mut self.counters.readings_ignored);
                Err(InputError::UnknownSubject)
            }
        }
    }

    fn on_register(&mut self, r: Registration) -> Result<(), InputError> {
        let critical = r.critical || is_always_critical(r.subject);
        let refused = |this: &mut Self, reason| {
            this.emit(EventKind::RegistrationRefused {
                subject: r.subject,
                reason,
            });
            Err(InputError::Registration(reason))
        };
        match self.table.position(r.subject) {
            Ok(i) if self.table.row(i).running() => {
                return refused(self, RegistrationError::Duplicate)
            }
            Ok(i) => {
                let now = self.now;
                let s = self.table.row_mut(i);
                s.clear_observations(now);
                s.class = r.class;
                s.set_critical(critical);
                s.set_reports(r.reports);
                s.set_running(true);
            }
            Err(_) if self.table.is_full() => return refused(self, RegistrationError::TableFull),
            Err(at) => {
                let mut row = Subject::new(r.class, critical, r.reports, self.now);
                // Unregistered and registered again in this tick: the tick's frame account
                // carries over (a new registration does not refill the frame budget).
                if let Some((frames, latest)) = self.gone.account(r.subject, &self.policy) {
                    row.frames_this_tick = frames;
                    row.set_latest_taken(latest);
                }
                self.table.insert(at, r.subject, row);
            }
        }
        self.emit(EventKind::Registered {
            subject: r.subject,
            class: r.class,
            critical,
        });
        Ok(())
    }

    fn on_unregister(&mut self, id: SubjectId) -> Result<(), InputError> {
        let Some(at) = self.table.find(id) else {
            bump(&mut self.counters.unregisters_ignored);
            return Err(InputError::UnknownSubject);
        };
        let row = self.table.row(at);
        self.gone.note(id, row.frames_this_tick, row.latest_taken());
        self.table.remove(at);
        self.emit(EventKind::Unregistered { subject: id });
        Ok(())
    }

    fn on_set_policy(&mut self, update: PolicyUpdate) -> Result<(), InputError> {
        let result = match update {
            PolicyUpdate::Global(policy) => policy.validate().map(|()| {
                self.policy = policy;
                None
            }),
            PolicyUpdate::SubjectLimits { subject, limits } => limits
                .as_ref()
                .map_or(Ok(()), Limits::validate)
                .and_then(|()| self.table.find(subject).ok_or(PolicyError::UnknownSubject))
                .and_then(|i| self.table.set_override(i, limits))
                .map(|()| Some(subject)),
        };
        match result {
            Ok(subject) => {
                self.hard_floor = self
                    .table
                    .lowest_override_hard()
                    .map_or(self.policy.limits.hard_bytes, |h| {
                        h.min(self.policy.limits.hard_bytes)
                    });
                self.emit(EventKind::PolicyChanged { subject });
                Ok(())
            }
            Err(reason) => {
                bump(&mut self.counters.policies_refused);
                let subject = match update {
                    PolicyUpdate::Global(_) => None,
                    PolicyUpdate::SubjectLimits { subject, .. } => Some(subject),
                };
                self.emit(EventKind::PolicyRefused { subject, reason });
                Err(InputError::Policy(reason))
            }
        }
    }

    fn on_answer(&mut self, ticket: Ticket, answer: Answer) -> Result<(), InputError> {
        let found = self.table.rows().iter().position(|s| {
            matches!(s.kill, KillState::Pending { ticket: t, acknowledged, .. }
                if t == ticket && !(acknowledged && answer == Answer::Accepted))
        });
        let Some(i) = found else {
            self.emit(EventKind::AnswerIgnored { ticket });
            return Err(InputError::StaleAnswer);
        };
        let subject = self.table.id(i);
        match answer {
            Answer::Accepted => {
                if let KillState::Pending { acknowledged, .. } = &mut self.table.row_mut(i).kill {
                    *acknowledged = true;
                }
                self.emit(EventKind::KillAcknowledged { subject, ticket });
            }
            Answer::Refused(reason) => {
                let retry_at = self.now.plus(u64::from(self.policy.kill_window_ticks));
                self.table.row_mut(i).kill = KillState::Refused { retry_at };
                self.emit(EventKind::KillRefused {
                    subject,
                    ticket,
                    reason,
                });
            }
        }
        Ok(())
    }

    fn on_exited(&mut self, id: SubjectId) -> Result<(), InputError> {
        let i = match self.table.find(id) {
            Some(i) if self.table.row(i).running() => i,
            _ => {
                bump(&mut self.counters.exits_ignored);
                return Err(InputError::UnknownSubject);
            }
        };
        let now = self.now;
        let s = self.table.row_mut(i);
        let event = match s.kill {
            KillState::Pending {
                acknowledged,
                escalated_from_acknowledged,
                bytes,
                ..
            } if acknowledged || escalated_from_acknowledged => {
                EventKind::KillConfirmed { subject: id, bytes }
            }
            KillState::Pending { .. } => EventKind::Exited {
                subject: id,
                during_kill: true,
            },
            _ => EventKind::Exited {
                subject: id,
                during_kill: false,
            },
        };
        s.clear_observations(now);
        s.set_running(false);
        self.emit(event);
        Ok(())
    }

    fn on_restore(&mut self, restore: Restore) -> Result<(), InputError> {
        match restore {
            Restore::Resume {
                tick,
                next_event_seq,
                next_ticket,
            } => {
                let fresh =
                    self.log.next_seq() == 0 && self.table.len() == 0 && self.now == Tick::ZERO;
                if !fresh {
                    return Err(InputError::NotFresh);
                }
                // Past the end of time (a damaged audit log), resume at its end.
                let tick = Tick(tick.0.min(bounds::MAX_TICK));
                self.now = tick;
                self.log.resume_at(next_event_seq);
                self.next_ticket = next_ticket.max(1);
                self.emit(EventKind::Resumed {
                    tick,
                    next_ticket: Ticket(self.next_ticket),
                });
                Ok(())
            }
            Restore::KillDecided { at } => {
                // A decision is never in the future; fed oldest first, the newest
                // `MAX_KILL_BUDGET` are kept, which is all a window can count.
                self.budget.record(at.min(self.now));
                Ok(())
            }
            Restore::KillInFlight {
                subject,
                ticket,
                mode,
                accepted,
                bytes,
            } => {
                let i = match self.table.find(subject) {
                    Some(i) if self.table.row(i).running() => i,
                    _ => return Err(InputError::UnknownSubject),
                };
                if !matches!(
                    self.table.row(i).kill,
                    KillState::Idle | KillState::Throttled { .. }
                ) {
                    return Err(InputError::KillAlreadyPending);
                }
                let deadline = self.now.plus(self.limits(i).exit_deadline_ticks);
                let now = self.now;
                let s = self.table.row_mut(i);
                s.kill = KillState::Pending {
                    ticket,
                    mode,
                    acknowledged: accepted,
                    escalated_from_acknowledged: false,
                    deadline,
                    bytes,
                };
                // An incident is open: the subject stays in it until it exits or falls below
                // the re-arm threshold.
                if s.over_soft_since().is_none() {
                    s.set_over_soft_since(Some(now));
                }
                // No ticket of the previous run is issued again.
                if ticket.0 >= self.next_ticket {
                    self.next_ticket = ticket.0.wrapping_add(1).max(1);
                }
                self.emit(EventKind::KillAdopted {
                    subject,
                    ticket,
                    mode,
                    acknowledged: accepted,
                });
                Ok(())
            }
        }
    }

    // ----- decisions -----------------------------------------------------------------------

    /// What row `i` needs at `now` ([`next_action`]).
    #[inline(always)]
    fn action(&self, i: usize, policy: &Policy, now: Tick) -> Action {
        let s = self.table.row(i);
        let bytes = s.enforced(policy, now);
        next_action(s, self.table.limits(i, policy), policy, now, bytes)
    }

    /// A frame just set row `i`'s report to `reported`. The enforced figure is the report or
    /// the larger of the report and the kernel figure, so when both are under the lowest hard
    /// limit of any subject nothing can be due: the frame path's common case is that one
    /// comparison, without looking up the subject's limits or working out which figure is
    /// enforced (`decide_if_over_hard` does, when it matters).
    #[inline(always)]
    fn decide_if_report_over_hard<A: Authority + ?Sized>(
        &mut self,
        i: usize,
        reported: u64,
        authority: &mut A,
    ) {
        let kernel = self.table.row(i).kernel().unwrap_or(0);
        if reported.max(kernel) >= self.hard_floor {
            self.decide_if_over_hard(i, authority);
        }
    }

    /// A frame or a kernel reading just changed row `i`'s figure. If it is now at or over the
    /// hard limit and a kill is due, the kill is decided in this input, under the tick's rules
    /// (the whole action is applied: the incident begins first, and critical, the budget and
    /// observe-only decide how the kill ends). Soft grace, deadlines, escalation and the
    /// notes wait for the tick.
    #[inline]
    fn decide_if_over_hard<A: Authority + ?Sized>(&mut self, i: usize, authority: &mut A) {
        let (policy, now) = (self.policy, self.now);
        let bytes = self.table.row(i).enforced(&policy, now);
        if bytes < self.table.limits(i, &policy).hard_bytes {
            return; // the frame path's common case: one comparison
        }
        if self.action(i, &policy, now).kill == Some(KillReason::HardLimit) {
            self.apply(i, authority);
        }
    }

    /// Applies row `i`'s action, in its fields' order: under-report, stale report, the
    /// deadline of a pending kill, the incident, then the kill decision.
    fn apply<A: Authority + ?Sized>(&mut self, i: usize, authority: &mut A) {
        let (policy, now) = (self.policy, self.now);
        let action = self.action(i, &policy, now);
        let s = *self.table.row(i);
        let id = self.table.id(i);
        let bytes = s.enforced(&policy, now);

        if let Some(under) = action.underreport {
            if under {
                self.emit(EventKind::UnderReport {
                    subject: id,
                    reported: s.reported().unwrap_or(0),
                    kernel: s.kernel().unwrap_or(0),
                });
            }
            self.table.row_mut(i).set_underreport_noted(under);
        }
        if action.report_stale {
            self.table.row_mut(i).set_stale_noted();
            self.emit(EventKind::ReportStale {
                subject: id,
                since: s.silent_since(),
            });
        }
        if let (
            Some(mode),
            KillState::Pending {
                ticket,
                bytes: decided,
                ..
            },
        ) = (action.deadline_passed, s.kill)
        {
            match mode {
                TerminationMode::Graceful => {
                    self.emit(EventKind::KillEscalated {
                        subject: id,
                        ticket,
                    });
                    self.request(i, TerminationMode::Forced, decided, authority);
                }
                TerminationMode::Forced => {
                    self.table.row_mut(i).kill = KillState::Failed { since: now };
                    self.emit(EventKind::KillFailed {
                        subject: id,
                        bytes: decided,
                    });
                }
            }
        }
        match action.reclaim {
            Some(Reclaim::Met) => {
                self.emit(EventKind::ReclaimMet { subject: id, bytes });
            }
            Some(Reclaim::Missed) => {
                self.table.row_mut(i).set_reclaim_pending(None);
                self.emit(EventKind::ReclaimMissed { subject: id, bytes });
            }
            Some(Reclaim::Reissue) => {
                self.table.row_mut(i).set_over_soft_since(Some(now));
                self.request_reclaim(i, authority);
            }
            None => {}
        }
        match action.incident {
            Some(Incident::Begins) => {
                self.table.row_mut(i).set_over_soft_since(Some(now));
                let soft = self.limits(i).soft_bytes;
                self.emit(EventKind::SoftExceeded {
                    subject: id,
                    bytes,
                    soft,
                });
                if action.request_reclaim {
                    self.request_reclaim(i, authority);
                }
            }
            Some(Incident::Ends) => {
                let s = self.table.row_mut(i);
                if action.reclaim == Some(Reclaim::Met) {
                    s.end_incident_reclaim_met();
                } else {
                    s.set_over_soft_since(None);
                }
                s.kill = KillState::Idle;
            }
            None => {}
        }
        if action.unthrottle {
            self.table.row_mut(i).kill = KillState::Idle;
        }
        if let Some(reason) = action.kill {
            self.decide(i, reason, bytes, authority);
        }
    }

    /// A kill is due: deny, throttle, log as would-kill, or decide and request — in that
    /// order of precedence.
    fn decide<A: Authority + ?Sized>(
        &mut self,
        i: usize,
        reason: KillReason,
        bytes: u64,
        authority: &mut A,
    ) {
        let now = self.now;
        let s = *self.table.row(i);
        let id = self.table.id(i);
        if s.critical() {
            self.table.row_mut(i).kill = KillState::Denied { since: now };
            self.emit(EventKind::KillDenied {
                subject: id,
                bytes,
                reason: DenyReason::Critical,
            });
            return;
        }
        if !self.budget.allows(now, &self.policy) {
            if !matches!(s.kill, KillState::Throttled { .. }) {
                self.table.row_mut(i).kill = KillState::Throttled { since: now };
                self.emit(EventKind::KillThrottled { subject: id, bytes });
            }
            return;
        }
        self.budget.record(now);
        if self.policy.observe_only {
            self.table.row_mut(i).kill = KillState::WouldKill { since: now };
            self.emit(EventKind::WouldKill {
                subject: id,
                bytes,
                reason,
            });
            return;
        }
        self.emit(EventKind::KillDecided {
            subject: id,
            bytes,
            reason,
        });
        self.request(i, TerminationMode::Graceful, bytes, authority);
    }

    /// Row `i`'s incident began at this tick: logs the reclaim request, records it as pending,
    /// then hands it out; in observe-only mode logs the would-request and hands out nothing
    /// (it is pending all the same, so that the rest of the run is what it would be).
    fn request_reclaim<A: Authority + ?Sized>(&mut self, i: usize, authority: &mut A) {
        let percent = self.policy.reclaim_target_percent;
        let deadline_ticks = self.policy.reclaim_deadline_ticks;
        let target = self.limits(i).reclaim_target(percent);
        let deadline = self.now.plus(u64::from(deadline_ticks));
        let subject = self.table.id(i);
        self.table
            .row_mut(i)
            .set_reclaim_pending(Some(self.policy.observe_only));
        if self.policy.observe_only {
            self.emit(EventKind::ReclaimWouldRequest {
                subject,
                target,
                deadline,
            });
            return;
        }
        let audit_seq = self.emit(EventKind::ReclaimRequested {
            subject,
            target,
            deadline,
        });
        authority.request_reclaim(ReclaimRequest {
            subject,
            id: self.now.0,
            target_bytes: target,
            deadline,
            audit_seq,
        });
    }

    /// Logs a request, records it as pending, then hands it to the authority.
    fn request<A: Authority + ?Sized>(
        &mut self,
        i: usize,
        mode: TerminationMode,
        bytes: u64,
        authority: &mut A,
    ) {
        let deadline = self.now.plus(self.limits(i).exit_deadline_ticks);
        let ticket = Ticket(self.next_ticket);
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let subject = self.table.id(i);
        // An escalation is the same kill: if the authority accepted the graceful request, an
        // exit confirms the kill even before the forced request is answered.
        let escalated_from_acknowledged = matches!(
            self.table.row(i).kill,
            KillState::Pending {
                acknowledged: true,
                ..
            } | KillState::Pending {
                escalated_from_acknowledged: true,
                ..
            }
        );
        self.table.row_mut(i).kill = KillState::Pending {
            ticket,
            mode,
            acknowledged: false,
            escalated_from_acknowledged,
            deadline,
            bytes,
        };
        let audit_seq = self.emit(EventKind::KillRequested {
            subject,
            ticket,
            mode,
        });
        authority.request_termination(TerminationRequest {
            ticket,
            subject,
            mode,
            audit_seq,
            bytes,
        });
    }

    // ----- helpers -------------------------------------------------------------------------

    /// The limits in force for row `i`.
    fn limits(&self, i: usize) -> &Limits {
        self.table.limits(i, &self.policy)
    }

    /// Appends an event and returns its sequence number.
    fn emit(&mut self, kind: EventKind) -> u64 {
        bump(&mut self.counters.events[kind.tag() as usize]);
        self.log.push(self.now, kind)
    }

    fn reject(&mut self, sender: SubjectId, reason: Rejection) {
        self.reject_many(sender, reason, 1);
    }

    /// Counts `count` frames rejected for `reason`; logs the first rejection of each reason
    /// in each tick.
    fn reject_many(&mut self, sender: SubjectId, reason: Rejection, count: u64) {
        let counter = &mut self.counters.rejected[reason as usize];
        *counter = counter.saturating_add(count);
        let bit = 1u16 << (reason as u16);
        if self.rejections_logged & bit == 0 {
            self.rejections_logged |= bit;
            self.emit(EventKind::FrameRejected { sender, reason });
        }
    }

    fn status(&self, i: usize) -> SubjectStatus {
        let s = self.table.row(i);
        SubjectStatus {
            subject: self.table.id(i),
            class: s.class,
            critical: s.critical(),
            running: s.running(),
            reported_bytes: s.reported(),
            reports: s.reports(),
            last_frame_at: s.reported().map(|_| s.silent_since()),
            report_stale: s.report_is_stale(self.now, self.policy.report_stale_ticks),
            kernel_bytes: s.kernel(),
            enforced_bytes: s.enforced(&self.policy, self.now),
            limits: *self.limits(i),
            has_override: self.table.has_override(i),
            over_soft_since: s.over_soft_since(),
            kill: s.kill,
            reclaim: s.reclaim_pending().map(|id| (id, s.reclaim_acked())),
            last_seq: s.last_seq(),
            frames_this_tick: s.frames_this_tick,
        }
    }
}

fn is_always_critical(id: SubjectId) -> bool {
    bounds::ALWAYS_CRITICAL
        .iter()
        .any(|name| SubjectId::from_name(name) == id)
}

/// How many unregistered subjects' frame accounts one tick remembers.
const GONE_ACCOUNTS: usize = 4;

/// The frame accounts (frames taken, latest frame taken) of the subjects unregistered during
/// the current tick, so that unregistering and registering a subject again within one tick
/// does not refill its frame budget. Past [`GONE_ACCOUNTS`] of them in one tick, every subject
/// registered anew in that tick starts with its budget used (until the next tick).
#[derive(Debug, Clone, Copy)]
struct GoneThisTick {
    accounts: [(SubjectId, u16, bool); GONE_ACCOUNTS],
    len: u8,
    overflowed: bool,
}

impl GoneThisTick {
    const EMPTY: GoneThisTick = GoneThisTick {
        accounts: [(SubjectId(0), 0, false); GONE_ACCOUNTS],
        len: 0,
        overflowed: false,
    };

    /// `id` was unregistered with this frame account.
    fn note(&mut self, id: SubjectId, frames: u16, latest: bool) {
        if frames == 0 && !latest {
            return;
        }
        let len = usize::from(self.len);
        if let Some(a) = self.accounts[..len].iter_mut().find(|a| a.0 == id) {
            *a = (id, a.1.max(frames), a.2 || latest);
        } else if len < GONE_ACCOUNTS {
            self.accounts[len] = (id, frames, latest);
            self.len += 1;
        } else {
            self.overflowed = true;
        }
    }

    /// The frame account a subject registered anew now starts with, if not a fresh one.
    fn account(&self, id: SubjectId, policy: &Policy) -> Option<(u16, bool)> {
        let len = usize::from(self.len);
        match self.accounts[..len].iter().find(|a| a.0 == id) {
            Some(&(_, frames, latest)) => Some((frames, latest)),
            None if self.overflowed => Some((policy.frame_budget_per_tick, true)),
            None => None,
        }
    }
}
