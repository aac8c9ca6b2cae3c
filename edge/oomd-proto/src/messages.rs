//! The messages. Enums are encoded by variant position: only ever append variants.

use memstat::SubjectId;
use oomd::{
    Answer, Event, Limits, Policy, PolicyError, PolicyUpdate, RefusalReason, SubjectClass,
    SubjectStatus, TerminationMode, TerminationRequest, Ticket,
};
use serde::{Deserialize, Serialize};

use crate::wire::{Message, Protocol};

impl Message for FromAuthority {
    const PROTOCOL: Protocol = Protocol::Authority;
}
impl Message for ToAuthority {
    const PROTOCOL: Protocol = Protocol::Authority;
}
impl Message for ExecdRequest {
    const PROTOCOL: Protocol = Protocol::ExecdControl;
}
impl Message for ExecdReply {
    const PROTOCOL: Protocol = Protocol::ExecdControl;
}
impl Message for ControlRequest {
    const PROTOCOL: Protocol = Protocol::OomdControl;
}
impl Message for ControlReply {
    const PROTOCOL: Protocol = Protocol::OomdControl;
}

/// Longest service name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest rendered event line, in bytes.
pub const MAX_LINE_LEN: usize = 192;

/// A service name (a manifest key), at most [`MAX_NAME_LEN`] bytes.
pub type Name = heapless::String<MAX_NAME_LEN>;
/// A rendered event line (`oomd: kill app=hog bytes=...`), at most [`MAX_LINE_LEN`] bytes.
pub type Line = heapless::String<MAX_LINE_LEN>;

/// Makes a [`Name`], or says the name is too long.
pub fn name(s: &str) -> Result<Name, NameTooLong> {
    Name::try_from(s).map_err(|()| NameTooLong { len: s.len() })
}

/// A name longer than [`MAX_NAME_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameTooLong {
    /// Its length in bytes.
    pub len: usize,
}

impl core::fmt::Display for NameTooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "name of {} bytes is longer than {MAX_NAME_LEN}",
            self.len
        )
    }
}

impl std::error::Error for NameTooLong {}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl core::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

// ----- authority channel ------------------------------------------------------------------

/// execd → oomd service, on the authority channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromAuthority {
    /// A service started. Its memstat channel (oomd's end) comes with this message as the one
    /// `SCM_RIGHTS` descriptor; frames read from it are that service's, and no one else's.
    Started {
        /// Its identity (`SubjectId::from_name(name)`).
        subject: SubjectId,
        /// Its manifest name.
        name: Name,
        /// Victim class.
        class: SubjectClass,
        /// Protected from kills.
        critical: bool,
        /// The root of its processes. In cgroup mode (`cgroup` is `Some`): its main process.
        /// In process-group mode: its subreaper shim, a process of execd's that forks the
        /// service, adopts its orphans and exits once every one of them is gone; the
        /// service's processes are exactly the shim's descendants (not the shim itself).
        /// Either way it is the service's process group id.
        pid: i32,
        /// Its cgroup v2 directory under the cgroup root, when execd placed it in one; `None`
        /// when it runs in a process group of its own (hosts without cgroup v2).
        cgroup: Option<Name>,
    },
    /// execd's answer to [`ToAuthority::Terminate`].
    Answer {
        /// The request answered.
        ticket: Ticket,
        /// Accepted or refused.
        answer: Answer,
    },
    /// Every process of the service is gone (observed through its pidfd / cgroup). After an
    /// accepted termination, execd sends it again on every new authority channel until the
    /// oomd service answers [`ToAuthority::ExitSeen`]: a kill whose exit came while no oomd
    /// ran is still confirmed.
    Exited {
        /// Who.
        subject: SubjectId,
        /// How its main process ended.
        status: ExitStatus,
    },
    /// On a new authority channel (a restarted oomd service), right after the service's
    /// `Started`: a termination requested on an earlier channel that execd carries out, or
    /// carried out (its `Exited` then follows).
    Terminating {
        /// Who.
        subject: SubjectId,
        /// The request's ticket.
        ticket: Ticket,
        /// How hard it asked (the latest request).
        mode: TerminationMode,
        /// execd accepted it.
        accepted: bool,
        /// The enforced bytes at the decision, as the request carried them.
        bytes: u64,
    },
}

/// oomd service → execd, on the authority channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToAuthority {
    /// End a service. execd answers with [`FromAuthority::Answer`] and, once it is gone,
    /// [`FromAuthority::Exited`].
    Terminate(TerminationRequest),
    /// The oomd service's loop is alive: sent at least every
    /// [`HEARTBEAT_INTERVAL`](crate::HEARTBEAT_INTERVAL). execd ends and restarts a watchdog
    /// that stays silent longer than its heartbeat timeout (a wedged or stopped oomd).
    Heartbeat {
        /// The oomd core's current tick.
        tick: u64,
    },
    /// The oomd service has taken (and written to its audit log) the exit of `subject` that
    /// followed an accepted termination: execd may forget it.
    ExitSeen {
        /// Who.
        subject: SubjectId,
    },
}

// ----- execd control ----------------------------------------------------------------------

/// Client → execd's control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecdRequest {
    /// Start the manifest entry `name` (if it is not running).
    Spawn {
        /// The manifest name.
        name: Name,
    },
    /// End a service. Always denied on this socket (`NotPermitted`, or `Critical` for a
    /// critical service): only the oomd service's authority channel may end services.
    Terminate {
        /// Who.
        subject: SubjectId,
        /// How.
        mode: TerminationMode,
    },
    /// One [`ExecdReply::Service`] per manifest entry, then [`ExecdReply::End`].
    List,
    /// From now on, an [`ExecdReply::Exited`] each time a service ends.
    Subscribe,
    /// Selftest builds of execd only: end the watchdog (as a crash would), so that the boot
    /// selftest proves the restart without signalling anything itself. Refused
    /// (`NotPermitted`) in every other build, and to unprivileged callers.
    EndWatchdog,
}

/// execd → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecdReply {
    /// The service runs.
    Spawned {
        /// Its identity.
        subject: SubjectId,
        /// The root of its processes (as in [`FromAuthority::Started`]).
        pid: i32,
    },
    /// The answer to [`ExecdRequest::Terminate`].
    Terminate(TerminateOutcome),
    /// One manifest entry.
    Service(ServiceInfo),
    /// The end of a list.
    End,
    /// A service ended (to subscribers).
    Exited {
        /// Who.
        subject: SubjectId,
        /// Its name.
        name: Name,
        /// How its main process ended.
        status: ExitStatus,
    },
    /// The request could not be carried out.
    Error(ExecdError),
}

/// What execd did with a termination request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TerminateOutcome {
    /// It is ending the service.
    Accepted,
    /// It will not.
    Denied(RefusalReason),
    /// No such running service.
    Unknown,
}

/// One manifest entry as execd sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Its identity.
    pub subject: SubjectId,
    /// Its name.
    pub name: Name,
    /// Protected from kills.
    pub critical: bool,
    /// The root of its processes (as in [`FromAuthority::Started`]), while it runs.
    pub pid: Option<i32>,
}

/// Why execd could not do what a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecdError {
    /// No manifest entry of that name.
    UnknownService,
    /// It is already running.
    AlreadyRunning,
    /// The kernel refused to start it (errno).
    SpawnFailed(i32),
    /// The request could not be decoded.
    BadRequest,
    /// Every connection slot is taken by clients that may not be displaced: try again later.
    Busy,
    /// This connection was closed to make room for a newcomer after it sat idle.
    Evicted,
    /// The caller may not ask for this: spawning needs root, execd's own user, or the
    /// control group (`--socket-group`).
    NotPermitted {
        /// The caller's user id, as the kernel reported it.
        uid: u32,
    },
    /// The request belongs to another protocol (the client spoke to the wrong socket).
    WrongProtocol,
}

impl core::fmt::Display for ExecdError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownService => f.write_str("no service of that name in the manifest"),
            Self::AlreadyRunning => f.write_str("it is already running"),
            Self::SpawnFailed(errno) => write!(
                f,
                "the kernel refused to start it: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            Self::BadRequest => f.write_str("bad request"),
            Self::Busy => f.write_str("execd is busy: every control connection is in use"),
            Self::Evicted => f.write_str("the connection was closed after sitting idle"),
            Self::NotPermitted { uid } => write!(
                f,
                "not permitted for uid {uid}: spawning needs root, execd's user, or its control group"
            ),
            Self::WrongProtocol => f.write_str("not an execd request: wrong socket?"),
        }
    }
}

// ----- oomd control -----------------------------------------------------------------------

/// Most [`ControlReply::Subject`] or [`ControlReply::Event`] packets in one reply: a page
/// always fits in a socket's default send buffer, so the service never has to wait for a slow
/// reader (clients ask for the next page with the `next` of [`ControlReply::End`]).
pub const MAX_PAGE: u16 = 64;

/// Client → oomd service's control socket.
// A policy document is held inline: messages are decoded into stack values, and boxing it
// would make the oomd service allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlRequest {
    /// Subjects from the `from`-th on (in subject-id order), at most [`MAX_PAGE`], each as
    /// [`ControlReply::Subject`], then [`ControlReply::End`] whose `next` is the `from` of the
    /// next page. A page shorter than [`MAX_PAGE`] is the last.
    Status {
        /// Index of the first subject wanted.
        from: u32,
    },
    /// Events with `seq >= since`, at most `limit` (and at most [`MAX_PAGE`]), each as
    /// [`ControlReply::Event`] (a `kill confirmed` event followed by its
    /// [`ControlReply::KillReport`] while the service keeps it), then [`ControlReply::End`]
    /// with what was lost and where to resume.
    Events {
        /// First sequence number wanted.
        since: u64,
        /// Most events wanted in this reply.
        limit: u16,
    },
    /// [`ControlReply::Policy`] with the global policy.
    GetPolicy,
    /// Change the policy: [`ControlReply::Done`] or an error naming the key at fault.
    SetPolicy(PolicyUpdate),
    /// Selftest builds only: make the running hog fixture `app` grow by `bytes`. It never
    /// fabricates a frame: the hog grows and reports through its own channel.
    Inject {
        /// The hog's service name.
        app: Name,
        /// How much more it should hold.
        bytes: u64,
    },
    /// [`ControlReply::Counters`]: what oomd counted, rejections by reason, events lost.
    Counters,
    /// Apply a whole policy document at once, or none of it: [`ControlReply::Done`], or
    /// [`ControlError::PolicyAt`] naming the key and the service at fault, with the policy in
    /// force unchanged.
    ApplyPolicy(PolicyDocument),
    /// [`ControlReply::PolicyDocument`]: the global policy and every per-service limit,
    /// whether its service runs or not.
    GetPolicyDocument,
    /// Re-read the policy file oomd was started with and make it the policy, all or nothing,
    /// as if oomd started with it (`SIGHUP` does the same): [`ControlReply::Done`], or
    /// [`ControlError::PolicyAt`], [`ControlError::PolicyFile`] or
    /// [`ControlError::NoPolicyFile`], with the policy in force unchanged.
    ReloadPolicy,
}

/// Most per-service entries in one [`PolicyDocument`]: the size of the core's override table.
pub const MAX_POLICY_SERVICES: usize = oomd::bounds::MAX_OVERRIDES;

/// A policy file as one value: what `oomctl policy set` sends and `policy get` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PolicyDocument {
    /// The global policy, if the document sets it (`[policy]`).
    pub global: Option<Policy>,
    /// Per-service limits (`[service.<name>]`), by manifest name; `None` clears them.
    pub services: heapless::Vec<ServiceLimits, MAX_POLICY_SERVICES>,
}

impl PolicyDocument {
    /// A document of a global policy (if any) and per-service limits by name, as a policy file
    /// gives them; fails when a name does not fit or there are too many services.
    pub fn from_parts<'a>(
        global: Option<Policy>,
        services: impl IntoIterator<Item = (&'a str, Limits)>,
    ) -> Result<PolicyDocument, DocumentError> {
        let mut doc = PolicyDocument {
            global,
            services: heapless::Vec::new(),
        };
        for (index, (service, limits)) in services.into_iter().enumerate() {
            let count = index + 1;
            let name = name(service).map_err(|_| DocumentError::NameTooLong {
                name: service.to_owned(),
            })?;
            if doc
                .services
                .push(ServiceLimits {
                    name,
                    limits: Some(limits),
                })
                .is_err()
            {
                return Err(DocumentError::TooManyServices { count });
            }
        }
        Ok(doc)
    }
}

/// Why a policy file's contents do not make a [`PolicyDocument`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentError {
    /// A `[service.<name>]` table whose name is longer than [`MAX_NAME_LEN`].
    NameTooLong {
        /// The name.
        name: String,
    },
    /// More `[service.<name>]` tables than [`MAX_POLICY_SERVICES`].
    TooManyServices {
        /// How many there were, at least.
        count: usize,
    },
}

impl core::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NameTooLong { name } => write!(
                f,
                "service.{name}: the name is longer than {MAX_NAME_LEN} bytes"
            ),
            Self::TooManyServices { count } => write!(
                f,
                "service: {count} or more [service.<name>] tables; at most {MAX_POLICY_SERVICES} services may have limits of their own"
            ),
        }
    }
}

impl std::error::Error for DocumentError {}

/// One service's own limits in a [`PolicyDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLimits {
    /// Its manifest name (its identity is `SubjectId::from_name(name)`).
    pub name: Name,
    /// Its limits, or `None` to go back to the global ones.
    pub limits: Option<Limits>,
}

/// oomd service → client.
// Inline for the same reason as `ControlRequest`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlReply {
    /// One subject.
    Subject(SubjectView),
    /// One event.
    Event(EventView),
    /// The end of a page of subjects or events.
    End {
        /// Events the reader missed (overwritten before it asked); 0 for status.
        lost: u64,
        /// The `since` (events) or `from` (status) of the next page.
        next: u64,
    },
    /// The global policy.
    Policy(Policy),
    /// Done.
    Done,
    /// Refused or failed.
    Error(ControlError),
    /// What oomd counted.
    Counters(CountersView),
    /// The policy in force, as a document.
    PolicyDocument(PolicyDocument),
    /// What a confirmed kill cost; it follows the `kill confirmed` event it belongs to in a
    /// page of events (the oomd service keeps the last [`MAX_KILL_REPORTS`]).
    KillReport(KillReportView),
}

/// Counters of the core and of the oomd service, for `oomctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CountersView {
    /// Frames rejected, by reason, indexed by the discriminant of [`oomd::Rejection`] (see
    /// [`oomd::Rejection::ALL`]).
    pub rejected: [u64; oomd::Rejection::COUNT],
    /// Coalesced latest frames accepted (a sender over its frame budget, its newest frame).
    pub latest_frames: u64,
    /// Events ever logged (the next event's sequence number).
    pub events_logged: u64,
    /// Events overwritten in the ring before anyone read them through the control socket
    /// (the oldest sequence number still held).
    pub events_overwritten: u64,
    /// Audit lines oomd could not write whole (a full pipe, a closed console).
    pub log_write_failures: u64,
    /// Policy changes refused by validation.
    pub policies_refused: u64,
    /// Control connections refused because the table was full of clients that may not be
    /// displaced.
    pub clients_refused: u64,
    /// Control connections closed to make room for a newcomer, or after idling too long.
    pub clients_evicted: u64,
    /// Mutating control requests refused for the caller's credentials.
    pub requests_not_permitted: u64,
    /// Control messages of another protocol (clients at the wrong socket).
    pub wrong_protocol: u64,
    /// Memstat channels closed by their service (or failed).
    pub memstat_hangups: u64,
    /// Syncs of the audit log to disk (one before each batch of requests to execd, one
    /// before each acknowledged exit), and the microseconds they took in all.
    pub audit_syncs: u64,
    /// See `audit_syncs`.
    pub audit_sync_micros: u64,
    /// Audit log lines or syncs that failed (the events are still in the stderr log).
    pub audit_failures: u64,
}

/// Writes where in a policy document `error` is and what it is: `policy.<key>: ...` for the
/// `[policy]` table, `service.<name>.<key>: ...` for a service's table, `service.<name>: ...`
/// when the service as a whole is at fault (no room for its limits).
pub fn write_policy_fault(
    f: &mut core::fmt::Formatter<'_>,
    service: Option<&str>,
    error: PolicyError,
) -> core::fmt::Result {
    match (service, error) {
        (Some(name), PolicyError::TooManyOverrides | PolicyError::UnknownSubject) => {
            write!(f, "service.{name}: {error}")
        }
        (Some(name), e) => write!(f, "service.{name}.{}: {e}", e.key()),
        (None, e) => write!(f, "policy.{}: {e}", e.key()),
    }
}

/// A subject with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectView {
    /// Its service name.
    pub name: Name,
    /// Everything the core knows of it.
    pub status: SubjectStatus,
    /// Ticks since its last accepted frame, `None` if it never had one.
    pub frame_age_ticks: Option<u64>,
}

/// An event with its rendered line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    /// The event.
    pub event: Event,
    /// Its line, in the marker words (`oomd::trace`), with service names.
    pub line: Line,
}

impl ControlReply {
    /// Whether more replies to the same request follow this one (a subject, an event or a
    /// kill report of a page; the page ends with [`ControlReply::End`]). Every other reply
    /// is the last.
    #[must_use]
    pub fn more_follows(&self) -> bool {
        matches!(
            self,
            ControlReply::Subject(_) | ControlReply::Event(_) | ControlReply::KillReport(_)
        )
    }
}

/// Kill reports the oomd service keeps for `events` (older ones are only in its logs).
pub const MAX_KILL_REPORTS: usize = 32;

/// How long one step of a kill took: on the core's clock (ticks) and on the service's
/// (`CLOCK_MONOTONIC`, microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Span {
    /// Ticks between the two events.
    pub ticks: u64,
    /// Microseconds between the oomd service's handling of the two inputs.
    pub micros: u64,
}

/// What a confirmed kill cost: how far the subject got over its hard limit, and how long
/// oomd and the authority took. Measured by the oomd service from the core's events and its
/// own clock; not a core event, so not part of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillReport {
    /// The sequence number of the `kill confirmed` event this report belongs to.
    pub seq: u64,
    /// Who was killed.
    pub subject: SubjectId,
    /// Why.
    pub reason: oomd::KillReason,
    /// Its enforced bytes at the decision.
    pub bytes: u64,
    /// The highest enforced figure oomd saw from the crossing to the exit (a lower bound of
    /// the true peak: oomd sees only what is reported and read).
    pub peak: u64,
    /// The hard limit in force at the decision.
    pub hard: u64,
    /// From the crossing (of hard for a hard-limit kill, of soft for a soft-grace kill) to the
    /// first termination request.
    pub crossing_to_request: Span,
    /// From the first termination request to the exit.
    pub request_to_exit: Span,
    /// The graceful request went unanswered by an exit and a forced one followed.
    pub escalated: bool,
}

impl KillReport {
    /// Bytes over the hard limit at the peak (0 if the peak stayed under it).
    #[must_use]
    pub fn overshoot(&self) -> u64 {
        self.peak.saturating_sub(self.hard)
    }
}

/// A kill report with its service's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillReportView {
    /// The report.
    pub report: KillReport,
    /// The service's name.
    pub app: Name,
}

/// Its line, in the marker words:
/// `oomd: kill report app=hog reason=hard-limit bytes=.. peak=.. hard=.. overshoot=..
/// cross_to_request=0t/0.412ms request_to_exit=1t/12.030ms escalated=no`.
impl core::fmt::Display for KillReportView {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let r = &self.report;
        let span = |s: Span| (s.ticks, s.micros / 1000, s.micros % 1000);
        let (ct, cms, cus) = span(r.crossing_to_request);
        let (et, ems, eus) = span(r.request_to_exit);
        write!(
            f,
            "oomd: kill report app={} reason={} bytes={} peak={} hard={} overshoot={} \
             cross_to_request={ct}t/{cms}.{cus:03}ms request_to_exit={et}t/{ems}.{eus:03}ms \
             escalated={}",
            self.app,
            r.reason.as_str(),
            r.bytes,
            r.peak,
            r.hard,
            r.overshoot(),
            if r.escalated { "yes" } else { "no" },
        )
    }
}

/// Why the oomd service refused a control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlError {
    /// This build has no `inject` (it exists in selftest builds only).
    InjectUnavailable,
    /// No running service of that name.
    UnknownApp,
    /// The service of that name accepts no injection (not a hog fixture).
    InjectFailed,
    /// The policy was refused; the key at fault is `PolicyError::key()`.
    Policy(PolicyError),
    /// The request could not be decoded.
    BadRequest,
    /// Every connection slot is taken by clients that may not be displaced: try again later.
    Busy,
    /// This connection was closed to make room for a newcomer after it sat idle.
    Evicted,
    /// The caller may not change anything: mutating requests need root, oomd's own user, or
    /// the control group (`--socket-group`).
    NotPermitted {
        /// The caller's user id, as the kernel reported it.
        uid: u32,
    },
    /// A policy document was refused as a whole; nothing of it was applied.
    PolicyAt {
        /// The service whose table is at fault (`service.<name>.<key>`), or `None` for the
        /// `[policy]` table.
        service: Option<Name>,
        /// What is wrong, and its key.
        error: PolicyError,
    },
    /// The request belongs to another protocol (the client spoke to the wrong socket).
    WrongProtocol,
    /// oomd has no policy file to re-read (it was started without `--policy`'s file).
    NoPolicyFile,
    /// The policy file could not be read or parsed; nothing was applied.
    PolicyFile {
        /// What was wrong, as oomd's log says it (at most [`MAX_POLICY_FILE_MESSAGE`] bytes;
        /// made only on a failed reload, which allocates anyway to parse the file).
        message: String,
    },
}

/// The longest [`ControlError::PolicyFile`] message oomd sends, in bytes.
pub const MAX_POLICY_FILE_MESSAGE: usize = 240;

impl core::fmt::Display for ControlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InjectUnavailable => f.write_str("inject exists only in selftest builds"),
            Self::UnknownApp => f.write_str("no running service of that name"),
            Self::InjectFailed => f.write_str("the service did not accept the injection"),
            Self::Policy(e) => write!(f, "policy refused: {e}"),
            Self::BadRequest => f.write_str("bad request"),
            Self::Busy => f.write_str("oomd is busy: every control connection is in use"),
            Self::Evicted => f.write_str("the connection was closed after sitting idle"),
            Self::NotPermitted { uid } => write!(
                f,
                "not permitted for uid {uid}: changing oomd needs root, oomd's user, or its control group"
            ),
            Self::PolicyAt { service, error } => {
                f.write_str("policy refused, nothing applied: ")?;
                write_policy_fault(f, service.as_deref(), *error)
            }
            Self::WrongProtocol => f.write_str("not an oomd request: wrong socket?"),
            Self::NoPolicyFile => f.write_str("oomd has no policy file to re-read"),
            Self::PolicyFile { message } => {
                write!(f, "oomd cannot use its policy file, nothing applied: {message}")
            }
        }
    }
}
