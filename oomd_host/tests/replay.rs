//! Recorded input logs: written, read back and replayed to the identical event log; corrupt
//! logs refused with the line at fault.

use std::io::Cursor;
use std::path::Path;

use oomd_host::fixture::{small_policy, Harness};
use oomd_host::record::{self, InputLog, ReadErrorKind, MAX_LINE_LEN};
use oomd_host::scenario::Scenario;
use oomd_host::sim::Run;

fn shipped_runs() -> Vec<(String, Run)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("scenarios directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let run = Scenario::load(&p).expect("loads").run().expect("runs").run;
            (p.display().to_string(), run)
        })
        .collect()
}

fn to_bytes(log: &InputLog) -> Vec<u8> {
    let mut out = Vec::new();
    log.write_to(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

fn read(bytes: &[u8]) -> Result<InputLog, record::ReadError> {
    InputLog::read_from(Cursor::new(bytes))
}

fn hog_log_text() -> String {
    let (_, run) = shipped_runs()
        .into_iter()
        .find(|(p, _)| p.ends_with("hog-hard-kill.toml"))
        .expect("shipped");
    String::from_utf8(to_bytes(&record::log_of(&run))).expect("utf-8")
}

fn with_line(text: &str, index: usize, replacement: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[index] = replacement;
    lines.join("\n") + "\n"
}

#[test]
fn every_scenario_replays_to_the_identical_event_log() {
    for (path, run) in shipped_runs() {
        let log = record::log_of(&run);
        let bytes = to_bytes(&log);
        let back = read(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(back, log, "{path}: the log reads back as written");
        let replayed = record::replay(&back).expect("replays");
        assert_eq!(replayed.events, run.events, "{path}: full event values");
        assert_eq!(replayed.requests, run.requests, "{path}");
        assert_eq!(replayed.inputs, run.inputs, "{path}");
        assert_eq!(replayed.counters, run.counters, "{path}");
        assert_eq!(
            replayed.trace(),
            run.trace(),
            "{path}: names survive the header"
        );
        // Writing the read log again gives the same bytes.
        assert_eq!(to_bytes(&back), bytes, "{path}");
    }
}

#[test]
fn a_harness_recording_replays_too() {
    let mut h: Harness<16, 512> = Harness::new(small_policy());
    h.register("hog");
    h.register_critical("samgrd");
    h.report("hog", 5_000).expect("accepted");
    h.report("samgrd", 5_000).expect("accepted");
    h.send_bytes("hog", b"garbage").expect_err("rejected");
    h.tick().expect("tick");
    let ticket = h.last_request().ticket;
    h.accept(ticket).expect("pending");
    h.exited("hog").expect("running");
    h.tick().expect("tick");

    let mut log = InputLog {
        header: record::Header {
            policy: small_policy(),
            subjects: h.names.iter().map(|(id, n)| (id, n.to_owned())).collect(),
            subject_capacity: 16,
            event_capacity: 512,
        },
        inputs: h.inputs.clone(),
    };
    log = read(&to_bytes(&log)).expect("reads back");
    let replayed = record::replay(&log).expect("replays");
    assert_eq!(replayed.events, h.events());
    assert_eq!(replayed.trace(), h.trace());
    assert_eq!(&replayed.requests, h.requests());
}

#[test]
fn the_header_comes_first_with_format_and_version() {
    let text = hog_log_text();
    let header: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a header")).expect("json");
    assert_eq!(header["format"], "oomd-input-log");
    assert_eq!(header["version"], 1);
    assert_eq!(header["subjects"]["335f17192ff5babd"], "hog");
    assert!(header["policy"]["limits"]["hard_bytes"].is_u64());
    assert!(header["subject_capacity"].is_u64() && header["event_capacity"].is_u64());
}

#[test]
fn a_bad_header_is_refused_on_line_one() {
    let text = hog_log_text();
    let header = text.lines().next().expect("a header").to_owned();
    let cases = [
        ("not json".to_owned(), "not an \"oomd-input-log\" header"),
        (
            header.replace("oomd-input-log", "something-else"),
            "format is \"something-else\"",
        ),
        (
            header.replace("\"version\":1", "\"version\":2"),
            "version 2 is not supported",
        ),
        (
            header.replace("\"event_capacity\"", "\"surprise\":1,\"event_capacity\""),
            "unknown field `surprise`",
        ),
        (
            header.replace("\"hog\"", "\"gho\""),
            "subjects.335f17192ff5babd",
        ),
        (
            header.replace("\"hard_bytes\":1048576", "\"hard_bytes\":0"),
            "policy.hard_bytes",
        ),
        (
            header.replace("\"soft_bytes\":524288", "\"soft_bytes\":\"lots\""),
            "policy.limits.soft_bytes",
        ),
    ];
    for (bad, want) in cases {
        let e = read(with_line(&text, 0, &bad).as_bytes()).expect_err("refused");
        assert_eq!(e.line, 1, "{e}");
        assert!(e.to_string().contains(want), "{want:?} not in {e}");
    }
    let e = read(b"").expect_err("empty");
    assert!(
        matches!(e.kind, ReadErrorKind::MissingHeader) && e.line == 1,
        "{e}"
    );
}

#[test]
fn a_bad_input_line_is_refused_with_its_number() {
    let text = hog_log_text();
    for bad in [
        "{\"Tik\":3}",
        "{\"Tick\":-1}",
        "",
        "{\"Frame\":{\"sender\":1,\"payload\":[3,[1,2]]}}",
        "{\"Tick\":3} trailing",
    ] {
        let e = read(with_line(&text, 4, bad).as_bytes()).expect_err("refused");
        assert_eq!(e.line, 5, "{bad:?}: {e}");
        assert!(
            matches!(e.kind, ReadErrorKind::BadInput { .. }),
            "{bad:?}: {e}"
        );
        assert!(e.to_string().starts_with("line 5: column"), "{e}");
    }
    let e = read(&[text.as_bytes(), &[0xff, b'\n']].concat()).expect_err("not utf-8");
    assert_eq!(e.line, text.lines().count() as u64 + 1, "{e}");
}

#[test]
fn an_oversized_line_is_refused_without_reading_it_all() {
    let text = hog_log_text();
    let long = format!("{{\"Tick\":{}}}", "1".repeat(MAX_LINE_LEN));
    let e = read(with_line(&text, 2, &long).as_bytes()).expect_err("too long");
    assert_eq!(e.line, 3, "{e}");
    assert!(
        matches!(e.kind, ReadErrorKind::TooLong { max: MAX_LINE_LEN }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("line 3: longer than {MAX_LINE_LEN} bytes")
    );

    // A line of exactly the bound is fine (and here still valid JSON).
    let padded = format!("{{\"Tick\":{}1}}", " ".repeat(MAX_LINE_LEN - 10));
    assert_eq!(padded.len(), MAX_LINE_LEN);
    read(with_line(&text, 2, &padded).as_bytes()).expect("within the bound");
}

#[test]
fn an_unsupported_capacity_is_refused_at_replay() {
    let text = hog_log_text();
    let bad = text.replacen("\"subject_capacity\":256", "\"subject_capacity\":300", 1);
    let log = read(bad.as_bytes()).expect("the header itself is well formed");
    let e = record::replay(&log).expect_err("no watchdog of that size");
    assert!(e.to_string().contains("subject_capacity 300"), "{e}");
}

#[test]
fn name_annotations_are_learned_as_the_log_goes() {
    use oomd_host::record::{encode_input_line, encode_name_line, Header, InputLog, LogWriter};
    let hog = memstat::SubjectId::from_name("hog");
    let header = Header {
        policy: oomd::Policy::default(),
        subjects: Default::default(),
        subject_capacity: 256,
        event_capacity: 1024,
    };
    let mut out = LogWriter::new(Vec::new(), &header)
        .expect("header")
        .finish()
        .expect("flush");
    let mut line = [0u8; 4096];
    let n = encode_name_line(hog, "hog", &mut line).expect("fits");
    out.extend_from_slice(&line[..n]);
    let input = oomd::Input::Register(oomd::Registration {
        subject: hog,
        class: oomd::SubjectClass::Standard,
        critical: false,
        reports: true,
    });
    let n = encode_input_line(&input, &mut line).expect("fits");
    out.extend_from_slice(&line[..n]);
    let log = InputLog::read_from(&out[..]).expect("reads");
    assert_eq!(log.inputs, [input]);
    assert_eq!(
        log.header.subjects.get(&hog).map(String::as_str),
        Some("hog")
    );

    let forged = br#"{"name":{"subject":"0000000000000001","name":"hog"}}"#;
    let mut bad = LogWriter::new(Vec::new(), &header)
        .expect("header")
        .finish()
        .expect("flush");
    bad.extend_from_slice(forged);
    let e = InputLog::read_from(&bad[..]).expect_err("a name that does not match its id");
    assert_eq!(e.line, 2);
}
