//! The collectors' system calls, kept together: statvfs(2) of a directory's filesystem, and reading
//! `net/dev` inside a pod's pinned network namespace from a short-lived thread that enters it with
//! setns(2) (a thread that changed namespace never runs anything else). Everything through nix.

use std::fs::File;
use std::path::Path;

use nix::sched::{CloneFlags, setns};

use super::fs::{FsStats, Statvfs};

/// The filesystem holding `path` (None when it cannot be read).
pub fn statvfs(path: &Path) -> Option<FsStats> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(FsStats::from_statvfs(&Statvfs {
        fragment_size: s.fragment_size(),
        blocks: s.blocks(),
        blocks_free: s.blocks_free(),
        blocks_available: s.blocks_available(),
        files: s.files(),
        files_free: s.files_free(),
    }))
}

/// `/proc/thread-self/net/dev` as seen from inside the network namespace pinned at `netns`.
/// Blocking (a thread's start and end): call it off the async threads.
pub fn net_dev_in(netns: &Path) -> std::io::Result<String> {
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .name("netns-stats".into())
        .spawn(move || -> std::io::Result<String> {
            setns(&ns, CloneFlags::CLONE_NEWNET)?;
            std::fs::read_to_string("/proc/thread-self/net/dev")
        })?
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("netns stats thread panicked")))
}
