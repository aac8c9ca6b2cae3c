//! `selftest-client`: runs every behaviour and prints its markers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use selftest_client::{Session, Settings, ALL};

/// Proves oomd's behaviours on a running system and prints one marker per behaviour.
#[derive(Debug, Parser)]
#[command(name = "selftest-client", version)]
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
    /// Run only the behaviours whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

/// One marker line, with one write.
fn marker(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let _ = nix::unistd::write(std::io::stdout(), &bytes);
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = Settings {
        execd_socket: args.execd_socket,
        oomd_socket: args.oomd_socket,
        step_timeout: Duration::from_secs(args.step_timeout_secs),
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
