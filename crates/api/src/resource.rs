//! The [`Resource`] trait every kind implements, the table of kinds ([`KINDS`]) and the [`Object`] enum
//! that holds any kind (for code that is generic at run time: the api-server's registry, navctl).

use std::sync::LazyLock;

use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::v1::*;

/// What the api-server and clients need to know about a kind, statically.
pub trait Resource:
    Message + Default + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    const KIND: &'static str;
    /// `v1`, `apps/v1`, ...
    const API_VERSION: &'static str;
    /// Lower-case plural, as in Kubernetes' URLs and etcd keys (`pods`, `deployments`).
    const PLURAL: &'static str;
    const NAMESPACED: bool;
    /// True when the kind has a `status` updated through the status subresource only.
    const HAS_STATUS: bool;

    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
    /// Sets `apiVersion` and `kind` to this kind's.
    fn set_type_meta(&mut self);
    /// Removes the status (no-op for kinds without one).
    fn clear_status(&mut self);
    /// Replaces this object's status with `other`'s (no-op for kinds without one).
    fn copy_status_from(&mut self, other: &Self);
    /// The value of a field for field selectors (`metadata.name`, `spec.nodeName`, ...); `None` when the
    /// kind does not support selecting on that field.
    fn field(&self, path: &str) -> Option<String>;

    /// `namespace/name` (or `name` for cluster-scoped kinds).
    fn key(&self) -> String {
        let m = self.meta();
        if Self::NAMESPACED { format!("{}/{}", m.namespace, m.name) } else { m.name.clone() }
    }
    fn info() -> &'static KindInfo {
        kind_info(Self::KIND).expect("every Resource is in KINDS")
    }
}

/// Static facts about a kind, for discovery and for resolving names like `po`, `pods`, `Pod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub plural: &'static str,
    pub singular: String,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub has_status: bool,
}

static EMPTY_META: LazyLock<ObjectMeta> = LazyLock::new(ObjectMeta::default);

fn meta_field(m: &ObjectMeta, path: &str) -> Option<String> {
    match path {
        "metadata.name" => Some(m.name.clone()),
        "metadata.namespace" => Some(m.namespace.clone()),
        "metadata.uid" => Some(m.uid.clone()),
        _ => None,
    }
}

macro_rules! resource_status {
    (true) => {
        fn clear_status(&mut self) {
            self.status = None;
        }
        fn copy_status_from(&mut self, other: &Self) {
            self.status = other.status.clone();
        }
    };
    (false) => {
        fn clear_status(&mut self) {}
        fn copy_status_from(&mut self, _other: &Self) {}
    };
}

macro_rules! kinds {
    ($(
        $kind:ident {
            api_version: $av:literal,
            plural: $plural:literal,
            namespaced: $ns:literal,
            short_names: [$($short:literal),*],
            status: $status:tt,
            fields: |$o:ident| { $($fpath:literal => $fval:expr),* $(,)? } $(,)?
        }
    ),* $(,)?) => {
        $(
            impl Resource for $kind {
                const KIND: &'static str = stringify!($kind);
                const API_VERSION: &'static str = $av;
                const PLURAL: &'static str = $plural;
                const NAMESPACED: bool = $ns;
                const HAS_STATUS: bool = $status;
                fn meta(&self) -> &ObjectMeta {
                    self.metadata.as_ref().unwrap_or(&EMPTY_META)
                }
                fn meta_mut(&mut self) -> &mut ObjectMeta {
                    self.metadata.get_or_insert_with(Default::default)
                }
                fn set_type_meta(&mut self) {
                    self.api_version = $av.to_string();
                    self.kind = stringify!($kind).to_string();
                }
                resource_status!($status);
                #[allow(unused_variables)]
                fn field(&self, path: &str) -> Option<String> {
                    let $o = self;
                    match path {
                        $($fpath => Some($fval),)*
                        _ => meta_field(self.meta(), path),
                    }
                }
            }
        )*

        /// Every kind the api-server serves.
        pub static KINDS: LazyLock<Vec<KindInfo>> = LazyLock::new(|| vec![$(
            KindInfo {
                kind: stringify!($kind),
                api_version: $av,
                plural: $plural,
                singular: stringify!($kind).to_ascii_lowercase(),
                short_names: &[$($short),*],
                namespaced: $ns,
                has_status: $status,
            },
        )*]);

        /// An object of any kind.
        // Variants are as large as their kinds (a Pod is big); boxing each would make every match and
        // construction noisier for no gain: Objects are moved rarely and shared through Arc.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Object {
            $($kind($kind),)*
        }

        $(
            impl From<$kind> for Object {
                fn from(o: $kind) -> Object {
                    Object::$kind(o)
                }
            }
        )*

        impl Object {
            pub fn kind(&self) -> &'static str {
                match self { $(Object::$kind(_) => stringify!($kind),)* }
            }
            pub fn meta(&self) -> &ObjectMeta {
                match self { $(Object::$kind(o) => o.meta(),)* }
            }
            pub fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Object::$kind(o) => o.meta_mut(),)* }
            }
            pub fn set_type_meta(&mut self) {
                match self { $(Object::$kind(o) => o.set_type_meta(),)* }
            }
            /// The protobuf encoding of the typed object.
            pub fn encode(&self) -> Vec<u8> {
                match self { $(Object::$kind(o) => o.encode_to_vec(),)* }
            }
            /// Decodes the protobuf encoding of an object of `kind`.
            pub fn decode(kind: &str, raw: &[u8]) -> Result<Object, crate::Error> {
                match kind {
                    $(stringify!($kind) => $kind::decode(raw)
                        .map(Object::$kind)
                        .map_err(|e| crate::Error::Decode { kind: kind.to_string(), reason: e.to_string() }),)*
                    _ => Err(crate::Error::UnknownKind(kind.to_string())),
                }
            }
            /// Reads an object of `kind` from a YAML/JSON value, rejecting unknown fields and wrong types
            /// with the path of the offending field.
            pub fn from_value(kind: &str, value: serde_yaml::Value) -> Result<Object, crate::Error> {
                match kind {
                    $(stringify!($kind) => serde_path_to_error::deserialize::<_, $kind>(value)
                        .map(Object::$kind)
                        .map_err(crate::Error::from_path_error),)*
                    _ => Err(crate::Error::UnknownKind(kind.to_string())),
                }
            }
            /// `namespace/name` or `name`.
            pub fn key(&self) -> String {
                match self { $(Object::$kind(o) => o.key(),)* }
            }
        }
    };
}

/// Kinds in the `all` category (`kubectl get all`), in Kubernetes' order.
pub const CATEGORY_ALL: &[&str] = &[
    "Pod",
    "Service",
    "ReplicationController",
    "DaemonSet",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Job",
    "CronJob",
];

kinds! {
    Namespace {
        api_version: "v1", plural: "namespaces", namespaced: false, short_names: ["ns"], status: true,
        fields: |o| { "status.phase" => o.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default() },
    },
    Node {
        api_version: "v1", plural: "nodes", namespaced: false, short_names: ["no"], status: true,
        fields: |o| {
            "spec.unschedulable" => o.spec.as_ref().is_some_and(|s| s.unschedulable).to_string(),
        },
    },
    Pod {
        api_version: "v1", plural: "pods", namespaced: true, short_names: ["po"], status: true,
        fields: |o| {
            "spec.nodeName" => o.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default(),
            "spec.schedulerName" => o.spec.as_ref().map(|s| s.scheduler_name.clone()).unwrap_or_default(),
            "spec.restartPolicy" => o.spec.as_ref().map(|s| s.restart_policy.clone()).unwrap_or_default(),
            "spec.serviceAccountName" => o.spec.as_ref().map(|s| s.service_account_name.clone()).unwrap_or_default(),
            "status.phase" => o.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default(),
            "status.podIP" => o.status.as_ref().map(|s| s.pod_ip.clone()).unwrap_or_default(),
            "status.nominatedNodeName" => o.status.as_ref().map(|s| s.nominated_node_name.clone()).unwrap_or_default(),
        },
    },
    Service {
        api_version: "v1", plural: "services", namespaced: true, short_names: ["svc"], status: true,
        fields: |o| {
            "spec.clusterIP" => o.spec.as_ref().map(|s| s.cluster_ip.clone()).unwrap_or_default(),
            "spec.type" => o.spec.as_ref().map(|s| s.r#type.clone()).unwrap_or_default(),
        },
    },
    Endpoints {
        api_version: "v1", plural: "endpoints", namespaced: true, short_names: ["ep"], status: false,
        fields: |o| {},
    },
    ConfigMap {
        api_version: "v1", plural: "configmaps", namespaced: true, short_names: ["cm"], status: false,
        fields: |o| {},
    },
    Secret {
        api_version: "v1", plural: "secrets", namespaced: true, short_names: [], status: false,
        fields: |o| { "type" => o.r#type.clone() },
    },
    ServiceAccount {
        api_version: "v1", plural: "serviceaccounts", namespaced: true, short_names: ["sa"], status: false,
        fields: |o| {},
    },
    Event {
        api_version: "v1", plural: "events", namespaced: true, short_names: ["ev"], status: false,
        fields: |o| {
            "involvedObject.kind" => o.involved_object.as_ref().map(|r| r.kind.clone()).unwrap_or_default(),
            "involvedObject.namespace" => o.involved_object.as_ref().map(|r| r.namespace.clone()).unwrap_or_default(),
            "involvedObject.name" => o.involved_object.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            "involvedObject.uid" => o.involved_object.as_ref().map(|r| r.uid.clone()).unwrap_or_default(),
            "involvedObject.apiVersion" => o.involved_object.as_ref().map(|r| r.api_version.clone()).unwrap_or_default(),
            "involvedObject.fieldPath" => o.involved_object.as_ref().map(|r| r.field_path.clone()).unwrap_or_default(),
            "reason" => o.reason.clone(),
            "type" => o.r#type.clone(),
            "source" => o.source.as_ref().map(|s| s.component.clone()).unwrap_or_default(),
            "reportingComponent" => o.reporting_component.clone(),
        },
    },
    LimitRange {
        api_version: "v1", plural: "limitranges", namespaced: true, short_names: ["limits"], status: false,
        fields: |o| {},
    },
    PersistentVolume {
        api_version: "v1", plural: "persistentvolumes", namespaced: false, short_names: ["pv"], status: true,
        fields: |o| {
            "status.phase" => o.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default(),
        },
    },
    PersistentVolumeClaim {
        api_version: "v1", plural: "persistentvolumeclaims", namespaced: true, short_names: ["pvc"],
        status: true, fields: |o| {},
    },
    ResourceQuota {
        api_version: "v1", plural: "resourcequotas", namespaced: true, short_names: ["quota"], status: true,
        fields: |o| {},
    },
    ReplicaSet {
        api_version: "apps/v1", plural: "replicasets", namespaced: true, short_names: ["rs"], status: true,
        fields: |o| {
            "status.replicas" => o.status.as_ref().map(|s| s.replicas).unwrap_or_default().to_string(),
        },
    },
    ReplicationController {
        api_version: "v1", plural: "replicationcontrollers", namespaced: true, short_names: ["rc"], status: true,
        fields: |o| {
            "status.replicas" => o.status.as_ref().map(|s| s.replicas).unwrap_or_default().to_string(),
        },
    },
    Deployment {
        api_version: "apps/v1", plural: "deployments", namespaced: true, short_names: ["deploy"], status: true,
        fields: |o| {},
    },
    DaemonSet {
        api_version: "apps/v1", plural: "daemonsets", namespaced: true, short_names: ["ds"], status: true,
        fields: |o| {},
    },
    ControllerRevision {
        api_version: "apps/v1", plural: "controllerrevisions", namespaced: true, short_names: [], status: false,
        fields: |o| {},
    },
    StatefulSet {
        api_version: "apps/v1", plural: "statefulsets", namespaced: true, short_names: ["sts"], status: true,
        fields: |o| {},
    },
    Job {
        api_version: "batch/v1", plural: "jobs", namespaced: true, short_names: [], status: true,
        fields: |o| {
            "status.successful" => o.status.as_ref().map(|s| s.succeeded).unwrap_or_default().to_string(),
        },
    },
    CronJob {
        api_version: "batch/v1", plural: "cronjobs", namespaced: true, short_names: ["cj"], status: true,
        fields: |o| {},
    },
    HorizontalPodAutoscaler {
        api_version: "autoscaling/v2", plural: "horizontalpodautoscalers", namespaced: true, short_names: ["hpa"],
        status: true, fields: |o| {},
    },
    PodDisruptionBudget {
        api_version: "policy/v1", plural: "poddisruptionbudgets", namespaced: true, short_names: ["pdb"],
        status: true, fields: |o| {},
    },
    StorageClass {
        api_version: "storage.k8s.io/v1", plural: "storageclasses", namespaced: false, short_names: ["sc"],
        status: false, fields: |o| {},
    },
    PriorityClass {
        api_version: "scheduling.k8s.io/v1", plural: "priorityclasses", namespaced: false, short_names: ["pc"],
        status: false, fields: |o| {},
    },
    Lease {
        api_version: "coordination.k8s.io/v1", plural: "leases", namespaced: true, short_names: [], status: false,
        fields: |o| {},
    },
    Role {
        api_version: "rbac.authorization.k8s.io/v1", plural: "roles", namespaced: true, short_names: [],
        status: false, fields: |o| {},
    },
    RoleBinding {
        api_version: "rbac.authorization.k8s.io/v1", plural: "rolebindings", namespaced: true, short_names: [],
        status: false, fields: |o| {},
    },
    ClusterRole {
        api_version: "rbac.authorization.k8s.io/v1", plural: "clusterroles", namespaced: false, short_names: [],
        status: false, fields: |o| {},
    },
    ClusterRoleBinding {
        api_version: "rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", namespaced: false,
        short_names: [], status: false, fields: |o| {},
    },
    CertificateSigningRequest {
        api_version: "certificates.k8s.io/v1", plural: "certificatesigningrequests", namespaced: false,
        short_names: ["csr"], status: true,
        fields: |o| {
            "spec.signerName" => o.spec.as_ref().map(|s| s.signer_name.clone()).unwrap_or_default(),
        },
    },
    // The resource metrics API: served from the api-server's metrics pipeline, never stored. Last, so that
    // `pods` and `nodes` name the core kinds.
    NodeMetrics {
        api_version: "metrics.k8s.io/v1beta1", plural: "nodes", namespaced: false, short_names: [],
        status: false, fields: |o| {},
    },
    PodMetrics {
        api_version: "metrics.k8s.io/v1beta1", plural: "pods", namespaced: true, short_names: [],
        status: false, fields: |o| {},
    },
}

/// Finds a kind by its name, lower-case singular, plural or short name (`Pod`, `pod`, `pods`, `po`),
/// optionally qualified by group (`deployments.apps`).
/// A group qualifier must be the kind's group (`pods.metrics.k8s.io` is PodMetrics, `pods` the core Pod),
/// optionally with the version before it (`deployments.v1.apps`).
pub fn kind_info(name: &str) -> Option<&'static KindInfo> {
    let (bare, qualifier) = name.split_once('.').unwrap_or((name, ""));
    let lower = bare.to_ascii_lowercase();
    KINDS.iter().find(|k| {
        let (group, version) = k.api_version.rsplit_once('/').unwrap_or(("", k.api_version));
        let qualified = qualifier.is_empty()
            || qualifier == group
            || qualifier.strip_prefix(version).and_then(|g| g.strip_prefix('.')) == Some(group);
        qualified
            && (k.kind == bare
                || k.singular == lower
                || k.plural == lower
                || k.short_names.contains(&lower.as_str()))
    })
}

impl KindInfo {
    /// Whether objects of this kind live in etcd. The resource metrics kinds (`metrics.k8s.io`) do not:
    /// the api-server answers their get and list from its metrics pipeline and refuses every write and
    /// watch; they have no etcd keys and no watch caches.
    pub fn is_stored(&self) -> bool {
        !self.api_version.starts_with("metrics.k8s.io/")
    }
}

impl Object {
    pub fn info(&self) -> &'static KindInfo {
        kind_info(self.kind()).expect("every Object kind is in KINDS")
    }
    pub fn to_proto(&self) -> crate::proto::Object {
        crate::proto::Object { kind: self.kind().to_string(), raw: self.encode() }
    }
    pub fn from_proto(o: &crate::proto::Object) -> Result<Object, crate::Error> {
        Object::decode(&o.kind, &o.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::kind_info;

    #[test]
    fn plural_names_resolve_to_the_core_kinds_unless_qualified() {
        let kind = |name: &str| kind_info(name).map(|k| k.kind);
        assert_eq!(kind("pods"), Some("Pod"));
        assert_eq!(kind("nodes"), Some("Node"));
        assert_eq!(kind("pods.metrics.k8s.io"), Some("PodMetrics"));
        assert_eq!(kind("nodes.v1beta1.metrics.k8s.io"), Some("NodeMetrics"));
        assert_eq!(kind("podmetrics"), Some("PodMetrics"));
        assert_eq!(kind("PodMetrics"), Some("PodMetrics"));
        assert_eq!(kind("deployments.apps"), Some("Deployment"));
        assert_eq!(kind("deploy.v1.apps"), Some("Deployment"));
        assert_eq!(kind("deployments.batch"), None);
        assert!(!kind_info("PodMetrics").unwrap().is_stored());
        assert!(kind_info("Pod").unwrap().is_stored());
    }
}
