//! What one LimitRange does to one object, as Kubernetes' LimitRanger actions: [`default_pod`] fills
//! the Container item's default limits and requests into containers and init containers that lack them
//! (and writes the `kubernetes.io/limit-ranger` annotation); [`check_pod`] enforces min, max and
//! maxLimitRequestRatio per Container (init containers included) and per Pod (Kubernetes' effective pod
//! requests and limits: the sum of the containers, sidecars added, at least the largest init container);
//! [`check_claim`] enforces min and max of a claim's requests. Messages are Kubernetes', word for word.

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::quantity::{self, Amount, Format};
use navarch_api::v1::{
    Container, LimitRange, LimitRangeItem, PersistentVolumeClaim, Pod, Quantity, ResourceRequirements,
};

/// The annotation naming what the plugin set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

const CONTAINER: &str = "Container";
const POD: &str = "Pod";
const PERSISTENT_VOLUME_CLAIM: &str = "PersistentVolumeClaim";

/// Kubernetes' `resource.MaxMilliValue`.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// A parsed quantity with the format Kubernetes would print it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Value {
    amount: Amount,
    format: Format,
}

impl Value {
    fn of(q: &Quantity) -> Option<Value> {
        Some(Value { amount: q.amount().ok()?, format: quantity::format_of(&q.string) })
    }
    /// Kubernetes' `Quantity.String()`.
    fn show(self) -> String {
        self.amount.canonical(self.format)
    }
    /// Kubernetes' `Quantity.Add`: a zero receiver takes the other's format.
    fn add(&mut self, other: Value) {
        if self.amount.0 == 0 {
            self.format = other.format;
        }
        self.amount.0 += other.amount.0;
    }
}

type List = BTreeMap<String, Value>;

/// A resource list's quantities (malformed ones are validation's to report).
fn list(m: &BTreeMap<String, Quantity>) -> List {
    m.iter().filter_map(|(k, q)| Some((k.clone(), Value::of(q)?))).collect()
}

fn items<'a>(lr: &'a LimitRange, ty: &'a str) -> impl Iterator<Item = &'a LimitRangeItem> {
    lr.spec.iter().flat_map(|s| s.limits.iter()).filter(move |i| i.r#type == ty)
}

/// Sets the Container items' default limits and requests on every container and init container
/// of `pod` that has none for a resource, and records what it set in the annotation (Kubernetes'
/// `PodMutateLimitFunc`).
pub fn default_pod(lr: &LimitRange, pod: &mut Pod) {
    let (mut limits, mut requests) = (BTreeMap::new(), BTreeMap::new());
    for item in items(lr, CONTAINER) {
        limits.extend(item.default.iter().map(|(k, v)| (k.clone(), v.clone())));
        requests.extend(item.default_request.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let Some(spec) = pod.spec.as_mut() else { return };
    let mut notes = Vec::new();
    for (what, containers) in
        [("container", &mut spec.containers), ("init container", &mut spec.init_containers)]
    {
        for c in containers.iter_mut() {
            merge(c, &limits, &requests, what, &mut notes);
        }
    }
    if !notes.is_empty() {
        let value = format!("LimitRanger plugin set: {}", notes.join("; "));
        pod.metadata.get_or_insert_with(Default::default).annotations.insert(ANNOTATION.into(), value);
    }
}

/// Kubernetes' `mergeContainerResources`: requests named before limits in the notes.
fn merge(
    c: &mut Container,
    limits: &BTreeMap<String, Quantity>,
    requests: &BTreeMap<String, Quantity>,
    what: &str,
    notes: &mut Vec<String>,
) {
    let r = c.resources.get_or_insert_with(ResourceRequirements::default);
    let fill = |have: &mut BTreeMap<String, Quantity>, defaults: &BTreeMap<String, Quantity>| {
        let mut set = Vec::new();
        for (k, v) in defaults {
            if !have.contains_key(k) {
                have.insert(k.clone(), Quantity::new(quantity::canonical(&v.string)));
                set.push(k.clone());
            }
        }
        set
    };
    let set_limits = fill(&mut r.limits, limits);
    let set_requests = fill(&mut r.requests, requests);
    for (set, kind) in [(set_requests, "request"), (set_limits, "limit")] {
        if !set.is_empty() {
            notes.push(format!("{} {kind} for {what} {}", set.join(", "), c.name));
        }
    }
}

/// Kubernetes' `PodValidateLimitFunc`: every violation of `lr` by `pod`, as one message.
pub fn check_pod(lr: &LimitRange, pod: &Pod) -> Result<(), String> {
    let mut errs = Vec::new();
    let empty = Vec::new();
    let spec = pod.spec.as_ref();
    let containers = spec.map(|s| &s.containers).unwrap_or(&empty);
    let init_containers = spec.map(|s| &s.init_containers).unwrap_or(&empty);
    for item in lr.spec.iter().flat_map(|s| s.limits.iter()) {
        match item.r#type.as_str() {
            CONTAINER => {
                for c in containers.iter().chain(init_containers) {
                    let (requests, limits) = container_lists(c);
                    check_bounds(item, CONTAINER, &requests, &limits, &mut errs);
                }
            }
            POD => {
                let (requests, limits) = pod_lists(containers, init_containers);
                check_bounds(item, POD, &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    aggregate(errs)
}

/// Kubernetes' `PersistentVolumeClaimValidateLimitFunc`: min and max of what the claim requests.
pub fn check_claim(lr: &LimitRange, pvc: &PersistentVolumeClaim) -> Result<(), String> {
    let requests = pvc.spec.as_ref().and_then(|s| s.resources.as_ref()).map(|r| list(&r.requests));
    let requests = requests.unwrap_or_default();
    let mut errs = Vec::new();
    for item in items(lr, PERSISTENT_VOLUME_CLAIM) {
        // A claim's limits are not the user's: only its requests count.
        for (bound, list) in [(Bound::Min, &item.min), (Bound::Max, &item.max)] {
            for (k, v) in self::list(list) {
                let request = ("request", requests.get(&k));
                let checked =
                    bound_constraint(bound, PERSISTENT_VOLUME_CLAIM, &k, v, request, ("limit", None));
                errs.extend(checked.err());
            }
        }
    }
    aggregate(errs)
}

fn check_bounds(item: &LimitRangeItem, ty: &str, requests: &List, limits: &List, errs: &mut Vec<String>) {
    for (k, v) in list(&item.min) {
        let (request, limit) = (("request", requests.get(&k)), ("limit", limits.get(&k)));
        errs.extend(bound_constraint(Bound::Min, ty, &k, v, request, limit).err());
    }
    for (k, v) in list(&item.max) {
        let (request, limit) = (("request", requests.get(&k)), ("limit", limits.get(&k)));
        errs.extend(bound_constraint(Bound::Max, ty, &k, v, limit, request).err());
    }
    for (k, v) in list(&item.max_limit_request_ratio) {
        errs.extend(ratio_constraint(ty, &k, v, requests, limits).err());
    }
}

fn container_lists(c: &Container) -> (List, List) {
    match &c.resources {
        Some(r) => (list(&r.requests), list(&r.limits)),
        None => Default::default(),
    }
}

/// A pod's effective requests and limits (Kubernetes' `podRequests`/`podLimits` of the plugin): the
/// containers' sum plus the sidecars (restartable init containers); at least each init container plus
/// the sidecars started before it.
fn pod_lists(containers: &[Container], init_containers: &[Container]) -> (List, List) {
    let mut out = [List::new(), List::new()];
    for c in containers {
        let lists = container_lists(c);
        for (total, l) in out.iter_mut().zip([lists.0, lists.1]) {
            add(total, &l);
        }
    }
    let mut sidecars = [List::new(), List::new()];
    let mut init = [List::new(), List::new()];
    for c in init_containers {
        let lists = container_lists(c);
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        for (i, l) in [lists.0, lists.1].into_iter().enumerate() {
            let during = if sidecar {
                add(&mut out[i], &l);
                add(&mut sidecars[i], &l);
                sidecars[i].clone()
            } else {
                let mut tmp = l;
                add(&mut tmp, &sidecars[i]);
                tmp
            };
            max(&mut init[i], &during);
        }
    }
    for (total, init) in out.iter_mut().zip(&init) {
        max(total, init);
    }
    let [requests, limits] = out;
    (requests, limits)
}

fn add(total: &mut List, l: &List) {
    for (k, v) in l {
        total.entry(k.clone()).and_modify(|t| t.add(*v)).or_insert(*v);
    }
}

fn max(total: &mut List, l: &List) {
    for (k, v) in l {
        if total.get(k).is_none_or(|t| v.amount > t.amount) {
            total.insert(k.clone(), *v);
        }
    }
}

/// Kubernetes' `requestLimitEnforcedValues`: thousandths when none overflows, else whole units (a
/// missing quantity is 0).
fn comparable(request: Option<&Value>, limit: Option<&Value>, enforced: Value) -> (i64, i64, i64) {
    let amounts =
        [request.map(|v| v.amount).unwrap_or_default(), limit.map(|v| v.amount).unwrap_or_default()];
    let all = [amounts[0], amounts[1], enforced.amount];
    if all.iter().all(|a| a.value() <= MAX_MILLI_VALUE) {
        (all[0].milli_value(), all[1].milli_value(), all[2].milli_value())
    } else {
        (all[0].value(), all[1].value(), all[2].value())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Min,
    Max,
}

/// Kubernetes' `minConstraint`, `maxConstraint` and `maxRequestConstraint`: `required` (the request
/// for a min, the limit for a max, the request for a claim's max) must be given and within the bound,
/// `other` within it when given; each is `(what, value)`.
fn bound_constraint(
    bound: Bound,
    ty: &str,
    name: &str,
    enforced: Value,
    required: (&str, Option<&Value>),
    other: (&str, Option<&Value>),
) -> Result<(), String> {
    let (a, b, e) = comparable(required.1, other.1, enforced);
    let (word, outside): (&str, fn(i64, i64) -> bool) = match bound {
        Bound::Min => ("minimum", |v, e| v < e),
        Bound::Max => ("maximum", |v, e| v > e),
    };
    let head = format!("{word} {name} usage per {ty} is {}", enforced.show());
    match (required, other) {
        ((what, None), _) => Err(format!("{head}.  No {what} is specified")),
        ((what, Some(v)), _) if outside(a, e) => Err(format!("{head}, but {what} is {}", v.show())),
        (_, (what, Some(v))) if outside(b, e) => Err(format!("{head}, but {what} is {}", v.show())),
        _ => Ok(()),
    }
}

fn ratio_constraint(
    ty: &str,
    name: &str,
    enforced: Value,
    requests: &List,
    limits: &List,
) -> Result<(), String> {
    let (req, lim) = (requests.get(name), limits.get(name));
    let (r, l, _) = comparable(req, lim, enforced);
    let head = format!("{name} max limit to request ratio per {ty} is {}", enforced.show());
    if req.is_none() || r == 0 {
        return Err(format!("{head}, but no request is specified or request is 0"));
    }
    if lim.is_none() || l == 0 {
        return Err(format!("{head}, but no limit is specified or limit is 0"));
    }
    let shown = l as f64 / r as f64;
    let (observed, allowed) = if enforced.amount.value() <= MAX_MILLI_VALUE {
        (shown * 1000.0, enforced.amount.milli_value() as f64)
    } else {
        (shown, enforced.amount.value() as f64)
    };
    if observed > allowed {
        return Err(format!("{head}, but provided ratio is {shown:.6}"));
    }
    Ok(())
}

/// Kubernetes' aggregate error text: one message as it is, several (duplicates dropped) in brackets.
fn aggregate(errs: Vec<String>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let unique: Vec<String> = errs.into_iter().filter(|e| seen.insert(e.clone())).collect();
    match unique.len() {
        0 => Ok(()),
        1 => Err(unique.into_iter().next().unwrap_or_default()),
        _ => Err(format!("[{}]", unique.join(", "))),
    }
}
