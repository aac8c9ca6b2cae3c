//! A local user who is not the operator cannot switch the watchdog off, whatever the umask.
//!
//! Its own test binary: it sets the process umask to `000`, which must not leak into tests
//! running beside it. Acting as another user needs root (as CI runs); run as anyone else, the
//! test checks the rule on the credentials the kernel would report instead.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memstat::SubjectId;
use oomd::{Policy, SubjectClass};
use oomd_proto::admission::{Access, PeerCred, SocketAccess};
use oomd_proto::FromAuthority;
use oomd_service::{LogFormat, Options, Service};

const NOBODY: u32 = 65534;

struct Running {
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
    }
}

fn start(socket: &Path, access: SocketAccess) -> Running {
    let (svc_end, execd) = oomd_proto::seqpacket_pair().expect("socketpair");
    let opts = Options {
        policy_file: None,
        policy: oomd_proto::PolicyDocument {
            global: Some(Policy::default()),
            services: heapless::Vec::new(),
        },
        control_socket: socket.to_owned(),
        control_access: access,
        control_group: None,
        control_idle_timeout: oomd_service::DEFAULT_IDLE_TIMEOUT,
        cgroup_root: "/nonexistent".into(),
        inject_dir: "/nonexistent".into(),
        log: LogFormat::None,
        record: None,
        audit: None,
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
    oomd_proto::send(execd.as_fd(), bytes, &[oomd_end.as_fd()]).expect("sent");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            svc.step(10).expect("service step");
        }
    });
    Running {
        stop,
        thread: Some(thread),
        _execd: execd,
    }
}

fn oomctl_as(uid: u32, socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oomctl"))
        .uid(uid)
        .gid(uid)
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
fn nobody_cannot_switch_the_watchdog_off_even_under_umask_000() {
    if !rustix::process::geteuid().is_root() {
        // Without root this process cannot act as another user. The rule it would exercise:
        // a caller who is not root, not oomd's user and not in its group may not change a thing.
        let access = Access::for_this_process(None);
        let stranger = PeerCred {
            pid: 1,
            uid: access.owner_uid.wrapping_add(1).max(1),
            gid: NOBODY,
        };
        assert!(!access.permits(&stranger));
        eprintln!("not root: checked the credential rule only; CI runs the full test as root");
        return;
    }
    let dir = std::env::temp_dir().join(format!("oomctl-hijack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let off = dir.join("off.toml");
    std::fs::write(&off, "[policy]\nobserve_only = true\n").expect("write");
    std::fs::set_permissions(&off, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    // umask 000: a socket bound now would be world-writable, i.e. anyone could connect.
    rustix::process::umask(rustix::fs::Mode::empty());

    // Default mode: the socket file is 0660 whatever the umask, so nobody cannot connect.
    let private = dir.join("private.sock");
    let _oomd = start(&private, SocketAccess::default());
    let mode = std::fs::metadata(&private)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660, "{mode:o}");
    let out = oomctl_as(
        NOBODY,
        &private,
        &["policy", "set", off.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not allowed to connect"),
        "{}",
        text(&out.stderr)
    );

    // A socket the operator opened to everyone (0666): nobody may read, not change.
    let open = dir.join("open.sock");
    let _open = start(
        &open,
        SocketAccess {
            mode: 0o666,
            group: None,
        },
    );
    let out = oomctl_as(NOBODY, &open, &["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = oomctl_as(
        NOBODY,
        &open,
        &["policy", "set", off.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not permitted for uid 65534"),
        "{}",
        text(&out.stderr)
    );
    // Nor make it re-read its file.
    let out = oomctl_as(NOBODY, &open, &["policy", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not permitted for uid 65534"),
        "{}",
        text(&out.stderr)
    );
    let policy = oomctl_as(0, &open, &["policy", "get"]);
    assert!(
        text(&policy.stdout).contains("observe_only = false"),
        "{}",
        text(&policy.stdout)
    );
    // The operator (root) may.
    let out = oomctl_as(0, &open, &["policy", "set", off.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status = text(&oomctl_as(0, &open, &["status"]).stdout);
    assert!(status.contains("2 changes not permitted"), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
