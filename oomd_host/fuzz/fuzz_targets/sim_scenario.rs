//! `oomd_host::scenario::Scenario::parse` (the `oomd-sim` scenario format) on any text: an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd_host::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Scenario::parse(text);
});
