//! The pure half of a pod's sync: from the pod and what containerd holds for it (every attempt of
//! every container), decide the next step (start which container, or wait, and how long the crash
//! loop back-off still is) and compute the pod's status (phase, conditions, container statuses) as
//! Kubernetes does.
//!
//! Ephemeral containers (`kubectl debug`) run once each, beside this: [`pending_ephemeral`] names those
//! not started yet; they never restart, count neither in the phase nor in readiness, and have their
//! own statuses (`ephemeralContainerStatuses`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use navarch_api::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodIp, PodStatus,
};

/// Restart back-off: 10 s doubling to 5 minutes; reset after 10 minutes of running.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

/// How one attempt of a container is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptState {
    /// Created in containerd, task not (yet) running.
    Created,
    Running,
    Exited {
        code: i32,
        reason: String,
        finished_at: SystemTime,
    },
}

/// One attempt (one containerd container) of one container of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub name: String,
    pub init: bool,
    pub attempt: u32,
    pub image: String,
    pub image_id: String,
    pub started_at: Option<SystemTime>,
    pub state: AttemptState,
}

impl Attempt {
    pub fn exited(&self) -> Option<(i32, &str, SystemTime)> {
        match &self.state {
            AttemptState::Exited { code, reason, finished_at } => Some((*code, reason, *finished_at)),
            _ => None,
        }
    }
}

/// What the kubelet knows beyond containerd: why a container is waiting (image pull errors,
/// config errors) and probe results.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Container name → (reason, message) of a waiting container.
    pub waiting: HashMap<String, (String, String)>,
    /// Container name → readiness result (absent: no result yet, so ready only without a readiness
    /// probe).
    pub ready: HashMap<String, bool>,
    /// Container name → startup probe passed (absent: no result yet, so started only without a
    /// startup probe).
    pub started: HashMap<String, bool>,
}

/// What part a container plays in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Init,
    App,
    /// Added to the running pod (`kubectl debug`): run once, never restarted.
    Ephemeral,
}

impl Role {
    /// Init or app container, as an attempt's `init` flag says (ephemeral attempts are not init).
    pub fn of_init(init: bool) -> Role {
        if init { Role::Init } else { Role::App }
    }

    pub fn is_init(self) -> bool {
        self == Role::Init
    }
}

/// The next thing to do for a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create and start this container's next attempt.
    Start { name: String, init: bool, attempt: u32 },
    /// Nothing now; look again after this long (a back-off ending), or on the next event.
    Wait(Option<Duration>),
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec.as_ref().map(|s| s.restart_policy.as_str()).filter(|p| !p.is_empty()).unwrap_or("Always")
}

/// The latest attempt of a container, and the one before it.
pub fn latest<'a>(
    attempts: &'a [Attempt],
    name: &str,
    init: bool,
) -> (Option<&'a Attempt>, Option<&'a Attempt>) {
    let mut mine: Vec<&Attempt> = attempts.iter().filter(|a| a.name == name && a.init == init).collect();
    mine.sort_by_key(|a| a.attempt);
    let last = mine.pop();
    (last, mine.pop())
}

/// Back-off before restart number `restarts + 1`, given how the last attempt ran.
pub fn backoff(restarts: u32, last: &Attempt) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    if let (Some(start), Some((_, _, end))) = (last.started_at, last.exited())
        && end.duration_since(start).unwrap_or_default() >= BACKOFF_RESET_AFTER
    {
        return Duration::ZERO;
    }
    let shift = (restarts - 1).min(8);
    (BACKOFF_INITIAL * (1u32 << shift)).min(BACKOFF_MAX)
}

/// Whether an exited container should be started again under the pod's restart policy.
fn should_restart(policy: &str, code: i32, init: bool) -> bool {
    match policy {
        "Never" => false,
        // Init containers of an Always pod restart on failure only (a success is final).
        "Always" if init => code != 0,
        "Always" => true,
        _ => code != 0,
    }
}

/// When the next restart of an exited attempt is due (None: never).
pub fn restart_due(pod: &Pod, a: &Attempt) -> Option<SystemTime> {
    let (code, _, finished) = a.exited()?;
    if !should_restart(restart_policy(pod), code, a.init) {
        return None;
    }
    Some(finished + backoff(a.attempt, a))
}

/// Whether every init container has completed successfully.
pub fn initialized(pod: &Pod, attempts: &[Attempt]) -> bool {
    let spec = pod.spec.as_ref();
    spec.map(|s| s.init_containers.as_slice())
        .unwrap_or_default()
        .iter()
        .all(|c| matches!(latest(attempts, &c.name, true).0.and_then(|a| a.exited()), Some((0, _, _))))
}

/// The pod is done: nothing will run in it again.
pub fn terminal(pod: &Pod, attempts: &[Attempt]) -> bool {
    matches!(phase(pod, attempts).as_str(), "Succeeded" | "Failed")
}

/// The next step of a pod that is not being deleted.
pub fn next_step(pod: &Pod, attempts: &[Attempt], now: SystemTime) -> Step {
    let Some(spec) = pod.spec.as_ref() else { return Step::Wait(None) };
    if terminal(pod, attempts) {
        return Step::Wait(None);
    }
    // Init containers, in order: the first not yet successful one is the only one that may run.
    for c in &spec.init_containers {
        match latest(attempts, &c.name, true).0 {
            None => return Step::Start { name: c.name.clone(), init: true, attempt: 0 },
            Some(a) => match &a.state {
                AttemptState::Exited { code: 0, .. } => continue,
                AttemptState::Exited { .. } => {
                    return match restart_due(pod, a) {
                        None => Step::Wait(None),
                        Some(due) if due <= now => {
                            Step::Start { name: c.name.clone(), init: true, attempt: a.attempt + 1 }
                        }
                        Some(due) => Step::Wait(Some(due.duration_since(now).unwrap_or_default())),
                    };
                }
                _ => return Step::Wait(None),
            },
        }
    }
    let mut soonest: Option<Duration> = None;
    for c in &spec.containers {
        match latest(attempts, &c.name, false).0 {
            None => return Step::Start { name: c.name.clone(), init: false, attempt: 0 },
            Some(a) => {
                if let Some(due) = restart_due(pod, a) {
                    if due <= now {
                        return Step::Start { name: c.name.clone(), init: false, attempt: a.attempt + 1 };
                    }
                    let wait = due.duration_since(now).unwrap_or_default();
                    soonest = Some(soonest.map_or(wait, |s| s.min(wait)));
                }
            }
        }
    }
    Step::Wait(soonest)
}

/// The ephemeral containers to start: those without an attempt yet, in order. Each runs once: after
/// it has started (whatever became of it), it is never started again.
pub fn pending_ephemeral<'a>(pod: &'a Pod, attempts: &[Attempt]) -> Vec<&'a Container> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    if terminal(pod, attempts) {
        return Vec::new();
    }
    spec.ephemeral_containers.iter().filter(|c| latest(attempts, &c.name, false).0.is_none()).collect()
}

/// Kubernetes' pod phase from its containers.
pub fn phase(pod: &Pod, attempts: &[Attempt]) -> String {
    let Some(spec) = pod.spec.as_ref() else { return "Pending".into() };
    let policy = restart_policy(pod);
    // A failed init container that will not be restarted fails the pod.
    for c in &spec.init_containers {
        if let Some(a) = latest(attempts, &c.name, true).0
            && let Some((code, _, _)) = a.exited()
            && code != 0
            && !should_restart(policy, code, true)
        {
            return "Failed".into();
        }
    }
    if !initialized(pod, attempts) {
        return "Pending".into();
    }
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for c in &spec.containers {
        match latest(attempts, &c.name, false).0 {
            None => waiting += 1,
            Some(a) => match &a.state {
                AttemptState::Running => running += 1,
                AttemptState::Created => waiting += 1,
                AttemptState::Exited { code, .. } => {
                    if should_restart(policy, *code, false) {
                        // Restarting: still counts as running (CrashLoopBackOff keeps the pod Running).
                        running += 1;
                    } else if *code == 0 {
                        succeeded += 1;
                    } else {
                        failed += 1;
                    }
                }
            },
        }
    }
    if waiting > 0 {
        return "Pending".into();
    }
    if running > 0 {
        return "Running".into();
    }
    if failed > 0 {
        return "Failed".into();
    }
    if succeeded > 0 {
        return "Succeeded".into();
    }
    "Pending".into()
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn terminated_of(a: &Attempt) -> Option<ContainerStateTerminated> {
    let (code, reason, finished) = a.exited()?;
    let reason = if !reason.is_empty() {
        reason.to_string()
    } else if code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    Some(ContainerStateTerminated {
        exit_code: code,
        reason,
        started_at: a.started_at.map(rfc3339).unwrap_or_default(),
        finished_at: rfc3339(finished),
        container_id: format!("containerd://{}", a.id),
        ..Default::default()
    })
}

fn container_status(
    pod: &Pod,
    c: &Container,
    role: Role,
    attempts: &[Attempt],
    extra: &Extra,
    now: SystemTime,
) -> ContainerStatus {
    let init = role.is_init();
    let ephemeral = role == Role::Ephemeral;
    let (last, previous) = latest(attempts, &c.name, init);
    let mut st = ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        restart_count: last.map(|a| a.attempt as i32).unwrap_or(0),
        ..Default::default()
    };
    let waiting = |reason: &str, message: &str| ContainerState {
        waiting: Some(ContainerStateWaiting { reason: reason.into(), message: message.into() }),
        ..Default::default()
    };
    let terminated = |a: &Attempt| ContainerState { terminated: terminated_of(a), ..Default::default() };
    let pod_desc = || {
        let m = pod.metadata.clone().unwrap_or_default();
        format!("{}_{}({})", m.name, m.namespace, m.uid)
    };
    match last {
        None => {
            let (r, m) =
                extra.waiting.get(&c.name).cloned().unwrap_or(("ContainerCreating".into(), String::new()));
            // Kubernetes' default for ephemeral containers: PodInitializing when the pod has init
            // containers.
            let has_init = pod.spec.as_ref().is_some_and(|s| !s.init_containers.is_empty());
            let initializing = init || (ephemeral && has_init);
            let r = if initializing && r == "ContainerCreating" { "PodInitializing".to_string() } else { r };
            st.state = Some(waiting(&r, &m));
        }
        Some(a) => {
            st.image_id = a.image_id.clone();
            st.container_id = format!("containerd://{}", a.id);
            match &a.state {
                AttemptState::Running => {
                    st.state = Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: a.started_at.map(rfc3339).unwrap_or_default(),
                        }),
                        ..Default::default()
                    });
                    // No result yet for a probe the container has (its probe worker has not
                    // reported for this attempt): not started / not ready, as Kubernetes' initial
                    // results. Without the probe: started and ready while running.
                    // An ephemeral container has no probes, no `started`, and is never ready.
                    let started = extra.started.get(&c.name).copied().unwrap_or(c.startup_probe.is_none());
                    st.started = (!ephemeral).then_some(started);
                    let ready = extra.ready.get(&c.name).copied().unwrap_or(c.readiness_probe.is_none());
                    st.ready = started && ready && !init && !ephemeral;
                    if let Some(p) = previous {
                        st.last_state = Some(terminated(p));
                    }
                }
                AttemptState::Created => {
                    st.state = Some(waiting("ContainerCreating", ""));
                    st.started = (!ephemeral).then_some(false);
                }
                AttemptState::Exited { .. } => {
                    st.started = (!ephemeral).then_some(false);
                    let due = if ephemeral { None } else { restart_due(pod, a) };
                    match due {
                        Some(due) if extra.waiting.contains_key(&c.name) || due > now => {
                            let (r, m) = extra.waiting.get(&c.name).cloned().unwrap_or_else(|| {
                                let delay = backoff(a.attempt, a);
                                (
                                    "CrashLoopBackOff".into(),
                                    format!(
                                        "back-off {} restarting failed container={} pod={}",
                                        humantime::format_duration(delay),
                                        c.name,
                                        pod_desc()
                                    ),
                                )
                            });
                            st.state = Some(waiting(&r, &m));
                            st.last_state = Some(terminated(a));
                        }
                        _ => {
                            st.state = Some(terminated(a));
                            if let Some(p) = previous {
                                st.last_state = Some(terminated(p));
                            }
                        }
                    }
                }
            }
        }
    }
    if st.last_state.is_none() {
        st.last_state = Some(ContainerState::default());
    }
    st
}

fn condition(kind: &str, ok: bool, reason: &str, old: &[PodCondition], now: &str) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let prev = old.iter().find(|c| c.r#type == kind);
    let since = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now.to_string(),
    };
    PodCondition {
        r#type: kind.into(),
        status: status.into(),
        reason: if ok { String::new() } else { reason.into() },
        last_transition_time: since,
        ..Default::default()
    }
}

/// The pod's status from what runs. Times of transitions already recorded are kept, so a status
/// with nothing new compares equal to the stored one.
pub fn status(
    pod: &Pod,
    attempts: &[Attempt],
    extra: &Extra,
    pod_ip: &str,
    host_ip: &str,
    now: SystemTime,
) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let now_s = rfc3339(now);
    let statuses_of = |list: &[Container], role| -> Vec<ContainerStatus> {
        list.iter().map(|c| container_status(pod, c, role, attempts, extra, now)).collect()
    };
    let init_statuses = statuses_of(&spec.init_containers, Role::Init);
    let statuses = statuses_of(&spec.containers, Role::App);
    let phase = phase(pod, attempts);
    let inited = initialized(pod, attempts);
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let mut conditions: Vec<PodCondition> =
        old.conditions.iter().filter(|c| c.r#type == "PodScheduled").cloned().collect();
    let not_ready_reason =
        if phase == "Succeeded" || phase == "Failed" { "PodCompleted" } else { "ContainersNotReady" };
    conditions.push(condition(
        "Initialized",
        inited,
        if phase == "Failed" { "PodCompleted" } else { "ContainersNotInitialized" },
        &old.conditions,
        &now_s,
    ));
    conditions.push(condition("ContainersReady", all_ready, not_ready_reason, &old.conditions, &now_s));
    conditions.push(condition("Ready", all_ready, not_ready_reason, &old.conditions, &now_s));
    for c in conditions.iter_mut() {
        if c.status == "False" && (c.r#type == "Ready" || c.r#type == "ContainersReady") {
            let names: Vec<&str> = statuses.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
            if !names.is_empty() {
                c.message = format!("containers with unready status: [{}]", names.join(" "));
            }
        } else if c.status == "False" && c.r#type == "Initialized" {
            let names: Vec<&str> = init_statuses
                .iter()
                .filter(|s| !matches!(s.state.as_ref().and_then(|st| st.terminated.as_ref()), Some(t) if t.exit_code == 0))
                .map(|s| s.name.as_str())
                .collect();
            if !names.is_empty() {
                c.message = format!("containers with incomplete status: [{}]", names.join(" "));
            }
        }
    }
    let start_time = if old.start_time.is_empty() { now_s.clone() } else { old.start_time.clone() };
    PodStatus {
        phase,
        conditions,
        host_ip: host_ip.to_string(),
        host_i_ps: if host_ip.is_empty() {
            vec![]
        } else {
            vec![navarch_api::v1::HostIp { ip: host_ip.into() }]
        },
        pod_ip: pod_ip.to_string(),
        pod_i_ps: if pod_ip.is_empty() { vec![] } else { vec![PodIp { ip: pod_ip.into() }] },
        start_time,
        init_container_statuses: init_statuses,
        container_statuses: statuses,
        ephemeral_container_statuses: statuses_of(&spec.ephemeral_containers, Role::Ephemeral),
        qos_class: navarch_api::qos::qos_class(&spec.containers),
        ..old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn att(name: &str, init: bool, n: u32, state: AttemptState) -> Attempt {
        Attempt {
            id: format!("{name}-{n}"),
            name: name.into(),
            init,
            attempt: n,
            image: "busybox".into(),
            image_id: "sha256:x".into(),
            started_at: Some(t(0)),
            state,
        }
    }

    fn exited(code: i32, at: u64) -> AttemptState {
        AttemptState::Exited { code, reason: String::new(), finished_at: t(at) }
    }

    const TWO: &str = "{metadata: {name: p, namespace: d, uid: u}, spec: {initContainers: [{name: i1}, {name: i2}], containers: [{name: a}, {name: b}]}}";

    #[test]
    fn init_containers_run_in_order_then_apps() {
        let p = pod(TWO);
        assert_eq!(next_step(&p, &[], t(0)), Step::Start { name: "i1".into(), init: true, attempt: 0 });
        let mut a = vec![att("i1", true, 0, AttemptState::Running)];
        assert_eq!(next_step(&p, &a, t(0)), Step::Wait(None));
        a[0].state = exited(0, 1);
        assert_eq!(next_step(&p, &a, t(1)), Step::Start { name: "i2".into(), init: true, attempt: 0 });
        a.push(att("i2", true, 0, exited(0, 2)));
        assert_eq!(next_step(&p, &a, t(2)), Step::Start { name: "a".into(), init: false, attempt: 0 });
        assert_eq!(phase(&p, &a), "Pending");
        a.push(att("a", false, 0, AttemptState::Running));
        assert_eq!(next_step(&p, &a, t(2)), Step::Start { name: "b".into(), init: false, attempt: 0 });
        a.push(att("b", false, 0, AttemptState::Running));
        assert_eq!(next_step(&p, &a, t(2)), Step::Wait(None));
        assert_eq!(phase(&p, &a), "Running");
    }

    #[test]
    fn failed_init_container_with_never_fails_the_pod() {
        let mut p = pod(TWO);
        p.spec.as_mut().unwrap().restart_policy = "Never".into();
        let a = vec![att("i1", true, 0, exited(3, 1))];
        assert_eq!(phase(&p, &a), "Failed");
        assert_eq!(next_step(&p, &a, t(100)), Step::Wait(None));
    }

    #[test]
    fn crash_loop_back_off_doubles_and_caps() {
        let p = pod("{spec: {containers: [{name: a}]}}");
        // First exit: restart at once.
        let a = vec![att("a", false, 0, exited(1, 10))];
        assert_eq!(next_step(&p, &a, t(10)), Step::Start { name: "a".into(), init: false, attempt: 1 });
        // After restart 1: 10 s, then 20 s, 40 s, ... 300 s.
        for (n, secs) in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 300), (9, 300)] {
            let a = vec![att("a", false, n, exited(1, 100))];
            assert_eq!(next_step(&p, &a, t(100)), Step::Wait(Some(Duration::from_secs(secs))), "restart {n}");
            assert_eq!(
                next_step(&p, &a, t(100 + secs)),
                Step::Start { name: "a".into(), init: false, attempt: n + 1 }
            );
        }
        let s = status(&p, &[att("a", false, 2, exited(1, 100))], &Extra::default(), "", "", t(101));
        let cs = &s.container_statuses[0];
        assert_eq!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason, "CrashLoopBackOff");
        assert_eq!(cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 1);
        assert_eq!(cs.restart_count, 2);
        assert_eq!(s.phase, "Running");
    }

    /// A container whose probe worker has not reported for this attempt yet (it was just started) is
    /// neither started nor ready when it has such a probe; without the probe it is both.
    #[test]
    fn probes_without_results_mean_not_ready_yet() {
        let p = pod(
            "{spec: {containers: [{name: a, readinessProbe: {exec: {command: [x]}}}, {name: b, startupProbe: {exec: {command: [x]}}}, {name: c}]}}",
        );
        let a = [
            att("a", false, 0, AttemptState::Running),
            att("b", false, 0, AttemptState::Running),
            att("c", false, 0, AttemptState::Running),
        ];
        let ready = |extra: &Extra| -> Vec<(bool, Option<bool>)> {
            let s = status(&p, &a, extra, "", "", t(1));
            s.container_statuses.iter().map(|c| (c.ready, c.started)).collect()
        };
        assert_eq!(ready(&Extra::default()), [(false, Some(true)), (false, Some(false)), (true, Some(true))]);
        let passed = Extra {
            ready: [("a".to_string(), true)].into(),
            started: [("b".to_string(), true)].into(),
            ..Extra::default()
        };
        assert_eq!(ready(&passed), [(true, Some(true)), (true, Some(true)), (true, Some(true))]);
    }

    /// An ephemeral container runs once: pending until it has an attempt, never restarted whatever the
    /// restart policy, not counted in the phase or readiness, reported in its own statuses.
    #[test]
    fn ephemeral_containers_run_once_beside_the_pod() {
        let p = pod(
            "{metadata: {name: p}, spec: {containers: [{name: a}], ephemeralContainers: [{name: d1, image: busybox}, {name: d2, image: busybox}]}}",
        );
        let names = |a: &[Attempt]| -> Vec<String> {
            pending_ephemeral(&p, a).iter().map(|c| c.name.clone()).collect()
        };
        let mut a = vec![att("a", false, 0, AttemptState::Running)];
        assert_eq!(names(&a), ["d1", "d2"]);
        let s = status(&p, &a, &Extra::default(), "", "", t(1));
        let waiting = &s.ephemeral_container_statuses[0];
        assert_eq!(waiting.state.as_ref().unwrap().waiting.as_ref().unwrap().reason, "ContainerCreating");
        assert_eq!((waiting.ready, waiting.started), (false, None));
        a.push(att("d1", false, 0, AttemptState::Running));
        a.push(att("d2", false, 0, exited(1, 5)));
        assert!(names(&a).is_empty());
        // Not restarted, and the app containers' steps are unaffected.
        assert_eq!(next_step(&p, &a, t(100)), Step::Wait(None));
        let s = status(&p, &a, &Extra::default(), "", "", t(100));
        assert_eq!(s.phase, "Running");
        assert_eq!(s.container_statuses.len(), 1);
        let ready = s.conditions.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        let [running, done] = &s.ephemeral_container_statuses[..] else { panic!("{s:?}") };
        assert_eq!((running.name.as_str(), running.ready, running.started), ("d1", false, None));
        assert!(running.state.as_ref().unwrap().running.is_some());
        let term = done.state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((term.exit_code, term.reason.as_str(), done.restart_count), (1, "Error", 0));
        // A pod with init containers: waiting ones say PodInitializing, as Kubernetes'.
        let p = pod(
            "{spec: {initContainers: [{name: i}], containers: [{name: a}], ephemeralContainers: [{name: d}]}}",
        );
        let s = status(&p, &[], &Extra::default(), "", "", t(1));
        let w = s.ephemeral_container_statuses[0].state.clone().unwrap().waiting.unwrap();
        assert_eq!(w.reason, "PodInitializing");
        // A finished pod starts none.
        let mut p =
            pod("{spec: {restartPolicy: Never, containers: [{name: a}], ephemeralContainers: [{name: d}]}}");
        assert!(pending_ephemeral(&p, &[att("a", false, 0, exited(0, 1))]).is_empty());
        p.spec.as_mut().unwrap().restart_policy = "Always".into();
        assert_eq!(pending_ephemeral(&p, &[att("a", false, 0, exited(0, 1))]).len(), 1);
    }

    #[test]
    fn long_run_resets_back_off() {
        let a = att("a", false, 5, exited(1, 700));
        assert_eq!(backoff(5, &a), Duration::ZERO);
    }

    #[test]
    fn restart_policies() {
        let mut p = pod("{spec: {containers: [{name: a}]}}");
        let ok = vec![att("a", false, 0, exited(0, 1))];
        let bad = vec![att("a", false, 0, exited(2, 1))];
        p.spec.as_mut().unwrap().restart_policy = "OnFailure".into();
        assert_eq!(phase(&p, &ok), "Succeeded");
        assert_eq!(phase(&p, &bad), "Running");
        p.spec.as_mut().unwrap().restart_policy = "Never".into();
        assert_eq!(phase(&p, &bad), "Failed");
        assert!(terminal(&p, &bad));
        p.spec.as_mut().unwrap().restart_policy = "Always".into();
        assert_eq!(phase(&p, &ok), "Running");
    }

    #[test]
    fn ready_conditions_follow_probes() {
        let p = pod("{metadata: {name: p}, spec: {containers: [{name: a}]}}");
        let a = vec![att("a", false, 0, AttemptState::Running)];
        let mut extra = Extra::default();
        let s = status(&p, &a, &extra, "10.0.0.2", "192.0.2.2", t(5));
        let ready = s.conditions.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(s.pod_ip, "10.0.0.2");
        extra.ready.insert("a".into(), false);
        let p2 = Pod { status: Some(s.clone()), ..p.clone() };
        let s2 = status(&p2, &a, &extra, "10.0.0.2", "192.0.2.2", t(9));
        let ready = s2.conditions.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.as_str()),
            ("False", rfc3339(t(9)).as_str())
        );
        assert_eq!(ready.message, "containers with unready status: [a]");
        // Nothing new: equal to what is stored.
        let p3 = Pod { status: Some(s2.clone()), ..p };
        assert_eq!(status(&p3, &a, &extra, "10.0.0.2", "192.0.2.2", t(20)), s2);
    }
}
