//! A fake execd for driving the service in-process: it holds the other end of the authority
//! channel and of each service's memstat channel.

#![allow(dead_code, unreachable_pub)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use memstat::{Frame, SubjectId, MAX_FRAME_LEN};
use oomd::{Limits, Policy, SubjectClass};
use oomd_proto::admission::SocketAccess;
use oomd_proto::{
    ControlReply, ControlRequest, FromAuthority, PolicyDocument, Receiver, ToAuthority,
    MAX_MESSAGE_LEN,
};
use oomd_service::{LogFormat, Options, Service};

pub fn policy() -> Policy {
    Policy {
        limits: Limits {
            soft_bytes: 1_000,
            hard_bytes: 2_000,
            soft_grace_ticks: 0,
            exit_deadline_ticks: 50,
        },
        sample_period_ms: 5,
        ..Policy::default()
    }
}

pub struct Rig {
    pub svc: Box<Service>,
    pub execd: OwnedFd,
    pub control: OwnedFd,
    pub dir: PathBuf,
    pub rx: Receiver,
    pub buf: [u8; MAX_MESSAGE_LEN],
    /// How the rig steps the service: `Service::step(2)` unless a test puts its own.
    pub stepper: fn(&mut Service) -> Result<(), oomd_service::ServiceError>,
    seqs: Vec<(SubjectId, u64, OwnedFd)>,
    /// The memstat channel ends handed to oomd, as execd keeps them.
    execd_copies: Vec<OwnedFd>,
    policy: Policy,
    log: LogFormat,
}

impl Rig {
    pub fn new(tag: &str, policy: Policy) -> Rig {
        Self::build(tag, policy, false, LogFormat::None)
    }

    /// A rig whose service records its inputs to `<dir>/inputs.jsonl` and writes its audit
    /// log in `log`.
    pub fn recording(tag: &str, policy: Policy, log: LogFormat) -> Rig {
        Self::build(tag, policy, true, log)
    }

    /// One step of the service, through `stepper` (a test may count what a step does).
    pub fn step(&mut self) {
        (self.stepper)(&mut self.svc).expect("service step");
    }

    fn build(tag: &str, policy: Policy, record: bool, log: LogFormat) -> Rig {
        let dir = std::env::temp_dir().join(format!("oomd-service-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let opts = Self::options(&dir, policy, record, log);
        let (svc_end, execd) = oomd_proto::seqpacket_pair().expect("socketpair");
        let svc = Service::new(opts, svc_end).expect("service starts");
        let control = oomd_proto::connect(&dir.join("oomd.sock")).expect("connect control");
        Rig {
            svc,
            execd,
            control,
            dir,
            rx: Receiver::new(),
            buf: [0; MAX_MESSAGE_LEN],
            stepper: |svc| svc.step(2),
            seqs: Vec::new(),
            execd_copies: Vec::new(),
            policy,
            log,
        }
    }

    /// The oomd service dies (its process would: nothing is shut down cleanly) and a new one
    /// starts on a new authority channel, with the same audit log (and recording). The test,
    /// playing execd, then announces what runs, as execd does on every new channel.
    pub fn crash_and_restart(&mut self) {
        let opts = Self::options(&self.dir, self.policy, true, self.log);
        let (svc_end, execd) = oomd_proto::seqpacket_pair().expect("socketpair");
        let svc = Service::new(opts, svc_end).expect("service restarts");
        // The old service is dropped only now, as a crash leaves it: no clean-up ran before
        // the new one read the audit log.
        self.svc = svc;
        self.execd = execd;
        self.control = oomd_proto::connect(&self.dir.join("oomd.sock")).expect("connect control");
    }

    /// Plays execd on a new channel: `name` runs, with a fresh memstat channel.
    pub fn announce(&mut self, name: &str) -> SubjectId {
        self.start(name, false)
    }

    fn options(dir: &std::path::Path, policy: Policy, record: bool, log: LogFormat) -> Options {
        Options {
            policy_file: Some(dir.join("policy.toml")),
            policy: PolicyDocument {
                global: Some(policy),
                services: heapless::Vec::new(),
            },
            control_access: SocketAccess::default(),
            control_group: None,
            control_idle_timeout: oomd_service::DEFAULT_IDLE_TIMEOUT,
            control_socket: dir.join("oomd.sock"),
            cgroup_root: dir.join("cgroup").to_str().expect("utf-8").into(),
            inject_dir: dir.join("inject"),
            log,
            record: record.then(|| oomd_service::RecordTo {
                path: dir.join("inputs.jsonl"),
                max_bytes: 1 << 20,
            }),
            // Recording rigs keep a durable audit log too (and so recover from it).
            audit: record.then(|| oomd_service::AuditTo {
                path: dir.join("audit.jsonl"),
                max_bytes: oomd_service::audit::DEFAULT_MAX_BYTES,
            }),
        }
    }

    /// execd says `name` started; returns the subject.
    pub fn start(&mut self, name: &str, critical: bool) -> SubjectId {
        // No such process: no kernel figure, reports only.
        self.start_as(name, critical, i32::MAX)
    }

    /// As [`start`](Self::start), with `pid` as the root of the service's processes: the
    /// memory of its descendants is read at every tick.
    pub fn start_as(&mut self, name: &str, critical: bool, pid: i32) -> SubjectId {
        self.start_with(name, critical, pid, None)
    }

    /// As [`start`](Self::start), in a stand-in cgroup `<dir>/cgroup/<name>` (plain files:
    /// `memory.current` at 0, `memory.events`, `memory.high` at `max`), the way execd places
    /// services in the guest.
    pub fn start_in_cgroup(&mut self, name: &str, critical: bool) -> SubjectId {
        let group = self.cgroup(name);
        std::fs::create_dir_all(&group).expect("cgroup dir");
        std::fs::write(group.join("memory.current"), "0\n").expect("memory.current");
        std::fs::write(
            group.join("memory.events"),
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        )
        .expect("memory.events");
        std::fs::write(group.join("memory.high"), "max\n").expect("memory.high");
        self.start_with(name, critical, i32::MAX, Some(name))
    }

    /// The stand-in cgroup directory of `name`.
    pub fn cgroup(&self, name: &str) -> PathBuf {
        self.dir.join("cgroup").join(name)
    }

    fn start_with(
        &mut self,
        name: &str,
        critical: bool,
        pid: i32,
        cgroup: Option<&str>,
    ) -> SubjectId {
        let subject = SubjectId::from_name(name);
        let (oomd_end, service_end) = oomd_proto::seqpacket_pair().expect("socketpair");
        let msg = FromAuthority::Started {
            subject,
            name: oomd_proto::name(name).expect("short"),
            class: SubjectClass::Standard,
            critical,
            pid,
            cgroup: cgroup.map(|c| oomd_proto::name(c).expect("short")),
        };
        let bytes = oomd_proto::encode(&msg, &mut self.buf).expect("fits");
        oomd_proto::send(self.execd.as_fd(), bytes, &[oomd_end.as_fd()]).expect("sent");
        // execd keeps its copy of every channel it handed over (to hand it to a restarted
        // oomd): the rig does too, so that oomd's own copy is never the last one.
        self.execd_copies.push(oomd_end);
        self.seqs.retain(|(s, _, _)| *s != subject);
        self.seqs.push((subject, 0, service_end));
        self.pump_for(Duration::from_millis(20));
        subject
    }

    /// The service `subject` publishes `bytes` on its own channel.
    pub fn publish(&mut self, subject: SubjectId, bytes: u64, claim: Option<SubjectId>) {
        let entry = self
            .seqs
            .iter_mut()
            .find(|(s, _, _)| *s == subject)
            .expect("started");
        entry.1 = entry.1.wrapping_add(1);
        let frame = Frame {
            seq: entry.1,
            current_bytes: bytes,
            peak_bytes: bytes,
            claimed_subject: claim,
        };
        let mut buf = [0; MAX_FRAME_LEN];
        let n = frame.encode(&mut buf).expect("valid");
        rustix::net::send(&entry.2, &buf[..n], rustix::net::SendFlags::empty()).expect("sent");
    }

    /// The service's end of `subject`'s memstat channel.
    pub fn channel(&self, subject: SubjectId) -> BorrowedFd<'_> {
        let entry = self
            .seqs
            .iter()
            .find(|(s, _, _)| *s == subject)
            .expect("started");
        entry.2.as_fd()
    }

    /// The service `subject` sends these raw bytes as one packet on its own channel.
    pub fn send_raw(&mut self, subject: SubjectId, bytes: &[u8]) {
        let entry = self
            .seqs
            .iter()
            .find(|(s, _, _)| *s == subject)
            .expect("started");
        rustix::net::send(&entry.2, bytes, rustix::net::SendFlags::empty()).expect("sent");
    }

    /// Steps the service until a message arrives on `subject`'s end of its memstat channel
    /// (what oomd sends the service: a reclaim request), or the deadline passes.
    pub fn recv_on_channel(&mut self, subject: SubjectId, within: Duration) -> Option<Vec<u8>> {
        let end = Instant::now() + within;
        let mut buf = [0u8; 64];
        while Instant::now() < end {
            self.step();
            let entry = self
                .seqs
                .iter()
                .find(|(s, _, _)| *s == subject)
                .expect("started");
            match rustix::net::recv(&entry.2, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
                Ok((n, _)) => return Some(buf[..n].to_vec()),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(e) => panic!("memstat channel: {e}"),
            }
        }
        None
    }

    /// The next frame of `subject` carries sequence number `seq`.
    pub fn set_seq(&mut self, subject: SubjectId, seq: u64) {
        let entry = self
            .seqs
            .iter_mut()
            .find(|(s, _, _)| *s == subject)
            .expect("started");
        entry.1 = seq.wrapping_sub(1);
    }

    /// The service `subject` closes its end of its memstat channel.
    pub fn close_channel(&mut self, subject: SubjectId) {
        self.seqs.retain(|(s, _, _)| *s != subject);
    }

    pub fn pump_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.step();
        }
    }

    /// Steps the service until execd receives a request, or the deadline passes.
    pub fn next_request(&mut self, within: Duration) -> Option<ToAuthority> {
        oomd_proto::set_nonblocking(&self.execd).expect("nonblocking");
        let end = Instant::now() + within;
        while Instant::now() < end {
            self.step();
            match self.rx.recv_msg::<ToAuthority>(self.execd.as_fd()) {
                // Liveness and acknowledgements: not requests.
                Ok((ToAuthority::Heartbeat { .. } | ToAuthority::ExitSeen { .. }, _)) => {}
                Ok((msg, _)) => return Some(msg),
                Err(e) if e.is_would_block() => {}
                Err(e) => panic!("authority channel: {e}"),
            }
        }
        None
    }

    pub fn tell(&mut self, msg: &FromAuthority) {
        let bytes = oomd_proto::encode(msg, &mut self.buf).expect("fits");
        oomd_proto::send(self.execd.as_fd(), bytes, &[]).expect("sent");
        self.pump_for(Duration::from_millis(10));
    }

    /// Sends a control request and collects the replies up to `End`, `Done`, `Policy` or `Error`.
    pub fn control(&mut self, request: &ControlRequest) -> Vec<ControlReply> {
        let bytes = oomd_proto::encode(request, &mut self.buf).expect("fits");
        oomd_proto::send(self.control.as_fd(), bytes, &[]).expect("sent");
        oomd_proto::set_nonblocking(&self.control).expect("nonblocking");
        let mut replies = Vec::new();
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            self.step();
            loop {
                match self.rx.recv_msg::<ControlReply>(self.control.as_fd()) {
                    Ok((reply, _)) => {
                        let last = !reply.more_follows();
                        replies.push(reply);
                        if last {
                            return replies;
                        }
                    }
                    Err(e) if e.is_would_block() => break,
                    Err(e) => panic!("control: {e}"),
                }
            }
        }
        panic!("no complete control reply within 5 s: {replies:?}");
    }

    /// Every event line so far (and the kill report after each confirmed kill).
    pub fn lines(&mut self) -> Vec<String> {
        self.control(&ControlRequest::Events {
            since: 0,
            limit: 256,
        })
        .into_iter()
        .filter_map(|r| match r {
            ControlReply::Event(e) => Some(e.line.to_string()),
            ControlReply::KillReport(r) => Some(r.to_string()),
            _ => None,
        })
        .collect()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
