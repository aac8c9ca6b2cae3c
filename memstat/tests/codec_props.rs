//! Properties of the frame v1 codec, and proof that the hand decoder is postcard's.
#![allow(clippy::unwrap_used)]

use memstat::{DecodeError, Frame, SubjectId, HEADER_LEN, MAGIC, MAX_FRAME_LEN, VERSION};
use proptest::prelude::*;

/// Frame v1 decoding as first written: header checks, then `postcard::take_from_bytes` and a
/// check that nothing remains. `Frame::decode` must agree with it on every input.
fn reference_decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    if bytes.len() > MAX_FRAME_LEN {
        return Err(DecodeError::Oversize { len: bytes.len() });
    }
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(DecodeError::MagicMismatch);
    }
    let Some(&version) = bytes.get(MAGIC.len()) else {
        return Err(DecodeError::Truncated);
    };
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    let (frame, rest) =
        postcard::take_from_bytes::<Frame>(&bytes[HEADER_LEN..]).map_err(|e| match e {
            postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
            _ => DecodeError::Malformed,
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    if frame.peak_bytes < frame.current_bytes {
        return Err(DecodeError::Inconsistent);
    }
    Ok(frame)
}

/// Integers spread over every varint length, not just the (mostly 10-byte) uniform ones.
fn any_width_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        (0u32..64).prop_flat_map(|bits| 0u64..=(1u64 << bits)),
        any::<u64>(),
    ]
}

fn valid_frame() -> impl Strategy<Value = Frame> {
    (
        any_width_u64(),
        any_width_u64(),
        any_width_u64(),
        proptest::option::of(any_width_u64()),
    )
        .prop_map(|(seq, a, b, claim)| Frame {
            seq,
            current_bytes: a.min(b),
            peak_bytes: a.max(b),
            claimed_subject: claim.map(SubjectId),
        })
}

/// Byte strings that get past the header, so the body decoder is what is exercised: a valid
/// header and a body made of bytes that are often varint-ish (high bit set) or small tags.
fn headed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let body_byte = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x02),
        Just(0x80),
        Just(0xff),
        any::<u8>()
    ];
    proptest::collection::vec(body_byte, 0..=(MAX_FRAME_LEN - HEADER_LEN + 3)).prop_map(|body| {
        let mut bytes = vec![MAGIC[0], MAGIC[1], VERSION];
        bytes.extend(body);
        bytes
    })
}

/// A varint-shaped run: 0 to 10 bytes with the "more" bit set, then one arbitrary byte.
/// Reaches the edges (tenth byte above 1, eleventh byte) that uniform bytes almost never do.
fn varintish() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>().prop_map(|b| b | 0x80), 0..=10),
        any::<u8>(),
    )
        .prop_map(|(mut run, last)| {
            run.push(last);
            run
        })
}

/// Bodies shaped like frames: three varint-ish fields, a tag that is usually 0 or 1, maybe a
/// claim, maybe trailing bytes.
fn frame_shaped_bytes() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![Just(0u8), Just(1), Just(2), any::<u8>()];
    (
        varintish(),
        varintish(),
        varintish(),
        tag,
        proptest::option::of(varintish()),
        proptest::collection::vec(any::<u8>(), 0..=2),
    )
        .prop_map(|(a, b, c, tag, claim, trailing)| {
            let mut bytes = vec![MAGIC[0], MAGIC[1], VERSION];
            for part in [a, b, c] {
                bytes.extend(part);
            }
            bytes.push(tag);
            bytes.extend(claim.unwrap_or_default());
            bytes.extend(trailing);
            bytes
        })
}

/// A valid frame's bytes, then damaged: cut short, extended, or one byte replaced.
fn damaged_frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        valid_frame(),
        0usize..3,
        any::<prop::sample::Index>(),
        any::<u8>(),
    )
        .prop_map(|(frame, how, at, byte)| {
            let mut buf = [0u8; MAX_FRAME_LEN];
            let len = frame.encode(&mut buf).unwrap();
            let mut bytes = buf[..len].to_vec();
            match how {
                0 => bytes.truncate(at.index(len)),
                1 => bytes.push(byte),
                _ => bytes[at.index(len)] = byte,
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn valid_frames_round_trip_within_max_frame_len(frame in valid_frame()) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = frame.encode(&mut buf).unwrap();
        prop_assert!(len <= MAX_FRAME_LEN);
        prop_assert_eq!(len, frame.encoded_len());
        prop_assert_eq!(Frame::decode(&buf[..len]), Ok(frame));
    }

    #[test]
    fn encoding_is_postcard_behind_the_header(frame in valid_frame()) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = frame.encode(&mut buf).unwrap();
        let mut body = [0u8; MAX_FRAME_LEN];
        let body = postcard::to_slice(&frame, &mut body).unwrap();
        prop_assert_eq!(&buf[..HEADER_LEN], &[MAGIC[0], MAGIC[1], VERSION][..]);
        prop_assert_eq!(&buf[HEADER_LEN..len], &body[..]);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..=100)) {
        let _ = Frame::decode(&bytes);
    }

    #[test]
    fn decode_agrees_with_postcard_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..=100)) {
        prop_assert_eq!(Frame::decode(&bytes), reference_decode(&bytes));
    }

    #[test]
    fn decode_agrees_with_postcard_past_the_header(bytes in headed_bytes()) {
        prop_assert_eq!(Frame::decode(&bytes), reference_decode(&bytes));
    }

    #[test]
    fn decode_agrees_with_postcard_on_frame_shaped_bytes(bytes in frame_shaped_bytes()) {
        prop_assert_eq!(Frame::decode(&bytes), reference_decode(&bytes));
    }

    #[test]
    fn decode_agrees_with_postcard_on_damaged_frames(bytes in damaged_frame_bytes()) {
        prop_assert_eq!(Frame::decode(&bytes), reference_decode(&bytes));
    }

    /// Uniform bytes almost never start with `MS\x01`, so most inputs are headed ones.
    #[test]
    fn whatever_decodes_re_encodes_to_an_equal_frame(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..=100),
            headed_bytes(),
            frame_shaped_bytes(),
        ]
    ) {
        if let Ok(frame) = Frame::decode(&bytes) {
            let mut buf = [0u8; MAX_FRAME_LEN];
            let len = frame.encode(&mut buf).unwrap();
            // Never longer: the encoder writes minimal varints, the input may have padded ones.
            prop_assert!(len <= bytes.len());
            prop_assert_eq!(Frame::decode(&buf[..len]), Ok(frame));
        }
    }
}
