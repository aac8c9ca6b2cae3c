//! The event loop.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use memstat::{SubjectId, MAX_FRAME_LEN};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, MsgFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use oomd::{
    Answer, Authority, Input, InputError, PolicyUpdate, RefusalReason, Registration,
    TerminationRequest, Tick, Ticket, Watchdog,
};
use oomd_host::scenario::PolicyFile;
use oomd_proto::{
    ControlError, ControlReply, ControlRequest, EventView, FromAuthority, Line, Name, Receiver,
    SubjectView, ToAuthority, WireError, MAX_MESSAGE_LEN,
};

use crate::kernel::{self, Source};
use crate::record::Recorder;
use crate::{LogFormat, Names, Output, RecordTo};

/// Control connections served at once; one more is accepted and closed at once.
pub const MAX_CLIENTS: usize = 8;
/// Frames read from one channel per wake-up, so that a flooding service cannot starve the
/// others: the rest waits in its socket, and its publisher drops what does not fit.
const MAX_READS_PER_WAKE: usize = 32;
/// Events sent per `events` request at most.
const MAX_EVENTS_PER_REPLY: u16 = oomd_proto::MAX_PAGE;
const SUBJECTS: usize = oomd::limits::DEFAULT_SUBJECTS;
const POLL_CAP: usize = 3 + MAX_CLIENTS + SUBJECTS;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The policy and per-service limits.
    pub policy: PolicyFile,
    /// Where the control socket listens.
    pub control_socket: PathBuf,
    /// The cgroup v2 mount, to find `memory.current` of services execd placed in cgroups.
    pub cgroup_root: String,
    /// Where hog fixtures listen for `grow` commands (selftest builds).
    pub inject_dir: PathBuf,
    /// The audit log's format.
    pub log: LogFormat,
    /// Record every input of the core to this file, for `oomd-sim replay`.
    pub record: Option<RecordTo>,
}

/// Why the service stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// Setting up a socket or the timer failed.
    Setup(&'static str, std::io::Error),
    /// The policy file's policy was refused by the core.
    Policy(oomd::PolicyError),
    /// execd closed the authority channel: nothing can be terminated any more.
    AuthorityGone,
    /// The authority channel failed.
    Authority(WireError),
    /// poll(2) failed.
    Poll(Errno),
}

impl core::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Setup(what, e) => write!(f, "cannot set up {what}: {e}"),
            Self::Policy(e) => write!(f, "policy refused: {e}"),
            Self::AuthorityGone => f.write_str("execd closed the authority channel"),
            Self::Authority(e) => write!(f, "authority channel: {e}"),
            Self::Poll(e) => write!(f, "poll: {e}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// One service execd told us about.
#[derive(Debug)]
struct Slot {
    id: SubjectId,
    name: Name,
    pid: i32,
    cgroup: Option<Name>,
    memstat: Option<OwnedFd>,
    /// A pidfd of the root process (execd's shim), when its figure comes from the process
    /// tree (no cgroup): a figure read after it exited is thrown away (the pid may be reused).
    pidfd: Option<OwnedFd>,
    running: bool,
}

/// Where a ready descriptor came from.
#[derive(Debug, Clone, Copy)]
enum Src {
    Authority,
    Timer,
    Listener,
    Client(usize),
    Memstat(usize),
}

/// Sends the core's requests to execd; requests that cannot be sent are remembered and fed
/// back as refusals (`Unavailable`) once the core returns.
struct AuthorityTx<'a> {
    fd: BorrowedFd<'a>,
    buf: &'a mut [u8; MAX_MESSAGE_LEN],
    unsent: &'a mut heapless::Vec<Ticket, SUBJECTS>,
}

impl Authority for AuthorityTx<'_> {
    fn request_termination(&mut self, request: TerminationRequest) {
        let sent = oomd_proto::encode(&ToAuthority::Terminate(request), self.buf)
            .and_then(|bytes| oomd_proto::send(self.fd, bytes, &[]));
        if sent.is_err() {
            // One call of the core makes at most one request per subject, and the list is
            // emptied after every call: it has room for every subject.
            let _ = self.unsent.push(request.ticket);
        }
    }
}

/// The oomd service: the core, its channels, and the loop that feeds it.
#[derive(Debug)]
pub struct Service {
    wd: Box<Watchdog>,
    opts: Options,
    authority: OwnedFd,
    listener: OwnedFd,
    clients: [Option<OwnedFd>; MAX_CLIENTS],
    timer: TimerFd,
    slots: heapless::Vec<Slot, SUBJECTS>,
    names: Names,
    rx: Receiver,
    tx: [u8; MAX_MESSAGE_LEN],
    frame: [u8; MAX_FRAME_LEN + 1],
    unsent: heapless::Vec<Ticket, SUBJECTS>,
    tick: u64,
    next_seq: u64,
    out: Output,
    recorder: Option<Recorder>,
}

fn setup(what: &'static str) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |e| ServiceError::Setup(what, e)
}

impl Service {
    /// Sets everything up, then prints `oomd: ready`. `authority` is the service's end of the
    /// authority channel (execd hands it over as `OOMD_AUTHORITY_FD`).
    pub fn new(opts: Options, authority: OwnedFd) -> Result<Box<Service>, ServiceError> {
        let wd = Box::new(Watchdog::new(opts.policy.policy).map_err(ServiceError::Policy)?);
        oomd_proto::set_nonblocking(&authority).map_err(setup("the authority channel"))?;
        let listener =
            oomd_proto::listen(&opts.control_socket).map_err(setup("the control socket"))?;
        oomd_proto::set_nonblocking(&listener).map_err(setup("the control socket"))?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(|e| ServiceError::Setup("the tick timer", e.into()))?;
        let out = Output::new(opts.log);
        let recorder = match &opts.record {
            Some(to) => {
                Some(Recorder::start(to, opts.policy.policy).map_err(setup("the recording"))?)
            }
            None => None,
        };
        let mut service = Box::new(Service {
            wd,
            opts,
            authority,
            listener,
            clients: Default::default(),
            timer,
            slots: heapless::Vec::new(),
            names: Names::default(),
            rx: Receiver::new(),
            tx: [0; MAX_MESSAGE_LEN],
            frame: [0; MAX_FRAME_LEN + 1],
            unsent: heapless::Vec::new(),
            tick: 0,
            next_seq: 0,
            out,
            recorder,
        });
        service
            .arm_timer()
            .map_err(|e| ServiceError::Setup("the tick timer", e.into()))?;
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
        let mut ready: heapless::Vec<Src, POLL_CAP> = heapless::Vec::new();
        {
            let mut fds: heapless::Vec<PollFd<'_>, POLL_CAP> = heapless::Vec::new();
            let mut srcs: heapless::Vec<Src, POLL_CAP> = heapless::Vec::new();
            // POLL_CAP counts every descriptor the service can hold: the pushes never fail.
            macro_rules! add {
                ($fd:expr, $src:expr) => {{
                    let _ = fds.push(PollFd::new($fd, PollFlags::POLLIN));
                    let _ = srcs.push($src);
                }};
            }
            add!(self.authority.as_fd(), Src::Authority);
            add!(self.timer.as_fd(), Src::Timer);
            add!(self.listener.as_fd(), Src::Listener);
            for (i, c) in self.clients.iter().enumerate() {
                if let Some(fd) = c {
                    add!(fd.as_fd(), Src::Client(i));
                }
            }
            for (i, slot) in self.slots.iter().enumerate() {
                if let Some(fd) = &slot.memstat {
                    add!(fd.as_fd(), Src::Memstat(i));
                }
            }
            let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(ServiceError::Poll(e)),
            }
            for (fd, src) in fds.iter().zip(srcs.iter()) {
                if fd.revents().is_some_and(|r| !r.is_empty()) {
                    let _ = ready.push(*src);
                }
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
        if ready.iter().any(|s| matches!(s, Src::Timer)) {
            self.on_timer();
        }
        for src in &ready {
            if let Src::Client(i) = *src {
                self.serve_client(i);
            }
        }
        if ready.iter().any(|s| matches!(s, Src::Listener)) {
            self.accept_clients();
        }
        Ok(())
    }

    // ----- feeding the core ----------------------------------------------------------------

    fn feed(&mut self, input: Input) -> Result<(), InputError> {
        if let Some(r) = &mut self.recorder {
            r.input(&input, &mut self.out);
        }
        let mut tx = AuthorityTx {
            fd: self.authority.as_fd(),
            buf: &mut self.tx,
            unsent: &mut self.unsent,
        };
        let result = self.wd.handle(input, &mut tx);
        self.drain_events();
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
            let mut tx = AuthorityTx {
                fd: self.authority.as_fd(),
                buf: &mut self.tx,
                unsent: &mut self.unsent,
            };
            let _ = self.wd.handle(answer, &mut tx);
            self.drain_events();
        }
        result
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
            for event in page {
                self.out.event(&event, &self.names);
                any = true;
            }
            self.next_seq = resume;
            if !any {
                break;
            }
        }
    }

    // ----- execd ---------------------------------------------------------------------------

    fn read_authority(&mut self) -> Result<(), ServiceError> {
        loop {
            let (msg, fds) = match self.rx.recv_msg::<FromAuthority>(self.authority.as_fd()) {
                Ok(m) => m,
                Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Ok(())
                }
                Err(WireError::Closed) => return Err(ServiceError::AuthorityGone),
                Err(e @ (WireError::Malformed | WireError::UnsupportedVersion(_))) => {
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
                    if let Some(slot) = self.slots.iter_mut().find(|s| s.id == subject) {
                        slot.running = false;
                        slot.memstat = None;
                        slot.pidfd = None;
                    }
                }
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
        if let Some(fd) = &memstat {
            if oomd_proto::set_nonblocking(fd).is_err() {
                self.out.note(format_args!(
                    "oomd: cannot use the memstat channel of {name}"
                ));
            }
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
        let slot = Slot {
            id: subject,
            name,
            pid,
            cgroup,
            memstat,
            pidfd,
            running: true,
        };
        match self.slots.iter_mut().find(|s| s.id == subject) {
            Some(existing) => *existing = slot,
            None => {
                if let Err(slot) = self.slots.push(slot) {
                    self.out
                        .note(format_args!("oomd: no room to watch {}", slot.name));
                }
            }
        }
        let registered = self.feed(Input::Register(Registration {
            subject,
            class,
            critical,
        }));
        let own = self
            .slots
            .iter()
            .find(|s| s.id == subject)
            .and_then(|s| self.opts.policy.services.get(s.name.as_str()))
            .copied();
        if let (Ok(()), Some(limits)) = (registered, own) {
            let _ = self.feed(Input::SetPolicy(PolicyUpdate::SubjectLimits {
                subject,
                limits: Some(limits),
            }));
        }
    }

    // ----- memstat -------------------------------------------------------------------------

    fn read_frames(&mut self, i: usize) {
        for _ in 0..MAX_READS_PER_WAKE {
            let Some(slot) = self.slots.get(i) else {
                return;
            };
            let (sender, Some(fd)) = (slot.id, slot.memstat.as_ref()) else {
                return;
            };
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
            match socket::recv(fd.as_raw_fd(), &mut self.frame, flags) {
                Ok(0) => {
                    // The service closed its end (it is exiting, or dropped its publisher).
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.memstat = None;
                    }
                    return;
                }
                Ok(len) => {
                    let kept = &self.frame[..len.min(self.frame.len())];
                    let payload = oomd::Payload::truncated(kept, len);
                    let _ = self.feed(Input::Frame { sender, payload });
                }
                Err(Errno::EAGAIN | Errno::EINTR) => return,
                Err(_) => {
                    if let Some(slot) = self.slots.get_mut(i) {
                        slot.memstat = None;
                    }
                    return;
                }
            }
        }
    }

    // ----- time ----------------------------------------------------------------------------

    fn arm_timer(&mut self) -> Result<(), Errno> {
        let period = u64::from(self.wd.policy().sample_period_ms);
        let spec = TimeSpec::from_duration(std::time::Duration::from_millis(period));
        self.timer
            .set(Expiration::Interval(spec), TimerSetTimeFlags::empty())
    }

    fn on_timer(&mut self) {
        let mut count = [0u8; 8];
        let expirations = match nix::unistd::read(self.timer.as_fd().as_raw_fd(), &mut count) {
            Ok(8) => u64::from_ne_bytes(count),
            _ => return,
        };
        self.tick = self.tick.saturating_add(expirations);
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            if !slot.running {
                continue;
            }
            let source = match (&slot.cgroup, &slot.pidfd) {
                (Some(dir), _) => Source::Cgroup {
                    root: &self.opts.cgroup_root,
                    dir,
                },
                (None, Some(pidfd)) => Source::Tree {
                    root: slot.pid,
                    alive: pidfd.as_fd(),
                },
                (None, None) => continue,
            };
            if let Some(bytes) = kernel::read_bytes(source) {
                let subject = slot.id;
                let _ = self.feed(Input::KernelReading { subject, bytes });
            }
        }
        let _ = self.feed(Input::Tick(Tick(self.tick)));
        if let Some(r) = &mut self.recorder {
            r.flush(&mut self.out);
        }
    }

    // ----- control -------------------------------------------------------------------------

    fn accept_clients(&mut self) {
        while let Ok(fd) = oomd_proto::accept(&self.listener) {
            match self.clients.iter_mut().find(|c| c.is_none()) {
                Some(free) => {
                    let _ = oomd_proto::set_nonblocking(&fd);
                    *free = Some(fd);
                }
                None => self
                    .out
                    .note(format_args!("oomd: too many control clients; one refused")),
            }
        }
    }

    fn serve_client(&mut self, i: usize) {
        let Some(fd) = self.clients[i].take() else {
            return;
        };
        let keep = match self.rx.recv_msg::<ControlRequest>(fd.as_fd()) {
            Ok((request, _)) => self.answer(fd.as_fd(), request).is_ok(),
            Err(WireError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Err(WireError::Malformed | WireError::UnsupportedVersion(_)) => self
                .reply(fd.as_fd(), &ControlReply::Error(ControlError::BadRequest))
                .is_ok(),
            Err(_) => false,
        };
        if keep {
            self.clients[i] = Some(fd);
        }
    }

    fn reply(&mut self, fd: BorrowedFd<'_>, reply: &ControlReply) -> Result<(), WireError> {
        let bytes = oomd_proto::encode(reply, &mut self.tx)?;
        oomd_proto::send(fd, bytes, &[])
    }

    fn answer(&mut self, fd: BorrowedFd<'_>, request: ControlRequest) -> Result<(), WireError> {
        match request {
            ControlRequest::Status { from } => {
                let from = usize::try_from(from).unwrap_or(usize::MAX);
                let end = from.saturating_add(usize::from(oomd_proto::MAX_PAGE));
                let mut next = from;
                for i in from..end.min(self.wd.subject_count()) {
                    let Some(status) = self.wd.subjects().nth(i) else {
                        break;
                    };
                    let name = self.name_of(status.subject);
                    self.reply(fd, &ControlReply::Subject(SubjectView { name, status }))?;
                    next = i + 1;
                }
                self.reply(
                    fd,
                    &ControlReply::End {
                        lost: 0,
                        next: next as u64,
                    },
                )
            }
            ControlRequest::Events { since, limit } => {
                let page = self
                    .wd
                    .events(since, usize::from(limit.min(MAX_EVENTS_PER_REPLY)));
                let (lost, next) = (page.lost(), page.resume_seq());
                // Collected first: replying needs `self` while the page borrows the core.
                let events: heapless::Vec<oomd::Event, { MAX_EVENTS_PER_REPLY as usize }> =
                    page.collect();
                for event in events {
                    let mut line = Line::new();
                    let _ = oomd::trace::write_line(&mut line, &event.kind, &self.names);
                    self.reply(fd, &ControlReply::Event(EventView { event, line }))?;
                }
                self.reply(fd, &ControlReply::End { lost, next })
            }
            ControlRequest::GetPolicy => {
                let policy = *self.wd.policy();
                self.reply(fd, &ControlReply::Policy(policy))
            }
            ControlRequest::SetPolicy(update) => {
                let period = self.wd.policy().sample_period_ms;
                let reply = match self.feed(Input::SetPolicy(update)) {
                    Ok(()) => {
                        if self.wd.policy().sample_period_ms != period {
                            let _ = self.arm_timer();
                        }
                        ControlReply::Done
                    }
                    Err(InputError::Policy(e)) => ControlReply::Error(ControlError::Policy(e)),
                    Err(_) => ControlReply::Error(ControlError::BadRequest),
                };
                self.reply(fd, &reply)
            }
            ControlRequest::Inject { app, bytes } => {
                let reply = self.inject(&app, bytes);
                self.reply(fd, &reply)
            }
        }
    }

    fn name_of(&self, id: SubjectId) -> Name {
        use oomd::trace::SubjectNames;
        let mut name = Name::new();
        match self.names.name(id) {
            Some(n) => {
                let _ = name.push_str(n);
            }
            None => {
                let _ = core::fmt::write(&mut name, format_args!("{id}"));
            }
        }
        name
    }

    #[cfg(not(feature = "selftest"))]
    fn inject(&mut self, _app: &str, _bytes: u64) -> ControlReply {
        ControlReply::Error(ControlError::InjectUnavailable)
    }

    /// Selftest builds: tells the hog fixture `app` (which listens on the datagram socket
    /// `<inject_dir>/<app>.sock`)
    /// to grow by `bytes`. Allocates (a path): selftest builds only, never the steady state.
    #[cfg(feature = "selftest")]
    fn inject(&mut self, app: &str, bytes: u64) -> ControlReply {
        if !self
            .slots
            .iter()
            .any(|s| s.running && s.name.as_str() == app)
        {
            return ControlReply::Error(ControlError::UnknownApp);
        }
        let path = self.opts.inject_dir.join(format!("{app}.sock"));
        let command = format!("grow {bytes}");
        // The hog fixture listens on a Unix datagram socket (hog-fixture --control). Never
        // block the loop on it: a hog whose queue is full simply does not get the command.
        let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|socket| {
            socket.set_nonblocking(true)?;
            socket.send_to(command.as_bytes(), &path)
        });
        match sent {
            Ok(_) => {
                self.out
                    .note(format_args!("oomd: inject app={app} bytes={bytes}"));
                ControlReply::Done
            }
            Err(_) => ControlReply::Error(ControlError::InjectFailed),
        }
    }
}
