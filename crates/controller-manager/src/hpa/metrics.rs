//! Where the HPA controller reads pod metrics: the [`MetricsSource`] trait (so the algorithm is tested on
//! hand-made samples) and its real implementation, which lists `PodMetrics` of the resource metrics API
//! (`metrics.k8s.io/v1beta1`) through the generic client, as Kubernetes' resource metrics client does.

use std::time::{Duration, SystemTime};

use navarch_api::Object;
use navarch_client::{Client, ListParams};

use super::replicas::{PodMetric, PodMetrics};

/// A source of per-pod resource usage.
pub trait MetricsSource: Send + Sync + 'static {
    /// The usage of `resource` (of `container` only, when named) of the pods `selector` picks in
    /// `namespace`, by pod; an error in Kubernetes' words.
    fn pod_metrics(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: &str,
    ) -> impl Future<Output = Result<PodMetrics, String>> + Send;
}

/// Lists `PodMetrics` through the api-server.
pub struct ResourceMetricsClient(pub Client);

impl MetricsSource for ResourceMetricsClient {
    async fn pod_metrics(
        &self,
        namespace: &str,
        selector: &str,
        resource: &str,
        container: &str,
    ) -> Result<PodMetrics, String> {
        let params =
            ListParams { namespace: namespace.into(), label_selector: selector.into(), ..Default::default() };
        let list = self
            .0
            .list("PodMetrics", &params)
            .await
            .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
        let items: Vec<_> = list
            .items
            .into_iter()
            .filter_map(|o| match o {
                Object::PodMetrics(m) => Some(m),
                _ => None,
            })
            .collect();
        if items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        let mut out = PodMetrics::new();
        for m in items {
            let timestamp = navarch_api::rfc3339::parse(&m.timestamp).unwrap_or_else(|_| SystemTime::now());
            let window = go_duration(&m.window).unwrap_or(Duration::from_secs(15));
            let mut sum = 0i64;
            let mut complete = true;
            let mut found = container.is_empty();
            for c in &m.containers {
                if !container.is_empty() && c.name != container {
                    continue;
                }
                found = true;
                match c.usage.get(resource).and_then(|q| q.amount().ok()) {
                    Some(a) => sum += a.milli_value(),
                    None => complete = false,
                }
            }
            if complete && found {
                let name = m.metadata.map(|md| md.name).unwrap_or_default();
                out.insert(name, PodMetric { value: sum, timestamp, window });
            }
        }
        Ok(out)
    }
}

/// A Go duration (`15s`, `14.998s`, `1m0s`, `500ms`).
pub fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("15s"), Some(Duration::from_secs(15)));
        assert_eq!(go_duration("1m0s"), Some(Duration::from_secs(60)));
        assert_eq!(go_duration("14.5s"), Some(Duration::from_millis(14_500)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("x"), None);
    }
}
