//! The kubelet's only `unsafe` code: the system calls that nix has no safe wrapper for. Every other
//! system call (mounts, namespaces, FIFOs, statvfs, sysconf) goes through nix's safe functions.

use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

// Each generates an `unsafe fn (fd, *ifreq)` calling ioctl(2) with that request; its callers below
// must pass an open descriptor and a pointer to a valid ifreq.
nix::ioctl_readwrite_bad!(get_interface_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_interface_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Brings `lo` up in the calling thread's network namespace (containers of a pod talk over it).
pub(crate) fn loopback_up() -> std::io::Result<()> {
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: ifreq is plain data (a byte array and a union of integers, addresses and byte arrays),
    // for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `sock` stays open for the call; `req` is a valid ifreq, exclusively borrowed, whose
    // name is NUL-terminated (the zeroed tail); SIOCGIFFLAGS writes only its ifr_flags.
    unsafe { get_interface_flags(sock.as_raw_fd(), &mut req) }?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds the interface's flags (and was zeroed
    // before): ifru_flags is initialized.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as for SIOCGIFFLAGS; SIOCSIFFLAGS only reads the ifreq.
    unsafe { set_interface_flags(sock.as_raw_fd(), &req) }?;
    Ok(())
}
