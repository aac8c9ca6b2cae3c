//! The durable audit log's recovery (`oomd_service::audit::recover`, what `AuditLog::open`
//! reads back at start) on any file contents: never a panic, and what it keeps is bounded
//! (`MAX_DECISIONS` kill decisions) whatever the files hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oomd_service::audit::{recover, MAX_DECISIONS};

/// The boot id of the seeds' records.
const BOOT: [u8; 36] = *b"6f1c0000-0000-4000-8000-000000000000";

fuzz_target!(|data: &[u8]| {
    // Three bytes lay the rest out: the rotated file's share of it (of 255), the checkpoint's
    // length (its last bytes), and the boot id (the seeds' one, or unreadable).
    let Some((&[rotated_share, checkpoint_len, boot_pick], rest)) = data.split_first_chunk::<3>()
    else {
        return;
    };
    let boot = if boot_pick & 1 == 0 { BOOT } else { [b' '; 36] };
    let (logs, checkpoint) =
        rest.split_at(rest.len() - usize::from(checkpoint_len).min(rest.len()));
    let cut = usize::from(rotated_share) * logs.len() / 255;
    let (rotated, current) = logs.split_at(cut);
    let recovered = recover(&[rotated, current], checkpoint, &boot);
    assert!(recovered.kill_decisions.len() <= MAX_DECISIONS);
    assert!(recovered.records + recovered.skipped <= data.len());
    if boot_pick & 1 == 1 {
        assert_eq!(
            recovered.last_in_this_boot, None,
            "a record of no boot counted as this one"
        );
        assert!(recovered.kill_decisions.is_empty());
    }
});
