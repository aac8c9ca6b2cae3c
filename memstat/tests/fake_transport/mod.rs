//! `FakeTransport`: an in-memory channel with a bounded queue each way, for testing the
//! publisher core without sockets. Sending and receiving never allocate (the queues are fixed
//! arrays), so the no-allocation test can use it too.

use memstat::publish::{ReconnectFailed, RecvError, SendError, Transport};
use memstat::{Frame, MAX_FRAME_LEN};

/// Frames the channel holds before it is full. Small, so that tests reach `Full` quickly.
pub(crate) const CAPACITY: usize = 32;

/// Messages the receiver can queue towards the publisher.
pub(crate) const INBOX: usize = 64;
/// The bytes kept of each message the receiver sends; a longer one keeps its real length.
const INBOX_BYTES: usize = 64;

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
    /// What the receiver sent the publisher, not yet taken: bytes kept, real length.
    inbox: [([u8; INBOX_BYTES], usize); INBOX],
    inbox_head: usize,
    inbox_len: usize,
    /// The error the next `try_recv` returns, whatever is queued.
    fail_next_recv: Option<RecvError>,
    /// Calls to `try_recv`.
    pub(crate) try_recvs: u64,
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
            inbox: [([0; INBOX_BYTES], 0); INBOX],
            inbox_head: 0,
            inbox_len: 0,
            fail_next_recv: None,
            try_recvs: 0,
        }
    }

    /// The receiver sends the publisher `message` (any bytes, any length; dropped if the
    /// inbox is full).
    pub(crate) fn peer_sends(&mut self, message: &[u8]) {
        if self.inbox_len == INBOX {
            return;
        }
        let slot = &mut self.inbox[(self.inbox_head + self.inbox_len) % INBOX];
        let kept = message.len().min(INBOX_BYTES);
        slot.0[..kept].copy_from_slice(&message[..kept]);
        slot.1 = message.len();
        self.inbox_len += 1;
    }

    /// The next `try_recv` fails with `error`.
    pub(crate) fn fail_next_recv(&mut self, error: RecvError) {
        self.fail_next_recv = Some(error);
    }

    /// Messages the receiver sent that the publisher has not taken.
    pub(crate) fn unread_by_publisher(&self) -> usize {
        self.inbox_len
    }

    /// Every message queued, as bytes, in order (frames and acknowledgements alike); the
    /// queue is then empty.
    pub(crate) fn take_messages(&mut self) -> Vec<Vec<u8>> {
        let mut messages = Vec::with_capacity(self.len);
        while let Some((bytes, len)) = self.pop() {
            messages.push(bytes[..len].to_vec());
        }
        messages
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

    fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        self.try_recvs += 1;
        if let Some(error) = self.fail_next_recv.take() {
            return Err(error);
        }
        if self.inbox_len == 0 {
            // What was queued before the receiver went away stays readable.
            return if self.open {
                Ok(None)
            } else {
                Err(RecvError::Closed)
            };
        }
        let (bytes, len) = self.inbox[self.inbox_head];
        self.inbox_head = (self.inbox_head + 1) % INBOX;
        self.inbox_len -= 1;
        // Like `MSG_TRUNC`: the real length, whatever fits.
        let kept = len.min(INBOX_BYTES).min(buf.len());
        buf[..kept].copy_from_slice(&bytes[..kept]);
        Ok(Some(len))
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
