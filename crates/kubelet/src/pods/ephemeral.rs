//! Ephemeral containers (`kubectl debug`): the pod worker's part. Each ephemeral container of the pod's
//! spec is started once, as soon as it appears (in every sync, whatever the init and app containers'
//! next step is, as Kubernetes' kubelet does, so a pod stuck initializing can still be debugged), through
//! the same path as every container (image, environment, mounts, the pod's network namespace, stdio on
//! FIFOs the kubelet reads, so `kubectl attach` reaches it), labelled [`LABEL_EPHEMERAL`]. With
//! `targetContainerName` it joins the PID namespace of that container's running task
//! (`/proc/<pid>/ns/pid`, as containerd's CRI plugin does), so it sees the target's processes; a target
//! that is not running is Kubernetes' `CreateContainerConfigError` (`unable to find target container
//! <name>`), retried.
//!
//! Whether one ran is what containerd holds: its container is kept once it exited (its exit recorded in
//! its labels), so a restarted kubelet neither runs it again nor loses a running one (whose stdio
//! [`crate::container_io`] reopens). It is never restarted, counts neither in the phase nor in
//! readiness ([`pod_state`]), is stopped with the pod, and when the pod has finished (its app containers
//! will not run again) a still running one is stopped too (SIGTERM, SIGKILL after the pod's grace
//! period).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::v1::{Container, Pod};
use navarch_client::Action;

use super::{DEFAULT_GRACE, LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_POD_UID, PodWorker, SIGTERM, SyncError};
use crate::containerd::{RuntimeError, TaskState};
use crate::pod_state::{self, Attempt, AttemptState, Role};
use crate::spec;

/// Marks the containerd container of an ephemeral container (value `true`).
pub const LABEL_EPHEMERAL: &str = "io.navarch.container.ephemeral";

/// Why an ephemeral container cannot be created yet.
#[derive(Debug, thiserror::Error)]
pub enum EphemeralError {
    /// Kubernetes' wording: the target has no running task whose PID namespace could be joined.
    #[error("unable to find target container {target}")]
    TargetNotRunning { target: String },
    #[error("ephemeral container {container:?} of pod {pod}: {source}")]
    Runtime { pod: String, container: String, source: RuntimeError },
}

/// The sooner of two actions (`await_change` is the latest).
fn sooner(a: Action, b: Option<Action>) -> Action {
    match (a, b) {
        (Action::Requeue(x), Some(Action::Requeue(y))) => Action::Requeue(x.min(y)),
        (Action::AwaitChange, Some(b)) => b,
        (a, _) => a,
    }
}

impl PodWorker {
    /// Starts the pod's ephemeral containers that have not run yet, each in a span naming the pod and the
    /// container; `next` is what the sync does otherwise, returned sooner if one must be retried (its
    /// image or target not there yet).
    pub(super) async fn start_ephemeral(
        &self,
        pod: &Pod,
        attempts: &[Attempt],
        ip: &str,
        vols: &crate::volumes::HostVolumes,
        next: Action,
    ) -> Action {
        let m = pod.meta();
        let key = format!("{}/{}", m.namespace, m.name);
        let mut retry = None;
        for c in pod_state::pending_ephemeral(pod, attempts) {
            let span = tracing::info_span!("ephemeral", pod = %key, container = %c.name);
            let started = self.start(pod, c, Role::Ephemeral, 0, ip, vols);
            match tracing::Instrument::instrument(started, span.clone()).await {
                Ok(()) => {
                    tracing::info!(parent: &span, target = %c.target_container_name, "ephemeral container started")
                }
                Err(wait) => retry = Some(sooner(wait, retry)),
            }
        }
        sooner(next, retry)
    }

    /// The PID namespace an ephemeral container joins: its target's running task's (none without a
    /// target).
    pub(super) async fn target_pid_namespace(
        &self,
        pod: &Pod,
        c: &Container,
    ) -> Result<Option<String>, EphemeralError> {
        let target = &c.target_container_name;
        if target.is_empty() {
            return Ok(None);
        }
        let m = pod.meta();
        let (pod_key, container) = (format!("{}/{}", m.namespace, m.name), c.name.clone());
        let runtime =
            |source| EphemeralError::Runtime { pod: pod_key.clone(), container: container.clone(), source };
        let recs = self
            .ctd
            .list_containers(&[(LABEL_POD_UID, m.uid.as_str()), (LABEL_CONTAINER, target.as_str())])
            .await
            .map_err(runtime)?;
        let attempt = |labels: &HashMap<String, String>| {
            labels.get(LABEL_ATTEMPT).and_then(|a| a.parse::<u32>().ok()).unwrap_or(0)
        };
        if let Some(latest) = recs.iter().max_by_key(|r| attempt(&r.labels))
            && let TaskState::Running { pid } = self.ctd.task_state(&latest.id).await.map_err(runtime)?
        {
            return Ok(Some(spec::pid_namespace_of(pid)));
        }
        Err(EphemeralError::TargetNotRunning { target: target.clone() })
    }

    /// For a pod that has finished: stops its ephemeral containers still running (SIGTERM, then
    /// SIGKILL once the pod's grace period is over). How long until it should look again while one still
    /// runs.
    pub(super) async fn stop_ephemeral(
        &self,
        pod: &Pod,
        attempts: &[Attempt],
    ) -> Result<Option<Duration>, SyncError> {
        let names: Vec<&str> =
            pod.spec.iter().flat_map(|s| &s.ephemeral_containers).map(|c| c.name.as_str()).collect();
        let live: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| names.contains(&a.name.as_str()))
            .filter(|a| matches!(a.state, AttemptState::Running | AttemptState::Created))
            .collect();
        if live.is_empty() {
            return Ok(None);
        }
        let grace =
            pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(DEFAULT_GRACE);
        let grace = Duration::from_secs(grace.max(0) as u64);
        for a in live {
            let first = {
                let mut mem = self.memory.lock().expect("memory lock");
                let first = !mem.killing.contains_key(&a.id);
                if first {
                    mem.killing.insert(a.id.clone(), (Instant::now(), grace));
                }
                first
            };
            if first {
                let m = pod.meta();
                tracing::info!(pod = %format!("{}/{}", m.namespace, m.name), container = %a.name, "stopping an ephemeral container: the pod has finished");
                self.event(pod, "Normal", "Killing", format!("Stopping container {}", a.name));
                self.ctd.kill_task(&a.id, SIGTERM).await?;
            }
        }
        // The pending kills (SIGKILL once due) are the probes' path's.
        Ok(Some(self.kill_unhealthy(pod, attempts).await?.unwrap_or(Duration::from_secs(1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sooner_action_wins() {
        let s = |n| Action::requeue(Duration::from_secs(n));
        assert_eq!(sooner(s(5), Some(s(2))), s(2));
        assert_eq!(sooner(s(2), Some(s(5))), s(2));
        assert_eq!(sooner(Action::await_change(), Some(s(5))), s(5));
        assert_eq!(sooner(s(5), Some(Action::await_change())), s(5));
        assert_eq!(sooner(s(5), None), s(5));
    }

    #[test]
    fn target_errors_say_what_kubernetes_says() {
        let e = EphemeralError::TargetNotRunning { target: "web".into() };
        assert_eq!(e.to_string(), "unable to find target container web");
    }
}
