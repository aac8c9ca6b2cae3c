//! The event loop.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use memstat::{SubjectId, MAX_FRAME_LEN};
use oomd::{
    Answer, Authority, Input, InputError, KillState, PolicyUpdate, ReclaimRequest, RefusalReason,
    Registration, Restore, TerminationMode, TerminationRequest, Tick, Ticket, Watchdog,
};
use oomd_proto::admission::{self, SocketAccess};
use oomd_proto::{
    FromAuthority, Name, PolicyDocument, Receiver, ToAuthority, WireError, MAX_MESSAGE_LEN,
};
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::Timespec;
use rustix::io::Errno;
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
};

use crate::audit::{self, AuditLog, Recovered};
use crate::brake;
use crate::control::Control;
use crate::kernel::{self, Source};
use crate::kill_report::KillReports;
use crate::policies::{Refusal, ServiceLimitsTable};
use crate::record::Recorder;
use crate::reserved::Reserved;
use crate::{LogFormat, Output, RecordTo, ServiceNames};

/// Packets read from one paused channel just before a tick, at most: more than its socket can
/// hold (a sender can queue about 550 small packets with the largest send buffer an
/// unprivileged process may set), so that the newest packet queued when the drain began is
/// always read.
const MAX_DRAIN: usize = 1024;
const SUBJECTS: usize = oomd::bounds::DEFAULT_SUBJECTS;
/// Ready descriptors taken from the epoll set per wait, at most. More ready ones wait for the
/// next wait (the set is level-triggered, and the kernel hands out ready descriptors in
/// turn), so a wake's work stays bounded however many services send at once.
const EVENTS_CAP: usize = 64;
/// Packets taken from one memstat channel per `recvmmsg`, at most: a sender's burst (a frame
/// budget's worth at the defaults) in one call, and the call that finds the queue empty
/// (the second `recv` of every wake, before) folded into it.
const BATCH: usize = 8;

std::thread_local! {
    /// The `recvmmsg` headers, made at the first batch receive of the thread that runs the
    /// loop: they hold raw pointers, so they cannot be part of the [`Service`], which is built
    /// on a setup thread and moves to the loop's. One allocation, once.
    static BATCH_HEADERS: core::cell::RefCell<Option<nix::sys::socket::MultiHeaders<()>>> =
        const { core::cell::RefCell::new(None) };
}

/// What one batch receive got: `frames` packets (lengths in `Service::lens`), then maybe the
/// end of the channel.
struct Batch {
    frames: usize,
    hung_up: Option<&'static str>,
}

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The policy at start-up: the global policy (`None`: the defaults) and per-service
    /// limits, which a service gets when it starts. Refused as a whole if any of it is wrong.
    pub policy: PolicyDocument,
    /// The file a policy reload re-reads (`SIGHUP`, `oomctl policy reload`); `None`: there
    /// is none, and a reload is refused.
    pub policy_file: Option<PathBuf>,
    /// Where the control socket listens.
    pub control_socket: PathBuf,
    /// The control socket file's mode and group (whatever the umask).
    pub control_access: SocketAccess,
    /// Callers in this group (by primary group) may change things, besides root and oomd's
    /// own user.
    pub control_group: Option<u32>,
    /// How long a control connection may sit idle before it is closed.
    pub control_idle_timeout: Duration,
    /// The cgroup v2 mount, to find `memory.current` of services execd placed in cgroups.
    pub cgroup_root: String,
    /// Where hog fixtures listen for `grow` commands (selftest builds).
    pub inject_dir: PathBuf,
    /// The audit log's format.
    pub log: LogFormat,
    /// Record every input of the core to this file, for `oomd-sim replay`.
    pub record: Option<RecordTo>,
    /// The durable audit log, read back at start (recovery) and written before every
    /// request to execd (`None`: none, and nothing is recovered).
    pub audit: Option<AuditTo>,
}

/// Why the service stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// Setting up a socket, the timer or the audit log failed.
    Setup(&'static str, std::io::Error),
    /// The policy file's policy was refused by the core.
    Policy(oomd::PolicyError),
    /// The policy document at start-up was refused (its table and key named).
    PolicyDocument(Refusal),
    /// execd closed the authority channel: nothing can be terminated any more.
    AuthorityGone,
    /// The authority channel failed.
    Authority(WireError),
    /// epoll_wait(2) failed.
    Poll(Errno),
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(what, e) => write!(f, "cannot set up {what}: {e}"),
            Self::Policy(e) => write!(f, "policy refused: {e}"),
            Self::PolicyDocument(r) => write!(f, "policy refused, nothing applied: {r}"),
            Self::AuthorityGone => f.write_str("execd closed the authority channel"),
            Self::Authority(e) => write!(f, "authority channel: {e}"),
            Self::Poll(e) => write!(f, "epoll_wait: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// One service execd told us about.
#[derive(Debug)]
struct KnownService {
    id: SubjectId,
    name: Name,
    pid: i32,
    cgroup: Option<Name>,
    memstat: Option<OwnedFd>,
    /// A pidfd of the root process (execd's shim), when its figure comes from the process
    /// tree (no cgroup): a figure read after it exited is thrown away (the pid may be reused).
    pidfd: Option<OwnedFd>,
    running: bool,
    /// Packets read from its memstat channel since the last tick.
    frames_read: u16,
    /// It used its frame budget in this tick: its channel is out of the epoll set until just before the
    /// next tick, when what queued meanwhile is drained and only the newest packet is fed.
    paused: bool,
    /// Its cgroup's `memory.events`, watched for `high` events (cgroup mode only).
    memory_events: Option<OwnedFd>,
    /// Its cgroup's `memory.current`, kept open for the kernel figure (cgroup mode only).
    memory_current: Option<OwnedFd>,
    /// The `high` counter last read from it.
    high_events: u64,
    /// The tick of the last kernel reading a `high` event brought (one per tick at most).
    pushed_at: Option<u64>,
    /// A `high` event brought a reading in this run already (the note is written once).
    pushed_before: bool,
    /// The brake last set (`Some(None)`: `max`), `None` before the first: what
    /// [`brake::wanted`] asked, which is what was written unless the group held more.
    brake: Option<Option<u64>>,
    /// The `memory.high` written over the brake wanted because the group held more
    /// ([`brake::not_below_charge`]); it comes down with the group's charge.
    brake_at_charge: Option<u64>,
    /// The charge its report does not show, which places its brake before a kill is decided
    /// (a service judged on its report, cgroup mode).
    unseen: brake::Unseen,
    /// Its brake was last set while it was silent (no frame yet, or a stale report): its next
    /// frame moves it.
    brake_silent: bool,
    /// The reclaim request last sent on its memstat channel, and when: its acknowledgement
    /// is timed from this (one note per request, `reclaim round trip`).
    reclaim_sent: Option<(u64, Instant)>,
}

/// Why a reclaim request did not reach its service's channel (noted, never allocating).
#[derive(Debug, Clone, Copy)]
enum Unsent {
    /// The service has no memstat channel (any more).
    NoChannel,
    /// The request did not encode (cannot happen: the buffer is `MAX_REQUEST_LEN` long).
    Encode,
    /// The socket refused it (its queue is full: the service does not read it; or it is gone).
    Send(Errno),
}

impl core::fmt::Display for Unsent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoChannel => f.write_str("no memstat channel"),
            Self::Encode => f.write_str("it does not encode"),
            Self::Send(e) => write!(f, "{e}"),
        }
    }
}

/// The input a packet from `sender`'s memstat channel makes: a reclaim acknowledgement (by its
/// magic, `memstat::ACK_MAGIC`) or a frame (everything else, garbage included, which the
/// core rejects and counts).
fn packet_input(sender: SubjectId, payload: oomd::Payload) -> Input {
    if memstat::is_ack(payload.kept()) {
        Input::ReclaimAck { sender, payload }
    } else {
        Input::Frame { sender, payload }
    }
}

/// Where a ready descriptor came from: the epoll set's data word of each descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    Authority,
    Timer,
    Listener,
    Client(usize),
    Memstat(usize),
    MemoryEvents(usize),
    Reload,
}

impl Src {
    /// The kind in the high 32 bits, the index in the low 32.
    fn data(self) -> EventData {
        let (kind, index) = match self {
            Src::Authority => (0u64, 0usize),
            Src::Timer => (1, 0),
            Src::Listener => (2, 0),
            Src::Client(i) => (3, i),
            Src::Memstat(i) => (4, i),
            Src::MemoryEvents(i) => (5, i),
            Src::Reload => (6, 0),
        };
        EventData::new_u64(kind << 32 | index as u64)
    }

    fn from_data(data: EventData) -> Option<Src> {
        let word = data.u64();
        let index = usize::try_from(word & u64::from(u32::MAX)).ok()?;
        Some(match word >> 32 {
            0 => Src::Authority,
            1 => Src::Timer,
            2 => Src::Listener,
            3 => Src::Client(index),
            4 => Src::Memstat(index),
            5 => Src::MemoryEvents(index),
            6 => Src::Reload,
            _ => return None,
        })
    }
}

/// Whether a wake `since_last` after the last heartbeat sends the next one. A tick's wake
/// (`tick_period` apart) also sends it when the next tick would come after the heartbeat is
/// due: at the default 100 ms tick, every tick, so the heartbeat locks onto the tick and never
/// needs a wake of its own, whatever its phase. Any wake (a frame, a client, a faster tick)
/// sends it once half of `HEARTBEAT_INTERVAL` has passed, which bounds how many a flood of
/// wakes makes. The loop still wakes for a heartbeat when the whole interval is up, so the
/// interval holds whatever the tick (and when that wake comes just before a late tick, the
/// tick sends one more and the heartbeat is on the tick again: execd takes any number).
fn heartbeat_due(since_last: Duration, tick_period: Option<Duration>) -> bool {
    let interval = oomd_proto::HEARTBEAT_INTERVAL;
    since_last >= interval / 2
        || tick_period.is_some_and(|p| !since_last.is_zero() && since_last + p > interval)
}

/// Takes the core's requests during one call of the core. They are sent only after the
/// events of that call are in the audit log and the log is on disk (`Service::feed`).
struct AuthorityTx<'a> {
    queue: &'a mut Reserved<TerminationRequest>,
    reclaims: &'a mut Reserved<ReclaimRequest>,
}

impl Authority for AuthorityTx<'_> {
    fn request_termination(&mut self, request: TerminationRequest) {
        // One call of the core makes at most one request per subject, and the queue is
        // emptied after every call: it has room for every subject.
        let _ = self.queue.push(request);
    }

    fn request_reclaim(&mut self, request: ReclaimRequest) {
        // At most one per subject per call, and emptied after every call, like the queue.
        let _ = self.reclaims.push(request);
    }
}

/// Where the durable audit log is written.
#[derive(Debug, Clone)]
pub struct AuditTo {
    /// The file (`<path>.1` holds the previous one after a rotation).
    pub path: PathBuf,
    /// Its size cap, in bytes.
    pub max_bytes: u64,
}

/// The oomd service: the core, its channels, and the loop that feeds it.
#[derive(Debug)]
pub struct Service {
    pub(crate) wd: Box<Watchdog>,
    pub(crate) opts: Options,
    authority: OwnedFd,
    pub(crate) listener: OwnedFd,
    pub(crate) control: Control,
    pub(crate) policies: ServiceLimitsTable,
    /// The tick timer: a non-blocking, close-on-exec timerfd on `CLOCK_MONOTONIC`.
    timer: OwnedFd,
    /// Every descriptor the loop waits on, each registered once (level-triggered, the
    /// [`Src`] as its data): a wait costs the same whatever the number of silent services.
    /// A memstat channel is taken out while its sender is paused and before it is dropped
    /// (execd holds the same open file, so closing ours would not take it out).
    epoll: OwnedFd,
    /// The signals that ask for a policy reload (`SIGHUP`), once [`reload_on`](Self::reload_on)
    /// gave them.
    reload_signals: Option<nix::sys::signalfd::SignalFd>,
    /// The big tables are [`Reserved`]: their room is allocated at start and made resident
    /// as services use it (`docs/perf.md`, the daemon's memory).
    slots: Reserved<KnownService>,
    pub(crate) names: ServiceNames,
    pub(crate) rx: Receiver,
    pub(crate) tx: [u8; MAX_MESSAGE_LEN],
    /// One batch receive's packets (each one byte longer than a frame, so that a longer packet
    /// shows) and their lengths as they arrived.
    frames: [[u8; MAX_FRAME_LEN + 1]; BATCH],
    lens: [usize; BATCH],
    /// Requests of the current call of the core, sent once the audit log is on disk.
    queue: Reserved<TerminationRequest>,
    unsent: heapless::Vec<Ticket, SUBJECTS>,
    /// Reclaim requests of the current call of the core, sent on each service's memstat
    /// channel once the audit log is on disk.
    reclaims: Reserved<ReclaimRequest>,
    tick: u64,
    /// The durable audit log, and what it told at start.
    audit: Option<AuditLog>,
    recovered: Recovered,
    /// When the last heartbeat went to execd.
    last_heartbeat: Instant,
    next_seq: u64,
    pub(crate) out: Output,
    recorder: Option<Recorder>,
    /// Memstat channels closed by their service (or failed).
    pub(crate) memstat_hangups: u64,
    /// Open incidents and the last kill reports.
    pub(crate) kill_reports: KillReports<SUBJECTS>,
    /// The policy changed since the brakes were last set.
    brakes_stale: bool,
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |e| ServiceError::Setup(what, e)
}

impl Service {
    /// Sets everything up, then prints `oomd: ready`. `authority` is the service's end of the
    /// authority channel (execd hands it over as `OOMD_AUTHORITY_FD`).
    pub fn new(opts: Options, authority: OwnedFd) -> Result<Box<Service>, ServiceError> {
        let global = opts.policy.global.unwrap_or_default();
        let wd = Box::new(Watchdog::new(global).map_err(ServiceError::Policy)?);
        let mut policies = ServiceLimitsTable::default();
        policies
            .check(&opts.policy)
            .map_err(ServiceError::PolicyDocument)?;
        policies.apply(&opts.policy);
        oomd_proto::set_nonblocking(&authority).map_err(setup("the authority channel"))?;
        let listener = admission::listen_with(&opts.control_socket, opts.control_access)
            .map_err(setup("the control socket"))?;
        oomd_proto::set_nonblocking(&listener).map_err(setup("the control socket"))?;
        // Control clients may be anyone local: the kernel refuses descriptors they pass (set
        // on the listener; every connection inherits it from there, even one that sends
        // before it is accepted).
        let refuses_descriptors =
            memstat::publish::refuse_descriptors(listener.as_fd()).unwrap_or(false);
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| ServiceError::Setup("the tick timer", e.into()))?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| ServiceError::Setup("the epoll set", e.into()))?;
        for (fd, src) in [
            (authority.as_fd(), Src::Authority),
            (timer.as_fd(), Src::Timer),
            (listener.as_fd(), Src::Listener),
        ] {
            epoll::add(&epoll, fd, src.data(), EventFlags::IN)
                .map_err(|e| ServiceError::Setup("the epoll set", e.into()))?;
        }
        let out = Output::new(opts.log);
        let recorder = match &opts.record {
            Some(to) => Some(Recorder::start(to, global).map_err(setup("the recording"))?),
            None => None,
        };
        let (audit, recovered) = match &opts.audit {
            Some(to) => {
                let (log, recovered) =
                    AuditLog::open(&to.path, to.max_bytes).map_err(setup("the audit log"))?;
                (Some(log), recovered)
            }
            None => (None, Recovered::default()),
        };
        let control = Control::new(
            admission::Access::for_this_process(opts.control_group),
            opts.control_idle_timeout,
        );
        let mut service = Box::new(Service {
            wd,
            opts,
            authority,
            listener,
            control,
            policies,
            timer,
            epoll,
            reload_signals: None,
            slots: Reserved::with_capacity(SUBJECTS),
            names: ServiceNames::default(),
            rx: Receiver::new(),
            tx: [0; MAX_MESSAGE_LEN],
            frames: [[0; MAX_FRAME_LEN + 1]; BATCH],
            lens: [0; BATCH],
            queue: Reserved::with_capacity(SUBJECTS),
            unsent: heapless::Vec::new(),
            reclaims: Reserved::with_capacity(SUBJECTS),
            tick: 0,
            audit,
            recovered,
            last_heartbeat: Instant::now(),
            next_seq: 0,
            out,
            recorder,
            memstat_hangups: 0,
            kill_reports: KillReports::default(),
            brakes_stale: false,
        });
        service
            .arm_timer()
            .map_err(|e| ServiceError::Setup("the tick timer", e.into()))?;
        service.resume();
        if !refuses_descriptors {
            service.out.note(format_args!(
                "oomd: this kernel cannot refuse descriptors passed on oomd's sockets \
                 (SO_PASSRIGHTS, Linux 6.16): a control client or a service that passes one \
                 can stall oomd while the kernel releases it"
            ));
        }
        let p = service.wd.policy();
        let (soft, hard, period) = (p.limits.soft_bytes, p.limits.hard_bytes, p.sample_period_ms);
        service.out.note(format_args!(
            "oomd: policy soft={soft} hard={hard} tick={period}ms control={}",
            service.opts.control_socket.display()
        ));
        service.out.marker(format_args!("oomd: ready"));
        Ok(service)
    }

    /// Runs until the authority channel closes or fails.
    pub fn run(&mut self) -> Result<(), ServiceError> {
        loop {
            self.step(-1)?;
        }
    }

    /// Waits up to `timeout_ms` (-1: forever) for something to happen, and handles it.
    pub fn step(&mut self, timeout_ms: i32) -> Result<(), ServiceError> {
        // Wake in time for the next heartbeat, and to close the next idle control connection.
        let heartbeat_at = self.last_heartbeat + oomd_proto::HEARTBEAT_INTERVAL;
        let next = self
            .next_client_expiry()
            .map_or(heartbeat_at, |at| at.min(heartbeat_at));
        let left = next.saturating_duration_since(Instant::now()).as_millis() + 1;
        let left = i32::try_from(left).unwrap_or(i32::MAX);
        let timeout_ms = if timeout_ms < 0 {
            left
        } else {
            timeout_ms.min(left)
        };
        let timeout = u32::try_from(timeout_ms).ok().map(|ms| Timespec {
            tv_sec: i64::from(ms / 1000),
            tv_nsec: i64::from(ms % 1000) * 1_000_000,
        });
        let mut events = [epoll::Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        }; EVENTS_CAP];
        let n = match epoll::wait(&self.epoll, &mut events, timeout.as_ref()) {
            Ok(n) => n,
            Err(Errno::INTR) => 0,
            Err(e) => return Err(ServiceError::Poll(e)),
        };
        let mut ready: heapless::Vec<Src, EVENTS_CAP> = heapless::Vec::new();
        for event in &events[..n.min(EVENTS_CAP)] {
            if let Some(src) = Src::from_data(event.data) {
                let _ = ready.push(src);
            }
        }
        // Facts from execd first, then the frames, then time, then the operators.
        if ready.iter().any(|s| matches!(s, Src::Authority)) {
            self.read_authority()?;
        }
        for src in &ready {
            if let Src::Memstat(i) = *src {
                self.read_frames(i);
            }
        }
        for src in &ready {
            if let Src::MemoryEvents(i) = *src {
                self.on_memory_events(i);
            }
        }
        if ready.iter().any(|s| matches!(s, Src::Timer)) {
            self.on_timer();
        }
        if ready.iter().any(|s| matches!(s, Src::Reload)) {
            self.on_reload_signal();
        }
        for src in &ready {
            if let Src::Client(i) = *src {
                self.serve_client(i);
            }
        }
        if ready.iter().any(|s| matches!(s, Src::Listener)) {
            self.accept_clients();
        }
        self.expire_clients();
        self.heartbeat(ready.iter().any(|s| matches!(s, Src::Timer)));
        Ok(())
    }

    /// From now on, a signal readable on `signals` (a signalfd, for `SIGHUP`: the binary
    /// blocks it in every thread first) makes the service re-read its policy file, as
    /// `oomctl policy reload` does.
    pub fn reload_on(&mut self, signals: nix::sys::signalfd::SignalFd) {
        if self.watch(signals.as_fd(), Src::Reload, EventFlags::IN) {
            self.reload_signals = Some(signals);
        }
    }

    /// Takes every pending reload signal; one reload for all of them.
    fn on_reload_signal(&mut self) {
        let Some(signals) = &mut self.reload_signals else {
            return;
        };
        let mut any = false;
        while let Ok(Some(_)) = signals.read_signal() {
            any = true;
        }
        if any {
            let _ = self.reload_policy("SIGHUP");
        }
    }

    // ----- the epoll set -------------------------------------------------------------------

    /// Adds a descriptor to the epoll set. A failure is told: the loop would not hear it.
    pub(crate) fn watch(&mut self, fd: BorrowedFd<'_>, src: Src, flags: EventFlags) -> bool {
        match epoll::add(&self.epoll, fd, src.data(), flags) {
            Ok(()) => true,
            // A plain file stands in for memory.events in tests on hosts without cgroup v2:
            // epoll refuses regular files, and the tests call `memory_events_changed`.
            Err(Errno::PERM) if matches!(src, Src::MemoryEvents(_)) => false,
            Err(e) => {
                self.out.note(format_args!(
                    "oomd: cannot wait on a descriptor ({src:?}): {e}"
                ));
                false
            }
        }
    }

    /// Takes a descriptor out of the epoll set (a descriptor not in it is no error).
    fn unwatch(&self, fd: BorrowedFd<'_>) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Takes slot `i`'s memstat channel out of the epoll set and drops it.
    fn drop_memstat(&mut self, i: usize) -> Option<OwnedFd> {
        let fd = self.slots.get_mut(i)?.memstat.take()?;
        self.unwatch(fd.as_fd());
        Some(fd)
    }

    // ----- feeding the core ----------------------------------------------------------------

    /// Feeds one input. The requests it makes are sent to execd only after its events are in
    /// the audit log and the log is synced to disk: audit before action, durably.
    pub(crate) fn feed(&mut self, input: Input) -> Result<(), InputError> {
        if let Some(r) = &mut self.recorder {
            r.input(&input, &mut self.out);
        }
        let mut tx = AuthorityTx {
            queue: &mut self.queue,
            reclaims: &mut self.reclaims,
        };
        let result = self.wd.handle(input, &mut tx);
        self.drain_events();
        // The requests before the brakes: a `memory.high` write may have oomd reclaim for the
        // group (`brake.rs`), and must not hold a kill back.
        self.send_queued();
        self.send_reclaims();
        if let (Input::ReclaimAck { sender, payload }, Ok(())) = (input, result) {
            if let Ok(ack) = payload.decode_ack() {
                self.note_round_trip(sender, ack.id);
            }
        }
        if self.brakes_stale {
            self.set_brakes();
        }
        result
    }

    /// Sends the requests of the last call of the core, after syncing the audit log; a
    /// request that cannot be sent is fed back as a refusal (`Unavailable`).
    fn send_queued(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        if let Some(audit) = &mut self.audit {
            audit.sync();
        }
        while let Some(request) = self.queue.pop() {
            let sent = oomd_proto::encode(&ToAuthority::Terminate(request), &mut self.tx)
                .and_then(|bytes| oomd_proto::send(self.authority.as_fd(), bytes, &[]));
            match sent {
                // The trail tells a request that reached execd's socket from one that died
                // with oomd between its audit record and its sending.
                Ok(()) => self.out.note(format_args!(
                    "oomd: request ticket={} sent to execd",
                    request.ticket.0
                )),
                Err(_) => {
                    let _ = self.unsent.push(request.ticket);
                }
            }
        }
        while let Some(ticket) = self.unsent.pop() {
            self.out.note(format_args!(
                "oomd: could not send request ticket={} to execd",
                ticket.0
            ));
            let answer = Input::Answer {
                ticket,
                answer: Answer::Refused(RefusalReason::Unavailable),
            };
            if let Some(r) = &mut self.recorder {
                r.input(&answer, &mut self.out);
            }
            // A refusal makes no request.
            let mut tx = AuthorityTx {
                queue: &mut self.queue,
                reclaims: &mut self.reclaims,
            };
            let _ = self.wd.handle(answer, &mut tx);
            self.drain_events();
        }
    }

    /// Sends the reclaim requests of the last call of the core on each service's memstat
    /// channel, after syncing the audit log. Never blocks: a request the channel cannot take
    /// now (the service does not read it, or has gone) is noted and not retried; the core
    /// judges the service on its figures at the deadline whatever became of the message.
    fn send_reclaims(&mut self) {
        if self.reclaims.is_empty() {
            return;
        }
        if let Some(audit) = &mut self.audit {
            audit.sync();
        }
        let period = u64::from(self.wd.policy().sample_period_ms);
        while let Some(r) = self.reclaims.pop() {
            let Some(slot) = self.slots.iter_mut().find(|s| s.id == r.subject) else {
                continue;
            };
            let message = memstat::ReclaimRequest {
                id: r.id,
                target_bytes: r.target_bytes,
                deadline_ms: u32::try_from(r.deadline.since(Tick(r.id)).saturating_mul(period))
                    .unwrap_or(u32::MAX),
            };
            let mut buf = [0u8; memstat::MAX_REQUEST_LEN];
            let sent = match (message.encode(&mut buf), &slot.memstat) {
                (Ok(n), Some(fd)) => rustix::net::send(
                    fd,
                    &buf[..n],
                    rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
                )
                .map(|_| ())
                .map_err(Unsent::Send),
                (Ok(_), None) => Err(Unsent::NoChannel),
                (Err(_), _) => Err(Unsent::Encode),
            };
            match sent {
                Ok(()) => {
                    slot.reclaim_sent = Some((r.id, Instant::now()));
                    self.out.note(format_args!(
                        "oomd: reclaim request id={} sent to {}",
                        r.id, slot.name
                    ));
                }
                Err(e) => self.out.note(format_args!(
                    "oomd: could not send reclaim request id={} to {}: {e}",
                    r.id, slot.name
                )),
            }
        }
    }

    /// The core took `sender`'s acknowledgement of reclaim request `id`: notes how long the
    /// round trip took, from the request's send to the acknowledgement's read, if it is the
    /// request this oomd sent last on that channel.
    fn note_round_trip(&mut self, sender: SubjectId, id: u64) {
        let Some(slot) = self.slots.iter_mut().find(|s| s.id == sender) else {
            return;
        };
        if let Some((sent, at)) = slot.reclaim_sent {
            if sent == id {
                slot.reclaim_sent = None;
                self.out.note(format_args!(
                    "oomd: reclaim round trip app={} id={id} us={}",
                    slot.name,
                    at.elapsed().as_micros()
                ));
            }
        }
    }

    /// Takes over from the previous run, as its audit log tells: the clock, the event and
    /// ticket numbers, and the kill decisions of this boot (the kill budget).
    fn resume(&mut self) {
        if self.recovered.is_empty() {
            return;
        }
        let r = &self.recovered;
        if r.skipped > 0 {
            self.out.note(format_args!(
                "oomd: audit log: skipped {} torn or unreadable lines",
                r.skipped
            ));
        }
        let period = self.wd.policy().sample_period_ms;
        let tick = r.resume_tick(audit::now_ms(), period);
        let resume = Restore::Resume {
            tick,
            next_event_seq: r.next_event_seq,
            next_ticket: r.next_ticket,
        };
        let decisions = r.kill_decisions.clone();
        self.tick = tick.0;
        // The audit output reads on from the resumed numbers: nothing of this run is lost.
        self.next_seq = r.next_event_seq;
        let _ = self.feed(Input::Restore(resume));
        for at in decisions {
            let _ = self.feed(Input::Restore(Restore::KillDecided { at }));
        }
    }

    fn drain_events(&mut self) {
        loop {
            let page = self.wd.events(self.next_seq, 64);
            let lost = page.lost();
            let resume = page.resume_seq();
            if lost > 0 {
                self.out
                    .note(format_args!("oomd: audit output lost {lost} events"));
            }
            let mut any = false;
            let now_ms = if self.audit.is_some() {
                audit::now_ms()
            } else {
                0
            };
            let mut now = None;
            for event in page {
                // What moves a brake: the policy, a kill decided or given up, and a report
                // gone stale (its next frame moves it back, `brake_silent`).
                if matches!(
                    event.kind,
                    oomd::EventKind::PolicyChanged { .. }
                        | oomd::EventKind::ReportStale { .. }
                        | oomd::EventKind::KillRequested { .. }
                        | oomd::EventKind::KillThrottled { .. }
                        | oomd::EventKind::KillRefused { .. }
                        | oomd::EventKind::KillFailed { .. }
                        | oomd::EventKind::KillAdopted { .. }
                ) {
                    self.brakes_stale = true;
                }
                self.out.event(&event, &self.names);
                if let Some(audit) = &mut self.audit {
                    audit.append_event(&event, &self.names, now_ms);
                }
                let now = *now.get_or_insert_with(Instant::now);
                if let Some(report) = self.kill_reports.on_event(&event, now, &self.wd) {
                    let view = self.names.report_view(report);
                    self.out.kill_report(&view);
                    if let Some(audit) = &mut self.audit {
                        audit.append_report(&event, &view, now_ms);
                    }
                }
                any = true;
            }
            self.next_seq = resume;
            if !any {
                if self.kill_reports.any_open() {
                    self.kill_reports.follow(&self.wd);
                }
                break;
            }
            if let Some(audit) = &mut self.audit {
                audit.checkpoint(resume, self.wd.now(), now_ms);
            }
        }
    }

    // ----- execd ---------------------------------------------------------------------------

    fn read_authority(&mut self) -> Result<(), ServiceError> {
        loop {
            let (msg, fds) = match self.rx.recv_msg::<FromAuthority>(self.authority.as_fd()) {
                Ok(m) => m,
                Err(e) if e.is_would_block() => return Ok(()),
                Err(WireError::Closed) => return Err(ServiceError::AuthorityGone),
                Err(e @ WireError::Peer(_)) => {
                    self.out
                        .note(format_args!("oomd: ignored a message from execd: {e}"));
                    continue;
                }
                Err(e) => return Err(ServiceError::Authority(e)),
            };
            let [memstat, _] = fds;
            match msg {
                FromAuthority::Started {
                    subject,
                    name,
                    class,
                    critical,
                    pid,
                    cgroup,
                } => {
                    self.on_started(subject, name, class, critical, pid, cgroup, memstat);
                }
                FromAuthority::Answer { ticket, answer } => {
                    let _ = self.feed(Input::Answer { ticket, answer });
                }
                FromAuthority::Exited { subject, status } => {
                    let _ = status;
                    let _ = self.feed(Input::Exited(subject));
                    if let Some(i) = self.slots.iter().position(|s| s.id == subject) {
                        let _ = self.drop_memstat(i);
                        if let Some(fd) = self.slots[i].memory_events.take() {
                            self.unwatch(fd.as_fd());
                        }
                        let slot = &mut self.slots[i];
                        slot.running = false;
                        slot.pidfd = None;
                        slot.memory_current = None;
                        slot.paused = false;
                    }
                    // On disk before execd forgets the kill: a restart here confirms it
                    // again from execd's record, and the audit log says it was.
                    if let Some(audit) = &mut self.audit {
                        audit.sync();
                    }
                    self.tell_execd(&ToAuthority::ExitSeen { subject });
                }
                FromAuthority::Terminating {
                    subject,
                    ticket,
                    mode,
                    accepted,
                    bytes,
                } => self.adopt(subject, ticket, mode, accepted, bytes),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_started(
        &mut self,
        subject: SubjectId,
        name: Name,
        class: oomd::SubjectClass,
        critical: bool,
        pid: i32,
        cgroup: Option<Name>,
        memstat: Option<OwnedFd>,
    ) {
        // A service with a memstat channel is expected to report; one without is judged on
        // its kernel figure alone.
        let reports = memstat.is_some();
        if let Some(fd) = &memstat {
            if oomd_proto::set_nonblocking(fd).is_err() {
                self.out.note(format_args!(
                    "oomd: cannot use the memstat channel of {name}"
                ));
            }
            // execd set it before the service held its end; a channel from an older execd
            // gets it now.
            let _ = memstat::publish::refuse_descriptors(fd.as_fd());
        }
        self.names.insert(subject, &name);
        if let Some(r) = &mut self.recorder {
            r.name(subject, &name, &mut self.out);
        }
        // Opened as soon as execd announces the service: execd has not reaped it before it
        // sent `Started`, so the pid still names it unless it already died and its number was
        // reused in between, which the figure's liveness check cannot tell apart; with cgroups
        // (the guest) no pid is involved at all.
        let pidfd = match &cgroup {
            Some(_) => None,
            None => rustix::process::Pid::from_raw(pid).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            }),
        };
        let slot = KnownService {
            id: subject,
            name,
            pid,
            cgroup,
            memstat,
            pidfd,
            running: true,
            frames_read: 0,
            paused: false,
            memory_events: None,
            memory_current: None,
            high_events: 0,
            pushed_at: None,
            pushed_before: false,
            brake: None,
            brake_at_charge: None,
            unseen: brake::Unseen::default(),
            brake_silent: false,
            reclaim_sent: None,
        };
        let at = match self.slots.iter().position(|s| s.id == subject) {
            Some(i) => {
                // A restart: the old channel and events file leave the epoll set first.
                let _ = self.drop_memstat(i);
                if let Some(fd) = self.slots[i].memory_events.take() {
                    self.unwatch(fd.as_fd());
                }
                self.slots[i] = slot;
                Some(i)
            }
            None => match self.slots.push(slot) {
                Ok(()) => Some(self.slots.len() - 1),
                Err(slot) => {
                    self.out
                        .note(format_args!("oomd: no room to watch {}", slot.name));
                    None
                }
            },
        };
        if let Some(i) = at {
            self.watch_memstat(i);
        }
        let registered = self.feed(Input::Register(Registration {
            subject,
            class,
            critical,
            reports,
        }));
        // A restart within a tick keeps the frames the core already took from the subject in
        // it (a restart buys no fresh budget): the new channel is read from there, so that a
        // frame past the budget is paused and coalesced at the tick like any other, not fed
        // and rejected (and the newest figure never counted).
        if let (Some(i), Some(status)) = (at, self.wd.subject(subject)) {
            self.slots[i].frames_read = status.frames_this_tick;
        }
        // Its own limits, from the policy file or `oomctl policy set`, kept while it was not
        // running.
        if let (Ok(()), Some(limits)) = (registered, self.policies.get(subject)) {
            let _ = self.feed(Input::SetPolicy(PolicyUpdate::SubjectLimits {
                subject,
                limits: Some(limits),
            }));
        }
        self.watch_memory_events(subject);
        self.set_brakes();
    }

    // ----- the kernel brake and push (cgroup mode, `brake`) --------------------------------

    /// Opens the service's `memory.events` (cgroup mode), or says once that it has no brake.
    fn watch_memory_events(&mut self, subject: SubjectId) {
        let Some(i) = self.slots.iter().position(|s| s.id == subject) else {
            return;
        };
        let slot = &mut self.slots[i];
        let Some(dir) = &slot.cgroup else {
            self.out.note(format_args!(
                "oomd: {} runs outside a cgroup: no kernel brake (memory.high) or push for it",
                slot.name
            ));
            return;
        };
        slot.memory_current = brake::open_current(&self.opts.cgroup_root, dir);
        slot.memory_events = brake::open_events(&self.opts.cgroup_root, dir);
        match &slot.memory_events {
            Some(fd) => slot.high_events = brake::high_events(fd.as_fd()).unwrap_or(0),
            None => self.out.note(format_args!(
                "oomd: cannot watch memory.events of {}: no kernel push for it",
                slot.name
            )),
        }
        // The kernel raises EPOLLPRI (and EPOLLERR) on a cgroup file that changed.
        if let Some(fd) = self.slots[i].memory_events.take() {
            self.watch(fd.as_fd(), Src::MemoryEvents(i), EventFlags::PRI);
            self.slots[i].memory_events = Some(fd);
        }
    }

    /// Puts slot `i`'s memstat channel (if any) into the epoll set.
    fn watch_memstat(&mut self, i: usize) {
        if let Some(fd) = self.slots.get_mut(i).and_then(|s| s.memstat.take()) {
            self.watch(fd.as_fd(), Src::Memstat(i), EventFlags::IN);
            self.slots[i].memstat = Some(fd);
        }
    }

    /// Sets every running cgroup service's `memory.high` to what its limits, its kill state
    /// and the policy ask ([`brake::wanted`]), where it changed.
    fn set_brakes(&mut self) {
        self.brakes_stale = false;
        for i in 0..self.slots.len() {
            self.set_brake(i);
        }
    }

    /// Sets slot `i`'s `memory.high` (if it runs in a cgroup) to what [`brake::wanted`]
    /// says, if that changed.
    fn set_brake(&mut self, i: usize) {
        let policy = self.wd.policy();
        let (observe_only, enforce_kernel) = (policy.observe_only, policy.enforce_kernel);
        let when_silent = policy.enforce_kernel_when_silent;
        if self.slots[i].cgroup.is_none() || !self.slots[i].running {
            return;
        }
        let Some(status) = self.wd.subject(self.slots[i].id) else {
            return;
        };
        // Silent (no frame yet, or its report went stale): the core judges it on the larger of
        // its report and its kernel figure, and so does the brake.
        let silent = when_silent && (status.reported_bytes.is_none() || status.report_stale);
        self.slots[i].brake_silent = silent;
        let slot = &self.slots[i];
        let want = brake::wanted(brake::Judged {
            hard: status.limits.hard_bytes,
            exempt: status.critical || observe_only,
            kernel_decides: enforce_kernel || !status.reports || silent,
            killing: matches!(
                status.kill,
                KillState::Throttled { .. } | KillState::Pending { .. }
            ),
            headroom: slot.unseen.headroom(),
            over_hard: status
                .reported_bytes
                .is_some_and(|r| r >= status.limits.hard_bytes),
        });
        if slot.brake == Some(want) {
            return;
        }
        let write = brake::not_below_charge(want, want.and_then(|_| self.group_charge(i)));
        self.write_brake(i, write, want);
        // A failure is told once, and tried again when the brake next moves.
        self.slots[i].brake = Some(want);
    }

    /// Writes `write` to slot `i`'s `memory.high` for the brake `want` (more, when the group
    /// held more: [`brake::not_below_charge`]), says what it did, and keeps what was written
    /// over `want` for [`lower_brake_at_charge`](Self::lower_brake_at_charge).
    fn write_brake(&mut self, i: usize, write: Option<u64>, want: Option<u64>) {
        let slot = &self.slots[i];
        let Some(dir) = &slot.cgroup else {
            return;
        };
        let result = brake::set_high(&self.opts.cgroup_root, dir, write);
        let name = &slot.name;
        match (&result, write) {
            (Ok(()), Some(high)) if write != want => self.out.note(format_args!(
                "oomd: brake app={name} memory.high={high}: at its charge, over the {} wanted",
                want.unwrap_or(u64::MAX)
            )),
            (Ok(()), Some(high)) => self
                .out
                .note(format_args!("oomd: brake app={name} memory.high={high}")),
            (Ok(()), None) => self
                .out
                .note(format_args!("oomd: brake app={name} memory.high=max")),
            (Err(e), _) => self
                .out
                .note(format_args!("oomd: cannot set memory.high of {name}: {e}")),
        }
        self.slots[i].brake_at_charge = write.filter(|_| result.is_ok() && write != want);
    }

    /// A brake written at the group's charge, over the one wanted, comes down with the
    /// charge: at a kernel reading `charge` that finds the group [`brake::LOWER_BY`] or more
    /// under it, to the larger of the brake wanted and that reading. Otherwise a group that
    /// shrank after a refused kill, or after its hard limit was lowered under what it held,
    /// would keep its brake (and its `high` events, the push) where it once was.
    fn lower_brake_at_charge(&mut self, i: usize, charge: u64) {
        let slot = &self.slots[i];
        let (Some(written), Some(Some(want))) = (slot.brake_at_charge, slot.brake) else {
            return;
        };
        if charge.saturating_add(brake::LOWER_BY) > written {
            return;
        }
        // A failure is told once: the brake stays where it was until it next moves.
        self.write_brake(
            i,
            brake::not_below_charge(Some(want), Some(charge)),
            Some(want),
        );
    }

    /// Feeds a kernel reading of slot `i`, and learns from it how much of the service's
    /// charge its report does not show ([`learn_unseen`](Self::learn_unseen)).
    fn feed_kernel_reading(&mut self, i: usize, bytes: u64) {
        let subject = self.slots[i].id;
        let _ = self.feed(Input::KernelReading { subject, bytes });
        self.learn_unseen(i, bytes, brake::Reading::Later);
        self.lower_brake_at_charge(i, bytes);
    }

    /// What slot `i`'s cgroup holds now, `memory.current` (`None`: not in a cgroup, or
    /// unreadable).
    fn group_charge(&self, i: usize) -> Option<u64> {
        let slot = &self.slots[i];
        let source = match (&slot.memory_current, &slot.cgroup) {
            (Some(fd), _) => Source::CgroupFile(fd.as_fd()),
            (None, Some(dir)) => Source::Cgroup {
                root: &self.opts.cgroup_root,
                dir,
            },
            (None, None) => return None,
        };
        kernel::read_bytes(source)
    }

    /// Right after a frame of slot `i` was fed: its group's `memory.current` (cgroup mode),
    /// for the brake alone (it is not fed to the core), so that the gap between charge and
    /// report is seen when the report is newest; a reading at the tick may come up to a
    /// tick after the frame, with a runaway's growth since in the gap.
    fn learn_unseen_at_frame(&mut self, i: usize) {
        let Some(fd) = &self.slots[i].memory_current else {
            return;
        };
        if let Some(bytes) = kernel::read_bytes(Source::CgroupFile(fd.as_fd())) {
            self.learn_unseen(i, bytes, brake::Reading::AtFrame);
        }
    }

    /// For a service judged on its report (cgroup mode), its kernel figure `kernel` next to
    /// its report: its brake moves with what that shows ([`brake::Unseen`]).
    fn learn_unseen(&mut self, i: usize, kernel: u64, reading: brake::Reading) {
        if self.slots[i].cgroup.is_none() {
            return;
        }
        let Some(status) = self.wd.subject(self.slots[i].id) else {
            return;
        };
        let (Some(report), true) = (status.reported_bytes, status.reports) else {
            return;
        };
        let (now, hard) = (self.wd.now().0, status.limits.hard_bytes);
        if self.slots[i]
            .unseen
            .observe(now, kernel, report, hard, reading)
        {
            self.set_brake(i);
        }
    }

    /// What a `POLLPRI` wake on the `memory.events` of every watched service does: for tests
    /// on hosts without cgroup v2, where a plain file stands in for a cgroup and never raises
    /// `POLLPRI`.
    #[doc(hidden)]
    pub fn memory_events_changed(&mut self) {
        for i in 0..self.slots.len() {
            self.on_memory_events(i);
        }
    }

    /// The service's `memory.events` changed: on a new `high` event, its kernel figure is
    /// read and fed at once (once per tick at most), so that a crossing is decided now.
    fn on_memory_events(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(fd) = &slot.memory_events else {
            return;
        };
        // Read every time: the read is what acknowledges the change to the kernel.
        let Some(high) = brake::high_events(fd.as_fd()) else {
            return;
        };
        let grew = high > slot.high_events;
        slot.high_events = high;
        if !grew || !slot.running || slot.pushed_at == Some(self.tick) {
            return;
        }
        slot.pushed_at = Some(self.tick);
        if let Some(bytes) = self.group_charge(i) {
            let slot = &mut self.slots[i];
            // Told once per run of the service: a throttled service raises events all along.
            if !slot.pushed_before {
                slot.pushed_before = true;
                self.out.note(format_args!(
                    "oomd: memory.high reached app={} bytes={bytes}: kernel figure read at once \
                     (and at each later high event, once per tick)",
                    slot.name
                ));
            }
            self.feed_kernel_reading(i, bytes);
        }
    }

    /// A termination an earlier oomd requested, which execd carries out (or carried out: its
    /// `Exited` follows): adopted, unless the audit log says this kill was already confirmed.
    fn adopt(
        &mut self,
        subject: SubjectId,
        ticket: Ticket,
        mode: TerminationMode,
        accepted: bool,
        bytes: u64,
    ) {
        if self.recovered.confirmed.contains(&ticket.0) {
            self.out.note(format_args!(
                "oomd: the kill of ticket {} was confirmed before the restart; not adopted",
                ticket.0
            ));
            return;
        }
        let adopt = Restore::KillInFlight {
            subject,
            ticket,
            mode,
            accepted,
            bytes,
        };
        if let Err(e) = self.feed(Input::Restore(adopt)) {
            self.out.note(format_args!(
                "oomd: could not adopt the kill of ticket {}: {e:?}",
                ticket.0
            ));
        }
    }

    /// One message to execd; a failure shows up when the channel is next read.
    fn tell_execd(&mut self, msg: &ToAuthority) {
        let _ = oomd_proto::encode(msg, &mut self.tx)
            .and_then(|bytes| oomd_proto::send(self.authority.as_fd(), bytes, &[]));
    }

    /// Proves to execd that this loop runs: at least every `HEARTBEAT_INTERVAL`, on whatever
    /// woke the loop when [`heartbeat_due`] says so (`ticked`: this wake was the tick's).
    fn heartbeat(&mut self, ticked: bool) {
        let now = Instant::now();
        let period = self.wd.policy().sample_period_ms;
        let tick_period = (ticked && period > 0).then(|| Duration::from_millis(period.into()));
        if !heartbeat_due(
            now.saturating_duration_since(self.last_heartbeat),
            tick_period,
        ) {
            return;
        }
        self.last_heartbeat = now;
        let tick = self.wd.now().0;
        self.tell_execd(&ToAuthority::Heartbeat { tick });
    }

    // ----- memstat -------------------------------------------------------------------------

    /// Reads what the channel of slot `i` holds, up to the sender's frame budget for this
    /// tick, in batches, and feeds each packet. A sender that uses its budget is paused: not
    /// read again until [`drain_paused`](Self::drain_paused), just before the next tick.
    fn read_frames(&mut self, i: usize) {
        let budget = self.wd.policy().frame_budget_per_tick;
        loop {
            let Some(slot) = self.slots.get(i) else {
                return;
            };
            if slot.frames_read >= budget {
                // Out of the epoll set until the drain: a paused sender wakes nobody.
                if let Some(fd) = &slot.memstat {
                    self.unwatch(fd.as_fd());
                }
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.paused = true;
                }
                return;
            }
            let sender = slot.id;
            let want = usize::from(budget - slot.frames_read).min(BATCH);
            let batch = self.recv_batch(i, want);
            for j in 0..batch.frames {
                if let Some(slot) = self.slots.get_mut(i) {
                    slot.frames_read = slot.frames_read.saturating_add(1);
                }
                let payload = oomd::Payload::truncated(&self.frames[j], self.lens[j]);
                let _ = self.feed(packet_input(sender, payload));
            }
            if batch.frames > 0 {
                self.learn_unseen_at_frame(i);
                if self.slots[i].brake_silent {
                    self.set_brake(i);
                }
            }
            if let Some(why) = batch.hung_up {
                self.close_memstat(i, why);
                return;
            }
            if batch.frames < want {
                return; // the queue is empty
            }
        }
    }

    /// Just before a tick: every paused channel is read up to what was queued when the drain
    /// began (at most [`MAX_DRAIN`] packets), and only the newest packet is fed, as
    /// [`Input::LatestFrame`]: the sender is judged on the newest figure it delivered, at the
    /// cost of reads, not of decoding or feeding. A sender that keeps sending while it is
    /// drained cannot make the drain longer: what arrives after it began waits for the next
    /// tick. Then every sender's budget starts afresh.
    fn drain_paused(&mut self) {
        for i in 0..self.slots.len() {
            if !self.slots[i].paused {
                continue;
            }
            let sender = self.slots[i].id;
            // The bytes queued now (for SOCK_SEQPACKET, the sum over every queued packet).
            let queued = self.slots[i]
                .memstat
                .as_ref()
                .and_then(|fd| rustix::io::ioctl_fionread(fd).ok())
                .unwrap_or(0);
            let mut newest: Option<(usize, [u8; MAX_FRAME_LEN + 1])> = None;
            // Acknowledgements are not figures: the newest of them is fed besides the newest
            // frame, so that coalescing never drops the one a service sent.
            let mut newest_ack: Option<(usize, [u8; MAX_FRAME_LEN + 1])> = None;
            let mut read = 0usize;
            let mut consumed = 0u64;
            let mut hung_up = None;
            while read < MAX_DRAIN && (read == 0 || consumed < queued) {
                let batch = self.recv_batch(i, BATCH.min(MAX_DRAIN - read));
                read += batch.frames;
                for &len in &self.lens[..batch.frames] {
                    consumed = consumed.saturating_add(len as u64);
                }
                // The newest of each kind in this batch, copied once each.
                let is_ack = |j: usize| {
                    memstat::is_ack(&self.frames[j][..self.lens[j].min(MAX_FRAME_LEN + 1)])
                };
                let last_ack = (0..batch.frames).rev().find(|&j| is_ack(j));
                let last_frame = (0..batch.frames).rev().find(|&j| !is_ack(j));
                if let Some(j) = last_ack {
                    newest_ack = Some((self.lens[j], self.frames[j]));
                }
                if let Some(j) = last_frame {
                    newest = Some((self.lens[j], self.frames[j]));
                }
                if batch.hung_up.is_some() {
                    hung_up = batch.hung_up;
                    break;
                }
                if batch.frames < BATCH {
                    break; // the queue is empty
                }
            }
            let fed = usize::from(newest.is_some()) + usize::from(newest_ack.is_some());
            if let Some((len, kept)) = newest_ack {
                let payload = oomd::Payload::truncated(&kept, len);
                let _ = self.feed(Input::ReclaimAck { sender, payload });
            }
            if let Some((len, kept)) = newest {
                let payload = oomd::Payload::truncated(&kept, len);
                let discarded = u16::try_from(read - fed).unwrap_or(u16::MAX);
                let _ = self.feed(Input::LatestFrame {
                    sender,
                    payload,
                    discarded,
                });
                self.learn_unseen_at_frame(i);
                if self.slots[i].brake_silent {
                    self.set_brake(i);
                }
            }
            if let Some(why) = hung_up {
                self.close_memstat(i, why);
            }
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            slot.frames_read = 0;
            if core::mem::take(&mut slot.paused) {
                self.watch_memstat(i);
            }
        }
    }

    /// Receives up to `want` packets from slot `i`'s channel with one `recvmmsg`, without
    /// blocking, into `self.frames` and their real lengths (`MSG_TRUNC`: a longer packet's
    /// length, not the bytes kept) into `self.lens`.
    ///
    /// A `SOCK_SEQPACKET` receive returns 0 both for an empty packet and at the end of the
    /// stream, and at the end `recvmmsg` fills every remaining entry with such a 0. So
    /// zero-length entries are the end only when they close the batch and the peer shut its
    /// end (`POLLRDHUP`) with nothing left queued; any other empty packet is a frame like any
    /// other (the core rejects it as truncated), so that no packet can make oomd drop a
    /// channel. (Empty packets sent just before a hang-up are taken for the end: they would
    /// only have been rejected.)
    fn recv_batch(&mut self, i: usize, want: usize) -> Batch {
        use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders};
        use std::io::IoSliceMut;
        let nothing = Batch {
            frames: 0,
            hung_up: None,
        };
        let Some(fd) = self.slots.get(i).and_then(|s| s.memstat.as_ref()) else {
            return nothing;
        };
        let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
        let want = want.clamp(1, BATCH);
        let (lens, frames) = (&mut self.lens, &mut self.frames);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
        let result = BATCH_HEADERS.with(|cell| {
            let mut cell = cell.borrow_mut();
            let headers = cell.get_or_insert_with(|| MultiHeaders::preallocate(BATCH, None));
            let mut bufs = frames.iter_mut();
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] = core::array::from_fn(|_| {
                [IoSliceMut::new(
                    bufs.next().map_or(&mut [][..], |b| &mut b[..]),
                )]
            });
            recvmmsg(raw, headers, slices[..want].iter_mut(), flags, None).map(|results| {
                let mut n = 0;
                for (j, msg) in results.enumerate() {
                    lens[j] = msg.bytes;
                    n = j + 1;
                }
                n
            })
        });
        let received = match result {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return nothing,
            Err(e) if memstat::publish::would_block(e as i32) => return nothing,
            Err(_) => {
                return Batch {
                    frames: 0,
                    hung_up: Some("failed"),
                }
            }
        };
        let frames = self.lens[..received]
            .iter()
            .rposition(|&len| len > 0)
            .map_or(0, |last| last + 1);
        let hung_up = (frames < received && memstat::publish::peer_hung_up(fd.as_fd()))
            .then_some("closed by the service");
        Batch {
            frames: if hung_up.is_some() { frames } else { received },
            hung_up,
        }
    }

    fn close_memstat(&mut self, i: usize, why: &str) {
        if self.drop_memstat(i).is_some() {
            let slot = &mut self.slots[i];
            slot.paused = false;
            self.memstat_hangups += 1;
            let name = slot.name.clone();
            self.out
                .note(format_args!("oomd: memstat channel of {name} {why}"));
        }
    }

    // ----- time ----------------------------------------------------------------------------

    pub(crate) fn arm_timer(&mut self) -> Result<(), Errno> {
        let period = u64::from(self.wd.policy().sample_period_ms);
        // Every `period` ms from `period` ms from now (a period of 0 disarms the timer).
        let spec = Timespec {
            tv_sec: i64::try_from(period / 1000).unwrap_or(i64::MAX),
            tv_nsec: i64::try_from((period % 1000) * 1_000_000).unwrap_or(0),
        };
        let value = Itimerspec {
            it_interval: spec,
            it_value: spec,
        };
        timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &value).map(|_| ())
    }

    fn on_timer(&mut self) {
        let mut count = [0u8; 8];
        let expirations = match rustix::io::read(&self.timer, &mut count) {
            Ok(8) => u64::from_ne_bytes(count),
            _ => return,
        };
        self.tick = self.tick.saturating_add(expirations);
        self.drain_paused();
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if !slot.running {
                continue;
            }
            let source = match (&slot.memory_current, &slot.cgroup, &slot.pidfd) {
                (Some(fd), _, _) => Source::CgroupFile(fd.as_fd()),
                (None, Some(dir), _) => Source::Cgroup {
                    root: &self.opts.cgroup_root,
                    dir,
                },
                (None, None, Some(pidfd)) => Source::Tree {
                    root: slot.pid,
                    alive: pidfd.as_fd(),
                },
                (None, None, None) => continue,
            };
            if let Some(bytes) = kernel::read_bytes(source) {
                self.feed_kernel_reading(i, bytes);
            }
        }
        let _ = self.feed(Input::Tick(Tick(self.tick)));
        if let Some(r) = &mut self.recorder {
            r.flush(&mut self.out);
        }
    }

    /// The audit log's syncs, the microseconds they took, and its failures.
    pub(crate) fn audit_stats(&self) -> (u64, u64, u64) {
        self.audit
            .as_ref()
            .map_or((0, 0, 0), |a| (a.syncs, a.sync_nanos / 1000, a.failures))
    }

    /// Whether a service of this name runs (selftest builds: `inject`).
    #[cfg(feature = "selftest")]
    pub(crate) fn runs(&self, name: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.running && s.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_rides_on_the_tick_and_on_other_wakes_in_the_second_half_of_its_interval() {
        let interval = oomd_proto::HEARTBEAT_INTERVAL;
        let ms = Duration::from_millis;
        // A wake that is not a tick's (a frame, a client): from half the interval on.
        assert!(heartbeat_due(interval - Duration::from_micros(50), None));
        assert!(heartbeat_due(interval / 2, None));
        assert!(heartbeat_due(interval, None));
        assert!(!heartbeat_due(
            interval / 2 - Duration::from_micros(1),
            None
        ));
        assert!(!heartbeat_due(Duration::ZERO, None));
        // At the default 100 ms tick, every tick sends it, however soon after the last
        // heartbeat it comes (41 ms: the phase seen on the host, where the heartbeat used to
        // wake the loop 59 ms after every tick).
        assert!(heartbeat_due(ms(41), Some(ms(100))));
        assert!(heartbeat_due(ms(1), Some(ms(100))));
        // At a 20 ms tick, from half the interval on, as any wake: the third tick.
        assert!(!heartbeat_due(ms(40), Some(ms(20))));
        assert!(heartbeat_due(ms(60), Some(ms(20))));
        // Never twice on one instant.
        assert!(!heartbeat_due(Duration::ZERO, Some(ms(100))));
    }
}
