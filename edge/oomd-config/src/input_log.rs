//! Recorded input logs: every input of a run, one JSON value per line, replayable bit for bit.
//!
//! ```text
//! {"format":"oomd-input-log","version":1,"policy":{..},"subjects":{"<id hex>":"name",..},"subject_capacity":256,"event_capacity":2048}
//! {"Register":{"subject":..,"class":"Standard","critical":false}}
//! {"Frame":{"sender":..,"payload":[9,[77,83,1,..]]}}
//! {"Tick":1}
//! ```
//!
//! The first line is a [`Header`]; every other line is one [`oomd::Input`] in its serde form,
//! or a name annotation `{"name":{"subject":"<id hex>","name":"hog"}}`, which a recorder that
//! learns service names as it goes (the Linux service) writes before the first input that
//! concerns that service. Annotations change no input; readers add them to the header's names.
//! Lines are bounded ([`MAX_HEADER_LEN`], [`MAX_LINE_LEN`]) and read without holding more
//! than one line; an error names the line. The simulator (`oomd-sim --record`) and the Linux
//! service (`oomd --record`) both write this format, so the reader and writer work on any
//! `BufRead` / `Write`, one input at a time ([`LogWriter`], [`LogReader`], and the
//! allocation-free [`encode_input_line`] for the service's hot path) as well as whole
//! ([`InputLog`]).
//!
//! This module is the format only. Replaying a log (feeding its inputs to a fresh watchdog
//! and comparing event logs) is the simulator's job: `oomd_host::record::replay`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};

use memstat::SubjectId;
use oomd::{Input, Policy};
use serde::{Deserialize, Serialize};

/// The `format` field of every header.
pub const FORMAT: &str = "oomd-input-log";
/// The version this crate writes and the only one it reads.
pub const VERSION: u32 = 1;
/// Longest input line, in bytes (without the newline). A frame input, the largest, is a few
/// hundred bytes.
pub const MAX_LINE_LEN: usize = 4096;
/// Longest header line, in bytes: it lists every subject's name.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// What a reader needs before the inputs: how to build the watchdog, and names for the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The policy the watchdog started with.
    pub policy: Policy,
    /// Service names by id. Each id must be `SubjectId::from_name` of its name.
    pub subjects: BTreeMap<SubjectId, String>,
    /// The watchdog's subject-table capacity (it changes behaviour: a full table refuses).
    pub subject_capacity: usize,
    /// The recorder's event-ring capacity. Informational: the replayer reads events after
    /// every input, so its ring size does not change the log it produces.
    pub event_capacity: usize,
}

/// The header as it is written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHeader {
    format: String,
    version: u32,
    policy: Policy,
    subjects: BTreeMap<String, String>,
    subject_capacity: usize,
    event_capacity: usize,
}

/// A whole recorded run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputLog {
    /// The header.
    pub header: Header,
    /// Every input, in order.
    pub inputs: Vec<Input>,
}

impl InputLog {
    /// Writes the header line and one line per input.
    pub fn write_to(&self, w: impl Write) -> io::Result<()> {
        let mut writer = LogWriter::new(w, &self.header)?;
        for input in &self.inputs {
            writer.write_input(input)?;
        }
        writer.finish().map(|_| ())
    }

    /// Reads a whole log.
    pub fn read_from(r: impl BufRead) -> Result<Self, ReadError> {
        let mut reader = LogReader::new(r)?;
        let mut inputs = Vec::new();
        while let Some(input) = reader.next_input()? {
            inputs.push(input);
        }
        Ok(InputLog {
            header: reader.header,
            inputs,
        })
    }
}

// ----- writing ------------------------------------------------------------------------------

/// Writes a log one input at a time (the header first, at creation).
#[derive(Debug)]
pub struct LogWriter<W: Write> {
    w: W,
}

impl<W: Write> LogWriter<W> {
    /// Writes the header line. Fails, writing nothing, if it would exceed
    /// [`MAX_HEADER_LEN`].
    pub fn new(mut w: W, header: &Header) -> io::Result<Self> {
        let wire = WireHeader {
            format: FORMAT.to_owned(),
            version: VERSION,
            policy: header.policy,
            subjects: header
                .subjects
                .iter()
                .map(|(id, name)| (id.to_string(), name.clone()))
                .collect(),
            subject_capacity: header.subject_capacity,
            event_capacity: header.event_capacity,
        };
        let mut line = serde_json::to_vec(&wire)?;
        if line.len() > MAX_HEADER_LEN {
            // No reader would accept it: refuse to write it.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the header would be longer than {MAX_HEADER_LEN} bytes"),
            ));
        }
        line.push(b'\n');
        w.write_all(&line)?;
        Ok(LogWriter { w })
    }

    /// Writes one input line.
    pub fn write_input(&mut self, input: &Input) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, input)?;
        self.w.write_all(b"\n")
    }

    /// Writes a name annotation for `subject`.
    pub fn write_name(&mut self, subject: SubjectId, name: &str) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, &NameLine::new(subject, name))?;
        self.w.write_all(b"\n")
    }

    /// Flushes and hands the writer back.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Encodes one input line (with its newline) into `buf` without allocating; `None` when it
/// does not fit. For recorders that keep their own byte budget.
pub fn encode_input_line(input: &Input, buf: &mut [u8]) -> Option<usize> {
    encode_line(input, buf)
}

/// Encodes one name annotation line (with its newline) into `buf`; `None` when it does not fit.
pub fn encode_name_line(subject: SubjectId, name: &str, buf: &mut [u8]) -> Option<usize> {
    encode_line(&NameLine::new(subject, name), buf)
}

fn encode_line<T: Serialize>(value: &T, buf: &mut [u8]) -> Option<usize> {
    let total = buf.len();
    let mut w: &mut [u8] = buf;
    serde_json::to_writer(&mut w, value).ok()?;
    w.write_all(b"\n").ok()?;
    let n = total - w.len();
    (n <= MAX_LINE_LEN + 1).then_some(n)
}

/// `{"name":{"subject":"<hex>","name":".."}}`
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameLine<'a> {
    #[serde(borrow)]
    name: NameBody<'a>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody<'a> {
    subject: Hex,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
}

/// A subject id as 16 hex digits, as in the header.
struct Hex(SubjectId);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        parse_hex_id(&text)
            .map(Hex)
            .ok_or_else(|| serde::de::Error::custom("not a 16-digit hex subject id"))
    }
}

fn parse_hex_id(hex: &str) -> Option<SubjectId> {
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .map(SubjectId)
}

impl<'a> NameLine<'a> {
    fn new(subject: SubjectId, name: &'a str) -> Self {
        NameLine {
            name: NameBody {
                subject: Hex(subject),
                name: name.into(),
            },
        }
    }
}

// ----- reading ------------------------------------------------------------------------------

/// Why a log could not be read: the line at fault (1-based) and what is wrong with it.
#[derive(Debug)]
pub struct ReadError {
    /// The line at fault; the header is line 1.
    pub line: u64,
    /// What is wrong.
    pub kind: ReadErrorKind,
}

/// What is wrong with a line.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// Reading failed.
    Io(io::Error),
    /// The log is empty: no header.
    MissingHeader,
    /// The line is longer than allowed (it was not read to its end).
    TooLong {
        /// The bound it exceeds.
        max: usize,
    },
    /// The line is not UTF-8.
    NotUtf8,
    /// The header is not an `oomd-input-log` header.
    NotALog(String),
    /// The header is of another version.
    UnsupportedVersion(u64),
    /// The header is malformed: the key at fault and why.
    BadHeader {
        /// Path of the key at fault (`policy.limits.soft_bytes`), empty for the line itself.
        key: String,
        /// Why.
        message: String,
    },
    /// A line is not a valid input.
    BadInput {
        /// Column (1-based) where the JSON parser gave up.
        column: usize,
        /// Why.
        message: String,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            ReadErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            ReadErrorKind::MissingHeader => {
                write!(f, "empty log: expected a {FORMAT:?} header line")
            }
            ReadErrorKind::TooLong { max } => write!(f, "longer than {max} bytes"),
            ReadErrorKind::NotUtf8 => f.write_str("not UTF-8"),
            ReadErrorKind::NotALog(why) => write!(f, "not an {FORMAT:?} header: {why}"),
            ReadErrorKind::UnsupportedVersion(v) => write!(
                f,
                "log version {v} is not supported (this reader knows version {VERSION})"
            ),
            ReadErrorKind::BadHeader { key, message } if key.is_empty() => {
                write!(f, "bad header: {message}")
            }
            ReadErrorKind::BadHeader { key, message } => {
                write!(f, "bad header: {key}: {message}")
            }
            ReadErrorKind::BadInput { column, message } => {
                write!(f, "column {column}: not a valid input: {message}")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// What reading one bounded line found.
enum Line {
    Eof,
    Read,
    TooLong,
}

/// Reads up to and without the next `\n` into `buf`, but never more than `max` bytes.
fn read_bounded_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Read
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if buf.len() + take > max {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        r.consume(if done { take + 1 } else { take });
        if done {
            return Ok(Line::Read);
        }
    }
}

/// `serde_json` ends its messages with " at line L column C"; the line is always 1 here.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}

/// Reads a log one input at a time; the header is read at creation.
#[derive(Debug)]
pub struct LogReader<R: BufRead> {
    r: R,
    /// The log's header.
    pub header: Header,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> LogReader<R> {
    /// Reads and checks the header line.
    pub fn new(mut r: R) -> Result<Self, ReadError> {
        let err = |kind| ReadError { line: 1, kind };
        let mut buf = Vec::new();
        match read_bounded_line(&mut r, &mut buf, MAX_HEADER_LEN) {
            Err(e) => return Err(err(ReadErrorKind::Io(e))),
            Ok(Line::Eof) => return Err(err(ReadErrorKind::MissingHeader)),
            Ok(Line::TooLong) => {
                return Err(err(ReadErrorKind::TooLong {
                    max: MAX_HEADER_LEN,
                }))
            }
            Ok(Line::Read) => {}
        }
        let text = std::str::from_utf8(&buf).map_err(|_| err(ReadErrorKind::NotUtf8))?;
        let header = parse_header(text).map_err(err)?;
        Ok(LogReader {
            r,
            header,
            line: 1,
            buf,
        })
    }

    /// The next input, or `None` at the end of the log.
    pub fn next_input(&mut self) -> Result<Option<Input>, ReadError> {
        loop {
            self.line += 1;
            let line = self.line;
            let err = |kind| ReadError { line, kind };
            match read_bounded_line(&mut self.r, &mut self.buf, MAX_LINE_LEN) {
                Err(e) => return Err(err(ReadErrorKind::Io(e))),
                Ok(Line::Eof) => return Ok(None),
                Ok(Line::TooLong) => return Err(err(ReadErrorKind::TooLong { max: MAX_LINE_LEN })),
                Ok(Line::Read) => {}
            }
            let text = std::str::from_utf8(&self.buf).map_err(|_| err(ReadErrorKind::NotUtf8))?;
            let bad_json = |e: serde_json::Error| {
                err(ReadErrorKind::BadInput {
                    column: e.column(),
                    message: json_message(&e),
                })
            };
            if !text.starts_with("{\"name\":") {
                return serde_json::from_str(text).map(Some).map_err(bad_json);
            }
            // A name annotation: learn the name, read on.
            let annotation: NameLine<'_> = serde_json::from_str(text).map_err(bad_json)?;
            let (id, name) = (annotation.name.subject.0, annotation.name.name.into_owned());
            if SubjectId::from_name(&name) != id {
                return Err(err(ReadErrorKind::BadInput {
                    column: 1,
                    message: format!("{id} is not the id of {name:?}"),
                }));
            }
            self.header.subjects.insert(id, name);
        }
    }
}

fn parse_header(text: &str) -> Result<Header, ReadErrorKind> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ReadErrorKind::NotALog(format!("{} (column {})", json_message(&e), e.column()))
    })?;
    match value.get("format").and_then(serde_json::Value::as_str) {
        Some(FORMAT) => {}
        Some(other) => return Err(ReadErrorKind::NotALog(format!("format is {other:?}"))),
        None => return Err(ReadErrorKind::NotALog("no \"format\" field".to_owned())),
    }
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => return Err(ReadErrorKind::UnsupportedVersion(v)),
        None => {
            return Err(ReadErrorKind::BadHeader {
                key: "version".to_owned(),
                message: "missing or not an unsigned integer".to_owned(),
            })
        }
    }
    let wire: WireHeader = serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        ReadErrorKind::BadHeader {
            key: if key == "." { String::new() } else { key },
            message: e.into_inner().to_string(),
        }
    })?;
    let bad = |key: String, message: String| ReadErrorKind::BadHeader { key, message };
    wire.policy
        .validate()
        .map_err(|e| bad(format!("policy.{}", e.key()), e.to_string()))?;
    let mut subjects = BTreeMap::new();
    for (hex, name) in wire.subjects {
        let key = format!("subjects.{hex}");
        let id = parse_hex_id(&hex)
            .ok_or_else(|| bad(key.clone(), "not a 16-digit hex subject id".to_owned()))?;
        if SubjectId::from_name(&name) != id {
            return Err(bad(
                key,
                format!(
                    "is not the id of {name:?} (that is {})",
                    SubjectId::from_name(&name)
                ),
            ));
        }
        subjects.insert(id, name);
    }
    if wire.event_capacity == 0 {
        return Err(bad(
            "event_capacity".to_owned(),
            "must be above zero".to_owned(),
        ));
    }
    Ok(Header {
        policy: wire.policy,
        subjects,
        subject_capacity: wire.subject_capacity,
        event_capacity: wire.event_capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_stop_at_the_bound() {
        let mut r = io::Cursor::new(b"abc\ndefgh\nij".to_vec());
        let mut buf = Vec::new();
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 4),
            Ok(Line::Read)
        ));
        assert_eq!(buf, b"abc");
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 4),
            Ok(Line::TooLong)
        ));
        let mut r = io::Cursor::new(b"ij".to_vec());
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 4),
            Ok(Line::Read)
        ));
        assert_eq!(buf, b"ij");
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 4),
            Ok(Line::Eof)
        ));
    }
}
