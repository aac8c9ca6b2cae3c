//! The behaviours, each proven from facts: oomd's events and execd's notifications.

use memstat::SubjectId;
use oomd::{EventKind, Limits, Rejection};

use crate::procs::{self, group_members};
use crate::session::{Session, Step};

const MIB: u64 = 1 << 20;

/// Limits every hog gets, from the hard limit the session was given (the default, 16 MiB, is
/// well under what a hog holds once injected with [`INJECT`]).
fn hog_limits(s: &Session) -> Limits {
    let hard = s.settings.hog_hard_bytes;
    Limits {
        soft_bytes: hard / 2,
        hard_bytes: hard,
        soft_grace_ticks: 0,
        exit_deadline_ticks: 40,
    }
}
/// What every hog is made to grow by.
const INJECT: u64 = 32 * MIB;
/// The kill window of the rate-limit behaviour, in ticks.
const RATE_WINDOW: u32 = 50;

/// The reclaim behaviours' contract: a hog at three quarters of its hard limit (over soft)
/// is asked to reclaim to half of its soft limit within [`RECLAIM_DEADLINE`] ticks (2 s at the
/// guest's 20 ms tick); its soft grace, [`RECLAIM_GRACE`], is much shorter, so that without
/// the request it would have been killed long before the deadline.
const RECLAIM_PERCENT: u8 = 50;
const RECLAIM_DEADLINE: u32 = 100;
const RECLAIM_GRACE: u64 = 10;

/// One behaviour the selftest proves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// The marker's words: `SELFTEST: <name> ok`.
    pub name: &'static str,
    /// How it is proven.
    pub run: fn(&mut Session) -> Step,
}

/// Every behaviour, in the order they run (rate limit last: it changes the kill budget).
pub const ALL: [Behaviour; 12] = [
    Behaviour {
        name: "oom kill",
        run: kill,
    },
    Behaviour {
        name: "oom deny critical",
        run: deny_critical,
    },
    Behaviour {
        name: "oom reject spoof",
        run: reject_spoof,
    },
    Behaviour {
        name: "oom flood",
        run: flood,
    },
    Behaviour {
        name: "oom underreport",
        run: underreport,
    },
    Behaviour {
        name: "oom tree kill",
        run: tree_kill,
    },
    Behaviour {
        name: "oom escape kill",
        run: escape_kill,
    },
    Behaviour {
        name: "oom watchdog restart",
        run: watchdog_restart,
    },
    Behaviour {
        name: "oom reclaim",
        run: reclaim_met,
    },
    Behaviour {
        name: "oom reclaim missed",
        run: reclaim_missed,
    },
    Behaviour {
        name: "oom reclaim liar",
        run: reclaim_liar,
    },
    Behaviour {
        name: "oom rate limit",
        run: rate_limit,
    },
];

fn id(name: &str) -> SubjectId {
    SubjectId::from_name(name)
}

/// Spawns hog `name`, waits until oomd has its first report, gives it [`hog_limits`];
/// returns its pid.
fn start_hog(s: &mut Session, name: &str) -> Result<i32, String> {
    s.forget_exit(name);
    let pid = s.spawn(name)?;
    s.wait_reporting(name)?;
    let limits = hog_limits(s);
    s.set_limits(name, limits)?;
    Ok(pid)
}

/// Waits until oomd confirms the kill of `name` (after `from`) and execd reports its exit;
/// returns the confirmation's index in the session's events.
fn wait_confirmed(s: &mut Session, from: usize, name: &str) -> Result<usize, String> {
    let subject = id(name);
    let confirmed = s.wait_event(
        from,
        &format!("kill of {name}"),
        |k| matches!(k, EventKind::KillConfirmed { subject: x, .. } if *x == subject),
    )?;
    s.wait_exit(name)?;
    Ok(confirmed)
}

/// Waits until oomd confirms the kill of `name` and execd reports its exit; checks that the
/// decision, the request and the confirmation came in that order. Returns the decision's tick.
fn confirmed_kill(s: &mut Session, from: usize, name: &str) -> Result<u64, String> {
    let hard = hog_limits(s).hard_bytes;
    let subject = id(name);
    let confirmed = wait_confirmed(s, from, name)?;
    let events = s.events_since(from);
    let decided = events.iter().position(|e| {
        matches!(e.event.kind, EventKind::KillDecided { subject: x, bytes, .. } if x == subject && bytes >= hard)
    });
    let requested = events.iter().position(
        |e| matches!(e.event.kind, EventKind::KillRequested { subject: x, .. } if x == subject),
    );
    match (decided, requested) {
        (Some(d), Some(r)) if d < r && from + r < confirmed => Ok(events[d].event.tick.0),
        _ => Err(format!(
            "the kill of {name} was not decided, then requested, then confirmed"
        )),
    }
}

fn kill(s: &mut Session) -> Step {
    let from = s.mark()?;
    start_hog(s, "hog")?;
    s.inject("hog", INJECT)?;
    confirmed_kill(s, from, "hog").map(|_| ())
}

fn deny_critical(s: &mut Session) -> Step {
    let name = "critical-hog";
    let from = s.mark()?;
    start_hog(s, name)?;
    s.inject(name, INJECT)?;
    let subject = id(name);
    s.wait_event(
        from,
        "denial of critical-hog",
        |k| matches!(k, EventKind::KillDenied { subject: x, .. } if *x == subject),
    )?;
    // Denied: it is over hard, no termination of it was requested, and execd still runs it.
    let status = s.status(name)?.ok_or("oomd forgot critical-hog")?;
    if status.enforced_bytes < hog_limits(s).hard_bytes {
        return Err(format!(
            "critical-hog is at {} bytes, not over hard",
            status.enforced_bytes
        ));
    }
    let requested = s.events_since(from).iter().any(
        |e| matches!(e.event.kind, EventKind::KillRequested { subject: x, .. } if x == subject),
    );
    if requested {
        return Err("a termination of critical-hog was requested".into());
    }
    if s.service(name)?.pid.is_none() {
        return Err("critical-hog is not running any more".into());
    }
    Ok(())
}

fn reject_spoof(s: &mut Session) -> Step {
    let name = "spoof-hog";
    let from = s.mark()?;
    s.forget_exit(name);
    s.spawn(name)?;
    let subject = id(name);
    s.wait_event(from, "rejection of spoof-hog's frames", |k| {
        matches!(k, EventKind::FrameRejected { sender, reason: Rejection::ClaimMismatch } if *sender == subject)
    })?;
    let status = s.status(name)?.ok_or("oomd does not watch spoof-hog")?;
    if status.reported_bytes.is_some() {
        return Err("a frame of spoof-hog was accepted".into());
    }
    let victim = id("quiet");
    let harmed = s.events_since(from).iter().any(|e| {
        matches!(e.event.kind, EventKind::KillDecided { subject, .. } | EventKind::SoftExceeded { subject, .. } if subject == victim)
    });
    if harmed {
        return Err("the spoofed reports reached quiet".into());
    }
    Ok(())
}

fn flood(s: &mut Session) -> Step {
    let name = "flood-hog";
    let from = s.mark()?;
    s.wait_watched("quiet")?;
    s.forget_exit(name);
    s.spawn(name)?;
    let subject = id(name);
    let over_budget = |k: &EventKind| matches!(k, EventKind::FrameRejected { sender, reason: Rejection::OverBudget } if *sender == subject);
    s.wait_event(from, "over-budget rejection of flood-hog", over_budget)?;
    // The flood is on. quiet's reports must still get through...
    let before = s.status("quiet")?.and_then(|q| q.last_seq).unwrap_or(0);
    let deadline = std::time::Instant::now() + s.settings.step_timeout;
    loop {
        let now_seq = s.status("quiet")?.and_then(|q| q.last_seq).unwrap_or(0);
        if now_seq > before {
            break;
        }
        if std::time::Instant::now() >= deadline {
            return Err("quiet's frames stopped getting through during the flood".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // ... while it is still on: flood-hog is still being refused after quiet got through.
    let after = s.mark()?;
    s.wait_event(
        after,
        "over-budget rejection after quiet's frame got through",
        over_budget,
    )?;
    Ok(())
}

fn underreport(s: &mut Session) -> Step {
    let name = "liar-hog";
    let saved = s.policy()?;
    s.set_policy(oomd::Policy {
        enforce_kernel: true,
        underreport_margin_bytes: 4 * MIB,
        ..saved
    })?;
    let result = (|| {
        let from = s.mark()?;
        start_hog(s, name)?;
        s.inject(name, INJECT)?;
        let subject = id(name);
        s.wait_event(
            from,
            "under-report of liar-hog",
            |k| matches!(k, EventKind::UnderReport { subject: x, .. } if *x == subject),
        )?;
        confirmed_kill(s, from, name).map(|_| ())
    })();
    s.set_policy(saved)?;
    result
}

fn tree_kill(s: &mut Session) -> Step {
    let name = "forker-hog";
    let from = s.mark()?;
    let pid = start_hog(s, name)?;
    let deadline = std::time::Instant::now() + s.settings.step_timeout;
    while group_members(pid).len() < 3 {
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "forker-hog's children never appeared (group {:?})",
                group_members(pid)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    s.inject(name, INJECT)?;
    confirmed_kill(s, from, name)?;
    let left = group_members(pid);
    if !left.is_empty() {
        return Err(format!("processes of forker-hog survived: {left:?}"));
    }
    Ok(())
}

/// A hog whose child left its session and process group (`setsid`) is killed over hard, and
/// when oomd confirms the kill and execd reports the exit, the escaped child is gone too. The
/// child is found before the kill among the descendants of the pid execd reported (the hog in
/// the guest, where the cgroup holds everything; its subreaper shim on a host).
fn escape_kill(s: &mut Session) -> Step {
    let name = "escape-hog";
    let from = s.mark()?;
    let pid = start_hog(s, name)?;
    let deadline = std::time::Instant::now() + s.settings.step_timeout;
    let escaped = loop {
        if let Some(child) = procs::escaped_descendant(pid) {
            break child;
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "escape-hog's child never left its session (tree {:?})",
                procs::descendants(pid)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    s.inject(name, INJECT)?;
    confirmed_kill(s, from, name)?;
    if escaped.is_running() {
        return Err(format!(
            "the kill of escape-hog was confirmed while its escaped child {} still ran",
            escaped.pid
        ));
    }
    Ok(())
}

/// The watchdog is ended in the middle of an incident, through the process authority (the
/// selftest-only `EndWatchdog` request: this client signals nothing): a hog that ignores
/// SIGTERM is over hard, its graceful kill accepted, when oomd dies. execd restarts oomd and
/// tells it the termination is under way; the new oomd adopts it, escalates it, and confirms
/// the kill once the hog is gone. Exactly one confirmed kill for the incident.
fn watchdog_restart(s: &mut Session) -> Step {
    let name = "restart-hog";
    let subject = id(name);
    let from = s.mark()?;
    start_hog(s, name)?;
    s.inject(name, INJECT)?;
    s.wait_event(
        from,
        "the acknowledged kill of restart-hog",
        |k| matches!(k, EventKind::KillAcknowledged { subject: x, .. } if *x == subject),
    )?;
    s.end_watchdog()?;
    s.wait_event(
        from,
        "the kill of restart-hog adopted by the restarted oomd",
        |k| matches!(k, EventKind::KillAdopted { subject: x, acknowledged: true, .. } if *x == subject),
    )?;
    s.wait_event(
        from,
        "the kill of restart-hog",
        |k| matches!(k, EventKind::KillConfirmed { subject: x, .. } if *x == subject),
    )?;
    s.wait_exit(name)?;
    let confirmed = s
        .events_since(from)
        .iter()
        .filter(
            |e| matches!(e.event.kind, EventKind::KillConfirmed { subject: x, .. } if x == subject),
        )
        .count();
    if confirmed != 1 {
        return Err(format!(
            "{confirmed} confirmed kills of restart-hog for one incident"
        ));
    }
    Ok(())
}

/// Two hogs over hard with a budget of one kill per [`RATE_WINDOW`] ticks. `rate-hog-a` is
/// pushed over first and `rate-hog-b` only once a's kill is decided, so that the order of the
/// kills, and of the contract markers, is the same on every boot: a killed, b throttled, then
/// b killed a window later.
fn rate_limit(s: &mut Session) -> Step {
    let saved = s.policy()?;
    s.set_policy(oomd::Policy {
        kill_budget: 1,
        kill_window_ticks: RATE_WINDOW,
        ..saved
    })?;
    let result = (|| {
        let from = s.mark()?;
        start_hog(s, "rate-hog-a")?;
        start_hog(s, "rate-hog-b")?;
        let (a, b) = (id("rate-hog-a"), id("rate-hog-b"));
        s.inject("rate-hog-a", INJECT)?;
        s.wait_event(
            from,
            "the kill decision of rate-hog-a",
            |k| matches!(k, EventKind::KillDecided { subject, .. } if *subject == a),
        )?;
        s.inject("rate-hog-b", INJECT)?;
        s.wait_event(
            from,
            "the throttled kill of rate-hog-b",
            |k| matches!(k, EventKind::KillThrottled { subject, .. } if *subject == b),
        )?;
        let ta = confirmed_kill(s, from, "rate-hog-a")?;
        let tb = confirmed_kill(s, from, "rate-hog-b")?;
        if tb < ta.saturating_add(u64::from(RATE_WINDOW)) {
            return Err(format!(
                "rate-hog-b was decided {} ticks after rate-hog-a with a window of {RATE_WINDOW}",
                tb.saturating_sub(ta)
            ));
        }
        Ok(())
    })();
    s.set_policy(saved)?;
    result
}

/// Runs `body` with reclaim requests on (and kernel figures enforced when `enforce_kernel`),
/// then puts the policy back whatever happened.
fn with_reclaim(
    s: &mut Session,
    enforce_kernel: bool,
    body: impl FnOnce(&mut Session) -> Step,
) -> Step {
    let saved = s.policy()?;
    s.set_policy(oomd::Policy {
        reclaim_target_percent: RECLAIM_PERCENT,
        reclaim_deadline_ticks: RECLAIM_DEADLINE,
        enforce_kernel,
        ..saved
    })?;
    let result = body(s);
    s.set_policy(saved)?;
    result
}

/// Starts reclaim hog `name` with a soft grace of [`RECLAIM_GRACE`], pushes it over soft
/// (below hard), and waits for oomd's request and the hog's acknowledgement, in that order.
/// Returns the request's tick (its id) and target.
fn asked_to_reclaim(s: &mut Session, from: usize, name: &str) -> Result<(u64, u64), String> {
    s.forget_exit(name);
    s.spawn(name)?;
    s.wait_reporting(name)?;
    let limits = Limits {
        soft_grace_ticks: RECLAIM_GRACE,
        ..hog_limits(s)
    };
    s.set_limits(name, limits)?;
    s.inject(name, limits.hard_bytes / 4 * 3)?;
    let subject = id(name);
    let requested = s.wait_event(
        from,
        &format!("the reclaim request to {name}"),
        |k| matches!(k, EventKind::ReclaimRequested { subject: x, .. } if *x == subject),
    )?;
    let acked = s.wait_event(
        from,
        &format!("{name}'s acknowledgement"),
        |k| matches!(k, EventKind::ReclaimAcknowledged { subject: x } if *x == subject),
    )?;
    let events = s.events_since(from);
    let request = &events[requested - from].event;
    let EventKind::ReclaimRequested { target, .. } = request.kind else {
        return Err("not a request".into());
    };
    if target != limits.reclaim_target(RECLAIM_PERCENT) || acked < requested {
        return Err(format!(
            "{name} was asked for {target} bytes (expected {}), acknowledged at #{acked}",
            limits.reclaim_target(RECLAIM_PERCENT)
        ));
    }
    Ok((request.tick.0, target))
}

/// Waits until oomd accepted a frame of `name` at tick `tick` or later: its clock has reached
/// `tick`, so everything due by then has been decided. (The hog heartbeats every second.)
fn wait_frame_at(s: &mut Session, name: &str, tick: u64) -> Step {
    let deadline = std::time::Instant::now() + s.settings.step_timeout;
    loop {
        let st = s
            .status(name)?
            .ok_or_else(|| format!("oomd forgot {name}"))?;
        if st.last_frame_at.is_some_and(|t| t.0 >= tick) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline || !st.running {
            return Err(format!(
                "no frame of {name} accepted at tick {tick} or later: {st:?}"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A missed reclaim ends in a confirmed kill for the soft grace, decided at the deadline or
/// later, never before; checks the order miss → decision → confirmation.
fn killed_after_missing(s: &mut Session, from: usize, name: &str, asked_at: u64) -> Step {
    let subject = id(name);
    let confirmed = wait_confirmed(s, from, name)?;
    let events = s.events_since(from);
    let at = |want: &dyn Fn(&EventKind) -> bool| events.iter().position(|e| want(&e.event.kind));
    let missed = at(&|k| matches!(k, EventKind::ReclaimMissed { subject: x, .. } if *x == subject));
    let decided = at(
        &|k| matches!(k, EventKind::KillDecided { subject: x, reason: oomd::KillReason::SoftGrace, .. } if *x == subject),
    );
    match (missed, decided) {
        (Some(m), Some(d)) if m < d && from + d < confirmed => {
            let tick = events[d].event.tick.0;
            let deadline = asked_at + u64::from(RECLAIM_DEADLINE);
            if tick < deadline {
                return Err(format!(
                    "{name} was killed at tick {tick}, before its reclaim deadline {deadline}"
                ));
            }
            Ok(())
        }
        _ => Err(format!(
            "{name}'s reclaim was not missed, then a soft-grace kill decided, then confirmed"
        )),
    }
}

/// `reclaim-hog` (cooperative) is asked, frees down to the target, and is not killed: its
/// reclaim is met, its incident ends, no kill of it is decided (even once its soft grace has
/// long passed), and execd still runs it.
fn reclaim_met(s: &mut Session) -> Step {
    let name = "reclaim-hog";
    with_reclaim(s, false, |s| {
        let from = s.mark()?;
        let (asked_at, target) = asked_to_reclaim(s, from, name)?;
        let subject = id(name);
        let met = s.wait_event(
            from,
            "reclaim-hog's met reclaim",
            |k| matches!(k, EventKind::ReclaimMet { subject: x, .. } if *x == subject),
        )?;
        let met_bytes = match s.events_since(from)[met - from].event.kind {
            EventKind::ReclaimMet { bytes, .. } => bytes,
            _ => u64::MAX,
        };
        if met_bytes > target {
            return Err(format!(
                "met at {met_bytes} bytes, above the target {target}"
            ));
        }
        // Past the end of the soft grace (the kill a reclaim-less oomd would have decided) and
        // past the reclaim deadline (a missed reclaim's).
        wait_frame_at(
            s,
            name,
            asked_at + u64::from(RECLAIM_DEADLINE) + RECLAIM_GRACE,
        )?;
        let killed = s.events_since(from).iter().any(
            |e| matches!(e.event.kind, EventKind::KillDecided { subject: x, .. } if x == subject),
        );
        if killed {
            return Err("a kill of reclaim-hog was decided".into());
        }
        let status = s.status(name)?.ok_or("oomd forgot reclaim-hog")?;
        if status.over_soft_since.is_some() || status.enforced_bytes > target {
            return Err(format!("reclaim-hog is still in its incident: {status:?}"));
        }
        if s.service(name)?.pid.is_none() {
            return Err("reclaim-hog is not running any more".into());
        }
        Ok(())
    })
}

/// `reclaim-stubborn-hog` acknowledges and frees nothing: its reclaim is missed at the
/// deadline and it is killed for its soft grace then, not before.
fn reclaim_missed(s: &mut Session) -> Step {
    let name = "reclaim-stubborn-hog";
    with_reclaim(s, false, |s| {
        let from = s.mark()?;
        let (asked_at, _) = asked_to_reclaim(s, from, name)?;
        killed_after_missing(s, from, name, asked_at)
    })
}

/// `reclaim-liar-hog` acknowledges and reports the target while keeping every byte: with
/// kernel figures enforced, its reclaim is missed on the kernel figure and it is killed.
fn reclaim_liar(s: &mut Session) -> Step {
    let name = "reclaim-liar-hog";
    with_reclaim(s, true, |s| {
        let from = s.mark()?;
        let (asked_at, target) = asked_to_reclaim(s, from, name)?;
        // The lie is seen: a report at or below the target while the kernel charges more.
        let deadline = std::time::Instant::now() + s.settings.step_timeout;
        loop {
            let st = s.status(name)?.ok_or("oomd forgot reclaim-liar-hog")?;
            if st.reported_bytes.is_some_and(|r| r <= target)
                && st.kernel_bytes.is_some_and(|k| k > target)
            {
                break;
            }
            if std::time::Instant::now() >= deadline || !st.running {
                return Err(format!("the liar's report and kernel figure: {st:?}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        killed_after_missing(s, from, name, asked_at)
    })
}
