//! The navarch scheduler: binds pending pods to the best node that fits.
//!
//! This crate owns the scheduling decision, kept free of I/O so it is unit-tested directly:
//! [`resources`] (a pod's effective request, a node's allocatable), [`node_info`] (a node and the pods
//! counted against it), [`filters`] (can this pod run there, and if not, Kubernetes' reason),
//! [`interpod`] (inter-pod affinity and anti-affinity: filter and score), [`spread`] (topology spread
//! constraints) and [`scores`] (which fitting node is best), [`volumes`] (the pod's
//! PersistentVolumeClaims: Kubernetes' volume binding), [`preemption`] (which lower-priority pods to
//! preempt for a pod that fits nowhere); and the loop that uses them ([`scheduler`]): nodes and pods
//! cached from watches, a queue ordered by priority ([`queue`]), assume-then-bind, Unschedulable
//! conditions and events, retries.

#![forbid(unsafe_code)]

pub mod binder;
pub mod cache;
pub mod config;
pub mod cycle;
pub mod filters;
pub mod interpod;
pub mod metrics;
pub mod node_info;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod run;
pub mod scheduler;
pub mod scores;
pub mod spread;
pub mod volumes;

#[cfg(test)]
mod tests;
