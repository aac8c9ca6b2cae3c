//! Replaying recorded input logs, and recording a simulated run as one.
//!
//! The log format itself (header, one JSON input per line, name annotations, bounds) is
//! `oomd_config::input_log`, shared with the Linux service, which records in it too; it is
//! re-exported here. Replaying ([`replay`]) feeds the inputs to a fresh watchdog whose
//! authority only records requests (the answers are in the log), and yields the same event
//! log as the original run.

pub use oomd_config::input_log::{
    encode_input_line, encode_name_line, Header, InputLog, LogReader, LogWriter, ReadError,
    ReadErrorKind, FORMAT, MAX_HEADER_LEN, MAX_LINE_LEN, VERSION,
};

use crate::fixture::TraceNames;
use crate::sim::{Driver, Run, SimError};

/// The log of a finished simulated run.
#[must_use]
pub fn log_of(run: &Run) -> InputLog {
    InputLog {
        header: Header {
            policy: run.policy,
            subjects: run
                .names
                .iter()
                .map(|(id, name)| (id, name.to_owned()))
                .collect(),
            subject_capacity: run.subject_capacity,
            event_capacity: run.event_capacity,
        },
        inputs: run.inputs.clone(),
    }
}

/// The names of a log's header, for rendering a trace.
#[must_use]
pub fn names_of(header: &Header) -> TraceNames {
    let mut names = TraceNames::default();
    for name in header.subjects.values() {
        names.add(name);
    }
    names
}

/// Feeds the log's inputs to a fresh watchdog built from its header and returns the run.
/// Requests are only recorded: the log holds the authority's answers.
pub fn replay(log: &InputLog) -> Result<Run, SimError> {
    let mut driver = Driver::new(log.header.policy, log.header.subject_capacity)?;
    for &input in &log.inputs {
        // Refused inputs are part of the run being replayed.
        let _ = driver.feed(input);
    }
    driver.finish(names_of(&log.header))
}
