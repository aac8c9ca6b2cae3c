//! proctree's `/proc` parsers on any bytes (`stat`, `smaps_rollup`'s `Pss:`, `statm`,
//! `children`): `None` or an error, never a panic; what they return is within the kernel's
//! ranges (positive pids, unique children, no more than the buffer holds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proctree::{parse_pids, parse_stat, Pid};

fuzz_target!(|data: &[u8]| {
    if let Some(stat) = parse_stat(data) {
        assert!(stat.pid > 0);
        assert!(stat.ppid >= 0 && stat.pgrp >= 0 && stat.session >= 0);
    }
    if let Some(pss) = proctree::mem::parse_pss(data) {
        assert_eq!(pss % 1024, 0);
    }
    let _ = proctree::mem::parse_statm_resident(data);
    let mut out = [0 as Pid; 8];
    if let Ok(n) = parse_pids(data, &mut out) {
        assert!(n <= out.len());
        let pids = &out[..n];
        for (i, p) in pids.iter().enumerate() {
            assert!(*p > 0);
            assert!(!pids[..i].contains(p));
        }
    }
});
