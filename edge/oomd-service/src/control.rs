//! The control socket: who is connected, who may change things, and the answers.
//!
//! Connections are admitted by the one rule of [`oomd_proto::admission`]: an idle connection
//! is closed after the idle timeout, the longest-idle one gives way when the table is full,
//! unprivileged callers never displace privileged ones, and a newcomer that finds no room gets
//! a `Busy` reply, never a bare reset. Every mutating request (policy changes, injection) is
//! checked against the caller's kernel credentials, read once at accept.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use memstat::SubjectId;
use oomd::{Input, InputError, PolicyUpdate};
use oomd_proto::admission::{self, Admit, PeerCred, Seat, Throttle};
use oomd_proto::{
    ControlError, ControlReply, ControlRequest, CountersView, EventView, Line, Name, PeerFault,
    PolicyDocument, ServiceLimits, SubjectView, WireError,
};

use crate::policies::Refusal;
use crate::service::{Service, Src};
use rustix::event::epoll::EventFlags;

/// Control connections served at once. Operators always find room: unprivileged callers may
/// hold at most [`UNPRIVILEGED_MAX`] of them.
pub const MAX_CLIENTS: usize = 16;
/// Connections unprivileged callers (read-only: status, events, policy get) may hold at once.
pub const UNPRIVILEGED_MAX: usize = 12;
/// How long a control connection may sit idle before it is closed, unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one log line per this interval about refused or evicted connections (with a count).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);
/// Events sent per `events` request at most.
const MAX_EVENTS_PER_REPLY: u16 = oomd_proto::MAX_PAGE;

/// One control connection.
#[derive(Debug)]
pub(crate) struct ControlClient {
    fd: OwnedFd,
    cred: PeerCred,
    privileged: bool,
    idle_since: Instant,
}

impl ControlClient {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn seat(&self) -> Seat {
        Seat {
            privileged: self.privileged,
            pinned: false,
            busy: false,
            idle_since: self.idle_since,
        }
    }
}

/// What the control socket counted (shown by `oomctl status`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ControlCounters {
    pub(crate) refused: u64,
    pub(crate) evicted: u64,
    pub(crate) not_permitted: u64,
    pub(crate) wrong_protocol: u64,
}

/// The control plane's state inside the service.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) clients: [Option<ControlClient>; MAX_CLIENTS],
    pub(crate) access: admission::Access,
    pub(crate) idle_timeout: Duration,
    pub(crate) counters: ControlCounters,
    refusals: Throttle,
    evictions: Throttle,
    strangers: Throttle,
}

impl Control {
    pub(crate) fn new(access: admission::Access, idle_timeout: Duration) -> Control {
        Control {
            clients: Default::default(),
            access,
            idle_timeout,
            counters: ControlCounters::default(),
            refusals: Throttle::new(REFUSAL_LOG_EVERY),
            evictions: Throttle::new(REFUSAL_LOG_EVERY),
            strangers: Throttle::new(REFUSAL_LOG_EVERY),
        }
    }
}

/// Whether a request changes anything (and so needs a privileged caller).
fn is_mutating(request: &ControlRequest) -> bool {
    matches!(
        request,
        ControlRequest::SetPolicy(_)
            | ControlRequest::ApplyPolicy(_)
            | ControlRequest::ReloadPolicy
            | ControlRequest::Inject { .. }
    )
}

impl Service {
    /// Accepts every pending connection, admitting, displacing or refusing each.
    pub(crate) fn accept_clients(&mut self) {
        let now = Instant::now();
        while let Ok(fd) = oomd_proto::accept(&self.listener) {
            let _ = oomd_proto::set_nonblocking(&fd);
            let cred = admission::peer_cred(&fd).unwrap_or(PeerCred::NOBODY);
            let privileged = self.control.access.permits(&cred);
            let seats: [Option<Seat>; MAX_CLIENTS] =
                core::array::from_fn(|i| self.control.clients[i].as_ref().map(ControlClient::seat));
            let newcomer = ControlClient {
                fd,
                cred,
                privileged,
                idle_since: now,
            };
            // A client's descriptor is ours alone: closing it takes it out of the epoll set.
            match admission::admit(&seats, privileged, UNPRIVILEGED_MAX) {
                Admit::Free(i) => {
                    self.watch(newcomer.fd(), Src::Client(i), EventFlags::IN);
                    self.control.clients[i] = Some(newcomer);
                }
                Admit::Evict(i) => {
                    self.evict(i, now);
                    self.watch(newcomer.fd(), Src::Client(i), EventFlags::IN);
                    self.control.clients[i] = Some(newcomer);
                }
                Admit::Busy => {
                    self.control.counters.refused += 1;
                    if let Some(n) = self.control.refusals.note(now) {
                        self.out.note(format_args!(
                            "oomd: control: refused {n} connections (busy: every slot held by clients that may not be displaced)"
                        ));
                    }
                    let _ = self.reply(newcomer.fd(), &ControlReply::Error(ControlError::Busy));
                }
            }
        }
    }

    /// Closes client `i` with an "evicted" notice (idle, and its slot was needed or its idle
    /// time is up).
    fn evict(&mut self, i: usize, now: Instant) {
        if let Some(old) = self.control.clients[i].take() {
            self.control.counters.evicted += 1;
            if let Some(n) = self.control.evictions.note(now) {
                self.out.note(format_args!(
                    "oomd: control: closed {n} idle connections (idle timeout, or room for a newcomer)"
                ));
            }
            let _ = self.reply(old.fd(), &ControlReply::Error(ControlError::Evicted));
        }
    }

    /// Closes the connections idle for longer than the idle timeout; logs what the throttles
    /// held back.
    pub(crate) fn expire_clients(&mut self) {
        let now = Instant::now();
        for i in 0..MAX_CLIENTS {
            let expired = self.control.clients[i].as_ref().is_some_and(|c| {
                admission::idle_expired(&c.seat(), now, self.control.idle_timeout)
            });
            if expired {
                self.evict(i, now);
            }
        }
        if let Some(n) = self.control.refusals.due(now) {
            self.out.note(format_args!(
                "oomd: control: refused {n} connections (busy)"
            ));
        }
        if let Some(n) = self.control.evictions.due(now) {
            self.out
                .note(format_args!("oomd: control: closed {n} idle connections"));
        }
        if let Some(n) = self.control.strangers.due(now) {
            self.out.note(format_args!(
                "oomd: control: {n} messages of another protocol (not an oomd socket for them)"
            ));
        }
    }

    /// The earliest instant an idle client expires, for the loop's poll timeout.
    pub(crate) fn next_client_expiry(&self) -> Option<Instant> {
        self.control
            .clients
            .iter()
            .flatten()
            .map(|c| c.idle_since + self.control.idle_timeout)
            .min()
    }

    pub(crate) fn serve_client(&mut self, i: usize) {
        let Some(client) = self.control.clients[i].take() else {
            return;
        };
        let now = Instant::now();
        let keep = match self.rx.recv_msg::<ControlRequest>(client.fd()) {
            Ok((request, _)) => self.answer(&client, request).is_ok(),
            Err(e) if e.is_would_block() => true,
            Err(WireError::Peer(PeerFault::WrongProtocol { found, .. })) => {
                // A client at the wrong socket: say so in our protocol (it recognizes the
                // magic and reports "not an oomd socket"), then let it go.
                self.control.counters.wrong_protocol += 1;
                if let Some(n) = self.control.strangers.note(now) {
                    let spoke = found.map_or("no protocol of ours", |p| p.describe());
                    self.out.note(format_args!(
                        "oomd: control: a client (pid {}) speaks {spoke}: not an oomd socket for it ({n} such messages)",
                        client.cred.pid
                    ));
                }
                let _ = self.reply(
                    client.fd(),
                    &ControlReply::Error(ControlError::WrongProtocol),
                );
                false
            }
            Err(WireError::Peer(_)) => self
                .reply(client.fd(), &ControlReply::Error(ControlError::BadRequest))
                .is_ok(),
            Err(_) => false,
        };
        if keep {
            self.control.clients[i] = Some(ControlClient {
                idle_since: now,
                ..client
            });
        }
    }

    pub(crate) fn reply(
        &mut self,
        fd: BorrowedFd<'_>,
        reply: &ControlReply,
    ) -> Result<(), WireError> {
        let bytes = oomd_proto::encode(reply, &mut self.tx)?;
        oomd_proto::send(fd, bytes, &[])
    }

    fn answer(&mut self, client: &ControlClient, request: ControlRequest) -> Result<(), WireError> {
        let fd = client.fd();
        if is_mutating(&request) && !client.privileged {
            self.control.counters.not_permitted += 1;
            let uid = client.cred.uid;
            self.out.note(format_args!(
                "oomd: control: refused a change from uid {uid} (pid {}): not root, oomd's user or its group",
                client.cred.pid
            ));
            return self.reply(fd, &ControlReply::Error(ControlError::NotPermitted { uid }));
        }
        match request {
            ControlRequest::Status { from } => {
                let from = usize::try_from(from).unwrap_or(usize::MAX);
                let end = from.saturating_add(usize::from(oomd_proto::MAX_PAGE));
                let mut next = from;
                let now = self.wd.now();
                for i in from..end.min(self.wd.subject_count()) {
                    let Some(status) = self.wd.subjects().nth(i) else {
                        break;
                    };
                    let name = self.name_of(status.subject);
                    let frame_age_ticks = status.last_frame_at.map(|t| now.since(t));
                    self.reply(
                        fd,
                        &ControlReply::Subject(SubjectView {
                            name,
                            status,
                            frame_age_ticks,
                        }),
                    )?;
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
                    if let Some(report) = self.kill_reports.for_event(event.seq) {
                        let view = self.names.report_view(report);
                        self.reply(fd, &ControlReply::KillReport(view))?;
                    }
                }
                self.reply(fd, &ControlReply::End { lost, next })
            }
            ControlRequest::GetPolicy => {
                let policy = *self.wd.policy();
                self.reply(fd, &ControlReply::Policy(policy))
            }
            ControlRequest::GetPolicyDocument => {
                let doc = self.policy_document();
                self.reply(fd, &ControlReply::PolicyDocument(doc))
            }
            ControlRequest::SetPolicy(update) => {
                let reply = match self.set_policy(update) {
                    Ok(()) => ControlReply::Done,
                    Err(e) => ControlReply::Error(e),
                };
                self.reply(fd, &reply)
            }
            ControlRequest::ApplyPolicy(doc) => {
                let reply = match self.apply_policy(&doc) {
                    Ok(()) => ControlReply::Done,
                    Err(Refusal { service, error }) => {
                        ControlReply::Error(ControlError::PolicyAt { service, error })
                    }
                };
                self.reply(fd, &reply)
            }
            ControlRequest::Inject { app, bytes } => {
                let reply = self.inject(&app, bytes);
                self.reply(fd, &reply)
            }
            ControlRequest::Counters => {
                let view = self.counters_view();
                self.reply(fd, &ControlReply::Counters(view))
            }
            ControlRequest::ReloadPolicy => {
                let reply = match self.reload_policy("oomctl policy reload") {
                    Ok(()) => ControlReply::Done,
                    Err(e) => ControlReply::Error(e),
                };
                self.reply(fd, &reply)
            }
        }
    }

    /// One policy update from the control socket. A subject's own limits are also kept in the
    /// service's table, by name, so that they survive its restart.
    fn set_policy(&mut self, update: PolicyUpdate) -> Result<(), ControlError> {
        if let PolicyUpdate::SubjectLimits { subject, limits } = update {
            let Some(name) = self.known_name(subject) else {
                // Not announced by execd: the core refuses it (and logs the refusal).
                return match self.feed(Input::SetPolicy(update)) {
                    Err(InputError::Policy(e)) => Err(ControlError::Policy(e)),
                    _ => Err(ControlError::BadRequest),
                };
            };
            let mut doc = PolicyDocument::default();
            let _ = doc.services.push(ServiceLimits { name, limits });
            return self.apply_policy(&doc).map_err(|r| ControlError::PolicyAt {
                service: r.service,
                error: r.error,
            });
        }
        let period = self.wd.policy().sample_period_ms;
        match self.feed(Input::SetPolicy(update)) {
            Ok(()) => {
                if self.wd.policy().sample_period_ms != period {
                    let _ = self.arm_timer();
                }
                Ok(())
            }
            Err(InputError::Policy(e)) => Err(ControlError::Policy(e)),
            Err(_) => Err(ControlError::BadRequest),
        }
    }

    /// Applies a whole policy document, or none of it: every piece is checked first (the
    /// same checks the core makes, and the room in the override tables), then the global
    /// policy and each running service's limits are fed to the core; the limits of services
    /// that are not running are kept until they start.
    pub(crate) fn apply_policy(&mut self, doc: &PolicyDocument) -> Result<(), Refusal> {
        if let Err(refusal) = self.policies.check(doc) {
            self.out.note(format_args!(
                "oomd: policy document refused, nothing applied: {refusal}"
            ));
            return Err(refusal);
        }
        self.policies.apply(doc);
        if let Some(policy) = doc.global {
            let period = self.wd.policy().sample_period_ms;
            if self
                .feed(Input::SetPolicy(PolicyUpdate::Global(policy)))
                .is_err()
            {
                self.out.note(format_args!(
                    "oomd: BUG: a checked global policy was refused by the core"
                ));
            }
            if self.wd.policy().sample_period_ms != period {
                let _ = self.arm_timer();
            }
        }
        for entry in &doc.services {
            let subject = SubjectId::from_name(&entry.name);
            if self.wd.subject(subject).is_some_and(|s| s.running) {
                let update = PolicyUpdate::SubjectLimits {
                    subject,
                    limits: entry.limits,
                };
                if self.feed(Input::SetPolicy(update)).is_err() {
                    self.out.note(format_args!(
                        "oomd: BUG: checked limits of {} were refused by the core",
                        entry.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Re-reads the policy file and makes it the policy, as if oomd started with it: its
    /// `[policy]` table (the defaults without one) and exactly its `[service.NAME]` tables
    /// (a service's own limits that the file no longer has are cleared), all or nothing.
    /// The outcome is logged, naming who asked (`by`). Parsing the file allocates: a reload
    /// is the one thing the loop does that may.
    pub(crate) fn reload_policy(&mut self, by: &str) -> Result<(), ControlError> {
        let Some(path) = self.opts.policy_file.clone() else {
            self.out.note(format_args!(
                "oomd: policy reload ({by}): no policy file to re-read; nothing changed"
            ));
            return Err(ControlError::NoPolicyFile);
        };
        let file = path.display();
        let doc = oomd_config::policy::PolicyFile::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|f| f.to_document().map_err(|e| e.to_string()))
            .and_then(|mut doc| {
                doc.global.get_or_insert_with(oomd::Policy::default);
                for (name, _) in self.policies.iter() {
                    let id = SubjectId::from_name(name);
                    if doc
                        .services
                        .iter()
                        .any(|e| SubjectId::from_name(&e.name) == id)
                    {
                        continue;
                    }
                    let clear = ServiceLimits {
                        name: name.clone(),
                        limits: None,
                    };
                    doc.services.push(clear).map_err(|_| {
                        "the file's service tables and the ones it drops are too many for one \
                         document"
                            .to_owned()
                    })?;
                }
                Ok(doc)
            });
        let doc = match doc {
            Ok(doc) => doc,
            Err(message) => {
                self.out.note(format_args!(
                    "oomd: policy reload ({by}) from {file}: cannot use the file: {message}; the policy in force is unchanged"
                ));
                let mut end = message.len().min(oomd_proto::MAX_POLICY_FILE_MESSAGE);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                let message = message[..end].to_owned();
                return Err(ControlError::PolicyFile { message });
            }
        };
        match self.apply_policy(&doc) {
            Ok(()) => {
                let p = self.wd.policy();
                let (soft, hard, tick) =
                    (p.limits.soft_bytes, p.limits.hard_bytes, p.sample_period_ms);
                let services = self.policies.iter().count();
                self.out.note(format_args!(
                    "oomd: policy reload ({by}) from {file}: applied: soft={soft} hard={hard} tick={tick}ms, {services} service table(s)"
                ));
                Ok(())
            }
            Err(Refusal { service, error }) => {
                let refusal = ControlError::PolicyAt { service, error };
                self.out.note(format_args!(
                    "oomd: policy reload ({by}) from {file}: {refusal}; the policy in force is unchanged"
                ));
                Err(refusal)
            }
        }
    }

    fn policy_document(&self) -> PolicyDocument {
        let mut doc = PolicyDocument {
            global: Some(*self.wd.policy()),
            services: heapless::Vec::new(),
        };
        for (name, limits) in self.policies.iter() {
            let _ = doc.services.push(ServiceLimits {
                name: name.clone(),
                limits: Some(*limits),
            });
        }
        doc
    }

    fn counters_view(&self) -> CountersView {
        let core = self.wd.counters();
        let mut rejected = [0; oomd::Rejection::COUNT];
        for reason in oomd::Rejection::ALL {
            rejected[reason as usize] = core.rejected(reason);
        }
        let logged = self.wd.next_event_seq();
        CountersView {
            rejected,
            latest_frames: core.latest_frames,
            events_logged: logged,
            events_overwritten: logged.saturating_sub(oomd::bounds::DEFAULT_EVENTS as u64),
            log_write_failures: self.out.write_failures,
            policies_refused: core.policies_refused,
            clients_refused: self.control.counters.refused,
            clients_evicted: self.control.counters.evicted,
            requests_not_permitted: self.control.counters.not_permitted,
            wrong_protocol: self.control.counters.wrong_protocol,
            memstat_hangups: self.memstat_hangups,
            audit_syncs: self.audit_stats().0,
            audit_sync_micros: self.audit_stats().1,
            audit_failures: self.audit_stats().2,
        }
    }

    /// The name execd announced for `id`, if it did.
    fn known_name(&self, id: SubjectId) -> Option<Name> {
        use oomd::trace::SubjectNames;
        self.names.name(id).and_then(|n| oomd_proto::name(n).ok())
    }

    fn name_of(&self, id: SubjectId) -> Name {
        self.known_name(id).unwrap_or_else(|| {
            let mut name = Name::new();
            let _ = core::fmt::write(&mut name, format_args!("{id}"));
            name
        })
    }

    #[cfg(not(feature = "selftest"))]
    fn inject(&mut self, _app: &str, _bytes: u64) -> ControlReply {
        ControlReply::Error(ControlError::InjectUnavailable)
    }

    /// Selftest builds: tells the hog fixture `app` (which listens on the datagram socket
    /// `<inject_dir>/<app>.sock`) to grow by `bytes`. Allocates (a path): selftest builds
    /// only, never the steady state.
    #[cfg(feature = "selftest")]
    fn inject(&mut self, app: &str, bytes: u64) -> ControlReply {
        if !self.runs(app) {
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
