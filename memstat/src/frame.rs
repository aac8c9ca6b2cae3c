//! Frame v1: the wire format, its bounds, and its codec.
//!
//! A frame is a fixed 3-byte header followed by a [postcard] body:
//!
//! | bytes | field | encoding |
//! |---|---|---|
//! | 0..2 | magic `b"MS"` | raw |
//! | 2 | version, `1` | raw |
//! | … | `seq` | varint u64 |
//! | … | `current_bytes` | varint u64 |
//! | … | `peak_bytes` | varint u64 |
//! | … | `claimed_subject` | `0x00`, or `0x01` then varint u64 |
//!
//! Versioning rule: a field is only ever *appended*, and appending one bumps the version byte.
//! A decoder accepts exactly the versions it knows and rejects the rest as
//! [`DecodeError::UnsupportedVersion`]; it never guesses at a newer layout. The full table,
//! with golden bytes, is in `docs/memstat-wire.md`.

use serde::{Deserialize, Serialize};

use crate::varint::{self, Reader};
use crate::SubjectId;

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"MS";
/// The version this crate encodes, and the only one it decodes.
pub const VERSION: u8 = 1;
/// Magic plus version byte.
pub const HEADER_LEN: usize = MAGIC.len() + 1;

/// The longest valid frame, in bytes: the header plus every field at its widest.
pub const MAX_FRAME_LEN: usize = HEADER_LEN
    + varint::max_len(64) // seq
    + varint::max_len(64) // current_bytes
    + varint::max_len(64) // peak_bytes
    + 1 // Option tag of claimed_subject
    + varint::max_len(64); // claimed_subject

const _: () = assert!(
    MAX_FRAME_LEN == 44,
    "frame v1 is pinned at 44 bytes at most"
);

/// One memstat report: what a service's allocator holds right now.
///
/// `current_bytes` and `peak_bytes` are **allocator bytes reported by the process itself**
/// (for example by [`CountingAlloc`](crate::CountingAlloc)), not the kernel's resident set
/// size. A service can under-report or not report at all; a watchdog that needs the truth must
/// also read what the kernel offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Per-sender sequence number; strictly increasing, gaps allowed (a gap is a dropped frame).
    pub seq: u64,
    /// Bytes the sender's allocator holds now.
    pub current_bytes: u64,
    /// The most the sender's allocator has held; never below `current_bytes`.
    pub peak_bytes: u64,
    /// The subject the sender claims to be. Diagnostic only: the receiver attributes a frame to
    /// the sender the transport authenticated and rejects a frame whose claim disagrees.
    pub claimed_subject: Option<SubjectId>,
}

/// Why bytes were not a valid frame (or [reclaim message](crate::reclaim)). Every variant is
/// the sender's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than the message can be ([`MAX_FRAME_LEN`] for a frame,
    /// [`MAX_REQUEST_LEN`](crate::MAX_REQUEST_LEN) and [`MAX_ACK_LEN`](crate::MAX_ACK_LEN)
    /// for reclaim messages); nothing past the length was looked at.
    Oversize {
        /// The length received.
        len: usize,
    },
    /// The first bytes are not the message's magic ([`MAGIC`] for a frame).
    MagicMismatch,
    /// The version byte is not one this decoder knows.
    UnsupportedVersion {
        /// The version byte received.
        version: u8,
    },
    /// The bytes end before the frame (or message) does.
    Truncated,
    /// A field's bytes are not a valid encoding (over-long varint, a varint above its
    /// integer's width, Option tag other than 0 or 1).
    Malformed,
    /// A whole frame (or message) was read and bytes remain after it.
    TrailingBytes {
        /// How many bytes follow the frame.
        count: usize,
    },
    /// The values contradict each other: `peak_bytes < current_bytes`.
    Inconsistent,
}

/// Why a frame could not be encoded. Every variant is the caller's mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is shorter than the encoded frame; a buffer of [`MAX_FRAME_LEN`] always fits.
    BufferTooSmall {
        /// Bytes this frame needs.
        needed: usize,
    },
    /// `peak_bytes < current_bytes`: such a frame would be rejected by every decoder.
    Inconsistent,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Oversize { len } => write!(f, "frame of {len} bytes exceeds {MAX_FRAME_LEN}"),
            Self::MagicMismatch => f.write_str("magic mismatch"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported version {version}"),
            Self::Truncated => f.write_str("truncated frame"),
            Self::Malformed => f.write_str("malformed field"),
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes after frame"),
            Self::Inconsistent => f.write_str("peak_bytes below current_bytes"),
        }
    }
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "buffer too small, need {needed} bytes"),
            Self::Inconsistent => f.write_str("peak_bytes below current_bytes"),
        }
    }
}

impl Frame {
    /// The exact number of bytes [`Frame::encode`] writes for this frame.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        let claim = match self.claimed_subject {
            None => 1,
            Some(id) => 1 + varint::len(id.0),
        };
        HEADER_LEN
            + varint::len(self.seq)
            + varint::len(self.current_bytes)
            + varint::len(self.peak_bytes)
            + claim
    }

    /// Encodes the frame into the front of `buf` and returns the number of bytes written.
    ///
    /// Writes nothing when it fails.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if self.peak_bytes < self.current_bytes {
            return Err(EncodeError::Inconsistent);
        }
        let needed = self.encoded_len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(EncodeError::BufferTooSmall { needed });
        };
        out[..MAGIC.len()].copy_from_slice(&MAGIC);
        out[MAGIC.len()] = VERSION;
        match postcard::to_slice(self, &mut out[HEADER_LEN..]) {
            Ok(body) if HEADER_LEN + body.len() == needed => Ok(needed),
            // `encoded_len` mirrors postcard's layout; the test suite pins the two together.
            _ => Err(EncodeError::BufferTooSmall { needed }),
        }
    }

    /// Decodes exactly one frame from `bytes`, which must hold nothing else.
    ///
    /// Never panics, whatever the input. The body is read by a small hand decoder that accepts
    /// and rejects exactly what `postcard::take_from_bytes::<Frame>` followed by a check for
    /// remaining bytes does (a property test in `tests/codec_props.rs` holds the two together);
    /// it exists because it is several times faster than going through serde.
    pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(DecodeError::Oversize { len: bytes.len() });
        }
        // A prefix of the magic is not a mismatch: it is a truncated frame.
        let version = varint::header(bytes, MAGIC)?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { version });
        }
        let mut body = Reader::new(bytes, HEADER_LEN);
        let frame = Frame {
            seq: body.u64()?,
            current_bytes: body.u64()?,
            peak_bytes: body.u64()?,
            claimed_subject: match body.byte()? {
                0 => None,
                1 => Some(SubjectId(body.u64()?)),
                _ => return Err(DecodeError::Malformed),
            },
        };
        if body.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                count: body.remaining(),
            });
        }
        if frame.peak_bytes < frame.current_bytes {
            return Err(DecodeError::Inconsistent);
        }
        Ok(frame)
    }
}
