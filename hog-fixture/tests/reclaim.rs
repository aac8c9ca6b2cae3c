//! `--reclaim`: what a hog does with oomd's reclaim request, seen from oomd's end of its
//! memstat socket (the frames and the acknowledgement it sends) and from /proc (what the
//! kernel charges it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{spawn, vm_rss, MIB};
use memstat::{Frame, ReclaimAck, ReclaimRequest};

/// Asks hog `how` (started holding 12 MiB, its cap: it does not grow) to get down to 4 MiB, and returns the frames it
/// sent after the request, up to and including the first one after its acknowledgement, and
/// its resident set then.
fn ask(how: &str) -> (Vec<Frame>, Option<ReclaimAck>, u64) {
    let (hog, mut frames) = spawn(
        &format!("reclaim-{how}"),
        &[
            "--reclaim",
            how,
            "--start",
            "12MiB",
            "--chunk",
            "1MiB",
            "--max",
            "12MiB",
        ],
    );
    // The first frame shows it holding what it started with.
    let first = frames.until(|f| f.current_bytes >= 12 * MIB);
    assert!(!first.is_empty());
    let request = ReclaimRequest {
        id: 42,
        target_bytes: 4 * MIB,
        deadline_ms: 3000,
    };
    let mut buf = [0; memstat::MAX_REQUEST_LEN];
    let n = request.encode(&mut buf).unwrap();
    // Garbage first (a truncated request, noise): counted and ignored by its publisher.
    frames.send(b"MR\x01\xff");
    frames.send(&[0xAB; 40]);
    frames.send(&buf[..n]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = Vec::new();
    let mut ack = None;
    while let Some(message) = frames.next_message_before(deadline) {
        if memstat::is_ack(&message) {
            ack = Some(ReclaimAck::decode(&message).expect("a valid acknowledgement"));
            continue;
        }
        after.push(Frame::decode(&message).expect("a valid frame"));
        if ack.is_some() {
            break;
        }
    }
    hog.wait_log("reclaim acknowledged id=42");
    let rss = vm_rss(hog.pid().as_raw_nonzero().get()).expect("running");
    (after, ack, rss)
}

#[test]
fn a_cooperative_hog_frees_down_to_the_target_then_acknowledges() {
    let (after, ack, rss) = ask("cooperative");
    assert_eq!(ack, Some(ReclaimAck { id: 42 }));
    let last = after.last().expect("a frame after the acknowledgement");
    assert!(last.current_bytes <= 4 * MIB, "{after:?}");
    assert!(rss < 10 * MIB, "the kernel saw the memory go: VmRSS {rss}");
}

#[test]
fn a_stubborn_hog_acknowledges_and_keeps_everything() {
    let (after, ack, rss) = ask("stubborn");
    assert_eq!(ack, Some(ReclaimAck { id: 42 }));
    assert!(
        after.iter().all(|f| f.current_bytes >= 12 * MIB),
        "{after:?}"
    );
    assert!(rss >= 12 * MIB, "VmRSS {rss}");
}

#[test]
fn a_liar_reports_the_target_and_keeps_everything() {
    let (after, ack, rss) = ask("liar");
    assert_eq!(ack, Some(ReclaimAck { id: 42 }));
    let last = after.last().expect("a frame after the acknowledgement");
    assert!(last.current_bytes <= 4 * MIB, "{after:?}");
    assert!(rss >= 12 * MIB, "the kernel still charges it: VmRSS {rss}");
}

#[test]
fn a_hog_that_ignores_the_contract_never_acknowledges() {
    let (hog, mut frames) = spawn(
        "reclaim-ignore",
        &["--start", "2MiB", "--chunk", "1MiB", "--max", "4MiB"],
    );
    frames.until(|f| f.current_bytes >= 2 * MIB);
    let mut buf = [0; memstat::MAX_REQUEST_LEN];
    let n = ReclaimRequest {
        id: 7,
        target_bytes: 0,
        deadline_ms: 100,
    }
    .encode(&mut buf)
    .unwrap();
    frames.send(&buf[..n]);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while let Some(message) = frames.next_message_before(deadline) {
        assert!(
            !memstat::is_ack(&message),
            "an acknowledgement from --reclaim ignore"
        );
        let frame = Frame::decode(&message).expect("a frame");
        assert!(
            frame.current_bytes >= 2 * MIB,
            "it freed something: {frame:?}"
        );
    }
    assert!(
        !hog.stderr().contains("reclaim request"),
        "{}",
        hog.stderr()
    );
}
