//! The timeline picture: deterministic, complete, readable for one subject and for 64.

use std::path::Path;

use oomd_host::plot::{self, MarkKind};
use oomd_host::scenario::Scenario;
use oomd_host::sim::Run;

fn run_of(name: &str) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(path)
        .expect("loads")
        .run()
        .expect("runs")
        .run
}

/// What an SVG is made of: how many of each element, and every text, in order.
fn structure(svg: &str) -> String {
    let mut out = String::new();
    for element in ["<text", "<polyline", "<circle", "<rect", "<line", "<path"] {
        out.push_str(&format!("{element}> {}\n", svg.matches(element).count()));
    }
    for piece in svg.split("<text").skip(1) {
        let body = piece.split_once('>').map_or("", |(_, rest)| rest);
        let text = body.split_once("</text>").map_or("", |(t, _)| t);
        out.push_str(text.trim());
        out.push('\n');
    }
    out
}

#[test]
fn the_same_run_draws_the_same_bytes() {
    let run = run_of("escalation.toml");
    let a = plot::svg(&plot::timeline(&run).expect("timeline")).expect("svg");
    let b = plot::svg(&plot::timeline(&run).expect("timeline")).expect("svg");
    assert_eq!(a, b);
    assert!(a.starts_with("<svg"), "{}", &a[..40]);
}

#[test]
fn a_hard_kill_is_drawn_with_its_limits_figures_and_marks() {
    let run = run_of("hog-hard-kill.toml");
    let timeline = plot::timeline(&run).expect("timeline");
    let hog = timeline
        .lanes
        .iter()
        .find(|l| l.name == "hog")
        .expect("hog");
    let kinds: Vec<(u64, MarkKind)> = hog.marks.iter().map(|m| (m.tick, m.kind)).collect();
    assert_eq!(
        kinds,
        [
            (6, MarkKind::SoftLimit),
            (10, MarkKind::Decided),
            (10, MarkKind::Requested),
            (13, MarkKind::Confirmed),
        ],
        "{kinds:?}"
    );
    // The decision is drawn at the bytes it names, above the hard limit.
    let decided = hog
        .marks
        .iter()
        .find(|m| m.kind == MarkKind::Decided)
        .expect("decided");
    assert_eq!(decided.bytes, Some(1_089_536));
    assert!(hog
        .samples
        .iter()
        .all(|s| s.hard == 1 << 20 && s.soft == 512 << 10));
    let quiet = timeline
        .lanes
        .iter()
        .find(|l| l.name == "quiet")
        .expect("quiet");
    assert!(quiet.marks.is_empty(), "{:?}", quiet.marks);
    insta::assert_snapshot!(structure(&plot::svg(&timeline).expect("svg")));
}

#[test]
fn rejected_frames_are_counted_on_the_senders_panel() {
    let run = run_of("spoof-and-flood.toml");
    let timeline = plot::timeline(&run).expect("timeline");
    let rejected = |name: &str| -> u32 {
        let lane = timeline.lanes.iter().find(|l| l.name == name).expect(name);
        lane.rejected.values().sum()
    };
    let counted = run.counters.rejected_total();
    let drawn: u32 = timeline
        .lanes
        .iter()
        .map(|l| l.rejected.values().sum::<u32>())
        .sum();
    assert_eq!(u64::from(drawn), counted);
    assert!(rejected("flooder") > 0 && rejected("spoofer") > 0);
    assert_eq!(rejected("victim"), 0);
    let svg = plot::svg(&timeline).expect("svg");
    assert!(svg.contains(&format!(
        "flooder ({} frames rejected)",
        rejected("flooder")
    )));
}

#[test]
fn sixty_four_subjects_fit_in_a_grid_with_every_name() {
    let mut text = String::from(
        "name = \"many\"\nseed = 3\nticks = 12\n[policy]\nsoft_bytes = \"1 MiB\"\nhard_bytes = \"2 MiB\"\n",
    );
    for i in 0..64 {
        text.push_str(&format!(
            "[[subject]]\nname = \"svc{i:02}\"\nstart_bytes = \"{} KiB\"\ngrowth_per_tick = \"{} KiB\"\n",
            64 + i * 8,
            i * 4
        ));
    }
    let run = Scenario::parse(&text)
        .expect("valid")
        .run()
        .expect("runs")
        .run;
    let timeline = plot::timeline(&run).expect("timeline");
    assert_eq!(timeline.lanes.len(), 64);
    let svg = plot::svg(&timeline).expect("svg");
    let texts = structure(&svg);
    for i in 0..64 {
        let name = format!("svc{i:02}");
        assert!(texts.lines().any(|l| l == name), "{name} has no panel");
    }
    // Four columns of sixteen rows: one screenful or two, not 64 stacked panels.
    let height: u32 = svg
        .split_once("height=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(h, _)| h.parse().ok())
        .expect("height");
    assert!(height <= 16 * 170 + 100, "{height}");
}

#[test]
fn the_committed_example_is_what_the_documented_command_draws() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let committed = std::fs::read_to_string(root.join("docs/timeline-example.svg"))
        .expect("docs/timeline-example.svg");
    let run = run_of("escalation.toml");
    let drawn = plot::svg(&plot::timeline(&run).expect("timeline")).expect("svg");
    assert!(
        committed == drawn,
        "docs/timeline-example.svg is stale: regenerate it with \
         `cargo run -p oomd_host --bin oomd-sim -- plot oomd_host/scenarios/escalation.toml -o docs/timeline-example.svg`"
    );
}
