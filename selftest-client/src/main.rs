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
        .filter(|b| args.only.as_deref().map_or(true, |o| b.name.contains(o)))
    {
        match (b.run)(&mut session) {
            Ok(()) => marker(&format!("SELFTEST: {} ok", b.name)),
            Err(reason) => {
                failed += 1;
                marker(&format!("SELFTEST: {} FAIL: {reason}", b.name));
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
