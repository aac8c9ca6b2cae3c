//! The whole Linux edge on the host, as real processes, with a hostile neighbour holding 100
//! idle connections on each control socket: execd (process-group mode, no
//! cgroups, no root-only steps), the oomd service (selftest build), hog fixtures, and the
//! selftest client, in a temporary directory, from the very manifest and policy the QEMU boot
//! selftest installs (`scripts/guest/`). execd runs the selftest client as a service and stops
//! when it exits. Every behaviour marker must appear, and no line with FAIL.
//!
//! The binaries are built by this test into their own target directory
//! (`target/host-selftest`), with the oomd service's `selftest` feature, exactly as the QEMU
//! image will be. Nothing here waits by sleeping in place of a fact: the selftest client waits
//! for events with deadlines, and this test only bounds the whole run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build, Execd};

/// The boot selftest's manifest, with this host's paths.
fn manifest(bin: &Path, dir: &Path) -> String {
    include_str!("../../scripts/guest/services.toml.in")
        .replace("@BIN@", &bin.display().to_string())
        .replace("@ETC@", &dir.display().to_string())
        .replace("@RUN@", &dir.display().to_string())
        .replace("@HOG_HARD@", "16MiB")
        .replace(
            "@RECORDING_OUT@",
            &dir.join("recording.out").display().to_string(),
        )
}

#[test]
fn every_behaviour_is_proven_on_real_processes() {
    let bin = build();
    let dir = std::env::temp_dir().join(format!("oomd-host-selftest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("policy.toml"),
        include_str!("../../scripts/guest/policy.toml"),
    )
    .expect("policy");
    std::fs::write(dir.join("manifest.toml"), manifest(&bin, &dir)).expect("manifest");

    let execd_log = std::fs::File::create(dir.join("execd.log")).expect("log");
    let execd = Command::new(bin.join("execd"))
        .arg("--manifest")
        .arg(dir.join("manifest.toml"))
        .arg("--socket")
        .arg(dir.join("execd.sock"))
        .stdin(Stdio::null())
        .stdout(execd_log.try_clone().expect("log"))
        .stderr(execd_log)
        .spawn()
        .expect("execd starts");
    let mut execd = Execd(execd);
    // A hostile neighbour: as soon as each control socket exists, 100 idle connections are
    // opened to it and held for the whole run. The selftest client and oomctl-style requests
    // must get through all the same.
    let mut held = Vec::new();
    let mut pending = vec![dir.join("execd.sock"), dir.join("oomd.sock")];
    // execd stops when the selftest service exits (exit 0 only if the selftest passed).
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        pending.retain(|socket| {
            let Ok(first) = oomd_proto::connect(socket) else {
                return true;
            };
            held.push(first);
            held.extend((1..100).filter_map(|_| oomd_proto::connect(socket).ok()));
            false
        });
        if let Some(status) = execd.0.try_wait().expect("execd status") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let held_count = held.len();
    drop(held);
    let log = std::fs::read_to_string(dir.join("execd.log")).unwrap_or_default();
    let selftest: String = log
        .lines()
        .filter(|l| l.starts_with("SELFTEST: "))
        .map(|l| format!("{l}\n"))
        .collect();
    print!("{selftest}"); // shown with --nocapture: the markers of this run
    let context = format!("--- execd, oomd, hogs and the selftest client ---\n{log}");
    let Some(status) = status else {
        panic!("execd did not stop within 240 s\n{context}")
    };

    for marker in [
        "SELFTEST: oom kill ok",
        "SELFTEST: oom deny critical ok",
        "SELFTEST: oom reject spoof ok",
        "SELFTEST: oom flood ok",
        "SELFTEST: oom underreport ok",
        "SELFTEST: oom tree kill ok",
        "SELFTEST: oom escape kill ok",
        "SELFTEST: oom watchdog restart ok",
        "SELFTEST: oom reclaim ok",
        "SELFTEST: oom reclaim missed ok",
        "SELFTEST: oom reclaim liar ok",
        "SELFTEST: oom rate limit ok",
        "SELFTEST: Completed",
    ] {
        assert!(
            selftest.lines().any(|l| l == marker),
            "missing {marker:?}\n{context}"
        );
    }
    assert!(!log.contains("FAIL"), "{context}");
    assert_eq!(
        held_count, 200,
        "100 idle connections held on each socket\n{context}"
    );
    assert!(status.success(), "execd: {status}\n{context}");
    // The markers oomd prints itself, after the facts.
    assert!(log.lines().any(|l| l == "oomd: ready"), "{context}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("oomd: kill app=hog bytes=")),
        "{context}"
    );
    assert!(
        log.lines()
            .any(|l| l == "oomd: kill denied (subject=critical-hog reason=critical)"),
        "{context}"
    );
    // The reclaim request reached the hog and its acknowledgement came back, timed by oomd.
    assert!(
        log.lines()
            .any(|l| l.starts_with("oomd: reclaim round trip app=reclaim-hog id=")),
        "{context}"
    );
    // The run was deterministic: each recording oomd made (the first run's, kept as `.1` when
    // the restart behaviour killed it, and the second's) replays to the very event lines that
    // oomd printed, in one stretch.
    let copy = std::fs::read_to_string(dir.join("recording.out")).expect("the recordings copy");
    let recordings = oomd_host::console::split_recordings(&copy).expect("well formed");
    assert_eq!(
        recordings.len(),
        2,
        "two runs of oomd: {:?}",
        recordings.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    let live = oomd_host::console::event_lines(&log);
    for (name, text) in &recordings {
        let input = oomd_host::record::InputLog::read_from(text.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let run = oomd_host::record::replay(&input).expect("replays");
        let replayed = oomd_host::console::event_words(&run);
        assert!(
            replayed.len() > 10,
            "{name}: {} events only",
            replayed.len()
        );
        if let Err(e) = oomd_host::console::find_replay(&replayed, &live) {
            panic!("{name}: {e}\n{context}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
