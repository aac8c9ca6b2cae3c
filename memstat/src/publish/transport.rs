//! `Transport`: the channel a [`PublisherCore`](super::PublisherCore) sends frames through.
#![forbid(unsafe_code)]

/// A channel that carries one memstat frame per message to the watchdog.
///
/// The core calls [`try_send`](Self::try_send) once per due frame, with the whole encoded
/// frame (at most [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) bytes). A transport must:
///
/// - **keep message boundaries**: one `try_send` is one message, delivered whole or not at
///   all (the frame has no length prefix);
/// - **never block**: if the channel cannot take the frame now, return [`SendError::Full`]
///   and keep nothing (the core never retries a frame: the next one carries newer figures);
/// - **be authenticated by the channel**: the receiver must learn who sent a frame from the
///   channel it arrived on (an endpoint handed to exactly this service, the kernel's peer
///   credentials), never from the frame's bytes, whose `claimed_subject` is only a claim.
///
/// Reconnecting is optional. A transport whose channel can be replaced (a name to look up
/// again, a path to connect to) returns `true` from [`can_reconnect`](Self::can_reconnect)
/// and implements [`reconnect`](Self::reconnect); the core then drives a bounded exponential
/// backoff and calls `reconnect` when it is due. The defaults say the channel cannot be
/// replaced: after [`SendError::Closed`] every frame is dropped as
/// [`DropReason::Disconnected`](super::DropReason::Disconnected) without calling the
/// transport again.
///
/// Receiving is optional too: oomd may send the service [reclaim
/// requests](crate::ReclaimRequest) on the same channel. A transport whose channel carries
/// messages back implements [`try_recv`](Self::try_recv), which the core calls from
/// [`PublisherCore::poll_reclaim`](super::PublisherCore::poll_reclaim) (never from
/// `publish_at`), and [`try_send`](Self::try_send) also carries the service's
/// [acknowledgements](crate::ReclaimAck), from
/// [`PublisherCore::acknowledge`](super::PublisherCore::acknowledge). The default receives
/// nothing. A transport that reports a closure from `try_recv` (or from an acknowledgement's
/// `try_send`) should report it again from the next `try_send`: the core changes the
/// channel's state, and starts a backoff, only from what a frame's `try_send` says.
pub trait Transport {
    /// Offers `frame` as one message, now. Must not block.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] if the channel cannot take it now (kept, retried with the next
    /// frame); [`SendError::Closed`] if the peer is gone (the core stops sending until a
    /// reconnection, or for good); [`SendError::Other`] for anything else (the channel is
    /// kept). The frame is dropped and counted in each case.
    fn try_send(&mut self, frame: &[u8]) -> Result<(), SendError>;

    /// Whether [`reconnect`](Self::reconnect) can ever open a new channel after
    /// [`SendError::Closed`]. Asked once per closure. Default: `false`.
    fn can_reconnect(&self) -> bool {
        false
    }

    /// Opens a new channel, replacing the closed one. Called only after `try_send` said
    /// `Closed`, only if [`can_reconnect`](Self::can_reconnect), and only once the backoff has
    /// passed; on success the frame that triggered the attempt is sent on the new channel.
    /// Must not block. Default: fails.
    ///
    /// # Errors
    ///
    /// [`ReconnectFailed`] if no channel could be opened now; the core waits longer before
    /// the next attempt.
    fn reconnect(&mut self) -> Result<(), ReconnectFailed> {
        Err(ReconnectFailed)
    }

    /// Takes one message the peer sent, if one is queued, into the front of `buf`. Must not
    /// block. Default: `Ok(None)`, nothing is ever received.
    ///
    /// Returns `Ok(None)` when nothing is queued now, and `Ok(Some(len))` with the message's
    /// *real* length when one was taken: `len` may exceed `buf.len()`, and then the message
    /// was truncated to `buf.len()` bytes (and is gone: a message is taken whole or not at
    /// all, like a send). A message of length 0 is a message, not the end of the channel.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] if the peer is gone (nothing more will arrive on this channel);
    /// [`RecvError::Other`] for anything else. Either way nothing was taken.
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        let _ = buf;
        Ok(None)
    }
}

/// Why a [`Transport`] could not send a frame. The numbers are stable (a transport over
/// another OS's IPC may carry them); new variants are only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u8)]
pub enum SendError {
    /// The channel's queue is full: the receiver is not keeping up. The channel is kept and
    /// the frame dropped as [`DropReason::WouldBlock`](super::DropReason::WouldBlock).
    Full = 1,
    /// The peer is gone. The core treats the channel as closed: dropped as
    /// [`DropReason::Disconnected`](super::DropReason::Disconnected), then reconnection with
    /// backoff if the transport can, otherwise no more sends.
    Closed = 2,
    /// Any other failure. The channel is kept and the frame dropped as
    /// [`DropReason::Error`](super::DropReason::Error).
    Other = 3,
}

/// Why a [`Transport`] could not receive a message. The numbers are stable (a transport over
/// another OS's IPC may carry them); new variants are only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[repr(u8)]
pub enum RecvError {
    /// The peer is gone: nothing more will arrive on this channel.
    Closed = 1,
    /// Any other failure; the channel is kept.
    Other = 2,
}

/// A reconnection attempt opened no channel. The core doubles its wait (up to
/// [`backoff_max`](super::PublisherConfig::backoff_max)) before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectFailed;

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Full => "channel full",
            Self::Closed => "channel closed",
            Self::Other => "send failed",
        })
    }
}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Closed => "channel closed",
            Self::Other => "receive failed",
        })
    }
}

impl core::fmt::Display for ReconnectFailed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("reconnection failed")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}

#[cfg(feature = "std")]
impl std::error::Error for RecvError {}

#[cfg(feature = "std")]
impl std::error::Error for ReconnectFailed {}
