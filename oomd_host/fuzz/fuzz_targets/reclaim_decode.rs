//! `memstat::ReclaimRequest::decode` and `memstat::ReclaimAck::decode` on any bytes: they never
//! panic, they agree exactly with postcard's own decoding of the body (the reference of
//! `memstat/tests/reclaim_codec.rs`), no input is accepted by more than one of the frame,
//! request and acknowledgement decoders, and whatever decodes re-encodes, no longer than the
//! input, to exactly `encoded_len()` bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memstat::{
    is_ack, is_request, DecodeError, Frame, ReclaimAck, ReclaimRequest, ACK_MAGIC, HEADER_LEN,
    MAX_ACK_LEN, MAX_REQUEST_LEN, RECLAIM_VERSION, REQUEST_MAGIC,
};
use serde::de::DeserializeOwned;

/// Reclaim message v1 decoding as first written: length, magic, version, then
/// `postcard::take_from_bytes` and a check that nothing remains.
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

fuzz_target!(|data: &[u8]| {
    let request = ReclaimRequest::decode(data);
    assert_eq!(
        request,
        reference_decode(data, REQUEST_MAGIC, MAX_REQUEST_LEN),
        "the request decoder is not postcard's"
    );
    if let Ok(request) = request {
        assert!(is_request(data));
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let len = request.encode(&mut buf).expect("a decoded request encodes");
        assert_eq!(len, request.encoded_len());
        // Never longer: the encoder writes minimal varints, the input may have padded ones.
        assert!(len <= data.len());
        assert_eq!(ReclaimRequest::decode(&buf[..len]), Ok(request));
    }

    let ack = ReclaimAck::decode(data);
    assert_eq!(
        ack,
        reference_decode(data, ACK_MAGIC, MAX_ACK_LEN),
        "the acknowledgement decoder is not postcard's"
    );
    if let Ok(ack) = ack {
        assert!(is_ack(data));
        let mut buf = [0u8; MAX_ACK_LEN];
        let len = ack
            .encode(&mut buf)
            .expect("a decoded acknowledgement encodes");
        assert_eq!(len, ack.encoded_len());
        assert!(len <= data.len());
        assert_eq!(ReclaimAck::decode(&buf[..len]), Ok(ack));
    }

    // The magic tells the three messages of the channel apart: at most one decoder accepts.
    let accepted = [Frame::decode(data).is_ok(), request.is_ok(), ack.is_ok()];
    assert!(
        accepted.iter().filter(|ok| **ok).count() <= 1,
        "{accepted:?}"
    );
});
