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
