//! The local terminal for `navctl exec -t`: is standard input one, its window size, raw mode. The
//! window size is navctl's only `unsafe` code (nix wraps the TIOCGWINSZ ioctl only as an
//! `unsafe fn`); the rest goes through nix's safe functions.

use std::io::{stdin, stdout};
use std::os::fd::AsRawFd;

use nix::libc;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

// Generates `unsafe fn get_window_size(fd, *mut winsize)`, ioctl(2) with TIOCGWINSZ; its caller
// must pass a pointer to a valid winsize.
nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, libc::winsize);

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    nix::unistd::isatty(stdin()).unwrap_or(false)
}

/// The (columns, rows) of the terminal on standard output; None if it is not a terminal.
pub fn size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: `ws` is a valid winsize, exclusively borrowed for the call, and TIOCGWINSZ writes
    // only a winsize through the pointer. The descriptor is stdout's number: if it is closed or
    // not a terminal the call fails (EBADF, ENOTTY) without touching memory.
    let r = unsafe { get_window_size(stdout().as_raw_fd(), &mut ws) };
    (r.is_ok() && ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The terminal on standard input in raw mode until dropped.
pub struct RawMode(Termios);

impl RawMode {
    /// None if standard input is not a terminal or its attributes cannot be set.
    pub fn enter() -> Option<RawMode> {
        let saved = tcgetattr(stdin()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Restores the attributes read in `enter`.
        let _ = tcsetattr(stdin(), SetArg::TCSANOW, &self.0);
    }
}
