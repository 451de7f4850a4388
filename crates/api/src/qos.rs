//! A pod's quality-of-service class (`status.qosClass`), set by the api-server on create and kept by
//! the kubelet: Guaranteed, Burstable or BestEffort, from its containers' requests and limits.

use crate::v1::Container;

/// Guaranteed (every container has equal cpu and memory requests and limits), BestEffort (none
/// set), else Burstable.
pub fn qos_class(containers: &[Container]) -> String {
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let r = c.resources.clone().unwrap_or_default();
        if !r.requests.is_empty() || !r.limits.is_empty() {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = r.limits.get(res).and_then(|q| q.amount().ok()).map(|a| a.milli_value());
            let request =
                r.requests.get(res).and_then(|q| q.amount().ok()).map(|a| a.milli_value()).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos() {
        let c = |y: &str| -> Container { serde_yaml::from_str(y).unwrap() };
        assert_eq!(qos_class(&[c("name: a")]), "BestEffort");
        assert_eq!(qos_class(&[c("{name: a, resources: {limits: {cpu: 1, memory: 1Gi}}}")]), "Guaranteed");
        assert_eq!(qos_class(&[c("{name: a, resources: {requests: {cpu: 1}}}")]), "Burstable");
    }
}
