//! `execd`: the process authority of oomd's Linux edge.
//!
//! Parses arguments, loads the manifest, does PID-1 setup with `--init`, and runs the loop of
//! [`execd::Execd`]. Exit codes on a host: 0 after SIGTERM/SIGINT or when the selftest service
//! exited with status 0; 1 when the selftest failed or the loop broke; 2 for bad arguments, a
//! bad manifest, or `--init` when not PID 1. As PID 1 it never exits: it powers off.

#![deny(unsafe_code)]

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use execd::{init, Execd, Log, Manifest, Options};
use oomd_proto::ExitStatus;

/// Default bound on a PID-1 run, in seconds.
const DEFAULT_POWEROFF_AFTER: u64 = 100;
/// How long services get to die when execd stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The process authority of oomd's Linux edge: spawns the manifest's services, owns their
/// lifecycle, and is the only component that ends processes.
#[derive(Debug, Parser)]
#[command(
    name = "execd",
    version,
    after_help = "Examples:\n  execd --manifest services.toml --socket /tmp/execd.sock   run a manifest on a host\n  execd --init                                               as PID 1 in the guest (refused elsewhere)\n  execd --generate man > execd.1                             the man page (also bash, zsh, fish)"
)]
struct Args {
    /// The service manifest (TOML, `[[service]]` entries).
    #[arg(
        long,
        env = "OOMD_EXECD_MANIFEST",
        default_value = "/etc/oomd/services.toml"
    )]
    manifest: PathBuf,
    /// Where to listen for control clients (SOCK_SEQPACKET).
    #[arg(long, env = oomd_proto::ENV_EXECD_SOCKET, default_value = oomd_proto::DEFAULT_EXECD_SOCKET)]
    socket: PathBuf,
    /// The control socket file's permission bits (octal), whatever the umask.
    #[arg(long, default_value = "660", value_parser = oomd_proto::admission::parse_mode)]
    socket_mode: u32,
    /// The control socket file's group (a name or a number). Callers whose primary group it is
    /// may spawn services, besides root and execd's own user.
    #[arg(long, value_parser = oomd_proto::admission::parse_group)]
    socket_group: Option<u32>,
    /// Close a control connection idle for this many seconds (privileged subscribers never).
    #[arg(long, default_value_t = execd::bounds::DEFAULT_IDLE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    control_idle_timeout_secs: u64,
    /// End and restart the watchdog when it has sent no heartbeat for this many milliseconds
    /// (it sends one at least every 100 ms).
    #[arg(long, default_value_t = oomd_proto::DEFAULT_HEARTBEAT_TIMEOUT.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(200..=600_000))]
    heartbeat_timeout_ms: u64,
    /// Run as PID 1 of a QEMU guest: mount /proc, /sys, /dev and cgroup2, reap orphans, power
    /// off at the end. Refused unless execd really is PID 1.
    #[arg(long)]
    init: bool,
    /// With --init: power off after this many seconds at the latest [default: 100].
    #[arg(long, value_name = "SECS", requires = "init")]
    poweroff_after: Option<u64>,
    /// Place services in cgroups under <ROOT>/oomd/ (must be a cgroup v2 mount). With --init the
    /// default is /sys/fs/cgroup; otherwise no cgroups are used.
    #[arg(long, value_name = "ROOT")]
    cgroup_root: Option<PathBuf>,
}

fn main() -> ExitCode {
    clidoc::generate_if_asked::<Args>();
    let args = Args::parse();
    if args.init {
        if let Err(e) = init::check_pid1() {
            eprintln!("execd: --init refused: {e}");
            return ExitCode::from(2);
        }
        run_init(&args)
    } else {
        run_host(&args)
    }
}

/// The control socket's path, file mode, group and idle timeout, and the watchdog's
/// heartbeat timeout, from the arguments.
fn control_options(args: &Args, options: &mut Options) {
    options.socket = Some(args.socket.clone());
    options.socket_access = oomd_proto::admission::SocketAccess {
        mode: args.socket_mode,
        group: args.socket_group,
    };
    options.control_group = args.socket_group;
    options.idle_timeout = Duration::from_secs(args.control_idle_timeout_secs);
    options.heartbeat_timeout = Duration::from_millis(args.heartbeat_timeout_ms);
}

// ----- host -----------------------------------------------------------------------------------

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Signal dispositions are nix's (rustix has no `sigaction`), like the shim's mask and fork.
#[allow(unsafe_code)]
fn catch_stop_signals() -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        // Other system calls resume; poll() still returns EINTR, so the loop sees the flag.
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

fn run_host(args: &Args) -> ExitCode {
    let manifest = match Manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("execd: {e}");
            return ExitCode::from(2);
        }
    };
    let log = Log::stderr();
    let mut options = Options::new();
    control_options(args, &mut options);
    options.cgroup_root = args.cgroup_root.clone();
    options.reap_all = true;
    options.log = log.clone();
    let mut execd = match Execd::new(manifest, options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("execd: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = catch_stop_signals() {
        eprintln!("execd: cannot catch SIGTERM/SIGINT: {e}");
        return ExitCode::from(1);
    }
    execd.boot();
    loop {
        if STOP.load(Ordering::Relaxed) {
            log.line(format_args!("execd: stopping"));
            execd.shutdown(STOP_GRACE);
            return ExitCode::SUCCESS;
        }
        if let Some(status) = execd.selftest_exit() {
            log.line(format_args!("execd: selftest exited ({status}), stopping"));
            execd.shutdown(STOP_GRACE);
            return if status == ExitStatus::Code(0) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        if let Err(e) = execd.poll_once(Duration::from_millis(250)) {
            log.line(format_args!("execd: loop failed ({e}), stopping"));
            execd.shutdown(STOP_GRACE);
            return ExitCode::from(1);
        }
    }
}

// ----- PID 1 ----------------------------------------------------------------------------------

/// Never returns: PID 1 powers off, or waits forever if it cannot.
fn run_init(args: &Args) -> ! {
    let log = Log::stderr();
    let secs = args.poweroff_after.unwrap_or(DEFAULT_POWEROFF_AFTER);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| init_main(args, &log, secs, deadline)));
    if ran.is_err() {
        log.line(format_args!("execd: FAIL: panicked as PID 1"));
    }
    let e = init::power_off(&log);
    log.line(format_args!("execd: FAIL: {e}"));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn init_main(args: &Args, log: &Log, secs: u64, deadline: Instant) {
    let setup = match init::setup(log) {
        Ok(setup) => setup,
        Err(e) => {
            log.line(format_args!("execd: FAIL: {e}"));
            return;
        }
    };
    let manifest = match Manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => {
            log.line(format_args!("execd: FAIL: {e}"));
            return;
        }
    };
    let has_selftest = manifest
        .services()
        .iter()
        .any(|s| s.role == Some(execd::Role::Selftest));
    let mut options = Options::new();
    control_options(args, &mut options);
    options.cgroup_root = args.cgroup_root.clone().or(setup.cgroup_root);
    options.subreaper = false; // PID 1 is every orphan's reaper already
    options.reap_all = true;
    options.log = log.clone();
    let mut execd = match Execd::new(manifest, options) {
        Ok(e) => e,
        Err(e) => {
            log.line(format_args!("execd: FAIL: {e}"));
            return;
        }
    };
    execd.boot();
    let ran = execd.run_until(|e| e.selftest_exit().is_some() || Instant::now() >= deadline);
    match (ran, execd.selftest_exit()) {
        (Err(e), _) => log.line(format_args!("execd: FAIL: loop failed ({e})")),
        (Ok(()), Some(status)) => log.line(format_args!("execd: selftest exited ({status})")),
        (Ok(()), None) if has_selftest => log.line(format_args!(
            "execd: FAIL: selftest still running after {secs} s"
        )),
        (Ok(()), None) => log.line(format_args!("execd: {secs} s are up")),
    }
    execd.shutdown(Duration::from_secs(3));
}
