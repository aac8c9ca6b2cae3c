//! A deterministic simulator: virtual subjects with scripted memory growth, a fake process
//! authority with scripted delays and refusals, and the [`Watchdog`] between them.
//!
//! Nothing here reads a clock or the operating system's randomness. Every random choice (growth
//! jitter, delays drawn from a range, garbage bytes) comes from [`Rng`], a splitmix64 generator
//! seeded from the scenario's `seed`, so a [`Setup`] always produces the same [`Run`].
//!
//! # The order of one simulated tick
//!
//! For each tick `t` in `1..=ticks`:
//!
//! 1. **Subjects publish**, in the order of the scenario file. For each subject:
//!    - if it starts at `t` (its `start_tick`, or a restart `restart_after` ticks after its
//!      exit), it is registered (`Input::Register`; on its first start also its limits
//!      override, `Input::SetPolicy`) and holds `start_bytes`;
//!    - otherwise, if it is running, it grows by `growth_per_tick` plus a draw in
//!      `0..=jitter`, capped at `max_bytes`;
//!    - if it is running and a reclaim request is due for it (see below), it carries it out
//!      as its [`ReclaimMode`] says, before publishing;
//!    - if it is running, it sends its frames according to its [`ReportMode`]
//!      (`Input::Frame`, the sender being the subject itself: the transport authenticated it),
//!      then, when the scenario has kernel readings, `Input::KernelReading` of held bytes plus
//!      its `kernel_overhead`;
//!    - last, if a reclaim request was due and its mode answers, `Input::ReclaimAck` quoting
//!      the request's id: a service publishes what it did, then acknowledges.
//! 2. **The fake authority delivers** every answer and exit due at `t`, oldest first
//!    (`Input::Answer`, `Input::Exited`). A subject that exits stops growing and publishing.
//! 3. **Time advances**: `Input::Tick(Tick(t))`.
//!
//! Termination requests the core makes are scheduled by the fake authority (see
//! [`AuthoritySpec`]) at the end of step 1 (kills decided at a frame or reading over hard,
//! in the same input) and of step 3 (kills due at the tick), from tick `t`: an answer with
//! no delay is delivered in step 2 of the same tick.
//!
//! Reclaim requests the core makes are routed, at the same two points, to the subject they
//! name, if it is running; one made during tick `t` is due in step 1 of tick
//! `t + reclaim_delay` (see [`SubjectSpec::reclaim_delay`]), and is dropped if by then the
//! subject has exited (or exited and restarted: a request is for the instance it was made to).
//!
//! Every input is recorded, and the event log is drained after every input, so none is lost
//! to the ring (a loss would be an error, [`SimError::EventsLost`]).

use std::collections::BTreeMap;
use std::fmt;

use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use memstat::{ReclaimAck, MAX_ACK_LEN};
use oomd::{
    Answer, Counters, Event, EventTag, Input, InputError, Limits, Payload, Policy, PolicyError,
    PolicyUpdate, ReclaimRequest, RefusalReason, Registration, Rejection, SubjectClass,
    TerminationMode, TerminationRequest, Tick, Watchdog,
};

use crate::fixture::{render, RecordingAuthority, TraceNames};

// ----- randomness ---------------------------------------------------------------------------

/// splitmix64 (Steele, Lea, Flood 2014; the public-domain reference by Vigna): tiny, fast,
/// and implemented here so that the sequence a seed gives can never change under us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose first output is splitmix64's first output for `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for one purpose (`label`, e.g. a subject's id), so that adding a
    /// subject to a scenario does not change the draws of the others.
    #[must_use]
    pub fn stream(seed: u64, label: u64) -> Self {
        let mut mix = Rng::new(seed);
        let a = mix.next_u64();
        Rng::new(a ^ Rng::new(label).next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (`lo` when `hi < lo`), by multiply-shift: one draw per call.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = u128::from(hi - lo) + 1;
        let x = u128::from(self.next_u64());
        // x * span < 2^64 * span, so the shifted value is below span and fits in u64.
        lo + u64::try_from((x * span) >> 64).unwrap_or(0)
    }
}

// ----- the model ----------------------------------------------------------------------------

/// A number of ticks, fixed or drawn from `min..=max` for each use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    /// Fewest ticks.
    pub min: u64,
    /// Most ticks.
    pub max: u64,
}

impl Delay {
    /// Always `ticks`.
    #[must_use]
    pub const fn fixed(ticks: u64) -> Self {
        Delay {
            min: ticks,
            max: ticks,
        }
    }

    /// One delay; draws from `rng` only when the range is not a single value.
    pub fn draw(&self, rng: &mut Rng) -> u64 {
        if self.min >= self.max {
            self.min
        } else {
            rng.range(self.min, self.max)
        }
    }
}

/// What a subject sends the watchdog each tick it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportMode {
    /// One frame: current = peak = held bytes.
    Honest,
    /// One frame reporting held bytes divided by `factor`.
    UnderFactor(u64),
    /// One frame reporting a fixed figure, whatever it holds.
    UnderFixed(u64),
    /// No frames at all.
    Silent,
    /// One honest-valued frame that claims to come from the subject named `claim`.
    Spoof {
        /// The name claimed in `claimed_subject`.
        claim: String,
    },
    /// `frames` honest frames per tick (more than the per-sender budget is a flood).
    Flood {
        /// Frames per tick.
        frames: u32,
    },
    /// One malformed datagram per tick: a corrupted frame, drawn from the seed (bad magic, bad
    /// version, truncated, trailing bytes, oversize, inconsistent, bad option tag, or noise).
    Garbage,
}

impl ReportMode {
    /// The word scenario files use.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::UnderFactor(_) | Self::UnderFixed(_) => "under",
            Self::Silent => "silent",
            Self::Spoof { .. } => "spoof",
            Self::Flood { .. } => "flood",
            Self::Garbage => "garbage",
        }
    }
}

/// How a subject answers the reclaim requests the core sends it.
///
/// Every mode but [`Ignore`](Self::Ignore) acknowledges a request (`Input::ReclaimAck` with
/// the request's id) in step 1 of the tick it is due, after the subject's frames and kernel
/// reading; what differs is what it does to its memory, and what it reports afterwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReclaimMode {
    /// Never answers, never frees anything: the core's request goes unheard.
    #[default]
    Ignore,
    /// Frees down to the target (held bytes become `min(held, target_bytes)`) before it
    /// publishes, then acknowledges. It keeps its `growth_per_tick` afterwards: a subject that
    /// grows on may cross soft again.
    Cooperative,
    /// Acknowledges and changes nothing.
    Stubborn,
    /// Acknowledges and frees nothing, but from then on (until it restarts) its frames report
    /// at most the target (the figure its report mode gives, capped at `target_bytes`; garbage
    /// frames are garbage either way). Its kernel reading stays what it holds plus its
    /// `kernel_overhead`, so only a policy that enforces kernel readings catches it.
    Liar,
}

impl ReclaimMode {
    /// The word scenario files use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "ignore",
            Self::Cooperative => "cooperative",
            Self::Stubborn => "stubborn",
            Self::Liar => "liar",
        }
    }
}

/// One virtual subject and its script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectSpec {
    /// Service name; its id is `SubjectId::from_name(name)`.
    pub name: String,
    /// Victim class.
    pub class: SubjectClass,
    /// Marked critical by the manifest.
    pub critical: bool,
    /// The tick it starts (is registered) at, `>= 1`.
    pub start_tick: u64,
    /// Bytes held when it starts.
    pub start_bytes: u64,
    /// Bytes added each later tick.
    pub growth_per_tick: u64,
    /// Up to this many more bytes added each tick, drawn from the seed.
    pub jitter: u64,
    /// Held bytes never exceed this.
    pub max_bytes: Option<u64>,
    /// What it reports.
    pub report: ReportMode,
    /// Its limits override, set right after its first registration.
    pub limits: Option<Limits>,
    /// Bytes the kernel charges on top of what it holds (with kernel readings on).
    pub kernel_overhead: u64,
    /// Started again this many ticks after it exits.
    pub restart_after: Option<u64>,
    /// How it answers reclaim requests.
    pub reclaim: ReclaimMode,
    /// Ticks from a reclaim request to its answer: a request made during tick `t` is carried
    /// out and acknowledged in step 1 of tick `t + reclaim_delay` (0 is taken as 1: step 1 of
    /// tick `t` has passed when the core asks).
    pub reclaim_delay: u64,
}

impl SubjectSpec {
    /// An honest, standard subject that starts at tick 1 with nothing and does not grow.
    #[must_use]
    pub fn new(name: &str) -> Self {
        SubjectSpec {
            name: name.to_owned(),
            class: SubjectClass::Standard,
            critical: false,
            start_tick: 1,
            start_bytes: 0,
            growth_per_tick: 0,
            jitter: 0,
            max_bytes: None,
            report: ReportMode::Honest,
            limits: None,
            kernel_overhead: 0,
            restart_after: None,
            reclaim: ReclaimMode::Ignore,
            reclaim_delay: 1,
        }
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> SubjectId {
        SubjectId::from_name(&self.name)
    }
}

/// How the fake process authority behaves.
///
/// A request made during tick `t` is answered in step 2 of tick `t + ack_delay`: refused with
/// `refuse_reason` when its subject is in `refuse`, accepted otherwise. An accepted request
/// makes its subject exit `exit_delay` ticks after the answer (in the same step 2 when it is
/// zero, right after the answer) — unless the subject is in `never_exit`, or is in
/// `ignore_graceful` and the request was graceful. An exit of a subject that already exited
/// is not reported twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthoritySpec {
    /// Ticks from request to answer, `>= 1`.
    pub ack_delay: Delay,
    /// Ticks from an accepting answer to the exit.
    pub exit_delay: Delay,
    /// Names of subjects whose termination is refused.
    pub refuse: Vec<String>,
    /// The reason given when refusing.
    pub refuse_reason: RefusalReason,
    /// Names of subjects that never exit, whatever is asked.
    pub never_exit: Vec<String>,
    /// Names of subjects that exit only on a forced request.
    pub ignore_graceful: Vec<String>,
}

impl Default for AuthoritySpec {
    fn default() -> Self {
        AuthoritySpec {
            ack_delay: Delay::fixed(1),
            exit_delay: Delay::fixed(1),
            refuse: Vec::new(),
            refuse_reason: RefusalReason::NotPermitted,
            never_exit: Vec::new(),
            ignore_graceful: Vec::new(),
        }
    }
}

/// Everything a simulation needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    /// Seed of every random draw.
    pub seed: u64,
    /// Ticks to simulate.
    pub ticks: u64,
    /// The watchdog's policy.
    pub policy: Policy,
    /// The watchdog's subject-table capacity (one of [`SUPPORTED_SUBJECT_CAPACITIES`]).
    pub subject_capacity: usize,
    /// Feed kernel readings (held + overhead) for every running subject each tick.
    pub kernel_readings: bool,
    /// The fake authority.
    pub authority: AuthoritySpec,
    /// The subjects, in publishing order.
    pub subjects: Vec<SubjectSpec>,
}

impl Setup {
    /// Names of every subject, and of every subject a spoofer claims to be.
    #[must_use]
    pub fn names(&self) -> TraceNames {
        let mut names = TraceNames::default();
        for s in &self.subjects {
            names.add(&s.name);
            if let ReportMode::Spoof { claim } = &s.report {
                names.add(claim);
            }
        }
        names
    }
}

// ----- driving a watchdog -------------------------------------------------------------------

/// Event-ring capacity used with `subjects` subjects: at least four events per subject fit in
/// one tick (under-report, soft, decided, requested), with room to spare, so draining after
/// every input loses nothing.
const fn event_capacity_for(subjects: usize) -> usize {
    if subjects * 8 < 64 {
        64
    } else {
        subjects * 8
    }
}

/// A watchdog of some capacity, behind one interface.
trait Engine: fmt::Debug {
    fn handle(
        &mut self,
        input: Input,
        authority: &mut RecordingAuthority,
    ) -> Result<(), InputError>;
    /// Appends the events not read yet; returns how many were lost to the ring.
    fn drain(&mut self, out: &mut Vec<Event>) -> u64;
    /// Events before `seq` never existed here (a resumed run numbers on from its
    /// predecessor's): reading starts at `seq`, and the gap is no loss.
    fn numbered_from(&mut self, seq: u64);
    fn counters(&self) -> Counters;
    fn event_capacity(&self) -> usize;
    fn policy(&self) -> Policy;
    fn subjects(&self) -> Vec<oomd::SubjectStatus>;
}

#[derive(Debug)]
struct Core<const S: usize, const E: usize> {
    wd: Watchdog<S, E>,
    next_seq: u64,
}

impl<const S: usize, const E: usize> Engine for Core<S, E> {
    fn handle(
        &mut self,
        input: Input,
        authority: &mut RecordingAuthority,
    ) -> Result<(), InputError> {
        self.wd.handle(input, authority)
    }

    fn drain(&mut self, out: &mut Vec<Event>) -> u64 {
        let page = self.wd.events(self.next_seq, usize::MAX);
        let lost = page.lost();
        self.next_seq = page.resume_seq();
        out.extend(page);
        lost
    }

    fn numbered_from(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    fn counters(&self) -> Counters {
        *self.wd.counters()
    }

    fn event_capacity(&self) -> usize {
        E
    }

    fn policy(&self) -> Policy {
        *self.wd.policy()
    }

    fn subjects(&self) -> Vec<oomd::SubjectStatus> {
        self.wd.subjects().collect()
    }
}

/// Declares the subject-table capacities a [`Driver`] can run, once: the list, and the match
/// that builds a watchdog of each (the capacity is a const generic, so each is compiled in).
macro_rules! subject_capacities {
    ($($n:literal),* $(,)?) => {
        /// Subject-table capacities a [`Driver`] can run. 256 is
        /// `oomd::bounds::DEFAULT_SUBJECTS`.
        pub const SUPPORTED_SUBJECT_CAPACITIES: &[usize] = &[$($n),*];

        fn engine(policy: Policy, subjects: usize) -> Result<Box<dyn Engine>, SimError> {
            match subjects {
                $($n => {
                    const E: usize = event_capacity_for($n);
                    let wd = Watchdog::<$n, E>::new(policy).map_err(SimError::Policy)?;
                    Ok(Box::new(Core { wd, next_seq: 0 }) as Box<dyn Engine>)
                })*
                other => Err(SimError::UnsupportedCapacity(other)),
            }
        }
    };
}

subject_capacities!(1, 2, 4, 8, 16, 32, 64, 128, 256);

/// Feeds inputs to a watchdog, records each one, and reads the event log after each, so that
/// the run ends with every input and every event. The authority is a
/// [`RecordingAuthority`]: requests are only remembered; answers are inputs like any other.
/// The simulator and the replayer both drive the core through this.
#[derive(Debug)]
pub struct Driver {
    engine: Box<dyn Engine>,
    authority: RecordingAuthority,
    policy: Policy,
    subject_capacity: usize,
    inputs: Vec<Input>,
    events: Vec<Event>,
    lost: u64,
}

impl Driver {
    /// A fresh watchdog enforcing `policy` with room for `subject_capacity` subjects (one of
    /// [`SUPPORTED_SUBJECT_CAPACITIES`]).
    pub fn new(policy: Policy, subject_capacity: usize) -> Result<Self, SimError> {
        Ok(Driver {
            engine: engine(policy, subject_capacity)?,
            authority: RecordingAuthority::default(),
            policy,
            subject_capacity,
            inputs: Vec::new(),
            events: Vec::new(),
            lost: 0,
        })
    }

    /// Records and feeds one input, then reads the events it caused. The core's verdict is
    /// returned as is: refused inputs (a spoofed frame, say) are part of a run, not a failure.
    pub fn feed(&mut self, input: Input) -> Result<(), InputError> {
        self.inputs.push(input);
        if let Input::Restore(oomd::Restore::Resume { next_event_seq, .. }) = input {
            if self.events.is_empty() {
                self.engine.numbered_from(next_event_seq);
            }
        }
        let verdict = self.engine.handle(input, &mut self.authority);
        self.lost = self
            .lost
            .saturating_add(self.engine.drain(&mut self.events));
        verdict
    }

    /// The policy in force now.
    #[must_use]
    pub fn policy_in_force(&self) -> Policy {
        self.engine.policy()
    }

    /// The core's counters now.
    #[must_use]
    pub fn counters(&self) -> oomd::Counters {
        self.engine.counters()
    }

    /// What the core knows of every subject now, in its table's order.
    #[must_use]
    pub fn subjects(&self) -> Vec<oomd::SubjectStatus> {
        self.engine.subjects()
    }

    /// Every request the core made so far.
    #[must_use]
    pub fn requests(&self) -> &[TerminationRequest] {
        &self.authority.requests
    }

    /// Every reclaim request the core made so far.
    #[must_use]
    pub fn reclaims(&self) -> &[ReclaimRequest] {
        &self.authority.reclaims
    }

    /// Every event so far.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Ends the run. Fails if any event was lost to the ring.
    pub fn finish(self, names: TraceNames) -> Result<Run, SimError> {
        if self.lost > 0 {
            return Err(SimError::EventsLost { lost: self.lost });
        }
        Ok(Run {
            policy: self.policy,
            subject_capacity: self.subject_capacity,
            event_capacity: self.engine.event_capacity(),
            counters: self.engine.counters(),
            names,
            inputs: self.inputs,
            events: self.events,
            requests: self.authority.requests,
            reclaims: self.authority.reclaims,
            undelivered: 0,
        })
    }
}

/// Why a simulation or replay could not run to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// The subject capacity is not one of [`SUPPORTED_SUBJECT_CAPACITIES`].
    UnsupportedCapacity(usize),
    /// The watchdog refused the policy.
    Policy(PolicyError),
    /// Events were overwritten before they were read (a bug: the ring is sized not to).
    EventsLost {
        /// How many.
        lost: u64,
    },
    /// A frame could not be encoded (a bug of the simulator).
    Encode(memstat::EncodeError),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedCapacity(n) => write!(
                f,
                "subject_capacity {n} is not supported (supported: {:?})",
                SUPPORTED_SUBJECT_CAPACITIES
            ),
            Self::Policy(e) => write!(f, "policy refused: {e}"),
            Self::EventsLost { lost } => write!(f, "{lost} events were lost to the event ring"),
            Self::Encode(e) => write!(f, "frame encoding failed: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

// ----- the result ---------------------------------------------------------------------------

/// A finished run: every input fed, every event logged, every request made.
#[derive(Clone, Debug)]
pub struct Run {
    /// The policy the watchdog started with.
    pub policy: Policy,
    /// Its subject-table capacity.
    pub subject_capacity: usize,
    /// Its event-ring capacity.
    pub event_capacity: usize,
    /// Names for the trace.
    pub names: TraceNames,
    /// Every input, in order.
    pub inputs: Vec<Input>,
    /// The complete event log.
    pub events: Vec<Event>,
    /// Every termination request, in order.
    pub requests: Vec<TerminationRequest>,
    /// Every reclaim request, in order.
    pub reclaims: Vec<ReclaimRequest>,
    /// The watchdog's counters at the end.
    pub counters: Counters,
    /// Answers and exits the fake authority still had due after the last tick.
    pub undelivered: usize,
}

impl Run {
    /// One rendered line per event (`t=<tick> #<seq> <words>`).
    #[must_use]
    pub fn trace_lines(&self) -> Vec<String> {
        self.events.iter().map(|e| render(e, &self.names)).collect()
    }

    /// The trace, one line per event, each ending in a newline.
    #[must_use]
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for line in self.trace_lines() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The counts a reader wants at the end.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let c = &self.counters;
        Summary {
            ticks: self
                .inputs
                .iter()
                .filter(|i| matches!(i, Input::Tick(_)))
                .count(),
            inputs: self.inputs.len(),
            events: self.events.len(),
            requests: self.requests.len(),
            confirmed: c.events(EventTag::KillConfirmed),
            denied: c.events(EventTag::KillDenied),
            throttled: c.events(EventTag::KillThrottled),
            refused: c.events(EventTag::KillRefused),
            escalated: c.events(EventTag::KillEscalated),
            failed: c.events(EventTag::KillFailed),
            would_kill: c.events(EventTag::WouldKill),
            reclaim_requested: c.events(EventTag::ReclaimRequested),
            reclaim_would_request: c.events(EventTag::ReclaimWouldRequest),
            reclaim_acknowledged: c.events(EventTag::ReclaimAcknowledged),
            reclaim_met: c.events(EventTag::ReclaimMet),
            reclaim_missed: c.events(EventTag::ReclaimMissed),
            rejected: Rejection::ALL.map(|r| (r, c.rejected(r))),
            policies_refused: c.policies_refused,
            undelivered: self.undelivered,
        }
    }
}

/// The short summary `oomd-sim` prints after a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Tick inputs.
    pub ticks: usize,
    /// All inputs.
    pub inputs: usize,
    /// Events logged.
    pub events: usize,
    /// Termination requests made.
    pub requests: usize,
    /// Kills confirmed (acknowledged and exited).
    pub confirmed: u64,
    /// Kills denied (critical).
    pub denied: u64,
    /// Kills throttled by the budget.
    pub throttled: u64,
    /// Requests the authority refused.
    pub refused: u64,
    /// Graceful requests escalated to forced.
    pub escalated: u64,
    /// Kills failed (no exit after the forced request).
    pub failed: u64,
    /// Observe-only would-kills.
    pub would_kill: u64,
    /// Reclaim requests made.
    pub reclaim_requested: u64,
    /// Observe-only would-request reclaims.
    pub reclaim_would_request: u64,
    /// Reclaim requests acknowledged.
    pub reclaim_acknowledged: u64,
    /// Reclaim requests met (incident ended without a kill).
    pub reclaim_met: u64,
    /// Reclaim requests missed.
    pub reclaim_missed: u64,
    /// Frames rejected, by reason.
    pub rejected: [(Rejection, u64); Rejection::COUNT],
    /// Policy changes the core refused (a limits override when its table is full, say): the
    /// core counts them but logs no event.
    pub policies_refused: u64,
    /// Authority deliveries still due after the last tick.
    pub undelivered: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "summary: {} ticks, {} inputs, {} events, {} termination requests",
            self.ticks, self.inputs, self.events, self.requests
        )?;
        writeln!(
            f,
            "kills: confirmed={} denied={} throttled={} refused={} escalated={} failed={} \
             would-kill={}",
            self.confirmed,
            self.denied,
            self.throttled,
            self.refused,
            self.escalated,
            self.failed,
            self.would_kill
        )?;
        if self.reclaim_requested + self.reclaim_would_request > 0 {
            writeln!(
                f,
                "reclaims: requested={} would-request={} acknowledged={} met={} missed={}",
                self.reclaim_requested,
                self.reclaim_would_request,
                self.reclaim_acknowledged,
                self.reclaim_met,
                self.reclaim_missed
            )?;
        }
        let total: u64 = self.rejected.iter().map(|(_, n)| n).sum();
        write!(f, "frames rejected: {total}")?;
        for (reason, n) in self.rejected.iter().filter(|(_, n)| *n > 0) {
            write!(f, " {}={n}", reason.as_str())?;
        }
        if self.policies_refused > 0 {
            write!(f, "\npolicy changes refused: {}", self.policies_refused)?;
        }
        if self.undelivered > 0 {
            write!(
                f,
                "\nauthority: {} answers or exits still due after the last tick",
                self.undelivered
            )?;
        }
        Ok(())
    }
}

// ----- the simulation -----------------------------------------------------------------------

/// A virtual subject while the simulation runs.
#[derive(Debug)]
struct Live<'a> {
    spec: &'a SubjectSpec,
    id: SubjectId,
    rng: Rng,
    running: bool,
    /// Bumped at every start, so an exit scheduled for an earlier instance is not applied to
    /// a restarted one.
    generation: u64,
    started_once: bool,
    /// The tick it (re)starts at, while not running.
    start_at: Option<u64>,
    held: u64,
    next_seq: u64,
    /// Reclaim requests routed to this instance, with the tick each is due, in the order made.
    reclaims: Vec<(u64, ReclaimRequest)>,
    /// A liar's cap on what it reports: the target of the last request it answered.
    lie: Option<u64>,
}

/// Something the fake authority will report.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    Answer {
        request: TerminationRequest,
        answer: Answer,
    },
    Exit {
        subject: usize,
        generation: u64,
    },
}

/// The fake authority's agenda: deliveries by (due tick, order scheduled).
#[derive(Debug)]
struct FakeAuthority<'a> {
    spec: &'a AuthoritySpec,
    rng: Rng,
    agenda: BTreeMap<(u64, u64), Delivery>,
    scheduled: u64,
}

impl FakeAuthority<'_> {
    fn schedule(&mut self, due: u64, delivery: Delivery) {
        self.agenda.insert((due, self.scheduled), delivery);
        self.scheduled += 1;
    }

    fn next_due(&mut self, now: u64) -> Option<Delivery> {
        let (&key, _) = self.agenda.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.agenda.remove(&key)
    }

    fn listed(list: &[String], name: &str) -> bool {
        list.iter().any(|n| n == name)
    }

    /// Decides now how `request` (made during tick `now`) will be answered, and when.
    fn on_request(&mut self, now: u64, request: TerminationRequest, live: &[Live<'_>]) {
        let ack = now.saturating_add(self.spec.ack_delay.draw(&mut self.rng));
        let Some(index) = live.iter().position(|s| s.id == request.subject) else {
            // Not one of ours: a real authority would not know it either.
            let answer = Answer::Refused(RefusalReason::UnknownSubject);
            self.schedule(ack, Delivery::Answer { request, answer });
            return;
        };
        let subject = &live[index];
        let name = subject.spec.name.as_str();
        if Self::listed(&self.spec.refuse, name) {
            let answer = Answer::Refused(self.spec.refuse_reason);
            self.schedule(ack, Delivery::Answer { request, answer });
            return;
        }
        self.schedule(
            ack,
            Delivery::Answer {
                request,
                answer: Answer::Accepted,
            },
        );
        let never = Self::listed(&self.spec.never_exit, name);
        let ignored = request.mode == TerminationMode::Graceful
            && Self::listed(&self.spec.ignore_graceful, name);
        if !never && !ignored {
            let due = ack.saturating_add(self.spec.exit_delay.draw(&mut self.rng));
            let generation = subject.generation;
            self.schedule(
                due,
                Delivery::Exit {
                    subject: index,
                    generation,
                },
            );
        }
    }
}

/// The label of the authority's random stream (subjects use their ids).
const AUTHORITY_STREAM: u64 = 0x6175_7468_6f72_6974; // "authorit"

/// Runs the simulation described by `setup` to its last tick.
pub fn run(setup: &Setup) -> Result<Run, SimError> {
    let mut driver = Driver::new(setup.policy, setup.subject_capacity)?;
    let mut live: Vec<Live<'_>> = setup
        .subjects
        .iter()
        .map(|spec| Live {
            spec,
            id: spec.id(),
            rng: Rng::stream(setup.seed, spec.id().get()),
            running: false,
            generation: 0,
            started_once: false,
            start_at: Some(spec.start_tick),
            held: 0,
            next_seq: 1,
            reclaims: Vec::new(),
            lie: None,
        })
        .collect();
    let mut authority = FakeAuthority {
        spec: &setup.authority,
        rng: Rng::stream(setup.seed, AUTHORITY_STREAM),
        agenda: BTreeMap::new(),
        scheduled: 0,
    };

    // Every request the core makes, in whichever input, goes to the fake authority.
    let mut seen = 0;
    let schedule_new =
        |seen: &mut usize, t, d: &Driver, a: &mut FakeAuthority<'_>, l: &[Live<'_>]| {
            for &request in &d.requests()[*seen..] {
                a.on_request(t, request, l);
            }
            *seen = d.requests().len();
        };
    // Every reclaim request goes to the live subject it names.
    let mut reclaims_seen = 0;
    let route_new = |seen: &mut usize, t: u64, d: &Driver, l: &mut [Live<'_>]| {
        for &request in &d.reclaims()[*seen..] {
            if let Some(s) = l.iter_mut().find(|s| s.id == request.subject) {
                s.on_reclaim_request(t, request);
            }
        }
        *seen = d.reclaims().len();
    };
    for t in 1..=setup.ticks {
        // 1. Subjects publish; a frame or reading over hard is decided in its input.
        for subject in &mut live {
            subject.step(t, setup.kernel_readings, &mut driver)?;
        }
        schedule_new(&mut seen, t, &driver, &mut authority, &live);
        route_new(&mut reclaims_seen, t, &driver, &mut live);
        // 2. The authority delivers what is due.
        while let Some(delivery) = authority.next_due(t) {
            match delivery {
                Delivery::Answer { request, answer } => {
                    let _ = driver.feed(Input::Answer {
                        ticket: request.ticket,
                        answer,
                    });
                }
                Delivery::Exit {
                    subject,
                    generation,
                } => {
                    if let Some(s) = live.get_mut(subject) {
                        if s.running && s.generation == generation {
                            s.running = false;
                            s.start_at = s.spec.restart_after.map(|n| t.saturating_add(n));
                            let _ = driver.feed(Input::Exited(s.id));
                        }
                    }
                }
            }
        }
        // 3. Time advances; the core may ask for terminations.
        let _ = driver.feed(Input::Tick(Tick(t)));
        schedule_new(&mut seen, t, &driver, &mut authority, &live);
        route_new(&mut reclaims_seen, t, &driver, &mut live);
    }

    let mut run = driver.finish(setup.names())?;
    run.undelivered = authority.agenda.len();
    Ok(run)
}

impl Live<'_> {
    /// Takes a reclaim request the core made during tick `t`, if this subject answers them
    /// and is running (it is for this instance: a restart drops it).
    fn on_reclaim_request(&mut self, t: u64, request: ReclaimRequest) {
        if self.running && self.spec.reclaim != ReclaimMode::Ignore {
            let due = t.saturating_add(self.spec.reclaim_delay.max(1));
            self.reclaims.push((due, request));
        }
    }

    /// Step 1 of tick `t` for this subject: start or grow, carry out the reclaim requests due,
    /// publish, then acknowledge them.
    fn step(&mut self, t: u64, kernel: bool, driver: &mut Driver) -> Result<(), SimError> {
        let spec = self.spec;
        if !self.running && self.start_at == Some(t) {
            self.start(driver);
        } else if self.running {
            let jitter = if spec.jitter > 0 {
                self.rng.range(0, spec.jitter)
            } else {
                0
            };
            let grown = self
                .held
                .saturating_add(spec.growth_per_tick)
                .saturating_add(jitter);
            self.held = spec.max_bytes.map_or(grown, |max| grown.min(max));
        } else {
            return Ok(());
        }
        let due = self.reclaims.iter().take_while(|(at, _)| *at <= t).count();
        let answered: Vec<ReclaimRequest> = self.reclaims.drain(..due).map(|(_, r)| r).collect();
        for request in &answered {
            match spec.reclaim {
                ReclaimMode::Cooperative => self.held = self.held.min(request.target_bytes),
                ReclaimMode::Liar => self.lie = Some(request.target_bytes),
                ReclaimMode::Stubborn | ReclaimMode::Ignore => {}
            }
        }
        self.publish(driver)?;
        if kernel {
            let _ = driver.feed(Input::KernelReading {
                subject: self.id,
                bytes: self.held.saturating_add(spec.kernel_overhead),
            });
        }
        for request in &answered {
            let mut buf = [0; MAX_ACK_LEN];
            let n = ReclaimAck { id: request.id }
                .encode(&mut buf)
                .map_err(SimError::Encode)?;
            let _ = driver.feed(Input::ReclaimAck {
                sender: self.id,
                payload: Payload::new(&buf[..n]),
            });
        }
        Ok(())
    }

    fn start(&mut self, driver: &mut Driver) {
        let spec = self.spec;
        self.running = true;
        self.start_at = None;
        self.generation += 1;
        self.next_seq = 1;
        self.reclaims.clear();
        self.lie = None;
        self.held = spec
            .max_bytes
            .map_or(spec.start_bytes, |max| spec.start_bytes.min(max));
        let _ = driver.feed(Input::Register(Registration {
            subject: self.id,
            class: spec.class,
            critical: spec.critical,
            // A silent subject stands for a service without a memstat channel.
            reports: !matches!(spec.report, ReportMode::Silent),
        }));
        if !self.started_once {
            self.started_once = true;
            if let Some(limits) = spec.limits {
                let _ = driver.feed(Input::SetPolicy(PolicyUpdate::SubjectLimits {
                    subject: self.id,
                    limits: Some(limits),
                }));
            }
        }
    }

    fn frame(&mut self, bytes: u64, claim: SubjectId) -> Frame {
        let seq = self.next_seq;
        self.next_seq += 1;
        Frame {
            seq,
            current_bytes: bytes,
            peak_bytes: bytes,
            claimed_subject: Some(claim),
        }
    }

    fn publish(&mut self, driver: &mut Driver) -> Result<(), SimError> {
        let (frames, bytes, claim) = match &self.spec.report {
            ReportMode::Silent => return Ok(()),
            ReportMode::Garbage => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let bytes = garbage(&mut self.rng, seq, self.held, self.id)?;
                let _ = driver.feed(Input::Frame {
                    sender: self.id,
                    payload: Payload::new(&bytes),
                });
                return Ok(());
            }
            ReportMode::Honest => (1, self.held, self.id),
            ReportMode::UnderFactor(factor) => (1, self.held / (*factor).max(1), self.id),
            ReportMode::UnderFixed(fixed) => (1, *fixed, self.id),
            ReportMode::Spoof { claim } => (1, self.held, SubjectId::from_name(claim)),
            ReportMode::Flood { frames } => (*frames, self.held, self.id),
        };
        let bytes = self.lie.map_or(bytes, |cap| bytes.min(cap));
        // The simulator's edge reads a sender as the Linux edge does: at most the frame budget
        // in a tick, then, of what queued beyond it, only the newest, as a latest frame.
        let frames = u64::from(frames);
        let budget = u64::from(driver.policy_in_force().frame_budget_per_tick);
        for _ in 0..frames.min(budget) {
            let frame = self.frame(bytes, claim);
            let _ = driver.feed(Input::Frame {
                sender: self.id,
                payload: encode(&frame)?,
            });
        }
        if frames > budget {
            let beyond = frames - budget;
            // The older frames beyond the budget are never read: only their sequence numbers
            // were used.
            self.next_seq += beyond - 1;
            let frame = self.frame(bytes, claim);
            let _ = driver.feed(Input::LatestFrame {
                sender: self.id,
                payload: encode(&frame)?,
                discarded: u16::try_from(beyond - 1).unwrap_or(u16::MAX),
            });
        }
        Ok(())
    }
}

fn encode(frame: &Frame) -> Result<Payload, SimError> {
    let mut buf = [0; MAX_FRAME_LEN];
    let n = frame.encode(&mut buf).map_err(SimError::Encode)?;
    Ok(Payload::new(&buf[..n]))
}

/// One malformed datagram, its kind drawn from `rng`. Each is built with memstat's own codec
/// (a valid frame, encoded, then spoiled in one way), so that it stays one fault away from a
/// valid frame whatever the codec becomes.
fn garbage(rng: &mut Rng, seq: u64, held: u64, id: SubjectId) -> Result<Vec<u8>, SimError> {
    let encode = |frame: Frame| -> Result<Vec<u8>, SimError> {
        let mut buf = [0; MAX_FRAME_LEN];
        let n = frame.encode(&mut buf).map_err(SimError::Encode)?;
        Ok(buf[..n].to_vec())
    };
    let valid = Frame {
        seq,
        current_bytes: held,
        peak_bytes: held,
        claimed_subject: Some(id),
    };
    let unclaimed = Frame {
        claimed_subject: None,
        ..valid
    };
    let mut bytes = encode(valid)?;
    let n = bytes.len();
    match rng.range(0, 7) {
        0 => bytes[0] ^= 0xff,                                            // bad magic
        1 => bytes[memstat::MAGIC.len()] = VERSION_UNKNOWN,               // unknown version
        2 => bytes.truncate(n - 1), // ends inside the claimed id
        3 => bytes.push(0),         // a byte after the frame
        4 => bytes.resize(MAX_FRAME_LEN + 1 + (seq % 16) as usize, 0xaa), // oversize
        5 => {
            // Peak below current: a valid encoding of contradictory values. `Frame::encode`
            // refuses to write one, so the body goes through the serializer it uses.
            let contradictory = Frame {
                current_bytes: held.saturating_add(1),
                ..unclaimed
            };
            bytes.truncate(memstat::HEADER_LEN);
            let mut body = [0; MAX_FRAME_LEN];
            let body = postcard::to_slice(&contradictory, &mut body).map_err(|_| {
                SimError::Encode(memstat::EncodeError::BufferTooSmall {
                    needed: contradictory.encoded_len(),
                })
            })?;
            bytes.extend_from_slice(body);
        }
        6 => {
            // Option tag 2 where only 0 (none) or 1 (some) may stand: not a valid encoding.
            bytes = encode(unclaimed)?;
            *bytes.last_mut().expect("a frame is never empty") = 2;
        }
        _ => {
            // noise of random length
            let len = rng.range(0, MAX_FRAME_LEN as u64) as usize; // at most 44
            bytes = (0..len).map(|_| rng.next_u64() as u8).collect(); // low byte of the draw
        }
    }
    Ok(bytes)
}

/// A version byte no decoder knows.
const VERSION_UNKNOWN: u8 = 0x7f;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference splitmix64 for seed 0.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn range_stays_inside_its_bounds() {
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let x = rng.range(3, 9);
            assert!((3..=9).contains(&x));
        }
        assert_eq!(rng.range(5, 5), 5);
        assert_eq!(rng.range(5, 1), 5);
        let _ = rng.range(0, u64::MAX);
    }

    #[test]
    fn garbage_is_always_rejected_and_covers_every_fault() {
        use memstat::DecodeError as E;
        let mut rng = Rng::new(1);
        let id = SubjectId::from_name("g");
        let mut seen = Vec::new();
        for seq in 1..200 {
            let bytes = garbage(&mut rng, seq, seq * 1000, id).expect("encodes");
            let err = Frame::decode(&bytes).expect_err("garbage decodes");
            let kind = core::mem::discriminant(&err);
            if !seen.contains(&kind) {
                seen.push(kind);
            }
        }
        for fault in [
            E::MagicMismatch,
            E::UnsupportedVersion { version: 0 },
            E::Truncated,
            E::TrailingBytes { count: 0 },
            E::Oversize { len: 0 },
            E::Inconsistent,
            E::Malformed,
        ] {
            let kind = core::mem::discriminant(&fault);
            assert!(seen.contains(&kind), "no garbage frame is {fault:?}");
        }
    }

    #[test]
    fn every_supported_capacity_builds() {
        for &n in SUPPORTED_SUBJECT_CAPACITIES {
            Driver::new(Policy::default(), n).expect("supported");
        }
        assert_eq!(
            Driver::new(Policy::default(), 3).map(|_| ()),
            Err(SimError::UnsupportedCapacity(3))
        );
    }
}
