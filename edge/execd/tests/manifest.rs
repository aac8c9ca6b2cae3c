//! The manifest format: what parses, and errors that name the entry and the key.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use execd::manifest::Problem;
use execd::{Manifest, ManifestError, Role};
use memstat::SubjectId;
use oomd::SubjectClass;

const EXAMPLE: &str = r#"
[[service]]
name = "oomd"
argv = ["/bin/oomd", "--verbose"]
role = "watchdog"
class = "foreground"

[[service]]
name = "hog"
argv = ["/bin/hog-fixture"]
class = "background"
start = false
uid = 65534
env = { HOG_STEP = "1048576", HOG_NAME = "hog" }

[[service]]
name = "selftest"
argv = ["/bin/selftest-client"]
role = "selftest"
critical = true
memstat = false
gid = 100
"#;

#[test]
fn the_example_parses_with_its_defaults() {
    let m = Manifest::parse(EXAMPLE).unwrap();
    let names: Vec<&str> = m.services().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["oomd", "hog", "selftest"]);

    let oomd = m.get("oomd").unwrap();
    assert_eq!(oomd.role, Some(Role::Watchdog));
    assert!(oomd.critical, "the watchdog is critical without saying so");
    assert_eq!(oomd.class, SubjectClass::Foreground);
    assert!(oomd.start && oomd.memstat);
    assert_eq!(oomd.argv, ["/bin/oomd", "--verbose"]);
    assert_eq!(oomd.subject, SubjectId::from_name("oomd"));
    assert_eq!((oomd.uid, oomd.gid), (None, None));
    assert_eq!(m.watchdog().map(|s| s.name.as_str()), Some("oomd"));

    let hog = m.get("hog").unwrap();
    assert!(!hog.critical && !hog.start && hog.memstat);
    assert_eq!(hog.class, SubjectClass::Background);
    assert_eq!((hog.uid, hog.gid), (Some(65534), Some(65534)));
    assert_eq!(
        hog.env,
        [
            ("HOG_NAME".to_owned(), "hog".to_owned()),
            ("HOG_STEP".to_owned(), "1048576".to_owned())
        ]
    );

    let selftest = m.get("selftest").unwrap();
    assert_eq!(selftest.role, Some(Role::Selftest));
    assert!(selftest.critical && !selftest.memstat);
    assert_eq!(selftest.class, SubjectClass::Standard);
    assert_eq!((selftest.uid, selftest.gid), (None, Some(100)));
}

#[test]
fn an_empty_manifest_has_no_services() {
    assert!(Manifest::parse("").unwrap().services().is_empty());
}

/// Parses `text` as the second entry after a valid one, expects an error, checks that its
/// message names the entry (`service #2`, and `("name")` when given) and the key.
fn entry_error(entry: &str, name: Option<&str>, key: &str) -> ManifestError {
    let text = format!("[[service]]\nname = \"ok\"\nargv = [\"true\"]\n\n[[service]]\n{entry}");
    let err = Manifest::parse(&text).expect_err("must be refused");
    let message = err.to_string();
    let entry = match name {
        Some(name) => format!("service #2 (\"{name}\")"),
        None => "service #2".to_owned(),
    };
    assert!(
        message.contains(&entry),
        "{message:?} does not name {entry}"
    );
    assert!(
        message.contains(&format!("key `{key}`")),
        "{message:?} does not name {key}"
    );
    assert_eq!(err.key(), Some(key));
    err
}

#[test]
fn an_unknown_key_is_refused() {
    let e = entry_error(
        "name = \"hog\"\nargv = [\"x\"]\nargvv = [\"y\"]",
        Some("hog"),
        "argvv",
    );
    assert_eq!(e.problem(), Some(&Problem::UnknownKey));
}

#[test]
fn an_unknown_top_level_key_is_refused() {
    let err = Manifest::parse("services = []").unwrap_err();
    assert_eq!(err.key(), Some("services"));
    assert!(err.to_string().contains("top-level key `services`"));
}

#[test]
fn a_duplicate_name_is_refused() {
    let e = entry_error("name = \"ok\"\nargv = [\"x\"]", Some("ok"), "name");
    assert_eq!(e.problem(), Some(&Problem::Duplicate { first: 1 }));
    assert!(e.to_string().contains("same name as service #1"));
}

#[test]
fn an_empty_or_missing_argv_is_refused() {
    let e = entry_error("name = \"hog\"\nargv = []", Some("hog"), "argv");
    assert_eq!(e.problem(), Some(&Problem::Empty));
    let e = entry_error("name = \"hog\"\nargv = [\"\"]", Some("hog"), "argv");
    assert_eq!(e.problem(), Some(&Problem::Empty));
    let e = entry_error("name = \"hog\"", Some("hog"), "argv");
    assert_eq!(e.problem(), Some(&Problem::Missing));
    let e = entry_error("name = \"hog\"\nargv = \"/bin/hog\"", Some("hog"), "argv");
    assert!(matches!(e.problem(), Some(Problem::WrongType { .. })));
}

#[test]
fn a_name_too_long_for_the_protocol_is_refused() {
    let long = "n".repeat(oomd_proto::MAX_NAME_LEN + 1);
    let e = entry_error(&format!("name = \"{long}\"\nargv = [\"x\"]"), None, "name");
    assert_eq!(
        e.problem(),
        Some(&Problem::TooLong {
            len: oomd_proto::MAX_NAME_LEN + 1
        })
    );
    // `oomd/<name>` must fit in a protocol name too, so the limit is a little lower.
    let just_over = "n".repeat(execd::bounds::MAX_SERVICE_NAME_LEN + 1);
    entry_error(
        &format!("name = \"{just_over}\"\nargv = [\"x\"]"),
        None,
        "name",
    );
    let longest = "n".repeat(execd::bounds::MAX_SERVICE_NAME_LEN);
    Manifest::parse(&format!(
        "[[service]]\nname = \"{longest}\"\nargv = [\"x\"]"
    ))
    .unwrap();
}

#[test]
fn a_missing_or_unusable_name_is_refused() {
    let e = entry_error("argv = [\"x\"]", None, "name");
    assert_eq!(e.problem(), Some(&Problem::Missing));
    for bad in ["", "../etc", "a/b", ".hidden", "with space"] {
        entry_error(&format!("name = \"{bad}\"\nargv = [\"x\"]"), None, "name");
    }
}

#[test]
fn at_most_one_watchdog_and_one_selftest() {
    let two = "[[service]]\nname = \"a\"\nargv = [\"x\"]\nrole = \"watchdog\"\n\
               [[service]]\nname = \"b\"\nargv = [\"x\"]\nrole = \"watchdog\"\n";
    let err = Manifest::parse(two).unwrap_err();
    assert_eq!(err.key(), Some("role"));
    assert!(
        err.to_string()
            .contains("service #2 (\"b\"): key `role`: only one service may have role \"watchdog\" (service #1 has it)"),
        "{err}"
    );
    let two = two.replace("watchdog", "selftest");
    assert_eq!(Manifest::parse(&two).unwrap_err().key(), Some("role"));
}

#[test]
fn a_watchdog_cannot_be_made_non_critical() {
    let e = entry_error(
        "name = \"w\"\nargv = [\"x\"]\nrole = \"watchdog\"\ncritical = false",
        Some("w"),
        "critical",
    );
    assert_eq!(e.problem(), Some(&Problem::WatchdogNotCritical));
}

#[test]
fn values_of_the_wrong_kind_are_refused_by_key() {
    let base = "name = \"hog\"\nargv = [\"x\"]\n";
    for (line, key) in [
        ("critical = \"yes\"", "critical"),
        ("start = 1", "start"),
        ("memstat = \"no\"", "memstat"),
        ("class = \"huge\"", "class"),
        ("role = \"king\"", "role"),
        ("uid = -1", "uid"),
        ("gid = 4294967295", "gid"),
        ("uid = \"root\"", "uid"),
        ("env = [\"A=1\"]", "env"),
        ("env = { A = 1 }", "env.A"),
        ("env = { OOMD_MEMSTAT_FD = \"3\" }", "env.OOMD_MEMSTAT_FD"),
        (
            "env = { OOMD_AUTHORITY_FD = \"3\" }",
            "env.OOMD_AUTHORITY_FD",
        ),
    ] {
        entry_error(&format!("{base}{line}"), Some("hog"), key);
    }
}

#[test]
fn an_entry_that_is_not_a_table_is_refused() {
    let err = Manifest::parse("service = [1]").unwrap_err();
    assert!(err.to_string().contains("service #1"), "{err}");
    let err = Manifest::parse("service = 1").unwrap_err();
    assert_eq!(err.key(), Some("service"));
}

#[test]
fn too_many_services_are_refused() {
    let one = |i: usize| format!("[[service]]\nname = \"s{i}\"\nargv = [\"x\"]\n");
    let text: String = (0..=execd::bounds::MAX_SERVICES).map(one).collect();
    assert!(matches!(
        Manifest::parse(&text),
        Err(ManifestError::TooManyServices { .. })
    ));
}

#[test]
fn syntax_errors_and_missing_files_are_reported() {
    assert!(matches!(
        Manifest::parse("[[service]\nname ="),
        Err(ManifestError::Syntax(_))
    ));
    let err = Manifest::load("/nonexistent/manifest.toml").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/manifest.toml"),
        "{err}"
    );
}
