//! The checks a memstat frame passes before its figure is believed.

use memstat::SubjectId;

use crate::subject::Subject;
use crate::{Payload, Rejection, Tick};

/// Which budget a frame is taken under.
#[derive(Clone, Copy)]
pub(crate) enum Budget {
    /// An ordinary frame: at most this many per sender per tick.
    PerTick(u16),
    /// The coalesced latest frame of a sender over its budget: at most one per tick.
    Latest,
}

/// The checks a frame passes, cheapest first; on success the subject's report is updated and
/// its new figure (`current_bytes`) returned. `sender` is who the transport authenticated,
/// never what the payload says.
// Inlined into the frame path: measurably faster (benches/core.rs, docs/perf.md).
#[inline(always)]
pub(crate) fn accept_frame(
    s: &mut Subject,
    sender: SubjectId,
    budget: Budget,
    payload: &Payload,
    now: Tick,
) -> Result<u64, Rejection> {
    if !s.running() {
        return Err(Rejection::NotRunning);
    }
    // A frame counts against the budget whether or not it turns out valid: floods of garbage
    // are as costly as floods of frames.
    match budget {
        Budget::PerTick(n) if s.frames_this_tick >= n => return Err(Rejection::OverBudget),
        Budget::PerTick(_) => s.frames_this_tick += 1,
        Budget::Latest if s.latest_taken() => return Err(Rejection::OverBudget),
        Budget::Latest => s.set_latest_taken(true),
    }
    let frame = payload.decode().map_err(Rejection::from_decode)?;
    if frame.claimed_subject.is_some_and(|claim| claim != sender) {
        return Err(Rejection::ClaimMismatch);
    }
    if s.last_seq()
        .is_some_and(|last| !seq_is_newer(frame.seq, last))
    {
        return Err(Rejection::StaleSequence);
    }
    s.set_report(frame.seq, frame.current_bytes, now);
    Ok(frame.current_bytes)
}

/// Whether `seq` follows `last` in the 64-bit sequence space, which wraps: serial-number
/// arithmetic (RFC 1982), so `0` follows `u64::MAX` and a sender's jump to the end of the
/// space cannot freeze its report. `seq` is newer when it is 1 to 2^63 − 1 steps ahead of
/// `last`; equal, behind, or exactly 2^63 away (ambiguous) is stale.
pub(crate) const fn seq_is_newer(seq: u64, last: u64) -> bool {
    let ahead = seq.wrapping_sub(last);
    ahead != 0 && ahead < 1 << 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_wrap() {
        assert!(seq_is_newer(2, 1));
        assert!(seq_is_newer(0, u64::MAX));
        assert!(!seq_is_newer(1, 1));
        assert!(!seq_is_newer(1, 2));
        assert!(
            !seq_is_newer(1 << 63, 0),
            "exactly half the space away is ambiguous"
        );
        assert!(seq_is_newer((1 << 63) - 1, 0));
    }
}
