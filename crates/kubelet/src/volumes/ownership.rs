//! `fsGroup` ownership of a volume (Kubernetes' `SetVolumeOwnership`): every file and directory under
//! the volume's root gets the pod's fsGroup as its group (symlinks themselves, never their targets),
//! group read-write (read-only for a read-only volume), and directories group-executable and setgid so
//! that what the pod creates later inherits the group. With `fsGroupChangePolicy: OnRootMismatch` the
//! walk is skipped when the root already has the group and those bits. Done once per pod and volume
//! (a marker in the pod's directory), off the async threads.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const RW: u32 = 0o660;
const RO: u32 = 0o440;
const EXEC: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// Whether the root does not already look as the walk would leave it (Kubernetes'
/// `requiresPermissionChange`).
pub fn requires_change(root: &Path, gid: u32, read_only: bool) -> bool {
    let Ok(meta) = std::fs::metadata(root) else { return true };
    if meta.gid() != gid || !meta.is_dir() {
        return true;
    }
    let wanted = if read_only { RO } else { RW } | EXEC;
    let mode = meta.permissions().mode();
    mode & wanted != wanted || mode & SETGID == 0
}

fn change(path: &Path, gid: u32, read_only: bool) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, None, Some(gid))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut mask = if read_only { RO } else { RW };
    if meta.is_dir() {
        mask |= SETGID | EXEC;
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode | mask != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | mask))?;
    }
    Ok(())
}

/// Applies the ownership under `root` as `policy` (`OnRootMismatch`, else `Always`) says; returns how
/// many entries were changed (0 when skipped).
pub fn set_volume_ownership(
    root: &Path,
    gid: u32,
    read_only: bool,
    policy: Option<&str>,
) -> std::io::Result<usize> {
    if policy == Some("OnRootMismatch") && !requires_change(root, gid, read_only) {
        return Ok(0);
    }
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        change(&path, gid, read_only)?;
        n += 1;
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() {
            for e in std::fs::read_dir(&path)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(n)
}

/// Applies the ownership once for this pod (`marker` records the group it was done for).
pub async fn apply_once(
    marker: PathBuf,
    root: PathBuf,
    gid: i64,
    policy: Option<String>,
) -> std::io::Result<()> {
    let gid = u32::try_from(gid).map_err(|_| std::io::Error::other(format!("fsGroup {gid} out of range")))?;
    tokio::task::spawn_blocking(move || {
        if std::fs::read_to_string(&marker).ok().as_deref() == Some(gid.to_string().as_str()) {
            return Ok(());
        }
        let n = set_volume_ownership(&root, gid, false, policy.as_deref())?;
        tracing::debug!(path = %root.display(), gid, entries = n, "volume ownership set");
        if let Some(parent) = marker.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&marker, gid.to_string())
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn set(p: &Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    #[test]
    fn group_and_bits_on_every_entry() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("vol");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "x").unwrap();
        std::fs::write(root.join("outside"), "y").unwrap();
        set(&root, 0o700);
        set(&root.join("sub"), 0o700);
        set(&root.join("sub/f"), 0o600);
        let target = t.path().join("target");
        std::fs::write(&target, "z").unwrap();
        set(&target, 0o600);
        std::os::unix::fs::symlink(&target, root.join("link")).unwrap();
        // The test's own group (its temporary directory's): any user may give files its own group.
        let gid = std::fs::metadata(t.path()).unwrap().gid();
        assert!(requires_change(&root, gid, false));
        assert_eq!(set_volume_ownership(&root, gid, false, None).unwrap(), 5);
        assert_eq!(mode(&root), 0o2770);
        assert_eq!(mode(&root.join("sub")), 0o2770);
        assert_eq!(mode(&root.join("sub/f")), 0o660);
        assert_eq!(mode(&target), 0o600, "a symlink's target is not touched");
        assert_eq!(std::fs::metadata(root.join("sub/f")).unwrap().gid(), gid);
        assert!(!requires_change(&root, gid, false));
        // OnRootMismatch: the root matches, so nothing is walked.
        set(&root.join("sub/f"), 0o600);
        assert_eq!(set_volume_ownership(&root, gid, false, Some("OnRootMismatch")).unwrap(), 0);
        assert_eq!(mode(&root.join("sub/f")), 0o600);
        // Always walks again.
        set_volume_ownership(&root, gid, false, Some("Always")).unwrap();
        assert_eq!(mode(&root.join("sub/f")), 0o660);
        // A root without setgid is a mismatch.
        set(&root, 0o770);
        assert!(requires_change(&root, gid, false));
        // Read-only volumes get read bits only.
        let ro = t.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        set(&ro, 0o500);
        set_volume_ownership(&ro, gid, true, None).unwrap();
        assert_eq!(mode(&ro), 0o2550);
    }

    #[tokio::test]
    async fn once_per_pod() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("vol");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("f"), "x").unwrap();
        set(&root.join("f"), 0o600);
        let gid = std::fs::metadata(t.path()).unwrap().gid() as i64;
        let marker = t.path().join("pod/volume-ownership/data");
        apply_once(marker.clone(), root.clone(), gid, None).await.unwrap();
        assert_eq!(mode(&root.join("f")), 0o660);
        set(&root.join("f"), 0o600);
        apply_once(marker.clone(), root.clone(), gid, None).await.unwrap();
        assert_eq!(mode(&root.join("f")), 0o600, "done once for the pod");
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), gid.to_string());
    }
}
