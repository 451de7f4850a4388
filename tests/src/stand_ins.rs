//! Stand-ins for the node side in tests that run controllers without kubelets: [`registered_node`] is a
//! Node as a kubelet registers it, [`play_kubelet`] marks pods Running and Ready as a kubelet would.

use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{Node, Pod, PodCondition};
use navarch_client::Api;

/// A Node as a kubelet registers it: Ready, room for pods (not waited for: it is written as such).
pub fn registered_node(name: &str) -> Node {
    let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
    serde_yaml::from_str(&format!(
        "{{metadata: {{name: {name}}}, status: {{allocatable: {{cpu: '4', memory: 8Gi, pods: '110'}}, capacity: {{cpu: '4', memory: 8Gi, pods: '110'}}, conditions: [{{type: Ready, status: 'True', reason: KubeletReady, lastHeartbeatTime: '{now}'}}]}}}}"
    ))
    .expect("a Node")
}

/// Plays the kubelet of every pod of `pods`' namespace, every 300 ms until aborted: a pod without a
/// Ready condition (and not being deleted) turns Running with an IP and Ready (not Ready when its first
/// image's name contains `broken`).
pub fn play_kubelet(pods: Api<Pod>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            for p in pods.list(&Default::default()).await.map(|l| l.items).unwrap_or_default() {
                let ready =
                    p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready"));
                if !ready && p.meta().deletion_timestamp.is_empty() {
                    n += 1;
                    let mut p = p.clone();
                    let broken = p.spec.as_ref().is_some_and(|s| s.containers[0].image.contains("broken"));
                    let st = p.status.get_or_insert_with(Default::default);
                    st.phase = "Running".into();
                    st.pod_ip = format!("10.244.9.{}", n % 250 + 1);
                    st.conditions = vec![PodCondition {
                        r#type: "Ready".into(),
                        status: if broken { "False" } else { "True" }.into(),
                        ..Default::default()
                    }];
                    let _ = pods.update_status(&p).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}
