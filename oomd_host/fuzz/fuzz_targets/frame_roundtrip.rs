//! `memstat::Frame` encode → decode: every frame with `peak_bytes >= current_bytes` encodes
//! within `MAX_FRAME_LEN` to exactly `encoded_len()` bytes, postcard behind the header, and
//! decodes to itself; an inconsistent one is refused by the encoder and never written.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use memstat::{EncodeError, Frame, SubjectId, HEADER_LEN, MAGIC, MAX_FRAME_LEN, VERSION};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(seq), Ok(current_bytes), Ok(peak_bytes), Ok(claim), Ok(room)) = (
        u.arbitrary::<u64>(),
        u.arbitrary::<u64>(),
        u.arbitrary::<u64>(),
        u.arbitrary::<Option<u64>>(),
        u.int_in_range(0..=MAX_FRAME_LEN),
    ) else {
        return;
    };
    let frame = Frame {
        seq,
        current_bytes,
        peak_bytes,
        claimed_subject: claim.map(SubjectId),
    };
    let mut buf = [0xa5u8; MAX_FRAME_LEN];
    let result = frame.encode(&mut buf[..room]);
    if peak_bytes < current_bytes {
        assert_eq!(result, Err(EncodeError::Inconsistent));
        assert!(
            buf.iter().all(|&b| b == 0xa5),
            "a refused frame wrote bytes"
        );
        return;
    }
    let needed = frame.encoded_len();
    assert!(needed <= MAX_FRAME_LEN);
    if room < needed {
        assert_eq!(result, Err(EncodeError::BufferTooSmall { needed }));
        return;
    }
    assert_eq!(result, Ok(needed));
    assert_eq!(&buf[..HEADER_LEN], &[MAGIC[0], MAGIC[1], VERSION][..]);
    let mut body = [0u8; MAX_FRAME_LEN];
    let body = postcard::to_slice(&frame, &mut body).expect("postcard encodes a frame");
    assert_eq!(&buf[HEADER_LEN..needed], &body[..]);
    assert_eq!(Frame::decode(&buf[..needed]), Ok(frame));
});
