//! Scenario files: hand-written TOML that describes a simulation and what its trace must show.
//!
//! The format, every key and its default are documented in `docs/oomd-sim.md`. Parsing is
//! strict: an unknown key is an error, and every error names the key at fault (as a path such
//! as `subject[1].growth_per_tick`) and, when the TOML parser knows it, the line.
//!
//! ```
//! use oomd_host::scenario::Scenario;
//!
//! let scenario = Scenario::parse(r#"
//!     name = "tiny"
//!     ticks = 5
//!     [policy]
//!     soft_bytes = "1 KiB"
//!     hard_bytes = "2 KiB"
//!     [[subject]]
//!     name = "hog"
//!     growth_per_tick = 1024
//!     [expect]
//!     lines = ["oomd: soft limit app=hog", "oomd: kill app=hog bytes=2048"]
//! "#).unwrap();
//! let outcome = scenario.run().unwrap();
//! assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use oomd::{Limits, Policy, PolicyError, RefusalReason, Rejection, SubjectClass};
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::sim::{
    self, AuthoritySpec, Delay, ReportMode, Run, SimError, SubjectSpec,
    SUPPORTED_SUBJECT_CAPACITIES,
};

/// Most ticks a scenario may simulate: a run is kept whole in memory.
pub const MAX_TICKS: u64 = 1_000_000;
/// Most frames a flooding subject may send per tick.
pub const MAX_FLOOD_FRAMES: u32 = 10_000;
/// Longest subject name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest delay, in ticks.
pub const MAX_DELAY_TICKS: u64 = MAX_TICKS;
/// Most inputs a scenario may feed (estimated before running): a run is kept whole in memory,
/// at about a hundred bytes per input.
pub const MAX_INPUTS: u64 = 5_000_000;
/// Largest scenario or policy file read, in bytes (like execd's manifest): a file of every
/// key many times over fits; a larger one (or `/dev/zero`) is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

// ----- the validated scenario ---------------------------------------------------------------

/// A parsed and validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The simulation.
    pub setup: sim::Setup,
    /// What its trace must show.
    pub expect: Expect,
}

/// What a run must show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Substrings that must appear in the trace, each in a line after the previous one's.
    pub lines: Vec<String>,
    /// Substrings no trace line may contain.
    pub absent: Vec<String>,
    /// Exact counts of rejected frames, by reason.
    pub rejected: Vec<(Rejection, u64)>,
}

/// One expectation a run did not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpectFailure {
    /// `expect.lines[index]` was not found after the line that matched the previous one.
    Missing {
        /// Its index in `expect.lines`.
        index: usize,
        /// The substring.
        text: String,
        /// The trace line (1-based) that matched the previous expectation, if any.
        after: Option<(usize, String)>,
        /// A trace line (1-based) before that one which contains it: out of order.
        earlier: Option<usize>,
    },
    /// A trace line contains an `expect.absent` substring.
    Present {
        /// The substring.
        text: String,
        /// The trace line (1-based).
        line_no: usize,
        /// The line.
        line: String,
    },
    /// A rejection count differs.
    Rejected {
        /// The reason.
        reason: Rejection,
        /// Expected count.
        expected: u64,
        /// Counted.
        got: u64,
    },
}

impl fmt::Display for ExpectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                index,
                text,
                after,
                earlier,
            } => {
                write!(f, "expect.lines[{index}] {text:?} not found in the trace")?;
                if let Some((n, line)) = after {
                    write!(f, " after line {n} ({line:?})")?;
                }
                if let Some(n) = earlier {
                    write!(f, "; it appears earlier, at line {n} (out of order)")?;
                }
                Ok(())
            }
            Self::Present {
                text,
                line_no,
                line,
            } => write!(
                f,
                "expect.absent {text:?} found in trace line {line_no} ({line:?})"
            ),
            Self::Rejected {
                reason,
                expected,
                got,
            } => write!(
                f,
                "expect.rejected.{} = {expected}, but {got} frames were rejected for it",
                reason.as_str()
            ),
        }
    }
}

impl Expect {
    /// Every expectation `run` does not meet, in the order of the file.
    #[must_use]
    pub fn check(&self, run: &Run) -> Vec<ExpectFailure> {
        let trace = run.trace_lines();
        let mut failures = Vec::new();
        let mut cursor = 0; // index of the first trace line the next expectation may match
        for (index, text) in self.lines.iter().enumerate() {
            match trace[cursor..]
                .iter()
                .position(|l| l.contains(text.as_str()))
            {
                Some(i) => cursor += i + 1,
                None => {
                    let after = cursor
                        .checked_sub(1)
                        .map(|prev| (prev + 1, trace[prev].clone()));
                    let earlier = trace[..cursor]
                        .iter()
                        .position(|l| l.contains(text.as_str()))
                        .map(|i| i + 1);
                    failures.push(ExpectFailure::Missing {
                        index,
                        text: text.clone(),
                        after,
                        earlier,
                    });
                }
            }
        }
        for text in &self.absent {
            if let Some((i, line)) = trace
                .iter()
                .enumerate()
                .find(|(_, l)| l.contains(text.as_str()))
            {
                failures.push(ExpectFailure::Present {
                    text: text.clone(),
                    line_no: i + 1,
                    line: line.clone(),
                });
            }
        }
        for &(reason, expected) in &self.rejected {
            let got = run.counters.rejected(reason);
            if got != expected {
                failures.push(ExpectFailure::Rejected {
                    reason,
                    expected,
                    got,
                });
            }
        }
        failures
    }
}

/// A scenario's run and the expectations it did not meet.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The run.
    pub run: Run,
    /// Unmet expectations; empty when the scenario passes.
    pub failures: Vec<ExpectFailure>,
}

impl Scenario {
    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        parse_toml::<RawScenario>(text)?.validate()
    }

    /// Reads, parses and validates a scenario file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        load_file(path.as_ref(), Self::parse)
    }

    /// Runs the simulation and checks the expectations.
    pub fn run(&self) -> Result<Outcome, SimError> {
        let run = sim::run(&self.setup)?;
        let failures = self.expect.check(&run);
        Ok(Outcome { run, failures })
    }
}

/// A policy file, as the oomd service reads it: a `[policy]` table with the same keys as a
/// scenario's (every key optional, defaults from `Policy::default()`), and one
/// `[service.<name>]` table of limits (`soft_bytes`, `hard_bytes`, `soft_grace_ticks`,
/// `exit_deadline_ticks`) per service that needs its own. Scenarios and the service share this
/// parser, so a policy means the same in both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// The global policy (`Policy::default()` with the `[policy]` table's keys applied).
    pub policy: Policy,
    /// Whether the file has a `[policy]` table at all: a file of `[service.<name>]` tables
    /// only is about those services, and a tool applying it leaves the global policy alone.
    pub policy_given: bool,
    /// Limits overrides by service name, each complete (unset keys from the global limits).
    pub services: BTreeMap<String, Limits>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicyFile {
    policy: Option<RawPolicy>,
    #[serde(default)]
    service: BTreeMap<String, RawLimits>,
}

impl PolicyFile {
    /// Parses and validates policy-file text; errors name the key at fault.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let raw: RawPolicyFile = parse_toml(text)?;
        let policy_given = raw.policy.is_some();
        let policy = raw.policy.unwrap_or_default().build()?;
        let mut services = BTreeMap::new();
        for (name, limits) in &raw.service {
            let key = format!("service.{name}");
            check_name(name, &key)?;
            services.insert(name.clone(), limits.build(policy.limits, &key)?);
        }
        Ok(PolicyFile {
            policy,
            policy_given,
            services,
        })
    }

    /// Reads, parses and validates a policy file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        load_file(path.as_ref(), Self::parse)
    }
}

/// Deserializes TOML, turning any error into one that names the key path and its place.
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ScenarioError> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let mut key = path_key(&e.path().to_string());
        let inner = e.into_inner();
        let location = inner.span().map(|s| line_col(text, s.start));
        // Errors of the TOML syntax itself (an integer too large for any TOML integer, say)
        // come before any key was reached: name the key written on that line.
        if key.is_empty() {
            if let Some((line, _)) = location {
                key = key_on_line(text, line).unwrap_or_default();
            }
        }
        ScenarioError {
            file: None,
            key,
            location,
            message: inner.message().trim_end().to_owned(),
        }
    })
}

/// The dotted key written on `line` (1-based) of a TOML text, with the table header above it:
/// `policy.hard_bytes` for a `hard_bytes = ...` line under `[policy]`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let (key, _) = here.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("[[")
            .and_then(|t| t.strip_suffix("]]"))
            .or_else(|| l.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
            .map(str::trim)
    });
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

/// Reads `path` and parses it with `parse`; every error names the file. Only a regular file
/// of at most [`MAX_FILE_BYTES`] is read: a FIFO, a device or a directory is refused without
/// waiting on it (it is opened non-blocking and checked before any read).
fn load_file<T>(
    path: &Path,
    parse: fn(&str) -> Result<T, ScenarioError>,
) -> Result<T, ScenarioError> {
    let with_file = |mut e: ScenarioError| {
        e.file = Some(path.to_owned());
        e
    };
    let text = read_bounded(path).map_err(|message| {
        with_file(ScenarioError {
            file: None,
            key: String::new(),
            location: None,
            message,
        })
    })?;
    parse(&text).map_err(with_file)
}

/// The text of a regular file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO opened for reading blocks until a writer comes; non-blocking, it does not.
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(format!("cannot read: {what}, not a regular file"));
    }
    let too_big = || format!("cannot read: larger than {MAX_FILE_BYTES} bytes");
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut text = String::new();
    // Bounded even if the file grows while it is read.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

// ----- errors -------------------------------------------------------------------------------

/// Why a scenario was refused: the file, the key at fault, where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: Option<PathBuf>,
    key: String,
    location: Option<(usize, usize)>,
    message: String,
}

impl ScenarioError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ScenarioError {
            file: None,
            key: key.into(),
            location: None,
            message: message.into(),
        }
    }

    /// The key at fault as a path (`policy.soft_bytes`, `subject[0].report`); empty when the
    /// fault is the file as a whole (unreadable, or not TOML at all).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Line and column (1-based), when known.
    #[must_use]
    pub fn location(&self) -> Option<(usize, usize)> {
        self.location
    }

    /// What is wrong.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file, when the scenario was loaded from one.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, col)) = self.location {
                write!(f, ":{line}:{col}")?;
            }
            f.write_str(": ")?;
        } else if let Some((line, col)) = self.location {
            write!(f, "line {line}, column {col}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// `serde_path_to_error` writes the root as `.`; we write it as nothing.
fn path_key(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

// ----- sizes and delays ---------------------------------------------------------------------

/// A number of bytes, written as an integer or as a string with a binary unit
/// (`"64 MiB"`, `"512KiB"`, `"1 GiB"`, `"100 B"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

/// Parses `"<digits>[ ]<unit>"` with units `B`, `KiB`, `MiB`, `GiB`, `TiB` (any case), or bare
/// digits. Underscores between digits are allowed (`"1_000"`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size {text:?}: expected an integer or a string like \"64 MiB\" \
             (units: B, KiB, MiB, GiB, TiB)"
        )
    };
    let s = text.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer or a string like \"64 MiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A delay as written: a number of ticks, or `[min, max]`.
#[derive(Clone, Copy, Debug)]
struct RawDelay(Delay);

impl<'de> Deserialize<'de> for RawDelay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawDelay;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of ticks, or [min, max]")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDelay, E> {
                Ok(RawDelay(Delay::fixed(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDelay, E> {
                u64::try_from(v)
                    .map(|v| RawDelay(Delay::fixed(v)))
                    .map_err(|_| E::custom(format!("a delay cannot be negative ({v})")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDelay, A::Error> {
                let min: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let max: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                if min > max {
                    return Err(de::Error::custom(format!(
                        "the range [{min}, {max}] is empty: min is above max"
                    )));
                }
                Ok(RawDelay(Delay { min, max }))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ----- the file as written ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seed: u64,
    ticks: u64,
    subject_capacity: Option<usize>,
    #[serde(default)]
    kernel_readings: bool,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    authority: RawAuthority,
    #[serde(default, rename = "subject")]
    subjects: Vec<RawSubject>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    soft_bytes: Option<Size>,
    hard_bytes: Option<Size>,
    soft_grace_ticks: Option<u64>,
    exit_deadline_ticks: Option<u64>,
    sample_period_ms: Option<u32>,
    kill_budget: Option<u16>,
    kill_window_ticks: Option<u64>,
    frame_budget_per_tick: Option<u16>,
    enforce_kernel: Option<bool>,
    underreport_margin_bytes: Option<Size>,
    observe_only: Option<bool>,
    report_stale_ticks: Option<u32>,
    enforce_kernel_when_silent: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    soft_bytes: Option<Size>,
    hard_bytes: Option<Size>,
    soft_grace_ticks: Option<u64>,
    exit_deadline_ticks: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    ack_delay: Option<RawDelay>,
    exit_delay: Option<RawDelay>,
    #[serde(default)]
    refuse: Vec<String>,
    refuse_reason: Option<ReasonWord>,
    #[serde(default)]
    never_exit: Vec<String>,
    #[serde(default)]
    ignore_graceful: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum ReasonWord {
    Critical,
    UnknownSubject,
    NotPermitted,
    Unavailable,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ClassWord {
    Background,
    Standard,
    Foreground,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubject {
    name: String,
    class: Option<ClassWord>,
    #[serde(default)]
    critical: bool,
    start_tick: Option<u64>,
    start_bytes: Option<Size>,
    growth_per_tick: Option<Size>,
    jitter: Option<Size>,
    max_bytes: Option<Size>,
    report: Option<ReportForm>,
    limits: Option<RawLimits>,
    kernel_overhead: Option<Size>,
    restart_after: Option<u64>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ModeWord {
    Honest,
    Under,
    Silent,
    Spoof,
    Flood,
    Garbage,
}

/// `report = "honest"`, or `report = { mode = "under", factor = 4 }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    mode: ModeWord,
    factor: Option<u64>,
    fixed: Option<Size>,
    claim: Option<String>,
    frames: Option<u32>,
}

/// Accepts the bare-word form as well as the table.
struct ReportForm(RawReport);

impl<'de> Deserialize<'de> for ReportForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReportForm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a report mode (\"honest\", \"under\", \"silent\", \"spoof\", \"flood\", \"garbage\") or a table with `mode`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ReportForm, E> {
                let mode = ModeWord::deserialize(v.into_deserializer())?;
                Ok(ReportForm(RawReport {
                    mode,
                    factor: None,
                    fixed: None,
                    claim: None,
                    frames: None,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ReportForm, A::Error> {
                RawReport::deserialize(de::value::MapAccessDeserializer::new(map)).map(ReportForm)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    lines: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    rejected: BTreeMap<String, u64>,
}

// ----- validation ---------------------------------------------------------------------------

fn policy_key(prefix: &str, e: PolicyError) -> ScenarioError {
    ScenarioError::invalid(format!("{prefix}.{}", e.key()), e.to_string())
}

impl RawPolicy {
    fn build(&self) -> Result<Policy, ScenarioError> {
        let mut p = Policy::default();
        let l = &mut p.limits;
        set(&mut l.soft_bytes, self.soft_bytes.map(|s| s.0));
        set(&mut l.hard_bytes, self.hard_bytes.map(|s| s.0));
        set(&mut l.soft_grace_ticks, self.soft_grace_ticks);
        set(&mut l.exit_deadline_ticks, self.exit_deadline_ticks);
        set(&mut p.sample_period_ms, self.sample_period_ms);
        set(&mut p.kill_budget, self.kill_budget);
        set(&mut p.kill_window_ticks, self.kill_window_ticks);
        set(&mut p.frame_budget_per_tick, self.frame_budget_per_tick);
        set(&mut p.enforce_kernel, self.enforce_kernel);
        set(
            &mut p.underreport_margin_bytes,
            self.underreport_margin_bytes.map(|s| s.0),
        );
        set(&mut p.observe_only, self.observe_only);
        set(&mut p.report_stale_ticks, self.report_stale_ticks);
        set(
            &mut p.enforce_kernel_when_silent,
            self.enforce_kernel_when_silent,
        );
        p.validate().map_err(|e| policy_key("policy", e))?;
        Ok(p)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

impl RawLimits {
    fn build(&self, global: Limits, key: &str) -> Result<Limits, ScenarioError> {
        let mut l = global;
        set(&mut l.soft_bytes, self.soft_bytes.map(|s| s.0));
        set(&mut l.hard_bytes, self.hard_bytes.map(|s| s.0));
        set(&mut l.soft_grace_ticks, self.soft_grace_ticks);
        set(&mut l.exit_deadline_ticks, self.exit_deadline_ticks);
        l.validate().map_err(|e| policy_key(key, e))?;
        Ok(l)
    }
}

fn check_name(name: &str, key: &str) -> Result<(), ScenarioError> {
    if name.is_empty() {
        return Err(ScenarioError::invalid(key, "must not be empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ScenarioError::invalid(
            key,
            format!("{name:?} is longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ScenarioError::invalid(
            key,
            format!("{name:?} contains whitespace or control characters"),
        ));
    }
    Ok(())
}

impl RawReport {
    fn build(&self, own_name: &str, key: &str) -> Result<ReportMode, ScenarioError> {
        let mode = self.mode;
        let only_for = |param: &str, present: bool, allowed: &[ModeWord]| {
            if present && !allowed.contains(&mode) {
                Err(ScenarioError::invalid(
                    format!("{key}.{param}"),
                    format!("does not apply to mode {:?}", mode_word(mode)),
                ))
            } else {
                Ok(())
            }
        };
        only_for("factor", self.factor.is_some(), &[ModeWord::Under])?;
        only_for("fixed", self.fixed.is_some(), &[ModeWord::Under])?;
        only_for("claim", self.claim.is_some(), &[ModeWord::Spoof])?;
        only_for("frames", self.frames.is_some(), &[ModeWord::Flood])?;
        Ok(match mode {
            ModeWord::Honest => ReportMode::Honest,
            ModeWord::Silent => ReportMode::Silent,
            ModeWord::Garbage => ReportMode::Garbage,
            ModeWord::Under => match (self.factor, self.fixed) {
                (Some(0), None) => {
                    return Err(ScenarioError::invalid(
                        format!("{key}.factor"),
                        "must be at least 1",
                    ))
                }
                (Some(f), None) => ReportMode::UnderFactor(f),
                (None, Some(fixed)) => ReportMode::UnderFixed(fixed.0),
                _ => {
                    return Err(ScenarioError::invalid(
                        key,
                        "mode \"under\" needs exactly one of `factor` or `fixed`",
                    ))
                }
            },
            ModeWord::Spoof => {
                let Some(claim) = &self.claim else {
                    return Err(ScenarioError::invalid(
                        key,
                        "mode \"spoof\" needs `claim`, the name it pretends to be",
                    ));
                };
                check_name(claim, &format!("{key}.claim"))?;
                if claim == own_name {
                    return Err(ScenarioError::invalid(
                        format!("{key}.claim"),
                        "must name another subject than the sender",
                    ));
                }
                ReportMode::Spoof {
                    claim: claim.clone(),
                }
            }
            ModeWord::Flood => match self.frames {
                Some(n @ 1..=MAX_FLOOD_FRAMES) => ReportMode::Flood { frames: n },
                Some(_) => {
                    return Err(ScenarioError::invalid(
                        format!("{key}.frames"),
                        format!("must be in 1..={MAX_FLOOD_FRAMES}"),
                    ))
                }
                None => {
                    return Err(ScenarioError::invalid(
                        key,
                        "mode \"flood\" needs `frames`, the frames sent per tick",
                    ))
                }
            },
        })
    }
}

fn mode_word(mode: ModeWord) -> &'static str {
    match mode {
        ModeWord::Honest => "honest",
        ModeWord::Under => "under",
        ModeWord::Silent => "silent",
        ModeWord::Spoof => "spoof",
        ModeWord::Flood => "flood",
        ModeWord::Garbage => "garbage",
    }
}

impl RawScenario {
    fn validate(self) -> Result<Scenario, ScenarioError> {
        check_name(&self.name, "name")?;
        if !(1..=MAX_TICKS).contains(&self.ticks) {
            return Err(ScenarioError::invalid(
                "ticks",
                format!("must be in 1..={MAX_TICKS}"),
            ));
        }
        let subject_capacity = self
            .subject_capacity
            .unwrap_or(oomd::limits::DEFAULT_SUBJECTS);
        if !SUPPORTED_SUBJECT_CAPACITIES.contains(&subject_capacity) {
            return Err(ScenarioError::invalid(
                "subject_capacity",
                format!(
                    "{subject_capacity} is not supported (supported: {SUPPORTED_SUBJECT_CAPACITIES:?})"
                ),
            ));
        }
        let policy = self.policy.build()?;
        if self.subjects.is_empty() {
            return Err(ScenarioError::invalid(
                "subject",
                "a scenario needs at least one [[subject]]",
            ));
        }
        let mut subjects = Vec::with_capacity(self.subjects.len());
        for (i, raw) in self.subjects.iter().enumerate() {
            subjects.push(raw.build(i, &self, &policy, &subjects)?);
        }
        let per_tick: u64 = subjects
            .iter()
            .map(|s| {
                let frames = match s.report {
                    ReportMode::Silent => 0,
                    ReportMode::Flood { frames } => u64::from(frames),
                    _ => 1,
                };
                frames + u64::from(self.kernel_readings)
            })
            .sum::<u64>()
            + 1;
        let estimate = per_tick.saturating_mul(self.ticks);
        if estimate > MAX_INPUTS {
            return Err(ScenarioError::invalid(
                "ticks",
                format!(
                    "this scenario would feed about {estimate} inputs, more than the \
                     {MAX_INPUTS} a run may hold"
                ),
            ));
        }
        let authority = self.authority.build(&subjects)?;
        let expect = self.expect.build()?;
        Ok(Scenario {
            name: self.name,
            description: self.description,
            setup: sim::Setup {
                seed: self.seed,
                ticks: self.ticks,
                policy,
                subject_capacity,
                kernel_readings: self.kernel_readings,
                authority,
                subjects,
            },
            expect,
        })
    }
}

impl RawSubject {
    fn build(
        &self,
        i: usize,
        scenario: &RawScenario,
        policy: &Policy,
        earlier: &[SubjectSpec],
    ) -> Result<SubjectSpec, ScenarioError> {
        let key = |field: &str| format!("subject[{i}].{field}");
        check_name(&self.name, &key("name"))?;
        if earlier.iter().any(|s| s.name == self.name) {
            return Err(ScenarioError::invalid(
                key("name"),
                format!("{:?} is used by an earlier subject", self.name),
            ));
        }
        let start_tick = self.start_tick.unwrap_or(1);
        if !(1..=scenario.ticks).contains(&start_tick) {
            return Err(ScenarioError::invalid(
                key("start_tick"),
                format!("must be in 1..={} (the scenario's ticks)", scenario.ticks),
            ));
        }
        let start_bytes = self.start_bytes.map_or(0, |s| s.0);
        if let Some(max) = self.max_bytes {
            if max.0 < start_bytes {
                return Err(ScenarioError::invalid(
                    key("max_bytes"),
                    "must not be below start_bytes",
                ));
            }
        }
        let report = match &self.report {
            None => ReportMode::Honest,
            Some(ReportForm(r)) => r.build(&self.name, &key("report"))?,
        };
        let limits = match &self.limits {
            None => None,
            Some(l) => Some(l.build(policy.limits, &key("limits"))?),
        };
        if self.kernel_overhead.is_some() && !scenario.kernel_readings {
            return Err(ScenarioError::invalid(
                key("kernel_overhead"),
                "has no effect unless `kernel_readings = true` at the top level",
            ));
        }
        if self.restart_after == Some(0) {
            return Err(ScenarioError::invalid(
                key("restart_after"),
                "must be at least 1",
            ));
        }
        Ok(SubjectSpec {
            name: self.name.clone(),
            class: match self.class.unwrap_or(ClassWord::Standard) {
                ClassWord::Background => SubjectClass::Background,
                ClassWord::Standard => SubjectClass::Standard,
                ClassWord::Foreground => SubjectClass::Foreground,
            },
            critical: self.critical,
            start_tick,
            start_bytes,
            growth_per_tick: self.growth_per_tick.map_or(0, |s| s.0),
            jitter: self.jitter.map_or(0, |s| s.0),
            max_bytes: self.max_bytes.map(|s| s.0),
            report,
            limits,
            kernel_overhead: self.kernel_overhead.map_or(0, |s| s.0),
            restart_after: self.restart_after,
        })
    }
}

impl RawAuthority {
    fn build(&self, subjects: &[SubjectSpec]) -> Result<AuthoritySpec, ScenarioError> {
        let defaults = AuthoritySpec::default();
        let ack_delay = self.ack_delay.map_or(defaults.ack_delay, |d| d.0);
        if ack_delay.min == 0 {
            return Err(ScenarioError::invalid(
                "authority.ack_delay",
                "must be at least 1 tick (an answer arrives in a later tick than its request)",
            ));
        }
        let exit_delay = self.exit_delay.map_or(defaults.exit_delay, |d| d.0);
        for (key, d) in [
            ("authority.ack_delay", ack_delay),
            ("authority.exit_delay", exit_delay),
        ] {
            if d.max > MAX_DELAY_TICKS {
                return Err(ScenarioError::invalid(
                    key,
                    format!("must be at most {MAX_DELAY_TICKS} ticks"),
                ));
            }
        }
        for (key, list) in [
            ("authority.refuse", &self.refuse),
            ("authority.never_exit", &self.never_exit),
            ("authority.ignore_graceful", &self.ignore_graceful),
        ] {
            if let Some(unknown) = list
                .iter()
                .find(|n| !subjects.iter().any(|s| &s.name == *n))
            {
                return Err(ScenarioError::invalid(
                    key,
                    format!("{unknown:?} is not the name of a [[subject]]"),
                ));
            }
        }
        Ok(AuthoritySpec {
            ack_delay,
            exit_delay,
            refuse: self.refuse.clone(),
            refuse_reason: match self.refuse_reason {
                None => defaults.refuse_reason,
                Some(ReasonWord::Critical) => RefusalReason::Critical,
                Some(ReasonWord::UnknownSubject) => RefusalReason::UnknownSubject,
                Some(ReasonWord::NotPermitted) => RefusalReason::NotPermitted,
                Some(ReasonWord::Unavailable) => RefusalReason::Unavailable,
            },
            never_exit: self.never_exit.clone(),
            ignore_graceful: self.ignore_graceful.clone(),
        })
    }
}

impl RawExpect {
    fn build(&self) -> Result<Expect, ScenarioError> {
        let mut rejected = Vec::new();
        for (word, &count) in &self.rejected {
            let Some(reason) = Rejection::ALL.iter().find(|r| r.as_str() == word) else {
                let words: Vec<&str> = Rejection::ALL.iter().map(|r| r.as_str()).collect();
                return Err(ScenarioError::invalid(
                    format!("expect.rejected.{word}"),
                    format!("not a rejection reason (one of: {})", words.join(", ")),
                ));
            };
            rejected.push((*reason, count));
        }
        for (key, list) in [
            ("expect.lines", &self.lines),
            ("expect.absent", &self.absent),
        ] {
            if let Some(i) = list.iter().position(String::is_empty) {
                return Err(ScenarioError::invalid(
                    format!("{key}[{i}]"),
                    "an empty string matches every line",
                ));
            }
        }
        Ok(Expect {
            lines: self.lines.clone(),
            absent: self.absent.clone(),
            rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_integers_and_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 2 tib "), Ok(2 << 40));
        assert_eq!(parse_size("1_000 B"), Ok(1000));
        for bad in [
            "",
            "MiB",
            "12 MB",
            "1.5 GiB",
            "-1",
            "12 parsecs",
            "99999999999 TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
