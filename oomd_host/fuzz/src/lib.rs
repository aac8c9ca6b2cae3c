//! What the fuzz targets share: the message check of the three edge protocols, and the
//! builder of core runs from bytes.

use arbitrary::{Result, Unstructured};
use memstat::{SubjectId, MAX_FRAME_LEN};
use oomd::{
    Answer, Input, Limits, Payload, PolicyUpdate, RefusalReason, Registration, SubjectClass, Tick,
    Ticket,
};
use oomd_host::invariants::{id, Op, NAMES};
use oomd_proto::{
    ControlReply, ControlRequest, ExecdReply, ExecdRequest, FromAuthority, Message, Protocol,
    ToAuthority, WireError, HEADER_LEN, MAX_MESSAGE_LEN, VERSION,
};
use serde::{de::DeserializeOwned, Serialize};

/// Decodes `bytes` as a `T`; when that succeeds, the message re-encodes (a received packet is
/// at most [`MAX_MESSAGE_LEN`] bytes) no longer than `bytes`, and decodes back to itself.
/// Returns whether it decoded.
pub fn check_message<T>(bytes: &[u8]) -> bool
where
    T: Serialize + DeserializeOwned + Message + PartialEq + core::fmt::Debug,
{
    let Ok(msg) = oomd_proto::decode::<T>(bytes) else {
        return false;
    };
    assert_eq!(bytes.get(..2), Some(&T::PROTOCOL.magic()[..]));
    if bytes.len() <= MAX_MESSAGE_LEN {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let encoded = oomd_proto::encode(&msg, &mut buf).expect("a decoded message encodes");
        // Never longer: postcard writes minimal varints, the input may have padded ones.
        assert!(encoded.len() <= bytes.len());
        assert_eq!(oomd_proto::decode::<T>(encoded).ok(), Some(msg));
    }
    true
}

/// Every message type of every protocol on `bytes`: none panics, only types of the protocol
/// the magic names may decode them, and every other protocol calls them `WrongProtocol`.
pub fn check_every_message(bytes: &[u8]) {
    let decoded = [
        (Protocol::Authority, check_message::<FromAuthority>(bytes)),
        (Protocol::Authority, check_message::<ToAuthority>(bytes)),
        (Protocol::ExecdControl, check_message::<ExecdRequest>(bytes)),
        (Protocol::ExecdControl, check_message::<ExecdReply>(bytes)),
        (
            Protocol::OomdControl,
            check_message::<ControlRequest>(bytes),
        ),
        (Protocol::OomdControl, check_message::<ControlReply>(bytes)),
    ];
    for (protocol, ok) in decoded {
        if !ok {
            continue;
        }
        for other in Protocol::ALL.into_iter().filter(|&p| p != protocol) {
            let err = match other {
                Protocol::Authority => oomd_proto::decode::<ToAuthority>(bytes).err(),
                Protocol::ExecdControl => oomd_proto::decode::<ExecdRequest>(bytes).err(),
                _ => oomd_proto::decode::<ControlRequest>(bytes).err(),
            };
            assert!(
                matches!(
                    err,
                    Some(WireError::Peer(oomd_proto::PeerFault::WrongProtocol { .. }))
                ),
                "{protocol:?} bytes read by {other:?}: {err:?}"
            );
        }
    }
}

/// `body` behind `protocol`'s header, so that the fuzzer spends its time on bodies.
pub fn with_header(protocol: Protocol, body: &[u8]) -> Vec<u8> {
    let [a, b] = protocol.magic();
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
    bytes.extend_from_slice(&[a, b, VERSION]);
    bytes.extend_from_slice(body);
    bytes
}

/// Memory figures around the model's limits (soft 1000, hard 2000), and sometimes anything.
fn bytes(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => u.int_in_range(0..=900)?,
        1 => u.int_in_range(900..=2_100)?,
        2 => u.int_in_range(2_000..=6_000)?,
        _ => u.arbitrary()?,
    })
}

fn who(u: &mut Unstructured<'_>) -> Result<usize> {
    u.choose_index(NAMES.len())
}

/// One op of a core run, of every kind the model test generates, with wider values where the
/// core must cope with anything (memory figures, garbage payloads, ticks, tickets), and raw
/// inputs built by no rule.
pub fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0..=22u8)? {
        0 => Op::Register {
            who: who(u)?,
            critical: u.arbitrary()?,
            class: u.int_in_range(0..=2)?,
            reports: u.ratio(4, 5)?,
        },
        1 => Op::Unregister { who: who(u)? },
        2 => Op::Report {
            who: who(u)?,
            bytes: bytes(u)?,
        },
        3 => Op::Stale {
            who: who(u)?,
            bytes: bytes(u)?,
        },
        4 => Op::Latest {
            who: who(u)?,
            bytes: bytes(u)?,
            discarded: u.arbitrary()?,
        },
        5 => Op::Jump { who: who(u)? },
        6 => Op::Spoof {
            who: who(u)?,
            victim: who(u)?,
            bytes: bytes(u)?,
        },
        7 => {
            let who = who(u)?;
            let len = u.int_in_range(0..=64)?;
            Op::Garbage {
                who,
                bytes: u.bytes(len)?.to_vec(),
            }
        }
        8 => Op::Kernel {
            who: who(u)?,
            bytes: bytes(u)?,
        },
        9 => Op::Tick {
            advance: if u.ratio(1, 16)? {
                u.arbitrary()?
            } else {
                u.int_in_range(0..=3)?
            },
        },
        10 => Op::TickBack {
            by: u.int_in_range(1..=2)?,
        },
        11 => Op::Accept {
            pick: u.arbitrary()?,
        },
        12 => Op::Refuse {
            pick: u.arbitrary()?,
        },
        13 => Op::Exit { who: who(u)? },
        14 => Op::Observe(u.arbitrary()?),
        15 => Op::Budget {
            budget: u.int_in_range(1..=3)?,
            window: u.int_in_range(1..=14)?,
        },
        16 => Op::EnforceKernel(u.arbitrary()?),
        17 => Op::Silence {
            judge_on_kernel: u.arbitrary()?,
            stale_ticks: u.int_in_range(1..=11)?,
        },
        18 => Op::Crash,
        19 => Op::Reclaim {
            percent: if u.ratio(1, 3)? {
                0
            } else {
                u.int_in_range(1..=99)?
            },
            deadline: u.int_in_range(1..=6)?,
        },
        20 => Op::Ack {
            who: who(u)?,
            quote_pending: u.ratio(4, 5)?,
        },
        _ => Op::Raw(raw_input(u)?),
    })
}

/// A subject: one of the model's names mostly, any id sometimes.
fn subject(u: &mut Unstructured<'_>) -> Result<SubjectId> {
    Ok(if u.ratio(7, 8)? {
        id(who(u)?)
    } else {
        SubjectId(u.arbitrary()?)
    })
}

/// Any input but a restore, with no regard for what the watchdog has seen: unknown senders
/// and tickets, payloads of any bytes and lengths (truncated datagrams included), ticks
/// anywhere, any per-subject limits (valid or not).
fn raw_input(u: &mut Unstructured<'_>) -> Result<Input> {
    let payload = |u: &mut Unstructured<'_>| -> Result<Payload> {
        let len = u.int_in_range(0..=MAX_FRAME_LEN + 2)?;
        let kept = u.bytes(len.min(u.len()))?;
        Ok(if u.ratio(1, 8)? {
            Payload::truncated(kept, u.arbitrary()?)
        } else {
            Payload::new(kept)
        })
    };
    Ok(match u.int_in_range(0..=10u8)? {
        0 => Input::Tick(Tick(u.arbitrary()?)),
        9 => Input::ReclaimAck {
            sender: subject(u)?,
            payload: payload(u)?,
        },
        1 => Input::Frame {
            sender: subject(u)?,
            payload: payload(u)?,
        },
        2 => Input::LatestFrame {
            sender: subject(u)?,
            payload: payload(u)?,
            discarded: u.arbitrary()?,
        },
        3 => Input::KernelReading {
            subject: subject(u)?,
            bytes: u.arbitrary()?,
        },
        4 => Input::Register(Registration {
            subject: subject(u)?,
            class: *u.choose(&[
                SubjectClass::Background,
                SubjectClass::Standard,
                SubjectClass::Foreground,
            ])?,
            critical: u.arbitrary()?,
            reports: u.arbitrary()?,
        }),
        5 => Input::Unregister(subject(u)?),
        6 => Input::Answer {
            ticket: Ticket(u.arbitrary()?),
            answer: if u.arbitrary()? {
                Answer::Accepted
            } else {
                Answer::Refused(RefusalReason::Unavailable)
            },
        },
        7 => Input::Exited(subject(u)?),
        _ => Input::SetPolicy(PolicyUpdate::SubjectLimits {
            subject: subject(u)?,
            limits: if u.ratio(1, 4)? {
                None
            } else {
                Some(Limits {
                    soft_bytes: bytes(u)?,
                    hard_bytes: bytes(u)?,
                    soft_grace_ticks: u.int_in_range(0..=20)?,
                    exit_deadline_ticks: u.int_in_range(0..=20)?,
                })
            },
        }),
    })
}
