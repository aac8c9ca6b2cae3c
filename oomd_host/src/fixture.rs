//! Test harness: drive a watchdog by service name, remember what the authority was asked,
//! and render the trace.
//!
//! ```
//! use oomd_host::fixture::{Harness, small_policy};
//!
//! let mut h = Harness::new(small_policy());
//! h.register("hog");
//! h.report("hog", 5_000).unwrap();
//! h.tick().unwrap();
//! assert_eq!(h.requests().len(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use oomd::{
    Answer, Authority, Event, EventTag, Input, InputError, Limits, Payload, Policy, PolicyUpdate,
    ReclaimRequest, RefusalReason, Registration, SubjectClass, SubjectStatus, TerminationRequest,
    Tick, Ticket, Watchdog,
};

/// An authority that only remembers what it was asked, in order.
#[derive(Debug, Default, Clone)]
pub struct RecordingAuthority {
    /// Every termination request, in the order the core made them.
    pub requests: Vec<TerminationRequest>,
    /// Every reclaim request, in the order the core made them.
    pub reclaims: Vec<ReclaimRequest>,
}

impl Authority for RecordingAuthority {
    fn request_termination(&mut self, request: TerminationRequest) {
        self.requests.push(request);
    }
    fn request_reclaim(&mut self, request: ReclaimRequest) {
        self.reclaims.push(request);
    }
}

/// Service names for traces, as the edge's manifest would give them.
#[derive(Debug, Default, Clone)]
pub struct TraceNames(BTreeMap<SubjectId, String>);

impl TraceNames {
    /// Adds `name` and returns its id.
    pub fn add(&mut self, name: &str) -> SubjectId {
        let id = SubjectId::from_name(name);
        self.0.insert(id, name.to_owned());
        id
    }

    /// All names known, by id.
    pub fn iter(&self) -> impl Iterator<Item = (SubjectId, &str)> {
        self.0.iter().map(|(id, n)| (*id, n.as_str()))
    }
}

impl oomd::trace::SubjectNames for TraceNames {
    fn name(&self, id: SubjectId) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }
}

/// One trace line: `t=<tick> #<seq> <words>`.
#[must_use]
pub fn render(event: &Event, names: &TraceNames) -> String {
    let mut line = format!("t={} #{} ", event.tick, event.seq);
    // Writing to a String cannot fail.
    let _ = oomd::trace::write_line(&mut line, &event.kind, names);
    line
}

/// A policy with small numbers that read well in tests: soft 1000, hard 2000 bytes, grace 5,
/// deadline 3, budget 2 kills per 10 ticks, 4 frames per sender per tick, margin 500, a report
/// stale after 20 silent ticks, subjects that never reported judged on their kernel figure.
#[must_use]
pub fn small_policy() -> Policy {
    Policy {
        limits: Limits {
            soft_bytes: 1_000,
            hard_bytes: 2_000,
            soft_grace_ticks: 5,
            exit_deadline_ticks: 3,
        },
        sample_period_ms: 100,
        kill_budget: 2,
        kill_window_ticks: 10,
        frame_budget_per_tick: 4,
        enforce_kernel: false,
        underreport_margin_bytes: 500,
        observe_only: false,
        report_stale_ticks: 20,
        enforce_kernel_when_silent: true,
        reclaim_target_percent: 0,
        reclaim_deadline_ticks: 4,
    }
}

/// A watchdog, a recording authority, the names of the subjects, each sender's next
/// sequence number, and every input fed so far.
#[derive(Debug, Clone)]
pub struct Harness<const S: usize = 16, const E: usize = 512> {
    /// The machine under test.
    pub wd: Watchdog<S, E>,
    /// What it asked for.
    pub authority: RecordingAuthority,
    /// Names for the trace.
    pub names: TraceNames,
    /// Every input fed, in order: a recording of the run.
    pub inputs: Vec<Input>,
    next_seq: BTreeMap<SubjectId, u64>,
    now: u64,
}

impl Harness {
    /// A harness of the default test capacities (16 subjects, 512 events) enforcing `policy`.
    ///
    /// # Panics
    /// If the policy is invalid (a test bug).
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        Self::with_capacity(policy)
    }
}

impl<const S: usize, const E: usize> Harness<S, E> {
    /// A harness of capacities `S` subjects and `E` events, enforcing `policy`.
    ///
    /// # Panics
    /// If the policy is invalid (a test bug).
    #[must_use]
    pub fn with_capacity(policy: Policy) -> Self {
        Harness {
            wd: Watchdog::new(policy).expect("test policy must be valid"),
            authority: RecordingAuthority::default(),
            names: TraceNames::default(),
            inputs: Vec::new(),
            next_seq: BTreeMap::new(),
            now: 0,
        }
    }

    /// Feeds one input and records it.
    pub fn feed(&mut self, input: Input) -> Result<(), InputError> {
        self.inputs.push(input);
        self.wd.handle(input, &mut self.authority)
    }

    /// The id of `name`.
    #[must_use]
    pub fn id(name: &str) -> SubjectId {
        SubjectId::from_name(name)
    }

    /// Registers a standard, non-critical subject.
    ///
    /// # Panics
    /// If the core refuses the registration.
    pub fn register(&mut self, name: &str) -> SubjectId {
        self.register_with(name, SubjectClass::Standard, false)
            .expect("registration refused")
    }

    /// Registers a subject the manifest marks critical.
    ///
    /// # Panics
    /// If the core refuses the registration.
    pub fn register_critical(&mut self, name: &str) -> SubjectId {
        self.register_with(name, SubjectClass::Standard, true)
            .expect("registration refused")
    }

    /// Registers a subject with every field chosen; it reports (has a memstat channel).
    pub fn register_with(
        &mut self,
        name: &str,
        class: SubjectClass,
        critical: bool,
    ) -> Result<SubjectId, InputError> {
        self.register_registration(name, class, critical, true)
    }

    /// Registers a standard subject without a memstat channel: it never reports.
    ///
    /// # Panics
    /// If the registration is refused.
    pub fn register_silent(&mut self, name: &str) -> SubjectId {
        self.register_registration(name, SubjectClass::Standard, false, false)
            .expect("registration refused")
    }

    fn register_registration(
        &mut self,
        name: &str,
        class: SubjectClass,
        critical: bool,
        reports: bool,
    ) -> Result<SubjectId, InputError> {
        let subject = self.names.add(name);
        self.next_seq.insert(subject, 1);
        self.feed(Input::Register(Registration {
            subject,
            class,
            critical,
            reports,
        }))
        .map(|()| subject)
    }

    /// `name`'s newest frame after its budget was used (`bytes`, its next sequence number),
    /// with `discarded` older frames dropped unread by the edge.
    pub fn latest(&mut self, name: &str, bytes: u64, discarded: u16) -> Result<(), InputError> {
        let sender = Self::id(name);
        let frame = Frame {
            seq: self.take_seq(sender),
            current_bytes: bytes,
            peak_bytes: bytes,
            claimed_subject: Some(sender),
        };
        let mut buf = [0; MAX_FRAME_LEN];
        let n = frame.encode(&mut buf).expect("test frame must encode");
        self.feed(Input::LatestFrame {
            sender,
            payload: Payload::new(&buf[..n]),
            discarded,
        })
    }

    /// Makes `name`'s next frame carry sequence number `seq` (and count on from there).
    pub fn set_next_seq(&mut self, name: &str, seq: u64) {
        self.next_seq.insert(Self::id(name), seq);
    }

    /// `name` honestly reports `bytes` (current and peak), with its next sequence number.
    pub fn report(&mut self, name: &str, bytes: u64) -> Result<(), InputError> {
        let sender = Self::id(name);
        let seq = self.take_seq(sender);
        self.send_frame(
            name,
            Frame {
                seq,
                current_bytes: bytes,
                peak_bytes: bytes,
                claimed_subject: Some(sender),
            },
        )
    }

    /// The next sequence number `sender` would use, consumed.
    pub fn take_seq(&mut self, sender: SubjectId) -> u64 {
        let slot = self.next_seq.entry(sender).or_insert(1);
        let seq = *slot;
        *slot = slot.wrapping_add(1);
        seq
    }

    /// `sender` (as the transport authenticates it) sends `frame`.
    ///
    /// # Panics
    /// If `frame` cannot be encoded (a test bug).
    pub fn send_frame(&mut self, sender: &str, frame: Frame) -> Result<(), InputError> {
        let mut buf = [0; MAX_FRAME_LEN];
        let n = frame.encode(&mut buf).expect("test frame must encode");
        self.send_bytes(sender, &buf[..n])
    }

    /// `sender` (as the transport authenticates it) sends raw bytes.
    pub fn send_bytes(&mut self, sender: &str, bytes: &[u8]) -> Result<(), InputError> {
        let sender = self.names.add(sender);
        self.feed(Input::Frame {
            sender,
            payload: Payload::new(bytes),
        })
    }

    /// The kernel charges `bytes` to `name`.
    pub fn kernel(&mut self, name: &str, bytes: u64) -> Result<(), InputError> {
        self.feed(Input::KernelReading {
            subject: Self::id(name),
            bytes,
        })
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) -> Result<(), InputError> {
        self.now += 1;
        self.feed(Input::Tick(Tick(self.now)))
    }

    /// Advances time by `n` ticks.
    ///
    /// # Panics
    /// If a tick is refused (it cannot be: ticks only go forward here).
    pub fn ticks(&mut self, n: u64) {
        for _ in 0..n {
            self.tick().expect("forward tick");
        }
    }

    /// The current tick of the harness.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the harness's clock to `tick` without feeding anything (after a
    /// [`Restore::Resume`](oomd::Restore::Resume) that set the watchdog's clock there).
    pub fn set_now(&mut self, tick: u64) {
        self.now = tick;
    }

    /// The authority accepts `ticket`.
    pub fn accept(&mut self, ticket: Ticket) -> Result<(), InputError> {
        self.feed(Input::Answer {
            ticket,
            answer: Answer::Accepted,
        })
    }

    /// The authority refuses `ticket`.
    pub fn refuse(&mut self, ticket: Ticket, reason: RefusalReason) -> Result<(), InputError> {
        self.feed(Input::Answer {
            ticket,
            answer: Answer::Refused(reason),
        })
    }

    /// The authority reports that `name` exited.
    pub fn exited(&mut self, name: &str) -> Result<(), InputError> {
        self.feed(Input::Exited(Self::id(name)))
    }

    /// Replaces the global policy.
    pub fn set_policy(&mut self, policy: Policy) -> Result<(), InputError> {
        self.feed(Input::SetPolicy(PolicyUpdate::Global(policy)))
    }

    /// Sets or clears one subject's limits.
    pub fn set_limits(&mut self, name: &str, limits: Option<Limits>) -> Result<(), InputError> {
        let subject = Self::id(name);
        self.feed(Input::SetPolicy(PolicyUpdate::SubjectLimits {
            subject,
            limits,
        }))
    }

    /// Every request the authority received.
    #[must_use]
    pub fn requests(&self) -> &[TerminationRequest] {
        &self.authority.requests
    }

    /// The most recent request.
    ///
    /// # Panics
    /// If there was none.
    #[must_use]
    pub fn last_request(&self) -> TerminationRequest {
        *self.authority.requests.last().expect("no request was made")
    }

    /// Requests made for `name`.
    #[must_use]
    pub fn requests_for(&self, name: &str) -> Vec<TerminationRequest> {
        let id = Self::id(name);
        self.authority
            .requests
            .iter()
            .filter(|r| r.subject == id)
            .copied()
            .collect()
    }

    /// The status of `name`.
    ///
    /// # Panics
    /// If `name` is not registered.
    #[must_use]
    pub fn status(&self, name: &str) -> SubjectStatus {
        self.wd
            .subject(Self::id(name))
            .expect("subject not registered")
    }

    /// Events of one kind ever appended (from the counters, which survive the ring).
    #[must_use]
    pub fn count(&self, tag: EventTag) -> u64 {
        self.wd.counters().events(tag)
    }

    /// Every event still in the ring.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.wd.events(0, E).collect()
    }

    /// The words of every event still in the ring, without tick and seq.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| {
                let mut s = String::new();
                let _ = oomd::trace::write_line(&mut s, &e.kind, &self.names);
                s
            })
            .collect()
    }

    /// The full trace, one rendered line per event.
    #[must_use]
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for e in self.events() {
            let _ = writeln!(out, "{}", render(&e, &self.names));
        }
        out
    }
}
