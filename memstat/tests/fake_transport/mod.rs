//! `FakeTransport`: an in-memory channel with a bounded queue, for testing the publisher core
//! without sockets. Sending never allocates (the queue is a fixed array), so the no-allocation
//! test can use it too.

use memstat::publish::{ReconnectFailed, SendError, Transport};
use memstat::{Frame, MAX_FRAME_LEN};

/// Frames the channel holds before it is full. Small, so that tests reach `Full` quickly.
pub(crate) const CAPACITY: usize = 32;

/// One end of an imaginary IPC channel; the test plays the receiver through its methods.
#[derive(Debug)]
pub(crate) struct FakeTransport {
    queue: [([u8; MAX_FRAME_LEN], usize); CAPACITY],
    head: usize,
    len: usize,
    /// Whether the receiver's end is open.
    open: bool,
    /// Whether `reconnect` can ever work (like path mode) or not (like an inherited fd).
    can_reconnect: bool,
    /// Whether the receiver would accept a new channel now.
    listening: bool,
    /// The receiver accepts new channels and closes each at once (the core must not spin).
    hangs_up_at_once: bool,
    /// The error the next `try_send` returns, whatever the channel's state.
    fail_next: Option<SendError>,
    /// Calls to `try_send`, to prove when the core does not call the transport.
    pub(crate) try_sends: u64,
    /// Calls to `reconnect`.
    pub(crate) reconnect_calls: u64,
}

impl FakeTransport {
    /// An open channel; with `can_reconnect`, one the receiver can be reconnected to.
    pub(crate) fn new(can_reconnect: bool) -> Self {
        Self {
            queue: [([0; MAX_FRAME_LEN], 0); CAPACITY],
            head: 0,
            len: 0,
            open: true,
            can_reconnect,
            listening: can_reconnect,
            hangs_up_at_once: false,
            fail_next: None,
            try_sends: 0,
            reconnect_calls: 0,
        }
    }

    /// The receiver closes its end and, if it could be reconnected to, stops listening. What
    /// was sent before stays readable (as if the receiver had read it first).
    pub(crate) fn peer_goes_away(&mut self) {
        self.open = false;
        self.listening = false;
    }

    /// The receiver listens again (only matters if the channel can be reconnected to).
    pub(crate) fn peer_returns(&mut self) {
        self.listening = self.can_reconnect;
    }

    /// From now on every new channel is accepted and at once closed again.
    pub(crate) fn hang_up_at_once(&mut self) {
        self.hangs_up_at_once = true;
    }

    /// The next `try_send` fails with `error`.
    pub(crate) fn fail_next_send(&mut self, error: SendError) {
        self.fail_next = Some(error);
    }

    /// Every frame queued, decoded, in order; the queue is then empty.
    pub(crate) fn take_frames(&mut self) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(self.len);
        while let Some((bytes, len)) = self.pop() {
            frames.push(Frame::decode(&bytes[..len]).expect("the core sent an invalid frame"));
        }
        frames
    }

    fn pop(&mut self) -> Option<([u8; MAX_FRAME_LEN], usize)> {
        if self.len == 0 {
            return None;
        }
        let item = self.queue[self.head];
        self.head = (self.head + 1) % CAPACITY;
        self.len -= 1;
        Some(item)
    }
}

impl Transport for FakeTransport {
    fn try_send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.try_sends += 1;
        if let Some(error) = self.fail_next.take() {
            return Err(error);
        }
        if !self.open {
            return Err(SendError::Closed);
        }
        if self.len == CAPACITY {
            return Err(SendError::Full);
        }
        let slot = &mut self.queue[(self.head + self.len) % CAPACITY];
        let Some(bytes) = slot.0.get_mut(..frame.len()) else {
            // Longer than any frame: the core broke its contract.
            return Err(SendError::Other);
        };
        bytes.copy_from_slice(frame);
        slot.1 = frame.len();
        self.len += 1;
        Ok(())
    }

    fn can_reconnect(&self) -> bool {
        self.can_reconnect
    }

    fn reconnect(&mut self) -> Result<(), ReconnectFailed> {
        self.reconnect_calls += 1;
        if !self.listening {
            return Err(ReconnectFailed);
        }
        self.open = !self.hangs_up_at_once;
        Ok(())
    }
}
