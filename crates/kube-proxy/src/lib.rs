//! navarch kube-proxy: makes Services work on a node by programming the kernel with nftables.
//!
//! Owns one nftables table (`ip navarch-proxy`, see [`nft`]) and the `/32` ClusterIP routes on the
//! link `navarch-svc` (see [`kernel`]). It watches Services and Endpoints through the client
//! runtime, turns them into service ports ([`model`]), and the [`proxier`] applies them: a full,
//! atomic sync first, then only differences. No userspace proxying: packets are DNATed by the kernel.
//!
//! * [`config`]: the daemon's settings (resolved by the daemon shell); [`metrics`]: its Prometheus
//!   metrics and health flag (served by the shell's admin server); [`run`]: wiring.

#![forbid(unsafe_code)]

pub mod config;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod nft;
pub mod proxier;
pub mod run;
