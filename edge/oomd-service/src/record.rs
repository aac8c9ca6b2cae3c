//! Recording the core's input stream to a bounded file, in `oomd-sim`'s log format, so that
//! `oomd-sim replay` reproduces the run's event log exactly.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use memstat::SubjectId;
use oomd::{Input, Policy};
use oomd_config::input_log::{
    encode_input_line, encode_name_line, Header, LogWriter, MAX_LINE_LEN,
};

use crate::Output;

/// Where to record, and how much at most.
#[derive(Debug, Clone)]
pub struct RecordTo {
    /// The log file, created at start; a file already there (the previous run's, before a
    /// restart) is first renamed to `<path>.1`, replacing an older one, so that a restart
    /// never loses the run before it.
    pub path: PathBuf,
    /// Bytes at most; recording stops (and says so) before the line that would exceed it.
    pub max_bytes: u64,
}

/// An open recording.
#[derive(Debug)]
pub(crate) struct Recorder {
    w: BufWriter<File>,
    written: u64,
    max: u64,
    stopped: bool,
    line: Box<[u8; MAX_LINE_LEN + 1]>,
}

impl Recorder {
    /// Creates the file and writes the header.
    pub(crate) fn start(to: &RecordTo, policy: Policy) -> io::Result<Recorder> {
        let header = Header {
            policy,
            subjects: Default::default(),
            subject_capacity: oomd::bounds::DEFAULT_SUBJECTS,
            event_capacity: oomd::bounds::DEFAULT_EVENTS,
        };
        if to.path.exists() {
            std::fs::rename(&to.path, crate::audit::rotated(&to.path))?;
        }
        let file = File::create(&to.path)?;
        let mut w = LogWriter::new(BufWriter::with_capacity(64 * 1024, file), &header)?.finish()?;
        w.flush()?;
        let written = w.get_ref().metadata()?.len();
        Ok(Recorder {
            w,
            written,
            max: to.max_bytes,
            stopped: false,
            line: Box::new([0; MAX_LINE_LEN + 1]),
        })
    }

    pub(crate) fn input(&mut self, input: &Input, out: &mut Output) {
        let n = encode_input_line(input, &mut self.line[..]);
        self.write(n, out);
    }

    pub(crate) fn name(&mut self, subject: SubjectId, name: &str, out: &mut Output) {
        let n = encode_name_line(subject, name, &mut self.line[..]);
        self.write(n, out);
    }

    /// Pushes buffered lines to the file (once per tick).
    pub(crate) fn flush(&mut self, out: &mut Output) {
        if !self.stopped && self.w.flush().is_err() {
            self.stop(out, "cannot write the recording");
        }
    }

    fn write(&mut self, n: Option<usize>, out: &mut Output) {
        if self.stopped {
            return;
        }
        let Some(n) = n else {
            return self.stop(out, "an input did not fit in a log line");
        };
        if self.written.saturating_add(n as u64) > self.max {
            let _ = self.w.flush();
            return self.stop(out, "the recording reached its size limit");
        }
        if self.w.write_all(&self.line[..n]).is_err() {
            return self.stop(out, "cannot write the recording");
        }
        self.written += n as u64;
    }

    fn stop(&mut self, out: &mut Output, why: &str) {
        self.stopped = true;
        out.note(format_args!(
            "oomd: recording stopped after {} bytes: {why}",
            self.written
        ));
    }
}
