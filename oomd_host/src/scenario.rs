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
use std::path::Path;

use oomd::{Policy, RefusalReason, Rejection, SubjectClass};
use oomd_config::policy::{check_name, LimitsTable, PolicyTable, Size};
use oomd_config::toml_file::{load_file, parse_toml};
use oomd_config::ConfigError;
use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::sim::{
    self, AuthoritySpec, Delay, ReclaimMode, ReportMode, Run, SimError, SubjectSpec,
    SUPPORTED_SUBJECT_CAPACITIES,
};

/// Most ticks a scenario may simulate: a run is kept whole in memory.
pub const MAX_TICKS: u64 = 1_000_000;
/// Most frames a flooding subject may send per tick.
pub const MAX_FLOOD_FRAMES: u32 = 10_000;
/// Longest delay, in ticks.
pub const MAX_DELAY_TICKS: u64 = MAX_TICKS;
/// Most inputs a scenario may feed (estimated before running): a run is kept whole in memory,
/// at about a hundred bytes per input.
pub const MAX_INPUTS: u64 = 5_000_000;

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
pub struct ScenarioRun {
    /// The run.
    pub run: Run,
    /// Unmet expectations; empty when the scenario passes.
    pub failures: Vec<ExpectFailure>,
}

impl Scenario {
    /// Parses and validates scenario text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        parse_toml::<RawScenario>(text)?.validate()
    }

    /// Reads, parses and validates a scenario file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        load_file(path.as_ref(), Self::parse)
    }

    /// Runs the simulation and checks the expectations.
    pub fn run(&self) -> Result<ScenarioRun, SimError> {
        let run = sim::run(&self.setup)?;
        let failures = self.expect.check(&run);
        Ok(ScenarioRun { run, failures })
    }
}

// ----- sizes and delays ---------------------------------------------------------------------

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
    policy: PolicyTable,
    #[serde(default)]
    authority: RawAuthority,
    #[serde(default, rename = "subject")]
    subjects: Vec<RawSubject>,
    #[serde(default)]
    expect: RawExpect,
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
    limits: Option<LimitsTable>,
    kernel_overhead: Option<Size>,
    restart_after: Option<u64>,
    reclaim: Option<ReclaimWord>,
    reclaim_delay_ticks: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ReclaimWord {
    Ignore,
    Cooperative,
    Stubborn,
    Liar,
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

impl RawReport {
    fn build(&self, own_name: &str, key: &str) -> Result<ReportMode, ConfigError> {
        let mode = self.mode;
        let only_for = |param: &str, present: bool, allowed: &[ModeWord]| {
            if present && !allowed.contains(&mode) {
                Err(ConfigError::invalid(
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
                    return Err(ConfigError::invalid(
                        format!("{key}.factor"),
                        "must be at least 1",
                    ))
                }
                (Some(f), None) => ReportMode::UnderFactor(f),
                (None, Some(fixed)) => ReportMode::UnderFixed(fixed.0),
                _ => {
                    return Err(ConfigError::invalid(
                        key,
                        "mode \"under\" needs exactly one of `factor` or `fixed`",
                    ))
                }
            },
            ModeWord::Spoof => {
                let Some(claim) = &self.claim else {
                    return Err(ConfigError::invalid(
                        key,
                        "mode \"spoof\" needs `claim`, the name it pretends to be",
                    ));
                };
                check_name(claim, &format!("{key}.claim"))?;
                if claim == own_name {
                    return Err(ConfigError::invalid(
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
                    return Err(ConfigError::invalid(
                        format!("{key}.frames"),
                        format!("must be in 1..={MAX_FLOOD_FRAMES}"),
                    ))
                }
                None => {
                    return Err(ConfigError::invalid(
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
    fn validate(self) -> Result<Scenario, ConfigError> {
        check_name(&self.name, "name")?;
        if !(1..=MAX_TICKS).contains(&self.ticks) {
            return Err(ConfigError::invalid(
                "ticks",
                format!("must be in 1..={MAX_TICKS}"),
            ));
        }
        let subject_capacity = self
            .subject_capacity
            .unwrap_or(oomd::bounds::DEFAULT_SUBJECTS);
        if !SUPPORTED_SUBJECT_CAPACITIES.contains(&subject_capacity) {
            return Err(ConfigError::invalid(
                "subject_capacity",
                format!(
                    "{subject_capacity} is not supported (supported: {SUPPORTED_SUBJECT_CAPACITIES:?})"
                ),
            ));
        }
        let policy = self.policy.build()?;
        if self.subjects.is_empty() {
            return Err(ConfigError::invalid(
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
            return Err(ConfigError::invalid(
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
    ) -> Result<SubjectSpec, ConfigError> {
        let key = |field: &str| format!("subject[{i}].{field}");
        check_name(&self.name, &key("name"))?;
        if earlier.iter().any(|s| s.name == self.name) {
            return Err(ConfigError::invalid(
                key("name"),
                format!("{:?} is used by an earlier subject", self.name),
            ));
        }
        let start_tick = self.start_tick.unwrap_or(1);
        if !(1..=scenario.ticks).contains(&start_tick) {
            return Err(ConfigError::invalid(
                key("start_tick"),
                format!("must be in 1..={} (the scenario's ticks)", scenario.ticks),
            ));
        }
        let start_bytes = self.start_bytes.map_or(0, |s| s.0);
        if let Some(max) = self.max_bytes {
            if max.0 < start_bytes {
                return Err(ConfigError::invalid(
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
            return Err(ConfigError::invalid(
                key("kernel_overhead"),
                "has no effect unless `kernel_readings = true` at the top level",
            ));
        }
        if self.restart_after == Some(0) {
            return Err(ConfigError::invalid(
                key("restart_after"),
                "must be at least 1",
            ));
        }
        let reclaim = match self.reclaim {
            None | Some(ReclaimWord::Ignore) => ReclaimMode::Ignore,
            Some(ReclaimWord::Cooperative) => ReclaimMode::Cooperative,
            Some(ReclaimWord::Stubborn) => ReclaimMode::Stubborn,
            Some(ReclaimWord::Liar) => ReclaimMode::Liar,
        };
        if reclaim != ReclaimMode::Ignore && report == ReportMode::Silent {
            return Err(ConfigError::invalid(
                key("reclaim"),
                format!(
                    "a silent subject has no memstat channel: it cannot hear a reclaim request, \
                     so reclaim = {:?} needs another report mode",
                    reclaim.as_str()
                ),
            ));
        }
        let reclaim_delay =
            match self.reclaim_delay_ticks {
                None => 1,
                Some(_) if reclaim == ReclaimMode::Ignore => return Err(ConfigError::invalid(
                    key("reclaim_delay_ticks"),
                    "has no effect unless `reclaim` is \"cooperative\", \"stubborn\" or \"liar\"",
                )),
                Some(n @ 1..=MAX_DELAY_TICKS) => n,
                Some(_) => {
                    return Err(ConfigError::invalid(
                        key("reclaim_delay_ticks"),
                        format!(
                        "must be in 1..={MAX_DELAY_TICKS} (an answer comes in a later tick than \
                         its request)"
                    ),
                    ))
                }
            };
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
            reclaim,
            reclaim_delay,
        })
    }
}

impl RawAuthority {
    fn build(&self, subjects: &[SubjectSpec]) -> Result<AuthoritySpec, ConfigError> {
        let defaults = AuthoritySpec::default();
        let ack_delay = self.ack_delay.map_or(defaults.ack_delay, |d| d.0);
        if ack_delay.min == 0 {
            return Err(ConfigError::invalid(
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
                return Err(ConfigError::invalid(
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
                return Err(ConfigError::invalid(
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
    fn build(&self) -> Result<Expect, ConfigError> {
        let mut rejected = Vec::new();
        for (word, &count) in &self.rejected {
            let Some(reason) = Rejection::ALL.iter().find(|r| r.as_str() == word) else {
                let words: Vec<&str> = Rejection::ALL.iter().map(|r| r.as_str()).collect();
                return Err(ConfigError::invalid(
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
                return Err(ConfigError::invalid(
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
