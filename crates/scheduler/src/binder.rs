//! Batched bindings (group commit): every bind task of the scheduler hands its pod and node to the one
//! [`Binder`], which sends what has queued up as one BindMany request — at most [`MAX_BATCH`] bindings,
//! at most [`IN_FLIGHT`] requests at a time. When the scheduler is idle a binding goes alone at once;
//! under load the bindings that arrive while requests are in flight make the next batch, which the
//! api-server commits in one etcd transaction. Each binding still gets its own answer. An api-server
//! without BindMany (an older one, mid-upgrade) is sent one Bind per pod from then on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use navarch_client::{Client, Error, PodBinding};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

/// Most bindings in one request (below etcd's default `--max-txn-ops` of 128).
pub const MAX_BATCH: usize = 100;
/// Most BindMany requests at a time.
pub const IN_FLIGHT: usize = 2;

struct Job {
    binding: PodBinding,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The handle bind tasks send through; cheap to clone. The batching task ends when every handle is
/// dropped, after answering what it holds.
#[derive(Clone)]
pub struct Binder {
    tx: mpsc::UnboundedSender<Job>,
}

impl Binder {
    /// The handle and the batching task (the caller owns and awaits it).
    pub fn new(client: Client) -> (Binder, impl Future<Output = ()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Binder { tx }, run(client, rx))
    }

    /// Binds the pod; the result is what Bind would have answered for it alone.
    pub async fn bind(&self, binding: PodBinding) -> Result<(), Error> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Job { binding, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Unavailable("the binder has stopped".into())
}

async fn run(client: Client, mut rx: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let one_by_one = Arc::new(AtomicBool::new(false));
    let mut requests = JoinSet::new();
    while let Some(first) = rx.recv().await {
        // Wait for a free slot first: what arrives meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (client, one_by_one) = (client.clone(), one_by_one.clone());
        requests.spawn(async move {
            send(&client, batch, &one_by_one).await;
            drop(slot);
        });
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
}

async fn send(client: &Client, batch: Vec<Job>, one_by_one: &AtomicBool) {
    if !one_by_one.load(Ordering::Relaxed) {
        let bindings: Vec<PodBinding> = batch.iter().map(|j| j.binding.clone()).collect();
        match client.bind_many(&bindings).await {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.done.send(outcome.map(|_| ()));
                }
                return;
            }
            Err(e) if e.is_unimplemented() => {
                tracing::info!("the api-server has no BindMany; binding one pod per request");
                one_by_one.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                // The request as a whole failed (its bindings may or may not be made): each pod is
                // retried by the scheduler, which sees the ones that were bound through its watch.
                let message = e.to_string();
                for job in batch {
                    let _ = job.done.send(Err(Error::Unavailable(message.clone())));
                }
                return;
            }
        }
    }
    let each = batch.into_iter().map(|job| async move {
        let b = &job.binding;
        let result = client.bind(&b.namespace, &b.name, &b.uid, &b.node).await.map(|_| ());
        let _ = job.done.send(result);
    });
    futures::future::join_all(each).await;
}
