//! The policy file the oomd service reads: same keys as a scenario's `[policy]`, plus
//! per-service limits; every error names the key at fault.

use oomd::{Limits, Policy};
use oomd_config::policy::PolicyFile;

#[test]
fn a_policy_file_sets_the_global_policy_and_per_service_limits() {
    let file = PolicyFile::parse(
        r#"
        [policy]
        soft_bytes = "4 MiB"
        hard_bytes = "8 MiB"
        kill_budget = 2
        enforce_kernel = true

        [service.db]
        hard_bytes = "64 MiB"
        "#,
    )
    .expect("valid");
    let expected_global = Policy {
        limits: Limits {
            soft_bytes: 4 << 20,
            hard_bytes: 8 << 20,
            ..Policy::default().limits
        },
        kill_budget: 2,
        enforce_kernel: true,
        ..Policy::default()
    };
    assert_eq!(file.policy, expected_global);
    let db = file.services["db"];
    assert_eq!(
        db,
        Limits {
            hard_bytes: 64 << 20,
            ..expected_global.limits
        },
        "unset keys come from the global limits"
    );
}

#[test]
fn an_empty_file_is_the_default_policy() {
    let file = PolicyFile::parse("").expect("valid");
    assert_eq!(file.policy, Policy::default());
    assert!(!file.policy_given);
    assert!(file.services.is_empty());
    let only_services =
        PolicyFile::parse("[service.db]\nhard_bytes = 1\nsoft_bytes = 1\n").expect("valid");
    assert!(
        !only_services.policy_given,
        "no [policy] table: the global policy is not given"
    );
    assert!(PolicyFile::parse("[policy]\n").expect("valid").policy_given);
}

#[test]
fn errors_name_the_key_at_fault() {
    let cases = [
        ("[policy]\nsoft_byte = 1\n", "policy"),
        (
            "[policy]\nsoft_bytes = \"9 GiB\"\nhard_bytes = \"1 GiB\"\n",
            "policy.soft_bytes",
        ),
        ("[policy]\nkill_budget = 0\n", "policy.kill_budget"),
        (
            "[service.db]\nsoft_bytes = \"2 XB\"\n",
            "service.db.soft_bytes",
        ),
        (
            "[service.db]\nsoft_bytes = \"600 MiB\"\n",
            "service.db.soft_bytes",
        ),
        ("[services.db]\nsoft_bytes = 1\n", ""),
    ];
    for (text, key) in cases {
        let err = PolicyFile::parse(text).expect_err(text);
        assert!(
            err.key().starts_with(key),
            "{text:?}: key {:?}, want {key:?} ({err})",
            err.key()
        );
    }
}

#[test]
fn a_number_too_large_for_toml_names_its_key() {
    let err = PolicyFile::parse("[policy]\nkill_budget = 2\nhard_bytes = 99999999999999999999\n")
        .expect_err("too large");
    assert_eq!(err.key(), "policy.hard_bytes", "{err}");
    assert_eq!(err.location(), Some((3, 14)));
    let err = PolicyFile::parse("[service.db]\nsoft_bytes = 123456789012345678901234\n")
        .expect_err("too large");
    assert_eq!(err.key(), "service.db.soft_bytes", "{err}");
    let err = PolicyFile::parse("[policy]\nkill_budget = 70000\n").expect_err("too large");
    assert_eq!(err.key(), "policy.kill_budget", "{err}");
}

/// A fresh directory for one test, removed with the guard.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oomd-policy-file-")
        .tempdir()
        .expect("temp dir")
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let err = PolicyFile::load("/dev/zero").expect_err("a device");
    assert!(
        err.to_string().contains("a device, not a regular file"),
        "{err}"
    );
    let scratch = scratch();
    let temp = |name: &str| scratch.path().join(name);
    let dir = temp("sub");
    std::fs::create_dir_all(&dir).expect("dir");
    let err = PolicyFile::load(&dir).expect_err("a directory");
    assert!(err.to_string().contains("a directory"), "{err}");

    let huge = temp("huge.toml");
    let comment = "#".repeat(oomd_config::toml_file::MAX_FILE_BYTES as usize + 1);
    std::fs::write(&huge, comment).expect("write");
    let err = PolicyFile::load(&huge).expect_err("too large");
    assert!(
        err.to_string().contains("larger than 262144 bytes"),
        "{err}"
    );
    assert_eq!(err.file(), Some(huge.as_path()));

    let just_fits = temp("fits.toml");
    let comment = "#".repeat(oomd_config::toml_file::MAX_FILE_BYTES as usize);
    std::fs::write(&just_fits, comment).expect("write");
    assert!(PolicyFile::load(&just_fits).is_ok());
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let scratch = scratch();
    let fifo = scratch.path().join("policy.fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RWXU).expect("mkfifo");
    // Nobody ever writes to it: a blocking open would hang this test (the harness's timeout).
    let err = PolicyFile::load(&fifo).expect_err("a FIFO");
    assert!(
        err.to_string().contains("a FIFO, not a regular file"),
        "{err}"
    );
}
