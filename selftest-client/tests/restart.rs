//! A watchdog that survives its own death, on real processes: execd (process-group mode), the
//! oomd service with its audit log, and a hog fixture, all started by this test. oomd is
//! killed (`SIGKILL`) or stopped (`SIGSTOP`) at each point of an incident; each time execd
//! restarts it, protection resumes, the hog is ended once, and there is exactly one kill
//! marker per incident. To hit the points between a request and its answer, and during an
//! escalation, the test stops execd itself (`SIGSTOP`) while it kills oomd: execd then reads
//! the dead oomd's last request when it continues.
//!
//! Only processes this test started are signalled: execd (its child), and oomd (execd's
//! service: a descendant of the execd this test started, checked by its executable and its
//! ancestry before each signal). Every wait is bounded; the hog ends by itself after 30 s.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{build, start_execd, Execd};
use rustix::process::{kill_process, Pid, Signal};

const MIB: u64 = 1 << 20;

const POLICY: &str = r#"
[policy]
sample_period_ms = 20
kill_budget = 4
kill_window_ticks = 3000

[service.hog]
soft_bytes = "8 MiB"
hard_bytes = "16 MiB"
soft_grace_ticks = 0
exit_deadline_ticks = 25
"#;

/// One edge: execd with oomd and a hog, in a directory of its own.
struct Edge {
    dir: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    execd: Execd,
    /// Removes `dir` once execd (dropped before it) and its services are gone.
    _scratch: tempfile::TempDir,
}

impl Edge {
    fn start(bin: &Path, tag: &str, policy: &str, hog_args: &[&str]) -> Edge {
        let scratch = tempfile::Builder::new()
            .prefix(&format!("oomd-restart-{tag}-"))
            .tempdir()
            .expect("temp dir");
        let dir = scratch.path().to_owned();
        std::fs::write(dir.join("policy.toml"), policy).expect("policy");
        let (b, d) = (bin.display(), dir.display());
        let extra: String = hog_args.iter().map(|a| format!(", \"{a}\"")).collect();
        let manifest = format!(
            r#"
[[service]]
name = "oomd"
argv = ["{b}/oomd", "--policy", "{d}/policy.toml", "--socket", "{d}/oomd.sock",
        "--audit-log", "{d}/audit.jsonl", "--log", "json"]
role = "watchdog"
memstat = false

[[service]]
name = "hog"
argv = ["{b}/hog-fixture", "--control", "{d}/hog.sock", "--grow-on-inject", "--chunk", "1MiB",
        "--max", "48MiB", "--lifetime-ms", "30000", "--linger-ms", "30000"{extra}]
start = false
"#
        );
        std::fs::write(dir.join("manifest.toml"), manifest).expect("manifest");
        let (execd, log) = start_execd(bin, &dir);
        let edge = Edge {
            dir,
            log,
            bin: bin.to_owned(),
            execd,
            _scratch: scratch,
        };
        edge.wait_lines("oomd: ready", 1);
        edge
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Lines that start with `prefix`: oomd's markers (its audit log on stderr is JSON
    /// here, so each marker starts a line once, on stdout) and execd's lines.
    fn count(&self, prefix: &str) -> usize {
        self.text()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// Waits (at most 20 s) until `count` lines start with `prefix`; returns how long it took.
    fn wait_lines(&self, prefix: &str, count: usize) -> Duration {
        let start = Instant::now();
        loop {
            if self.count(prefix) >= count {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "never {count} lines starting with {prefix:?}\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until oomd's JSON audit trail on stderr has logged `words` (its `line` field).
    fn wait_event(&self, words: &str) {
        let needle = format!("\"line\":\"{words}");
        let start = Instant::now();
        while !self.text().contains(&needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "oomd never logged {words:?}\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until oomd noted `words` (a `note` line of its JSON trail).
    fn wait_note(&self, words: &str) {
        let needle = format!("{{\"note\":\"{words}");
        let start = Instant::now();
        while !self.text().contains(&needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "oomd never noted {words:?}\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn spawn_hog(&self) {
        let mut client = oomd_proto::client::Client::connect(
            &self.dir.join("execd.sock"),
            Duration::from_secs(5),
        )
        .expect("execd's control socket");
        let replies = client
            .execd(&oomd_proto::ExecdRequest::Spawn {
                name: oomd_proto::name("hog").expect("short"),
            })
            .expect("spawn");
        assert!(
            matches!(replies.as_slice(), [oomd_proto::ExecdReply::Spawned { .. }]),
            "{replies:?}"
        );
        self.wait_event("oomd: register app=hog");
        // Its first frame, before it grows: it is then judged on its reports.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn grow_hog(&self, bytes: u64) {
        let socket = UnixDatagram::unbound().expect("socket");
        let deadline = Instant::now() + Duration::from_secs(5);
        while socket
            .send_to(
                format!("grow {bytes}").as_bytes(),
                self.dir.join("hog.sock"),
            )
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the hog's control socket never came"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The running oomd: the child of the newest shim execd started for it, checked to run
    /// this test's oomd binary.
    fn oomd_pid(&self) -> i32 {
        let shim: i32 = self
            .text()
            .lines()
            .filter_map(|l| l.strip_prefix("execd: started oomd pid="))
            .next_back()
            .and_then(|p| p.trim().parse().ok())
            .expect("execd started oomd");
        let children = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children"))
            .expect("the shim's children");
        let pid: i32 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the shim has a child");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(
            exe,
            self.bin.join("oomd"),
            "pid {pid} is not this test's oomd"
        );
        pid
    }

    fn signal_oomd(&self, sig: Signal) {
        let pid = self.oomd_pid();
        let pid = Pid::from_raw(pid).expect("oomd's pid is not 0");
        kill_process(pid, sig).expect("signal oomd");
    }

    fn signal_execd(&self, sig: Signal) {
        let pid = Pid::from_raw(self.execd.0.id() as i32).expect("execd's pid is not 0");
        kill_process(pid, sig).expect("signal execd");
    }

    /// Exactly one kill marker for the hog's incident, the hog ended once, and nothing failed.
    fn assert_one_kill(&self) {
        self.wait_lines("oomd: kill app=hog bytes=", 1);
        self.wait_lines("execd: hog exited", 1);
        // Give a double confirmation a chance to show.
        std::thread::sleep(Duration::from_millis(300));
        let text = self.text();
        assert_eq!(self.count("oomd: kill app=hog bytes="), 1, "{text}");
        assert_eq!(self.count("execd: hog exited"), 1, "{text}");
        assert!(!text.contains("FAIL"), "{text}");
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // A stopped execd cannot stop its services: let it go on before it is told to stop.
        self.signal_execd(Signal::CONT);
    }
}

/// All the scenarios one after the other, on one build.
#[test]
fn the_watchdog_survives_its_own_death_at_every_point_of_an_incident() {
    let bin = build();

    // SIGKILL while idle: restarted, and protection resumes.
    let edge = Edge::start(&bin, "idle", POLICY, &[]);
    edge.spawn_hog();
    let killed = Instant::now();
    edge.signal_oomd(Signal::KILL);
    edge.wait_lines("execd: watchdog restarted (n=1)", 1);
    edge.wait_lines("oomd: ready", 2);
    let resumed = killed.elapsed();
    edge.grow_hog(32 * MIB);
    edge.assert_one_kill();
    println!(
        "idle: protection resumed {} ms after SIGKILL",
        resumed.as_millis()
    );
    assert!(resumed < Duration::from_secs(5), "{resumed:?}");
    drop(edge);

    // SIGKILL between the request and execd's answer.
    let edge = Edge::start(&bin, "request", POLICY, &[]);
    edge.spawn_hog();
    edge.signal_execd(Signal::STOP);
    edge.grow_hog(32 * MIB);
    edge.wait_note("oomd: request ticket=1 sent to execd");
    edge.signal_oomd(Signal::KILL);
    edge.signal_execd(Signal::CONT);
    edge.assert_one_kill();
    assert!(edge
        .text()
        .contains("\"line\":\"oomd: kill adopted app=hog"));
    drop(edge);

    // SIGKILL between the answer and the exit (the hog ignores SIGTERM): the new oomd adopts
    // the accepted kill and escalates it.
    let edge = Edge::start(&bin, "answer", POLICY, &["--ignore-sigterm"]);
    edge.spawn_hog();
    edge.grow_hog(32 * MIB);
    edge.wait_event("oomd: kill acknowledged app=hog");
    edge.signal_oomd(Signal::KILL);
    edge.assert_one_kill();
    let text = edge.text();
    assert!(text.contains("(acknowledged)\""), "{text}");
    assert!(
        text.contains("\"line\":\"oomd: kill escalated app=hog"),
        "{text}"
    );
    drop(edge);

    // SIGKILL during the escalation: the forced request is out, execd has not read it.
    let edge = Edge::start(&bin, "escalation", POLICY, &["--ignore-sigterm"]);
    edge.spawn_hog();
    edge.grow_hog(32 * MIB);
    edge.wait_event("oomd: kill acknowledged app=hog");
    edge.signal_execd(Signal::STOP);
    edge.wait_event("oomd: kill escalated app=hog");
    edge.wait_note("oomd: request ticket=2 sent to execd");
    edge.signal_oomd(Signal::KILL);
    edge.signal_execd(Signal::CONT);
    edge.assert_one_kill();
    drop(edge);

    // SIGSTOP: no more heartbeats; execd ends the wedged watchdog and restarts it.
    let edge = Edge::start(&bin, "stopped", POLICY, &[]);
    edge.spawn_hog();
    let stopped = Instant::now();
    edge.signal_oomd(Signal::STOP);
    edge.wait_lines("execd: watchdog wedged: no heartbeat for", 1);
    edge.wait_lines("oomd: ready", 2);
    let resumed = stopped.elapsed();
    edge.grow_hog(32 * MIB);
    edge.assert_one_kill();
    println!(
        "stopped: protection resumed {} ms after SIGSTOP",
        resumed.as_millis()
    );
    assert!(resumed < Duration::from_secs(5), "{resumed:?}");
    drop(edge);

    // The kill budget counts the kills before the restart: one kill per window.
    let one_kill = POLICY.replace("kill_budget = 4", "kill_budget = 1");
    let edge = Edge::start(&bin, "budget", &one_kill, &[]);
    edge.spawn_hog();
    edge.grow_hog(32 * MIB);
    edge.assert_one_kill();
    edge.signal_oomd(Signal::KILL);
    edge.wait_lines("oomd: ready", 2);
    edge.spawn_hog();
    edge.grow_hog(32 * MIB);
    edge.wait_event("oomd: kill throttled app=hog");
    assert_eq!(
        edge.count("oomd: kill app=hog bytes="),
        1,
        "{}",
        edge.text()
    );
}
