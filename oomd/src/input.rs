//! The one input type: everything that can change the core's state.

use memstat::{SubjectId, MAX_FRAME_LEN};

use crate::{Answer, PolicyUpdate, TerminationMode, Tick, Ticket};

/// Every input the core accepts. A run is fully described by its sequence of inputs: feeding
/// the same sequence to a fresh [`Watchdog`](crate::Watchdog) gives a byte-identical event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Input {
    /// Time advanced. Decisions are taken here, never on other inputs.
    Tick(Tick),
    /// A memstat frame arrived. `sender` is who the *transport* says sent it (the channel it
    /// arrived on, or the kernel's peer credentials), never a value read from the payload.
    Frame {
        /// The authenticated sender.
        sender: SubjectId,
        /// The bytes as received.
        payload: Payload,
    },
    /// The newest frame of a sender that used its frame budget in this tick: *latest wins*.
    ///
    /// An edge bounds the work a flooding sender costs by not reading it again once it has
    /// had `frame_budget_per_tick` frames in a tick (its frames wait in the transport, where
    /// the sender's publisher starts dropping). Just before the next [`Input::Tick`] it reads
    /// what queued meanwhile and feeds only the newest packet here; the `discarded` older ones
    /// were dropped unread and are counted as over-budget rejections. This frame is checked
    /// like any other, except that the budget does not apply to it: the figure a subject is
    /// judged on at the tick is never older than the newest frame its transport delivered.
    /// At most one per sender per tick is taken; another is rejected as over budget.
    LatestFrame {
        /// The authenticated sender.
        sender: SubjectId,
        /// The newest packet, as received.
        payload: Payload,
        /// Older packets of the same sender, read after its budget was used and discarded
        /// unread (an edge bounds how many it reads per tick; `u16` keeps the input within
        /// 64 bytes).
        discarded: u16,
    },
    /// A reclaim acknowledgement (`memstat::ReclaimAck`) arrived on a subject's memstat
    /// channel. `sender` is who the transport authenticated. It is a claim: the core notes it
    /// (one event per request) and still judges the request on the subject's figures alone.
    /// An acknowledgement quoting no pending request is rejected as
    /// [`Rejection::UnexpectedAck`](crate::Rejection::UnexpectedAck); undecodable bytes as the
    /// decode error says. Not subject to the frame budget: at most one is taken per request,
    /// and the edge bounds how many packets it reads per tick.
    ReclaimAck {
        /// The authenticated sender.
        sender: SubjectId,
        /// The bytes as received.
        payload: Payload,
    },
    /// A trusted kernel figure for a subject (e.g. cgroup `memory.current`, or VmRSS summed
    /// over its processes). Optional: the core works with frames alone.
    KernelReading {
        /// The subject measured.
        subject: SubjectId,
        /// Bytes the kernel charges to it.
        bytes: u64,
    },
    /// A subject started (or restarted): the authority spawned it.
    Register(Registration),
    /// A subject is gone for good and its slot may be reused.
    Unregister(SubjectId),
    /// Change the policy.
    SetPolicy(PolicyUpdate),
    /// The authority's answer to a termination request.
    Answer {
        /// The request answered.
        ticket: Ticket,
        /// The answer.
        answer: Answer,
    },
    /// The authority observed that a subject exited (all of its processes).
    Exited(SubjectId),
    /// What a previous run of the watchdog left behind, fed by the edge when the watchdog
    /// restarts (from its audit log and from the authority), so that a restart forgets
    /// nothing: see [`Restore`].
    Restore(Restore),
}

/// What a restarted watchdog takes over from the run before it. The edge feeds these
/// (recorded and replayed like every other input) right after it builds the watchdog:
/// [`Restore::Resume`] first, then one [`Restore::KillDecided`] per kill decision still inside
/// the kill window, then, after each subject's registration, its [`Restore::KillInFlight`].
///
/// The invariants then hold across the restart: the kill budget counts the kills decided before
/// it; a kill in flight at the crash is confirmed once when the subject exits (or escalated,
/// or reported failed), never requested again; sequence numbers and tickets never repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Restore {
    /// Where the previous run left off. Only taken by a fresh watchdog (no input yet).
    Resume {
        /// The tick to continue from (the previous run's last tick, plus the ticks that passed
        /// while no watchdog ran).
        tick: Tick,
        /// The sequence number of the next event: events are numbered on from the previous
        /// run, so `events(since)` never sees a number twice.
        next_event_seq: u64,
        /// The next ticket to issue: no ticket of the previous run is issued again.
        next_ticket: u32,
    },
    /// A kill (or would-kill) decided at `at` in the previous run: it counts against the kill
    /// budget while it is inside the window.
    KillDecided {
        /// When it was decided.
        at: Tick,
    },
    /// A termination the authority carries out (or carried out while no watchdog ran) that a
    /// previous run requested. The subject must be registered and running with no kill of its
    /// own: it becomes pending on this ticket, as if this run had requested it.
    KillInFlight {
        /// Who.
        subject: SubjectId,
        /// The request's ticket.
        ticket: Ticket,
        /// How hard it asked.
        mode: TerminationMode,
        /// The authority accepted it (so its exit is this kill's confirmation).
        accepted: bool,
        /// The enforced bytes at the decision ([`TerminationRequest::bytes`]).
        ///
        /// [`TerminationRequest::bytes`]: crate::TerminationRequest::bytes
        bytes: u64,
    },
}

/// A subject as the authority spawned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Registration {
    /// Its identity.
    pub subject: SubjectId,
    /// Its victim class.
    pub class: SubjectClass,
    /// Marked critical by the manifest: never to be killed. Subjects named in
    /// [`ALWAYS_CRITICAL`](crate::bounds::ALWAYS_CRITICAL) are critical regardless.
    pub critical: bool,
    /// It publishes memstat frames (it has a memstat channel). A subject that reports but
    /// stays silent longer than the policy's `report_stale_ticks` gets a `report stale`
    /// event; one that does not report never does (it is judged on its kernel figure).
    #[cfg_attr(feature = "serde", serde(default = "reports_by_default"))]
    pub reports: bool,
}

/// Recorded runs from before `Registration::reports` existed: every subject reported.
#[cfg(feature = "serde")]
fn reports_by_default() -> bool {
    true
}

/// Which subjects go first when several must be acted on in one tick. Lower classes are
/// preferred victims. Discriminants are fixed; only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(u8)]
pub enum SubjectClass {
    /// Batch work, caches, prefetchers: first to go.
    Background = 0,
    /// Ordinary services.
    #[default]
    Standard = 1,
    /// Services a user is waiting on: last to go.
    Foreground = 2,
}

impl SubjectClass {
    /// The word traces and policy files use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Background => "background",
            Self::Standard => "standard",
            Self::Foreground => "foreground",
        }
    }
}

/// The bytes of one received frame, held by value so that an [`Input`] can be recorded.
///
/// At most [`MAX_FRAME_LEN`] bytes are kept; `len` is what arrived (saturating at
/// `u16::MAX`, far above any valid frame), so an oversize frame is still seen as oversize by
/// the decoder.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    len: u16,
    bytes: [u8; MAX_FRAME_LEN],
}

impl Payload {
    /// Copies a received datagram. Anything past [`MAX_FRAME_LEN`] is not kept.
    #[must_use]
    pub fn new(received: &[u8]) -> Self {
        Self::truncated(received, received.len())
    }

    /// A datagram of `len` bytes of which only `kept` was read (the edge's buffer holds
    /// [`MAX_FRAME_LEN`] bytes; the kernel reports the full length).
    #[must_use]
    pub fn truncated(kept: &[u8], len: usize) -> Self {
        let mut bytes = [0; MAX_FRAME_LEN];
        let n = kept.len().min(MAX_FRAME_LEN).min(len);
        bytes[..n].copy_from_slice(&kept[..n]);
        Payload {
            len: u16::try_from(len).unwrap_or(u16::MAX),
            bytes,
        }
    }

    /// The length that arrived.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when nothing arrived.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decodes a reclaim acknowledgement, rejecting oversize input before reading it.
    pub fn decode_ack(&self) -> Result<memstat::ReclaimAck, memstat::DecodeError> {
        match self.bytes.get(..self.len()) {
            Some(bytes) => memstat::ReclaimAck::decode(bytes),
            None => Err(memstat::DecodeError::Oversize { len: self.len() }),
        }
    }

    /// Decodes the frame, rejecting oversize input before reading it.
    pub fn decode(&self) -> Result<memstat::Frame, memstat::DecodeError> {
        match self.bytes.get(..self.len()) {
            Some(bytes) => memstat::Frame::decode(bytes),
            None => Err(memstat::DecodeError::Oversize { len: self.len() }),
        }
    }

    /// The bytes kept.
    #[must_use]
    pub fn kept(&self) -> &[u8] {
        &self.bytes[..self.len().min(MAX_FRAME_LEN)]
    }
}

impl core::fmt::Debug for Payload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Payload(len={}, {:02x?})", self.len, self.kept())
    }
}

/// Recorded as `(len, kept bytes)`; a recording whose kept bytes disagree with `len` is refused.
#[cfg(feature = "serde")]
mod payload_serde {
    use core::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Payload, MAX_FRAME_LEN};

    impl Serialize for Payload {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut t = serializer.serialize_tuple(2)?;
            t.serialize_element(&self.len)?;
            t.serialize_element(&Kept(self.kept()))?;
            t.end()
        }
    }

    struct Kept<'a>(&'a [u8]);

    impl Serialize for Kept<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    /// Up to `MAX_FRAME_LEN` bytes, from a byte string or a sequence of numbers.
    struct KeptBuf {
        n: usize,
        bytes: [u8; MAX_FRAME_LEN],
    }

    impl<'de> Deserialize<'de> for KeptBuf {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_bytes(KeptVisitor)
        }
    }

    struct KeptVisitor;

    impl<'de> Visitor<'de> for KeptVisitor {
        type Value = KeptBuf;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "at most {MAX_FRAME_LEN} bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<KeptBuf, E> {
            let mut out = KeptBuf {
                n: v.len(),
                bytes: [0; MAX_FRAME_LEN],
            };
            out.bytes
                .get_mut(..v.len())
                .ok_or_else(|| E::invalid_length(v.len(), &self))?
                .copy_from_slice(v);
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeptBuf, A::Error> {
            let mut out = KeptBuf {
                n: 0,
                bytes: [0; MAX_FRAME_LEN],
            };
            while let Some(b) = seq.next_element::<u8>()? {
                let slot = out
                    .bytes
                    .get_mut(out.n)
                    .ok_or_else(|| de::Error::invalid_length(out.n + 1, &self))?;
                *slot = b;
                out.n += 1;
            }
            Ok(out)
        }
    }

    impl<'de> Deserialize<'de> for Payload {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            // Recorded as a u32 by earlier versions: read as one, and saturate like `new`.
            let (len, kept) = <(u32, KeptBuf)>::deserialize(deserializer)?;
            let expected = (len as usize).min(MAX_FRAME_LEN);
            let len = u16::try_from(len).unwrap_or(u16::MAX);
            if kept.n != expected {
                return Err(de::Error::invalid_length(
                    kept.n,
                    &"as many bytes as len (capped)",
                ));
            }
            Ok(Payload {
                len,
                bytes: kept.bytes,
            })
        }
    }
}
