//! `oomd`: the oomd service. Started by execd, which hands it the authority channel.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use oomd_config::policy::PolicyFile;
use oomd_service::{LogFormat, Options, Service};

/// Where the policy file is looked for when none is named.
const DEFAULT_POLICY: &str = "/etc/oomd/policy.toml";
/// Where the durable audit log is written unless told otherwise.
const DEFAULT_AUDIT_LOG: &str = "/var/lib/oomd/audit.jsonl";

/// The oomd memory watchdog service.
#[derive(Debug, Parser)]
#[command(
    name = "oomd",
    version,
    after_help = "Examples:\n  oomd --check-config /etc/oomd/policy.toml     check a policy file, start nothing\n  kill -HUP \"$(pidof oomd)\"                      re-read --policy and apply it whole\n  oomd --generate man > oomd.1                   the man page (also bash, zsh, fish)\n\noomd is started by execd (the manifest's role = \"watchdog\"), which hands it the authority\nchannel in OOMD_AUTHORITY_FD."
)]
struct Args {
    /// Policy file (TOML: `[policy]` and `[service.<name>]` tables). Without it, or when the
    /// default path does not exist, the built-in defaults apply. SIGHUP (or `oomctl policy
    /// reload`) re-reads it and applies it whole, or nothing of it.
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// Control socket path.
    #[arg(long, env = "OOMD_CONTROL_SOCKET", default_value = oomd_proto::DEFAULT_CONTROL_SOCKET)]
    socket: PathBuf,
    /// The control socket file's permission bits (octal), whatever the umask.
    #[arg(long, default_value = "660", value_parser = oomd_proto::admission::parse_mode)]
    socket_mode: u32,
    /// The control socket file's group (a name or a number). Callers whose primary group it is
    /// may change the policy, besides root and oomd's own user.
    #[arg(long, value_parser = oomd_proto::admission::parse_group)]
    socket_group: Option<u32>,
    /// Close a control connection idle for this many seconds.
    #[arg(long, default_value_t = oomd_service::DEFAULT_IDLE_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    control_idle_timeout_secs: u64,
    /// Where cgroup v2 is mounted.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup_root: String,
    /// Where hog fixtures listen for injections (selftest builds).
    #[arg(long, default_value = "/run/oomd/inject")]
    inject_dir: PathBuf,
    /// Record every input of the core to this file (oomd-sim's log format) for replay.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Stop recording before the file would exceed this size (bytes, or with K/M/G suffixes).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    record_max_bytes: u64,
    /// The durable audit log: every kill-related event as a JSON line, synced to disk before
    /// each request to execd, read back at start so that a restart forgets nothing. `none` for
    /// no audit log (and no recovery).
    #[arg(long, default_value = DEFAULT_AUDIT_LOG)]
    audit_log: PathBuf,
    /// Rotate the audit log (to `<path>.1`) before it would exceed this size.
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    audit_log_max_bytes: u64,
    /// Audit log format on stderr: text, json or none.
    #[arg(long, default_value = "text", value_parser = parse_format)]
    log: LogFormat,
    /// Check this policy file as oomd would at start-up, print what it sets, and exit: 0 if
    /// oomd would take it, 2 (with the key at fault) if not. Starts nothing.
    #[arg(long, value_name = "FILE", conflicts_with = "policy")]
    check_config: Option<PathBuf>,
}

/// `--check-config FILE`: the start-up checks of a policy file, and nothing else.
fn check_config(path: &std::path::Path) -> ExitCode {
    let doc = match PolicyFile::load(path).map(|f| f.to_document()) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => {
            eprintln!("oomd: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("oomd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(refusal) = oomd_service::check_document(&doc) {
        eprintln!(
            "oomd: {}: policy refused, nothing applied: {refusal}",
            path.display()
        );
        return ExitCode::from(2);
    }
    let p = doc.global.unwrap_or_default();
    println!(
        "oomd: {}: ok: soft={} hard={} tick={}ms kill_budget={} per {} ticks{}; {} service table(s)",
        path.display(),
        p.limits.soft_bytes,
        p.limits.hard_bytes,
        p.sample_period_ms,
        p.kill_budget,
        p.kill_window_ticks,
        if doc.global.is_none() {
            " (no [policy] table: the built-in defaults)"
        } else {
            ""
        },
        doc.services.len(),
    );
    ExitCode::SUCCESS
}

fn parse_size(s: &str) -> Result<u64, String> {
    oomd_config::policy::parse_size(s)
}

fn parse_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        "none" => Ok(LogFormat::None),
        _ => Err(format!("unknown log format {s:?} (text, json or none)")),
    }
}

fn main() -> ExitCode {
    clidoc::generate_if_asked::<Args>();
    // Everything before the loop (arguments, the policy file, the service's tables, built on
    // the stack and moved into their boxes) runs on a thread of its own: its stack, some
    // hundreds of kB touched once, goes back to the system when it ends, instead of staying
    // resident in the main thread's stack for the daemon's whole life. The loop's own stack
    // use is small.
    //
    // SIGHUP asks for a policy reload: blocked here, before any other thread exists, so that
    // every thread inherits the mask and the signal waits for the loop's signalfd instead of
    // ending the process.
    let mut hangup = SigSet::empty();
    hangup.add(Signal::SIGHUP);
    if let Err(e) = hangup.thread_block() {
        eprintln!("oomd: cannot block SIGHUP: {e}");
        return ExitCode::from(1);
    }
    let setup = std::thread::Builder::new()
        .name("oomd-setup".into())
        .stack_size(8 << 20)
        .spawn(set_up);
    let started = match setup.map(std::thread::JoinHandle::join) {
        Ok(Ok(started)) => started,
        Ok(Err(_)) => return ExitCode::from(1), // it panicked, and said so on stderr
        Err(e) => {
            eprintln!("oomd: cannot start the setup thread: {e}");
            return ExitCode::from(1);
        }
    };
    let mut service = match started {
        Ok(service) => service,
        Err(code) => return code,
    };
    match SignalFd::with_flags(&hangup, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(signals) => service.reload_on(signals),
        Err(e) => eprintln!("oomd: SIGHUP will not reload the policy: {e}"),
    }
    match service.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oomd: stopping: {e}");
            ExitCode::from(1)
        }
    }
}

/// Parses the arguments and builds the service; the exit code when it should not run.
fn set_up() -> Result<Box<Service>, ExitCode> {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return Err(check_config(path));
    }
    let policy = match PolicyFile::load(&args.policy) {
        Ok(file) => match file.to_document() {
            Ok(doc) => doc,
            Err(e) => {
                eprintln!("oomd: {}: {e}", args.policy.display());
                return Err(ExitCode::from(2));
            }
        },
        Err(_) if args.policy.as_os_str() == DEFAULT_POLICY && !args.policy.exists() => {
            oomd_proto::PolicyDocument::default()
        }
        Err(e) => {
            eprintln!("oomd: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let authority = match authority_fd() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("oomd: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let opts = Options {
        policy,
        policy_file: Some(args.policy.clone()),
        control_socket: args.socket,
        control_access: oomd_proto::admission::SocketAccess {
            mode: args.socket_mode,
            group: args.socket_group,
        },
        control_group: args.socket_group,
        control_idle_timeout: std::time::Duration::from_secs(args.control_idle_timeout_secs),
        cgroup_root: args.cgroup_root,
        inject_dir: args.inject_dir,
        log: args.log,
        record: args.record.map(|path| oomd_service::RecordTo {
            path,
            max_bytes: args.record_max_bytes,
        }),
        audit: (args.audit_log.as_os_str() != "none").then_some(oomd_service::AuditTo {
            path: args.audit_log,
            max_bytes: args.audit_log_max_bytes,
        }),
    };
    match Service::new(opts, authority) {
        Ok(s) => Ok(s),
        Err(e @ oomd_service::ServiceError::PolicyDocument(_)) => {
            eprintln!("oomd: {}: {e}", args.policy.display());
            Err(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("oomd: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// Takes the authority channel execd handed over in `OOMD_AUTHORITY_FD`.
fn authority_fd() -> Result<OwnedFd, String> {
    let var = oomd_proto::ENV_AUTHORITY_FD;
    let text = std::env::var(var).map_err(|_| {
        format!(
            "{var} is not set: oomd must be started by execd, which hands it the authority channel"
        )
    })?;
    let raw: RawFd = text
        .parse()
        .map_err(|_| format!("{var}={text:?} is not a descriptor number"))?;
    if raw < 3 {
        return Err(format!("{var}={raw} names a standard stream"));
    }
    let inherited = borrowed(raw);
    rustix::io::fcntl_getfd(inherited).map_err(|e| format!("{var}={raw}: {e}"))?;
    let kind = rustix::net::sockopt::socket_type(inherited)
        .map_err(|e| format!("{var}={raw} is not a socket: {e}"))?;
    if kind != rustix::net::SocketType::SEQPACKET {
        return Err(format!("{var}={raw} is not a SOCK_SEQPACKET socket"));
    }
    let _ = rustix::io::fcntl_setfd(inherited, rustix::io::FdFlags::CLOEXEC);
    Ok(adopt(raw))
}

fn borrowed(raw: RawFd) -> std::os::fd::BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: `raw` is not -1 (it is at least 3). Whether it is open is what the borrow is
    // first used for: `fcntl(F_GETFD)`, which reports `EBADF` for a closed number and changes
    // nothing; only once that succeeded is it used for the `getsockopt` and `F_SETFD` that
    // follow. Nothing closes it meanwhile: execd exported the number for this process alone,
    // and it is adopted (owned) only after these checks. The borrow is not kept past them.
    unsafe {
        std::os::fd::BorrowedFd::borrow_raw(raw)
    }
}

fn adopt(raw: RawFd) -> OwnedFd {
    #[allow(unsafe_code)]
    // SAFETY: execd opened this descriptor for us and exported its number; it is open (checked
    // above), and this is the only place that takes ownership of it, once, at start-up.
    unsafe {
        OwnedFd::from_raw_fd(raw)
    }
}
