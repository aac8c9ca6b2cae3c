//! `memstat::Frame::decode` on any bytes: it never panics, it agrees exactly with postcard's
//! own decoding of the body (the oracle of `memstat/tests/codec_props.rs`), and whatever it
//! accepts re-encodes, no longer than the input, to bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memstat::{DecodeError, Frame, HEADER_LEN, MAGIC, MAX_FRAME_LEN, VERSION};

/// Frame v1 decoding as first written: header checks, then `postcard::take_from_bytes` and a
/// check that nothing remains. The same reference as `memstat/tests/codec_props.rs`.
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

fuzz_target!(|data: &[u8]| {
    let decoded = Frame::decode(data);
    assert_eq!(
        decoded,
        reference_decode(data),
        "the hand decoder is not postcard's"
    );
    if let Ok(frame) = decoded {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let len = frame.encode(&mut buf).expect("a decoded frame encodes");
        assert_eq!(len, frame.encoded_len());
        // Never longer: the encoder writes minimal varints, the input may have padded ones.
        assert!(len <= data.len());
        assert_eq!(Frame::decode(&buf[..len]), Ok(frame));
    }
});
