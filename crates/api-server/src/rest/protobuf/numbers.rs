//! Kubernetes' protobuf field numbers for navarch's messages: for each message, which upstream field number
//! carries which of navarch's JSON fields.
//!
//! The numbers are facts of Kubernetes' wire format, read from the `generated.proto` files of `k8s.io/api`
//! (core/v1, apps/v1, autoscaling/v1 and v2, batch/v1, coordination/v1, policy/v1, rbac/v1, scheduling/v1,
//! storage/v1, authentication/v1, authorization/v1, certificates/v1) and `k8s.io/apimachinery` (pkg/apis/meta/v1) at their 1.37 development head; Kubernetes
//! never renumbers or reuses a field, so they hold for every release (kubectl 1.32 included). They also
//! agree with the `protobuf:"…"` tags of the Go types.
//!
//! A table is named after the navarch message it decodes (which has the same name upstream), except a few
//! upstream messages that navarch folds into another one (`VolumeSource`, `ProbeHandler`,
//! `PersistentVolumeSource`, `EphemeralContainer`), and autoscaling/v1's shapes, which navarch names with a
//! `V1` (`HorizontalPodAutoscalerV1Spec` is upstream's autoscaling/v1 `HorizontalPodAutoscalerSpec`). An
//! entry's text is one of:
//! - `"name"`: navarch's field `name`; a message value is decoded with the table of its navarch type;
//! - `"name=Table"`: the same, but the message value is decoded with `Table` (upstream's
//!   `PodSpec.ephemeralContainers` holds `EphemeralContainer`s, navarch's holds `Container`s);
//! - `"..Table"`: an embedded Go struct (`json:",inline"`): the message value's fields are decoded with
//!   `Table` into the enclosing object;
//! - `"-name"`: an upstream field navarch does not have (decoding it is an error unless it is empty).
//!
//! `Quantity`, `IntOrString` and `ExtraValue` have no table: they are decoded by hand (their JSON is a
//! string, a number, a list of strings).

/// By table name; each table by field number.
#[rustfmt::skip]
pub static NUMBERS: &[(&str, &[(u32, &str)])] = &[
    ("AWSElasticBlockStoreVolumeSource", &[(1, "volumeID"), (2, "fsType"), (3, "partition"),
        (4, "readOnly")]),
    ("Affinity", &[(1, "nodeAffinity"), (2, "podAffinity"), (3, "podAntiAffinity")]),
    ("AggregationRule", &[(1, "clusterRoleSelectors")]),
    ("AppArmorProfile", &[(1, "type"), (2, "localhostProfile")]),
    ("AttachedVolume", &[(1, "name"), (2, "devicePath")]),
    ("AzureDiskVolumeSource", &[(1, "diskName"), (2, "diskURI"), (3, "cachingMode"), (4, "fsType"),
        (5, "readOnly"), (6, "kind")]),
    ("AzureFilePersistentVolumeSource", &[(1, "secretName"), (2, "shareName"), (3, "readOnly"),
        (4, "secretNamespace")]),
    ("AzureFileVolumeSource", &[(1, "secretName"), (2, "shareName"), (3, "readOnly")]),
    ("BoundObjectReference", &[(1, "kind"), (2, "apiVersion"), (3, "name"), (4, "uid")]),
    ("CSIPersistentVolumeSource", &[(1, "driver"), (2, "volumeHandle"), (3, "readOnly"), (4, "fsType"),
        (5, "volumeAttributes"), (6, "controllerPublishSecretRef"), (7, "nodeStageSecretRef"),
        (8, "nodePublishSecretRef"), (9, "controllerExpandSecretRef"), (10, "nodeExpandSecretRef")]),
    ("CSIVolumeSource", &[(1, "driver"), (2, "readOnly"), (3, "fsType"), (4, "volumeAttributes"),
        (5, "nodePublishSecretRef")]),
    ("Capabilities", &[(1, "add"), (2, "drop")]),
    ("CephFSPersistentVolumeSource", &[(1, "monitors"), (2, "path"), (3, "user"), (4, "secretFile"),
        (5, "secretRef"), (6, "readOnly")]),
    ("CephFSVolumeSource", &[(1, "monitors"), (2, "path"), (3, "user"), (4, "secretFile"),
        (5, "secretRef"), (6, "readOnly")]),
    ("CertificateSigningRequest", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("CertificateSigningRequestCondition", &[(1, "type"), (2, "reason"), (3, "message"),
        (4, "lastUpdateTime"), (5, "lastTransitionTime"), (6, "status")]),
    ("CertificateSigningRequestSpec", &[(1, "request"), (2, "username"), (3, "uid"), (4, "groups"),
        (5, "usages"), (6, "extra"), (7, "signerName"), (8, "expirationSeconds")]),
    ("CertificateSigningRequestStatus", &[(1, "conditions"), (2, "certificate")]),
    ("CinderPersistentVolumeSource", &[(1, "volumeID"), (2, "fsType"), (3, "readOnly"), (4, "secretRef")]),
    ("CinderVolumeSource", &[(1, "volumeID"), (2, "fsType"), (3, "readOnly"), (4, "secretRef")]),
    ("ClientIPConfig", &[(1, "timeoutSeconds")]),
    ("ClusterRole", &[(1, "metadata"), (2, "rules"), (3, "aggregationRule")]),
    ("ClusterRoleBinding", &[(1, "metadata"), (2, "subjects"), (3, "roleRef")]),
    ("ClusterTrustBundleProjection", &[(1, "name"), (2, "signerName"), (3, "labelSelector"),
        (4, "path"), (5, "optional"), (6, "user")]),
    ("Condition", &[(1, "type"), (2, "status"), (3, "observedGeneration"), (4, "lastTransitionTime"),
        (5, "reason"), (6, "message")]),
    ("ConfigMap", &[(1, "metadata"), (2, "data"), (3, "binaryData"), (4, "immutable")]),
    ("ConfigMapEnvSource", &[(1, "..LocalObjectReference"), (2, "optional")]),
    ("ConfigMapKeySelector", &[(1, "..LocalObjectReference"), (2, "key"), (3, "optional")]),
    ("ConfigMapNodeConfigSource", &[(1, "namespace"), (2, "name"), (3, "uid"), (4, "resourceVersion"),
        (5, "kubeletConfigKey")]),
    ("ConfigMapProjection", &[(1, "..LocalObjectReference"), (2, "items"), (4, "optional")]),
    ("ConfigMapVolumeSource", &[(1, "..LocalObjectReference"), (2, "items"), (3, "defaultMode"),
        (4, "optional"), (5, "defaultUser")]),
    ("Container", &[(1, "name"), (2, "image"), (3, "command"), (4, "args"), (5, "workingDir"),
        (6, "ports"), (7, "env"), (8, "resources"), (9, "volumeMounts"), (10, "livenessProbe"),
        (11, "readinessProbe"), (12, "lifecycle"), (13, "terminationMessagePath"),
        (14, "imagePullPolicy"), (15, "securityContext"), (16, "stdin"), (17, "stdinOnce"), (18, "tty"),
        (19, "envFrom"), (20, "terminationMessagePolicy"), (21, "volumeDevices"), (22, "startupProbe"),
        (23, "resizePolicy"), (24, "restartPolicy"), (25, "restartPolicyRules")]),
    ("ContainerExtendedResourceRequest", &[(1, "containerName"), (2, "resourceName"), (3, "requestName")]),
    ("ContainerImage", &[(1, "names"), (2, "sizeBytes")]),
    ("ContainerMetrics", &[(1, "name"), (2, "usage")]),
    ("ContainerPort", &[(1, "name"), (2, "hostPort"), (3, "containerPort"), (4, "protocol"),
        (5, "hostIP")]),
    ("ContainerResizePolicy", &[(1, "resourceName"), (2, "restartPolicy")]),
    ("ContainerResourceMetricSource", &[(1, "name"), (2, "target"), (3, "container")]),
    ("ContainerResourceMetricStatus", &[(1, "name"), (2, "current"), (3, "container")]),
    ("ContainerRestartRule", &[(1, "action"), (2, "exitCodes")]),
    ("ContainerRestartRuleOnExitCodes", &[(1, "operator"), (2, "values")]),
    ("ContainerState", &[(1, "waiting"), (2, "running"), (3, "terminated")]),
    ("ContainerStateRunning", &[(1, "startedAt")]),
    ("ContainerStateTerminated", &[(1, "exitCode"), (2, "signal"), (3, "reason"), (4, "message"),
        (5, "startedAt"), (6, "finishedAt"), (7, "containerID")]),
    ("ContainerStateWaiting", &[(1, "reason"), (2, "message")]),
    ("ContainerStatus", &[(1, "name"), (2, "state"), (3, "lastState"), (4, "ready"),
        (5, "restartCount"), (6, "image"), (7, "imageID"), (8, "containerID"), (9, "started"),
        (10, "allocatedResources"), (11, "resources"), (12, "volumeMounts"), (13, "user"),
        (14, "allocatedResourcesStatus"), (15, "stopSignal")]),
    ("ContainerUser", &[(1, "linux")]),
    ("ControllerRevision", &[(1, "metadata"), (2, "data"), (3, "revision")]),
    ("CronJob", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("CronJobSpec", &[(1, "schedule"), (2, "startingDeadlineSeconds"), (3, "concurrencyPolicy"),
        (4, "suspend"), (5, "jobTemplate"), (6, "successfulJobsHistoryLimit"),
        (7, "failedJobsHistoryLimit"), (8, "timeZone")]),
    ("CronJobStatus", &[(1, "active"), (4, "lastScheduleTime"), (5, "lastSuccessfulTime")]),
    ("CrossVersionObjectReference", &[(1, "kind"), (2, "name"), (3, "apiVersion")]),
    ("DaemonEndpoint", &[(1, "Port")]),
    ("DaemonSet", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("DaemonSetCondition", &[(1, "type"), (2, "status"), (3, "lastTransitionTime"), (4, "reason"),
        (5, "message")]),
    ("DaemonSetSpec", &[(1, "selector"), (2, "template"), (3, "updateStrategy"), (4, "minReadySeconds"),
        (6, "revisionHistoryLimit")]),
    ("DaemonSetStatus", &[(1, "currentNumberScheduled"), (2, "numberMisscheduled"),
        (3, "desiredNumberScheduled"), (4, "numberReady"), (5, "observedGeneration"),
        (6, "updatedNumberScheduled"), (7, "numberAvailable"), (8, "numberUnavailable"),
        (9, "collisionCount"), (10, "conditions")]),
    ("DaemonSetUpdateStrategy", &[(1, "type"), (2, "rollingUpdate")]),
    ("DeleteOptions", &[(1, "gracePeriodSeconds"), (2, "preconditions"), (3, "orphanDependents"),
        (4, "propagationPolicy"), (5, "dryRun"), (6, "ignoreStoreReadErrorWithClusterBreakingPotential")]),
    ("Deployment", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("DeploymentCondition", &[(1, "type"), (2, "status"), (4, "reason"), (5, "message"),
        (6, "lastUpdateTime"), (7, "lastTransitionTime")]),
    ("DeploymentSpec", &[(1, "replicas"), (2, "selector"), (3, "template"), (4, "strategy"),
        (5, "minReadySeconds"), (6, "revisionHistoryLimit"), (7, "paused"),
        (9, "progressDeadlineSeconds")]),
    ("DeploymentStatus", &[(1, "observedGeneration"), (2, "replicas"), (3, "updatedReplicas"),
        (4, "availableReplicas"), (5, "unavailableReplicas"), (6, "conditions"), (7, "readyReplicas"),
        (8, "collisionCount"), (9, "terminatingReplicas")]),
    ("DeploymentStrategy", &[(1, "type"), (2, "rollingUpdate")]),
    ("DownwardAPIProjection", &[(1, "items")]),
    ("DownwardAPIVolumeFile", &[(1, "path"), (2, "fieldRef"), (3, "resourceFieldRef"), (4, "mode"),
        (5, "user")]),
    ("DownwardAPIVolumeSource", &[(1, "items"), (2, "defaultMode"), (3, "defaultUser")]),
    ("EmptyDirVolumeSource", &[(1, "medium"), (2, "sizeLimit"), (3, "mode")]),
    ("EndpointAddress", &[(1, "ip"), (2, "targetRef"), (3, "hostname"), (4, "nodeName")]),
    ("EndpointPort", &[(1, "name"), (2, "port"), (3, "protocol"), (4, "appProtocol")]),
    ("EndpointSubset", &[(1, "addresses"), (2, "notReadyAddresses"), (3, "ports")]),
    ("Endpoints", &[(1, "metadata"), (2, "subsets")]),
    ("EnvFromSource", &[(1, "prefix"), (2, "configMapRef"), (3, "secretRef")]),
    ("EnvVar", &[(1, "name"), (2, "value"), (3, "valueFrom")]),
    ("EnvVarSource", &[(1, "fieldRef"), (2, "resourceFieldRef"), (3, "configMapKeyRef"),
        (4, "secretKeyRef"), (5, "fileKeyRef")]),
    ("EphemeralContainer", &[(1, "..Container"), (2, "targetContainerName")]),
    ("EphemeralVolumeSource", &[(1, "volumeClaimTemplate")]),
    ("Event", &[(1, "metadata"), (2, "involvedObject"), (3, "reason"), (4, "message"), (5, "source"),
        (6, "firstTimestamp"), (7, "lastTimestamp"), (8, "count"), (9, "type"), (10, "eventTime"),
        (11, "series"), (12, "action"), (13, "related"), (14, "reportingComponent"),
        (15, "reportingInstance")]),
    ("EventSeries", &[(1, "count"), (2, "lastObservedTime")]),
    ("EventSource", &[(1, "component"), (2, "host")]),
    ("Eviction", &[(1, "metadata"), (2, "deleteOptions")]),
    ("EvictionResponder", &[(1, "name"), (2, "priority")]),
    ("ExecAction", &[(1, "command")]),
    ("ExternalMetricSource", &[(1, "metric"), (2, "target")]),
    ("ExternalMetricStatus", &[(1, "metric"), (2, "current")]),
    ("FCVolumeSource", &[(1, "targetWWNs"), (2, "lun"), (3, "fsType"), (4, "readOnly"), (5, "wwids")]),
    ("FieldSelectorAttributes", &[(1, "rawSelector"), (2, "requirements")]),
    ("FieldSelectorRequirement", &[(1, "key"), (2, "operator"), (3, "values")]),
    ("FileKeySelector", &[(1, "volumeName"), (2, "path"), (3, "key"), (4, "optional")]),
    ("FlexPersistentVolumeSource", &[(1, "driver"), (2, "fsType"), (3, "secretRef"), (4, "readOnly"),
        (5, "options")]),
    ("FlexVolumeSource", &[(1, "driver"), (2, "fsType"), (3, "secretRef"), (4, "readOnly"),
        (5, "options")]),
    ("FlockerVolumeSource", &[(1, "datasetName"), (2, "datasetUUID")]),
    ("GCEPersistentDiskVolumeSource", &[(1, "pdName"), (2, "fsType"), (3, "partition"), (4, "readOnly")]),
    ("GRPCAction", &[(1, "port"), (2, "service"), (3, "mode")]),
    ("GitRepoVolumeSource", &[(1, "repository"), (2, "revision"), (3, "directory")]),
    ("GlusterfsPersistentVolumeSource", &[(1, "endpoints"), (2, "path"), (3, "readOnly"),
        (4, "endpointsNamespace")]),
    ("GlusterfsVolumeSource", &[(1, "endpoints"), (2, "path"), (3, "readOnly")]),
    ("HPAScalingPolicy", &[(1, "type"), (2, "value"), (3, "periodSeconds")]),
    ("HPAScalingRules", &[(1, "selectPolicy"), (2, "policies"), (3, "stabilizationWindowSeconds"), (4, "-tolerance")]),
    ("HTTPGetAction", &[(1, "path"), (2, "port"), (3, "host"), (4, "scheme"), (5, "httpHeaders"),
        (6, "protocol")]),
    ("HTTPHeader", &[(1, "name"), (2, "value")]),
    ("HorizontalPodAutoscaler", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("HorizontalPodAutoscalerBehavior", &[(1, "scaleUp"), (2, "scaleDown")]),
    ("HorizontalPodAutoscalerCondition", &[(1, "type"), (2, "status"), (3, "lastTransitionTime"), (4, "reason"),
        (5, "message")]),
    ("HorizontalPodAutoscalerSpec", &[(1, "scaleTargetRef"), (2, "minReplicas"), (3, "maxReplicas"),
        (4, "metrics"), (5, "behavior")]),
    ("HorizontalPodAutoscalerStatus", &[(1, "observedGeneration"), (2, "lastScaleTime"), (3, "currentReplicas"),
        (4, "desiredReplicas"), (5, "currentMetrics"), (6, "conditions")]),
    ("HorizontalPodAutoscalerV1", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("HorizontalPodAutoscalerV1Spec", &[(1, "scaleTargetRef"), (2, "minReplicas"), (3, "maxReplicas"),
        (4, "targetCPUUtilizationPercentage")]),
    ("HorizontalPodAutoscalerV1Status", &[(1, "observedGeneration"), (2, "lastScaleTime"), (3, "currentReplicas"),
        (4, "desiredReplicas"), (5, "currentCPUUtilizationPercentage")]),
    ("HostAlias", &[(1, "ip"), (2, "hostnames")]),
    ("HostIP", &[(1, "ip")]),
    ("HostPathVolumeSource", &[(1, "path"), (2, "type")]),
    ("ISCSIPersistentVolumeSource", &[(1, "targetPortal"), (2, "iqn"), (3, "lun"),
        (4, "iscsiInterface"), (5, "fsType"), (6, "readOnly"), (7, "portals"), (8, "chapAuthDiscovery"),
        (10, "secretRef"), (11, "chapAuthSession"), (12, "initiatorName")]),
    ("ISCSIVolumeSource", &[(1, "targetPortal"), (2, "iqn"), (3, "lun"), (4, "iscsiInterface"),
        (5, "fsType"), (6, "readOnly"), (7, "portals"), (8, "chapAuthDiscovery"), (10, "secretRef"),
        (11, "chapAuthSession"), (12, "initiatorName")]),
    ("ImageVolumeSource", &[(1, "reference"), (2, "pullPolicy")]),
    ("ImageVolumeStatus", &[(1, "imageRef")]),
    ("Job", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("JobCondition", &[(1, "type"), (2, "status"), (3, "lastProbeTime"), (4, "lastTransitionTime"),
        (5, "reason"), (6, "message")]),
    ("JobSpec", &[(1, "parallelism"), (2, "completions"), (3, "activeDeadlineSeconds"), (4, "selector"),
        (5, "manualSelector"), (6, "template"), (7, "backoffLimit"), (8, "ttlSecondsAfterFinished"),
        (9, "completionMode"), (10, "suspend"), (11, "podFailurePolicy"), (12, "backoffLimitPerIndex"),
        (13, "maxFailedIndexes"), (14, "podReplacementPolicy"), (15, "managedBy"),
        (16, "successPolicy"), (17, "-scheduling")]),
    ("JobStatus", &[(1, "conditions"), (2, "startTime"), (3, "completionTime"), (4, "active"),
        (5, "succeeded"), (6, "failed"), (7, "completedIndexes"), (8, "uncountedTerminatedPods"),
        (9, "ready"), (10, "failedIndexes"), (11, "terminating")]),
    ("JobTemplateSpec", &[(1, "metadata"), (2, "spec")]),
    ("KeyToPath", &[(1, "key"), (2, "path"), (3, "mode"), (4, "user")]),
    ("LabelSelector", &[(1, "matchLabels"), (2, "matchExpressions")]),
    ("LabelSelectorAttributes", &[(1, "rawSelector"), (2, "requirements")]),
    ("LabelSelectorRequirement", &[(1, "key"), (2, "operator"), (3, "values")]),
    ("Lease", &[(1, "metadata"), (2, "spec")]),
    ("LeaseSpec", &[(1, "holderIdentity"), (2, "leaseDurationSeconds"), (3, "acquireTime"),
        (4, "renewTime"), (5, "leaseTransitions"), (6, "strategy"), (7, "preferredHolder")]),
    ("Lifecycle", &[(1, "postStart"), (2, "preStop"), (3, "stopSignal")]),
    ("LifecycleHandler", &[(1, "exec"), (2, "httpGet"), (3, "tcpSocket"), (4, "sleep")]),
    ("LimitRange", &[(1, "metadata"), (2, "spec")]),
    ("LimitRangeItem", &[(1, "type"), (2, "max"), (3, "min"), (4, "default"), (5, "defaultRequest"),
        (6, "maxLimitRequestRatio")]),
    ("LimitRangeSpec", &[(1, "limits")]),
    ("LinuxContainerUser", &[(1, "uid"), (2, "gid"), (3, "supplementalGroups")]),
    ("LoadBalancerIngress", &[(1, "ip"), (2, "hostname"), (3, "ipMode"), (4, "ports")]),
    ("LoadBalancerStatus", &[(1, "ingress")]),
    ("LocalObjectReference", &[(1, "name")]),
    ("LocalSubjectAccessReview", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("LocalVolumeSource", &[(1, "path"), (2, "fsType")]),
    ("ManagedFieldsEntry", &[(1, "manager"), (2, "operation"), (3, "apiVersion"), (4, "time"),
        (6, "fieldsType"), (7, "fieldsV1"), (8, "subresource")]),
    ("MetricIdentifier", &[(1, "name"), (2, "selector")]),
    ("MetricSpec", &[(1, "type"), (2, "object"), (3, "pods"), (4, "resource"), (5, "external"),
        (7, "containerResource")]),
    ("MetricStatus", &[(1, "type"), (2, "object"), (3, "pods"), (4, "resource"), (5, "external"),
        (7, "containerResource")]),
    ("MetricTarget", &[(1, "type"), (2, "value"), (3, "averageValue"), (4, "averageUtilization")]),
    ("MetricValueStatus", &[(1, "value"), (2, "averageValue"), (3, "averageUtilization")]),
    ("ModifyVolumeStatus", &[(1, "targetVolumeAttributesClassName"), (2, "status")]),
    ("NFSVolumeSource", &[(1, "server"), (2, "path"), (3, "readOnly")]),
    ("Namespace", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("NamespaceCondition", &[(1, "type"), (2, "status"), (4, "lastTransitionTime"), (5, "reason"),
        (6, "message")]),
    ("NamespaceSpec", &[(1, "finalizers")]),
    ("NamespaceStatus", &[(1, "phase"), (2, "conditions")]),
    ("Node", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("NodeAddress", &[(1, "type"), (2, "address")]),
    ("NodeAffinity", &[(1, "requiredDuringSchedulingIgnoredDuringExecution"),
        (2, "preferredDuringSchedulingIgnoredDuringExecution")]),
    ("NodeAllocatableMappedResources", &[(1, "name"), (2, "quantity")]),
    ("NodeAllocatableOverheadResources", &[(1, "name"), (2, "perPod"), (3, "perContainer")]),
    ("NodeAllocatableResourceClaimStatus", &[(1, "resourceClaimName"), (2, "containers"),
        (4, "mapping"), (5, "overhead")]),
    ("NodeCondition", &[(1, "type"), (2, "status"), (3, "lastHeartbeatTime"), (4, "lastTransitionTime"),
        (5, "reason"), (6, "message")]),
    ("NodeConfigSource", &[(2, "configMap")]),
    ("NodeConfigStatus", &[(1, "assigned"), (2, "active"), (3, "lastKnownGood"), (4, "error")]),
    ("NodeDaemonEndpoints", &[(1, "kubeletEndpoint")]),
    ("NodeFeatures", &[(1, "supplementalGroupsPolicy")]),
    ("NodeMetrics", &[(1, "metadata"), (2, "timestamp"), (3, "window"), (4, "usage")]),
    ("NodePodPreemptionPolicy", &[(1, "disableResizePreemption")]),
    ("NodeRuntimeHandler", &[(1, "name"), (2, "features")]),
    ("NodeRuntimeHandlerFeatures", &[(1, "recursiveReadOnlyMounts"), (2, "userNamespaces")]),
    ("NodeSelector", &[(1, "nodeSelectorTerms")]),
    ("NodeSelectorRequirement", &[(1, "key"), (2, "operator"), (3, "values")]),
    ("NodeSelectorTerm", &[(1, "matchExpressions"), (2, "matchFields")]),
    ("NodeSpec", &[(1, "podCIDR"), (2, "externalID"), (3, "providerID"), (4, "unschedulable"),
        (5, "taints"), (6, "configSource"), (7, "podCIDRs"), (8, "podPreemptionPolicy")]),
    ("NodeStatus", &[(1, "capacity"), (2, "allocatable"), (3, "phase"), (4, "conditions"),
        (5, "addresses"), (6, "daemonEndpoints"), (7, "nodeInfo"), (8, "images"), (9, "volumesInUse"),
        (10, "volumesAttached"), (11, "config"), (12, "runtimeHandlers"), (13, "features"),
        (14, "declaredFeatures")]),
    ("NodeSwapStatus", &[(1, "capacity")]),
    ("NodeSystemInfo", &[(1, "machineID"), (2, "systemUUID"), (3, "bootID"), (4, "kernelVersion"),
        (5, "osImage"), (6, "containerRuntimeVersion"), (7, "kubeletVersion"), (8, "kubeProxyVersion"),
        (9, "operatingSystem"), (10, "architecture"), (11, "swap")]),
    ("NonResourceAttributes", &[(1, "path"), (2, "verb")]),
    ("NonResourceRule", &[(1, "verbs"), (2, "nonResourceURLs")]),
    ("ObjectFieldSelector", &[(1, "apiVersion"), (2, "fieldPath")]),
    ("ObjectMeta", &[(1, "name"), (2, "generateName"), (3, "namespace"), (4, "selfLink"), (5, "uid"),
        (6, "resourceVersion"), (7, "generation"), (8, "creationTimestamp"), (9, "deletionTimestamp"),
        (10, "deletionGracePeriodSeconds"), (11, "labels"), (12, "annotations"),
        (13, "ownerReferences"), (14, "finalizers"), (17, "managedFields")]),
    ("ObjectMetricSource", &[(1, "describedObject"), (2, "target"), (3, "metric")]),
    ("ObjectMetricStatus", &[(1, "metric"), (2, "current"), (3, "describedObject")]),
    ("ObjectReference", &[(1, "kind"), (2, "namespace"), (3, "name"), (4, "uid"), (5, "apiVersion"),
        (6, "resourceVersion"), (7, "fieldPath")]),
    ("OwnerReference", &[(1, "kind"), (3, "name"), (4, "uid"), (5, "apiVersion"), (6, "controller"),
        (7, "blockOwnerDeletion")]),
    ("PersistentVolume", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("PersistentVolumeClaim", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("PersistentVolumeClaimCondition", &[(1, "type"), (2, "status"), (3, "lastProbeTime"),
        (4, "lastTransitionTime"), (5, "reason"), (6, "message")]),
    ("PersistentVolumeClaimSpec", &[(1, "accessModes"), (2, "resources"), (3, "volumeName"),
        (4, "selector"), (5, "storageClassName"), (6, "volumeMode"), (7, "dataSource"),
        (8, "dataSourceRef"), (9, "volumeAttributesClassName")]),
    ("PersistentVolumeClaimStatus", &[(1, "phase"), (2, "accessModes"), (3, "capacity"),
        (4, "conditions"), (5, "allocatedResources"), (7, "allocatedResourceStatuses"),
        (8, "currentVolumeAttributesClassName"), (9, "modifyVolumeStatus"), (10, "healthStatus")]),
    ("PersistentVolumeClaimTemplate", &[(1, "metadata"), (2, "spec")]),
    ("PersistentVolumeClaimVolumeSource", &[(1, "claimName"), (2, "readOnly")]),
    ("PersistentVolumeSource", &[(1, "gcePersistentDisk"), (2, "awsElasticBlockStore"), (3, "hostPath"),
        (4, "glusterfs"), (5, "nfs"), (6, "rbd"), (7, "iscsi"), (8, "cinder"), (9, "cephfs"),
        (10, "fc"), (11, "flocker"), (12, "flexVolume"), (13, "azureFile"), (14, "vsphereVolume"),
        (15, "quobyte"), (16, "azureDisk"), (17, "photonPersistentDisk"), (18, "portworxVolume"),
        (19, "scaleIO"), (20, "local"), (21, "storageos"), (22, "csi")]),
    ("PersistentVolumeSpec", &[(1, "capacity"), (2, "..PersistentVolumeSource"), (3, "accessModes"),
        (4, "claimRef"), (5, "persistentVolumeReclaimPolicy"), (6, "storageClassName"),
        (7, "mountOptions"), (8, "volumeMode"), (9, "nodeAffinity"), (10, "volumeAttributesClassName")]),
    ("PersistentVolumeStatus", &[(1, "phase"), (2, "message"), (3, "reason"),
        (4, "lastPhaseTransitionTime")]),
    ("PhotonPersistentDiskVolumeSource", &[(1, "pdID"), (2, "fsType")]),
    ("Pod", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("PodAffinity", &[(1, "requiredDuringSchedulingIgnoredDuringExecution"),
        (2, "preferredDuringSchedulingIgnoredDuringExecution")]),
    ("PodAffinityTerm", &[(1, "labelSelector"), (2, "namespaces"), (3, "topologyKey"),
        (4, "namespaceSelector"), (5, "matchLabelKeys"), (6, "mismatchLabelKeys")]),
    ("PodAntiAffinity", &[(1, "requiredDuringSchedulingIgnoredDuringExecution"),
        (2, "preferredDuringSchedulingIgnoredDuringExecution")]),
    ("PodCertificateProjection", &[(1, "signerName"), (2, "keyType"), (3, "maxExpirationSeconds"),
        (4, "credentialBundlePath"), (5, "keyPath"), (6, "certificateChainPath"),
        (7, "userAnnotations"), (8, "user")]),
    ("PodCondition", &[(1, "type"), (2, "status"), (3, "lastProbeTime"), (4, "lastTransitionTime"),
        (5, "reason"), (6, "message"), (7, "observedGeneration")]),
    ("PodDNSConfig", &[(1, "nameservers"), (2, "searches"), (3, "options")]),
    ("PodDNSConfigOption", &[(1, "name"), (2, "value")]),
    ("PodDisruptionBudget", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("PodDisruptionBudgetSpec", &[(1, "minAvailable"), (2, "selector"), (3, "maxUnavailable"),
        (4, "unhealthyPodEvictionPolicy")]),
    ("PodDisruptionBudgetStatus", &[(1, "observedGeneration"), (2, "disruptedPods"),
        (3, "disruptionsAllowed"), (4, "currentHealthy"), (5, "desiredHealthy"), (6, "expectedPods"),
        (7, "conditions")]),
    ("PodExtendedResourceClaimStatus", &[(1, "requestMappings"), (2, "resourceClaimName")]),
    ("PodFailurePolicy", &[(1, "rules")]),
    ("PodFailurePolicyOnExitCodesRequirement", &[(1, "containerName"), (2, "operator"), (3, "values")]),
    ("PodFailurePolicyOnPodConditionsPattern", &[(1, "type"), (2, "status")]),
    ("PodFailurePolicyRule", &[(1, "action"), (2, "onExitCodes"), (3, "onPodConditions")]),
    ("PodIP", &[(1, "ip")]),
    ("PodMetrics", &[(1, "metadata"), (2, "timestamp"), (3, "window"), (4, "containers")]),
    ("PodOS", &[(1, "name")]),
    ("PodReadinessGate", &[(1, "conditionType")]),
    ("PodResourceClaim", &[(1, "name"), (3, "resourceClaimName"), (4, "resourceClaimTemplateName")]),
    ("PodResourceClaimStatus", &[(1, "name"), (2, "resourceClaimName")]),
    ("PodSchedulingGate", &[(1, "name")]),
    ("PodSchedulingGroup", &[(1, "podGroupName")]),
    ("PodSecurityContext", &[(1, "seLinuxOptions"), (2, "runAsUser"), (3, "runAsNonRoot"),
        (4, "supplementalGroups"), (5, "fsGroup"), (6, "runAsGroup"), (7, "sysctls"),
        (8, "windowsOptions"), (9, "fsGroupChangePolicy"), (10, "seccompProfile"),
        (11, "appArmorProfile"), (12, "supplementalGroupsPolicy"), (13, "seLinuxChangePolicy")]),
    ("PodSpec", &[(1, "volumes"), (2, "containers"), (3, "restartPolicy"),
        (4, "terminationGracePeriodSeconds"), (5, "activeDeadlineSeconds"), (6, "dnsPolicy"),
        (7, "nodeSelector"), (8, "serviceAccountName"), (9, "serviceAccount"), (10, "nodeName"),
        (11, "hostNetwork"), (12, "hostPID"), (13, "hostIPC"), (14, "securityContext"),
        (15, "imagePullSecrets"), (16, "hostname"), (17, "subdomain"), (18, "affinity"),
        (19, "schedulerName"), (20, "initContainers"), (21, "automountServiceAccountToken"),
        (22, "tolerations"), (23, "hostAliases"), (24, "priorityClassName"), (25, "priority"),
        (26, "dnsConfig"), (27, "shareProcessNamespace"), (28, "readinessGates"),
        (29, "runtimeClassName"), (30, "enableServiceLinks"), (31, "preemptionPolicy"),
        (32, "overhead"), (33, "topologySpreadConstraints"),
        (34, "ephemeralContainers=EphemeralContainer"), (35, "setHostnameAsFQDN"), (36, "os"),
        (37, "hostUsers"), (38, "schedulingGates"), (39, "resourceClaims"), (40, "resources"),
        (41, "hostnameOverride"), (43, "schedulingGroup"), (44, "evictionResponders")]),
    ("PodStatus", &[(1, "phase"), (2, "conditions"), (3, "message"), (4, "reason"), (5, "hostIP"),
        (6, "podIP"), (7, "startTime"), (8, "containerStatuses"), (9, "qosClass"),
        (10, "initContainerStatuses"), (11, "nominatedNodeName"), (12, "podIPs"),
        (13, "ephemeralContainerStatuses"), (14, "resize"), (15, "resourceClaimStatuses"),
        (16, "hostIPs"), (17, "observedGeneration"), (18, "extendedResourceClaimStatus"),
        (19, "allocatedResources"), (20, "resources"), (21, "nodeAllocatableResourceClaimStatuses"),
        (22, "volumeHealth")]),
    ("PodTemplate", &[(1, "metadata"), (2, "template")]),
    ("PodTemplateSpec", &[(1, "metadata"), (2, "spec")]),
    ("PodVolumeHealth", &[(1, "name"), (2, "healthConditions"), (3, "lastTransitionTime")]),
    ("PodsMetricSource", &[(1, "metric"), (2, "target")]),
    ("PodsMetricStatus", &[(1, "metric"), (2, "current")]),
    ("PolicyRule", &[(1, "verbs"), (2, "apiGroups"), (3, "resources"), (4, "resourceNames"),
        (5, "nonResourceURLs")]),
    ("PortStatus", &[(1, "port"), (2, "protocol"), (3, "error")]),
    ("PortworxVolumeSource", &[(1, "volumeID"), (2, "fsType"), (3, "readOnly")]),
    ("Preconditions", &[(1, "uid"), (2, "resourceVersion")]),
    ("PreferredSchedulingTerm", &[(1, "weight"), (2, "preference")]),
    ("PriorityClass", &[(1, "metadata"), (2, "value"), (3, "globalDefault"), (4, "description"),
        (5, "preemptionPolicy")]),
    ("Probe", &[(1, "..ProbeHandler"), (2, "initialDelaySeconds"), (3, "timeoutSeconds"),
        (4, "periodSeconds"), (5, "successThreshold"), (6, "failureThreshold"),
        (7, "terminationGracePeriodSeconds")]),
    ("ProbeHandler", &[(1, "exec"), (2, "httpGet"), (3, "tcpSocket"), (4, "grpc")]),
    ("ProjectedVolumeSource", &[(1, "sources"), (2, "defaultMode"), (3, "defaultUser")]),
    ("QuobyteVolumeSource", &[(1, "registry"), (2, "volume"), (3, "readOnly"), (4, "user"),
        (5, "group"), (6, "tenant")]),
    ("RBDPersistentVolumeSource", &[(1, "monitors"), (2, "image"), (3, "fsType"), (4, "pool"),
        (5, "user"), (6, "keyring"), (7, "secretRef"), (8, "readOnly")]),
    ("RBDVolumeSource", &[(1, "monitors"), (2, "image"), (3, "fsType"), (4, "pool"), (5, "user"),
        (6, "keyring"), (7, "secretRef"), (8, "readOnly")]),
    ("ReplicaSet", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("ReplicaSetCondition", &[(1, "type"), (2, "status"), (3, "lastTransitionTime"), (4, "reason"),
        (5, "message")]),
    ("ReplicaSetSpec", &[(1, "replicas"), (2, "selector"), (3, "template"), (4, "minReadySeconds")]),
    ("ReplicaSetStatus", &[(1, "replicas"), (2, "fullyLabeledReplicas"), (3, "observedGeneration"),
        (4, "readyReplicas"), (5, "availableReplicas"), (6, "conditions"), (7, "terminatingReplicas")]),
    ("ReplicationController", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("ReplicationControllerCondition", &[(1, "type"), (2, "status"), (3, "lastTransitionTime"),
        (4, "reason"), (5, "message")]),
    ("ReplicationControllerSpec", &[(1, "replicas"), (2, "selector"), (3, "template"),
        (4, "minReadySeconds")]),
    ("ReplicationControllerStatus", &[(1, "replicas"), (2, "fullyLabeledReplicas"),
        (3, "observedGeneration"), (4, "readyReplicas"), (5, "availableReplicas"), (6, "conditions")]),
    ("ResourceAttributes", &[(1, "namespace"), (2, "verb"), (3, "group"), (4, "version"),
        (5, "resource"), (6, "subresource"), (7, "name"), (8, "fieldSelector"), (9, "labelSelector")]),
    ("ResourceClaim", &[(1, "name"), (2, "request")]),
    ("ResourceFieldSelector", &[(1, "containerName"), (2, "resource"), (3, "divisor")]),
    ("ResourceHealth", &[(1, "resourceID"), (2, "health"), (6, "message")]),
    ("ResourceMetricSource", &[(1, "name"), (2, "target")]),
    ("ResourceMetricStatus", &[(1, "name"), (2, "current")]),
    ("ResourceQuota", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("ResourceQuotaSpec", &[(1, "hard"), (2, "scopes"), (3, "scopeSelector")]),
    ("ResourceQuotaStatus", &[(1, "hard"), (2, "used")]),
    ("ResourceRequirements", &[(1, "limits"), (2, "requests"), (3, "claims")]),
    ("ResourceRule", &[(1, "verbs"), (2, "apiGroups"), (3, "resources"), (4, "resourceNames")]),
    ("ResourceStatus", &[(1, "name"), (2, "resources")]),
    ("Role", &[(1, "metadata"), (2, "rules")]),
    ("RoleBinding", &[(1, "metadata"), (2, "subjects"), (3, "roleRef")]),
    ("RoleRef", &[(1, "apiGroup"), (2, "kind"), (3, "name")]),
    ("RollingUpdateDaemonSet", &[(1, "maxUnavailable"), (2, "maxSurge")]),
    ("RollingUpdateDeployment", &[(1, "maxUnavailable"), (2, "maxSurge")]),
    ("RollingUpdateStatefulSetStrategy", &[(1, "partition"), (2, "maxUnavailable")]),
    ("SELinuxOptions", &[(1, "user"), (2, "role"), (3, "type"), (4, "level")]),
    ("ScaleIOPersistentVolumeSource", &[(1, "gateway"), (2, "system"), (3, "secretRef"),
        (4, "sslEnabled"), (5, "protectionDomain"), (6, "storagePool"), (7, "storageMode"),
        (8, "volumeName"), (9, "fsType"), (10, "readOnly")]),
    ("ScaleIOVolumeSource", &[(1, "gateway"), (2, "system"), (3, "secretRef"), (4, "sslEnabled"),
        (5, "protectionDomain"), (6, "storagePool"), (7, "storageMode"), (8, "volumeName"),
        (9, "fsType"), (10, "readOnly")]),
    ("ScopeSelector", &[(1, "matchExpressions")]),
    ("ScopedResourceSelectorRequirement", &[(1, "scopeName"), (2, "operator"), (3, "values")]),
    ("SeccompProfile", &[(1, "type"), (2, "localhostProfile")]),
    ("Secret", &[(1, "metadata"), (2, "data"), (3, "type"), (4, "stringData"), (5, "immutable")]),
    ("SecretEnvSource", &[(1, "..LocalObjectReference"), (2, "optional")]),
    ("SecretKeySelector", &[(1, "..LocalObjectReference"), (2, "key"), (3, "optional")]),
    ("SecretProjection", &[(1, "..LocalObjectReference"), (2, "items"), (4, "optional")]),
    ("SecretReference", &[(1, "name"), (2, "namespace")]),
    ("SecretVolumeSource", &[(1, "secretName"), (2, "items"), (3, "defaultMode"), (4, "optional"),
        (5, "defaultUser")]),
    ("SecurityContext", &[(1, "capabilities"), (2, "privileged"), (3, "seLinuxOptions"),
        (4, "runAsUser"), (5, "runAsNonRoot"), (6, "readOnlyRootFilesystem"),
        (7, "allowPrivilegeEscalation"), (8, "runAsGroup"), (9, "procMount"), (10, "windowsOptions"),
        (11, "seccompProfile"), (12, "appArmorProfile")]),
    ("SelfSubjectAccessReview", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("SelfSubjectAccessReviewSpec", &[(1, "resourceAttributes"), (2, "nonResourceAttributes")]),
    ("SelfSubjectReview", &[(1, "metadata"), (2, "status")]),
    ("SelfSubjectReviewStatus", &[(1, "userInfo")]),
    ("SelfSubjectRulesReview", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("SelfSubjectRulesReviewSpec", &[(1, "namespace")]),
    ("Service", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("ServiceAccount", &[(1, "metadata"), (2, "secrets"), (3, "imagePullSecrets"),
        (4, "automountServiceAccountToken")]),
    ("ServiceAccountTokenProjection", &[(1, "audience"), (2, "expirationSeconds"), (3, "path"),
        (4, "user")]),
    ("ServicePort", &[(1, "name"), (2, "protocol"), (3, "port"), (4, "targetPort"), (5, "nodePort"),
        (6, "appProtocol")]),
    ("ServiceSpec", &[(1, "ports"), (2, "selector"), (3, "clusterIP"), (4, "type"), (5, "externalIPs"),
        (7, "sessionAffinity"), (8, "loadBalancerIP"), (9, "loadBalancerSourceRanges"),
        (10, "externalName"), (11, "externalTrafficPolicy"), (12, "healthCheckNodePort"),
        (13, "publishNotReadyAddresses"), (14, "sessionAffinityConfig"), (17, "ipFamilyPolicy"),
        (18, "clusterIPs"), (19, "ipFamilies"), (20, "allocateLoadBalancerNodePorts"),
        (21, "loadBalancerClass"), (22, "internalTrafficPolicy"), (23, "trafficDistribution")]),
    ("ServiceStatus", &[(1, "loadBalancer"), (2, "conditions")]),
    ("SessionAffinityConfig", &[(1, "clientIP")]),
    ("SleepAction", &[(1, "seconds")]),
    ("StatefulSet", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("StatefulSetCondition", &[(1, "type"), (2, "status"), (3, "lastTransitionTime"), (4, "reason"),
        (5, "message")]),
    ("StatefulSetOrdinals", &[(1, "start")]),
    ("StatefulSetPersistentVolumeClaimRetentionPolicy", &[(1, "whenDeleted"), (2, "whenScaled")]),
    ("StatefulSetSpec", &[(1, "replicas"), (2, "selector"), (3, "template"),
        (4, "volumeClaimTemplates"), (5, "serviceName"), (6, "podManagementPolicy"),
        (7, "updateStrategy"), (8, "revisionHistoryLimit"), (9, "minReadySeconds"),
        (10, "persistentVolumeClaimRetentionPolicy"), (11, "ordinals")]),
    ("StatefulSetStatus", &[(1, "observedGeneration"), (2, "replicas"), (3, "readyReplicas"),
        (4, "currentReplicas"), (5, "updatedReplicas"), (6, "currentRevision"), (7, "updateRevision"),
        (9, "collisionCount"), (10, "conditions"), (11, "availableReplicas")]),
    ("StatefulSetUpdateStrategy", &[(1, "type"), (2, "rollingUpdate")]),
    ("StorageClass", &[(1, "metadata"), (2, "provisioner"), (3, "parameters"), (4, "reclaimPolicy"),
        (5, "mountOptions"), (6, "allowVolumeExpansion"), (7, "volumeBindingMode"), (8, "allowedTopologies")]),
    ("StorageOSPersistentVolumeSource", &[(1, "volumeName"), (2, "volumeNamespace"), (3, "fsType"),
        (4, "readOnly"), (5, "secretRef")]),
    ("StorageOSVolumeSource", &[(1, "volumeName"), (2, "volumeNamespace"), (3, "fsType"),
        (4, "readOnly"), (5, "secretRef")]),
    ("Subject", &[(1, "kind"), (2, "apiGroup"), (3, "name"), (4, "namespace")]),
    ("SubjectAccessReview", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("SubjectAccessReviewSpec", &[(1, "resourceAttributes"), (2, "nonResourceAttributes"), (3, "user"),
        (4, "groups"), (5, "extra"), (6, "uid")]),
    ("SubjectAccessReviewStatus", &[(1, "allowed"), (2, "reason"), (3, "evaluationError"), (4, "denied")]),
    ("SubjectRulesReviewStatus", &[(1, "resourceRules"), (2, "nonResourceRules"), (3, "incomplete"),
        (4, "evaluationError")]),
    ("SuccessPolicy", &[(1, "rules")]),
    ("SuccessPolicyRule", &[(1, "succeededIndexes"), (2, "succeededCount")]),
    ("Sysctl", &[(1, "name"), (2, "value")]),
    ("TCPSocketAction", &[(1, "port"), (2, "host")]),
    ("Taint", &[(1, "key"), (2, "value"), (3, "effect"), (4, "timeAdded")]),
    ("TokenRequest", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("TokenRequestSpec", &[(1, "audiences"), (3, "boundObjectRef"), (4, "expirationSeconds")]),
    ("TokenRequestStatus", &[(1, "token"), (2, "expirationTimestamp")]),
    ("TokenReview", &[(1, "metadata"), (2, "spec"), (3, "status")]),
    ("TokenReviewSpec", &[(1, "token"), (2, "audiences")]),
    ("TokenReviewStatus", &[(1, "authenticated"), (2, "user"), (3, "error"), (4, "audiences")]),
    ("Toleration", &[(1, "key"), (2, "operator"), (3, "value"), (4, "effect"), (5, "tolerationSeconds")]),
    ("TopologySelectorLabelRequirement", &[(1, "key"), (2, "values")]),
    ("TopologySelectorTerm", &[(1, "matchLabelExpressions")]),
    ("TopologySpreadConstraint", &[(1, "maxSkew"), (2, "topologyKey"), (3, "whenUnsatisfiable"),
        (4, "labelSelector"), (5, "minDomains"), (6, "nodeAffinityPolicy"), (7, "nodeTaintsPolicy"),
        (8, "matchLabelKeys")]),
    ("TypedLocalObjectReference", &[(1, "apiGroup"), (2, "kind"), (3, "name")]),
    ("TypedObjectReference", &[(1, "apiGroup"), (2, "kind"), (3, "name"), (4, "namespace")]),
    ("UncountedTerminatedPods", &[(1, "succeeded"), (2, "failed")]),
    ("UserInfo", &[(1, "username"), (2, "uid"), (3, "groups"), (4, "extra")]),
    ("Volume", &[(1, "name"), (2, "..VolumeSource")]),
    ("VolumeDevice", &[(1, "name"), (2, "devicePath")]),
    ("VolumeHealthCondition", &[(1, "status"), (2, "reason"), (3, "message")]),
    ("VolumeHealthStatus", &[(1, "healthConditions"), (2, "lastTransitionTime")]),
    ("VolumeMount", &[(1, "name"), (2, "readOnly"), (3, "mountPath"), (4, "subPath"),
        (5, "mountPropagation"), (6, "subPathExpr"), (7, "recursiveReadOnly"), (8, "bindMountOptions")]),
    ("VolumeMountStatus", &[(1, "name"), (2, "mountPath"), (3, "readOnly"), (4, "recursiveReadOnly"),
        (5, "volumeStatus")]),
    ("VolumeNodeAffinity", &[(1, "required")]),
    ("VolumeProjection", &[(1, "secret"), (2, "downwardAPI"), (3, "configMap"),
        (4, "serviceAccountToken"), (5, "clusterTrustBundle"), (6, "podCertificate")]),
    ("VolumeResourceRequirements", &[(1, "limits"), (2, "requests")]),
    ("VolumeSource", &[(1, "hostPath"), (2, "emptyDir"), (3, "gcePersistentDisk"),
        (4, "awsElasticBlockStore"), (5, "gitRepo"), (6, "secret"), (7, "nfs"), (8, "iscsi"),
        (9, "glusterfs"), (10, "persistentVolumeClaim"), (11, "rbd"), (12, "flexVolume"),
        (13, "cinder"), (14, "cephfs"), (15, "flocker"), (16, "downwardAPI"), (17, "fc"),
        (18, "azureFile"), (19, "configMap"), (20, "vsphereVolume"), (21, "quobyte"), (22, "azureDisk"),
        (23, "photonPersistentDisk"), (24, "portworxVolume"), (25, "scaleIO"), (26, "projected"),
        (27, "storageos"), (28, "csi"), (29, "ephemeral"), (30, "image")]),
    ("VolumeStatus", &[(1, "image")]),
    ("VsphereVirtualDiskVolumeSource", &[(1, "volumePath"), (2, "fsType"), (3, "storagePolicyName"),
        (4, "storagePolicyID")]),
    ("WeightedPodAffinityTerm", &[(1, "weight"), (2, "podAffinityTerm")]),
    ("WindowsSecurityContextOptions", &[(1, "gmsaCredentialSpecName"), (2, "gmsaCredentialSpec"),
        (3, "runAsUserName"), (4, "hostProcess")]),
];

/// What an entry of a table says (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// navarch's field, and the table for its message value when not the one of its type.
    Field { name: &'static str, table: Option<&'static str> },
    /// An embedded message whose fields belong to the enclosing object.
    Inline(&'static str),
    /// An upstream field navarch does not have.
    Missing(&'static str),
}

impl Entry {
    fn parse(text: &'static str) -> Entry {
        if let Some(table) = text.strip_prefix("..") {
            Entry::Inline(table)
        } else if let Some(name) = text.strip_prefix('-') {
            Entry::Missing(name)
        } else if let Some((name, table)) = text.split_once('=') {
            Entry::Field { name, table: Some(table) }
        } else {
            Entry::Field { name: text, table: None }
        }
    }
}

/// The table called `name`.
pub fn table(name: &str) -> Option<&'static [(u32, &'static str)]> {
    NUMBERS.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| NUMBERS[i].1)
}

/// The entry for field `number` of `table`.
pub fn entry(table: &'static [(u32, &'static str)], number: u32) -> Option<Entry> {
    table.binary_search_by_key(&number, |(n, _)| *n).ok().map(|i| Entry::parse(table[i].1))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use navarch_api::schema::{self, FieldType, Message};

    use super::*;

    /// Messages decoded by hand, and navarch's own message upstream does not have.
    const NO_TABLE: &[&str] =
        &["FieldsV1", "RawExtension", "IntOrString", "Quantity", "ExtraValue", "LocalVolumeSourceRef"];
    /// navarch fields with no upstream field number, besides the `apiVersion`/`kind` of kinds (those come
    /// from the envelope).
    const NOT_UPSTREAM: &[(&str, &str)] = &[
        // Upstream's Volume has no `local` (a PersistentVolume source only).
        ("Volume", "local"),
        // Upstream has it on EphemeralContainer only (see the `EphemeralContainer` table).
        ("Container", "targetContainerName"),
        // Upstream's DeleteOptions has its TypeMeta in JSON only (a body of its own is JSON or a
        // runtime.Unknown envelope, which carries them).
        ("DeleteOptions", "apiVersion"),
        ("DeleteOptions", "kind"),
    ];

    /// Checks `table` against navarch's `message`, returning the JSON names it covers (through its inline
    /// tables too).
    fn check(table_name: &str, message: &Message, covered: &mut Vec<&'static str>) {
        let t = table(table_name).unwrap_or_else(|| panic!("no table {table_name}"));
        for (number, text) in t {
            let what = format!("{table_name} field {number} ({text:?}) for navarch's {}", message.name);
            match Entry::parse(text) {
                Entry::Field { name, table: other } => {
                    let field =
                        message.field(name).unwrap_or_else(|| panic!("{what}: no such navarch field"));
                    covered.push(name);
                    let ty = field.map_value.unwrap_or(field.ty);
                    match (ty, other) {
                        (FieldType::Message(m), Some(other)) => {
                            let target = schema::message(m).unwrap();
                            let mut inner = Vec::new();
                            check(other, target, &mut inner);
                        }
                        (_, Some(_)) => panic!("{what}: a table for a field that is not a message"),
                        (FieldType::Message(m), None) if !NO_TABLE.contains(&m) => {
                            assert!(table(m).is_some(), "{what}: no table for its type {m}")
                        }
                        _ => {}
                    }
                }
                Entry::Inline(inner) => check(inner, message, covered),
                Entry::Missing(name) => {
                    assert!(message.field(name).is_none(), "{what}: navarch has this field: map it");
                }
            }
        }
    }

    #[test]
    fn tables_are_sorted_and_numbers_unique() {
        for pair in NUMBERS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "tables out of order or repeated: {} {}", pair[0].0, pair[1].0);
        }
        for (name, fields) in NUMBERS {
            for pair in fields.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{name}: field numbers out of order or repeated: {pair:?}");
            }
            assert!(fields.iter().all(|(n, _)| *n > 0), "{name}: field number 0");
        }
    }

    #[test]
    fn every_entry_names_a_navarch_field_and_every_field_is_numbered() {
        for message in schema::messages() {
            if NO_TABLE.contains(&message.name) {
                assert!(table(message.name).is_none(), "{}: decoded by hand, no table", message.name);
                continue;
            }
            let mut covered = Vec::new();
            check(message.name, message, &mut covered);
            let unique: BTreeSet<_> = covered.iter().collect();
            assert_eq!(unique.len(), covered.len(), "{}: a JSON name twice: {covered:?}", message.name);
            let kind = message.field("metadata").is_some();
            for f in message.fields {
                let exempt = (kind && matches!(f.json_name, "apiVersion" | "kind"))
                    || NOT_UPSTREAM.contains(&(message.name, f.json_name));
                assert!(
                    covered.contains(&f.json_name) || exempt,
                    "{}.{} has no upstream field number",
                    message.name,
                    f.json_name
                );
            }
        }
        // The tables of upstream messages navarch folds into others are used.
        for (name, _) in NUMBERS {
            let used = schema::message(name).is_some()
                || NUMBERS.iter().flat_map(|(_, f)| f.iter()).any(|(_, t)| {
                    t.strip_prefix("..") == Some(name) || t.split_once('=').is_some_and(|(_, x)| x == *name)
                });
            assert!(used, "table {name} is never used");
        }
    }

    #[test]
    fn entries_parse() {
        let spec = table("PodSpec").unwrap();
        assert_eq!(entry(spec, 2), Some(Entry::Field { name: "containers", table: None }));
        assert_eq!(
            entry(spec, 34),
            Some(Entry::Field { name: "ephemeralContainers", table: Some("EphemeralContainer") })
        );
        assert_eq!(entry(table("Volume").unwrap(), 2), Some(Entry::Inline("VolumeSource")));
        assert_eq!(
            entry(table("ManagedFieldsEntry").unwrap(), 7),
            Some(Entry::Field { name: "fieldsV1", table: None })
        );
        assert_eq!(entry(table("JobSpec").unwrap(), 17), Some(Entry::Missing("scheduling")));
        assert_eq!(entry(spec, 999), None);
    }
}
