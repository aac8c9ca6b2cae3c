//! The policy file the oomd service reads: same keys as a scenario's `[policy]`, plus
//! per-service limits; every error names the key at fault.

use oomd::{Limits, Policy};
use oomd_host::scenario::PolicyFile;

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
