//! The state machine's footprint at the default capacities is part of its contract.

use core::mem::size_of;

use oomd::{bounds, Watchdog};

#[test]
fn default_watchdog_fits_in_64_kib() {
    let size = size_of::<Watchdog>();
    println!(
        "size_of::<Watchdog<{}, {}>>() = {size} bytes",
        bounds::DEFAULT_SUBJECTS,
        bounds::DEFAULT_EVENTS
    );
    assert!(size < 64 * 1024, "{size} bytes");
}

#[test]
fn rows_and_events_stay_small() {
    // Guards against a field added without thought: each row and event is paid 256 and 1024
    // times over.
    println!("event: {} bytes", size_of::<oomd::Event>());
    assert!(size_of::<oomd::EventKind>() <= 32);
    assert!(size_of::<oomd::Input>() <= 64);
}
