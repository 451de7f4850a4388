//! The shape of every message of `navarch.api.v1`, read from the proto descriptors at build time, and the
//! Kubernetes facts that proto cannot say: how lists merge in a strategic merge patch, which fields
//! Kubernetes marks required, and which strings are timestamps or base64 bytes.
//!
//! Used to generate the OpenAPI documents and, by the api-server, for strategic merge patch and for
//! writing required fields even when they are empty. The tables follow Kubernetes' Go types
//! (`k8s.io/api` 1.32, and newer releases for the fields added since); a test checks that every entry names
//! a message and field that exists.

/// A message of `navarch.api.v1`.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub name: &'static str,
    /// The proto file it is defined in, without `.proto`: `meta`, `pod`, `core`, `apps`, `batch`,
    /// `coordination`.
    pub file: &'static str,
    /// The comment above the message, `//` removed and lines joined into paragraphs; empty if none.
    pub description: &'static str,
    /// In declaration order.
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, json_name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json_name == json_name)
    }
}

/// A field of a [`Message`].
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    /// The proto field name, which is Kubernetes' JSON name.
    pub json_name: &'static str,
    /// The type of the value; of each item for a repeated field; of the key (always a string) for a map.
    pub ty: FieldType,
    /// `repeated` (a JSON array); false for maps.
    pub repeated: bool,
    /// For `map<string, V>` (a JSON object), the type of V.
    pub map_value: Option<FieldType>,
    /// proto3 `optional`: absent and zero are different values (a Kubernetes pointer field).
    pub optional: bool,
    /// The comment above the field, as for [`Message::description`].
    pub description: &'static str,
}

/// A proto field type. There are no proto enums in `navarch.api.v1` (Kubernetes' enums are strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Float,
    Double,
    Bytes,
    /// Another message of `navarch.api.v1`, by name.
    Message(&'static str),
}

/// Every message, sorted by name.
static MESSAGES: &[Message] = include!(concat!(env!("OUT_DIR"), "/navarch_schema.rs"));

/// Every message of `navarch.api.v1`, sorted by name.
pub fn messages() -> &'static [Message] {
    MESSAGES
}

/// The message called `name` (`"PodSpec"`).
pub fn message(name: &str) -> Option<&'static Message> {
    MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok().map(|i| &MESSAGES[i])
}

/// How a strategic merge patch treats a field (Kubernetes' `patchStrategy` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Lists: merge items (by the merge key, or as a set of primitives without one).
    Merge,
    Replace,
    /// Structs: clear the fields the patch does not name (`DeploymentSpec.strategy`).
    RetainKeys,
    MergeRetainKeys,
}

impl Strategy {
    /// As written in `x-kubernetes-patch-strategy` and in patches' `$patch`/`$retainKeys` handling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::RetainKeys => "retainKeys",
            Strategy::MergeRetainKeys => "merge,retainKeys",
        }
    }
}

/// A field's strategic-merge-patch metadata (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchStrategy {
    pub strategy: Strategy,
    /// The item field that identifies an item of a merged list of objects.
    pub merge_key: Option<&'static str>,
}

/// How server-side apply treats a list (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Items are unique primitives.
    Set,
    /// Items are objects identified by these fields.
    Map(&'static [&'static str]),
}

impl ListType {
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map(_) => "map",
        }
    }
}

/// What proto says only as `string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringFormat {
    /// RFC 3339 with seconds (`metav1.Time`).
    Time,
    /// RFC 3339 with microseconds (`metav1.MicroTime`).
    MicroTime,
    /// Base64 text of bytes (the values of `Secret.data`, `ConfigMap.binaryData`).
    Byte,
}

/// The strategic-merge-patch metadata of `message.field`, if Kubernetes gives it any.
pub fn patch_strategy(message: &str, field: &str) -> Option<PatchStrategy> {
    rule(message, field).and_then(|r| r.patch)
}

/// The list type of the list `message.field`, if Kubernetes declares one.
pub fn list_type(message: &str, field: &str) -> Option<ListType> {
    rule(message, field).and_then(|r| r.list_type)
}

/// Whether Kubernetes marks `message.field` required (in OpenAPI, and always present in its JSON).
pub fn is_required(message: &str, field: &str) -> bool {
    required_fields(message).contains(&field)
}

/// The fields of `message` that Kubernetes marks required, in declaration order.
pub fn required_fields(message: &str) -> &'static [&'static str] {
    REQUIRED.iter().find(|(m, _)| *m == message).map_or(&[], |(_, fields)| fields)
}

/// The format of the string field (or of the string values of the map field) `message.field`.
pub fn string_format(message: &str, field: &str) -> Option<StringFormat> {
    STRING_FORMATS.iter().find(|(m, fields, _)| *m == message && fields.contains(&field)).map(|(_, _, f)| *f)
}

/// Whether server-side apply treats the message `message` as one value, set, replaced and owned as a whole
/// (Kubernetes' `+structType=atomic`, `x-kubernetes-map-type: atomic` on the type).
pub fn is_atomic_struct(message: &str) -> bool {
    ATOMIC_STRUCTS.contains(&message)
}

/// Whether server-side apply treats the `map<string, V>` field `message.field` as one value (Kubernetes'
/// `+mapType=atomic`).
pub fn is_atomic_map(message: &str, field: &str) -> bool {
    ATOMIC_MAPS.contains(&(message, field))
}

/// The default Kubernetes declares for a key of a list map (`+default`), which an item may omit:
/// server-side apply identifies `ports` items without a `protocol` as `"protocol":"TCP"`.
pub fn key_default(message: &str, field: &str) -> Option<&'static str> {
    KEY_DEFAULTS.iter().find(|(m, f, _)| *m == message && *f == field).map(|(_, _, d)| *d)
}

fn rule(message: &str, field: &str) -> Option<&'static FieldRule> {
    FIELD_RULES.iter().find(|r| r.message == message && r.field == field)
}

struct FieldRule {
    message: &'static str,
    field: &'static str,
    list_type: Option<ListType>,
    patch: Option<PatchStrategy>,
}

impl FieldRule {
    const fn patch(self, strategy: Strategy, merge_key: Option<&'static str>) -> FieldRule {
        FieldRule { patch: Some(PatchStrategy { strategy, merge_key }), ..self }
    }
}

const fn atomic(message: &'static str, field: &'static str) -> FieldRule {
    FieldRule { message, field, list_type: Some(ListType::Atomic), patch: None }
}

const fn set(message: &'static str, field: &'static str) -> FieldRule {
    FieldRule { message, field, list_type: Some(ListType::Set), patch: None }
}

const fn map(message: &'static str, field: &'static str, keys: &'static [&'static str]) -> FieldRule {
    FieldRule { message, field, list_type: Some(ListType::Map(keys)), patch: None }
}

/// A field that is not a list.
const fn plain(message: &'static str, field: &'static str) -> FieldRule {
    FieldRule { message, field, list_type: None, patch: None }
}

use Strategy::{Merge, MergeRetainKeys, RetainKeys};

/// By message, then in field declaration order.
#[rustfmt::skip]
static FIELD_RULES: &[FieldRule] = &[
    atomic("AggregationRule", "clusterRoleSelectors"),
    atomic("Capabilities", "add"),
    atomic("Capabilities", "drop"),
    atomic("CephFSPersistentVolumeSource", "monitors"),
    atomic("CephFSVolumeSource", "monitors"),
    atomic("CertificateSigningRequestSpec", "usages"),
    atomic("CertificateSigningRequestSpec", "groups"),
    map("CertificateSigningRequestStatus", "conditions", &["type"]),
    atomic("ClusterRole", "rules"),
    atomic("ClusterRoleBinding", "subjects"),
    atomic("ConfigMapProjection", "items"),
    atomic("ConfigMapVolumeSource", "items"),
    atomic("Container", "command"),
    atomic("Container", "args"),
    map("Container", "ports", &["containerPort", "protocol"]).patch(Merge, Some("containerPort")),
    atomic("Container", "envFrom"),
    map("Container", "env", &["name"]).patch(Merge, Some("name")),
    atomic("Container", "resizePolicy"),
    map("Container", "volumeMounts", &["mountPath"]).patch(Merge, Some("mountPath")),
    map("Container", "volumeDevices", &["devicePath"]).patch(Merge, Some("devicePath")),
    atomic("Container", "restartPolicyRules"),
    atomic("ContainerImage", "names"),
    set("ContainerRestartRuleOnExitCodes", "values"),
    map("ContainerStatus", "volumeMounts", &["mountPath"]).patch(Merge, Some("mountPath")),
    map("ContainerStatus", "allocatedResourcesStatus", &["name"]).patch(Merge, Some("name")),
    atomic("CronJobStatus", "active"),
    map("DaemonSetStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    plain("DeploymentSpec", "strategy").patch(RetainKeys, None),
    map("DeploymentStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("DownwardAPIProjection", "items"),
    atomic("DownwardAPIVolumeSource", "items"),
    atomic("EndpointSubset", "addresses"),
    atomic("EndpointSubset", "notReadyAddresses"),
    atomic("EndpointSubset", "ports"),
    atomic("Endpoints", "subsets"),
    atomic("ExecAction", "command"),
    atomic("FCVolumeSource", "targetWWNs"),
    atomic("FCVolumeSource", "wwids"),
    atomic("FieldSelectorAttributes", "requirements"),
    atomic("FieldSelectorRequirement", "values"),
    atomic("HTTPGetAction", "httpHeaders"),
    atomic("HPAScalingRules", "policies"),
    atomic("HorizontalPodAutoscalerSpec", "metrics"),
    atomic("HorizontalPodAutoscalerStatus", "currentMetrics"),
    map("HorizontalPodAutoscalerStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("HostAlias", "hostnames"),
    atomic("ISCSIPersistentVolumeSource", "portals"),
    atomic("ISCSIVolumeSource", "portals"),
    atomic("JobStatus", "conditions").patch(Merge, Some("type")),
    atomic("LabelSelectorAttributes", "requirements"),
    atomic("LabelSelector", "matchExpressions"),
    atomic("LabelSelectorRequirement", "values"),
    atomic("LimitRangeSpec", "limits"),
    atomic("LinuxContainerUser", "supplementalGroups"),
    atomic("LoadBalancerIngress", "ports"),
    atomic("LoadBalancerStatus", "ingress"),
    atomic("NamespaceSpec", "finalizers"),
    map("NamespaceStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution"),
    atomic("NonResourceRule", "verbs"),
    atomic("NonResourceRule", "nonResourceURLs"),
    set("NodeAllocatableResourceClaimStatus", "containers"),
    map("NodeAllocatableResourceClaimStatus", "mapping", &["name"]).patch(Merge, Some("name")),
    map("NodeAllocatableResourceClaimStatus", "overhead", &["name"]).patch(Merge, Some("name")),
    set("NodePodPreemptionPolicy", "disableResizePreemption"),
    atomic("NodeSelector", "nodeSelectorTerms"),
    atomic("NodeSelectorRequirement", "values"),
    atomic("NodeSelectorTerm", "matchExpressions"),
    atomic("NodeSelectorTerm", "matchFields"),
    set("NodeSpec", "podCIDRs").patch(Merge, None),
    atomic("NodeSpec", "taints"),
    map("NodeStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    map("NodeStatus", "addresses", &["type"]).patch(Merge, Some("type")),
    atomic("NodeStatus", "images"),
    atomic("NodeStatus", "volumesInUse"),
    atomic("NodeStatus", "volumesAttached"),
    atomic("NodeStatus", "runtimeHandlers"),
    atomic("NodeStatus", "declaredFeatures"),
    map("ObjectMeta", "ownerReferences", &["uid"]).patch(Merge, Some("uid")),
    set("ObjectMeta", "finalizers").patch(Merge, None),
    atomic("ObjectMeta", "managedFields"),
    atomic("PersistentVolumeClaimSpec", "accessModes"),
    atomic("PersistentVolumeClaimStatus", "accessModes"),
    map("PersistentVolumeClaimStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("PersistentVolumeSpec", "accessModes"),
    atomic("PersistentVolumeSpec", "mountOptions"),
    atomic("PolicyRule", "verbs"),
    atomic("PolicyRule", "apiGroups"),
    atomic("PolicyRule", "resources"),
    atomic("PolicyRule", "resourceNames"),
    atomic("PolicyRule", "nonResourceURLs"),
    atomic("PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution"),
    atomic("PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution"),
    atomic("PodAffinityTerm", "namespaces"),
    atomic("PodAffinityTerm", "matchLabelKeys"),
    atomic("PodAffinityTerm", "mismatchLabelKeys"),
    atomic("PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"),
    atomic("PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution"),
    map("PodDisruptionBudgetStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("PodDNSConfig", "nameservers"),
    atomic("PodDNSConfig", "searches"),
    atomic("PodDNSConfig", "options"),
    atomic("PodExtendedResourceClaimStatus", "requestMappings"),
    atomic("PodFailurePolicy", "rules"),
    set("PodFailurePolicyOnExitCodesRequirement", "values"),
    atomic("PodFailurePolicyRule", "onPodConditions"),
    atomic("PodSecurityContext", "supplementalGroups"),
    atomic("PodSecurityContext", "sysctls"),
    map("PodSpec", "volumes", &["name"]).patch(MergeRetainKeys, Some("name")),
    map("PodSpec", "initContainers", &["name"]).patch(Merge, Some("name")),
    map("PodSpec", "containers", &["name"]).patch(Merge, Some("name")),
    map("PodSpec", "ephemeralContainers", &["name"]).patch(Merge, Some("name")),
    map("PodSpec", "imagePullSecrets", &["name"]).patch(Merge, Some("name")),
    atomic("PodSpec", "tolerations"),
    map("PodSpec", "hostAliases", &["ip"]).patch(Merge, Some("ip")),
    atomic("PodSpec", "readinessGates"),
    map("PodSpec", "topologySpreadConstraints", &["topologyKey", "whenUnsatisfiable"]).patch(Merge, Some("topologyKey")),
    map("PodSpec", "schedulingGates", &["name"]).patch(Merge, Some("name")),
    map("PodSpec", "resourceClaims", &["name"]).patch(MergeRetainKeys, Some("name")),
    map("PodSpec", "evictionResponders", &["name"]).patch(Merge, Some("name")),
    map("PodStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("PodStatus", "hostIPs").patch(Merge, Some("ip")),
    map("PodStatus", "podIPs", &["ip"]).patch(Merge, Some("ip")),
    atomic("PodStatus", "initContainerStatuses"),
    atomic("PodStatus", "containerStatuses"),
    atomic("PodStatus", "ephemeralContainerStatuses"),
    map("PodStatus", "resourceClaimStatuses", &["name"]).patch(MergeRetainKeys, Some("name")),
    map("PodStatus", "nodeAllocatableResourceClaimStatuses", &["resourceClaimName"]).patch(Merge, Some("resourceClaimName")),
    map("PodStatus", "volumeHealth", &["name"]),
    map("PodVolumeHealth", "healthConditions", &["status", "reason"]).patch(Merge, Some("status")),
    atomic("ProjectedVolumeSource", "sources"),
    atomic("RBDPersistentVolumeSource", "monitors"),
    atomic("RBDVolumeSource", "monitors"),
    map("ReplicaSetStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    map("ReplicationControllerStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("ResourceRule", "verbs"),
    atomic("ResourceRule", "apiGroups"),
    atomic("ResourceRule", "resources"),
    atomic("ResourceRule", "resourceNames"),
    atomic("Role", "rules"),
    atomic("RoleBinding", "subjects"),
    atomic("ResourceQuotaSpec", "scopes"),
    map("ResourceRequirements", "claims", &["name"]),
    map("ResourceStatus", "resources", &["resourceID"]),
    atomic("ScopeSelector", "matchExpressions"),
    atomic("ScopedResourceSelectorRequirement", "values"),
    atomic("SecretProjection", "items"),
    atomic("SecretVolumeSource", "items"),
    map("ServiceAccount", "secrets", &["name"]).patch(Merge, Some("name")),
    atomic("ServiceAccount", "imagePullSecrets"),
    map("ServiceSpec", "ports", &["port", "protocol"]).patch(Merge, Some("port")),
    atomic("ServiceSpec", "clusterIPs"),
    atomic("ServiceSpec", "externalIPs"),
    atomic("ServiceSpec", "loadBalancerSourceRanges"),
    atomic("ServiceSpec", "ipFamilies"),
    map("ServiceStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("StatefulSetSpec", "volumeClaimTemplates"),
    atomic("StorageClass", "mountOptions"),
    atomic("StorageClass", "allowedTopologies"),
    map("StatefulSetStatus", "conditions", &["type"]).patch(Merge, Some("type")),
    atomic("SubjectAccessReviewSpec", "groups"),
    atomic("SubjectRulesReviewStatus", "resourceRules"),
    atomic("SubjectRulesReviewStatus", "nonResourceRules"),
    atomic("SuccessPolicy", "rules"),
    atomic("TokenRequestSpec", "audiences"),
    atomic("TokenReviewSpec", "audiences"),
    atomic("TokenReviewStatus", "audiences"),
    atomic("TopologySelectorLabelRequirement", "values"),
    atomic("TopologySelectorTerm", "matchLabelExpressions"),
    atomic("TopologySpreadConstraint", "matchLabelKeys"),
    set("UncountedTerminatedPods", "succeeded"),
    set("UncountedTerminatedPods", "failed"),
    map("VolumeHealthStatus", "healthConditions", &["status", "reason"]).patch(Merge, Some("status")),
    atomic("UserInfo", "groups"),
    set("VolumeMount", "bindMountOptions"),
];

/// Messages Kubernetes marks `+structType=atomic` (core/v1, meta/v1 and rbac/v1 types), and `ExtraValue`,
/// whose JSON is a list of strings (Kubernetes' `[]string`, an atomic list).
static ATOMIC_STRUCTS: &[&str] = &[
    "ConfigMapKeySelector",
    "EndpointAddress",
    "EndpointPort",
    "EvictionResponder",
    "ExtraValue",
    "FileKeySelector",
    "LabelSelector",
    "LocalObjectReference",
    "NodeSelector",
    "NodeSelectorTerm",
    "ObjectFieldSelector",
    "ObjectReference",
    "OwnerReference",
    "ResourceFieldSelector",
    "RoleRef",
    "ScopeSelector",
    "SecretKeySelector",
    "SecretReference",
    "Subject",
    "TopologySelectorTerm",
    "TypedLocalObjectReference",
];

/// Map fields Kubernetes marks `+mapType=atomic`.
static ATOMIC_MAPS: &[(&str, &str)] =
    &[("PodSpec", "nodeSelector"), ("ReplicationControllerSpec", "selector"), ("ServiceSpec", "selector")];

/// Defaults of list map keys (`+default` in `k8s.io/api`).
static KEY_DEFAULTS: &[(&str, &str, &str)] =
    &[("ContainerPort", "protocol", "TCP"), ("ServicePort", "protocol", "TCP")];

// The table is shared with build.rs, which serializes these fields even when empty.
include!("schema_required.rs");

#[rustfmt::skip]
static STRING_FORMATS: &[(&str, &[&str], StringFormat)] = &[
    ("Condition", &["lastTransitionTime"], StringFormat::Time),
    ("ContainerStateRunning", &["startedAt"], StringFormat::Time),
    ("ContainerStateTerminated", &["startedAt", "finishedAt"], StringFormat::Time),
    ("CronJobStatus", &["lastScheduleTime", "lastSuccessfulTime"], StringFormat::Time),
    ("DaemonSetCondition", &["lastTransitionTime"], StringFormat::Time),
    ("DeploymentCondition", &["lastUpdateTime", "lastTransitionTime"], StringFormat::Time),
    ("Event", &["firstTimestamp", "lastTimestamp"], StringFormat::Time),
    ("HorizontalPodAutoscalerCondition", &["lastTransitionTime"], StringFormat::Time),
    ("HorizontalPodAutoscalerStatus", &["lastScaleTime"], StringFormat::Time),
    ("HorizontalPodAutoscalerV1Status", &["lastScaleTime"], StringFormat::Time),
    ("JobCondition", &["lastProbeTime", "lastTransitionTime"], StringFormat::Time),
    ("JobStatus", &["startTime", "completionTime"], StringFormat::Time),
    ("ManagedFieldsEntry", &["time"], StringFormat::Time),
    ("NamespaceCondition", &["lastTransitionTime"], StringFormat::Time),
    ("NodeCondition", &["lastHeartbeatTime", "lastTransitionTime"], StringFormat::Time),
    ("ObjectMeta", &["creationTimestamp", "deletionTimestamp"], StringFormat::Time),
    ("PersistentVolumeClaimCondition", &["lastProbeTime", "lastTransitionTime"], StringFormat::Time),
    ("PersistentVolumeStatus", &["lastPhaseTransitionTime"], StringFormat::Time),
    ("PodCondition", &["lastProbeTime", "lastTransitionTime"], StringFormat::Time),
    ("PodDisruptionBudgetStatus", &["disruptedPods"], StringFormat::Time),
    ("PodStatus", &["startTime"], StringFormat::Time),
    ("PodVolumeHealth", &["lastTransitionTime"], StringFormat::Time),
    ("ReplicaSetCondition", &["lastTransitionTime"], StringFormat::Time),
    ("ReplicationControllerCondition", &["lastTransitionTime"], StringFormat::Time),
    ("StatefulSetCondition", &["lastTransitionTime"], StringFormat::Time),
    ("Taint", &["timeAdded"], StringFormat::Time),
    ("VolumeHealthStatus", &["lastTransitionTime"], StringFormat::Time),
    ("Event", &["eventTime"], StringFormat::MicroTime),
    ("EventSeries", &["lastObservedTime"], StringFormat::MicroTime),
    ("LeaseSpec", &["acquireTime", "renewTime"], StringFormat::MicroTime),
    ("CertificateSigningRequestCondition", &["lastUpdateTime", "lastTransitionTime"], StringFormat::Time),
    ("TokenRequestStatus", &["expirationTimestamp"], StringFormat::Time),
    ("ConfigMap", &["binaryData"], StringFormat::Byte),
    ("CertificateSigningRequestSpec", &["request"], StringFormat::Byte),
    ("CertificateSigningRequestStatus", &["certificate"], StringFormat::Byte),
    ("Secret", &["data"], StringFormat::Byte),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn field(m: &str, f: &str) -> &'static Field {
        let msg = message(m).unwrap_or_else(|| panic!("no message {m}"));
        msg.field(f).unwrap_or_else(|| panic!("no field {m}.{f}"))
    }

    fn item_message(f: &Field) -> Option<&'static Message> {
        match f.map_value.unwrap_or(f.ty) {
            FieldType::Message(name) => message(name),
            _ => None,
        }
    }

    #[test]
    fn descriptors_are_read() {
        let pod = message("Pod").unwrap();
        assert_eq!(pod.file, "pod");
        assert_eq!(
            pod.fields.iter().map(|f| f.json_name).collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "spec", "status"]
        );
        let containers = field("PodSpec", "containers");
        assert!(containers.repeated);
        assert_eq!(containers.ty, FieldType::Message("Container"));
        let labels = field("ObjectMeta", "labels");
        assert!(!labels.repeated);
        assert_eq!((labels.ty, labels.map_value), (FieldType::String, Some(FieldType::String)));
        assert_eq!(field("NodeStatus", "capacity").map_value, Some(FieldType::Message("Quantity")));
        assert!(field("DeploymentSpec", "replicas").optional);
        assert!(
            field("DeploymentStrategy", "type").description.starts_with("\"Recreate\": delete all old pods")
        );
        // Comment lines are joined into one paragraph.
        assert!(!field("DeploymentSpec", "selector").description.contains('\n'));
        assert_eq!(
            message("Quantity").unwrap().description,
            "A resource amount as written: \"500m\", \"128Mi\", \"1.5Gi\", \"2\"."
        );
        assert!(messages().windows(2).all(|w| w[0].name < w[1].name));
        // Map entries are not messages of their own.
        assert!(messages().iter().all(|m| !m.name.ends_with("Entry") || m.name == "ManagedFieldsEntry"));
    }

    #[test]
    fn every_message_reference_resolves() {
        for m in messages() {
            for f in m.fields {
                for ty in [Some(f.ty), f.map_value].into_iter().flatten() {
                    if let FieldType::Message(name) = ty {
                        assert!(
                            message(name).is_some(),
                            "{}.{} refers to unknown {name}",
                            m.name,
                            f.json_name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn field_rules_name_existing_fields() {
        for (i, r) in FIELD_RULES.iter().enumerate() {
            assert!(
                FIELD_RULES[..i].iter().all(|o| (o.message, o.field) != (r.message, r.field)),
                "{}.{} twice",
                r.message,
                r.field
            );
            let f = field(r.message, r.field);
            let what = format!("{}.{}", r.message, r.field);
            assert_eq!(f.repeated, r.list_type.is_some(), "{what}: list types are for repeated fields only");
            let item = item_message(f);
            if let Some(ListType::Map(keys)) = r.list_type {
                let item = item.unwrap_or_else(|| panic!("{what}: a map list needs object items"));
                for k in keys {
                    assert!(
                        item.field(k).is_some(),
                        "{what}: list map key {k} is not a field of {}",
                        item.name
                    );
                }
            }
            if let Some(PatchStrategy { merge_key: Some(k), .. }) = r.patch {
                let item = item.unwrap_or_else(|| panic!("{what}: a merge key needs object items"));
                assert!(item.field(k).is_some(), "{what}: merge key {k} is not a field of {}", item.name);
            }
            assert!(r.list_type.is_some() || r.patch.is_some(), "{what}: empty rule");
        }
        assert_eq!(
            patch_strategy("PodSpec", "containers"),
            Some(PatchStrategy { strategy: Merge, merge_key: Some("name") })
        );
        assert_eq!(patch_strategy("PodSpec", "volumes").unwrap().strategy.as_str(), "merge,retainKeys");
        assert_eq!(patch_strategy("DeploymentSpec", "strategy").unwrap().strategy, RetainKeys);
        assert_eq!(patch_strategy("PodSpec", "tolerations"), None);
        assert_eq!(list_type("PodSpec", "tolerations"), Some(ListType::Atomic));
        assert_eq!(list_type("Container", "ports"), Some(ListType::Map(&["containerPort", "protocol"])));
        assert_eq!(patch_strategy("Nope", "containers"), None);
    }

    #[test]
    fn required_fields_exist() {
        assert!(REQUIRED.windows(2).all(|w| w[0].0 < w[1].0), "REQUIRED must be sorted and without repeats");
        for (m, fields) in REQUIRED {
            let msg = message(m).unwrap_or_else(|| panic!("no message {m}"));
            for f in *fields {
                assert!(msg.field(f).is_some(), "required {m}.{f} does not exist");
            }
        }
        assert!(is_required("Container", "name"));
        assert!(is_required("OwnerReference", "uid"));
        assert!(is_required("DeploymentSpec", "template"));
        assert!(!is_required("Container", "image"));
        assert!(!is_required("Toleration", "key"));
    }

    #[test]
    fn apply_facts_name_existing_messages_and_fields() {
        for m in ATOMIC_STRUCTS {
            assert!(message(m).is_some(), "atomic struct {m} does not exist");
        }
        assert!(ATOMIC_STRUCTS.windows(2).all(|w| w[0] < w[1]), "ATOMIC_STRUCTS must be sorted");
        for (m, f) in ATOMIC_MAPS {
            assert!(field(m, f).map_value.is_some(), "atomic map {m}.{f} is not a map");
        }
        for (m, f, _) in KEY_DEFAULTS {
            let keyed = FIELD_RULES.iter().any(|r| {
                matches!(r.list_type, Some(ListType::Map(keys)) if keys.contains(f))
                    && item_message(field(r.message, r.field)).is_some_and(|i| i.name == *m)
            });
            assert!(keyed, "{m}.{f} is no list map key");
        }
        assert!(is_atomic_struct("LabelSelector"));
        assert!(!is_atomic_struct("PodSpec"));
        assert!(is_atomic_map("PodSpec", "nodeSelector"));
        assert!(!is_atomic_map("ObjectMeta", "labels"));
        assert_eq!(key_default("ContainerPort", "protocol"), Some("TCP"));
        assert_eq!(key_default("ContainerPort", "containerPort"), None);
    }

    #[test]
    fn string_formats_name_string_fields() {
        for (m, fields, format) in STRING_FORMATS {
            for f in *fields {
                let f = field(m, f);
                let ty = f.map_value.unwrap_or(f.ty);
                assert_eq!(ty, FieldType::String, "{m}.{}: {format:?} needs a string", f.json_name);
            }
        }
        assert_eq!(string_format("ObjectMeta", "creationTimestamp"), Some(StringFormat::Time));
        assert_eq!(string_format("LeaseSpec", "renewTime"), Some(StringFormat::MicroTime));
        assert_eq!(string_format("Secret", "data"), Some(StringFormat::Byte));
        assert_eq!(string_format("ObjectMeta", "name"), None);
    }
}
