//! The subject identity shared by the whole workspace.

use core::fmt;

use serde::{Deserialize, Serialize};

/// The identity of a *subject*: a service the process authority spawned and may end.
///
/// It is derived from the service's manifest name by [`SubjectId::from_name`]: the
/// FNV-1a 64-bit hash of the name's UTF-8 bytes (offset basis `0xcbf29ce484222325`, prime
/// `0x100000001b3`), the derivation the reference OS uses. The derivation is part of the wire
/// contract: changing it changes every subject's id, so it never changes within a major version.
///
/// A `SubjectId` in a memstat frame is only a *claim*. Who sent a frame is decided by the
/// transport (the channel the frame arrived on, or the kernel's peer credentials), never by
/// these bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SubjectId(pub u64);

const FNV1A64_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

impl SubjectId {
    /// Derives the id of the service called `name` (FNV-1a-64 of its UTF-8 bytes).
    ///
    /// ```
    /// use memstat::SubjectId;
    /// assert_eq!(SubjectId::from_name("").get(), 0xcbf2_9ce4_8422_2325);
    /// assert_eq!(SubjectId::from_name("a").get(), 0xaf63_dc4c_8601_ec8c);
    /// ```
    #[must_use]
    pub const fn from_name(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut hash = FNV1A64_OFFSET_BASIS;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(FNV1A64_PRIME);
            i += 1;
        }
        SubjectId(hash)
    }

    /// The raw 64-bit value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({:#018x})", self.0)
    }
}

/// Shown as 16 lower-case hex digits, the form logs and markers use when no name is known.
impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_published_test_vectors() {
        // Vectors from the FNV reference test suite (Noll), 64-bit FNV-1a.
        assert_eq!(SubjectId::from_name("").get(), 0xcbf29ce484222325);
        assert_eq!(SubjectId::from_name("a").get(), 0xaf63dc4c8601ec8c);
        assert_eq!(SubjectId::from_name("foobar").get(), 0x85944171f73967e8);
    }

    #[test]
    fn derivation_is_usable_in_const_context() {
        const SAMGRD: SubjectId = SubjectId::from_name("samgrd");
        assert_eq!(SAMGRD, SubjectId::from_name("samgrd"));
        assert_ne!(SAMGRD, SubjectId::from_name("samgrd "));
    }
}
