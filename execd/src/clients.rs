//! execd's control socket: connections (non-blocking, each with a bounded reply queue, so a
//! slow or dead client never blocks execd) and what execd does with their requests.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use oomd::RefusalReason;
use oomd_proto::{
    ExecdError, ExecdReply, ExecdRequest, ServiceInfo, TerminateOutcome, WireError, MAX_MESSAGE_LEN,
};

use crate::execd::{is_would_block, mode_str, Execd};
use crate::limits::{CLIENT_QUEUE, MAX_CLIENTS, REQUESTS_PER_STEP};

/// One control connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) fd: OwnedFd,
    /// The peer's pid as the kernel saw it at connect time (`SO_PEERCRED`), for the log.
    pub(crate) pid: i32,
    /// Wants `Exited` pushes.
    pub(crate) subscribed: bool,
    /// To be dropped at the end of this loop step.
    pub(crate) closed: bool,
    out: VecDeque<ExecdReply>,
}

impl Client {
    pub(crate) fn new(fd: OwnedFd, pid: i32) -> Self {
        Client {
            fd,
            pid,
            subscribed: false,
            closed: false,
            out: VecDeque::new(),
        }
    }

    /// Nothing waits to be sent: its next request may be read (its whole reply then fits).
    pub(crate) fn is_idle(&self) -> bool {
        self.out.is_empty()
    }

    /// Queues a reply or push; `false` if the queue is full (the message is dropped).
    pub(crate) fn push(&mut self, reply: ExecdReply) -> bool {
        if self.out.len() < CLIENT_QUEUE {
            self.out.push_back(reply);
            true
        } else {
            false
        }
    }

    /// Sends what the socket takes; marks the client closed if it is gone or failing.
    pub(crate) fn flush(&mut self) {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        while let Some(front) = self.out.front() {
            let sent = oomd_proto::encode(front, &mut buf)
                .and_then(|bytes| oomd_proto::send(self.fd.as_fd(), bytes, &[]));
            match sent {
                Ok(()) => {
                    self.out.pop_front();
                }
                Err(WireError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }
}

impl Execd {
    // ----- the control socket ---------------------------------------------------------------

    pub(crate) fn accept_clients(&mut self) {
        while let Some((listener, _)) = &self.listener {
            let fd = match oomd_proto::accept(listener) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.log
                        .line(format_args!("execd: control: accept failed ({e})"));
                    return;
                }
            };
            if self.clients.len() >= MAX_CLIENTS {
                self.stats.clients_refused += 1;
                self.log.line(format_args!(
                    "execd: control: refused a connection (already {MAX_CLIENTS} clients)"
                ));
                continue;
            }
            if oomd_proto::set_nonblocking(&fd).is_err() {
                continue;
            }
            let pid = oomd_proto::peer_pid(&fd).unwrap_or(0);
            self.clients.push(Client::new(fd, pid));
        }
    }

    pub(crate) fn read_client(&mut self, i: usize) {
        for _ in 0..REQUESTS_PER_STEP {
            let client = &mut self.clients[i];
            if client.closed || !client.is_idle() {
                return;
            }
            match self.receiver.recv_msg::<ExecdRequest>(client.fd.as_fd()) {
                Ok((request, _fds)) => self.handle_request(i, request),
                Err(e) if is_would_block(&e) => return,
                Err(
                    WireError::Malformed | WireError::UnsupportedVersion(_) | WireError::Truncated,
                ) => {
                    self.stats.bad_requests += 1;
                    client.push(ExecdReply::Error(ExecdError::BadRequest));
                }
                Err(_) => {
                    client.closed = true;
                    return;
                }
            }
        }
    }

    fn handle_request(&mut self, c: usize, request: ExecdRequest) {
        let pid = self.clients[c].pid;
        match request {
            ExecdRequest::Spawn { name } => {
                let reply = match self.slots.iter().position(|s| s.spec.name == name) {
                    None => {
                        self.log.line(format_args!(
                            "execd: spawn {name} refused (unknown-service) by=control pid={pid}"
                        ));
                        ExecdReply::Error(ExecdError::UnknownService)
                    }
                    Some(i) => match self.spawn_service(i) {
                        Ok(child) => ExecdReply::Spawned {
                            subject: self.slots[i].spec.subject,
                            pid: child,
                        },
                        Err(e) => {
                            if e == ExecdError::AlreadyRunning {
                                self.log.line(format_args!(
                                    "execd: spawn {name} refused (already-running) by=control pid={pid}"
                                ));
                            }
                            ExecdReply::Error(e)
                        }
                    },
                };
                self.clients[c].push(reply);
            }
            ExecdRequest::Terminate { subject, mode } => {
                let slot = self.find_subject(subject).map(|i| &self.slots[i].spec);
                let reason = match slot {
                    Some(spec) if spec.critical => RefusalReason::Critical,
                    _ => RefusalReason::NotPermitted,
                };
                let who = slot.map_or_else(|| format!("subject={subject}"), |s| s.name.to_string());
                self.stats.control_denied += 1;
                self.log.line(format_args!(
                    "execd: terminate {who} mode={} denied ({}) by=control pid={pid}",
                    mode_str(mode),
                    reason.as_str()
                ));
                self.clients[c].push(ExecdReply::Terminate(TerminateOutcome::Denied(reason)));
            }
            ExecdRequest::List => {
                for slot in &self.slots {
                    let info = ServiceInfo {
                        subject: slot.spec.subject,
                        name: slot.spec.name.clone(),
                        critical: slot.spec.critical,
                        pid: slot
                            .run
                            .as_ref()
                            .map(|r| r.child.pid.as_raw_nonzero().get()),
                    };
                    self.clients[c].push(ExecdReply::Service(info));
                }
                self.clients[c].push(ExecdReply::End);
            }
            ExecdRequest::Subscribe => self.clients[c].subscribed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_does_not_read_never_blocks_and_its_queue_is_bounded() {
        let (ours, _theirs) = oomd_proto::seqpacket_pair().unwrap();
        oomd_proto::set_nonblocking(&ours).unwrap();
        let mut client = Client::new(ours, 0);
        // Fill the socket buffer: flush returns (WouldBlock) instead of blocking.
        let mut sent = 0;
        while client.push(ExecdReply::End) {
            client.flush();
            if !client.is_idle() {
                break;
            }
            sent += 1;
            assert!(sent < 1_000_000, "the socket never filled");
        }
        assert!(!client.closed);
        // Then the queue fills up to its bound, and no further.
        let queued = (0..2 * CLIENT_QUEUE)
            .filter(|_| client.push(ExecdReply::End))
            .count();
        assert_eq!(queued, CLIENT_QUEUE - 1);
        assert!(!client.push(ExecdReply::End));
    }
}
