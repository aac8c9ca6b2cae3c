//! [`Execd`]: the daemon as a value, driven one loop step at a time.
//!
//! # A service's life
//!
//! 1. **Spawn** (at boot for `start = true`, or on a control `Spawn`): channels and cgroup are
//!    prepared, the child starts in its own process group (in process-group mode as the
//!    service's subreaper shim, which forks the service: `shim.rs`), a pidfd pins it, and
//!    `Started` goes to the oomd service (or waits in the service's slot until the authority
//!    channel is up). Its pid, the *root* of the service, is the group id and `Started.pid`.
//! 2. **Running**: the root's pidfd is polled. A `Terminate` from the authority channel
//!    signals the whole service: in cgroup mode the cgroup (`cgroup.kill` when forced); in
//!    process-group mode every descendant of the shim, pinned and verified (`tree.rs`),
//!    whatever session or group it moved to, never the shim. A forced termination is
//!    repeated every [`DRAIN_INTERVAL`](crate::bounds::DRAIN_INTERVAL) until the shim exits.
//! 3. **Draining**: the root ended and was reaped (its status is kept: the main process's,
//!    which the shim mirrors). A shim ends only once it has no child left, so its exit means
//!    every process of the service is gone; execd still checks, every
//!    [`DRAIN_INTERVAL`](crate::bounds::DRAIN_INTERVAL), that the process group is empty
//!    (`kill(-pgid, 0)` fails with `ESRCH`; it is not if the shim was killed and members are
//!    left) or the cgroup unpopulated, reaping its own zombie children in the group (orphans
//!    come to it as a child subreaper). A `Terminate` now signals each group member through a
//!    pidfd opened on it and verified after the pin.
//! 4. **Exited**: only then is the exit logged, sent to the oomd service (if it was told of the
//!    start on the current channel) and pushed to subscribers.
//!
//! While draining, the group id is no longer pinned by an unreaped leader, so it is never
//! used to signal: only to test for emptiness (`kill(-pgid, 0)`, which sends nothing) and to
//! find members in `/proc`, each of which is pinned by a pidfd and checked again before it is
//! signalled. (The kernel keeps a pid number allocated while any process has it as its group
//! id, so the id cannot be reused before the group is empty, which is when draining ends.)

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memstat::SubjectId;
use oomd::TerminationMode;
use oomd_proto::admission::{self, Access, Throttle};
use oomd_proto::{ExecdError, ExecdReply, ExitStatus, FromAuthority, Receiver};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Signal, WaitId, WaitIdOptions, WaitOptions};

use crate::authority::{OomdLink, Outgoing, Termination};
use crate::bounds::{CGROUP_PREFIX, CONTROL_LOG_EVERY, DRAIN_INTERVAL, DROP_GRACE, REAP_INTERVAL};
use crate::cgroup::{self, CgroupRoot};
use crate::clients::Client;
use crate::log::Log;
use crate::manifest::{Manifest, Role, ServiceSpec};
use crate::options::{ExecdStats, Options, SetupError};
use crate::spawn::{self, Inherit};
use crate::supervise::Supervisor;
use crate::{signal, tree};

/// The process authority: services, channels, clients, and the loop that drives them.
#[derive(Debug)]
pub struct Execd {
    pub(crate) slots: Vec<ServiceEntry>,
    pub(crate) listener: Option<(OwnedFd, PathBuf)>,
    pub(crate) clients: Vec<Client>,
    pub(crate) link: Option<OomdLink>,
    pub(crate) link_generations: u64,
    pub(crate) receiver: Receiver,
    pub(crate) cgroups: Option<CgroupRoot>,
    pub(crate) reap_all: bool,
    pub(crate) next_reap: Instant,
    pub(crate) selftest_exit: Option<ExitStatus>,
    pub(crate) stats: ExecdStats,
    pub(crate) log: Log,
    /// Who may spawn (root, execd's own user, the control group).
    pub(crate) access: Access,
    /// How long a control connection may sit idle.
    pub(crate) idle_timeout: Duration,
    /// Rate limits of the control socket's log lines.
    pub(crate) refusals: Throttle,
    pub(crate) evictions: Throttle,
    pub(crate) strangers: Throttle,
    /// How the descendants of shims are read (detected once).
    pub(crate) tree: proctree::Tree,
    /// The watchdog's restart schedule (`supervise.rs`).
    pub(crate) supervisor: Supervisor,
    /// A watchdog silent for longer than this is ended and restarted.
    pub(crate) heartbeat_timeout: Duration,
    /// execd is shutting down: the watchdog is not restarted.
    pub(crate) stopping: bool,
}

/// One manifest entry and its current run.
#[derive(Debug)]
pub(crate) struct ServiceEntry {
    pub(crate) spec: ServiceSpec,
    pub(crate) run: Option<ServiceRun>,
    /// The exit of its last run, after a termination execd accepted, until the oomd service
    /// acknowledges it (`ExitSeen`): announced again on every new authority channel, so that a
    /// kill whose exit came while no oomd ran is still confirmed.
    pub(crate) unseen_exit: Option<UnseenExit>,
}

/// An exit after an accepted termination that the oomd service has not acknowledged.
#[derive(Debug)]
pub(crate) struct UnseenExit {
    pub(crate) started: FromAuthority,
    pub(crate) termination: Termination,
    pub(crate) status: ExitStatus,
}

#[derive(Debug)]
pub(crate) struct ServiceRun {
    pub(crate) child: spawn::Child,
    pub(crate) cgroup: Option<PathBuf>,
    pub(crate) phase: Phase,
    /// The authority channel generation its `Started` was queued on.
    pub(crate) announced: Option<u64>,
    /// After a forced termination in process-group mode: when to kill again whatever has
    /// appeared under the shim since, until the shim exits.
    pub(crate) rekill: Option<Instant>,
    /// Its `Started`, as sent on every authority channel (each time with a new copy of
    /// `memstat`).
    pub(crate) started: FromAuthority,
    /// The oomd end of its memstat channel, kept by execd so that a restarted oomd service
    /// reads the same channel: the service's publisher never needs a new socket, and frames
    /// sent while no oomd ran are still read.
    pub(crate) memstat: Option<OwnedFd>,
    /// The termination execd carries out for the oomd service, if any (the latest request).
    pub(crate) termination: Option<Termination>,
    /// The watchdog was ended for a missed heartbeat (logged once).
    pub(crate) ending: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// The root (shim, or main process in cgroup mode) is not reaped: its pid (= the group
    /// id) is pinned.
    Running,
    /// The root ended with `status` (the main process's) and was reaped; the rest of the
    /// group (or cgroup) is awaited.
    Draining {
        status: ExitStatus,
        next_check: Instant,
    },
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Listener,
    Authority,
    Client(usize),
    Leader(usize),
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl Execd {
    /// Sets up execd: control socket, authority channel (if given), cgroup root (if given),
    /// subreaper. Starts nothing: call [`boot`](Self::boot).
    pub fn new(manifest: Manifest, options: Options) -> Result<Self, SetupError> {
        let Options {
            socket,
            socket_access,
            control_group,
            idle_timeout,
            authority,
            cgroup_root,
            subreaper,
            reap_all,
            log,
            heartbeat_timeout,
        } = options;
        if authority.is_some() && manifest.watchdog().is_some() {
            return Err(SetupError::WatchdogConflict);
        }
        if subreaper {
            rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
                .map_err(|e| SetupError::Subreaper(e.into()))?;
        }
        let cgroups = match &cgroup_root {
            Some(root) => {
                Some(
                    CgroupRoot::open(root, &log).map_err(|source| SetupError::Cgroup {
                        root: root.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let listener = match socket {
            Some(path) => {
                let fd = admission::listen_with(&path, socket_access)
                    .and_then(|fd| oomd_proto::set_nonblocking(&fd).map(|()| fd))
                    .map_err(|source| SetupError::Socket {
                        path: path.clone(),
                        source,
                    })?;
                Some((fd, path))
            }
            None => None,
        };
        let slots = manifest
            .services()
            .iter()
            .map(|spec| ServiceEntry {
                spec: spec.clone(),
                run: None,
                unseen_exit: None,
            })
            .collect();
        let mut execd = Execd {
            slots,
            listener,
            clients: Vec::new(),
            link: None,
            link_generations: 0,
            receiver: Receiver::new(),
            cgroups,
            reap_all,
            next_reap: Instant::now(),
            selftest_exit: None,
            stats: ExecdStats::default(),
            log,
            access: Access::for_this_process(control_group),
            idle_timeout,
            refusals: Throttle::new(CONTROL_LOG_EVERY),
            evictions: Throttle::new(CONTROL_LOG_EVERY),
            strangers: Throttle::new(CONTROL_LOG_EVERY),
            tree: proctree::Tree::new(),
            supervisor: Supervisor::new(),
            heartbeat_timeout,
            stopping: false,
        };
        if let Some(fd) = authority {
            execd.open_link(fd).map_err(SetupError::Authority)?;
        }
        Ok(execd)
    }

    /// Starts every `start = true` service, in manifest order. Returns how many started;
    /// failures are logged (and counted in [`ExecdStats::spawn_failed`]).
    pub fn boot(&mut self) -> usize {
        let mut started = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].spec.start && self.spawn_service(i).is_ok() {
                started += 1;
            }
        }
        started
    }

    // ----- getters ----------------------------------------------------------------------

    /// The control socket's path, if it listens.
    #[must_use]
    pub fn socket_path(&self) -> Option<&Path> {
        self.listener.as_ref().map(|(_, path)| path.as_path())
    }

    /// The root process of service `name` (its shim in process-group mode, its main process
    /// in cgroup mode), until the whole service is gone.
    #[must_use]
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        let slot = self.slots.iter().find(|s| s.spec.name == name)?;
        slot.run
            .as_ref()
            .map(|r| r.child.pid.as_raw_nonzero().get())
    }

    /// How many services have processes (running or draining).
    #[must_use]
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.run.is_some()).count()
    }

    /// How the selftest service's main process ended, once the whole service is gone.
    #[must_use]
    pub fn selftest_exit(&self) -> Option<ExitStatus> {
        self.selftest_exit
    }

    /// Whether the authority channel is open.
    #[must_use]
    pub fn authority_connected(&self) -> bool {
        self.link.is_some()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> ExecdStats {
        self.stats
    }

    // ----- the loop ---------------------------------------------------------------------

    /// One loop step: waits at most `timeout` (less if a drain check or reap is due) for a
    /// socket or pidfd, handles what is ready, checks draining services, sends what is queued.
    /// Fails only if `poll` itself fails.
    pub fn poll_once(&mut self, timeout: Duration) -> io::Result<()> {
        let now = Instant::now();
        let timeout = match self.next_deadline() {
            Some(at) => timeout.min(at.saturating_duration_since(now)),
            None => timeout,
        };
        for (token, flags) in self.wait(timeout)? {
            match token {
                Token::Listener => self.accept_clients(),
                Token::Authority => {
                    if flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                        self.read_authority();
                    }
                }
                Token::Client(i) => {
                    if flags.intersects(PollFlags::HUP | PollFlags::ERR)
                        && !flags.contains(PollFlags::IN)
                    {
                        self.clients[i].closed = true;
                    } else if flags.contains(PollFlags::IN) {
                        self.read_client(i);
                    }
                }
                Token::Leader(i) => self.leader_ready(i),
            }
        }
        let now = Instant::now();
        self.reap_orphans(now);
        for i in 0..self.slots.len() {
            self.rekill(i, now);
            self.check_drained(i, now);
        }
        self.supervise(now);
        self.expire_clients(now);
        self.flush();
        Ok(())
    }

    /// Runs loop steps until `stop` says so (checked at least every 100 ms).
    pub fn run_until(&mut self, mut stop: impl FnMut(&Self) -> bool) -> io::Result<()> {
        while !stop(self) {
            self.poll_once(Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// Kills every service (forced) and runs the loop until all are gone or `grace` has
    /// passed. Returns whether all are gone.
    pub fn shutdown(&mut self, grace: Duration) -> bool {
        self.stopping = true;
        let mut killed = 0;
        for i in 0..self.slots.len() {
            if self.slots[i].run.is_some() {
                killed += 1;
                if let Err(e) = self.signal_service(i, TerminationMode::Forced) {
                    let name = &self.slots[i].spec.name;
                    self.log
                        .line(format_args!("execd: shutdown: cannot kill {name} ({e})"));
                }
            }
        }
        if killed > 0 {
            self.log
                .line(format_args!("execd: shutdown: killed {killed} services"));
        }
        let deadline = Instant::now() + grace;
        while self.running() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.poll_once(left.min(DRAIN_INTERVAL)).is_err() {
                break;
            }
        }
        self.flush();
        self.running() == 0
    }

    fn next_deadline(&self) -> Option<Instant> {
        let drains = self.slots.iter().filter_map(|s| {
            let run = s.run.as_ref()?;
            match run.phase {
                Phase::Draining { next_check, .. } => Some(next_check),
                Phase::Running => run.rekill,
            }
        });
        let reap = self
            .reap_all
            .then_some(self.next_reap)
            .into_iter()
            .chain(self.supervisor.due)
            .chain(self.heartbeat_deadline());
        drains.chain(reap).chain(self.next_client_expiry()).min()
    }

    fn wait(&self, timeout: Duration) -> io::Result<Vec<(Token, PollFlags)>> {
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        if let Some((listener, _)) = &self.listener {
            fds.push(PollFd::new(listener, PollFlags::IN));
            tokens.push(Token::Listener);
        }
        if let Some(link) = &self.link {
            let mut flags = PollFlags::empty();
            if link.has_room() {
                flags |= PollFlags::IN;
            }
            if link.wants_write() {
                flags |= PollFlags::OUT;
            }
            fds.push(PollFd::from_borrowed_fd(link.fd(), flags));
            tokens.push(Token::Authority);
        }
        for (i, client) in self.clients.iter().enumerate() {
            let flags = if client.is_idle() {
                PollFlags::IN
            } else {
                PollFlags::OUT
            };
            fds.push(PollFd::new(&client.fd, flags));
            tokens.push(Token::Client(i));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(
                run @ ServiceRun {
                    phase: Phase::Running,
                    ..
                },
            ) = &slot.run
            {
                fds.push(PollFd::new(&run.child.pidfd, PollFlags::IN));
                tokens.push(Token::Leader(i));
            }
        }
        let timeout = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .zip(tokens)
            .filter_map(|(fd, token)| {
                let flags = fd.revents();
                (!flags.is_empty()).then_some((token, flags))
            })
            .collect())
    }

    fn flush(&mut self) {
        if let Some(link) = &mut self.link {
            if let Err(e) = link.flush() {
                self.close_link(&format!("{e}"));
            }
        }
        for client in &mut self.clients {
            client.flush();
        }
        self.clients.retain(|c| !c.closed);
    }

    // ----- spawning ---------------------------------------------------------------------

    pub(crate) fn spawn_service(&mut self, i: usize) -> Result<i32, ExecdError> {
        if self.slots[i].run.is_some() {
            return Err(ExecdError::AlreadyRunning);
        }
        let spec = self.slots[i].spec.clone();
        let failed = |this: &mut Self, what: &str, e: &io::Error| {
            this.stats.spawn_failed += 1;
            this.log.line(format_args!(
                "execd: spawn {} failed ({what}: {e})",
                spec.name
            ));
            ExecdError::SpawnFailed(errno_of(e))
        };
        let memstat = spec
            .memstat
            .then(memstat_channel)
            .transpose()
            .map_err(|e| failed(self, "socketpair", &e))?;
        let authority = (spec.role == Some(Role::Watchdog))
            .then(oomd_proto::seqpacket_pair)
            .transpose()
            .map_err(|e| failed(self, "socketpair", &e))?;
        let cgroup = match &self.cgroups {
            Some(root) => Some(
                root.prepare(&spec.name)
                    .map_err(|e| failed(self, "cgroup", &e))?,
            ),
            None => None,
        };
        let inherit = Inherit {
            memstat: memstat.as_ref().map(|(_, service)| service.as_fd()),
            authority: authority.as_ref().map(|(_, watchdog)| watchdog.as_fd()),
            cgroup_procs: cgroup.as_ref().map(|(_, procs)| procs.as_fd()),
        };
        // No cgroup to hold the service: a shim does (process-group mode).
        let shim = cgroup.is_none();
        let child = match spawn::spawn(&spec, &inherit, shim) {
            Ok(child) => child,
            Err(e) => {
                if let Some((dir, _)) = &cgroup {
                    cgroup::remove(dir);
                }
                return Err(failed(self, "exec", &e));
            }
        };
        // The child's ends are its own now; execd keeps only the other ends: the oomd end of
        // the memstat channel for as long as the service runs (a copy goes to each oomd).
        let memstat_for_oomd = memstat.map(|(oomd_end, _service_end)| oomd_end);
        let authority = authority.map(|(execd_end, _watchdog_end)| execd_end);
        let pid = child.pid.as_raw_nonzero().get();
        self.stats.spawned += 1;
        self.log
            .line(format_args!("execd: started {} pid={pid}", spec.name));
        let cgroup_dir = cgroup.map(|(dir, _procs)| dir);
        let cgroup_name = cgroup_dir
            .as_ref()
            .and_then(|_| oomd_proto::name(&format!("{CGROUP_PREFIX}{}", spec.name)).ok());
        if self.slots[i].unseen_exit.take().is_some() {
            self.log.line(format_args!(
                "execd: {}: the exit of its previous run was never acknowledged by oomd",
                spec.name
            ));
        }
        self.slots[i].run = Some(ServiceRun {
            child,
            cgroup: cgroup_dir,
            phase: Phase::Running,
            announced: None,
            rekill: None,
            started: FromAuthority::Started {
                subject: spec.subject,
                name: spec.name.clone(),
                class: spec.class,
                critical: spec.critical,
                pid,
                cgroup: cgroup_name,
            },
            memstat: memstat_for_oomd,
            termination: None,
            ending: false,
        });
        match authority {
            // A watchdog: its new channel is told of every service, this one included.
            Some(fd) => {
                if let Err(e) = self.open_link(fd) {
                    self.log
                        .line(format_args!("execd: authority channel unusable ({e})"));
                }
            }
            None => self.announce(i),
        }
        Ok(pid)
    }

    /// Tells the oomd service on the current channel that service `i` runs (with a copy of
    /// its memstat channel's oomd end) and, if execd carries out a termination of it, that
    /// too. Without a channel, nothing: the next channel is told of every running service.
    pub(crate) fn announce(&mut self, i: usize) {
        let Some(generation) = self.link.as_ref().map(|l| l.generation) else {
            return;
        };
        let Some(run) = &mut self.slots[i].run else {
            return;
        };
        if run.announced == Some(generation) {
            return;
        }
        run.announced = Some(generation);
        let started = run.started.clone();
        let fd = run.memstat.as_ref().and_then(|fd| fd.try_clone().ok());
        let termination = run.termination;
        let subject = self.slots[i].spec.subject;
        self.send_to_oomd(Outgoing { msg: started, fd });
        if let Some(t) = termination {
            self.send_to_oomd(Outgoing {
                msg: t.message(subject),
                fd: None,
            });
        }
    }

    // ----- ending services ----------------------------------------------------------------

    pub(crate) fn find_subject(&self, subject: SubjectId) -> Option<usize> {
        self.slots.iter().position(|s| s.spec.subject == subject)
    }

    /// Signals every process of a running service (SIGTERM, or SIGKILL when forced).
    pub(crate) fn signal_service(&mut self, i: usize, mode: TerminationMode) -> io::Result<()> {
        let tree = self.tree;
        let Some(run) = &mut self.slots[i].run else {
            return Ok(());
        };
        let sig = match mode {
            TerminationMode::Graceful => Signal::TERM,
            TerminationMode::Forced => Signal::KILL,
        };
        let root = run.child.pid.as_raw_nonzero().get();
        if let Some(dir) = &run.cgroup {
            return match mode {
                TerminationMode::Forced => cgroup::kill(dir),
                TerminationMode::Graceful => cgroup::signal_members(dir, sig),
            };
        }
        match run.phase {
            Phase::Running => {
                // The shim is unreaped: its descendants are the service (`tree.rs`).
                tree::terminate(&tree, root, run.child.pidfd.as_fd(), mode)?;
                if matches!(mode, TerminationMode::Forced) {
                    run.rekill = Some(Instant::now() + DRAIN_INTERVAL);
                }
                Ok(())
            }
            Phase::Draining { .. } => {
                // The shim is gone (killed: it only exits with no child left); what is left
                // of the service is what stayed in its group.
                let members = tree::group_members(root)?;
                signal::each_verified(
                    &members,
                    |pid| proctree::read_stat(pid).is_ok_and(|s| s.pgrp == root),
                    sig,
                )
            }
        }
    }

    /// A forced termination in process-group mode whose repeat is due: kill whatever has
    /// appeared under the shim since (a fork that raced the last walk), until the shim exits.
    fn rekill(&mut self, i: usize, now: Instant) {
        let tree = self.tree;
        let Some(run) = &mut self.slots[i].run else {
            return;
        };
        match (run.phase, run.rekill) {
            (Phase::Running, Some(at)) if at <= now => {}
            _ => return,
        }
        let root = run.child.pid.as_raw_nonzero().get();
        let killed = tree::terminate(
            &tree,
            root,
            run.child.pidfd.as_fd(),
            TerminationMode::Forced,
        );
        run.rekill = Some(now + DRAIN_INTERVAL);
        match killed {
            Ok(0) => {}
            Ok(n) => {
                self.stats.killed_late += n as u64;
                let name = &self.slots[i].spec.name;
                self.log
                    .line(format_args!("execd: {name}: killed {n} more processes"));
            }
            Err(e) => {
                let name = &self.slots[i].spec.name;
                self.log.line(format_args!(
                    "execd: {name}: cannot kill what is left ({e})"
                ));
            }
        }
    }

    // ----- exits ------------------------------------------------------------------------

    /// A service's pidfd is readable: its main process ended. Reap it, keep its status.
    fn leader_ready(&mut self, i: usize) {
        let Some(run) = &self.slots[i].run else {
            return;
        };
        let reaped = rustix::process::waitid(
            WaitId::PidFd(run.child.pidfd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        );
        let status = match reaped {
            Ok(Some(status)) => {
                if let Some(code) = status.exit_status() {
                    ExitStatus::Code(code)
                } else if let Some(sig) = status.terminating_signal() {
                    ExitStatus::Signal(sig)
                } else {
                    return; // stopped or continued: not an exit
                }
            }
            Ok(None) => return,
            Err(e) => {
                // Only if something else reaped it; its status is lost, not invented as 0.
                let name = &self.slots[i].spec.name;
                self.log.line(format_args!(
                    "execd: {name}: cannot reap its main process ({e})"
                ));
                ExitStatus::Code(-1)
            }
        };
        self.leader_exited(i, status);
    }

    fn leader_exited(&mut self, i: usize, status: ExitStatus) {
        let now = Instant::now();
        if let Some(run) = &mut self.slots[i].run {
            run.phase = Phase::Draining {
                status,
                next_check: now,
            };
        }
        self.check_drained(i, now);
    }

    /// Reaps every zombie child (PID 1, or the binary as a subreaper). A service's main
    /// process reaped here is handled as if its pidfd had reported it.
    fn reap_orphans(&mut self, now: Instant) {
        if !self.reap_all || now < self.next_reap {
            return;
        }
        self.next_reap = now + REAP_INTERVAL;
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            let leader = self.slots.iter().position(|s| {
                matches!(&s.run, Some(run) if run.child.pid == pid
                    && matches!(run.phase, Phase::Running))
            });
            match leader {
                Some(i) => {
                    let status = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => ExitStatus::Code(code),
                        (None, Some(sig)) => ExitStatus::Signal(sig),
                        (None, None) => ExitStatus::Code(-1),
                    };
                    self.leader_exited(i, status);
                }
                None => self.stats.orphans_reaped += 1,
            }
        }
    }

    /// For a draining service whose check is due: reap its zombies that are execd's children,
    /// then finish it if no process is left.
    fn check_drained(&mut self, i: usize, now: Instant) {
        let Some(run) = &mut self.slots[i].run else {
            return;
        };
        let Phase::Draining { status, next_check } = run.phase else {
            return;
        };
        if next_check > now {
            return;
        }
        let pgid = run.child.pid;
        // The leader is reaped, so every child of execd in this group is an orphan of the
        // service (reparented to execd as subreaper): reap them, or the group never empties.
        while let Ok(Some(_)) = rustix::process::waitpgid(pgid, WaitOptions::NOHANG) {
            self.stats.orphans_reaped += 1;
        }
        let empty = match &run.cgroup {
            Some(dir) => match cgroup::populated(dir) {
                Ok(populated) => !populated,
                Err(_) => !signal::group_exists(pgid),
            },
            None => !signal::group_exists(pgid),
        };
        if empty {
            self.finish(i, status);
        } else {
            run.phase = Phase::Draining {
                status,
                next_check: now + DRAIN_INTERVAL,
            };
        }
    }

    /// Every process of service `i` is gone: log it, tell the oomd service and subscribers.
    fn finish(&mut self, i: usize, status: ExitStatus) {
        let Some(run) = self.slots[i].run.take() else {
            return;
        };
        let spec = &self.slots[i].spec;
        let (subject, name, role) = (spec.subject, spec.name.clone(), spec.role);
        if let Some(dir) = &run.cgroup {
            cgroup::remove(dir);
        }
        drop(run.child); // closes the pidfd
        self.stats.exited += 1;
        self.log
            .line(format_args!("execd: {name} exited ({status})"));
        let current = self.link.as_ref().map(|l| l.generation);
        if run.announced.is_some() && run.announced == current {
            self.send_to_oomd(Outgoing {
                msg: FromAuthority::Exited { subject, status },
                fd: None,
            });
        }
        // A kill execd carried out is remembered until oomd acknowledges its exit.
        if let Some(termination) = run.termination.filter(|t| t.accepted) {
            self.slots[i].unseen_exit = Some(UnseenExit {
                started: run.started,
                termination,
                status,
            });
        }
        match role {
            Some(Role::Watchdog) => {
                self.close_link("the watchdog exited");
                self.watchdog_exited(status);
            }
            Some(Role::Selftest) => self.selftest_exit = Some(status),
            None => {}
        }
        let push = ExecdReply::Exited {
            subject,
            name,
            status,
        };
        for client in self.clients.iter_mut().filter(|c| c.subscribed) {
            if !client.push(push.clone()) {
                self.stats.pushes_dropped += 1;
            }
        }
    }
}

impl Drop for Execd {
    /// Never leaves a service behind: kills what still runs and waits a bounded time.
    fn drop(&mut self) {
        if self.running() > 0 {
            self.shutdown(DROP_GRACE);
        }
        if let Some((_, path)) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A new memstat channel: (oomd's end, the service's end). oomd's end refuses descriptors
/// from the service before the service holds its end: a descriptor oomd does not take is
/// released in oomd's thread, where its release can block
/// (`memstat::publish::refuse_descriptors`). A kernel without the option (before 6.16) cannot
/// refuse them; oomd says so at start.
fn memstat_channel() -> io::Result<(OwnedFd, OwnedFd)> {
    let (watchdog_end, service_end) = oomd_proto::seqpacket_pair()?;
    let _ = memstat::publish::refuse_descriptors(watchdog_end.as_fd());
    Ok((watchdog_end, service_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_cannot_pass_a_descriptor_to_oomd_on_its_memstat_channel() {
        let (probe, _) = oomd_proto::seqpacket_pair().expect("socketpair");
        if !memstat::publish::refuse_descriptors(probe.as_fd()).expect("setsockopt") {
            println!("skipped: this kernel has no SO_PASSRIGHTS (Linux 6.16)");
            return;
        }
        let (_watchdog_end, service_end) = memstat_channel().expect("channel");
        let (passed, _other) = oomd_proto::seqpacket_pair().expect("socketpair");
        let sent = oomd_proto::send(service_end.as_fd(), b"frame", &[passed.as_fd()]);
        assert!(
            matches!(&sent, Err(oomd_proto::WireError::Io(e)) if e.raw_os_error() == Some(1)),
            "a descriptor reached oomd's end (EPERM expected): {sent:?}"
        );
        // A frame without one still goes through.
        oomd_proto::send(service_end.as_fd(), b"frame", &[]).expect("a plain frame");
    }
}
