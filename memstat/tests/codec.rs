//! Frame v1 codec: golden bytes, round trips, and one concrete input per error.
//!
//! The golden vectors here are the ones printed in `docs/memstat-wire.md`; change both or
//! neither (and a change means a new version byte).
#![allow(clippy::unwrap_used)]

use memstat::{DecodeError, EncodeError, Frame, SubjectId, MAX_FRAME_LEN};

fn frame(seq: u64, current_bytes: u64, peak_bytes: u64, claim: Option<SubjectId>) -> Frame {
    Frame {
        seq,
        current_bytes,
        peak_bytes,
        claimed_subject: claim,
    }
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let len = frame.encode(&mut buf).unwrap();
    assert_eq!(
        len,
        frame.encoded_len(),
        "encoded_len disagrees with encode"
    );
    buf[..len].to_vec()
}

const HOG: SubjectId = SubjectId::from_name("hog");

/// (name, frame, exact bytes). Keep in sync with docs/memstat-wire.md.
fn golden() -> [(&'static str, Frame, &'static [u8]); 4] {
    [
        (
            "all zero, no claim",
            frame(0, 0, 0, None),
            &[0x4d, 0x53, 0x01, 0x00, 0x00, 0x00, 0x00],
        ),
        (
            "small values, no claim",
            frame(1, 300, 1000, None),
            &[0x4d, 0x53, 0x01, 0x01, 0xac, 0x02, 0xe8, 0x07, 0x00],
        ),
        (
            "claim of \"hog\"",
            frame(7, 64 * 1024, 1024 * 1024, Some(HOG)),
            &[
                0x4d, 0x53, 0x01, // header
                0x07, // seq
                0x80, 0x80, 0x04, // current_bytes = 65536
                0x80, 0x80, 0x40, // peak_bytes = 1048576
                0x01, 0xbd, 0xf5, 0xd6, 0xff, 0x92, 0xe3, 0xc5, 0xaf, 0x33, // Some(hog)
            ],
        ),
        (
            "every field at its widest (MAX_FRAME_LEN)",
            frame(u64::MAX, u64::MAX, u64::MAX, Some(SubjectId(u64::MAX))),
            &[
                0x4d, 0x53, 0x01, // header
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // seq
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // current_bytes
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // peak_bytes
                0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // claim
            ],
        ),
    ]
}

#[test]
fn hog_subject_id_is_the_fnv1a64_of_its_name() {
    assert_eq!(HOG.get(), 0x335f_1719_2ff5_babd);
}

#[test]
fn golden_frames_encode_to_their_pinned_bytes() {
    for (name, frame, bytes) in golden() {
        assert_eq!(encode(&frame), bytes, "{name}");
    }
}

#[test]
fn golden_bytes_decode_to_their_frames() {
    for (name, frame, bytes) in golden() {
        assert_eq!(Frame::decode(bytes), Ok(frame), "{name}");
    }
}

#[test]
fn widest_frame_is_exactly_max_frame_len() {
    let widest = golden()[3].1;
    assert_eq!(widest.encoded_len(), MAX_FRAME_LEN);
    assert_eq!(MAX_FRAME_LEN, 44);
}

#[test]
fn several_frames_round_trip() {
    let frames = [
        frame(0, 0, 0, None),
        frame(1, 127, 128, None),
        frame(2, 16_383, 16_384, Some(SubjectId::from_name("samgrd"))),
        frame(3, 1 << 32, 1 << 40, Some(SubjectId(0))),
        frame(u64::MAX - 1, 5, 5, Some(SubjectId(1))),
    ];
    for f in frames {
        assert_eq!(Frame::decode(&encode(&f)), Ok(f));
    }
}

#[test]
fn encode_into_a_buffer_of_exactly_encoded_len_fits() {
    let f = golden()[2].1;
    let mut buf = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut buf), Ok(f.encoded_len()));
}

// ---- decode errors, one concrete input each -------------------------------------------------

#[test]
fn oversize_input_is_rejected_before_anything_else() {
    let mut bytes = golden()[3].2.to_vec();
    bytes.push(0);
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::Oversize { len: 45 })
    );
    assert_eq!(
        Frame::decode(&[0xaa; 100]),
        Err(DecodeError::Oversize { len: 100 })
    );
}

#[test]
fn wrong_magic_is_a_magic_mismatch() {
    assert_eq!(
        Frame::decode(b"XS\x01\0\0\0\0"),
        Err(DecodeError::MagicMismatch)
    );
    assert_eq!(
        Frame::decode(b"Ms\x01\0\0\0\0"),
        Err(DecodeError::MagicMismatch)
    );
}

#[test]
fn short_input_with_wrong_magic_is_a_magic_mismatch() {
    assert_eq!(Frame::decode(b"X"), Err(DecodeError::MagicMismatch));
    assert_eq!(Frame::decode(b"MX"), Err(DecodeError::MagicMismatch));
}

#[test]
fn short_input_that_could_still_be_a_frame_is_truncated() {
    assert_eq!(Frame::decode(b""), Err(DecodeError::Truncated));
    assert_eq!(Frame::decode(b"M"), Err(DecodeError::Truncated));
    assert_eq!(Frame::decode(b"MS"), Err(DecodeError::Truncated));
}

#[test]
fn unknown_version_is_unsupported() {
    assert_eq!(
        Frame::decode(b"MS\x02\0\0\0\0"),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        Frame::decode(b"MS\x00\0\0\0\0"),
        Err(DecodeError::UnsupportedVersion { version: 0 })
    );
    // The version is judged before the body: a v2 header with no body is still v2.
    assert_eq!(
        Frame::decode(b"MS\xff"),
        Err(DecodeError::UnsupportedVersion { version: 0xff })
    );
}

#[test]
fn every_proper_prefix_of_a_golden_frame_is_truncated() {
    for (name, _, bytes) in golden() {
        for len in 0..bytes.len() {
            assert_eq!(
                Frame::decode(&bytes[..len]),
                Err(DecodeError::Truncated),
                "{name}, first {len} bytes"
            );
        }
    }
}

#[test]
fn header_alone_and_unfinished_varint_are_truncated() {
    assert_eq!(Frame::decode(b"MS\x01"), Err(DecodeError::Truncated));
    assert_eq!(Frame::decode(b"MS\x01\x80"), Err(DecodeError::Truncated));
    assert_eq!(
        Frame::decode(b"MS\x01\0\0\0\x01"),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn option_tag_other_than_0_or_1_is_malformed() {
    assert_eq!(
        Frame::decode(b"MS\x01\0\0\0\x02"),
        Err(DecodeError::Malformed)
    );
    assert_eq!(
        Frame::decode(b"MS\x01\0\0\0\xff"),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn overlong_varint_is_malformed() {
    // Ten bytes that all say "more follows": longer than any u64.
    let mut bytes = b"MS\x01".to_vec();
    bytes.extend_from_slice(&[0x80; 10]);
    bytes.extend_from_slice(&[0x00, 0x00, 0x00, 0x00]);
    assert_eq!(Frame::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn varint_above_u64_max_is_malformed() {
    // Ten bytes whose last one carries more than the one bit u64 has left.
    let mut bytes = b"MS\x01".to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
    bytes.extend_from_slice(&[0x00, 0x00, 0x00]);
    assert_eq!(Frame::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn non_minimal_varint_is_accepted_and_means_the_same_value() {
    // Encoders always write the shortest form; the decoder (like postcard) accepts padding.
    assert_eq!(
        Frame::decode(b"MS\x01\x80\x00\0\0\0"),
        Ok(frame(0, 0, 0, None))
    );
}

#[test]
fn bytes_after_a_complete_frame_are_trailing() {
    assert_eq!(
        Frame::decode(b"MS\x01\0\0\0\0\0"),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    let mut bytes = golden()[1].2.to_vec();
    bytes.extend_from_slice(b"abc");
    assert_eq!(
        Frame::decode(&bytes),
        Err(DecodeError::TrailingBytes { count: 3 })
    );
}

#[test]
fn peak_below_current_is_inconsistent() {
    // seq 0, current 5, peak 4, no claim.
    assert_eq!(
        Frame::decode(b"MS\x01\x00\x05\x04\x00"),
        Err(DecodeError::Inconsistent)
    );
}

// ---- encode errors --------------------------------------------------------------------------

#[test]
fn buffer_shorter_than_the_frame_is_too_small_and_untouched() {
    let f = golden()[2].1;
    let mut buf = vec![0xaa; f.encoded_len() - 1];
    assert_eq!(
        f.encode(&mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: f.encoded_len()
        })
    );
    assert!(buf.iter().all(|&b| b == 0xaa), "encode wrote on failure");
    assert_eq!(
        f.encode(&mut []),
        Err(EncodeError::BufferTooSmall { needed: 20 })
    );
}

#[test]
fn peak_below_current_cannot_be_encoded() {
    let mut buf = [0xaa; MAX_FRAME_LEN];
    assert_eq!(
        frame(0, 5, 4, None).encode(&mut buf),
        Err(EncodeError::Inconsistent)
    );
    assert!(buf.iter().all(|&b| b == 0xaa), "encode wrote on failure");
}

#[test]
fn errors_have_readable_messages() {
    assert_eq!(
        DecodeError::Oversize { len: 45 }.to_string(),
        "frame of 45 bytes exceeds 44"
    );
    assert_eq!(
        EncodeError::BufferTooSmall { needed: 9 }.to_string(),
        "buffer too small, need 9 bytes"
    );
}
