//! Frame v1 encode/decode cost. Results and the target are recorded in `docs/perf.md`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use memstat::{Frame, SubjectId, MAX_FRAME_LEN};

/// What a service typically sends: a few hundred frames in, tens of MiB, with a claim.
const TYPICAL: Frame = Frame {
    seq: 412,
    current_bytes: 48 * 1024 * 1024 + 12_345,
    peak_bytes: 64 * 1024 * 1024,
    claimed_subject: Some(SubjectId::from_name("hog")),
};

/// Every field at its widest: `MAX_FRAME_LEN` bytes.
const WIDEST: Frame = Frame {
    seq: u64::MAX,
    current_bytes: u64::MAX,
    peak_bytes: u64::MAX,
    claimed_subject: Some(SubjectId(u64::MAX)),
};

fn bench_frame(c: &mut Criterion, name: &str, frame: Frame) {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = frame.encode(&mut buf).unwrap();
    let bytes = buf[..len].to_vec();

    c.bench_function(&format!("encode/{name}"), |b| {
        let mut out = [0u8; MAX_FRAME_LEN];
        b.iter(|| black_box(black_box(&frame).encode(black_box(&mut out))))
    });
    c.bench_function(&format!("decode/{name}"), |b| {
        b.iter(|| black_box(Frame::decode(black_box(&bytes))))
    });
}

fn codec(c: &mut Criterion) {
    bench_frame(c, "typical", TYPICAL);
    bench_frame(c, "widest", WIDEST);
}

criterion_group!(benches, codec);
criterion_main!(benches);
