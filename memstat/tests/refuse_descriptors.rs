//! `refuse_descriptors`: on a kernel with `SO_PASSRIGHTS` (Linux 6.16+), a peer cannot pass a
//! descriptor to a socket that refuses them; a socket that does not refuse takes it.

use std::io::IoSlice;
use std::os::fd::{AsFd, OwnedFd};

use memstat::publish::refuse_descriptors;
use rustix::io::Errno;
use rustix::net::{
    sendmsg, socketpair, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketFlags, SocketType,
};

fn pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socketpair")
}

/// Sends one byte with a descriptor (one end of another socket pair) attached.
fn send_with_descriptor(from: &OwnedFd) -> Result<usize, Errno> {
    let (passed, _other) = pair();
    let fds = [passed.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
    sendmsg(
        from,
        &[IoSlice::new(b"x")],
        &mut control,
        SendFlags::DONTWAIT,
    )
}

#[test]
fn a_socket_that_refuses_descriptors_takes_none_and_the_sender_is_told() {
    let (reader, peer) = pair();
    let refused = refuse_descriptors(reader.as_fd()).expect("setsockopt");
    // A socket that does not refuse them takes one: the test's sending works.
    let (_open_reader, open_peer) = pair();
    assert_eq!(send_with_descriptor(&open_peer), Ok(1));
    if !refused {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        println!(
            "skipped: this kernel ({}) has no SO_PASSRIGHTS",
            release.trim()
        );
        return;
    }
    assert_eq!(send_with_descriptor(&peer), Err(Errno::PERM));
    // Plain messages still pass.
    assert_eq!(
        rustix::net::send(&peer, b"frame", SendFlags::DONTWAIT),
        Ok(5)
    );
}
