//! Resource usage on this node, for the kubelet's `Stats` API and its Prometheus endpoints:
//!
//! * [`collector`]: the periodic sampler (containers, pods, node) and its latest samples;
//! * [`response`]: a `StatsResponse` from two samples (CPU rates over the window between them);
//! * [`prometheus`]: cAdvisor's series and the kubelet's resource metrics;
//! * [`net`]: `/proc/net/dev` and `/proc/net/route` parsing; [`fs`]: statvfs figures and mount
//!   sources; [`du`]: cached directory sizes (writable layers, volumes);
//! * [`host`]: the system calls (statvfs, entering a pod's network namespace).

pub mod collector;
pub mod du;
pub mod fs;
pub mod host;
pub mod net;
pub mod prometheus;
pub mod response;

pub use collector::{HostPaths, Samples, StatsCollector};
