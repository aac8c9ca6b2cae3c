//! Reclaim request and acknowledgement v1: golden bytes, one concrete input per decode error,
//! and properties (round trips, agreement with postcard, no panics, no confusion with frames).
//!
//! The golden vectors here are the ones printed in `docs/memstat-wire.md`, "Reclaim request
//! and acknowledgement, v1"; change both or neither (and a change means a new version byte).
#![allow(clippy::unwrap_used)]

use memstat::{
    is_ack, is_request, DecodeError, EncodeError, Frame, ReclaimAck, ReclaimRequest, SubjectId,
    ACK_MAGIC, HEADER_LEN, MAX_ACK_LEN, MAX_FRAME_LEN, MAX_REQUEST_LEN, RECLAIM_VERSION,
    REQUEST_MAGIC,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;

fn request(id: u64, target_bytes: u64, deadline_ms: u32) -> ReclaimRequest {
    ReclaimRequest {
        id,
        target_bytes,
        deadline_ms,
    }
}

fn encode_request(r: &ReclaimRequest) -> Vec<u8> {
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let len = r.encode(&mut buf).unwrap();
    assert_eq!(len, r.encoded_len(), "encoded_len disagrees with encode");
    buf[..len].to_vec()
}

fn encode_ack(a: &ReclaimAck) -> Vec<u8> {
    let mut buf = [0u8; MAX_ACK_LEN];
    let len = a.encode(&mut buf).unwrap();
    assert_eq!(len, a.encoded_len(), "encoded_len disagrees with encode");
    buf[..len].to_vec()
}

const MAX_U64: [u8; 10] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];

/// (name, request, exact bytes). Keep in sync with docs/memstat-wire.md.
fn golden_requests() -> [(&'static str, ReclaimRequest, Vec<u8>); 2] {
    [
        (
            "id 1, target 1 MiB, deadline 2 s",
            request(1, 1 << 20, 2000),
            vec![
                0x4d, 0x52, 0x01, // header
                0x01, // id
                0x80, 0x80, 0x40, // target_bytes = 1048576
                0xd0, 0x0f, // deadline_ms = 2000
            ],
        ),
        (
            "every field at its widest (MAX_REQUEST_LEN)",
            request(u64::MAX, u64::MAX, u32::MAX),
            [
                &[0x4d, 0x52, 0x01][..],
                &MAX_U64,
                &MAX_U64,
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
            ]
            .concat(),
        ),
    ]
}

/// (name, acknowledgement, exact bytes). Keep in sync with docs/memstat-wire.md.
fn golden_acks() -> [(&'static str, ReclaimAck, Vec<u8>); 2] {
    [
        ("id 1", ReclaimAck { id: 1 }, vec![0x4d, 0x41, 0x01, 0x01]),
        (
            "id u64::MAX (MAX_ACK_LEN)",
            ReclaimAck { id: u64::MAX },
            [&[0x4d, 0x41, 0x01][..], &MAX_U64].concat(),
        ),
    ]
}

#[test]
fn constants_are_pinned() {
    assert_eq!(REQUEST_MAGIC, *b"MR");
    assert_eq!(ACK_MAGIC, *b"MA");
    assert_eq!(RECLAIM_VERSION, 1);
    assert_eq!(MAX_REQUEST_LEN, 3 + 10 + 10 + 5);
    assert_eq!(MAX_ACK_LEN, 3 + 10);
}

#[test]
fn golden_messages_encode_to_their_pinned_bytes() {
    for (name, r, bytes) in golden_requests() {
        assert_eq!(encode_request(&r), bytes, "{name}");
    }
    for (name, a, bytes) in golden_acks() {
        assert_eq!(encode_ack(&a), bytes, "{name}");
    }
}

#[test]
fn golden_bytes_decode_to_their_messages() {
    for (name, r, bytes) in golden_requests() {
        assert_eq!(ReclaimRequest::decode(&bytes), Ok(r), "{name}");
        assert!(is_request(&bytes) && !is_ack(&bytes), "{name}");
    }
    for (name, a, bytes) in golden_acks() {
        assert_eq!(ReclaimAck::decode(&bytes), Ok(a), "{name}");
        assert!(is_ack(&bytes) && !is_request(&bytes), "{name}");
    }
}

#[test]
fn widest_messages_are_exactly_the_max_lengths() {
    assert_eq!(golden_requests()[1].2.len(), MAX_REQUEST_LEN);
    assert_eq!(golden_requests()[1].1.encoded_len(), MAX_REQUEST_LEN);
    assert_eq!(golden_acks()[1].2.len(), MAX_ACK_LEN);
    assert_eq!(golden_acks()[1].1.encoded_len(), MAX_ACK_LEN);
}

#[test]
fn magic_tests_need_both_bytes() {
    assert!(!is_ack(b""));
    assert!(!is_ack(b"M"));
    assert!(is_ack(b"MA"));
    assert!(!is_ack(b"MS\x01\0\0\0\0"));
    assert!(!is_request(b"M"));
    assert!(is_request(b"MR"));
    assert!(!is_request(b"MA\x01\x01"));
}

// ---- decode errors, one concrete input each -------------------------------------------------

#[test]
fn oversize_input_is_rejected_before_anything_else() {
    let mut bytes = golden_requests()[1].2.clone();
    bytes.push(0);
    assert_eq!(
        ReclaimRequest::decode(&bytes),
        Err(DecodeError::Oversize { len: 29 })
    );
    // Even garbage: the length is judged before the magic.
    assert_eq!(
        ReclaimRequest::decode(&[0xaa; 29]),
        Err(DecodeError::Oversize { len: 29 })
    );
    let mut bytes = golden_acks()[1].2.clone();
    bytes.push(0);
    assert_eq!(
        ReclaimAck::decode(&bytes),
        Err(DecodeError::Oversize { len: 14 })
    );
    assert_eq!(
        ReclaimAck::decode(&[0xaa; 14]),
        Err(DecodeError::Oversize { len: 14 })
    );
}

#[test]
fn wrong_magic_is_a_magic_mismatch() {
    // A frame, an acknowledgement, and garbage are not requests.
    for bytes in [
        &b"MS\x01\0\0\0\0"[..],
        b"MA\x01\x01",
        b"X",
        b"MX",
        b"mR\x01\0\0\0",
    ] {
        assert_eq!(
            ReclaimRequest::decode(bytes),
            Err(DecodeError::MagicMismatch),
            "{bytes:x?}"
        );
    }
    for bytes in [&b"MS\x01\0\0\0\0"[..], b"MR\x01\x01\x01\x01", b"X", b"MX"] {
        assert_eq!(
            ReclaimAck::decode(bytes),
            Err(DecodeError::MagicMismatch),
            "{bytes:x?}"
        );
    }
}

#[test]
fn short_input_that_could_still_be_a_message_is_truncated() {
    for bytes in [
        &b""[..],
        b"M",
        b"MR",
        b"MR\x01",
        b"MR\x01\x01\x80",
        b"MR\x01\x01\x01",
    ] {
        assert_eq!(
            ReclaimRequest::decode(bytes),
            Err(DecodeError::Truncated),
            "{bytes:x?}"
        );
    }
    for bytes in [&b""[..], b"M", b"MA", b"MA\x01", b"MA\x01\x80"] {
        assert_eq!(
            ReclaimAck::decode(bytes),
            Err(DecodeError::Truncated),
            "{bytes:x?}"
        );
    }
}

#[test]
fn every_proper_prefix_of_a_golden_message_is_truncated() {
    for (name, _, bytes) in golden_requests() {
        for len in 0..bytes.len() {
            assert_eq!(
                ReclaimRequest::decode(&bytes[..len]),
                Err(DecodeError::Truncated),
                "{name}, first {len} bytes"
            );
        }
    }
    for (name, _, bytes) in golden_acks() {
        for len in 0..bytes.len() {
            assert_eq!(
                ReclaimAck::decode(&bytes[..len]),
                Err(DecodeError::Truncated),
                "{name}, first {len} bytes"
            );
        }
    }
}

#[test]
fn unknown_version_is_unsupported() {
    assert_eq!(
        ReclaimRequest::decode(b"MR\x02\x01\x01\x01"),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    // The version is judged before the body.
    assert_eq!(
        ReclaimRequest::decode(b"MR\x00"),
        Err(DecodeError::UnsupportedVersion { version: 0 })
    );
    assert_eq!(
        ReclaimAck::decode(b"MA\x02\x01"),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        ReclaimAck::decode(b"MA\xff"),
        Err(DecodeError::UnsupportedVersion { version: 0xff })
    );
}

#[test]
fn overlong_varint_is_malformed() {
    // Ten bytes that all say "more follows": longer than any u64.
    let bytes = [&b"MR\x01"[..], &[0x80; 10], &[0x00, 0x00]].concat();
    assert_eq!(ReclaimRequest::decode(&bytes), Err(DecodeError::Malformed));
    let bytes = [&b"MA\x01"[..], &[0x80; 10]].concat();
    assert_eq!(ReclaimAck::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn varint_above_u64_max_is_malformed() {
    let above = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
    let bytes = [&b"MR\x01\x00"[..], &above, &[0x00]].concat();
    assert_eq!(ReclaimRequest::decode(&bytes), Err(DecodeError::Malformed));
    let bytes = [&b"MA\x01"[..], &above].concat();
    assert_eq!(ReclaimAck::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn deadline_above_u32_max_is_malformed() {
    // 2^32: the fifth byte carries a fifth bit, where a u32 has four left.
    assert_eq!(
        ReclaimRequest::decode(b"MR\x01\x00\x00\x80\x80\x80\x80\x10"),
        Err(DecodeError::Malformed)
    );
    // A sixth byte is longer than any u32, whatever it holds (postcard rejects it too).
    assert_eq!(
        ReclaimRequest::decode(b"MR\x01\x00\x00\x80\x80\x80\x80\x80\x00"),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn non_minimal_varint_is_accepted_and_means_the_same_value() {
    assert_eq!(
        ReclaimRequest::decode(b"MR\x01\x81\x00\x80\x00\x80\x80\x80\x80\x00"),
        Ok(request(1, 0, 0))
    );
    assert_eq!(
        ReclaimAck::decode(b"MA\x01\x82\x80\x00"),
        Ok(ReclaimAck { id: 2 })
    );
}

#[test]
fn bytes_after_a_complete_message_are_trailing() {
    let bytes = [&golden_requests()[0].2[..], b"\0"].concat();
    assert_eq!(
        ReclaimRequest::decode(&bytes),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert_eq!(
        ReclaimAck::decode(b"MA\x01\x01abc"),
        Err(DecodeError::TrailingBytes { count: 3 })
    );
}

// ---- encode errors --------------------------------------------------------------------------

#[test]
fn buffer_shorter_than_the_message_is_too_small_and_untouched() {
    let r = golden_requests()[0].1;
    let mut buf = vec![0xaa; r.encoded_len() - 1];
    assert_eq!(
        r.encode(&mut buf),
        Err(EncodeError::BufferTooSmall { needed: 9 })
    );
    assert!(buf.iter().all(|&b| b == 0xaa), "encode wrote on failure");
    let a = golden_acks()[1].1;
    let mut buf = vec![0xaa; MAX_ACK_LEN - 1];
    assert_eq!(
        a.encode(&mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: MAX_ACK_LEN
        })
    );
    assert!(buf.iter().all(|&b| b == 0xaa), "encode wrote on failure");
}

#[test]
fn encode_into_a_buffer_of_exactly_encoded_len_fits() {
    let r = golden_requests()[1].1;
    assert_eq!(r.encode(&mut [0; MAX_REQUEST_LEN]), Ok(MAX_REQUEST_LEN));
    let a = golden_acks()[0].1;
    assert_eq!(a.encode(&mut [0; 4]), Ok(4));
}

// ---- properties -----------------------------------------------------------------------------

/// Decoding as first written: length, magic, version, then `postcard::take_from_bytes` and a
/// check that nothing remains. The hand decoders must agree with it on every input.
fn reference_decode<M: DeserializeOwned>(
    bytes: &[u8],
    magic: [u8; 2],
    max_len: usize,
) -> Result<M, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::Oversize { len: bytes.len() });
    }
    let magic_seen = bytes.len().min(magic.len());
    if bytes[..magic_seen] != magic[..magic_seen] {
        return Err(DecodeError::MagicMismatch);
    }
    let Some(&version) = bytes.get(magic.len()) else {
        return Err(DecodeError::Truncated);
    };
    if version != RECLAIM_VERSION {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    let (message, rest) =
        postcard::take_from_bytes::<M>(&bytes[HEADER_LEN..]).map_err(|e| match e {
            postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
            _ => DecodeError::Malformed,
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(message)
}

/// Integers spread over every varint length.
fn any_width_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        (0u32..64).prop_flat_map(|bits| 0u64..=(1u64 << bits)),
        any::<u64>(),
    ]
}

fn any_width_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        (0u32..32).prop_flat_map(|bits| 0u32..=(1u32 << bits)),
        any::<u32>(),
    ]
}

fn any_request() -> impl Strategy<Value = ReclaimRequest> {
    (any_width_u64(), any_width_u64(), any_width_u32()).prop_map(|(id, t, d)| request(id, t, d))
}

fn any_frame() -> impl Strategy<Value = Frame> {
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

/// Bytes that get past a header (`magic` or another), so that the body decoder is exercised.
fn headed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(REQUEST_MAGIC),
        Just(ACK_MAGIC),
        Just(*b"MS"),
        any::<[u8; 2]>()
    ];
    let version = prop_oneof![4 => Just(RECLAIM_VERSION), 1 => any::<u8>()];
    let body_byte = prop_oneof![
        Just(0x00u8),
        Just(0x01),
        Just(0x0f),
        Just(0x10),
        Just(0x80),
        Just(0xff),
        any::<u8>()
    ];
    (
        magic,
        version,
        proptest::collection::vec(body_byte, 0..=MAX_REQUEST_LEN),
    )
        .prop_map(|(magic, version, body)| [&magic[..], &[version], &body].concat())
}

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=MAX_FRAME_LEN + 4),
        headed_bytes(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn requests_round_trip(r in any_request()) {
        let bytes = encode_request(&r);
        prop_assert!(bytes.len() <= MAX_REQUEST_LEN);
        prop_assert_eq!(ReclaimRequest::decode(&bytes), Ok(r));
        let mut body = [0u8; MAX_REQUEST_LEN];
        prop_assert_eq!(&*postcard::to_slice(&r, &mut body).unwrap(), &bytes[HEADER_LEN..]);
    }

    #[test]
    fn acks_round_trip(id in any_width_u64()) {
        let a = ReclaimAck { id };
        let bytes = encode_ack(&a);
        prop_assert!(bytes.len() <= MAX_ACK_LEN);
        prop_assert_eq!(ReclaimAck::decode(&bytes), Ok(a));
        let mut body = [0u8; MAX_ACK_LEN];
        prop_assert_eq!(&*postcard::to_slice(&a, &mut body).unwrap(), &bytes[HEADER_LEN..]);
    }

    /// Never panics, agrees with postcard error for error, and whatever decodes re-encodes,
    /// no longer than the input, to bytes that decode to the same message.
    #[test]
    fn decoders_are_postcard_and_never_panic(bytes in arbitrary_bytes()) {
        let r = ReclaimRequest::decode(&bytes);
        prop_assert_eq!(r, reference_decode(&bytes, REQUEST_MAGIC, MAX_REQUEST_LEN));
        if let Ok(r) = r {
            let again = encode_request(&r);
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(ReclaimRequest::decode(&again), Ok(r));
        }
        let a = ReclaimAck::decode(&bytes);
        prop_assert_eq!(a, reference_decode(&bytes, ACK_MAGIC, MAX_ACK_LEN));
        if let Ok(a) = a {
            let again = encode_ack(&a);
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(ReclaimAck::decode(&again), Ok(a));
        }
        // At most one of the three decoders accepts any input, and only with its magic.
        let accepted = [Frame::decode(&bytes).is_ok(), r.is_ok(), a.is_ok()];
        prop_assert!(accepted.iter().filter(|ok| **ok).count() <= 1);
        prop_assert!(r.is_err() || is_request(&bytes));
        prop_assert!(a.is_err() || is_ack(&bytes));
    }

    #[test]
    fn a_frame_is_never_a_reclaim_message(frame in any_frame()) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = frame.encode(&mut buf).unwrap();
        let bytes = &buf[..len];
        prop_assert!(!is_request(bytes) && !is_ack(bytes));
        prop_assert!(ReclaimRequest::decode(bytes).is_err());
        prop_assert!(ReclaimAck::decode(bytes).is_err());
    }

    #[test]
    fn a_reclaim_message_is_never_a_frame_nor_the_other(r in any_request(), id in any_width_u64()) {
        let bytes = encode_request(&r);
        prop_assert_eq!(Frame::decode(&bytes), Err(DecodeError::MagicMismatch));
        prop_assert!(ReclaimAck::decode(&bytes).is_err());
        prop_assert!(!is_ack(&bytes));
        let bytes = encode_ack(&ReclaimAck { id });
        prop_assert_eq!(Frame::decode(&bytes), Err(DecodeError::MagicMismatch));
        prop_assert_eq!(ReclaimRequest::decode(&bytes), Err(DecodeError::MagicMismatch));
        prop_assert!(!is_request(&bytes));
    }
}
