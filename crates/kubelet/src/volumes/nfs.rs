//! NFS volumes: the export mounted with the host's mount helper (`mount -t nfs [-o options] server:path
//! <pod volume dir>`, as Kubernetes' nfs plugin does), at most once (an existing mount point is kept),
//! bounded in time so an unreachable server cannot hold a pod sync forever. Unmounting is the pod
//! cleanup's ([`super::cleanup`] detaches every mount under the pod's volumes).
//!
//! Nothing here is exercised against a real NFS server in the tests (there is none): the command line
//! is unit-tested, the mount itself needs a host with `mount.nfs` and a reachable export.

use std::path::Path;
use std::time::Duration;

/// How long one `mount` may take.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(120);

/// `server:path`, an IPv6 server in brackets.
fn source(server: &str, path: &str) -> String {
    if server.contains(':') && !server.starts_with('[') {
        format!("[{server}]:{path}")
    } else {
        format!("{server}:{path}")
    }
}

/// The arguments of `mount`: the volume's mount options, then `ro` when read-only (each once).
pub fn mount_args(server: &str, path: &str, dir: &Path, read_only: bool, options: &[String]) -> Vec<String> {
    let mut opts: Vec<String> = Vec::new();
    for o in options.iter().map(String::as_str).chain(read_only.then_some("ro")) {
        if !o.is_empty() && !opts.iter().any(|x| x == o) {
            opts.push(o.to_string());
        }
    }
    let mut args = vec!["-t".to_string(), "nfs".to_string()];
    if !opts.is_empty() {
        args.extend(["-o".to_string(), opts.join(",")]);
    }
    args.extend([source(server, path), dir.display().to_string()]);
    args
}

/// Mounts the export on `dir` (created if missing) unless something is mounted there already. The error
/// reads like Kubernetes' mounter's (`mount failed: exit status 32`, the command, its output).
pub async fn mount(
    server: &str,
    path: &str,
    dir: &Path,
    read_only: bool,
    options: &[String],
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if super::is_mountpoint(dir) {
        return Ok(());
    }
    let args = mount_args(server, path, dir, read_only, options);
    let failed = |status: String, output: String| {
        format!(
            "mount failed: {status}\nMounting command: mount\nMounting arguments: {}\nOutput: {output}",
            args.join(" ")
        )
    };
    let run = tokio::process::Command::new("mount").args(&args).kill_on_drop(true).output();
    let out = match tokio::time::timeout(MOUNT_TIMEOUT, run).await {
        Err(_) => return Err(failed("timed out".into(), String::new())),
        Ok(Err(e)) => return Err(failed(e.to_string(), String::new())),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(());
    }
    let status = match out.status.code() {
        Some(code) => format!("exit status {code}"),
        None => "signal".into(),
    };
    let mut output = String::from_utf8_lossy(&out.stdout).to_string();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Err(failed(status, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_command_line() {
        let dir = Path::new("/var/lib/navarch/kubelet/pods/u/volumes/data");
        assert_eq!(
            mount_args("10.0.0.5", "/exports/a", dir, false, &[]),
            ["-t", "nfs", "10.0.0.5:/exports/a", "/var/lib/navarch/kubelet/pods/u/volumes/data"]
        );
        assert_eq!(
            mount_args("nfs.example", "/e", dir, true, &["nfsvers=4.1".into(), "ro".into(), "hard".into()]),
            [
                "-t",
                "nfs",
                "-o",
                "nfsvers=4.1,ro,hard",
                "nfs.example:/e",
                "/var/lib/navarch/kubelet/pods/u/volumes/data"
            ]
        );
        assert_eq!(mount_args("fd00::5", "/e", dir, false, &[])[2], "[fd00::5]:/e");
    }
}
