//! `oomd_config::input_log::InputLog::read_from` (a recorded input log, as `oomd-sim replay`
//! reads it) on any bytes: an error, never a panic; what reads writes back out and reads
//! again to the same log; and it replays (`oomd_host::record::replay`: any inputs at all into
//! a fresh core) without a panic, to the same run twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd_config::input_log::InputLog;

fuzz_target!(|data: &[u8]| {
    let Ok(log) = InputLog::read_from(data) else {
        return;
    };
    let mut out = Vec::new();
    log.write_to(&mut out).expect("a log read writes");
    let again = InputLog::read_from(&out[..]).expect("a log written reads");
    assert_eq!(again, log);
    let first = oomd_host::record::replay(&log).map(|run| format!("{run:?}"));
    let second = oomd_host::record::replay(&log).map(|run| format!("{run:?}"));
    assert_eq!(first.is_ok(), second.is_ok());
    assert_eq!(first.ok(), second.ok(), "a replay is deterministic");
});
