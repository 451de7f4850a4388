//! Filesystem figures as Kubernetes' stats report them: capacity, available (to unprivileged
//! users), used, and inodes, from a statvfs(2) result. The mapping is pure so it is tested on
//! hand-made numbers; the call itself is [`super::host::statvfs`].

/// A filesystem's usage (for a directory, only `used_bytes` and `inodes_used` are filled in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub capacity_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
    pub inodes_used: u64,
}

/// The raw statvfs fields the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statvfs {
    /// f_frsize: the unit of the block counts.
    pub fragment_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
}

impl FsStats {
    /// capacity = blocks, available = blocks free to unprivileged users, used = blocks − free
    /// (the root reserve counts as neither used nor available, as in cAdvisor and `df`).
    pub fn from_statvfs(s: &Statvfs) -> FsStats {
        FsStats {
            capacity_bytes: s.blocks * s.fragment_size,
            available_bytes: s.blocks_available * s.fragment_size,
            used_bytes: s.blocks.saturating_sub(s.blocks_free) * s.fragment_size,
            inodes: s.files,
            inodes_free: s.files_free,
            inodes_used: s.files.saturating_sub(s.files_free),
        }
    }
}

/// The mount source (e.g. `/dev/vda1`, cAdvisor's `device` label) of the filesystem with device
/// number `major:minor` in a `/proc/self/mountinfo` file: `id parent maj:min root point options
/// [tags...] - fstype source super-options`.
pub fn mount_source(mountinfo: &str, major: u64, minor: u64) -> Option<String> {
    let dev = format!("{major}:{minor}");
    mountinfo.lines().find_map(|line| {
        let (mount, sup) = line.split_once(" - ")?;
        (mount.split_whitespace().nth(2)? == dev)
            .then(|| sup.split_whitespace().nth(1).map(str::to_string))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_source_by_device_number() {
        let mi = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard
25 22 0:22 / /proc rw,nosuid shared:12 - proc proc rw
90 22 252:16 /containerd /var/lib/containerd rw master:3 - xfs /dev/vdb rw
";
        assert_eq!(mount_source(mi, 252, 16).as_deref(), Some("/dev/vdb"));
        assert_eq!(mount_source(mi, 252, 1).as_deref(), Some("/dev/vda1"));
        assert_eq!(mount_source(mi, 8, 0), None);
    }

    #[test]
    fn statvfs_mapping() {
        let s = Statvfs {
            fragment_size: 4096,
            blocks: 1000,
            blocks_free: 300,
            blocks_available: 250,
            files: 640,
            files_free: 600,
        };
        assert_eq!(
            FsStats::from_statvfs(&s),
            FsStats {
                capacity_bytes: 4_096_000,
                available_bytes: 1_024_000,
                used_bytes: 2_867_200,
                inodes: 640,
                inodes_free: 600,
                inodes_used: 40,
            }
        );
    }
}
