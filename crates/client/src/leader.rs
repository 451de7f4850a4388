//! Leader election through a `coordination.k8s.io/v1` Lease, with Kubernetes' semantics: the holder renews
//! `renewTime` every retry period; a candidate takes over when it has seen the record unchanged for a
//! whole `leaseDurationSeconds` (judged on its own clock, so clock skew between machines does not
//! matter); writes use the Lease's resourceVersion, so two candidates never both win.

use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{Lease, LeaseSpec, ObjectMeta};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Api, Client};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// How long a lease is valid without renewal (Kubernetes' default 15 s).
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down (10 s).
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew (2 s).
    pub retry_period: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    cfg: LeaseConfig,
    /// The last record seen from another holder, and when it was first seen.
    observed: Option<(String, Instant)>,
    last_renew: Option<Instant>,
}

fn micro_time_now() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

impl LeaderElector {
    pub fn new(
        client: &Client,
        namespace: &str,
        name: &str,
        identity: &str,
        cfg: LeaseConfig,
    ) -> LeaderElector {
        LeaderElector {
            api: client.api(namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            cfg,
            observed: None,
            last_renew: None,
        }
    }

    fn spec(&self, transitions: i32, acquire: String) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(acquire),
            renew_time: Some(micro_time_now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt: true when this candidate holds the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = Instant::now();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let mut lease = Lease {
                metadata: Some(ObjectMeta { name: self.name.clone(), ..Default::default() }),
                spec: Some(self.spec(0, micro_time_now())),
                ..Default::default()
            };
            lease.set_type_meta();
            return match self.api.create(&lease).await {
                Ok(_) => Ok(true),
                Err(Error::AlreadyExists(_)) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let record = format!("{holder}|{}", spec.renew_time.clone().unwrap_or_default());
        let mut next = current.clone();
        if holder == self.identity {
            next.spec =
                Some(self.spec(transitions, spec.acquire_time.clone().unwrap_or_else(micro_time_now)));
        } else {
            // Another holder (or none): take over only once its record has not changed for a whole
            // lease duration as seen by us.
            let duration = spec
                .lease_duration_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or(self.cfg.lease_duration);
            let since = match &self.observed {
                Some((r, t)) if *r == record => *t,
                _ => {
                    self.observed = Some((record, now));
                    now
                }
            };
            if !holder.is_empty() && now.duration_since(since) < duration {
                return Ok(false);
            }
            next.spec = Some(self.spec(transitions + 1, micro_time_now()));
        }
        match self.api.update(&next).await {
            Ok(_) => Ok(true),
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs the election until `shutdown`; the receiver says whether this candidate leads now. A leader
    /// that cannot renew within `renew_deadline` reports `false`. On shutdown a leader releases the lease
    /// (empties holderIdentity) so another candidate can take over at once.
    pub fn spawn(
        mut self,
        shutdown: CancellationToken,
    ) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(async move {
            loop {
                let leading = match self.try_acquire_or_renew().await {
                    Ok(true) => {
                        self.last_renew = Some(Instant::now());
                        true
                    }
                    Ok(false) => false,
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "lease update failed");
                        self.last_renew.is_some_and(|t| t.elapsed() < self.cfg.renew_deadline) && *tx.borrow()
                    }
                };
                if leading != *tx.borrow() {
                    tracing::info!(lease = %self.name, identity = %self.identity, leading, "leadership changed");
                }
                tx.send_replace(leading);
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.retry_period) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            if *tx.borrow() {
                self.release().await;
            }
            tx.send_replace(false);
        });
        (rx, handle)
    }

    async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() == Some(self.identity.as_str()) {
                spec.holder_identity = None;
                spec.renew_time = Some(micro_time_now());
                let _ = self.api.update(&lease).await;
            }
        }
    }
}

/// Runs `work` only while this candidate leads: it gets a token cancelled when leadership is lost or on
/// shutdown, and is started again on re-election. Returns when `shutdown` is cancelled.
pub async fn run_while_leader<F, Fut>(elector: LeaderElector, shutdown: CancellationToken, work: F)
where
    F: Fn(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (mut leading, handle) = elector.spawn(shutdown.clone());
    while !shutdown.is_cancelled() {
        if leading.wait_for(|l| *l).await.is_err() {
            break;
        }
        let stop = shutdown.child_token();
        let guard = stop.clone();
        let mut watch_loss = leading.clone();
        let lost = async move {
            let _ = watch_loss.wait_for(|l| !*l).await;
            guard.cancel();
        };
        tokio::select! {
            _ = work(stop.clone()) => {}
            _ = lost => {}
        }
        stop.cancel();
    }
    let _ = handle.await;
}
