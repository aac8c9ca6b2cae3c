//! postcard's unsigned varints, shared by every message of this crate (frames and reclaim
//! messages): their lengths, and the hand decoder that reads them.
//!
//! postcard writes an unsigned integer as LEB128: 7 value bits per byte, least significant
//! group first, high bit `0x80` set on every byte but the last. Encoding is left to postcard
//! (always the shortest form); decoding is done here, accepting and rejecting exactly what
//! postcard's `take_from_bytes` does.
#![forbid(unsafe_code)]

use crate::DecodeError;

/// The longest postcard varint for an integer of `bits` bits (7 payload bits per byte).
pub(crate) const fn max_len(bits: usize) -> usize {
    bits.div_ceil(7)
}

/// The exact length of the shortest (postcard's) varint of `value`.
pub(crate) const fn len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    if bits == 0 {
        1
    } else {
        max_len(bits)
    }
}

/// Checks the 3-byte header (`magic`, then a version byte) at the front of `bytes` and returns
/// the version byte, not yet judged. A prefix of the magic is not a mismatch: it is a
/// truncated message. The caller checks the length bound first.
#[inline(always)]
pub(crate) fn header(bytes: &[u8], magic: [u8; 2]) -> Result<u8, DecodeError> {
    match *bytes {
        [m0, m1, version, ..] if [m0, m1] == magic => Ok(version),
        [m0, m1, ..] if [m0, m1] != magic => Err(DecodeError::MagicMismatch),
        [m0] if m0 != magic[0] => Err(DecodeError::MagicMismatch),
        _ => Err(DecodeError::Truncated),
    }
}

/// A message body being read: every read either advances `pos` or fails.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from offset `pos` (the end of the header).
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    #[inline(always)]
    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// A postcard varint of an unsigned integer of `BITS` bits (64 or 32): 7 bits per byte,
    /// least significant first, high bit = "more". As in postcard: running out of bytes first
    /// is `Truncated`; a byte number `max_len(BITS)` with the high bit set, or carrying more
    /// than the bits left (above `0x01` for 64 bits, above `0x0f` for 32), is `Malformed`;
    /// padded (non-minimal) forms within `max_len(BITS)` bytes are accepted.
    #[inline(always)]
    pub(crate) fn uint<const BITS: usize>(&mut self) -> Result<u64, DecodeError> {
        let last = max_len(BITS) - 1;
        let max_of_last_byte: u8 = (1 << (BITS % 7)) - 1;
        let mut value = 0u64;
        for i in 0..max_len(BITS) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == last && byte > max_of_last_byte {
                    return Err(DecodeError::Malformed);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::Malformed)
    }

    /// A postcard varint `u64`.
    #[inline(always)]
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.uint::<64>()
    }

    /// A postcard varint `u32`: at most 5 bytes, the fifth at most `0x0f`.
    #[inline(always)]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let value = self.uint::<32>()?;
        // Cannot fail: five groups of which the last carries at most 4 bits are 32 bits.
        u32::try_from(value).map_err(|_| DecodeError::Malformed)
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }
}
