//! Kubernetes' root CA publisher (`pkg/controller/certificates/rootcacertpublisher`): every namespace
//! has a ConfigMap `kube-root-ca.crt` whose key `ca.crt` is the CA bundle that verifies the api-server
//! (`--root-ca-file`, default: the CA of the controller-manager's own kubeconfig), annotated
//! `kubernetes.io/description`. Pods read it through their `kube-api-access-*` volume. A deleted
//! ConfigMap is created again; a changed one (data or the annotation) is put back, other annotations
//! and labels kept. Terminating namespaces are left alone.
//!
//! [`spawn`] wires it to the shared Namespace and ConfigMap reflectors: each namespace is a key,
//! re-synced when its `kube-root-ca.crt` changes or is deleted.

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{ConfigMap, Namespace, ObjectMeta};
use navarch_client::{Action, Client, Controller, ObjectRef, Store};

use crate::run::{Reconciler, Wiring};

/// The ConfigMap's name.
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its one key.
pub const KEY: &str = "ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Kubernetes' description, word for word.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What a namespace's `kube-root-ca.crt` needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Nothing: it is right.
    None,
    /// It is missing: create this.
    Create(ConfigMap),
    /// It differs: write this (the stored object with data and annotation put back).
    Update(ConfigMap),
}

/// Compares the stored ConfigMap of `namespace` (if any) with what it should be for `root_ca`.
pub fn change(namespace: &str, stored: Option<&ConfigMap>, root_ca: &str) -> Change {
    let data = [(KEY.to_string(), root_ca.to_string())];
    let Some(cm) = stored else {
        let mut cm = ConfigMap {
            metadata: Some(ObjectMeta {
                name: CONFIG_MAP.into(),
                namespace: namespace.into(),
                annotations: [(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())]
                    .into_iter()
                    .collect(),
                ..Default::default()
            }),
            data: data.into_iter().collect(),
            ..Default::default()
        };
        cm.set_type_meta();
        return Change::Create(cm);
    };
    let same_data = cm.data.len() == 1 && cm.data.get(KEY).map(String::as_str) == Some(root_ca);
    let described = cm.meta().annotations.get(DESCRIPTION_ANNOTATION).is_some_and(|d| !d.is_empty());
    if same_data && described {
        return Change::None;
    }
    let mut cm = cm.clone();
    cm.data = data.into_iter().collect();
    cm.meta_mut().annotations.insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
    cm.set_type_meta();
    Change::Update(cm)
}

pub struct RootCaPublisher {
    pub client: Client,
    pub config_maps: Store<ConfigMap>,
    /// The PEM bundle published.
    pub root_ca: String,
}

impl Reconciler<Namespace> for RootCaPublisher {
    type Error = navarch_client::Error;

    async fn reconcile(&self, ns: Arc<Namespace>) -> Result<Action, navarch_client::Error> {
        if !ns.meta().deletion_timestamp.is_empty() {
            return Ok(Action::await_change());
        }
        let namespace = ns.meta().name.clone();
        let stored = self.config_maps.get(&ObjectRef::new(&namespace, CONFIG_MAP));
        let api = self.client.api::<ConfigMap>(&namespace);
        match change(&namespace, stored.as_deref(), &self.root_ca) {
            Change::None => {}
            Change::Create(cm) => match api.create(&cm).await {
                Ok(_) => tracing::debug!(%namespace, "published the root CA"),
                // Our store had not seen it yet: its event re-syncs the namespace.
                Err(navarch_client::Error::AlreadyExists(_)) => {}
                // The namespace is gone or terminating: nothing to publish.
                Err(navarch_client::Error::NotFound(_) | navarch_client::Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            },
            Change::Update(cm) => match api.update(&cm).await {
                Ok(_) => tracing::info!(%namespace, "put back the root CA ConfigMap"),
                Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            },
        }
        Ok(Action::await_change())
    }
}

/// Runs the publisher of `root_ca` (a PEM bundle): Namespaces, re-synced when their `kube-root-ca.crt`
/// changes.
pub fn spawn(w: &mut Wiring, root_ca: String) {
    let controller = Controller::for_shared(&w.informers.namespaces).concurrency(w.workers).watches_shared(
        &w.informers.configmaps,
        |cm: &ConfigMap| {
            let m = cm.meta();
            if m.name == CONFIG_MAP { vec![ObjectRef::new("", &m.namespace)] } else { vec![] }
        },
    );
    let ctx = Arc::new(RootCaPublisher {
        client: w.client.clone(),
        config_maps: w.informers.configmaps.store(),
        root_ca,
    });
    w.controller(controller, ctx, Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn cm(yaml: &str) -> ConfigMap {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_missing_config_map_is_created_as_kubernetes_writes_it() {
        let Change::Create(created) = change("team-a", None, CA) else { panic!("expected a create") };
        let m = created.meta();
        assert_eq!((m.name.as_str(), m.namespace.as_str()), ("kube-root-ca.crt", "team-a"));
        assert_eq!(m.annotations.get("kubernetes.io/description").map(String::as_str), Some(DESCRIPTION));
        assert_eq!(created.data.get("ca.crt").map(String::as_str), Some(CA));
        assert_eq!(created.data.len(), 1);
        assert_eq!((created.api_version.as_str(), created.kind.as_str()), ("v1", "ConfigMap"));
        // What was created is right.
        assert_eq!(change("team-a", Some(&created), CA), Change::None);
    }

    #[test]
    fn changed_data_or_annotation_is_put_back_and_the_rest_kept() {
        let Change::Create(good) = change("ns", None, CA) else { panic!() };
        let mut tampered = good.clone();
        tampered.data.insert("ca.crt".into(), "not a CA".into());
        tampered.data.insert("extra".into(), "x".into());
        tampered.meta_mut().labels.insert("team".into(), "a".into());
        tampered.meta_mut().resource_version = "7".into();
        let Change::Update(fixed) = change("ns", Some(&tampered), CA) else { panic!("expected an update") };
        assert_eq!(fixed.data, good.data);
        assert_eq!(fixed.meta().labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(fixed.meta().resource_version, "7", "compare-and-swap on what was read");

        let mut undescribed = good.clone();
        undescribed.meta_mut().annotations.clear();
        undescribed.meta_mut().annotations.insert("mine".into(), "kept".into());
        let Change::Update(fixed) = change("ns", Some(&undescribed), CA) else { panic!() };
        assert_eq!(fixed.meta().annotations.len(), 2);
        assert_eq!(
            fixed.meta().annotations.get(DESCRIPTION_ANNOTATION).map(String::as_str),
            Some(DESCRIPTION)
        );

        // A new CA is published over the old one.
        assert!(matches!(change("ns", Some(&good), "other CA"), Change::Update(_)));
        // Only data and the description count, as in Kubernetes.
        let other = cm(
            "{metadata: {name: kube-root-ca.crt, annotations: {kubernetes.io/description: x}}, data: {ca.crt: c}, binaryData: {b: AA==}}",
        );
        assert_eq!(change("ns", Some(&other), "c"), Change::None);
    }
}
