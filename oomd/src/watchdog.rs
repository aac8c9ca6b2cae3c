//! The state machine.

use core::cmp::Reverse;

use memstat::SubjectId;

use crate::event::EventLog;
use crate::subject::Subject;
use crate::{
    limits, Answer, Authority, DenyReason, EventKind, EventTag, Events, Input, KillReason,
    KillState, Limits, Payload, Policy, PolicyError, PolicyUpdate, Registration, RegistrationError,
    Rejection, Restore, SubjectStatus, TerminationMode, TerminationRequest, Tick, Ticket,
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
    /// A [`Restore::Resume`] reached a watchdog that already took inputs: ignored.
    NotFresh,
    /// A [`Restore::KillInFlight`] named a subject that already has a kill of its own.
    KillAlreadyPending,
}

/// Counters that survive the event ring's overwriting. Monotonic, saturating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    events: [u64; EventTag::COUNT],
    rejected: [u64; Rejection::COUNT],
    /// Kernel readings for unknown or exited subjects.
    pub readings_ignored: u64,
    /// Exits reported for unknown or exited subjects.
    pub exits_ignored: u64,
    /// Unregistrations of unknown subjects.
    pub unregisters_ignored: u64,
    /// Policies refused by validation.
    pub policies_refused: u64,
    /// Coalesced latest frames ([`Input::LatestFrame`]) accepted.
    pub latest_frames: u64,
}

impl Counters {
    /// Events of this kind ever appended, including those since overwritten.
    #[must_use]
    pub const fn events(&self, tag: EventTag) -> u64 {
        self.events[tag as usize]
    }

    /// Frames rejected for this reason.
    #[must_use]
    pub const fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected[reason as usize]
    }

    /// Frames rejected for any reason.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().fold(0, |a, &b| a.saturating_add(b))
    }
}

/// Recent kill decisions, to enforce the kill budget over a sliding window.
#[derive(Clone, Copy, Debug)]
struct KillBudget {
    recent: [Tick; limits::MAX_KILL_BUDGET as usize],
    len: usize,
    next: usize,
}

impl KillBudget {
    const fn new() -> Self {
        KillBudget {
            recent: [Tick::ZERO; limits::MAX_KILL_BUDGET as usize],
            len: 0,
            next: 0,
        }
    }

    /// Kills decided in the `window` ticks ending at `now` (ticks `now - window + 1 ..= now`).
    fn used(&self, now: Tick, window: u64) -> usize {
        self.recent[..self.len]
            .iter()
            .filter(|&&t| now.since(t) < window)
            .count()
    }

    fn allows(&self, now: Tick, policy: &Policy) -> bool {
        self.used(now, policy.kill_window_ticks) < usize::from(policy.kill_budget)
    }

    fn record(&mut self, now: Tick) {
        self.recent[self.next] = now;
        self.next = (self.next + 1) % self.recent.len();
        self.len = (self.len + 1).min(self.recent.len());
    }
}

/// The watchdog: a pure, bounded, deterministic state machine.
///
/// `SUBJECTS` is the subject-table capacity and `EVENTS` the event-ring capacity (defaults in
/// [`limits`]). See the crate documentation for how to drive it.
#[derive(Debug, Clone)]
pub struct Watchdog<
    const SUBJECTS: usize = { limits::DEFAULT_SUBJECTS },
    const EVENTS: usize = { limits::DEFAULT_EVENTS },
> {
    policy: Policy,
    now: Tick,
    next_ticket: u32,
    budget: KillBudget,
    /// Rejection reasons already logged as an event during the current tick (bit per reason).
    rejections_logged: u16,
    /// Ids of the rows `..len` in use, sorted; `subjects[i]` is the row of `ids[i]`. Kept
    /// apart from the rows so that the lookup of a frame's sender searches a dense array.
    ids: [SubjectId; SUBJECTS],
    subjects: [Subject; SUBJECTS],
    len: usize,
    /// Hash index over `ids[..len]`: `heads[bucket]` is the first row of a bucket, `chain[row]`
    /// the next row in the same bucket, [`NO_ROW`] ends a chain. Lookup only: nothing ever
    /// iterates in hash order, so hashing cannot make decisions depend on it.
    heads: [u16; SUBJECTS],
    chain: [u16; SUBJECTS],
    /// Per-subject limits, indexed by `Subject::override_slot`.
    overrides: [Option<Limits>; limits::MAX_OVERRIDES],
    log: EventLog<EVENTS>,
    counters: Counters,
}

impl<const SUBJECTS: usize, const EVENTS: usize> Watchdog<SUBJECTS, EVENTS> {
    const CAPACITY_OK: () = assert!(
        SUBJECTS > 0 && SUBJECTS < u16::MAX as usize,
        "subject capacity must be in 1..65535"
    );

    /// A watchdog at [`Tick::ZERO`] with no subjects, enforcing `policy`.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        let () = Self::CAPACITY_OK;
        policy.validate()?;
        Ok(Watchdog {
            policy,
            now: Tick::ZERO,
            next_ticket: 1,
            budget: KillBudget::new(),
            rejections_logged: 0,
            ids: [SubjectId(0); SUBJECTS],
            subjects: [Subject::VACANT; SUBJECTS],
            len: 0,
            heads: [NO_ROW; SUBJECTS],
            chain: [NO_ROW; SUBJECTS],
            overrides: [None; limits::MAX_OVERRIDES],
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
        self.len
    }

    /// The status of one subject.
    #[must_use]
    pub fn subject(&self, id: SubjectId) -> Option<SubjectStatus> {
        self.find(id).map(|i| self.status(i))
    }

    /// Every subject's status, in subject-id order.
    pub fn subjects(&self) -> impl Iterator<Item = SubjectStatus> + '_ {
        (0..self.len).map(|i| self.status(i))
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
            Input::Frame { sender, payload } => self.on_frame(sender, &payload),
            Input::LatestFrame {
                sender,
                payload,
                discarded,
            } => self.on_latest_frame(sender, &payload, discarded),
            Input::KernelReading { subject, bytes } => self.on_reading(subject, bytes),
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
        if went_backwards {
            self.emit(EventKind::TickClamped { got: t });
        } else {
            self.now = t;
        }
        self.rejections_logged = 0;

        // Collect the subjects that may need action, then act in the documented total order:
        // victim class ascending, enforced bytes descending, subject id ascending.
        let mut order = [0u16; SUBJECTS];
        let mut n = 0;
        let policy = self.policy;
        for (i, s) in self.subjects[..self.len].iter_mut().enumerate() {
            s.frames_this_tick = 0;
            s.set_latest_taken(false);
            let limits = override_or(&self.overrides, s, &policy);
            if needs_attention(s, limits, &policy, self.now) {
                order[n] = i as u16; // i < SUBJECTS < u16::MAX (CAPACITY_OK)
                n += 1;
            }
        }
        #[cfg(feature = "attention-self-check")]
        self.check_skipped_are_quiet(&order[..n]);
        let subjects = &self.subjects;
        let ids = &self.ids;
        order[..n].sort_unstable_by_key(|&i| {
            let s = &subjects[usize::from(i)];
            (
                s.class,
                Reverse(s.enforced(&policy, self.now)),
                ids[usize::from(i)],
            )
        });
        for &i in &order[..n] {
            self.evaluate(usize::from(i), authority);
        }
        if went_backwards {
            Err(InputError::TickWentBackwards)
        } else {
            Ok(())
        }
    }

    fn on_frame(&mut self, sender: SubjectId, payload: &Payload) -> Result<(), InputError> {
        let budget = self.policy.frame_budget_per_tick;
        let now = self.now;
        let verdict = match self.find(sender) {
            None => Err(Rejection::UnknownSender),
            Some(i) => {
                let s = &mut self.subjects[i];
                accept_frame(s, sender, Budget::PerTick(budget), payload, now)
            }
        };
        verdict.map_err(|reason| {
            self.reject(sender, reason);
            InputError::Frame(reason)
        })
    }

    fn on_latest_frame(
        &mut self,
        sender: SubjectId,
        payload: &Payload,
        discarded: u16,
    ) -> Result<(), InputError> {
        let now = self.now;
        let Some(i) = self.find(sender) else {
            self.reject_many(sender, Rejection::UnknownSender, u64::from(discarded) + 1);
            return Err(InputError::Frame(Rejection::UnknownSender));
        };
        if discarded > 0 {
            self.reject_many(sender, Rejection::OverBudget, u64::from(discarded));
        }
        let s = &mut self.subjects[i];
        match accept_frame(s, sender, Budget::Latest, payload, now) {
            Ok(()) => {
                bump(&mut self.counters.latest_frames);
                Ok(())
            }
            Err(reason) => {
                self.reject(sender, reason);
                Err(InputError::Frame(reason))
            }
        }
    }

    fn on_reading(&mut self, subject: SubjectId, bytes: u64) -> Result<(), InputError> {
        match self.find(subject) {
            Some(i) if self.subjects[i].running() => {
                self.subjects[i].set_kernel(bytes);
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
        match self.position(r.subject) {
            Ok(i) if self.subjects[i].running() => {
                return refused(self, RegistrationError::Duplicate)
            }
            Ok(i) => {
                let now = self.now;
                let s = &mut self.subjects[i];
                s.clear_observations(now);
                s.class = r.class;
                s.set_critical(critical);
                s.set_reports(r.reports);
                s.set_running(true);
            }
            Err(_) if self.len == SUBJECTS => return refused(self, RegistrationError::TableFull),
            Err(at) => {
                self.ids.copy_within(at..self.len, at + 1);
                self.subjects.copy_within(at..self.len, at + 1);
                self.ids[at] = r.subject;
                self.subjects[at] = Subject::new(r.class, critical, r.reports, self.now);
                self.len += 1;
                self.rebuild_index();
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
        let Some(at) = self.find(id) else {
            bump(&mut self.counters.unregisters_ignored);
            return Err(InputError::UnknownSubject);
        };
        self.release_override(at);
        self.ids.copy_within(at + 1..self.len, at);
        self.subjects.copy_within(at + 1..self.len, at);
        self.len -= 1;
        self.ids[self.len] = SubjectId(0);
        self.subjects[self.len] = Subject::VACANT;
        self.rebuild_index();
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
                .and_then(|()| self.find(subject).ok_or(PolicyError::UnknownSubject))
                .and_then(|i| self.set_override(i, limits))
                .map(|()| Some(subject)),
        };
        match result {
            Ok(subject) => {
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
        let found = self.subjects[..self.len].iter().position(|s| {
            matches!(s.kill, KillState::Pending { ticket: t, acknowledged, .. }
                if t == ticket && !(acknowledged && answer == Answer::Accepted))
        });
        let Some(i) = found else {
            self.emit(EventKind::AnswerIgnored { ticket });
            return Err(InputError::StaleAnswer);
        };
        let subject = self.ids[i];
        match answer {
            Answer::Accepted => {
                if let KillState::Pending { acknowledged, .. } = &mut self.subjects[i].kill {
                    *acknowledged = true;
                }
                self.emit(EventKind::KillAcknowledged { subject, ticket });
            }
            Answer::Refused(reason) => {
                let retry_at = self.now.plus(self.policy.kill_window_ticks);
                self.subjects[i].kill = KillState::Refused { retry_at };
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
        let i = match self.find(id) {
            Some(i) if self.subjects[i].running() => i,
            _ => {
                bump(&mut self.counters.exits_ignored);
                return Err(InputError::UnknownSubject);
            }
        };
        let s = &mut self.subjects[i];
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
        s.clear_observations(self.now);
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
                let fresh = self.log.next_seq() == 0 && self.len == 0 && self.now == Tick::ZERO;
                if !fresh {
                    return Err(InputError::NotFresh);
                }
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
                let i = match self.find(subject) {
                    Some(i) if self.subjects[i].running() => i,
                    _ => return Err(InputError::UnknownSubject),
                };
                if !matches!(
                    self.subjects[i].kill,
                    KillState::Idle | KillState::Throttled { .. }
                ) {
                    return Err(InputError::KillAlreadyPending);
                }
                let limits = self.limits_of(&self.subjects[i]);
                let now = self.now;
                let s = &mut self.subjects[i];
                s.kill = KillState::Pending {
                    ticket,
                    mode,
                    acknowledged: accepted,
                    escalated_from_acknowledged: false,
                    deadline: now.plus(limits.exit_deadline_ticks),
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

    /// Everything a tick does for one subject, in a fixed order: under-report check, the
    /// deadline of a pending kill, the soft crossing, then the kill decision.
    fn evaluate<A: Authority + ?Sized>(&mut self, i: usize, authority: &mut A) {
        let policy = self.policy;
        let now = self.now;
        let s = self.subjects[i];
        let id = self.ids[i];
        let limits = self.limits_of(&s);
        let bytes = s.enforced(&policy, now);

        let under = s.under_reports(policy.underreport_margin_bytes);
        if under && !s.underreport_noted() {
            self.emit(EventKind::UnderReport {
                subject: id,
                reported: s.reported().unwrap_or(0),
                kernel: s.kernel().unwrap_or(0),
            });
        }
        self.subjects[i].set_underreport_noted(under);

        if !s.stale_noted() && s.report_is_stale(now, policy.report_stale_ticks) {
            self.subjects[i].set_stale_noted();
            self.emit(EventKind::ReportStale {
                subject: id,
                since: s.silent_since(),
            });
        }

        if let KillState::Pending {
            ticket,
            mode,
            deadline,
            bytes: decided,
            ..
        } = s.kill
        {
            if now >= deadline {
                match mode {
                    TerminationMode::Graceful => {
                        self.emit(EventKind::KillEscalated {
                            subject: id,
                            ticket,
                        });
                        self.request(i, TerminationMode::Forced, decided, authority);
                    }
                    TerminationMode::Forced => {
                        self.subjects[i].kill = KillState::Failed { since: now };
                        self.emit(EventKind::KillFailed {
                            subject: id,
                            bytes: decided,
                        });
                    }
                }
            }
            return;
        }

        let mut over_soft_since = s.over_soft_since();
        if bytes >= limits.soft_bytes {
            if over_soft_since.is_none() {
                over_soft_since = Some(now);
                self.emit(EventKind::SoftExceeded {
                    subject: id,
                    bytes,
                    soft: limits.soft_bytes,
                });
            }
        } else if bytes < limits.soft_rearm_bytes() {
            // The incident is over: whatever was denied, refused, failed or throttled re-arms.
            over_soft_since = None;
            self.subjects[i].kill = KillState::Idle;
        }
        self.subjects[i].set_over_soft_since(over_soft_since);

        let reason = if bytes >= limits.hard_bytes {
            Some(KillReason::HardLimit)
        } else {
            over_soft_since
                .filter(|&since| {
                    limits.soft_grace_ticks > 0 && now.since(since) >= limits.soft_grace_ticks
                })
                .map(|_| KillReason::SoftGrace)
        };
        let kill = self.subjects[i].kill;
        match (reason, kill) {
            (None, KillState::Throttled { .. }) => self.subjects[i].kill = KillState::Idle,
            (None, _) => {}
            (Some(reason), KillState::Idle | KillState::Throttled { .. }) => {
                self.decide(i, reason, bytes, authority);
            }
            (Some(reason), KillState::Refused { retry_at }) if now >= retry_at => {
                self.decide(i, reason, bytes, authority);
            }
            (Some(reason), KillState::WouldKill { .. }) if !policy.observe_only => {
                self.decide(i, reason, bytes, authority);
            }
            (Some(_), _) => {}
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
        let s = self.subjects[i];
        let id = self.ids[i];
        if s.critical() {
            self.subjects[i].kill = KillState::Denied { since: now };
            self.emit(EventKind::KillDenied {
                subject: id,
                bytes,
                reason: DenyReason::Critical,
            });
            return;
        }
        if !self.budget.allows(now, &self.policy) {
            if !matches!(s.kill, KillState::Throttled { .. }) {
                self.subjects[i].kill = KillState::Throttled { since: now };
                self.emit(EventKind::KillThrottled { subject: id, bytes });
            }
            return;
        }
        self.budget.record(now);
        if self.policy.observe_only {
            self.subjects[i].kill = KillState::WouldKill { since: now };
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

    /// Logs a request, records it as pending, then hands it to the authority.
    fn request<A: Authority + ?Sized>(
        &mut self,
        i: usize,
        mode: TerminationMode,
        bytes: u64,
        authority: &mut A,
    ) {
        let limits = self.limits_of(&self.subjects[i]);
        let ticket = Ticket(self.next_ticket);
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let subject = self.ids[i];
        // An escalation is the same kill: if the authority accepted the graceful request, an
        // exit confirms the kill even before the forced request is answered.
        let escalated_from_acknowledged = matches!(
            self.subjects[i].kill,
            KillState::Pending {
                acknowledged: true,
                ..
            } | KillState::Pending {
                escalated_from_acknowledged: true,
                ..
            }
        );
        self.subjects[i].kill = KillState::Pending {
            ticket,
            mode,
            acknowledged: false,
            escalated_from_acknowledged,
            deadline: self.now.plus(limits.exit_deadline_ticks),
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

    /// Test builds only: evaluates a copy of the machine for every subject the tick skipped
    /// and panics if that would have changed anything.
    #[cfg(feature = "attention-self-check")]
    fn check_skipped_are_quiet(&self, selected: &[u16]) {
        struct MustNotBeCalled;
        impl Authority for MustNotBeCalled {
            fn request_termination(&mut self, request: TerminationRequest) {
                panic!("a subject skipped by the tick would have been requested: {request:?}");
            }
        }
        for i in 0..self.len {
            if selected.iter().any(|&j| usize::from(j) == i) {
                continue;
            }
            let mut probe = self.clone();
            probe.evaluate(i, &mut MustNotBeCalled);
            assert!(
                probe.subjects[i] == self.subjects[i]
                    && probe.log.next_seq() == self.log.next_seq(),
                "tick {} skipped subject {:?}, but evaluating it changes {:?} into {:?}",
                self.now.0,
                self.ids[i],
                self.subjects[i],
                probe.subjects[i],
            );
        }
    }

    // ----- helpers -------------------------------------------------------------------------

    fn limits_of(&self, s: &Subject) -> Limits {
        *override_or(&self.overrides, s, &self.policy)
    }

    /// Sets or clears row `i`'s override, taking or freeing a slot of the override table.
    fn set_override(&mut self, i: usize, limits: Option<Limits>) -> Result<(), PolicyError> {
        let Some(limits) = limits else {
            self.release_override(i);
            return Ok(());
        };
        let slot = match self.subjects[i].override_slot {
            Subject::NO_OVERRIDE => self
                .overrides
                .iter()
                .position(Option::is_none)
                .ok_or(PolicyError::TooManyOverrides)?,
            slot => usize::from(slot),
        };
        self.overrides[slot] = Some(limits);
        self.subjects[i].override_slot = slot as u8; // slot < MAX_OVERRIDES < NO_OVERRIDE
        Ok(())
    }

    fn release_override(&mut self, i: usize) {
        let slot = core::mem::replace(&mut self.subjects[i].override_slot, Subject::NO_OVERRIDE);
        if let Some(o) = self.overrides.get_mut(usize::from(slot)) {
            *o = None;
        }
    }

    /// Where `id`'s row is, or where it would be inserted (rows are sorted by id).
    fn position(&self, id: SubjectId) -> Result<usize, usize> {
        self.ids[..self.len].binary_search(&id)
    }

    /// The row of `id`, through the hash index: O(1) expected, whatever the table size.
    fn find(&self, id: SubjectId) -> Option<usize> {
        let mut row = self.heads[bucket::<SUBJECTS>(id)];
        while row != NO_ROW {
            let i = usize::from(row);
            if self.ids[i] == id {
                return Some(i);
            }
            row = self.chain[i];
        }
        None
    }

    /// Recomputes the hash index after rows moved. O(len); only registration and removal
    /// move rows.
    fn rebuild_index(&mut self) {
        self.heads = [NO_ROW; SUBJECTS];
        for i in (0..self.len).rev() {
            let b = bucket::<SUBJECTS>(self.ids[i]);
            self.chain[i] = self.heads[b];
            self.heads[b] = i as u16; // i < SUBJECTS < u16::MAX (CAPACITY_OK)
        }
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
        let s = &self.subjects[i];
        SubjectStatus {
            subject: self.ids[i],
            class: s.class,
            critical: s.critical(),
            running: s.running(),
            reported_bytes: s.reported(),
            reports: s.reports(),
            last_frame_at: s.reported().map(|_| s.silent_since()),
            report_stale: s.report_is_stale(self.now, self.policy.report_stale_ticks),
            kernel_bytes: s.kernel(),
            enforced_bytes: s.enforced(&self.policy, self.now),
            limits: self.limits_of(s),
            has_override: s.override_slot != Subject::NO_OVERRIDE,
            over_soft_since: s.over_soft_since(),
            kill: s.kill,
            last_seq: s.last_seq(),
            frames_this_tick: s.frames_this_tick,
        }
    }
}

/// Which budget a frame is taken under.
#[derive(Clone, Copy)]
enum Budget {
    /// An ordinary frame: at most this many per sender per tick.
    PerTick(u16),
    /// The coalesced latest frame of a sender over its budget: at most one per tick.
    Latest,
}

/// The checks a frame passes, cheapest first; on success the subject's report is updated.
// Inlined into the frame path: measurably faster (benches/core.rs, docs/perf.md).
#[inline(always)]
fn accept_frame(
    s: &mut Subject,
    sender: SubjectId,
    budget: Budget,
    payload: &Payload,
    now: Tick,
) -> Result<(), Rejection> {
    if !s.running() {
        return Err(Rejection::NotRunning);
    }
    // A frame counts against the budget whether or not it turns out valid: floods of garbage
    // are as costly as floods of frames.
    match budget {
        Budget::PerTick(n) if s.frames_this_tick >= n => return Err(Rejection::OverBudget),
        Budget::PerTick(_) => s.frames_this_tick += 1,
        Budget::Latest if s.latest_taken() => return Err(Rejection::OverBudget),
        Budget::Latest => s.set_latest_taken(true),
    }
    let frame = payload.decode().map_err(Rejection::from_decode)?;
    if frame.claimed_subject.is_some_and(|claim| claim != sender) {
        return Err(Rejection::ClaimMismatch);
    }
    if s.last_seq()
        .is_some_and(|last| !seq_is_newer(frame.seq, last))
    {
        return Err(Rejection::StaleSequence);
    }
    s.set_report(frame.seq, frame.current_bytes, now);
    Ok(())
}

/// Whether `seq` follows `last` in the 64-bit sequence space, which wraps: serial-number
/// arithmetic (RFC 1982), so `0` follows `u64::MAX` and a sender's jump to the end of the
/// space cannot freeze its report. `seq` is newer when it is 1 to 2^63 − 1 steps ahead of
/// `last`; equal, behind, or exactly 2^63 away (ambiguous) is stale.
pub(crate) const fn seq_is_newer(seq: u64, last: u64) -> bool {
    let ahead = seq.wrapping_sub(last);
    ahead != 0 && ahead < 1 << 63
}

/// Whether [`Watchdog::evaluate`] could change anything for this subject at tick `now`: log
/// an event, move its state, or spend budget. Exact, not a heuristic: a subject for which this
/// is false is skipped, so steady states (below soft, or over soft and merely warned) cost a
/// scan and no sort. With the `attention-self-check` feature, every skip is verified by
/// evaluating a copy.
fn needs_attention(s: &Subject, limits: &Limits, policy: &Policy, now: Tick) -> bool {
    if !s.running() {
        return false;
    }
    if s.under_reports(policy.underreport_margin_bytes) != s.underreport_noted() {
        return true; // an under-report starts or ends
    }
    if !s.stale_noted() && s.report_is_stale(now, policy.report_stale_ticks) {
        return true; // a report turns stale
    }
    if let KillState::Pending { deadline, .. } = s.kill {
        return now >= deadline; // escalate or fail
    }
    let bytes = s.enforced(policy, now);
    let Some(since) = s.over_soft_since() else {
        // A soft crossing (hard implies soft). Other kill states always sit over soft; if one
        // did not, evaluating it is the safe answer.
        return bytes >= limits.soft_bytes || !matches!(s.kill, KillState::Idle);
    };
    if bytes < limits.soft_rearm_bytes() {
        return true; // the incident ends
    }
    let due = bytes >= limits.hard_bytes
        || (limits.soft_grace_ticks > 0 && now.since(since) >= limits.soft_grace_ticks);
    match s.kill {
        KillState::Idle => due,
        KillState::Throttled { .. } => true, // retried while due, cleared when not
        KillState::Refused { retry_at } => due && now >= retry_at,
        KillState::WouldKill { .. } => due && !policy.observe_only,
        KillState::Denied { .. } | KillState::Failed { .. } | KillState::Pending { .. } => false,
    }
}

/// Ends a chain of the hash index; never a row (rows are below `SUBJECTS < u16::MAX`).
const NO_ROW: u16 = u16::MAX;

/// The bucket of `id` among `S`: Fibonacci hashing (so that ids that are not already
/// well-mixed hashes, such as small integers, still spread), then a multiply-shift range
/// reduction (no division).
fn bucket<const S: usize>(id: SubjectId) -> usize {
    let mixed = id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    ((mixed * S as u64) >> 32) as usize
}

/// The limits in force for `s`: its override, or the global ones.
fn override_or<'a>(overrides: &'a [Option<Limits>], s: &Subject, policy: &'a Policy) -> &'a Limits {
    match overrides.get(usize::from(s.override_slot)) {
        Some(Some(limits)) => limits,
        _ => &policy.limits,
    }
}

fn is_always_critical(id: SubjectId) -> bool {
    limits::ALWAYS_CRITICAL
        .iter()
        .any(|name| SubjectId::from_name(name) == id)
}

fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}
