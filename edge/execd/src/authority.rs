//! The authority channel: execd's end (a non-blocking socket and a bounded queue of the
//! messages the oomd service has not taken yet), and what execd does with its requests.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oomd::{Answer, RefusalReason, TerminationRequest};
use oomd_proto::{FromAuthority, ToAuthority, WireError, MAX_MESSAGE_LEN};

use crate::bounds::{AUTHORITY_QUEUE, REQUESTS_PER_STEP};
use crate::execd::Execd;

/// One message for the oomd service, with the descriptor it carries (a memstat channel end),
/// closed in execd once sent or dropped.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) msg: FromAuthority,
    pub(crate) fd: Option<OwnedFd>,
}

/// A termination execd carries out for the oomd service: what a restarted oomd service is
/// told, so that it adopts the kill instead of deciding it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Termination {
    pub(crate) ticket: oomd::Ticket,
    pub(crate) mode: oomd::TerminationMode,
    pub(crate) accepted: bool,
    pub(crate) bytes: u64,
}

impl Termination {
    pub(crate) fn message(&self, subject: memstat::SubjectId) -> FromAuthority {
        FromAuthority::Terminating {
            subject,
            ticket: self.ticket,
            mode: self.mode,
            accepted: self.accepted,
            bytes: self.bytes,
        }
    }
}

/// The authority channel while it is open.
#[derive(Debug)]
pub(crate) struct OomdLink {
    fd: OwnedFd,
    /// Which channel this is (1 for the first): a service announced on an earlier channel is
    /// unknown to the oomd service on this one.
    pub(crate) generation: u64,
    out: VecDeque<Outgoing>,
    /// When the oomd service last sent anything (a heartbeat at least).
    pub(crate) last_heard: std::time::Instant,
}

impl OomdLink {
    pub(crate) fn new(fd: OwnedFd, generation: u64) -> io::Result<Self> {
        oomd_proto::set_nonblocking(&fd)?;
        Ok(OomdLink {
            fd,
            generation,
            out: VecDeque::new(),
            last_heard: std::time::Instant::now(),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether one more message fits (requests are read only while their answer fits).
    pub(crate) fn has_room(&self) -> bool {
        self.out.len() < AUTHORITY_QUEUE
    }

    /// Whether messages wait for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues a message; `false` when the queue is full (the message and its descriptor are
    /// dropped).
    pub(crate) fn push(&mut self, out: Outgoing) -> bool {
        if self.has_room() {
            self.out.push_back(out);
            true
        } else {
            false
        }
    }

    /// Sends what the socket takes. `Err` means the channel is unusable (closed by the peer, or
    /// failing): the caller drops it.
    pub(crate) fn flush(&mut self) -> Result<(), WireError> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        while let Some(front) = self.out.front() {
            let bytes = oomd_proto::encode(&front.msg, &mut buf)?;
            let passed: Option<BorrowedFd<'_>> = front.fd.as_ref().map(AsFd::as_fd);
            let fds: &[BorrowedFd<'_>] = passed.as_slice();
            match oomd_proto::send(self.fd.as_fd(), bytes, fds) {
                Ok(()) => {
                    self.out.pop_front();
                }
                Err(e) if e.is_would_block() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Execd {
    // ----- the authority channel -----------------------------------------------------------

    pub(crate) fn open_link(&mut self, fd: OwnedFd) -> io::Result<()> {
        self.link_generations += 1;
        let link = OomdLink::new(fd, self.link_generations)?;
        self.log.line(format_args!("execd: authority channel open"));
        self.link = Some(link);
        // Nothing is forgotten: every service that runs, every termination under way, and
        // every exit after an accepted termination not yet acknowledged.
        for i in 0..self.slots.len() {
            self.announce(i);
            if let Some(unseen) = &self.slots[i].unseen_exit {
                let subject = self.slots[i].spec.subject;
                let messages = [
                    unseen.started.clone(),
                    unseen.termination.message(subject),
                    FromAuthority::Exited {
                        subject,
                        status: unseen.status,
                    },
                ];
                for msg in messages {
                    self.send_to_oomd(Outgoing { msg, fd: None });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn close_link(&mut self, why: &str) {
        if self.link.take().is_some() {
            self.log
                .line(format_args!("execd: authority channel closed ({why})"));
        }
    }

    pub(crate) fn send_to_oomd(&mut self, out: Outgoing) {
        let Some(link) = &mut self.link else { return };
        let kind = match &out.msg {
            FromAuthority::Started { .. } => "Started",
            FromAuthority::Answer { .. } => "Answer",
            FromAuthority::Exited { .. } => "Exited",
            FromAuthority::Terminating { .. } => "Terminating",
        };
        if !link.push(out) {
            self.stats.authority_dropped += 1;
            self.log.line(format_args!(
                "execd: authority channel full, dropped a {kind} message"
            ));
        }
    }

    pub(crate) fn read_authority(&mut self) {
        for _ in 0..REQUESTS_PER_STEP {
            let Some(link) = &self.link else { return };
            if !link.has_room() {
                return;
            }
            let received = self.receiver.recv_msg::<ToAuthority>(link.fd());
            if received.is_ok() {
                if let Some(link) = &mut self.link {
                    link.last_heard = std::time::Instant::now();
                }
            }
            match received {
                Ok((ToAuthority::Terminate(request), _fds)) => {
                    let answer = self.terminate(request);
                    let msg = FromAuthority::Answer {
                        ticket: request.ticket,
                        answer,
                    };
                    self.send_to_oomd(Outgoing { msg, fd: None });
                }
                Ok((ToAuthority::Heartbeat { .. }, _fds)) => {}
                Ok((ToAuthority::ExitSeen { subject }, _fds)) => {
                    if let Some(i) = self.find_subject(subject) {
                        self.slots[i].unseen_exit = None;
                    }
                }
                Err(e) if e.is_would_block() => return,
                Err(e @ WireError::Peer(_)) => {
                    self.stats.bad_requests += 1;
                    self.log.line(format_args!(
                        "execd: authority channel: ignored a bad message ({e})"
                    ));
                }
                Err(e) => {
                    self.close_link(&format!("{e}"));
                    return;
                }
            }
        }
    }

    /// Carries out a termination request from the authority channel, or refuses it.
    fn terminate(&mut self, request: TerminationRequest) -> Answer {
        let mode = request.mode.as_str();
        let by = format!(
            "by=authority ticket={} audit_seq={}",
            request.ticket.0, request.audit_seq
        );
        let refuse = |this: &mut Self, who: &str, reason: RefusalReason| {
            this.stats.terminate_refused += 1;
            this.log.line(format_args!(
                "execd: terminate {who} mode={mode} denied ({}) {by}",
                reason.as_str()
            ));
            Answer::Refused(reason)
        };
        let Some(i) = self.find_subject(request.subject) else {
            return refuse(
                self,
                &format!("subject={}", request.subject),
                RefusalReason::UnknownSubject,
            );
        };
        let name = self.slots[i].spec.name.clone();
        if self.slots[i].spec.critical {
            return refuse(self, &name, RefusalReason::Critical);
        }
        if self.slots[i].run.is_none() {
            return refuse(self, &name, RefusalReason::UnknownSubject);
        }
        match self.signal_service(i, request.mode) {
            Ok(()) => {
                if let Some(run) = &mut self.slots[i].run {
                    run.termination = Some(Termination {
                        ticket: request.ticket,
                        mode: request.mode,
                        accepted: true,
                        bytes: request.bytes,
                    });
                }
                self.stats.terminate_accepted += 1;
                self.log.line(format_args!(
                    "execd: terminate {name} mode={mode} accepted {by}"
                ));
                Answer::Accepted
            }
            Err(e) => {
                self.stats.terminate_refused += 1;
                self.log.line(format_args!(
                    "execd: terminate {name} mode={mode} denied (unavailable: {e}) {by}"
                ));
                Answer::Refused(RefusalReason::Unavailable)
            }
        }
    }
}
