//! `navarch-pki`: creates and renews a cluster's certificates and keys (see `navarch_pki::cluster`).
//!
//! ```text
//! navarch-pki init --dir PKI --api-server-ip 10.250.0.1 [--api-server-name master] [--etcd-ip ...]
//! navarch-pki node --dir PKI --name node-1 --ip 10.250.0.11
//! navarch-pki user --dir PKI --name alice --group devs --out alice
//! navarch-pki kubeconfig --dir PKI --cert admin --server https://10.250.0.1:6443 --out admin.kubeconfig
//! navarch-pki bootstrap-kubeconfig --dir PKI --token abcdef.0123456789abcdef --server https://... --out F
//! ```

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use navarch_pki::{ClusterPki, InitOptions, cluster, files};

#[derive(Parser)]
#[command(name = "navarch-pki", version, about = "navarch's certificates and keys: create, renew, issue")]
struct Cli {
    /// The PKI directory.
    #[arg(long, global = true, default_value = "/etc/navarch/pki")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The CAs, the control plane's certificates, the service-account key and the encryption key.
    Init {
        /// An address clients reach the api-server at (repeatable).
        #[arg(long = "api-server-ip")]
        api_server_ips: Vec<IpAddr>,
        /// A DNS name clients reach the api-server at (repeatable).
        #[arg(long = "api-server-name")]
        api_server_names: Vec<String>,
        #[arg(long = "etcd-ip")]
        etcd_ips: Vec<IpAddr>,
        #[arg(long = "etcd-name")]
        etcd_names: Vec<String>,
        /// The `kubernetes` Service's ClusterIP (the first address of the Service range).
        #[arg(long, default_value = "10.96.0.1")]
        kubernetes_service_ip: IpAddr,
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
    },
    /// A node's kubelet certificates (client and serving), in nodes/<name>/.
    Node {
        #[arg(long)]
        name: String,
        /// The node's InternalIP (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
    },
    /// A user's client certificate (CN = name, O = groups) at <out>.crt / <out>.key in the directory.
    User {
        #[arg(long)]
        name: String,
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long)]
        out: String,
    },
    /// A kubeconfig with the CA and a client certificate of the directory inlined.
    Kubeconfig {
        /// The certificate's stem in the directory: admin, scheduler, nodes/node-1/kubelet-client, ...
        #[arg(long)]
        cert: String,
        #[arg(long)]
        server: String,
        /// Name of the cluster, user and context.
        #[arg(long, default_value = "navarch")]
        name: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// A joining node's bootstrap kubeconfig: the api-server's address, the cluster CA of the
    /// directory, and a join (bootstrap) token — no key of the cluster's.
    BootstrapKubeconfig {
        /// `<id>.<secret>`, backed by the Secret `kube-system/bootstrap-token-<id>`.
        #[arg(long)]
        token: String,
        #[arg(long)]
        server: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let pki = ClusterPki::new(&cli.dir);
    let created = match cli.command {
        Command::Init {
            api_server_ips,
            api_server_names,
            etcd_ips,
            etcd_names,
            kubernetes_service_ip,
            cluster_domain,
        } => {
            let opts = InitOptions {
                api_server_names,
                api_server_ips,
                etcd_names,
                etcd_ips,
                kubernetes_service_ip,
                cluster_domain,
            };
            pki.init(&opts)?
        }
        Command::Node { name, ips } => pki.node(&name, &ips)?.1,
        Command::User { name, groups, out } => {
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            if pki.user(&out, &name, &groups)? { vec![format!("{out}.crt")] } else { Vec::new() }
        }
        Command::Kubeconfig { cert, server, name, namespace, out } => {
            let (crt, key) = pki.pair(&cert);
            let config = cluster::kubeconfig(
                &name,
                &server,
                &files::read(&pki.ca_cert())?,
                &files::read(&crt)?,
                &files::read(&key)?,
                &namespace,
            );
            files::write(&out, config.as_bytes(), true)
                .with_context(|| format!("writing {}", out.display()))?;
            vec![out.display().to_string()]
        }
        Command::BootstrapKubeconfig { token, server, out } => {
            let valid = token.split_once('.').is_some_and(|(id, secret)| {
                let ok = |s: &str, n| {
                    s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                };
                ok(id, 6) && ok(secret, 16)
            });
            anyhow::ensure!(valid, "--token: a bootstrap token is [a-z0-9]{{6}}.[a-z0-9]{{16}}");
            let config = cluster::token_kubeconfig("navarch", &server, &files::read(&pki.ca_cert())?, &token);
            files::write(&out, config.as_bytes(), true)
                .with_context(|| format!("writing {}", out.display()))?;
            vec![out.display().to_string()]
        }
    };
    for f in &created {
        println!("wrote {f}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("navarch-pki: {e:#}");
            ExitCode::FAILURE
        }
    }
}
