//! The navarch scheduler: binds pending pods to the best node that fits.
//!
//! This crate owns the scheduling decision, kept free of I/O so it is unit-tested directly:
//! [`resources`] (a pod's effective request, a node's allocatable), [`node_info`] (a node and the pods
//! counted against it), [`filters`] (can this pod run there, and if not, Kubernetes' reason) and
//! [`scores`] (which fitting node is best). The daemon that watches pods and nodes through the client
//! runtime and binds through the api-server is issue 3's remaining work.

pub mod filters;
pub mod node_info;
pub mod resources;
pub mod scores;

#[cfg(test)]
mod tests;
