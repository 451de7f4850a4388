//! The samples as Prometheus series, named, labelled and typed as Kubernetes serves them:
//! cAdvisor's (`/metrics/cadvisor`, also part of `/metrics`: `container_*` per container, per pod
//! cgroup (`container=""`), per pod network (`container="POD"`, as on a pod's sandbox) and for the
//! node's root cgroup `id="/"`, plus `machine_*`) and the kubelet's resource metrics
//! (`/metrics/resource`). Families are built from a [`Samples`] (pure, tested on hand-made samples)
//! and written by prometheus-client collectors that read the sampler's latest samples on each scrape.

use std::sync::Arc;
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::collector::{ContainerSample, MachineInfo, PodSample, Samples, StatsCollector};
use super::net::InterfaceStats;
use crate::cgroups::{Cgroups, Usage};

type Labels = Vec<(&'static str, String)>;

/// One metric family: its samples, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub rows: Vec<(Labels, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, counter: bool) -> Family {
        Family { name, help, counter, rows: Vec::new() }
    }
    fn push(&mut self, labels: Labels, value: f64) {
        self.rows.push((labels, value));
    }
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes `families` (counters' names get `_total` from the encoder).
pub fn encode(encoder: &mut DescriptorEncoder, families: &[Family]) -> std::fmt::Result {
    for f in families {
        let kind = if f.counter { MetricType::Counter } else { MetricType::Gauge };
        let mut metric = encoder.encode_descriptor(f.name, f.help, None, kind)?;
        for (labels, value) in &f.rows {
            // Without labels the sample is written bare (`scrape_error 0`), not with `{}`.
            if labels.is_empty() {
                write_value(&mut metric, f.counter, *value)?;
            } else {
                write_value(&mut metric.encode_family(labels)?, f.counter, *value)?;
            }
        }
    }
    Ok(())
}

fn write_value(sample: &mut MetricEncoder, counter: bool, value: f64) -> std::fmt::Result {
    if counter {
        sample.encode_counter::<NoLabelSet, f64, f64>(&value, None)
    } else {
        sample.encode_gauge(&value)
    }
}

/// cAdvisor's labels, in its (sorted) order; `extra` (cpu, device, interface) in between.
fn labels(
    container: &str,
    id: &str,
    image: &str,
    name: &str,
    ns: &str,
    pod: &str,
    extra: &[(&'static str, &str)],
) -> Labels {
    let mut l: Labels = vec![
        ("container", container.to_string()),
        ("id", id.to_string()),
        ("image", image.to_string()),
        ("name", name.to_string()),
        ("namespace", ns.to_string()),
        ("pod", pod.to_string()),
    ];
    l.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    l.sort_by(|a, b| a.0.cmp(b.0));
    l
}

fn cgroup_id(rel: &str) -> String {
    format!("/{rel}")
}

/// The families of `/metrics/cadvisor` (none of the container ones before the first samples).
pub fn cadvisor_families(samples: Option<&Samples>, machine: &MachineInfo) -> Vec<Family> {
    let mut cpu =
        Family::new("container_cpu_usage_seconds", "Cumulative cpu time consumed in seconds.", true);
    let mut mem_usage = Family::new(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        false,
    );
    let mut working_set =
        Family::new("container_memory_working_set_bytes", "Current working set in bytes.", false);
    let mut rss = Family::new("container_memory_rss", "Size of RSS in bytes.", false);
    let mut fs_limit = Family::new(
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
        false,
    );
    let mut fs_usage = Family::new(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
        false,
    );
    let mut last_seen =
        Family::new("container_last_seen", "Last time a container was seen by the exporter", false);
    let mut specs = SpecFamilies::new();
    let mut cache = Family::new("container_memory_cache", "Number of bytes of page cache memory.", false);
    let mut net = NetworkFamilies::new();
    let mut scrape_error = Family::new(
        "container_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        false,
    );
    scrape_error.push(vec![], if samples.is_some() { 0.0 } else { 1.0 });
    if let Some(s) = samples {
        let snap = &s.current;
        let seen = seconds(snap.time);
        let mut usage = |l: &Labels, u: &Usage| {
            let mut with_cpu = l.clone();
            with_cpu.push(("cpu", "total".into()));
            with_cpu.sort_by(|a, b| a.0.cmp(b.0));
            cpu.push(with_cpu, u.cpu_ns as f64 / 1e9);
            mem_usage.push(l.clone(), u.memory_usage as f64);
            working_set.push(l.clone(), u.memory_working_set as f64);
            rss.push(l.clone(), u.memory_rss as f64);
            cache.push(l.clone(), u.memory_cache as f64);
            last_seen.push(l.clone(), seen);
        };
        let root = labels("", "/", "", "", "", "", &[]);
        usage(&root, &snap.node.usage);
        for p in &snap.pods {
            let id = cgroup_id(&Cgroups::pod_relative(&p.uid));
            if let Some(u) = &p.usage {
                usage(&labels("", &id, "", "", &p.namespace, &p.name, &[]), u);
            }
        }
        for c in &snap.containers {
            let id = cgroup_id(&format!("{}/{}", Cgroups::pod_relative(&c.pod_uid), c.id));
            let l = labels(&c.name, &id, &c.image, &c.id, &c.namespace, &c.pod_name, &[]);
            usage(&l, &c.usage);
            specs.push(c, &l);
            if let Some(m) = &c.rootfs {
                let device = snap.node.image_fs_device.as_str();
                let fl =
                    labels(&c.name, &id, &c.image, &c.id, &c.namespace, &c.pod_name, &[("device", device)]);
                fs_usage.push(fl.clone(), m.usage.bytes as f64);
                fs_limit.push(fl, snap.node.image_fs.map(|f| f.capacity_bytes).unwrap_or(0) as f64);
            }
        }
        for i in &snap.node.interfaces {
            net.push(&root, i);
        }
        for p in &snap.pods {
            pod_network(p, &mut net);
        }
    }
    let mut out = vec![cpu, fs_limit, fs_usage, last_seen, cache, rss, mem_usage, working_set];
    out.extend(net.into_families());
    out.push(scrape_error);
    out.extend(specs.into_families());
    out.extend(machine_families(machine));
    out
}

/// A container's start time, its limits, and (with a CPU quota) its CFS throttling counters.
struct SpecFamilies {
    cfs_periods: Family,
    cfs_throttled_periods: Family,
    cfs_throttled_seconds: Family,
    start: Family,
    period: Family,
    quota: Family,
    memory_limit: Family,
}

impl SpecFamilies {
    fn new() -> SpecFamilies {
        SpecFamilies {
            cfs_periods: Family::new(
                "container_cpu_cfs_periods",
                "Number of elapsed enforcement period intervals.",
                true,
            ),
            cfs_throttled_periods: Family::new(
                "container_cpu_cfs_throttled_periods",
                "Number of throttled period intervals.",
                true,
            ),
            cfs_throttled_seconds: Family::new(
                "container_cpu_cfs_throttled_seconds",
                "Total time duration the container has been throttled.",
                true,
            ),
            start: Family::new(
                "container_start_time_seconds",
                "Start time of the container since unix epoch in seconds.",
                false,
            ),
            period: Family::new("container_spec_cpu_period", "CPU period of the container.", false),
            quota: Family::new("container_spec_cpu_quota", "CPU quota of the container.", false),
            memory_limit: Family::new(
                "container_spec_memory_limit_bytes",
                "Memory limit for the container.",
                false,
            ),
        }
    }

    fn push(&mut self, c: &ContainerSample, l: &Labels) {
        if let Some(t) = c.started {
            self.start.push(l.clone(), seconds(t));
        }
        let Some(lim) = &c.limits else { return };
        self.period.push(l.clone(), lim.cpu_period_us as f64);
        if let Some(q) = lim.cpu_quota_us {
            self.quota.push(l.clone(), q as f64);
            self.cfs_periods.push(l.clone(), c.usage.cfs_periods as f64);
            self.cfs_throttled_periods.push(l.clone(), c.usage.cfs_throttled_periods as f64);
            self.cfs_throttled_seconds.push(l.clone(), c.usage.cfs_throttled_ns as f64 / 1e9);
        }
        self.memory_limit.push(l.clone(), lim.memory_limit.unwrap_or(0) as f64);
    }

    fn into_families(self) -> [Family; 7] {
        [
            self.cfs_periods,
            self.cfs_throttled_periods,
            self.cfs_throttled_seconds,
            self.start,
            self.period,
            self.quota,
            self.memory_limit,
        ]
    }
}

/// A pod's interfaces, as cAdvisor reports them on the pod's sandbox (`container="POD"`).
fn pod_network(p: &PodSample, net: &mut NetworkFamilies) {
    let Some(ifs) = &p.network else { return };
    let id = cgroup_id(&Cgroups::pod_relative(&p.uid));
    let l = labels("POD", &id, "", "", &p.namespace, &p.name, &[]);
    for i in ifs {
        net.push(&l, i);
    }
}

/// Which counter of an interface a family reports.
type Counter = fn(&InterfaceStats) -> u64;

struct NetworkFamilies(Vec<(Family, Counter)>);

impl NetworkFamilies {
    fn new() -> NetworkFamilies {
        let f = |name, help| Family::new(name, help, true);
        NetworkFamilies(vec![
            (f("container_network_receive_bytes", "Cumulative count of bytes received"), |i| i.rx_bytes),
            (
                f(
                    "container_network_receive_errors",
                    "Cumulative count of errors encountered while receiving",
                ),
                |i| i.rx_errors,
            ),
            (
                f(
                    "container_network_receive_packets_dropped",
                    "Cumulative count of packets dropped while receiving",
                ),
                |i| i.rx_dropped,
            ),
            (f("container_network_receive_packets", "Cumulative count of packets received"), |i| {
                i.rx_packets
            }),
            (f("container_network_transmit_bytes", "Cumulative count of bytes transmitted"), |i| i.tx_bytes),
            (
                f(
                    "container_network_transmit_errors",
                    "Cumulative count of errors encountered while transmitting",
                ),
                |i| i.tx_errors,
            ),
            (
                f(
                    "container_network_transmit_packets_dropped",
                    "Cumulative count of packets dropped while transmitting",
                ),
                |i| i.tx_dropped,
            ),
            (f("container_network_transmit_packets", "Cumulative count of packets transmitted"), |i| {
                i.tx_packets
            }),
        ])
    }

    fn push(&mut self, base: &Labels, i: &InterfaceStats) {
        let mut l = base.clone();
        l.push(("interface", i.name.clone()));
        l.sort_by(|a, b| a.0.cmp(b.0));
        for (f, value) in &mut self.0 {
            f.push(l.clone(), value(i) as f64);
        }
    }

    fn into_families(self) -> impl Iterator<Item = Family> {
        self.0.into_iter().map(|(f, _)| f)
    }
}

fn machine_families(m: &MachineInfo) -> Vec<Family> {
    let l: Labels = vec![
        ("boot_id", m.boot_id.clone()),
        ("machine_id", m.machine_id.clone()),
        ("system_uuid", m.system_uuid.clone()),
    ];
    let mut cores = Family::new("machine_cpu_cores", "Number of logical CPU cores.", false);
    cores.push(l.clone(), m.cores as f64);
    let mut memory = Family::new("machine_memory_bytes", "Amount of memory installed on the machine.", false);
    memory.push(l, m.memory_bytes as f64);
    vec![cores, memory]
}

/// The families of `/metrics/resource` (the kubelet's resource metrics collector).
pub fn resource_families(samples: Option<&Samples>) -> Vec<Family> {
    let mut node_cpu = Family::new(
        "node_cpu_usage_seconds",
        "Cumulative cpu time consumed by the node in core-seconds",
        true,
    );
    let mut node_mem =
        Family::new("node_memory_working_set_bytes", "Current working set of the node in bytes", false);
    let mut start = Family::new(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        false,
    );
    let mut c_cpu = Family::new(
        "container_cpu_usage_seconds",
        "Cumulative cpu time consumed by the container in core-seconds",
        true,
    );
    let mut c_mem = Family::new(
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
        false,
    );
    let mut p_cpu =
        Family::new("pod_cpu_usage_seconds", "Cumulative cpu time consumed by the pod in core-seconds", true);
    let mut p_mem =
        Family::new("pod_memory_working_set_bytes", "Current working set of the pod in bytes", false);
    let error = if samples.is_some() { 0.0 } else { 1.0 };
    let help = "1 if there was an error while getting container metrics, 0 otherwise";
    let mut scrape_error = Family::new("scrape_error", help, false);
    scrape_error.push(vec![], error);
    let mut resource_scrape_error = Family::new("resource_scrape_error", help, false);
    resource_scrape_error.push(vec![], error);
    if let Some(s) = samples {
        let snap = &s.current;
        node_cpu.push(vec![], snap.node.usage.cpu_ns as f64 / 1e9);
        node_mem.push(vec![], snap.node.usage.memory_working_set as f64);
        for c in &snap.containers {
            let l: Labels = vec![
                ("container", c.name.clone()),
                ("namespace", c.namespace.clone()),
                ("pod", c.pod_name.clone()),
            ];
            if let Some(t) = c.started {
                start.push(l.clone(), seconds(t));
            }
            c_cpu.push(l.clone(), c.usage.cpu_ns as f64 / 1e9);
            c_mem.push(l, c.usage.memory_working_set as f64);
        }
        for p in &snap.pods {
            let Some(u) = &p.usage else { continue };
            let l: Labels = vec![("namespace", p.namespace.clone()), ("pod", p.name.clone())];
            p_cpu.push(l.clone(), u.cpu_ns as f64 / 1e9);
            p_mem.push(l, u.memory_working_set as f64);
        }
    }
    vec![node_cpu, node_mem, start, c_cpu, c_mem, p_cpu, p_mem, scrape_error, resource_scrape_error]
}

/// Which series a collector writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Cadvisor,
    Resource,
}

impl Series {
    /// Where Kubernetes' kubelet serves them.
    pub const ALL: [(&'static str, Series); 2] =
        [("/metrics/cadvisor", Series::Cadvisor), ("/metrics/resource", Series::Resource)];

    pub fn at(path: &str) -> Option<Series> {
        Series::ALL.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
    }
}

/// The format of [`text`] (that of the admin server's metrics paths).
pub use navarch_daemon::admin::OPENMETRICS_CONTENT_TYPE as CONTENT_TYPE;

/// The series of `series` from the sampler's latest samples, as text.
pub fn text(stats: &Arc<StatsCollector>, series: Series) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(SamplesCollector { stats: stats.clone(), series }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
    out
}

/// A prometheus-client collector over the sampler's latest samples.
pub struct SamplesCollector {
    pub stats: Arc<StatsCollector>,
    pub series: Series,
}

impl std::fmt::Debug for SamplesCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplesCollector").field("series", &self.series).finish()
    }
}

impl Collector for SamplesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let samples = self.stats.latest();
        let families = match self.series {
            Series::Cadvisor => cadvisor_families(samples.as_ref(), &self.stats.machine),
            Series::Resource => resource_families(samples.as_ref()),
        };
        encode(&mut encoder, &families)
    }
}

#[cfg(test)]
mod tests;
