//! oomd: a deterministic, allocation-free memory watchdog policy core.
//!
//! [`Watchdog`] decides which service (a *subject*) must be terminated, and when, from
//! authenticated memstat frames and, optionally, trusted kernel readings. It never terminates
//! anything itself: it asks an [`Authority`] and believes only what comes back as input.
//!
//! What it is: a pure state machine. `no_std`, no heap, no clock, no randomness, no hash
//! iteration; fixed capacities (const generics, defaults in [`bounds`]); every decision a
//! function of the input sequence, so a recorded run replays to a byte-identical event log.
//!
//! What it is not: a process manager, a transport, or a measure of memory. Memstat frames are
//! what services report of their own allocators, not kernel RSS (see `docs/policy.md` for what
//! that cannot see). The Linux edge (`oomd-service`, `execd`), the simulator (`oomd_host`) and the
//! process authority live elsewhere.
//!
//! # Driving it
//!
//! The methods come in three kinds, after quinn-proto's `Connection`:
//!
//! - **Input**: [`Watchdog::handle`] takes every [`Input`]: ticks, frames, kernel readings,
//!   registrations, policy changes, and the authority's answers and exit reports. A frame or
//!   kernel reading that puts its subject at or over the hard limit is decided in that input;
//!   every decision that waits on time (soft grace, deadlines, retries) is taken on
//!   [`Input::Tick`]; other inputs only record facts.
//! - **Output**: termination requests are handed to the [`Authority`] passed to `handle`,
//!   always *after* the [`EventKind::KillDecided`] and [`EventKind::KillRequested`] events
//!   are in the log (audit before action); so are reclaim requests ([`ReclaimRequest`],
//!   after [`EventKind::ReclaimRequested`]), which the edge carries on the subject's memstat
//!   channel.
//! - **Getters**: [`Watchdog::events`], [`Watchdog::subject`], [`Watchdog::subjects`],
//!   [`Watchdog::counters`], [`Watchdog::policy`], [`Watchdog::now`].
//!
//! A typical edge loop: on each timer expiry feed `Input::Tick(now)`; feed each received frame
//! with the sender its transport authenticated; feed the authority's answers and exits as they
//! arrive; after each input, read new events with `events(next_seq, ..)` and print them with
//! [`trace::write_line`].
//!
//! # The order of decisions in a tick
//!
//! A crossing of the hard limit is decided in the input that brought it, so such kills are
//! decided in input order. At a tick, subjects needing action are taken in a documented total
//! order: victim class ascending
//! ([`SubjectClass::Background`] first), then enforced bytes descending, then subject id
//! ascending. For each: the under-report check, the deadline of a pending kill (escalate
//! graceful → forced, then report failure), the soft crossing, then the kill decision (deny
//! critical, throttle over budget, log would-kill in observe-only mode, else decide and
//! request). The kill budget is spent in that order.
//!
//! ```
//! use memstat::{Frame, SubjectId};
//! use oomd::{Answer, Input, Payload, Policy, Registration, SubjectClass, Tick, Watchdog};
//!
//! struct Recorder(Vec<oomd::TerminationRequest>);
//! impl oomd::Authority for Recorder {
//!     fn request_termination(&mut self, r: oomd::TerminationRequest) { self.0.push(r) }
//!     fn request_reclaim(&mut self, _: oomd::ReclaimRequest) {}
//! }
//!
//! let hog = SubjectId::from_name("hog");
//! let mut policy = Policy::default();
//! policy.limits.soft_bytes = 1000;
//! policy.limits.hard_bytes = 2000;
//! let mut wd: Watchdog<8, 64> = Watchdog::new(policy).unwrap();
//! let mut authority = Recorder(Vec::new());
//! let reg = Registration { subject: hog, class: SubjectClass::Standard, critical: false, reports: true };
//! wd.handle(Input::Register(reg), &mut authority).unwrap();
//!
//! let frame = Frame { seq: 1, current_bytes: 4096, peak_bytes: 4096, claimed_subject: None };
//! let mut buf = [0; memstat::MAX_FRAME_LEN];
//! let n = frame.encode(&mut buf).unwrap();
//! let payload = Payload::new(&buf[..n]);
//! wd.handle(Input::Frame { sender: hog, payload }, &mut authority).unwrap();
//! wd.handle(Input::Tick(Tick(1)), &mut authority).unwrap();
//!
//! let request = authority.0[0];
//! assert_eq!(request.subject, hog);
//! wd.handle(Input::Answer { ticket: request.ticket, answer: Answer::Accepted }, &mut authority)
//!     .unwrap();
//! wd.handle(Input::Exited(hog), &mut authority).unwrap();
//!
//! let mut line = String::new();
//! let last = wd.events(0, 64).last().unwrap();
//! oomd::trace::write_line(&mut line, &last.kind, &()).unwrap();
//! assert_eq!(line, format!("oomd: kill app={hog} bytes=4096"));
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod authority;
pub mod bounds;
mod budget;
mod counters;
mod event;
mod frames;
mod input;
mod policy;
mod rules;
mod subject;
mod table;
mod tick;
pub mod trace;
mod watchdog;

pub use authority::{
    Answer, Authority, ReclaimRequest, RefusalReason, TerminationMode, TerminationRequest, Ticket,
};
pub use counters::Counters;
pub use event::{
    DenyReason, Event, EventKind, EventTag, Events, KillReason, RegistrationError, Rejection,
};
pub use input::{Input, Payload, Registration, Restore, SubjectClass};
pub use memstat::SubjectId;
pub use policy::{Limits, Policy, PolicyError, PolicyUpdate};
pub use subject::{KillState, SubjectStatus};
pub use tick::Tick;
pub use watchdog::{InputError, Watchdog};
