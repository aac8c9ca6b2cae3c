//! `oomctl`: talk to a running oomd service.
//!
//! ```text
//! oomctl status [--json]             table of subjects (bytes reported, kernel, limits, last
//!                                    frame age, state), then oomd's counters
//! oomctl top [--interval-ms N] [--count N]
//!                                    the same table, refreshed, with each subject's confirmed
//!                                    kills; q or Ctrl-C quits (plain repeated tables when
//!                                    stdout is not a terminal)
//! oomctl events [--since N] [--follow] [--json]
//! oomctl policy get [--json]         the global policy and every service's own limits
//! oomctl policy set FILE.toml        the same format as oomd's --policy file, all or nothing
//! oomctl policy reload               oomd re-reads its own --policy file (as on SIGHUP)
//! oomctl inject APP BYTES            selftest builds of oomd only
//! ```
//!
//! Exit codes: 0 done, 1 the service refused or failed the request, 2 bad usage or the
//! service cannot be reached.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod top;
use oomd::{KillState, SubjectStatus};
use oomd_proto::client::{Client, ClientError};
use oomd_proto::{ControlError, ControlReply, ControlRequest, CountersView, PolicyDocument};

#[derive(Debug, Parser)]
#[command(
    name = "oomctl",
    version,
    about = "Control a running oomd service",
    after_help = "Examples:\n  oomctl status                    one line per service, then the counters\n  oomctl top --interval-ms 500     the same, refreshed; q quits\n  oomctl events --since 0 --follow the audit trail as it grows\n  oomctl policy set policy.toml    apply a policy file, all or nothing\n  oomctl policy reload             make oomd re-read its own --policy file"
)]
struct Args {
    /// The oomd control socket.
    #[arg(long, env = "OOMD_CONTROL_SOCKET", default_value = oomd_proto::DEFAULT_CONTROL_SOCKET)]
    socket: PathBuf,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One line per subject: reported bytes, kernel bytes, limits, age of its last frame,
    /// state; then what oomd counted (rejected frames by reason, events lost, refused clients).
    Status {
        /// One JSON document (`subjects`: every subject's full status; `counters`) instead.
        #[arg(long)]
        json: bool,
    },
    /// The status table, refreshed every interval, with the kills confirmed for each subject
    /// (counted from the events oomd still holds). On a terminal it redraws in place and quits
    /// on q or Ctrl-C; otherwise it prints one table after another.
    ///
    /// Example: oomctl top --interval-ms 500
    Top {
        /// Time between refreshes, in milliseconds (100 to 60000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
        interval_ms: u64,
        /// Stop after this many tables (default: until q, Ctrl-C or a failure).
        #[arg(long)]
        count: Option<u64>,
    },
    /// The audit trail, oldest first.
    Events {
        /// First sequence number to show.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep polling for new events until interrupted.
        #[arg(long)]
        follow: bool,
        /// One JSON object per event instead of the readable line.
        #[arg(long)]
        json: bool,
    },
    /// Read or change the policy.
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Make the running hog fixture APP grow by BYTES (oomd selftest builds only).
    Inject {
        /// The hog's service name.
        app: String,
        /// Bytes to add (plain number, or with K/KiB/M/MiB/G/GiB).
        bytes: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Print the policy in force: the global policy and every service's own limits (whether
    /// the service runs or not), as a policy file.
    Get {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply a policy file, all of it or none of it: its `[policy]` table replaces the global
    /// policy (unset keys take their defaults), and each `[service.NAME]` table sets that
    /// service's limits (kept until it starts, if it is not running). A file without a
    /// `[policy]` table leaves the global policy as it is. One bad key anywhere refuses the
    /// whole file and names the key.
    Set {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Make oomd re-read the policy file it was started with (`oomd --policy FILE`; SIGHUP
    /// does the same) and apply it as if it started with it: its `[policy]` table (the
    /// defaults without one) and exactly its `[service.NAME]` tables, all or nothing. On a
    /// refusal the error names the key, and the policy in force is unchanged.
    ///
    /// Example: oomd --check-config /etc/oomd/policy.toml && oomctl policy reload
    Reload,
}

/// Failure with the exit code it maps to.
struct Failure(u8, String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused(_) | ClientError::ExecdRefused(_) | ClientError::Unexpected(_) => {
                Failure(1, e.to_string())
            }
            _ => Failure(2, e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    clidoc::generate_if_asked::<Args>();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("oomctl: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(args: &Args) -> Result<(), Failure> {
    let mut client = Client::connect(&args.socket, Duration::from_millis(args.timeout_ms))?;
    match &args.command {
        Command::Status { json } => status(&mut client, *json),
        Command::Top { interval_ms, count } => {
            top::run(&mut client, Duration::from_millis(*interval_ms), *count)
        }
        Command::Events {
            since,
            follow,
            json,
        } => events(&mut client, *since, *follow, *json),
        Command::Policy {
            action: PolicyAction::Get { json },
        } => {
            match one(client.control(&ControlRequest::GetPolicyDocument)?)? {
                ControlReply::PolicyDocument(doc) if *json => {
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                }
                ControlReply::PolicyDocument(doc) => print_policy(&doc),
                other => return Err(unexpected(&other)),
            }
            Ok(())
        }
        Command::Policy {
            action: PolicyAction::Set { file },
        } => policy_set(&mut client, file),
        Command::Policy {
            action: PolicyAction::Reload,
        } => done(one(client.control(&ControlRequest::ReloadPolicy)?)?),
        Command::Inject { app, bytes } => {
            let bytes = oomd_config::policy::parse_size(bytes)
                .map_err(|e| Failure(2, format!("BYTES: {e}")))?;
            let app = oomd_proto::name(app).map_err(|e| Failure(2, format!("APP: {e}")))?;
            done(one(client.control(&ControlRequest::Inject { app, bytes })?)?)
        }
    }
}

fn one(mut replies: Vec<ControlReply>) -> Result<ControlReply, Failure> {
    match replies.pop() {
        // Busy is about the moment, not the request: usage-level, like "not running".
        Some(ControlReply::Error(e @ ControlError::Busy)) => Err(Failure(2, e.to_string())),
        Some(ControlReply::Error(e)) => Err(Failure(1, e.to_string())),
        Some(r) => Ok(r),
        None => Err(Failure(1, "no reply".into())),
    }
}

fn done(reply: ControlReply) -> Result<(), Failure> {
    match reply {
        ControlReply::Done => Ok(()),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(reply: &ControlReply) -> Failure {
    Failure(1, format!("unexpected reply: {reply:?}"))
}

fn status(client: &mut Client, json: bool) -> Result<(), Failure> {
    let subjects = client.status()?;
    let counters = match one(client.control(&ControlRequest::Counters)?)? {
        ControlReply::Counters(c) => c,
        other => return Err(unexpected(&other)),
    };
    if json {
        let doc = serde_json::json!({ "subjects": subjects, "counters": counters });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", status_table(&subjects, None));
        print!("{}", counters_text(&counters));
    }
    Ok(())
}

/// The status table; with `kills`, a KILLS column (confirmed kills per subject).
fn status_table(
    subjects: &[oomd_proto::SubjectView],
    kills: Option<&std::collections::BTreeMap<memstat::SubjectId, u64>>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<20} {:>12} {:>12} {:>12} {:>12} {:>9}",
        "SUBJECT", "REPORTED", "KERNEL", "SOFT", "HARD", "FRAME-AGE"
    );
    if kills.is_some() {
        let _ = write!(out, " {:>5}", "KILLS");
    }
    let _ = writeln!(out, "  STATE");
    for view in subjects {
        let s = &view.status;
        let _ = write!(
            out,
            "{:<20} {:>12} {:>12} {:>12} {:>12} {:>9}",
            view.name.as_str(),
            opt(s.reported_bytes),
            opt(s.kernel_bytes),
            s.limits.soft_bytes,
            s.limits.hard_bytes,
            view.frame_age_ticks
                .map_or_else(|| "-".to_owned(), |t| format!("{t}t")),
        );
        if let Some(kills) = kills {
            let _ = write!(out, " {:>5}", kills.get(&s.subject).copied().unwrap_or(0));
        }
        let _ = writeln!(out, "  {}", state(s));
    }
    out
}

fn counters_text(c: &CountersView) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rejected: Vec<String> = oomd::Rejection::ALL
        .iter()
        .filter(|r| c.rejected[**r as usize] > 0)
        .map(|r| format!("{}={}", r.as_str(), c.rejected[*r as usize]))
        .collect();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "frames rejected: {}",
        if rejected.is_empty() {
            "none".to_owned()
        } else {
            rejected.join(" ")
        }
    );
    let _ = writeln!(out, "latest frames taken over budget: {}", c.latest_frames);
    let _ = writeln!(
        out,
        "events: {} logged, {} overwritten in the ring",
        c.events_logged, c.events_overwritten
    );
    let _ = writeln!(
        out,
        "control: {} refused (busy), {} closed idle, {} changes not permitted, {} of another protocol",
        c.clients_refused, c.clients_evicted, c.requests_not_permitted, c.wrong_protocol
    );
    let _ = writeln!(
        out,
        "policies refused: {}; memstat channels closed by their service: {}; log lines lost: {}",
        c.policies_refused, c.memstat_hangups, c.log_write_failures
    );
    let _ = writeln!(
        out,
        "audit log: {} syncs, {} us in all, {} failures",
        c.audit_syncs, c.audit_sync_micros, c.audit_failures
    );
    out
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn state(s: &SubjectStatus) -> String {
    let mut words = Vec::new();
    if !s.running {
        words.push("exited".to_owned());
    }
    if s.critical {
        words.push("critical".to_owned());
    }
    if s.over_soft_since.is_some() {
        words.push("over-soft".to_owned());
    }
    words.push(match s.kill {
        KillState::Idle => "ok".to_owned(),
        KillState::Throttled { .. } => "kill-throttled".to_owned(),
        KillState::Pending {
            mode, acknowledged, ..
        } => format!(
            "kill-pending({}{})",
            mode.as_str(),
            if acknowledged { ",acknowledged" } else { "" }
        ),
        KillState::Denied { .. } => "kill-denied".to_owned(),
        KillState::Refused { .. } => "kill-refused".to_owned(),
        KillState::Failed { .. } => "kill-failed".to_owned(),
        KillState::WouldKill { .. } => "would-kill".to_owned(),
    });
    words.join(" ")
}

fn events(client: &mut Client, mut since: u64, follow: bool, json: bool) -> Result<(), Failure> {
    loop {
        let page = client.events(since)?;
        if page.lost > 0 {
            eprintln!(
                "oomctl: {} events were overwritten before they could be read",
                page.lost
            );
        }
        for view in &page.events {
            let report = page.reports.iter().find(|r| r.report.seq == view.event.seq);
            if json {
                let line = serde_json::json!({
                    "seq": view.event.seq,
                    "tick": view.event.tick.0,
                    "event": view.event.kind,
                    "line": view.line.as_str(),
                });
                println!("{line}");
                if let Some(r) = report {
                    let line = serde_json::json!({
                        "seq": view.event.seq,
                        "tick": view.event.tick.0,
                        "report": r.report,
                        "line": r.to_string(),
                    });
                    println!("{line}");
                }
            } else {
                println!("t={} #{} {}", view.event.tick, view.event.seq, view.line);
                if let Some(r) = report {
                    println!("t={} #{} {r}", view.event.tick, view.event.seq);
                }
            }
        }
        since = page.next;
        if page.events.is_empty() {
            if !follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn print_policy(doc: &PolicyDocument) {
    if let Some(p) = &doc.global {
        println!("[policy]");
        println!("soft_bytes = {}", p.limits.soft_bytes);
        println!("hard_bytes = {}", p.limits.hard_bytes);
        println!("soft_grace_ticks = {}", p.limits.soft_grace_ticks);
        println!("exit_deadline_ticks = {}", p.limits.exit_deadline_ticks);
        println!("sample_period_ms = {}", p.sample_period_ms);
        println!("kill_budget = {}", p.kill_budget);
        println!("kill_window_ticks = {}", p.kill_window_ticks);
        println!("frame_budget_per_tick = {}", p.frame_budget_per_tick);
        println!("enforce_kernel = {}", p.enforce_kernel);
        println!("underreport_margin_bytes = {}", p.underreport_margin_bytes);
        println!("observe_only = {}", p.observe_only);
        println!("report_stale_ticks = {}", p.report_stale_ticks);
        println!(
            "enforce_kernel_when_silent = {}",
            p.enforce_kernel_when_silent
        );
        println!("reclaim_target_percent = {}", p.reclaim_target_percent);
        println!("reclaim_deadline_ticks = {}", p.reclaim_deadline_ticks);
    }
    for entry in &doc.services {
        let Some(l) = &entry.limits else { continue };
        println!();
        println!("[service.{}]", entry.name);
        println!("soft_bytes = {}", l.soft_bytes);
        println!("hard_bytes = {}", l.hard_bytes);
        println!("soft_grace_ticks = {}", l.soft_grace_ticks);
        println!("exit_deadline_ticks = {}", l.exit_deadline_ticks);
    }
}

/// Sends the whole file as one document: oomd applies all of it or none of it.
fn policy_set(client: &mut Client, file: &std::path::Path) -> Result<(), Failure> {
    let policy =
        oomd_config::policy::PolicyFile::load(file).map_err(|e| Failure(2, e.to_string()))?;
    let doc = policy
        .to_document()
        .map_err(|e| Failure(2, format!("{}: {e}", file.display())))?;
    done(one(client.control(&ControlRequest::ApplyPolicy(doc))?)?)
}
