//! oomctl against a real oomd service (in-process, on a thread) and against nothing at all.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memstat::SubjectId;
use oomd::{Limits, Policy, SubjectClass};
use oomd_proto::FromAuthority;
use oomd_service::{LogFormat, Options, Service};

struct Running {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _execd: std::os::fd::OwnedFd,
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
        policy: oomd_proto::PolicyDocument {
            global: Some(policy),
            services: heapless::Vec::new(),
        },
        control_access: oomd_proto::admission::SocketAccess::default(),
        control_group: None,
        control_idle_timeout: oomd_service::DEFAULT_IDLE_TIMEOUT,
        control_socket: dir.join("oomd.sock"),
        cgroup_root: "/nonexistent".into(),
        inject_dir: dir.join("inject"),
        log: LogFormat::None,
        record: None,
    };
    let mut svc = Service::new(opts, svc_end).expect("service starts");
    let (oomd_end, _service_end) = oomd_proto::seqpacket_pair().expect("socketpair");
    let started = FromAuthority::Started {
        subject: SubjectId::from_name("hog"),
        name: oomd_proto::name("hog").expect("short"),
        class: SubjectClass::Standard,
        critical: false,
        pid: i32::MAX,
        cgroup: None,
    };
    let mut buf = [0; oomd_proto::MAX_MESSAGE_LEN];
    let bytes = oomd_proto::encode(&started, &mut buf).expect("fits");
    oomd_proto::send(execd.as_fd(), bytes, &[oomd_end.as_raw_fd()]).expect("sent");
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
        _execd: execd,
    }
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
