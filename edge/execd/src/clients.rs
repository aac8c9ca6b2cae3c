//! execd's control socket: connections (non-blocking, each with a bounded reply queue, so a
//! slow or dead client never blocks execd), who may ask for what, and what execd does with
//! their requests.
//!
//! Admission follows the one rule of [`oomd_proto::admission`] (shared with the oomd
//! service): idle connections time out, the longest-idle one gives way to a newcomer when the
//! table is full, unprivileged callers never displace privileged ones, a privileged
//! subscriber is never displaced, and a newcomer that finds no room is told `Busy`. Spawning
//! needs root, execd's own user, or the control group, by the caller's kernel credentials.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use oomd::RefusalReason;
use oomd_proto::admission::{self, Admit, PeerCred, Seat};
use oomd_proto::{
    ExecdError, ExecdReply, ExecdRequest, PeerFault, ServiceInfo, TerminateOutcome, WireError,
    MAX_MESSAGE_LEN,
};

use crate::bounds::{CLIENT_QUEUE, MAX_CLIENTS, REQUESTS_PER_STEP, UNPRIVILEGED_CLIENTS};
use crate::execd::Execd;

/// One control connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) fd: OwnedFd,
    /// The peer as the kernel saw it at connect time (`SO_PEERCRED`).
    pub(crate) cred: PeerCred,
    /// Its caller may spawn services.
    pub(crate) privileged: bool,
    /// Wants `Exited` pushes.
    pub(crate) subscribed: bool,
    /// To be dropped at the end of this loop step.
    pub(crate) closed: bool,
    /// Since when it has sent nothing.
    pub(crate) idle_since: Instant,
    out: VecDeque<ExecdReply>,
}

impl Client {
    pub(crate) fn new(fd: OwnedFd, cred: PeerCred, privileged: bool, now: Instant) -> Self {
        Client {
            fd,
            cred,
            privileged,
            subscribed: false,
            closed: false,
            idle_since: now,
            out: VecDeque::new(),
        }
    }

    /// How the admission rule sees it.
    pub(crate) fn seat(&self) -> Seat {
        Seat {
            privileged: self.privileged,
            pinned: self.subscribed && self.privileged,
            busy: !self.is_idle(),
            idle_since: self.idle_since,
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
                Err(e) if e.is_would_block() => return,
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
        let now = Instant::now();
        while let Some((listener, _)) = &self.listener {
            let fd = match oomd_proto::accept(listener) {
                Ok(fd) => fd,
                Err(e) if oomd_proto::would_block(&e) => return,
                Err(e) => {
                    self.log
                        .line(format_args!("execd: control: accept failed ({e})"));
                    return;
                }
            };
            if oomd_proto::set_nonblocking(&fd).is_err() {
                continue;
            }
            let cred = admission::peer_cred(&fd).unwrap_or(PeerCred::NOBODY);
            let privileged = self.access.permits(&cred);
            let mut newcomer = Client::new(fd, cred, privileged, now);
            let seats: Vec<Option<Seat>> = (0..MAX_CLIENTS)
                .map(|i| self.clients.get(i).filter(|c| !c.closed).map(Client::seat))
                .collect();
            match admission::admit(&seats, privileged, UNPRIVILEGED_CLIENTS) {
                Admit::Free(_) => self.clients.push(newcomer),
                Admit::Evict(i) => {
                    self.evict(i, now);
                    self.clients.push(newcomer);
                }
                Admit::Busy => {
                    // Logged before the reply goes out: whoever reads the reply finds the
                    // line already written.
                    self.stats.clients_refused += 1;
                    if let Some(n) = self.refusals.note(now) {
                        self.log.line(format_args!(
                            "execd: control: refused {n} connections (busy: every slot held by clients that may not be displaced)"
                        ));
                    }
                    newcomer.push(ExecdReply::Error(ExecdError::Busy));
                    newcomer.flush();
                }
            }
        }
    }

    /// Closes client `i` with an "evicted" notice: it sat idle and its slot is needed, or its
    /// idle time is up.
    fn evict(&mut self, i: usize, now: Instant) {
        if i >= self.clients.len() {
            return;
        }
        self.stats.clients_evicted += 1;
        if let Some(n) = self.evictions.note(now) {
            self.log.line(format_args!(
                "execd: control: closed {n} idle connections (idle timeout, or room for a newcomer)"
            ));
        }
        let client = &mut self.clients[i];
        client.push(ExecdReply::Error(ExecdError::Evicted));
        client.flush();
        client.closed = true;
        // Dropped now, so that its slot is free for the newcomer.
        self.clients.retain(|c| !c.closed);
    }

    /// Closes the connections idle past the timeout; logs what the throttles held back.
    pub(crate) fn expire_clients(&mut self, now: Instant) {
        let timeout = self.idle_timeout;
        while let Some(i) = self
            .clients
            .iter()
            .position(|c| !c.closed && admission::idle_expired(&c.seat(), now, timeout))
        {
            self.evict(i, now);
        }
        if let Some(n) = self.refusals.due(now) {
            self.log.line(format_args!(
                "execd: control: refused {n} connections (busy)"
            ));
        }
        if let Some(n) = self.evictions.due(now) {
            self.log
                .line(format_args!("execd: control: closed {n} idle connections"));
        }
        if let Some(n) = self.strangers.due(now) {
            self.log.line(format_args!(
                "execd: control: {n} messages of another protocol (not an execd socket for them)"
            ));
        }
    }

    /// When the next idle connection expires.
    pub(crate) fn next_client_expiry(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter(|c| !c.seat().pinned && !c.closed)
            .map(|c| c.idle_since + self.idle_timeout)
            .min()
    }

    pub(crate) fn read_client(&mut self, i: usize) {
        let now = Instant::now();
        for _ in 0..REQUESTS_PER_STEP {
            let client = &mut self.clients[i];
            if client.closed || !client.is_idle() {
                return;
            }
            match self.receiver.recv_msg::<ExecdRequest>(client.fd.as_fd()) {
                Ok((request, _fds)) => {
                    client.idle_since = now;
                    self.handle_request(i, request);
                }
                Err(e) if e.is_would_block() => return,
                Err(WireError::Peer(PeerFault::WrongProtocol { found, .. })) => {
                    // A client at the wrong socket: say so in our protocol (it recognizes the
                    // magic and reports "not an execd socket"), then let it go.
                    // Logged before the reply goes out: whoever reads the reply finds the line
                    // already written.
                    self.stats.bad_requests += 1;
                    let pid = client.cred.pid;
                    if let Some(n) = self.strangers.note(now) {
                        let spoke = found.map_or("no protocol of ours", |p| p.describe());
                        self.log.line(format_args!(
                            "execd: control: a client (pid {pid}) speaks {spoke}: not an execd socket for it ({n} such messages)"
                        ));
                    }
                    let client = &mut self.clients[i];
                    client.push(ExecdReply::Error(ExecdError::WrongProtocol));
                    client.flush();
                    client.closed = true;
                    return;
                }
                Err(WireError::Peer(_)) => {
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
        let pid = self.clients[c].cred.pid;
        match request {
            ExecdRequest::Spawn { name } if !self.clients[c].privileged => {
                let uid = self.clients[c].cred.uid;
                self.stats.spawns_not_permitted += 1;
                self.log.line(format_args!(
                    "execd: spawn {name} refused (not-permitted: uid {uid}) by=control pid={pid}"
                ));
                self.clients[c].push(ExecdReply::Error(ExecdError::NotPermitted { uid }));
            }
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
                    mode.as_str(),
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
            ExecdRequest::EndWatchdog => {
                let uid = self.clients[c].cred.uid;
                let reply = if !cfg!(feature = "selftest") || !self.clients[c].privileged {
                    self.log.line(format_args!(
                        "execd: end-watchdog refused (not-permitted: {}) by=control pid={pid}",
                        if cfg!(feature = "selftest") {
                            "not a privileged caller"
                        } else {
                            "not a selftest build"
                        }
                    ));
                    ExecdReply::Error(ExecdError::NotPermitted { uid })
                } else if self.end_watchdog() {
                    ExecdReply::Terminate(TerminateOutcome::Accepted)
                } else {
                    ExecdReply::Terminate(TerminateOutcome::Unknown)
                };
                self.clients[c].push(reply);
            }
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
        let mut client = Client::new(ours, PeerCred::NOBODY, false, Instant::now());
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
