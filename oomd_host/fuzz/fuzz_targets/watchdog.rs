//! The core: any sequence of ops (every kind of input the model test makes, with wider values,
//! and crashes) into `Watchdog::handle`, with the invariants of `oomd_host::invariants`
//! checked after every step and the replay check at the end. The same checker as
//! `oomd_host/tests/model.rs`.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oomd_host::fixture::RecordingAuthority;
use oomd_host::invariants::{policy, Checker, Op, Wd};

/// Steps of one run at most, as in the model test.
const MAX_OPS: usize = 250;

fuzz_target!(|data: &[u8]| {
    // `WATCHDOG_TRACE=1` prints every op, to turn a crash found into a test of `Op`s.
    let trace = std::env::var_os("WATCHDOG_TRACE").is_some();
    let mut u = Unstructured::new(data);
    let mut wd = Wd::new(policy()).expect("valid policy");
    let mut authority = RecordingAuthority::default();
    let mut checker = Checker::default();
    // An exhausted `Unstructured` still gives values (zeros), so stop when it is empty: the
    // run is as long as the input says.
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = oomd_fuzz::op(&mut u) else {
            break;
        };
        if trace {
            eprintln!("{op:?},");
        }
        let checked = if let Op::Crash = op {
            checker.crash(&mut wd, &mut authority)
        } else if let Some(input) = checker.input(&op, &wd, &authority.requests) {
            checker.step(&mut wd, &mut authority, input)
        } else {
            Ok(())
        };
        if let Err(violation) = checked {
            panic!("after {op:?}: {violation}");
        }
    }
    if let Err(violation) = checker.check_replay(&authority) {
        panic!("replay: {violation}");
    }
});
