//! oomctl against a real oomd service (in-process, on a thread) and against nothing at all.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memstat::SubjectId;
use oomd::{Limits, Policy, SubjectClass};
use oomd_proto::admission::SocketAccess;
use oomd_proto::{FromAuthority, ToAuthority};
use oomd_service::{LogFormat, Options, Service};

struct Running {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    execd: OwnedFd,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An oomd service with one registered subject "hog", serving on `<dir>/oomd.sock`.
fn start(tag: &str) -> Running {
    start_with(tag, SocketAccess::default())
}

/// The same, with the control socket file made as `access` says.
fn start_with(tag: &str, access: SocketAccess) -> Running {
    let dir = std::env::temp_dir().join(format!("oomctl-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (svc_end, execd) = oomd_proto::seqpacket_pair().expect("socketpair");
    let policy = Policy {
        limits: Limits {
            soft_bytes: 1_000,
            hard_bytes: 2_000,
            ..Policy::default().limits
        },
        sample_period_ms: 10,
        ..Policy::default()
    };
    let opts = Options {
        policy_file: Some(dir.join("policy.toml")),
        policy: oomd_proto::PolicyDocument {
            global: Some(policy),
            services: heapless::Vec::new(),
        },
        control_access: access,
        control_group: None,
        control_idle_timeout: oomd_service::DEFAULT_IDLE_TIMEOUT,
        control_socket: dir.join("oomd.sock"),
        cgroup_root: "/nonexistent".into(),
        inject_dir: dir.join("inject"),
        log: LogFormat::None,
        record: None,
        audit: None,
    };
    let mut svc = Service::new(opts, svc_end).expect("service starts");
    announce(&execd, "hog");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            svc.step(10).expect("service step");
        }
    });
    Running {
        dir,
        stop,
        thread: Some(thread),
        execd,
    }
}

/// Plays execd: tells the service that `name` started (with a memstat channel nobody writes).
fn announce(execd: &OwnedFd, name: &str) {
    drop(announce_with_channel(execd, name));
}

/// The same; returns the service's end of its memstat channel.
fn announce_with_channel(execd: &OwnedFd, name: &str) -> OwnedFd {
    let (oomd_end, service_end) = oomd_proto::seqpacket_pair().expect("socketpair");
    let started = FromAuthority::Started {
        subject: SubjectId::from_name(name),
        name: oomd_proto::name(name).expect("short"),
        class: SubjectClass::Standard,
        critical: false,
        pid: i32::MAX,
        cgroup: None,
    };
    let mut buf = [0; oomd_proto::MAX_MESSAGE_LEN];
    let bytes = oomd_proto::encode(&started, &mut buf).expect("fits");
    oomd_proto::send(execd.as_fd(), bytes, &[oomd_end.as_fd()]).expect("sent");
    service_end
}

fn oomctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oomctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("oomctl runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// "big" starts, sends one frame over hard (2000 bytes), and is killed: the test plays execd,
/// accepts the request and reports the exit.
fn kill_big(oomd: &Running) {
    let channel = announce_with_channel(&oomd.execd, "big");
    // One frame over hard (2000 bytes): decided and requested in that input.
    let frame = memstat::Frame {
        seq: 0,
        current_bytes: 5_000,
        peak_bytes: 5_000,
        claimed_subject: None,
    };
    let mut bytes = [0u8; memstat::MAX_FRAME_LEN];
    let n = frame.encode(&mut bytes).expect("fits");
    oomd_proto::send(channel.as_fd(), &bytes[..n], &[]).expect("sent");

    // Play execd: take the request, accept it, report the exit.
    oomd_proto::set_nonblocking(&oomd.execd).expect("nonblocking");
    let mut rx = oomd_proto::Receiver::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let request = loop {
        match rx.recv_msg::<ToAuthority>(oomd.execd.as_fd()) {
            Ok((ToAuthority::Terminate(request), _)) => break request,
            Ok(_) => {}
            Err(e) if e.is_would_block() => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no termination request"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("authority channel: {e}"),
        }
    };
    let mut buf = [0; oomd_proto::MAX_MESSAGE_LEN];
    for msg in [
        FromAuthority::Answer {
            ticket: request.ticket,
            answer: oomd::Answer::Accepted,
        },
        FromAuthority::Exited {
            subject: SubjectId::from_name("big"),
            status: oomd_proto::ExitStatus::Signal(15),
        },
    ] {
        let bytes = oomd_proto::encode(&msg, &mut buf).expect("fits");
        oomd_proto::send(oomd.execd.as_fd(), bytes, &[]).expect("sent");
    }
}

#[test]
fn events_show_each_confirmed_kill_with_its_kill_report() {
    let oomd = start("report");
    let socket = oomd.dir.join("oomd.sock");
    kill_big(&oomd);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);

    // The confirmed kill, then its report on the next line, with the kill's tick and number.
    let events = loop {
        let out = oomctl(&socket, &["events"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let events = text(&out.stdout);
        if events.contains("oomd: kill report") {
            break events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no kill report\n{events}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let lines: Vec<&str> = events.lines().collect();
    let kill = lines
        .iter()
        .position(|l| l.ends_with("oomd: kill app=big bytes=5000"))
        .expect("the kill line");
    let prefix = lines[kill].split(" oomd: ").next().expect("t=.. #..");
    let report = lines[kill + 1];
    assert!(
        report.starts_with(&format!(
            "{prefix} oomd: kill report app=big reason=hard-limit bytes=5000 peak=5000 \
             hard=2000 overshoot=3000 cross_to_request=0t/"
        )),
        "{events}"
    );
    assert!(report.ends_with("escalated=no"), "{report}");

    // And as JSON, the report with its line.
    let out = oomctl(&socket, &["events", "--json"]);
    assert!(out.status.success());
    let json = text(&out.stdout);
    let record = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.get("report").is_some())
        .expect("a report record");
    assert_eq!(record["report"]["bytes"], 5_000);
    assert_eq!(record["report"]["hard"], 2_000);
    assert!(record["line"]
        .as_str()
        .is_some_and(|l| l.starts_with("oomd: kill report app=big")));
}

#[test]
fn status_json_has_every_subject_and_the_counters() {
    let oomd = start("json");
    let socket = oomd.dir.join("oomd.sock");
    let out = oomctl(&socket, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let hog = doc["subjects"]
        .as_array()
        .and_then(|s| s.iter().find(|v| v["name"] == "hog"))
        .expect("hog in subjects");
    assert_eq!(hog["status"]["limits"]["hard_bytes"], 2_000);
    assert_eq!(hog["status"]["running"], true);
    assert!(
        doc["counters"]["events_logged"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{doc}"
    );
}

#[test]
fn top_without_a_terminal_prints_one_table_after_another_with_the_kills() {
    let oomd = start("top");
    let socket = oomd.dir.join("oomd.sock");
    kill_big(&oomd);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let out = loop {
        let out = oomctl(&socket, &["top", "--count", "2", "--interval-ms", "100"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = text(&out.stdout);
        let big = out
            .lines()
            .find(|l| l.starts_with("big "))
            .unwrap_or("")
            .to_owned();
        if big.contains("exited") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "big never exited\n{out}"
        );
    };
    let tables: Vec<&str> = out.split("--- ").filter(|t| !t.is_empty()).collect();
    assert_eq!(tables.len(), 2, "{out}");
    for (n, table) in tables.iter().enumerate() {
        assert!(table.starts_with(&format!("{}\n", n + 1)), "{table}");
        assert!(table.contains(" KILLS  STATE"), "{table}");
        let big = table.lines().find(|l| l.starts_with("big ")).expect("big");
        let hog = table.lines().find(|l| l.starts_with("hog ")).expect("hog");
        let kills = |l: &str| l.split_whitespace().nth(6).map(str::to_owned);
        assert_eq!(kills(big).as_deref(), Some("1"), "{big}");
        assert_eq!(kills(hog).as_deref(), Some("0"), "{hog}");
        assert!(table.contains("frames rejected:"), "{table}");
    }
}

#[test]
fn top_on_a_terminal_redraws_in_place_and_quits_on_q() {
    // A pseudo-terminal through util-linux's `script` (bsdutils, essential on Debian): stdin
    // and stdout of oomctl are the terminal, and what the test writes reaches it as keys.
    use std::io::Write as _;
    let oomd = start("top-tty");
    let socket = oomd.dir.join("oomd.sock");
    let command = format!(
        "{} --socket {} top --interval-ms 100",
        env!("CARGO_BIN_EXE_oomctl"),
        socket.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    std::thread::sleep(std::time::Duration::from_millis(600));
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"q")
        .expect("a key");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oomctl top did not quit on q");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().expect("stdout"), &mut out).expect("read");
    let out = text(&out);
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("\x1b[H\x1b[2J"), "no redraw in place:\n{out}");
    assert!(out.contains("q quits"), "{out}");
    assert!(!out.contains("--- 1"), "{out}");
}

#[test]
fn top_refuses_an_interval_out_of_range() {
    let out = oomctl(
        Path::new("/nonexistent/oomd.sock"),
        &["top", "--interval-ms", "5"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--interval-ms"),
        "{}",
        text(&out.stderr)
    );
}

/// The hard limit of `name` in `oomctl status`.
fn hard_of(socket: &Path, name: &str) -> String {
    let out = text(&oomctl(socket, &["status"]).stdout);
    out.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap_or_else(|| panic!("no {name} in\n{out}"))
        .to_owned()
}

#[test]
fn policy_reload_makes_the_file_the_policy_or_changes_nothing() {
    let oomd = start("reload");
    let socket = oomd.dir.join("oomd.sock");
    let file = oomd.dir.join("policy.toml"); // the service's policy_file
    let reload = || oomctl(&socket, &["policy", "reload"]);

    // No file yet: refused, with the reason, and nothing changes.
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot use its policy file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hard_of(&socket, "hog"), "2000");

    std::fs::write(
        &file,
        "[policy]\nhard_bytes = 4096\nsoft_bytes = 3000\n[service.hog]\nhard_bytes = 9000\nsoft_bytes = 10\n",
    )
    .expect("write");
    let out = reload();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(hard_of(&socket, "hog"), "9000");
    let policy = text(&oomctl(&socket, &["policy", "get"]).stdout);
    assert!(
        policy.contains("[policy]\nsoft_bytes = 3000\nhard_bytes = 4096"),
        "{policy}"
    );

    // The file drops hog's table: hog goes back to the global limits (a reload is the file,
    // not a patch on top of what was there).
    std::fs::write(&file, "[policy]\nhard_bytes = 5000\nsoft_bytes = 3000\n").expect("write");
    assert!(reload().status.success());
    assert_eq!(hard_of(&socket, "hog"), "5000");

    // One bad key: refused by name, nothing of the file applied.
    std::fs::write(
        &file,
        "[policy]\nhard_bytes = 6000\nsoft_bytes = 3000\n[service.hog]\nsoft_bytes = 900\nhard_bytes = 800\n",
    )
    .expect("write");
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("service.hog.soft_bytes"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hard_of(&socket, "hog"), "5000");
    let policy = text(&oomctl(&socket, &["policy", "get"]).stdout);
    assert!(policy.contains("hard_bytes = 5000"), "{policy}");

    // A file that does not parse: the same.
    std::fs::write(&file, "[policy]\nhard_bytes = \"a lot\"\n").expect("write");
    let out = reload();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("hard_bytes"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hard_of(&socket, "hog"), "5000");

    // A FIFO in the file's place (nobody writes to it): refused without being read, so the
    // loop does not hang on it, and the next request is answered.
    std::fs::remove_file(&file).expect("rm");
    let made = Command::new("mkfifo")
        .arg(&file)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let out = reload();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot use its policy file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(hard_of(&socket, "hog"), "5000");
}

#[test]
fn status_events_and_policy_against_a_running_service() {
    let oomd = start("ok");
    let socket = oomd.dir.join("oomd.sock");

    let out = oomctl(&socket, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&out.stdout);
    assert!(status.starts_with("SUBJECT"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("hog") && l.contains("2000") && l.ends_with("ok")),
        "{status}"
    );

    let out = oomctl(&socket, &["events"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("#0 oomd: register app=hog class=standard critical=no"));

    let out = oomctl(&socket, &["policy", "get"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("hard_bytes = 2000"));

    let file = oomd.dir.join("p.toml");
    std::fs::write(
        &file,
        "[policy]\nhard_bytes = 4096\nsoft_bytes = 3000\n[service.hog]\nhard_bytes = 9000\n",
    )
    .expect("write");
    let out = oomctl(&socket, &["policy", "set", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = oomctl(&socket, &["status"]);
    assert!(text(&out.stdout)
        .lines()
        .any(|l| l.starts_with("hog") && l.contains("9000")));

    // A file of service tables only leaves the global policy alone.
    let only_hog = oomd.dir.join("hog.toml");
    std::fs::write(
        &only_hog,
        "[service.hog]\nhard_bytes = 7000\nsoft_bytes = 10\n",
    )
    .expect("write");
    let out = oomctl(
        &socket,
        &["policy", "set", only_hog.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = oomctl(&socket, &["policy", "get"]);
    assert!(
        text(&out.stdout).contains("hard_bytes = 4096"),
        "{}",
        text(&out.stdout)
    );

    let bad = oomd.dir.join("bad.toml");
    std::fs::write(&bad, "[policy]\nkill_budget = 0\n").expect("write");
    let out = oomctl(&socket, &["policy", "set", bad.to_str().expect("utf-8")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a file the parser refuses is bad usage"
    );
    assert!(
        text(&out.stderr).contains("kill_budget"),
        "{}",
        text(&out.stderr)
    );

    let out = oomctl(&socket, &["inject", "hog", "1MiB"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("selftest builds"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_service_is_reported_clearly() {
    let out = oomctl(Path::new("/nonexistent/oomd.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("nothing is listening at /nonexistent/oomd.sock"),
        "{err}"
    );
    assert!(err.contains("is the service running?"), "{err}");
}

// ----- hostile callers ---------------------------------------------------------------------

/// Waits until `oomctl status` shows a line for `name` that contains `needle`.
fn wait_status(socket: &Path, name: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = text(&oomctl(socket, &["status"]).stdout);
        if out
            .lines()
            .any(|l| l.starts_with(name) && l.contains(needle))
        {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {name} line with {needle:?}:\n{out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn limits_for_a_service_that_is_not_running_are_kept_until_it_starts() {
    let oomd = start("later");
    let socket = oomd.dir.join("oomd.sock");
    let file = oomd.dir.join("p.toml");
    std::fs::write(
        &file,
        "[policy]\nkill_budget = 3\n[service.later]\nhard_bytes = 7777\nsoft_bytes = 10\n",
    )
    .expect("write");
    let out = oomctl(&socket, &["policy", "set", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&oomctl(&socket, &["policy", "get"]).stdout);
    assert!(got.contains("kill_budget = 3"), "{got}");
    assert!(
        got.contains("[service.later]\nsoft_bytes = 10\nhard_bytes = 7777"),
        "{got}"
    );
    announce(&oomd.execd, "later");
    wait_status(&socket, "later", "7777");
}

#[test]
fn a_document_the_service_refuses_changes_nothing_and_names_the_service() {
    let oomd = start("atomic");
    let socket = oomd.dir.join("oomd.sock");
    let before = text(&oomctl(&socket, &["policy", "get"]).stdout);
    // A valid [policy] table and one service table too many for the override table: the
    // parser accepts it, the service refuses it as a whole.
    let mut file_text = String::from("[policy]\nkill_budget = 7\n");
    for i in 0..oomd::bounds::MAX_OVERRIDES {
        file_text.push_str(&format!(
            "[service.svc-{i:02}]\nhard_bytes = 5000\nsoft_bytes = 10\n"
        ));
    }
    let fill = oomd.dir.join("fill.toml");
    std::fs::write(&fill, &file_text).expect("write");
    let out = oomctl(&socket, &["policy", "set", fill.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let one_more = oomd.dir.join("more.toml");
    std::fs::write(
        &one_more,
        "[policy]\nkill_budget = 1\n[service.straw]\nhard_bytes = 5000\nsoft_bytes = 10\n",
    )
    .expect("write");
    let out = oomctl(
        &socket,
        &["policy", "set", one_more.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "policy refused, nothing applied: service.straw: subject cannot have its own limits"
        ),
        "{err}"
    );
    let after = text(&oomctl(&socket, &["policy", "get"]).stdout);
    assert!(
        after.contains("kill_budget = 7"),
        "the [policy] table was applied: {after}"
    );
    assert!(!after.contains("straw"), "{after}");
    assert_ne!(before, after);
}

#[test]
fn oversized_and_fifo_policy_files_are_refused_by_oomctl() {
    let oomd = start("files");
    let socket = oomd.dir.join("oomd.sock");
    let out = oomctl(&socket, &["policy", "set", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a device, not a regular file"));
    let fifo = oomd.dir.join("p.fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RWXU).expect("mkfifo");
    let out = oomctl(&socket, &["policy", "set", fifo.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a FIFO, not a regular file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_gets_through_while_100_idle_connections_are_held() {
    let oomd = start("held");
    let socket = oomd.dir.join("oomd.sock");
    let held: Vec<OwnedFd> = (0..100)
        .map(|_| oomd_proto::connect(&socket).expect("connect"))
        .collect();
    for _ in 0..3 {
        let out = oomctl(&socket, &["status"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).lines().any(|l| l.starts_with("hog")));
    }
    // The counters say what happened to the idle ones.
    let status = text(&oomctl(&socket, &["status"]).stdout);
    let evicted = status
        .lines()
        .find_map(|l| l.strip_prefix("control: "))
        .and_then(|l| l.split(" refused (busy), ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("a control counters line");
    assert!(
        evicted >= 100 - oomd_service::MAX_CLIENTS as u64,
        "{status}"
    );
    drop(held);
}

#[test]
fn oomctl_at_execds_socket_is_told_it_is_not_an_oomd_socket() {
    let dir = tempfile::tempdir().expect("dir");
    let socket = dir.path().join("execd.sock");
    let mut options = execd::Options::new();
    options.socket = Some(socket.clone());
    let (log, lines) = execd::Log::memory();
    options.log = log;
    let manifest = execd::Manifest::parse("").expect("empty manifest");
    let mut execd = execd::Execd::new(manifest, options).expect("execd");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let _ = execd.run_until(|_| flag.load(Ordering::SeqCst));
    });
    let out = oomctl(&socket, &["status"]);
    stop.store(true, Ordering::SeqCst);
    let _ = thread.join();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("is not an oomd socket: it answers in execd's control protocol"),
        "{err}"
    );
    assert!(lines.contains("speaks oomd's control protocol: not an execd socket for it"));
}
