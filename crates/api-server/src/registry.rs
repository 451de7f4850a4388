//! The registry: Kubernetes' storage semantics for every kind, on top of [`Storage`].
//!
//! create (create-if-absent), get, list (selectors, paging), update (compare-and-swap on the
//! resourceVersion; server-owned metadata kept; generation bumped on spec changes; status kept),
//! update_status (only status), delete (preconditions, finalizers, graceful pod deletion,
//! namespaces) and bind. Every write is acknowledged only after etcd committed it.
//!
//! Services get their cluster IP and node ports here ([`crate::allocation`]): allocated on create and
//! on updates that need new ones, released on updates that drop them and on deletion, each in the
//! same etcd transaction as the Service.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use navarch_api::managed_fields::{self, Managed, ManagerId, UpdateWriter};
use navarch_api::selector::Selector;
use navarch_api::{KindInfo, Object, kind_info};
use rand::Rng;

use crate::allocation::{self, AllocError, Plan, Ranges, ServiceAllocator};
use crate::codec::{decode_value, encode_value, namespace_prefix, object_key};
use crate::error::ApiError;
use crate::recent_writes::RecentWrites;
use crate::storage::{Sidecar, Storage, StorageError, Write, decode_continue, encode_continue};
use crate::validation;
use crate::watch_cache::FieldSelector;

mod admission_steps;
pub mod approval;
pub mod binding;
pub mod ephemeral;
mod namespaces;

/// Namespaces that exist from the start.
pub const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];
/// Namespaces that cannot be deleted.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];
const DEFAULT_POD_GRACE_SECONDS: i64 = 30;
/// Retries of a read-modify-write when a concurrent writer wins (unconditional updates, deletes).
const CAS_RETRIES: usize = 16;
/// How many freshly written pods the registry remembers for binds.
const RECENT_PODS: usize = 8192;

/// What a delete asks for.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: String,
    pub precondition_uid: String,
    pub precondition_resource_version: String,
    pub dry_run: bool,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    pub limit: i64,
    pub continue_token: String,
}

/// How a write records itself in `metadata.managedFields`.
#[derive(Debug, Clone, Copy)]
pub enum FieldManager<'a> {
    /// Kubernetes' `Update` operation by this writer (create, update, any patch but an apply): the fields the
    /// write changes move to its entry ([`managed_fields::record_update`]).
    Update(UpdateWriter<'a>),
    /// A server-side apply computed these managed fields; `applier`'s entry gets the time of the write when
    /// the object changed.
    Applied { managed: &'a Managed, applier: &'a ManagerId },
}

impl<'a> FieldManager<'a> {
    /// An `Update` by `manager` through the object itself.
    pub fn update(manager: &'a str) -> FieldManager<'a> {
        FieldManager::Update(UpdateWriter { manager, subresource: "", reset: false })
    }
}

/// The manager of the api-server's own writes (initial namespaces, finished namespace deletions).
pub const SERVER_MANAGER: &str = "api-server";

pub struct ListResult {
    pub items: Vec<Object>,
    pub resource_version: i64,
    pub continue_token: String,
    pub remaining: i64,
}

pub struct Registry {
    storage: Storage,
    prefix: String,
    /// Namespace name → terminating. Kept current by this registry's own writes; a miss reads etcd.
    namespaces: RwLock<HashMap<String, bool>>,
    /// Pods written last, so the scheduler's bind right after a create skips a read.
    recent_pods: RecentWrites,
    /// Cluster IPs and node ports of Services.
    services: ServiceAllocator,
    /// Kubernetes' ServiceAccount admission on pod creates ([`crate::admission::service_account`]).
    service_account_admission: bool,
    /// Validating admission of writes made for a request's user (set once at start).
    admission: std::sync::OnceLock<Arc<dyn Admission>>,
    /// Kubernetes' DefaultStorageClass and StorageObjectInUseProtection plugins on creates of claims and
    /// volumes ([`crate::admission::storage`]).
    storage_admission: crate::admission::storage::Plugins,
    /// The StorageClasses DefaultStorageClass picks from (the api-server's own store, set once at start).
    storage_classes: std::sync::OnceLock<Arc<crate::local_store::LocalStore>>,
    /// Kubernetes' ResourceQuota admission, last before the write ([`crate::admission::resource_quota`]).
    pub(crate) resource_quota: crate::admission::resource_quota::QuotaAdmission,
    /// Answers get and list of the resource metrics kinds, which are not stored (set once at start).
    resource_metrics: std::sync::OnceLock<Arc<crate::resource_metrics::ResourceMetrics>>,
    /// Kubernetes' LimitRanger on pod creates and claim writes ([`crate::admission::limit_range`]).
    pub(crate) limit_ranger: crate::admission::limit_range::LimitRanger,
    /// Kubernetes' Priority admission on pod creates and PriorityClass writes ([`crate::admission::priority`]).
    pub(crate) priority: crate::admission::priority::Priority,
}

/// What a write does, for admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOperation {
    Create,
    /// `subresource` is `""`, `status`, `ephemeralcontainers` or `approval`.
    Update {
        subresource: &'static str,
    },
    Delete,
}

/// Validating admission: may `user` make this write? Called with the object as it will be stored (and
/// the stored one for updates and deletes), after validation, before etcd.
pub trait Admission: Send + Sync {
    fn admit(
        &self,
        user: &crate::user_info::UserInfo,
        operation: WriteOperation,
        new: Option<&Object>,
        old: Option<&Object>,
    ) -> Result<(), ApiError>;
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn rfc3339_in(secs: i64) -> String {
    let t = SystemTime::now() + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The kind named in a request.
pub fn kind_of(kind: &str) -> Result<&'static KindInfo, ApiError> {
    kind_info(kind)
        .filter(|k| k.kind == kind)
        .ok_or_else(|| ApiError::BadRequest(format!("kind: unknown kind {kind:?}")))
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(o: &Object) -> Object {
    let mut c = o.clone();
    *c.meta_mut() = Default::default();
    clear_status(&mut c);
    c
}

fn clear_status(o: &mut Object) {
    macro_rules! clear {
        ($($k:ident),*) => { match o { $(Object::$k(x) => navarch_api::Resource::clear_status(x),)* _ => {} } };
    }
    clear!(
        Namespace,
        Node,
        Pod,
        Service,
        PersistentVolume,
        PersistentVolumeClaim,
        ResourceQuota,
        ReplicaSet,
        ReplicationController,
        Deployment,
        DaemonSet,
        StatefulSet,
        Job,
        CronJob,
        HorizontalPodAutoscaler,
        PodDisruptionBudget,
        CertificateSigningRequest
    );
}

/// `new` with `status` taken from `from` (kinds without a status subresource are returned unchanged).
fn with_status_of(mut new: Object, from: &Object) -> Object {
    use navarch_api::Resource;
    match (&mut new, from) {
        (Object::Namespace(n), Object::Namespace(f)) => n.copy_status_from(f),
        (Object::Node(n), Object::Node(f)) => n.copy_status_from(f),
        (Object::Pod(n), Object::Pod(f)) => n.copy_status_from(f),
        (Object::Service(n), Object::Service(f)) => n.copy_status_from(f),
        (Object::PersistentVolume(n), Object::PersistentVolume(f)) => n.copy_status_from(f),
        (Object::PersistentVolumeClaim(n), Object::PersistentVolumeClaim(f)) => n.copy_status_from(f),
        (Object::ResourceQuota(n), Object::ResourceQuota(f)) => n.copy_status_from(f),
        (Object::ReplicaSet(n), Object::ReplicaSet(f)) => n.copy_status_from(f),
        (Object::ReplicationController(n), Object::ReplicationController(f)) => n.copy_status_from(f),
        (Object::Deployment(n), Object::Deployment(f)) => n.copy_status_from(f),
        (Object::DaemonSet(n), Object::DaemonSet(f)) => n.copy_status_from(f),
        (Object::StatefulSet(n), Object::StatefulSet(f)) => n.copy_status_from(f),
        (Object::Job(n), Object::Job(f)) => n.copy_status_from(f),
        (Object::CronJob(n), Object::CronJob(f)) => n.copy_status_from(f),
        (Object::HorizontalPodAutoscaler(n), Object::HorizontalPodAutoscaler(f)) => n.copy_status_from(f),
        (Object::PodDisruptionBudget(n), Object::PodDisruptionBudget(f)) => n.copy_status_from(f),
        (Object::CertificateSigningRequest(n), Object::CertificateSigningRequest(f)) => n.copy_status_from(f),
        _ => {}
    }
    new
}

/// What still blocks the removal of an object being deleted.
fn deletion_blocked(o: &Object) -> bool {
    if !o.meta().finalizers.is_empty() {
        return true;
    }
    matches!(o, Object::Namespace(ns) if ns.spec.as_ref().is_some_and(|s| !s.finalizers.is_empty()))
}

fn invalid(obj: &Object, errors: Vec<String>) -> ApiError {
    ApiError::Invalid { kind: obj.kind().to_string(), name: obj.meta().name.clone(), errors }
}

fn check_valid(obj: &Object, old: Option<&Object>) -> Result<(), ApiError> {
    let errs = validation::validate(obj, old);
    if errs.is_empty() { Ok(()) } else { Err(invalid(obj, errs.iter().map(|e| e.to_string()).collect())) }
}

fn alloc_error(obj: &Object, e: AllocError) -> ApiError {
    match e {
        AllocError::Invalid(errors) => invalid(obj, errors),
        AllocError::Exhausted(reason) => {
            ApiError::Exhausted(format!("Service {:?}: {reason}", obj.meta().name))
        }
        AllocError::Storage(e) => ApiError::from_storage(e, "services", &obj.meta().name),
    }
}

/// Plans the allocations of a Service write (`None` for other kinds).
fn plan_service(
    services: &ServiceAllocator,
    obj: &mut Object,
    old: Option<&Object>,
) -> Result<Option<Plan>, ApiError> {
    let Object::Service(svc) = obj else { return Ok(None) };
    let old = match old {
        Some(Object::Service(o)) => Some(o),
        _ => None,
    };
    match services.plan(svc, old) {
        Ok(plan) => Ok(Some(plan)),
        Err(errors) => Err(invalid(obj, errors)),
    }
}

impl Registry {
    pub fn new(storage: Storage, prefix: &str, service_ranges: Ranges) -> Registry {
        Registry {
            services: ServiceAllocator::new(storage.clone(), prefix, service_ranges),
            storage,
            prefix: prefix.trim_end_matches('/').to_string(),
            namespaces: RwLock::new(HashMap::new()),
            recent_pods: RecentWrites::new(RECENT_PODS),
            service_account_admission: true,
            admission: std::sync::OnceLock::new(),
            storage_admission: Default::default(),
            storage_classes: std::sync::OnceLock::new(),
            resource_quota: Default::default(),
            resource_metrics: std::sync::OnceLock::new(),
            limit_ranger: Default::default(),
            priority: Default::default(),
        }
    }

    /// Which storage admission plugins run on creates of claims and volumes (all by default).
    pub fn with_storage_admission(mut self, plugins: crate::admission::storage::Plugins) -> Registry {
        self.storage_admission = plugins;
        self
    }

    /// Sets the store of StorageClasses DefaultStorageClass reads (once).
    pub fn set_storage_classes(&self, store: Arc<crate::local_store::LocalStore>) {
        let _ = self.storage_classes.set(store);
    }

    /// Sets what answers get and list of NodeMetrics and PodMetrics (once).
    pub fn set_resource_metrics(&self, metrics: Arc<crate::resource_metrics::ResourceMetrics>) {
        let _ = self.resource_metrics.set(metrics);
    }

    /// What serves a kind that is not stored (the resource metrics kinds).
    fn resource_metrics(&self) -> Result<&crate::resource_metrics::ResourceMetrics, ApiError> {
        self.resource_metrics
            .get()
            .map(|m| &**m)
            .ok_or_else(|| ApiError::Backend("the resource metrics API is not serving yet".into()))
    }

    /// Sets the admission step of writes made for requests (once).
    pub fn set_admission(&self, admission: Arc<dyn Admission>) {
        let _ = self.admission.set(admission);
    }

    /// Turns the ServiceAccount admission of pod creates on (the default) or off.
    pub fn with_service_account_admission(mut self, on: bool) -> Registry {
        self.service_account_admission = on;
        self
    }

    pub fn services(&self) -> &ServiceAllocator {
        &self.services
    }

    /// What deleting the stored `old` gives back in the same transaction.
    fn releases(&self, old: &Object) -> Sidecar {
        match old {
            Object::Service(svc) => self.services.release_all(svc),
            _ => Sidecar::default(),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, info: &KindInfo, namespace: &str, name: &str) -> String {
        object_key(&self.prefix, info, namespace, name)
    }

    /// Creates the initial namespaces and the built-in PriorityClasses (`system-node-critical`,
    /// `system-cluster-critical`) if absent.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let namespaces = INITIAL_NAMESPACES.iter().map(|name| {
            let mut ns = navarch_api::v1::Namespace::default();
            navarch_api::Resource::meta_mut(&mut ns).name = name.to_string();
            Object::Namespace(ns)
        });
        let classes = navarch_api::priority::system_priority_classes().into_iter().map(Object::PriorityClass);
        for obj in namespaces.chain(classes) {
            match self.create(obj, false, FieldManager::update(SERVER_MANAGER)).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn decode(&self, kind: &str, value: &[u8], rev: i64) -> Result<Object, ApiError> {
        decode_value(kind, value, rev)
            .map_err(|e| ApiError::Internal(format!("stored {kind} undecodable: {e}")))
    }

    /// Creates an object; `manager` records the write in its managed fields.
    pub async fn create(
        &self,
        mut obj: Object,
        dry_run: bool,
        manager: FieldManager<'_>,
    ) -> Result<Object, ApiError> {
        let info = obj.info();
        if !info.is_stored() {
            return Err(crate::resource_metrics::read_only(info, "create"));
        }
        let now = now_rfc3339();
        obj.set_type_meta();
        {
            let m = obj.meta_mut();
            if !info.namespaced {
                m.namespace.clear();
            }
            m.resource_version.clear();
            m.uid = uuid::Uuid::new_v4().to_string();
            m.creation_timestamp = now.clone();
            m.generation = 1;
            m.deletion_timestamp.clear();
            m.deletion_grace_period_seconds = None;
            m.self_link.clear();
        }
        if info.namespaced && obj.meta().namespace.is_empty() {
            return Err(invalid(&obj, vec!["metadata.namespace: Required value".into()]));
        }
        let generate = obj.meta().name.is_empty() && !obj.meta().generate_name.is_empty();
        validation::apply_defaults(&mut obj);
        validation::prepare_write(&mut obj, None);
        // A CSR's requester is who sent it, and it starts without status (Kubernetes' strategy).
        if let Object::CertificateSigningRequest(csr) = &mut obj {
            let user = crate::request_context::current_user();
            validation::certificates::prepare_for_create(csr, user.as_ref());
        }
        if self.service_account_admission && matches!(obj, Object::Pod(_)) {
            self.admit_pod(&mut obj).await?;
        }
        self.limit_ranger.default_pod(&mut obj, self).await?;
        if matches!(obj, Object::Pod(_)) {
            self.priority.admit_pod(&mut obj, self).await?;
        }
        if matches!(obj, Object::PersistentVolumeClaim(_) | Object::PersistentVolume(_)) {
            self.admit_storage(&mut obj).await?;
        }
        // A new pod's status is Kubernetes' initial one, whatever the request said.
        if let Object::Pod(p) = &mut obj {
            let containers = p.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
            p.status = Some(navarch_api::v1::PodStatus {
                phase: "Pending".into(),
                qos_class: navarch_api::qos::qos_class(containers),
                ..Default::default()
            });
        }
        record_managed_fields(None, &mut obj, manager, false, &now);
        // A Service gets its allocations afresh on every attempt.
        let pristine = (generate && matches!(obj, Object::Service(_))).then(|| obj.clone());
        for attempt in 0.. {
            if let Some(p) = &pristine {
                obj = p.clone();
            }
            if generate {
                let base = obj.meta().generate_name.clone();
                obj.meta_mut().name = format!("{base}{}", random_suffix());
            }
            check_valid(&obj, None)?;
            if attempt == 0 {
                self.limit_ranger.check(WriteOperation::Create, &obj, None, self).await?;
                self.priority.check_class(WriteOperation::Create, &obj, self).await?;
                self.admit_write(WriteOperation::Create, Some(&obj), None)?;
            }
            if info.namespaced {
                self.check_namespace(&obj.meta().namespace.clone()).await?;
            }
            if attempt == 0 {
                self.resource_quota.admit(&obj, None, dry_run, self).await?;
            }
            let key = self.key(info, &obj.meta().namespace, &obj.meta().name);
            let written = match plan_service(&self.services, &mut obj, None)? {
                Some(mut plan) => {
                    let r = self.services.commit(&key, None, &mut obj, &mut plan, dry_run).await;
                    r.map_err(|e| alloc_error(&obj, e))?
                }
                None if dry_run => Ok(0),
                None => self.storage.create(&key, encode_value(&obj)).await,
            };
            if dry_run {
                written.map_err(|e| ApiError::from_storage(e, info.plural, &obj.meta().name))?;
                return Ok(obj);
            }
            match written {
                Ok(rev) => {
                    obj.meta_mut().resource_version = rev.to_string();
                    self.note_if_namespace(&obj, false);
                    if matches!(obj, Object::Pod(_)) {
                        self.recent_pods.remember(&key, rev, &obj);
                    }
                    tracing::debug!(kind = info.kind, key = %obj.key(), rev, "created");
                    return Ok(obj);
                }
                Err(StorageError::AlreadyExists(_)) if generate && attempt < 8 => continue,
                Err(e) => return Err(ApiError::from_storage(e, info.plural, &obj.meta().name)),
            }
        }
        unreachable!("the loop returns")
    }

    pub async fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Object, ApiError> {
        let info = kind_of(kind)?;
        if !info.is_stored() {
            return self.resource_metrics()?.get(info.kind, namespace, name);
        }
        let key = self.key(info, namespace, name);
        let stored =
            self.storage.get(&key).await.map_err(|e| ApiError::from_storage(e, info.plural, name))?;
        self.decode(info.kind, &stored.value, stored.mod_revision)
    }

    pub async fn list(&self, kind: &str, opts: &ListOptions) -> Result<ListResult, ApiError> {
        let info = kind_of(kind)?;
        if !info.is_stored() {
            return self.resource_metrics()?.list(info.kind, opts);
        }
        let labels = Selector::parse(&opts.label_selector)
            .map_err(|e| ApiError::BadRequest(format!("labelSelector: {e}")))?;
        let fields = FieldSelector::parse(&opts.field_selector)
            .map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        fields.check_supported(info.kind).map_err(|e| ApiError::BadRequest(format!("fieldSelector: {e}")))?;
        let prefix = namespace_prefix(&self.prefix, info, &opts.namespace);
        let (mut revision, mut after) = if opts.continue_token.is_empty() {
            (0, None)
        } else {
            let (rev, key) = decode_continue(&opts.continue_token)
                .map_err(|_| ApiError::BadRequest("continue: invalid continue token".into()))?;
            if !key.starts_with(&prefix) {
                return Err(ApiError::BadRequest("continue: the token belongs to another list".into()));
            }
            (rev, Some(key))
        };
        let filtering = !labels.is_empty() || !fields.0.is_empty();
        let limit = opts.limit.max(0);
        // Read in chunks; with selectors keep reading until `limit` matches or the end.
        let chunk = if limit == 0 {
            0
        } else if filtering {
            limit.max(500)
        } else {
            limit
        };
        let mut items = Vec::new();
        let mut last_key: Option<String> = None;
        let mut remaining = 0;
        loop {
            let page = self
                .storage
                .list(&prefix, after.as_deref(), revision, chunk)
                .await
                .map_err(|e| ApiError::from_storage(e, info.plural, ""))?;
            revision = page.revision;
            let n = page.items.len();
            let mut stopped_early = false;
            for (i, s) in page.items.into_iter().enumerate() {
                let obj = self.decode(info.kind, &s.value, s.mod_revision)?;
                after = Some(s.key.clone());
                if labels.matches(&obj.meta().labels) && fields.matches(&obj) {
                    items.push(obj);
                    last_key = Some(s.key);
                    if limit > 0 && items.len() as i64 >= limit {
                        stopped_early = i + 1 < n || page.more;
                        break;
                    }
                }
            }
            if stopped_early {
                remaining = if filtering { 0 } else { page.remaining };
                break;
            }
            if !page.more || n == 0 {
                last_key = None;
                break;
            }
        }
        let continue_token = match (limit > 0, last_key) {
            (true, Some(k)) => encode_continue(revision, &k),
            _ => String::new(),
        };
        Ok(ListResult { items, resource_version: revision, continue_token, remaining })
    }

    /// Replaces an object (`status_only`: replaces only its status); `manager` records the write in its
    /// managed fields. A write through `pods/<name>/ephemeralcontainers` (the writer's subresource) changes
    /// only the pod's ephemeral containers ([`ephemeral`]); one through
    /// `certificatesigningrequests/<name>/approval` only the request's conditions ([`approval`]).
    pub async fn update(
        &self,
        obj: Object,
        status_only: bool,
        dry_run: bool,
        manager: FieldManager<'_>,
    ) -> Result<Object, ApiError> {
        let info = obj.info();
        if !info.is_stored() {
            return Err(crate::resource_metrics::read_only(info, "update"));
        }
        let name = obj.meta().name.clone();
        let namespace = if info.namespaced { obj.meta().namespace.clone() } else { String::new() };
        if name.is_empty() {
            return Err(invalid(&obj, vec!["metadata.name: Required value".into()]));
        }
        if status_only && !info.has_status {
            return Err(ApiError::BadRequest(format!("{} have no status subresource", info.plural)));
        }
        let subresource = write_subresource(&manager, status_only);
        let key = self.key(info, &namespace, &name);
        let want_rv = obj.meta().resource_version.clone();
        for _ in 0..CAS_RETRIES {
            let stored =
                self.storage.get(&key).await.map_err(|e| ApiError::from_storage(e, info.plural, &name))?;
            let old = self.decode(info.kind, &stored.value, stored.mod_revision)?;
            if !want_rv.is_empty() && want_rv != stored.mod_revision.to_string() {
                return Err(ApiError::Conflict { plural: info.plural.into(), name });
            }
            if !obj.meta().uid.is_empty() && obj.meta().uid != old.meta().uid {
                return Err(uid_mismatch(&obj.meta().uid, &old.meta().uid));
            }
            let mut new = match subresource {
                "status" => with_status_of(old.clone(), &obj),
                ephemeral::SUBRESOURCE => ephemeral::prepare_update(&obj, &old)?,
                // The request's status: its conditions are what an approval writes.
                approval::SUBRESOURCE => approval::prepare_update(&obj)?,
                _ => {
                    let mut n = with_status_of(obj.clone(), &old);
                    n.set_type_meta();
                    n
                }
            };
            // A CSR's spec never changes; its status only through `status`, Approved and Denied only
            // through `approval`.
            approval::keep_to_endpoint(&mut new, &old, subresource, &now_rfc3339());
            if subresource == "status" {
                validation::prepare_status_write(&mut new, &old);
            }
            {
                let (o, m) = (old.meta(), new.meta_mut());
                m.namespace = namespace.clone();
                m.uid = o.uid.clone();
                m.creation_timestamp = o.creation_timestamp.clone();
                m.deletion_timestamp = o.deletion_timestamp.clone();
                m.deletion_grace_period_seconds = o.deletion_grace_period_seconds;
                m.generation = o.generation;
                m.resource_version = o.resource_version.clone();
                m.self_link.clear();
            }
            // Defaults see the stored server-owned metadata (uid, deletionTimestamp).
            if !status_only {
                validation::apply_defaults(&mut new);
                validation::prepare_write(&mut new, Some(&old));
            }
            if subresource.is_empty() {
                self.priority.keep_on_update(&mut new, &old);
            }
            if !old.meta().deletion_timestamp.is_empty() {
                let added: Vec<&String> =
                    new.meta().finalizers.iter().filter(|f| !old.meta().finalizers.contains(f)).collect();
                if !added.is_empty() {
                    return Err(invalid(
                        &new,
                        vec![format!(
                            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        )],
                    ));
                }
            }
            record_managed_fields(Some(&old), &mut new, manager, status_only, &now_rfc3339());
            if !status_only && let (Object::Service(n), Object::Service(o)) = (&mut new, &old) {
                allocation::prepare_update(n, o);
            }
            if spec_part(&new) != spec_part(&old) {
                new.meta_mut().generation = old.meta().generation + 1;
            }
            if subresource == ephemeral::SUBRESOURCE {
                ephemeral::check_valid(&new, &old)?;
            } else {
                check_valid(&new, Some(&old))?;
            }
            self.limit_ranger.check(WriteOperation::Update { subresource }, &new, Some(&old), self).await?;
            self.priority.check_class(WriteOperation::Update { subresource }, &new, self).await?;
            self.admit_write(WriteOperation::Update { subresource }, Some(&new), Some(&old))?;
            // The last finalizer gone ends a deletion, unless a pod is still within its grace period
            // (Kubernetes' `ShouldDeleteDuringUpdate`): then its kubelet's final delete removes it.
            let removing = !new.meta().deletion_timestamp.is_empty()
                && !deletion_blocked(&new)
                && new.meta().deletion_grace_period_seconds.unwrap_or(0) == 0;
            if subresource.is_empty() && !removing {
                self.resource_quota.admit(&new, Some(&old), dry_run, self).await?;
            }
            let mut plan = if removing { None } else { plan_service(&self.services, &mut new, Some(&old))? };
            if plan.is_some() && spec_part(&new) != spec_part(&old) {
                new.meta_mut().generation = old.meta().generation + 1; // the plan may fill in ipFamilies
            }
            // Nothing changed: no write, same resourceVersion; unless the stored form is stale (an older
            // encryption key), which a write moves to the current one, as in Kubernetes.
            if new == old && !stored.stale {
                return Ok(old);
            }
            if dry_run {
                if let Some(plan) = plan.as_mut().filter(|p| !p.is_empty()) {
                    let r = self.services.commit(&key, Some(stored.mod_revision), &mut new, plan, true).await;
                    r.map_err(|e| alloc_error(&new, e))?
                        .map_err(|e| ApiError::from_storage(e, info.plural, &name))?;
                }
                return Ok(new);
            }
            let result = if removing {
                let side = self.releases(&old);
                let write = Write::Delete { expected: stored.mod_revision };
                self.storage.write(&key, write, &side).await.map(|rev| (rev, true))
            } else if let Some(plan) = plan.as_mut().filter(|p| !p.is_empty()) {
                let r = self.services.commit(&key, Some(stored.mod_revision), &mut new, plan, false).await;
                r.map_err(|e| alloc_error(&new, e))?.map(|rev| (rev, false))
            } else {
                self.storage
                    .update(&key, stored.mod_revision, encode_value(&new))
                    .await
                    .map(|rev| (rev, false))
            };
            match result {
                Ok((rev, deleted)) => {
                    new.meta_mut().resource_version = rev.to_string();
                    self.note_if_namespace(&new, deleted);
                    tracing::debug!(kind = info.kind, key = %new.key(), rev, deleted, "updated");
                    if deleted && info.namespaced {
                        self.finish_namespace_if_empty(&namespace).await;
                    }
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) if want_rv.is_empty() => continue,
                Err(e) => return Err(ApiError::from_storage(e, info.plural, &name)),
            }
        }
        Err(ApiError::Conflict { plural: info.plural.into(), name })
    }

    /// Deletes an object; returns it as last stored and whether it is still there (pending).
    pub async fn delete(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Object, bool), ApiError> {
        let info = kind_of(kind)?;
        if !info.is_stored() {
            return Err(crate::resource_metrics::read_only(info, "delete"));
        }
        let namespace = if info.namespaced { namespace } else { "" };
        if info.kind == "Namespace" && PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces {name:?} is forbidden: this namespace may not be deleted"
            )));
        }
        crate::admission::priority::refuse_system_class_delete(info.kind, name)?;
        if let Some(g) = opts.grace_period_seconds.filter(|g| *g < 0) {
            return Err(ApiError::BadRequest(format!(
                "gracePeriodSeconds: Invalid value: {g}: must be >= 0"
            )));
        }
        let key = self.key(info, namespace, name);
        for _ in 0..CAS_RETRIES {
            let stored =
                self.storage.get(&key).await.map_err(|e| ApiError::from_storage(e, info.plural, name))?;
            let old = self.decode(info.kind, &stored.value, stored.mod_revision)?;
            if !opts.precondition_uid.is_empty() && opts.precondition_uid != old.meta().uid {
                return Err(uid_mismatch(&opts.precondition_uid, &old.meta().uid));
            }
            // Validating admission sees the object deleted (NodeRestriction: a node deletes only its
            // own pods, Node, Lease and local-path volumes).
            self.admit_write(WriteOperation::Delete, None, Some(&old))?;
            if !opts.precondition_resource_version.is_empty()
                && opts.precondition_resource_version != stored.mod_revision.to_string()
            {
                return Err(ApiError::Conflict { plural: info.plural.into(), name: name.into() });
            }
            let mut new = old.clone();
            let now = now_rfc3339();
            // A Namespace's content goes with it (the namespace controller deletes it), whatever the
            // policy: nothing is its dependent through ownerReferences for the garbage collector to wait
            // for or orphan.
            let policy = if info.kind == "Namespace" { "" } else { opts.propagation_policy.as_str() };
            match policy {
                "" | "Background" => {}
                "Foreground" => add_finalizer(&mut new, "foregroundDeletion"),
                "Orphan" => add_finalizer(&mut new, "orphan"),
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
                    )));
                }
            }
            // Graceful termination: a pod on a node waits for its kubelet.
            let mut grace = 0;
            if let Object::Pod(p) = &old {
                let spec = p.spec.as_ref();
                if spec.is_some_and(|s| !s.node_name.is_empty()) {
                    grace = opts
                        .grace_period_seconds
                        .or(spec.and_then(|s| s.termination_grace_period_seconds))
                        .unwrap_or(DEFAULT_POD_GRACE_SECONDS);
                }
            }
            if let Object::Namespace(ns) = &mut new {
                if self.namespace_is_empty(name).await? {
                    if let Some(s) = ns.spec.as_mut() {
                        s.finalizers.clear();
                    }
                } else {
                    ns.status.get_or_insert_with(Default::default).phase = "Terminating".into();
                    let spec = ns.spec.get_or_insert_with(Default::default);
                    if !spec.finalizers.iter().any(|f| f == "kubernetes") {
                        spec.finalizers.push("kubernetes".into());
                    }
                }
            }
            let keep = deletion_blocked(&new) || grace > 0;
            if !keep {
                if opts.dry_run {
                    return Ok((old, false));
                }
                let side = self.releases(&old);
                match self.storage.write(&key, Write::Delete { expected: stored.mod_revision }, &side).await {
                    Ok(rev) => {
                        let mut gone = old;
                        gone.meta_mut().resource_version = rev.to_string();
                        self.note_if_namespace(&gone, true);
                        tracing::debug!(kind = info.kind, key = %gone.key(), rev, "deleted");
                        if info.namespaced {
                            self.finish_namespace_if_empty(namespace).await;
                        }
                        return Ok((gone, false));
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(e) => return Err(ApiError::from_storage(e, info.plural, name)),
                }
            }
            {
                let m = new.meta_mut();
                let shorter = m.deletion_grace_period_seconds.is_none_or(|g| grace < g);
                if m.deletion_timestamp.is_empty() || shorter {
                    m.deletion_timestamp = if grace > 0 { rfc3339_in(grace) } else { now.clone() };
                    m.deletion_grace_period_seconds = Some(grace);
                }
            }
            if new == old {
                return Ok((old, true));
            }
            if opts.dry_run {
                return Ok((new, true));
            }
            match self.storage.update(&key, stored.mod_revision, encode_value(&new)).await {
                Ok(rev) => {
                    new.meta_mut().resource_version = rev.to_string();
                    self.note_if_namespace(&new, false);
                    tracing::debug!(kind = info.kind, key = %new.key(), rev, grace, "deletion pending");
                    return Ok((new, true));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_storage(e, info.plural, name)),
            }
        }
        Err(ApiError::Conflict { plural: info.plural.into(), name: name.into() })
    }
}

/// The subresource an update goes through, as admission sees it: `status` for a status write, the
/// writer's `ephemeralcontainers` or `approval`, else `""` (the object; a `scale` write is one of it).
fn write_subresource(manager: &FieldManager<'_>, status_only: bool) -> &'static str {
    if status_only {
        "status"
    } else if ephemeral::through_subresource(manager) {
        ephemeral::SUBRESOURCE
    } else if approval::through_subresource(manager) {
        approval::SUBRESOURCE
    } else {
        ""
    }
}

/// Records a write of `new` (over `old`; `None` for a create) in `new`'s managed fields. A status write
/// is always recorded as one.
fn record_managed_fields(
    old: Option<&Object>,
    new: &mut Object,
    manager: FieldManager<'_>,
    status_only: bool,
    now: &str,
) {
    match manager {
        FieldManager::Update(w) => {
            let w = UpdateWriter { subresource: if status_only { "status" } else { w.subresource }, ..w };
            managed_fields::record_update(old, new, &w, now);
        }
        FieldManager::Applied { managed, applier } => {
            let changed = match old {
                None => true,
                Some(old) => {
                    new.meta_mut().managed_fields = old.meta().managed_fields.clone();
                    new != old
                }
            };
            let mut managed = managed.clone();
            if changed {
                managed.touch(applier, now);
            }
            new.meta_mut().managed_fields = managed.encode();
        }
    }
}

/// The error of a delete whose UID precondition does not hold.
pub(crate) fn uid_mismatch(wanted: &str, stored: &str) -> ApiError {
    ApiError::Precondition(format!(
        "Precondition failed: UID in precondition: {wanted}, UID in object meta: {stored}"
    ))
}

fn add_finalizer(o: &mut Object, f: &str) {
    let m = o.meta_mut();
    if !m.finalizers.iter().any(|x| x == f) {
        m.finalizers.push(f.to_string());
    }
}
