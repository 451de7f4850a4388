//! The host side of pod networking, set once at start: `unreachable` routes over the whole pod and
//! Service ranges (the bridge's own, more specific route overrides them, so a packet for a missing
//! pod or an unprogrammed Service IP is refused instead of going to the default gateway), and an
//! nftables guard that rejects pod traffic leaving the cluster's ranges unless egress is allowed.

#[derive(Debug, thiserror::Error)]
pub enum HostNetError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
}

/// The nftables ruleset of the egress guard.
pub fn egress_guard(bridge: &str, ranges: &[&str]) -> String {
    format!(
        "table inet navarch-kubelet {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
         iifname \"{bridge}\" ip daddr != {{ {} }} reject with icmp type admin-prohibited\n  }}\n}}\n",
        ranges.join(", ")
    )
}

async fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<(), HostNetError> {
    use tokio::io::AsyncWriteExt;
    let full = format!("{cmd} {}", args.join(" "));
    let mut child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| HostNetError::Command { cmd: full.clone(), message: e.to_string() })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| HostNetError::Command { cmd: full.clone(), message: e.to_string() })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| HostNetError::Command { cmd: full.clone(), message: e.to_string() })?;
    if !out.status.success() {
        return Err(HostNetError::Command {
            cmd: full,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Installs the unreachable routes and (unless egress is allowed) the egress guard. Idempotent.
pub async fn setup_host(
    bridge: &str,
    cluster_cidr: &str,
    service_cidr: &str,
    allow_egress: bool,
    also_allowed: &[String],
) -> Result<(), HostNetError> {
    for cidr in [cluster_cidr, service_cidr] {
        run("ip", &["route", "replace", "unreachable", cidr], None).await?;
    }
    // Replace the table wholesale: delete (if present) and add in one transaction.
    let mut rules = String::from("table inet navarch-kubelet {}\ndelete table inet navarch-kubelet\n");
    if !allow_egress {
        let ranges: Vec<&str> =
            [cluster_cidr, service_cidr].into_iter().chain(also_allowed.iter().map(String::as_str)).collect();
        rules.push_str(&egress_guard(bridge, &ranges));
    }
    run("nft", &["-f", "-"], Some(&rules)).await?;
    Ok(())
}

/// Removes what [`setup_host`] installed (for `make down` and tests).
pub async fn teardown_host(cluster_cidr: &str, service_cidr: &str) -> Result<(), HostNetError> {
    for cidr in [cluster_cidr, service_cidr] {
        let _ = run("ip", &["route", "del", "unreachable", cidr], None).await;
    }
    run("nft", &["-f", "-"], Some("table inet navarch-kubelet {}\ndelete table inet navarch-kubelet\n")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_rejects_outside_ranges() {
        let r = egress_guard("nv0", &["10.244.0.0/16", "10.96.0.0/12"]);
        assert!(r.contains("iifname \"nv0\" ip daddr != { 10.244.0.0/16, 10.96.0.0/12 } reject"));
    }
}
