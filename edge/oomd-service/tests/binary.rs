//! The `oomd` binary refuses to start with a clear message when it cannot do its job.

use std::process::Command;

fn oomd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oomd"));
    c.env_remove(oomd_proto::ENV_AUTHORITY_FD);
    c
}

#[test]
fn a_policy_file_with_a_bad_key_is_named_and_refused() {
    let dir = std::env::temp_dir().join(format!("oomd-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        "[policy]\nsoft_bytes = \"9 GiB\"\nhard_bytes = \"1 GiB\"\n",
    )
    .expect("write");
    let out = oomd().arg("--policy").arg(&file).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("policy.soft_bytes"), "{err}");
    assert!(
        err.contains(file.to_str().expect("utf-8")),
        "the file is named: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_the_authority_channel_it_says_it_must_be_started_by_execd() {
    let out = oomd().output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("OOMD_AUTHORITY_FD is not set"), "{err}");
    assert!(err.contains("started by execd"), "{err}");
    let out = oomd()
        .env(oomd_proto::ENV_AUTHORITY_FD, "1")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard stream"));
}

#[test]
fn check_config_says_whether_oomd_would_take_a_policy_file_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("oomd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[policy]\nsoft_bytes = \"1 GiB\"\nhard_bytes = \"2 GiB\"\n\n[service.db]\nhard_bytes = \"64 MiB\"\nsoft_bytes = \"32 MiB\"\n",
    )
    .expect("write");
    // No authority channel, no socket: only the check runs.
    let out = oomd()
        .arg("--check-config")
        .arg(&good)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("ok: soft=1073741824 hard=2147483648") && said.contains("1 service table(s)"),
        "{said}"
    );

    // The same refusals as at start-up: the key, the service by name, the file.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[service.db]\nsoft_bytes = \"9 GiB\"\nhard_bytes = \"1 GiB\"\n",
    )
    .expect("write");
    let out = oomd()
        .arg("--check-config")
        .arg(&bad)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("service.db") && err.contains("soft_bytes"),
        "{err}"
    );
    assert!(err.contains(bad.to_str().expect("utf-8")), "{err}");

    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[policy]\nhard_byte = 1\n").expect("write");
    let out = oomd()
        .arg("--check-config")
        .arg(&typo)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("hard_byte"), "{err}");

    let out = oomd()
        .arg("--check-config")
        .arg(dir.join("absent.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_makes_it_re_read_its_policy_file_and_a_bad_file_changes_nothing() {
    use oomd_proto::{ControlReply, ControlRequest};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};
    let dir = std::env::temp_dir().join(format!("oomd-hup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("policy.toml");
    std::fs::write(&file, "[policy]\nsoft_bytes = 1000\nhard_bytes = 2000\n").expect("write");
    let (ours, theirs) = oomd_proto::seqpacket_pair().expect("socketpair");
    // The child inherits its end, as from execd (cleared only around the spawn).
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty()).expect("inheritable");
    let err_log = dir.join("stderr.log");
    let mut child = oomd()
        .env(oomd_proto::ENV_AUTHORITY_FD, theirs.as_raw_fd().to_string())
        .arg("--policy")
        .arg(&file)
        .arg("--socket")
        .arg(dir.join("oomd.sock"))
        .args(["--audit-log", "none", "--log", "text"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_log).expect("log"))
        .spawn()
        .expect("oomd runs");
    drop(theirs);
    let pid = rustix::process::Pid::from_child(&child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match oomd_proto::client::Client::connect(&dir.join("oomd.sock"), Duration::from_secs(2)) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "oomd never listened: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let mut hard = move || match client.control(&ControlRequest::GetPolicy).expect("reply")[..] {
        [ControlReply::Policy(p)] => p.limits.hard_bytes,
        ref other => panic!("{other:?}"),
    };
    let log = || std::fs::read_to_string(&err_log).unwrap_or_default();
    assert_eq!(hard(), 2000);

    std::fs::write(&file, "[policy]\nsoft_bytes = 3000\nhard_bytes = 4096\n").expect("write");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    while hard() != 4096 {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        log().contains("oomd: policy reload (SIGHUP) from ")
            && log().contains("applied: soft=3000 hard=4096"),
        "{}",
        log()
    );

    // soft above hard: refused by key, and the policy in force stays.
    std::fs::write(&file, "[policy]\nsoft_bytes = 9000\nhard_bytes = 5000\n").expect("write");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    while !log().contains("the policy in force is unchanged") {
        assert!(Instant::now() < deadline, "no refusal logged:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(log().contains("policy.soft_bytes"), "{}", log());
    assert_eq!(hard(), 4096);
    assert!(
        child.try_wait().expect("wait").is_none(),
        "SIGHUP ended oomd"
    );

    // The authority channel closes: oomd stops by itself.
    drop(ours);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oomd did not stop when its authority channel closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
