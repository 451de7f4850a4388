//! The kernel behind a small trait: nftables transactions (`nft -f -`) and the routes that let
//! processes on the node reach ClusterIPs. The syncer's logic is tested with a recording fake.
//!
//! Why routes: the node keeps an `unreachable` route over the whole Service range, so a packet for
//! an unprogrammed Service IP is refused instead of going to the default gateway. A process on the
//! node looks up its route before the NAT output hook runs, so each programmed ClusterIP gets a
//! more specific `/32` route through the link `navarch-svc`; the DNAT in nat-output then re-routes
//! it to the endpoint. (Pods need nothing: prerouting DNAT comes before their routing.) The link is
//! an empty bridge: it carries no traffic (a packet not DNATed is rejected by the filter chains,
//! and the bridge has no ports), and unlike a `dummy` link it needs no extra kernel module.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::Ipv4Addr;

/// The (empty bridge) link carrying the ClusterIP routes.
pub const SERVICE_LINK: &str = "navarch-svc";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
}

pub trait Kernel: Send + Sync + 'static {
    /// Applies an nftables script as one transaction.
    fn nft(&self, script: &str) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// Runs `ip -batch -` with these commands.
    fn ip_batch(&self, commands: &str) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// The /32 routes on [`SERVICE_LINK`] now.
    fn service_routes(&self) -> impl Future<Output = Result<BTreeSet<Ipv4Addr>, KernelError>> + Send;
}

/// The real kernel, through the `nft` and `ip` tools.
pub struct Tools;

async fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<String, KernelError> {
    use tokio::io::AsyncWriteExt;
    let full = format!("{cmd} {}", args.join(" "));
    let err = |message: String| KernelError::Command { cmd: full.clone(), message };
    let mut child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().await.map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Kernel for Tools {
    async fn nft(&self, script: &str) -> Result<(), KernelError> {
        run("nft", &["-f", "-"], Some(script)).await.map(|_| ())
    }

    async fn ip_batch(&self, commands: &str) -> Result<(), KernelError> {
        run("ip", &["-force", "-batch", "-"], Some(commands)).await.map(|_| ())
    }

    async fn service_routes(&self) -> Result<BTreeSet<Ipv4Addr>, KernelError> {
        let out = match run("ip", &["-4", "route", "show", "dev", SERVICE_LINK], None).await {
            Ok(out) => out,
            // No link yet: no routes.
            Err(KernelError::Command { message, .. }) if message.contains("does not exist") => String::new(),
            Err(e) => return Err(e),
        };
        Ok(out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|dst| dst.trim_end_matches("/32").parse().ok())
            .collect())
    }
}

/// `ip -batch` commands that move the /32 routes from
/// `current` to `wanted`; also (re)installs the `unreachable` route over `service_cidr`.
pub fn route_commands(
    current: &BTreeSet<Ipv4Addr>,
    wanted: &BTreeSet<Ipv4Addr>,
    service_cidr: &str,
    first: bool,
) -> String {
    let mut out = String::new();
    if first {
        out.push_str(&format!("route replace unreachable {service_cidr}\n"));
    }
    for ip in wanted.difference(current) {
        out.push_str(&format!("route replace {ip}/32 dev {SERVICE_LINK}\n"));
    }
    for ip in current.difference(wanted) {
        out.push_str(&format!("route del {ip}/32 dev {SERVICE_LINK}\n"));
    }
    out
}

/// Creates the route link (idempotent).
pub async fn ensure_service_link<K: Kernel>(k: &K) -> Result<(), KernelError> {
    // `link add` fails when it exists.
    let _ = k.ip_batch(&format!("link add {SERVICE_LINK} type bridge\n")).await;
    k.ip_batch(&format!("link set {SERVICE_LINK} up\n")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_move_by_difference() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let cur: BTreeSet<_> = [ip("10.96.0.1"), ip("10.96.0.2")].into();
        let want: BTreeSet<_> = [ip("10.96.0.2"), ip("10.96.0.3")].into();
        assert_eq!(
            route_commands(&cur, &want, "10.96.0.0/12", false),
            "route replace 10.96.0.3/32 dev navarch-svc\nroute del 10.96.0.1/32 dev navarch-svc\n"
        );
        assert!(
            route_commands(&want, &want, "10.96.0.0/12", true)
                .starts_with("route replace unreachable 10.96.0.0/12\n")
        );
    }
}
