//! navarch cluster DNS: the `cluster-dns` daemon, the cluster's name service (Kubernetes' kube-dns /
//! CoreDNS role).
//!
//! Owns the DNS answers for the cluster domain (`cluster.local` by default), computed from Services and
//! Endpoints of every namespace kept in memory by the client runtime (watcher → reflector → store; never
//! an api call per query), following Kubernetes' DNS specification ([`records`], [`names`]); the
//! forwarding of every other name to upstream resolvers ([`forward`]); and, with
//! `--advertise-address`, this instance's entry in the Endpoints of the Service `kube-system/kube-dns`,
//! which it creates if missing ([`register`]). Served over UDP and TCP by hickory-server ([`server`]).
//!
//! * [`config`]: the daemon's settings (resolved by the daemon shell); [`metrics`]: its Prometheus
//!   metrics and health flag (served by the shell's admin server); [`run`]: wiring.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

pub mod config;
pub mod forward;
pub mod metrics;
pub mod names;
pub mod records;
pub mod register;
pub mod run;
pub mod server;

/// What can go wrong in the daemon.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listening on {addr} ({what}): {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("api-server: {0}")]
    Api(#[from] navarch_client::Error),
    #[error(transparent)]
    Lifecycle(#[from] navarch_daemon::LifecycleError),
    #[error("upstream {upstream}: {source}")]
    Upstream {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no upstream resolver is configured")]
    NoUpstream,
    #[error("encoding a DNS message: {0}")]
    Proto(#[from] hickory_server::proto::ProtoError),
    #[error("DNS server: {0}")]
    Server(#[from] hickory_server::net::NetError),
    #[error("the DNS server stopped by itself")]
    Stopped,
    #[error("registering as kube-dns: {0}")]
    Registration(String),
}
