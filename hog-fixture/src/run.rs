//! The runtime: the clock, the sockets, the signals and the children around a [`Hog`].
//!
//! One thread. Each turn reads the clock once, asks the [`Hog`] what to do, and either grows
//! a chunk or waits in `poll(2)` on the control socket and the SIGTERM signalfd (when there
//! are any) until the next deadline. Every growth is logged, then published.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use memstat::publish::{FromEnvError, GrowthPublisher, PublisherConfig};
use memstat::{CountingAlloc, Publisher, ENV_FD, ENV_SOCKET};
// nix for the SIGTERM mask and its signalfd (rustix has neither); rustix for the rest.
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::arena::{AllocError, Arena};
use crate::bounds::{MAX_CONTROL_LEN, MAX_WAIT_MS};
use crate::cli::{Args, Escape, Mode, Reclaim, UsageError};
use crate::control::{parse_command, Command as ControlCommand};
use crate::hog::{Action, Grew, Hog};
use crate::log::Logger;
use crate::mark::{monotonic_ns, CrossingMark};
use crate::report::{Policy, Reporter};

/// The exit status of every error: bad arguments, a bad environment, a failed allocation.
pub const EXIT_ERROR: u8 = 2;

/// Control messages handled per wake-up at most, so a sender that never stops cannot starve
/// the timer.
const MAX_COMMANDS_PER_WAKE: usize = 64;

/// Why the hog exits with [`EXIT_ERROR`]. The message says which.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// A combination of arguments that makes no sense.
    Usage(UsageError),
    /// The publisher the environment asks for cannot be built, or none is asked for and
    /// `--require-publisher` was given.
    Publisher(FromEnvError),
    /// The control socket could not be bound or set up.
    Control {
        /// The path given with `--control`.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Blocking SIGTERM or opening its signalfd failed (`--ignore-sigterm`).
    Signals(nix::errno::Errno),
    /// A forker child could not be spawned.
    Spawn(io::Error),
    /// A forker child could not leave the hog's session (`--child-escape`).
    Escape(Errno),
    /// The arena could not grow.
    Alloc(AllocError),
    /// Waiting in `poll(2)` failed.
    Wait(Errno),
    /// The allocator's publishing thread could not start (`--publish-on-growth`).
    GrowthPublisher(io::Error),
    /// The `--mark-base` file could not be opened.
    MarkBase {
        /// The path given with `--mark-base`.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(e) => write!(f, "usage: {e}"),
            Self::Publisher(FromEnvError::NotSet) => write!(
                f,
                "--require-publisher: neither {ENV_FD} nor {ENV_SOCKET} is set"
            ),
            Self::Publisher(e) => write!(f, "publisher: {e}"),
            Self::Control { path, source } => {
                write!(f, "control socket {}: {source}", path.display())
            }
            Self::Signals(e) => write!(f, "ignoring SIGTERM: {e}"),
            Self::Spawn(e) => write!(f, "spawning a child: {e}"),
            Self::Escape(e) => write!(f, "setsid: {e}"),
            Self::Alloc(e) => e.fmt(f),
            Self::Wait(e) => write!(f, "poll: {e}"),
            Self::GrowthPublisher(e) => write!(f, "starting the growth publisher: {e}"),
            Self::MarkBase { path, source } => {
                write!(f, "--mark-base {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RunError {}

/// The global allocator the hog runs on: counting, with the growth signal
/// `--publish-on-growth` uses (disarmed, one relaxed load per allocation, otherwise).
pub type HogAlloc = CountingAlloc<std::alloc::System, GrowthPublisher>;

/// The whole program, given the process's global allocator (a `CountingAlloc`, whose figures
/// are what gets published). Parses the command line, runs, and returns the exit status:
/// 0 when the hog stopped by itself, 2 on any error (the message is logged), and clap's
/// status for `--help` (0) and usage errors (2).
pub fn main(alloc: &'static HogAlloc) -> ExitCode {
    clidoc::generate_if_asked::<Args>();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_ERROR));
        }
    };
    let log = Logger::new(std::process::id());
    let result = if args.child {
        run_child(&args, &log)
    } else {
        run(&args, alloc, &log)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.line(format_args!("error: {e}"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(args: &Args, alloc: &'static HogAlloc, log: &Logger) -> Result<(), RunError> {
    args.check().map_err(RunError::Usage)?;
    let started = Instant::now();
    let started_ns = monotonic_ns();
    // First, before anything could deliver a SIGTERM we mean to survive.
    let sigterm = match args.ignore_sigterm {
        true => Some(IgnoredSigterm::install()?),
        false => None,
    };
    let policy = Policy::from_args(args);
    let (publisher, source) = open_publisher(args, policy.config(), log)?;
    // On growth, the publisher is the allocator's thread's; the loop below reports nothing.
    let (publisher, source) = match (args.publish_on_growth, publisher) {
        (true, Some(publisher)) => {
            GrowthPublisher::start(alloc, publisher).map_err(RunError::GrowthPublisher)?;
            (None, "growth-thread")
        }
        (_, publisher) => (publisher, source),
    };
    let mut reporter = Reporter::new(publisher, policy);
    let control = args.control.as_deref().map(Control::bind).transpose()?;
    log.line(format_args!(
        "start mode={} chunk={} max={} start={} growth={} linger_ms={} lifetime_ms={} \
         publisher={source} control={} ignore_sigterm={} reclaim={}",
        args.mode.as_str(),
        args.chunk,
        args.max,
        args.start,
        match args.grow_on_inject {
            true => "inject".to_owned(),
            false => format!("timer interval_ms={}", args.interval_ms),
        },
        args.linger_ms,
        args.lifetime_ms,
        args.control
            .as_deref()
            .map_or("none".into(), Path::to_string_lossy),
        args.ignore_sigterm,
        args.reclaim.as_str(),
    ));
    let children = match args.mode {
        Mode::Forker => Children::spawn(args, started, log)?,
        _ => Children::default(),
    };

    let mut arena = Arena::new(args.chunk, args.max);
    if let Some(mark) = args.mark_bytes {
        let base = args.mark_base.as_deref();
        let probe = CrossingMark::new(mark, base, started_ns, *log).map_err(|source| {
            RunError::MarkBase {
                path: base.map(Path::to_owned).unwrap_or_default(),
                source,
            }
        })?;
        arena.set_probe(Box::new(probe));
    }
    let mut hog = Hog::new(arena, args.growth(), args.bounds());
    let grew = hog.start(args.start).map_err(RunError::Alloc)?;
    log_growth(log, format_args!("initial"), grew, alloc);
    publish(&mut reporter, alloc, log);

    let reason = loop {
        let now = started.elapsed();
        match hog.poll(now) {
            Action::GrowChunk => {
                let grew = hog.grow_chunk(now).map_err(RunError::Alloc)?;
                log_growth(log, format_args!("chunk"), grew, alloc);
                publish(&mut reporter, alloc, log);
            }
            Action::WaitUntil(until) => {
                // Never wait past the publisher's heartbeat: an idle hog still reports, so
                // oomd never takes it for a silent one.
                let mut timeout = until.saturating_sub(now);
                if let Some(due) = reporter.next_due(Instant::now()) {
                    timeout = timeout.min(due);
                }
                let reclaim_fd = match args.reclaim {
                    Reclaim::Ignore => None,
                    _ => reporter.reclaim_fd(),
                };
                let woke = wait(timeout, control.as_ref(), sigterm.as_ref(), reclaim_fd)?;
                if woke.reclaim {
                    answer_reclaim(args.reclaim, &mut hog, &mut reporter, alloc, log);
                }
                if reporter.next_due(Instant::now()) == Some(Duration::ZERO) {
                    reporter.heartbeat(alloc);
                }
                if woke.sigterm {
                    if let Some(sigterm) = &sigterm {
                        sigterm.drain(log);
                    }
                }
                if let (true, Some(control)) = (woke.control, &control) {
                    control.serve(
                        |bytes| {
                            let grew = hog
                                .inject(started.elapsed(), bytes)
                                .map_err(RunError::Alloc)?;
                            log_growth(log, format_args!("inject grow={bytes}"), grew, alloc);
                            publish(&mut reporter, alloc, log);
                            Ok(())
                        },
                        log,
                    )?;
                }
            }
            Action::Exit(reason) => break reason,
        }
    };
    children.end(log);
    let stats = reporter.stats();
    log.line(format_args!(
        "exit reason={} held={} sent={} dropped={}",
        reason.as_str(),
        hog.arena().held(),
        stats.sent,
        stats.dropped(),
    ));
    Ok(())
}

/// oomd's reclaim request (the newest, if several queued) is answered as `--reclaim` says,
/// then acknowledged: the figures go out first, so that oomd has them when the
/// acknowledgement arrives (it judges the figures, never the acknowledgement).
fn answer_reclaim(
    how: Reclaim,
    hog: &mut Hog,
    reporter: &mut Reporter,
    alloc: &HogAlloc,
    log: &Logger,
) {
    let Some(request) = reporter.poll_reclaim() else {
        return;
    };
    let before = alloc.live_bytes();
    match how {
        Reclaim::Ignore => return,
        Reclaim::Cooperative => {
            while alloc.live_bytes() > request.target_bytes && hog.free_chunk() > 0 {}
        }
        Reclaim::Stubborn => {}
        Reclaim::Liar => reporter.cap_reports_at(request.target_bytes),
    }
    log.line(format_args!(
        "reclaim request id={} target={} deadline_ms={} answer={} alloc_before={before} \
         alloc={} held={}",
        request.id,
        request.target_bytes,
        request.deadline_ms,
        how.as_str(),
        alloc.live_bytes(),
        hog.arena().held(),
    ));
    publish(reporter, alloc, log);
    match reporter.acknowledge(request.id) {
        Ok(()) => log.line(format_args!("reclaim acknowledged id={}", request.id)),
        Err(e) => log.line(format_args!(
            "reclaim acknowledgement id={} not sent: {e}",
            request.id
        )),
    }
}

/// A forker child: holds `--child-bytes` touched bytes, publishes nothing, and exits 0 when
/// `--lifetime-ms` (the parent's remaining lifetime when it spawned us) has passed. With
/// `--child-escape setsid` it first moves to a session of its own; with `double-fork` it is
/// the middle process instead ([`run_middle`]).
fn run_child(args: &Args, log: &Logger) -> Result<(), RunError> {
    let started = Instant::now();
    match args.child_escape {
        Escape::None => {}
        Escape::Setsid => {
            rustix::process::setsid().map_err(RunError::Escape)?;
        }
        Escape::DoubleFork => return run_middle(args, log),
    }
    let sigterm = match args.ignore_sigterm {
        true => Some(IgnoredSigterm::install()?),
        false => None,
    };
    let mut arena = Arena::new(args.chunk, args.child_bytes);
    arena.grow_by(args.child_bytes).map_err(RunError::Alloc)?;
    let own = own_stat();
    log.line(format_args!(
        "child of={} holding={} lifetime_ms={} escape={} sid={} pgrp={}",
        rustix::process::Pid::as_raw(rustix::process::getppid()),
        arena.held(),
        args.lifetime_ms,
        args.child_escape.as_str(),
        own.map_or(-1, |s| s.session),
        own.map_or(-1, |s| s.pgrp),
    ));
    let lifetime = Duration::from_millis(args.lifetime_ms);
    loop {
        let now = started.elapsed();
        if now >= lifetime {
            break;
        }
        let woke = wait(lifetime - now, None, sigterm.as_ref(), None)?;
        if let (true, Some(sigterm)) = (woke.sigterm, &sigterm) {
            sigterm.drain(log);
        }
    }
    log.line(format_args!(
        "child exit reason=lifetime held={}",
        arena.held()
    ));
    Ok(())
}

/// The middle process of `--child-escape double-fork`: moves to a session of its own, starts
/// the holder (a child with no escape of its own, so it stays in this new session and group),
/// prints the holder's pid on stdout for the hog, and exits without waiting, so the holder is
/// orphaned.
fn run_middle(args: &Args, log: &Logger) -> Result<(), RunError> {
    rustix::process::setsid().map_err(RunError::Escape)?;
    let exe = std::env::current_exe().map_err(RunError::Spawn)?;
    let mut command = Command::new(exe);
    command
        .arg("--child")
        .args(["--child-bytes", &args.child_bytes.to_string()])
        .args(["--chunk", &args.chunk.to_string()])
        .args(["--lifetime-ms", &args.lifetime_ms.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if args.ignore_sigterm {
        command.arg("--ignore-sigterm");
    }
    let holder = command.spawn().map_err(RunError::Spawn)?;
    let line = format!("{}\n", holder.id());
    io::stdout()
        .write_all(line.as_bytes())
        .map_err(RunError::Spawn)?;
    log.line(format_args!(
        "child escaped=double-fork holder={} sid={}",
        holder.id(),
        own_stat().map_or(-1, |s| s.session),
    ));
    // Dropping a `Child` neither kills nor waits: the holder lives on, orphaned.
    Ok(())
}

/// This process's `/proc/self/stat`, for its session and group in the log. Not `getsid` or
/// `getpgrp` through rustix: both are 0 when the session or group leader lives outside this
/// pid namespace (a test run in a container), and rustix takes 0 for a nonzero pid (a debug
/// assertion fails; in release, undefined behaviour).
fn own_stat() -> Option<proctree::Stat> {
    let pid = rustix::process::Pid::as_raw(Some(rustix::process::getpid()));
    proctree::read_stat(pid).ok()
}

fn log_growth<A, S>(
    log: &Logger,
    what: fmt::Arguments<'_>,
    grew: Grew,
    alloc: &CountingAlloc<A, S>,
) {
    let live = alloc.live_bytes();
    log.line(format_args!(
        "{what} added={} held={} alloc={live}",
        grew.added, grew.held
    ));
    if grew.reached_max {
        log.line(format_args!("max reached held={}", grew.held));
    }
}

fn publish<A, S>(reporter: &mut Reporter, alloc: &CountingAlloc<A, S>, log: &Logger) {
    let reported = reporter.report(alloc);
    if reported.offered > 1 {
        log.line(format_args!(
            "flood offered={} sent={} dropped={} suppressed={}",
            reported.offered, reported.sent, reported.dropped, reported.suppressed
        ));
    }
}

/// The publisher the environment asks for, and where it came from (for the log).
fn open_publisher(
    args: &Args,
    config: PublisherConfig,
    log: &Logger,
) -> Result<(Option<Publisher>, &'static str), RunError> {
    if args.no_publish {
        return Ok((None, "none(--no-publish)"));
    }
    let source = if std::env::var_os(ENV_FD).is_some() {
        ENV_FD
    } else {
        ENV_SOCKET
    };
    match Publisher::from_env(config) {
        Ok(publisher) => Ok((Some(publisher), source)),
        Err(FromEnvError::NotSet) if !args.require_publisher => {
            log.line(format_args!(
                "warning: neither {ENV_FD} nor {ENV_SOCKET} is set; running without \
                 publishing (give --require-publisher to make this an error)"
            ));
            Ok((None, "none"))
        }
        Err(e) => Err(RunError::Publisher(e)),
    }
}

/// What woke a wait up.
#[derive(Clone, Copy, Debug, Default)]
struct Woke {
    control: bool,
    sigterm: bool,
    reclaim: bool,
}

/// Waits at most `timeout` (rounded up to a millisecond, and at most [`MAX_WAIT_MS`]) for the
/// control socket, the SIGTERM signalfd or the memstat channel (oomd's reclaim requests) to
/// become readable.
fn wait(
    timeout: Duration,
    control: Option<&Control>,
    sigterm: Option<&IgnoredSigterm>,
    reclaim: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<Woke, RunError> {
    let ms = timeout.as_micros().div_ceil(1000);
    let ms = u16::try_from(ms).unwrap_or(u16::MAX).min(MAX_WAIT_MS);
    let timeout = Timespec {
        tv_sec: i64::from(ms / 1000),
        tv_nsec: i64::from(ms % 1000) * 1_000_000,
    };
    let timeout = Some(&timeout);
    let readable = |fd: &PollFd<'_>| fd.revents().intersects(PollFlags::IN | PollFlags::ERR);
    // The descriptors there are, packed at the front of a fixed array (no allocation: the
    // hog's allocator figures are what it publishes).
    let sources = [
        control.map(|c| c.socket.as_fd()),
        sigterm.map(|s| s.fd.as_fd()),
        reclaim,
    ];
    let Some(filler) = sources.iter().flatten().next().copied() else {
        return match poll(&mut [], timeout) {
            Ok(_) | Err(Errno::INTR) => Ok(Woke::default()),
            Err(e) => Err(RunError::Wait(e)),
        };
    };
    let mut fds: [PollFd<'_>; 3] =
        core::array::from_fn(|_| PollFd::from_borrowed_fd(filler, PollFlags::IN));
    let mut which = [0usize; 3];
    let mut n = 0;
    for (source, fd) in sources.iter().enumerate() {
        if let Some(fd) = fd {
            fds[n] = PollFd::from_borrowed_fd(*fd, PollFlags::IN);
            which[n] = source;
            n += 1;
        }
    }
    match poll(&mut fds[..n], timeout) {
        Ok(_) => {
            let mut woke = Woke::default();
            for (fd, &source) in fds[..n].iter().zip(&which) {
                let hit = readable(fd);
                match source {
                    0 => woke.control |= hit,
                    1 => woke.sigterm |= hit,
                    _ => woke.reclaim |= hit,
                }
            }
            Ok(woke)
        }
        Err(Errno::INTR) => Ok(Woke::default()),
        Err(e) => Err(RunError::Wait(e)),
    }
}

/// SIGTERM blocked and read from a signalfd instead, so it is logged and otherwise ignored.
/// The mask is not inherited by forker children (std resets it at spawn); they get
/// `--ignore-sigterm` explicitly.
#[derive(Debug)]
struct IgnoredSigterm {
    fd: SignalFd,
}

impl IgnoredSigterm {
    fn install() -> Result<Self, RunError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.thread_block().map_err(RunError::Signals)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(RunError::Signals)?;
        Ok(Self { fd })
    }

    fn drain(&self, log: &Logger) {
        while let Ok(Some(info)) = self.fd.read_signal() {
            log.line(format_args!(
                "SIGTERM received from pid={}, ignored",
                info.ssi_pid
            ));
        }
    }
}

/// The `--control` datagram socket. The path is removed again when the hog exits normally.
#[derive(Debug)]
struct Control {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Control {
    /// Binds `path`, first removing a stale socket left there (never any other kind of file).
    fn bind(path: &Path) -> Result<Self, RunError> {
        let err = |source| RunError::Control {
            path: path.to_owned(),
            source,
        };
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            std::fs::remove_file(path).map_err(err)?;
        }
        let socket = UnixDatagram::bind(path).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        Ok(Self {
            socket,
            path: path.to_owned(),
        })
    }

    /// Handles the waiting messages (at most [`MAX_COMMANDS_PER_WAKE`]); `grow` calls
    /// `on_grow`, anything else is logged and ignored.
    fn serve(
        &self,
        mut on_grow: impl FnMut(u64) -> Result<(), RunError>,
        log: &Logger,
    ) -> Result<(), RunError> {
        let mut buf = [0u8; MAX_CONTROL_LEN];
        for _ in 0..MAX_COMMANDS_PER_WAKE {
            let len = match self.socket.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if memstat::publish::io_would_block(&e) => break,
                Err(e) => {
                    log.line(format_args!("control: receive: {e}"));
                    break;
                }
            };
            match parse_command(&buf[..len]) {
                Ok(ControlCommand::Grow(bytes)) => on_grow(bytes)?,
                Err(e) => log.line(format_args!("control: ignored: {e}")),
            }
        }
        Ok(())
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The forker's children. Dropping this (on any exit path of the parent) kills and reaps
/// them: they are our own unreaped children, so their PIDs cannot have been reused. The
/// holders of `--child-escape double-fork` are not our children (their middle processes,
/// which are, exit at once): they end by their own `--lifetime-ms`.
#[derive(Debug, Default)]
struct Children(Vec<Child>);

impl Children {
    /// Spawns `--children` copies of this executable with `--child`: without the memstat
    /// environment (the memstat fd itself is close-on-exec once the publisher adopted it),
    /// stdin from /dev/null, a lifetime ending when ours does, and `--child-escape` passed
    /// on (in our process group unless they escape it).
    fn spawn(args: &Args, started: Instant, log: &Logger) -> Result<Self, RunError> {
        let exe = std::env::current_exe().map_err(RunError::Spawn)?;
        let remaining = args.bounds().lifetime.saturating_sub(started.elapsed());
        let lifetime_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX);
        let mut children = Self::default();
        let mut pids = Vec::new();
        for _ in 0..args.children {
            let mut command = Command::new(&exe);
            command
                .arg("--child")
                .args(["--child-bytes", &args.child_bytes.to_string()])
                .args(["--chunk", &args.chunk.to_string()])
                .args(["--lifetime-ms", &lifetime_ms.to_string()])
                .args(["--child-escape", args.child_escape.as_str()])
                .env_remove(ENV_FD)
                .env_remove(ENV_SOCKET)
                .stdin(Stdio::null());
            if args.ignore_sigterm {
                command.arg("--ignore-sigterm");
            }
            match args.child_escape {
                Escape::DoubleFork => pids.push(Self::double_fork(&mut command)?),
                Escape::None | Escape::Setsid => {
                    let child = command.spawn().map_err(RunError::Spawn)?;
                    pids.push(child.id());
                    children.0.push(child);
                }
            }
        }
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        log.line(format_args!(
            "children spawned n={} bytes_each={} pids={} escape={}",
            pids.len(),
            args.child_bytes,
            pids.join(","),
            args.child_escape.as_str(),
        ));
        Ok(children)
    }

    /// Runs a middle process (it prints its holder's pid and exits), reaps it, and returns
    /// the holder's pid.
    fn double_fork(command: &mut Command) -> Result<u32, RunError> {
        let mut middle = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(RunError::Spawn)?;
        let mut line = String::new();
        if let Some(out) = middle.stdout.take() {
            io::BufRead::read_line(&mut io::BufReader::new(out), &mut line)
                .map_err(RunError::Spawn)?;
        }
        let status = middle.wait().map_err(RunError::Spawn)?;
        match (status.success(), line.trim().parse()) {
            (true, Ok(pid)) => Ok(pid),
            _ => Err(RunError::Spawn(io::Error::other(format!(
                "the middle process of a double fork ended {status} after {line:?}"
            )))),
        }
    }

    /// Kills and reaps the children, logging how many there were.
    fn end(mut self, log: &Logger) {
        if self.0.is_empty() {
            return;
        }
        let n = self.0.len();
        self.kill_all();
        log.line(format_args!("children ended n={n}"));
    }

    fn kill_all(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.kill_all();
    }
}
