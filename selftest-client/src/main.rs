//! `selftest-client`: runs every behaviour and prints its markers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use selftest_client::{Session, Settings, ALL};

/// Proves oomd's behaviours on a running system and prints one marker per behaviour.
#[derive(Debug, Parser)]
#[command(
    name = "selftest-client",
    version,
    after_help = "Examples:\n  selftest-client --execd-socket /run/oomd/execd.sock --oomd-socket /run/oomd/oomd.sock\n\nexecd runs it as the manifest's role = \"selftest\" service in the boot selftest\n(scripts/qemu-test.sh); each behaviour it proves prints one SELFTEST marker."
)]
struct Args {
    /// execd's control socket.
    #[arg(long, env = "OOMD_EXECD_SOCKET", default_value = oomd_proto::DEFAULT_EXECD_SOCKET)]
    execd_socket: PathBuf,
    /// oomd's control socket.
    #[arg(long, env = "OOMD_CONTROL_SOCKET", default_value = oomd_proto::DEFAULT_CONTROL_SOCKET)]
    oomd_socket: PathBuf,
    /// Longest single wait, in seconds.
    #[arg(long, default_value_t = 30)]
    step_timeout_secs: u64,
    /// The hard limit given to every hog (bytes, or with KiB/MiB/GiB).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    hog_hard: u64,
    /// Run only the behaviours whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// oomd's recording of its inputs (`oomd --record`); with `--copy-recording-to`, it (and
    /// the previous run's, `<path>.1`, if oomd was restarted) is copied once the behaviours
    /// are done, for `oomd-sim replay --against` on the host.
    #[arg(long, value_name = "PATH", requires = "copy_recording_to")]
    recording: Option<PathBuf>,
    /// Where to copy the recordings: a file, or a terminal such as the guest's second serial
    /// port (set raw first). Each as `=== recording <name> <bytes>`, its lines, `=== end`.
    #[arg(long, value_name = "DEST", requires = "recording")]
    copy_recording_to: Option<PathBuf>,
}

/// Copies the recordings at `path.1` (if any) and `path`, each cut after its last whole line
/// (oomd may be writing it), to `dest`; returns how many files and bytes.
fn copy_recordings(path: &std::path::Path, dest: &std::path::Path) -> Result<(usize, u64), String> {
    use std::io::Write as _;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dest)
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    // A terminal would turn each "\n" into "\r\n" and may echo: raw, if it is one.
    if let Ok(mut mode) = rustix::termios::tcgetattr(&out) {
        mode.make_raw();
        let _ = rustix::termios::tcsetattr(&out, rustix::termios::OptionalActions::Now, &mode);
    }
    let mut previous = path.as_os_str().to_owned();
    previous.push(".1");
    let (mut files, mut bytes) = (0, 0u64);
    for src in [PathBuf::from(previous), path.to_owned()] {
        let Ok(text) = std::fs::read(&src) else {
            continue;
        };
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let name = src
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut block = format!("=== recording {name} {whole}\n").into_bytes();
        block.extend_from_slice(&text[..whole]);
        block.extend_from_slice(b"=== end\n");
        out.write_all(&block)
            .and_then(|()| out.flush())
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        files += 1;
        bytes += whole as u64;
    }
    // On a terminal, wait until the last byte left the port: the host reads the copy once it
    // sees the marker that follows.
    let _ = rustix::termios::tcdrain(&out);
    if files == 0 {
        return Err(format!("no recording at {}", path.display()));
    }
    Ok((files, bytes))
}

/// Bytes, or a number with a KiB/MiB/GiB suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let shift = match unit.trim() {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => return Err(format!("unknown unit {other:?} (KiB, MiB or GiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// One marker line, with one write.
fn marker(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = rustix::io::write(std::io::stdout(), &bytes);
}

fn main() -> ExitCode {
    clidoc::generate_if_asked::<Args>();
    let args = Args::parse();
    let settings = Settings {
        execd_socket: args.execd_socket,
        oomd_socket: args.oomd_socket,
        step_timeout: Duration::from_secs(args.step_timeout_secs),
        hog_hard_bytes: args.hog_hard,
    };
    let mut session = match Session::open(settings) {
        Ok(s) => s,
        Err(e) => {
            marker(&format!("SELFTEST: setup FAIL: {e}"));
            marker("SELFTEST: Completed");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for b in ALL
        .iter()
        .filter(|b| args.only.as_deref().is_none_or(|o| b.name.contains(o)))
    {
        match (b.run)(&mut session) {
            Ok(()) => marker(&format!("SELFTEST: {} ok", b.name)),
            Err(reason) => {
                failed += 1;
                marker(&format!("SELFTEST: {} FAIL: {reason}", b.name));
            }
        }
    }
    if let (Some(recording), Some(dest)) = (&args.recording, &args.copy_recording_to) {
        // oomd flushes its recording at every tick: a few ticks' wait takes the last ones.
        std::thread::sleep(Duration::from_millis(300));
        match copy_recordings(recording, dest) {
            Ok((files, bytes)) => marker(&format!(
                "SELFTEST: recording copied files={files} bytes={bytes} to {}",
                dest.display()
            )),
            Err(e) => {
                failed += 1;
                marker(&format!("SELFTEST: recording copy FAIL: {e}"));
            }
        }
    }
    marker("SELFTEST: Completed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
