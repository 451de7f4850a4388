//! Recording Kubernetes Events about objects, like client-go's recorder: `record` never blocks the
//! caller; events go through a bounded queue to a few concurrent senders and are dropped (with a
//! debug log) when the queue is full, so a slow api-server cannot stall the component.

use futures::StreamExt;
use navarch_api::Resource;
use navarch_api::v1::{Event, EventSource, ObjectMeta, ObjectReference};
use tokio::sync::mpsc;

use crate::Client;

const SENDERS: usize = 4;

/// One event to record.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub object: ObjectReference,
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// The handle components record through; cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<EventRecord>,
}

/// A reference to `obj` for an event's involvedObject.
pub fn object_ref<K: Resource>(obj: &K) -> ObjectReference {
    let m = obj.meta();
    ObjectReference {
        kind: K::KIND.into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        api_version: K::API_VERSION.into(),
        ..Default::default()
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl EventRecorder {
    /// A recorder for `component` (e.g. `kubelet`, on node `host`) and the future that sends its
    /// events; spawn that future: it ends once every recorder handle is dropped.
    pub fn new(
        client: Client,
        component: &str,
        host: &str,
        queue: usize,
    ) -> (EventRecorder, impl Future<Output = ()> + Send + 'static) {
        let (tx, mut rx) = mpsc::channel::<EventRecord>(queue.max(1));
        let source = EventSource { component: component.to_string(), host: host.to_string() };
        let sender = async move {
            futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
                .for_each_concurrent(SENDERS, |record| {
                    let client = client.clone();
                    let source = source.clone();
                    async move { send(&client, source, record).await }
                })
                .await;
        };
        (EventRecorder { tx }, sender)
    }

    /// Queues an event; drops it if the queue is full.
    pub fn record(&self, object: ObjectReference, kind: &'static str, reason: &'static str, message: String) {
        if self.tx.try_send(EventRecord { object, kind, reason, message }).is_err() {
            tracing::debug!(reason, "event queue full; event dropped");
        }
    }
}

async fn send(client: &Client, source: EventSource, r: EventRecord) {
    let ns = if r.object.namespace.is_empty() { "default".to_string() } else { r.object.namespace.clone() };
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut ev = Event {
        // Like client-go: <object>.<hex nanoseconds>.
        metadata: Some(ObjectMeta {
            name: format!("{}.{stamp:x}", r.object.name),
            namespace: ns.clone(),
            ..Default::default()
        }),
        involved_object: Some(r.object),
        reason: r.reason.into(),
        message: r.message,
        r#type: r.kind.into(),
        first_timestamp: now(),
        last_timestamp: now(),
        count: 1,
        reporting_component: source.component.clone(),
        reporting_instance: source.host.clone(),
        source: Some(source),
        ..Default::default()
    };
    ev.set_type_meta();
    if let Err(e) = client.api::<Event>(&ns).create(&ev).await {
        tracing::warn!(reason = %ev.reason, error = %e, "recording an event failed; it is dropped");
    }
}
