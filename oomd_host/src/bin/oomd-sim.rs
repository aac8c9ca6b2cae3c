//! `oomd-sim`: run scenarios, replay recorded input logs, check scenario files.
//!
//! Exit codes: 0 when everything held, 1 when a scenario's expectations did not, 2 on bad
//! input (an unreadable or invalid scenario or log, or a usage error). See `docs/oomd-sim.md`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oomd_host::record::{self, InputLog};
use oomd_host::scenario::Scenario;
use oomd_host::sim::Run;

/// Deterministic simulator of the oomd memory watchdog.
#[derive(Debug, Parser)]
#[command(
    name = "oomd-sim",
    version,
    after_help = "Examples:\n  oomd-sim run oomd_host/scenarios/hog-hard-kill.toml        the trace, a summary, the checks\n  oomd-sim run SCENARIO --record run.jsonl                   ... and its input log\n  oomd-sim replay run.jsonl                                  the same trace again, from the log\n  oomd-sim plot oomd_host/scenarios/hog-hard-kill.toml -o run.svg   its timeline picture"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario: print its trace and a summary, and check its expectations.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Also write the run's input log (JSON lines) to this file.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
        /// Print events as JSON lines instead of the readable trace (the summary goes to
        /// stderr).
        #[arg(long)]
        json: bool,
    },
    /// Replay a recorded input log and print its trace.
    Replay {
        /// The input log (JSON lines).
        log: PathBuf,
        /// Print events as JSON lines instead of the readable trace.
        #[arg(long)]
        json: bool,
        /// Also draw the run's timeline into this SVG file.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Check the replay against the live run: the console log (or stderr) of the oomd
        /// that recorded LOG, with `--log text`. Its event lines must contain the replayed
        /// trace, line for line, as one stretch; exit 1 where they differ.
        #[arg(long, value_name = "CONSOLE")]
        against: Option<PathBuf>,
    },
    /// Run a scenario and draw its timeline (one panel per subject: reported and kernel
    /// bytes, soft and hard limits, the events that matter) into an SVG file.
    Plot {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// The SVG file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Split a copy of oomd's recordings (as the boot selftest's client writes them) into one
    /// input log per run, written into DIR; prints their paths, oldest run first.
    SplitRecordings {
        /// The copy (`=== recording <name> <bytes>`, the lines, `=== end`, for each).
        copy: PathBuf,
        /// Where to write them (`<n>-<name>`).
        dir: PathBuf,
    },
    /// Validate scenario files without running them.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

/// How a command ended badly.
enum Failure {
    /// Expectations did not hold (exit 1).
    Expectations,
    /// Bad input or an I/O problem; the message is printed on stderr (exit 2).
    Bad(String),
}

const EXPECTATIONS_FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    clidoc::generate_if_asked::<Cli>();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            scenario,
            record,
            json,
        } => run(&scenario, record.as_deref(), json),
        Command::Replay {
            log,
            json,
            plot,
            against,
        } => replay(&log, json, plot.as_deref(), against.as_deref()),
        Command::Plot { scenario, output } => plot_scenario(&scenario, &output),
        Command::SplitRecordings { copy, dir } => split_recordings(&copy, &dir),
        Command::Check { scenarios } => check(&scenarios),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Expectations) => ExitCode::from(EXPECTATIONS_FAILED),
        Err(Failure::Bad(message)) => {
            err_line(&format!("oomd-sim: {message}"));
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn run(path: &Path, record: Option<&Path>, json: bool) -> Result<(), Failure> {
    let scenario = Scenario::load(path).map_err(|e| Failure::Bad(e.to_string()))?;
    let outcome = scenario
        .run()
        .map_err(|e| Failure::Bad(format!("{}: {e}", path.display())))?;
    if let Some(out) = record {
        write_log(&outcome.run, out)?;
    }
    print_trace(&outcome.run, json)?;
    let summary = format!(
        "scenario {}: {}\n{}",
        scenario.name,
        if outcome.failures.is_empty() {
            "expectations hold"
        } else {
            "expectations FAILED"
        },
        outcome.run.summary()
    );
    if json {
        err_line(&summary);
    } else {
        out_text(&format!("--\n{summary}\n"))?;
    }
    if outcome.failures.is_empty() {
        return Ok(());
    }
    for failure in &outcome.failures {
        err_line(&format!("{}: {failure}", path.display()));
    }
    Err(Failure::Expectations)
}

fn write_log(run: &Run, out: &Path) -> Result<(), Failure> {
    let bad = |e: io::Error| Failure::Bad(format!("{}: cannot write the log: {e}", out.display()));
    let file = File::create(out).map_err(bad)?;
    record::log_of(run)
        .write_to(BufWriter::new(file))
        .map_err(bad)
}

/// Draws `run`'s timeline into `out`.
fn write_plot(run: &Run, out: &Path) -> Result<(), Failure> {
    let timeline = oomd_host::plot::timeline(run).map_err(|e| Failure::Bad(e.to_string()))?;
    let svg = oomd_host::plot::svg(&timeline).map_err(|e| Failure::Bad(e.to_string()))?;
    std::fs::write(out, svg)
        .map_err(|e| Failure::Bad(format!("{}: cannot write the plot: {e}", out.display())))
}

fn split_recordings(copy: &Path, dir: &Path) -> Result<(), Failure> {
    let text = std::fs::read(copy)
        .map_err(|e| Failure::Bad(format!("{}: cannot read: {e}", copy.display())))?;
    let recordings = oomd_host::console::split_recordings(&String::from_utf8_lossy(&text))
        .map_err(|e| Failure::Bad(format!("{}: {e}", copy.display())))?;
    let mut paths = String::new();
    for (n, (name, text)) in recordings.iter().enumerate() {
        let path = dir.join(format!("{}-{name}", n + 1));
        std::fs::write(&path, text)
            .map_err(|e| Failure::Bad(format!("{}: cannot write: {e}", path.display())))?;
        paths.push_str(&format!("{}\n", path.display()));
    }
    out_text(&paths)
}

fn plot_scenario(path: &Path, out: &Path) -> Result<(), Failure> {
    let scenario = Scenario::load(path).map_err(|e| Failure::Bad(e.to_string()))?;
    let outcome = scenario
        .run()
        .map_err(|e| Failure::Bad(format!("{}: {e}", path.display())))?;
    write_plot(&outcome.run, out)?;
    out_text(&format!("{}\n", out.display()))
}

/// Whether `run`'s trace is, line for line, a stretch of the event lines in `console`.
fn check_against(run: &Run, log: &Path, console: &Path) -> Result<(), Failure> {
    let text = std::fs::read(console)
        .map_err(|e| Failure::Bad(format!("{}: cannot read: {e}", console.display())))?;
    let live = oomd_host::console::event_lines(&String::from_utf8_lossy(&text));
    let replayed = oomd_host::console::event_words(run);
    match oomd_host::console::find_replay(&replayed, &live) {
        Ok(at) => {
            err_line(&format!(
                "oomd-sim: the replay of {} is the live run: its {} events are event lines {}..{} of {} in {}",
                log.display(),
                replayed.len(),
                at + 1,
                at + replayed.len(),
                live.len(),
                console.display()
            ));
            Ok(())
        }
        Err(e) => {
            err_line(&format!(
                "oomd-sim: {} against {}: {e}",
                log.display(),
                console.display()
            ));
            Err(Failure::Expectations)
        }
    }
}

fn replay(
    path: &Path,
    json: bool,
    plot: Option<&Path>,
    against: Option<&Path>,
) -> Result<(), Failure> {
    let bad = |message: String| Failure::Bad(format!("{}: {message}", path.display()));
    let file = File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let log = InputLog::read_from(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    let run = record::replay(&log).map_err(|e| bad(e.to_string()))?;
    if let Some(out) = plot {
        write_plot(&run, out)?;
    }
    print_trace(&run, json)?;
    let summary = run.summary();
    if json {
        err_line(&summary.to_string());
    } else {
        out_text(&format!("--\n{summary}\n"))?;
    }
    match against {
        Some(console) => check_against(&run, path, console),
        None => Ok(()),
    }
}

fn check(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for path in paths {
        match Scenario::load(path) {
            Ok(s) => out_text(&format!("{}: ok ({})\n", path.display(), s.name))?,
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::Bad(errors.join("\noomd-sim: ")))
    }
}

fn print_trace(run: &Run, json: bool) -> Result<(), Failure> {
    let mut text = String::new();
    for event in &run.events {
        if json {
            let line = serde_json::to_string(event)
                .map_err(|e| Failure::Bad(format!("cannot encode an event: {e}")))?;
            text.push_str(&line);
        } else {
            text.push_str(&oomd_host::fixture::render(event, &run.names));
        }
        text.push('\n');
    }
    out_text(&text)
}

/// Writes to stdout. A closed pipe (`oomd-sim run … | head`) is not an error: the reader has
/// seen what it wanted, and the exit code still tells whether the expectations held.
fn out_text(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Failure::Bad(format!("cannot write to stdout: {e}")))
        }
        _ => Ok(()),
    }
}

/// Writes a line to stderr; there is nowhere left to report a failure to.
fn err_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}
