//! cluster-dns's Prometheus metrics and store health (served by the daemon shell's admin server): requests by transport and by who answered (the cluster
//! records or the upstreams), responses by rcode, request latency, upstream failures, and the objects
//! in the stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

use navarch_daemon::registered;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// udp, tcp
    pub proto: &'static str,
    /// cluster (answered from the stores), forward (by the upstreams)
    pub zone: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RcodeLabel {
    /// NOERROR, NXDOMAIN, SERVFAIL, ...
    pub rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabel {
    pub zone: &'static str,
}

/// The mnemonic of a response code, as dig prints it (`NOERROR`, `NXDOMAIN`, ...).
pub fn rcode_name(rcode: hickory_server::proto::op::ResponseCode) -> String {
    use hickory_server::proto::op::ResponseCode as R;
    match rcode {
        R::NoError => "NOERROR".into(),
        R::FormErr => "FORMERR".into(),
        R::ServFail => "SERVFAIL".into(),
        R::NXDomain => "NXDOMAIN".into(),
        R::NotImp => "NOTIMP".into(),
        R::Refused => "REFUSED".into(),
        R::BADVERS => "BADVERS".into(),
        other => u16::from(other).to_string(),
    }
}

type Histograms = Family<ZoneLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 25 µs .. ~6.5 s
    Histogram::new(exponential_buckets(0.000025, 2.0, 19))
}

pub struct DnsMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub responses: Family<RcodeLabel, Counter>,
    pub duration: Histograms,
    pub forward_failures: Counter,
    pub services: Gauge<i64, AtomicI64>,
    pub endpoints: Gauge<i64, AtomicI64>,
    /// True once the Service and Endpoints stores have their first list (`/healthz`).
    pub ready: Arc<AtomicBool>,
}

impl DnsMetrics {
    /// Registers cluster-dns's metrics (named `dns_*`) in `registry`.
    pub fn register(registry: &mut Registry) -> DnsMetrics {
        let r = registry.sub_registry_with_prefix("dns");
        let duration: Histograms = Family::new_with_constructor(latency_histogram);
        DnsMetrics {
            requests: registered(
                r,
                "requests",
                "DNS requests by transport and by who answered",
                Family::default(),
            ),
            responses: registered(r, "responses", "DNS responses by response code", Family::default()),
            duration: registered(
                r,
                "request_duration_seconds",
                "From a request's arrival to its response being sent",
                duration,
            ),
            forward_failures: registered(
                r,
                "forward_failures",
                "Forwarded requests no upstream answered (sent SERVFAIL)",
                Counter::default(),
            ),
            services: registered(r, "services", "Services in the store", Gauge::default()),
            endpoints: registered(r, "endpoints", "Endpoints objects in the store", Gauge::default()),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Default for DnsMetrics {
    /// Metrics registered nowhere (tests).
    fn default() -> Self {
        DnsMetrics::register(&mut Registry::default())
    }
}
