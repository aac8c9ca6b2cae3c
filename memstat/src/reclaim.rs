//! Reclaim messages, v1: oomd asks a service to free memory, and the service acknowledges.
//!
//! Both travel on the service's memstat channel, beside its frames: a [`ReclaimRequest`] from
//! oomd to the service, a [`ReclaimAck`] from the service back. Each has its own magic, so
//! that a receiver tells a frame (`b"MS"`), a request (`b"MR"`) and an acknowledgement
//! (`b"MA"`) apart by their first two bytes ([`is_request`], [`is_ack`]); none of them ever
//! decodes as another.
//!
//! | bytes | request | acknowledgement |
//! |---|---|---|
//! | 0..2 | magic `b"MR"` | magic `b"MA"` |
//! | 2 | version, `1` | version, `1` |
//! | … | `id`, varint u64 | `id`, varint u64 |
//! | … | `target_bytes`, varint u64 | |
//! | … | `deadline_ms`, varint u32 | |
//!
//! The body is postcard (the serde derive, fields in this order), with the frame's varint
//! rules: the encoder writes the shortest form, the decoder accepts what postcard accepts
//! (padded forms included, within the integer's widest length). Versioning is the frame's
//! rule: fields are only appended, appending one bumps [`RECLAIM_VERSION`], and a decoder
//! accepts only the versions it knows. The full table, with golden bytes, is in
//! `docs/memstat-wire.md`, "Reclaim request and acknowledgement, v1".
//!
//! Everything here is `no_std`, allocates nothing and never panics on hostile bytes.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::varint::{self, Reader};
use crate::{DecodeError, EncodeError, HEADER_LEN, MAX_FRAME_LEN};

/// The two bytes every reclaim request (oomd to service) starts with.
pub const REQUEST_MAGIC: [u8; 2] = *b"MR";
/// The two bytes every reclaim acknowledgement (service to oomd) starts with.
pub const ACK_MAGIC: [u8; 2] = *b"MA";
/// The version of both reclaim messages this crate encodes, and the only one it decodes.
pub const RECLAIM_VERSION: u8 = 1;

/// The longest valid reclaim request, in bytes: the header plus every field at its widest.
pub const MAX_REQUEST_LEN: usize = HEADER_LEN
    + varint::max_len(64) // id
    + varint::max_len(64) // target_bytes
    + varint::max_len(32); // deadline_ms

/// The longest valid reclaim acknowledgement, in bytes: the header plus its id at its widest.
pub const MAX_ACK_LEN: usize = HEADER_LEN + varint::max_len(64); // id

const _: () = assert!(
    MAX_REQUEST_LEN == 28,
    "reclaim request v1 is pinned at 28 bytes at most"
);
const _: () = assert!(
    MAX_ACK_LEN == 13,
    "reclaim acknowledgement v1 is pinned at 13 bytes at most"
);
// A receiver's frame-sized buffer holds any message of the channel.
const _: () = assert!(MAX_REQUEST_LEN <= MAX_FRAME_LEN && MAX_ACK_LEN <= MAX_FRAME_LEN);

/// oomd asks the service to free memory: to be at or below `target_bytes` within
/// `deadline_ms`.
///
/// A request is a request, not a verdict: oomd checks the outcome with the service's later
/// frames and the kernel's figure, never with the acknowledgement alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReclaimRequest {
    /// Identifies the request; the acknowledgement quotes it.
    pub id: u64,
    /// Bytes the service should be at or below (its allocator figure, and its kernel figure
    /// where oomd enforces that).
    pub target_bytes: u64,
    /// Milliseconds from when oomd sent the request by which the target must be met.
    pub deadline_ms: u32,
}

/// The service's answer to a [`ReclaimRequest`]: it has done what it will do about request
/// `id` (it should publish a fresh frame first; oomd believes the frames and the kernel, not
/// this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReclaimAck {
    /// The [`ReclaimRequest::id`] acknowledged.
    pub id: u64,
}

/// Whether `bytes` start with [`ACK_MAGIC`] (both bytes present): a message to decode with
/// [`ReclaimAck::decode`] rather than as a frame. Says nothing about the rest.
#[must_use]
pub fn is_ack(bytes: &[u8]) -> bool {
    bytes.get(..ACK_MAGIC.len()) == Some(&ACK_MAGIC[..])
}

/// Whether `bytes` start with [`REQUEST_MAGIC`] (both bytes present): a message to decode with
/// [`ReclaimRequest::decode`]. Says nothing about the rest.
#[must_use]
pub fn is_request(bytes: &[u8]) -> bool {
    bytes.get(..REQUEST_MAGIC.len()) == Some(&REQUEST_MAGIC[..])
}

/// Writes `magic`, the version and `message`'s postcard body into the front of `buf`, which
/// the caller found to hold `needed` bytes, `needed` being the message's exact length.
fn encode_into<M: Serialize>(
    message: &M,
    magic: [u8; 2],
    needed: usize,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    let Some(out) = buf.get_mut(..needed) else {
        return Err(EncodeError::BufferTooSmall { needed });
    };
    let (header, body) = out.split_at_mut(HEADER_LEN);
    header[..magic.len()].copy_from_slice(&magic);
    header[magic.len()] = RECLAIM_VERSION;
    match postcard::to_slice(message, body) {
        Ok(written) if HEADER_LEN + written.len() == needed => Ok(needed),
        // `encoded_len` mirrors postcard's layout; the test suite pins the two together.
        _ => Err(EncodeError::BufferTooSmall { needed }),
    }
}

/// The checks every reclaim message starts with, in the frame's order: length bound, magic,
/// version. Returns a reader positioned at the body.
fn open(bytes: &[u8], magic: [u8; 2], max_len: usize) -> Result<Reader<'_>, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::Oversize { len: bytes.len() });
    }
    let version = varint::header(bytes, magic)?;
    if version != RECLAIM_VERSION {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    Ok(Reader::new(bytes, HEADER_LEN))
}

/// The body was read: anything left is trailing.
fn close(body: &Reader<'_>) -> Result<(), DecodeError> {
    match body.remaining() {
        0 => Ok(()),
        count => Err(DecodeError::TrailingBytes { count }),
    }
}

impl ReclaimRequest {
    /// The exact number of bytes [`ReclaimRequest::encode`] writes for this request.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        HEADER_LEN
            + varint::len(self.id)
            + varint::len(self.target_bytes)
            + varint::len(self.deadline_ms as u64)
    }

    /// Encodes the request into the front of `buf` and returns the number of bytes written
    /// (a buffer of [`MAX_REQUEST_LEN`] always fits).
    ///
    /// Writes nothing when it fails.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] if `buf` is shorter than
    /// [`encoded_len`](Self::encoded_len).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(self, REQUEST_MAGIC, self.encoded_len(), buf)
    }

    /// Decodes exactly one request from `bytes`, which must hold nothing else.
    ///
    /// Never panics, whatever the input. Checked in this order: longer than
    /// [`MAX_REQUEST_LEN`] ([`DecodeError::Oversize`], nothing else looked at); magic
    /// ([`DecodeError::MagicMismatch`]; a prefix of it is [`DecodeError::Truncated`]);
    /// version ([`DecodeError::UnsupportedVersion`]); the fields in order (`Truncated`, or
    /// [`DecodeError::Malformed`] for a varint longer than its integer's widest form or above
    /// its width, such as a `deadline_ms` above `u32::MAX`); then
    /// [`DecodeError::TrailingBytes`].
    ///
    /// # Errors
    ///
    /// The first of those checks that fails.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut body = open(bytes, REQUEST_MAGIC, MAX_REQUEST_LEN)?;
        let request = Self {
            id: body.u64()?,
            target_bytes: body.u64()?,
            deadline_ms: body.u32()?,
        };
        close(&body)?;
        Ok(request)
    }
}

impl ReclaimAck {
    /// The exact number of bytes [`ReclaimAck::encode`] writes for this acknowledgement.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        HEADER_LEN + varint::len(self.id)
    }

    /// Encodes the acknowledgement into the front of `buf` and returns the number of bytes
    /// written (a buffer of [`MAX_ACK_LEN`] always fits).
    ///
    /// Writes nothing when it fails.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] if `buf` is shorter than
    /// [`encoded_len`](Self::encoded_len).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(self, ACK_MAGIC, self.encoded_len(), buf)
    }

    /// Decodes exactly one acknowledgement from `bytes`, which must hold nothing else.
    ///
    /// Never panics, whatever the input. The checks and their order are
    /// [`ReclaimRequest::decode`]'s, with [`MAX_ACK_LEN`] and [`ACK_MAGIC`].
    ///
    /// # Errors
    ///
    /// The first of those checks that fails.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut body = open(bytes, ACK_MAGIC, MAX_ACK_LEN)?;
        let ack = Self { id: body.u64()? };
        close(&body)?;
        Ok(ack)
    }
}
