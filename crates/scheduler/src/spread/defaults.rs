//! Default topology spread constraints: what applies to pods without their own
//! `topologySpreadConstraints`. Configured as Kubernetes' `PodTopologySpreadArgs` ([`SpreadArgs`]:
//! `defaultingType: System` — hostname maxSkew 3 and zone maxSkew 5, ScheduleAnyway — or `List` with
//! `defaultConstraints`); the selector of a pod's default constraints is deduced from the Services
//! selecting it and its ReplicaSet, StatefulSet or ReplicationController (Kubernetes'
//! `helper.DefaultSelector`), whose selectors [`Defaults`] keeps, fed from watches.

use std::collections::{BTreeMap, HashMap, HashSet};

use navarch_api::Resource;
use navarch_api::selector::{Requirement, Selector};
use navarch_api::v1::{
    LabelSelector, ObjectMeta, Pod, ReplicaSet, ReplicationController, Service, StatefulSet,
    TopologySpreadConstraint,
};
use navarch_client::Event;
use serde::{Deserialize, Serialize};

use super::{Constraint, DO_NOT_SCHEDULE, HOSTNAME, SCHEDULE_ANYWAY, ZONE, constraints, pod_labels};

/// Where the default constraints come from (Kubernetes' `PodTopologySpreadConstraintsDefaulting`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefaultingType {
    /// Kubernetes' built-in defaults ([`system_default_constraints`]); `defaultConstraints` must be empty.
    #[default]
    System,
    /// `defaultConstraints` as given (none: no defaults).
    List,
}

/// The PodTopologySpread plugin's arguments, as Kubernetes' `PodTopologySpreadArgs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SpreadArgs {
    /// Constraints for pods without their own; no `labelSelector` (it is deduced per pod).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_constraints: Vec<TopologySpreadConstraint>,
    pub defaulting_type: DefaultingType,
}

/// Kubernetes' system defaults: hostname maxSkew 3 and zone maxSkew 5, both ScheduleAnyway.
pub fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    [(HOSTNAME, 3), (ZONE, 5)]
        .into_iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: SCHEDULE_ANYWAY.into(),
            ..Default::default()
        })
        .collect()
}

/// The kinds whose selectors make a pod's default spreading selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelectorKind {
    Service,
    ReplicationController,
    ReplicaSet,
    StatefulSet,
}

/// One object's selector as the default spreading reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub kind: SelectorKind,
    pub namespace: String,
    pub name: String,
    /// Services and ReplicationControllers: equality labels. ReplicaSets and StatefulSets: their
    /// structured selector (`None` when missing or invalid: it adds nothing).
    pub labels: BTreeMap<String, String>,
    pub selector: Option<Selector>,
}

/// A watch event on a selector source, in a form the scheduler's loop can carry.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// A (re)list of `kind` starts.
    Relist(SelectorKind),
    Apply(Source),
    /// The (re)list is complete: what it did not show is gone.
    RelistDone(SelectorKind),
    Delete(SelectorKind, String, String),
}

/// A kind that gives default spreading selectors.
pub trait SelectorSource: Resource {
    const SELECTOR_KIND: SelectorKind;
    fn source(&self) -> Source;
}

fn source(kind: SelectorKind, meta: Option<&navarch_api::v1::ObjectMeta>) -> Source {
    Source {
        kind,
        namespace: meta.map(|m| m.namespace.clone()).unwrap_or_default(),
        name: meta.map(|m| m.name.clone()).unwrap_or_default(),
        labels: BTreeMap::new(),
        selector: None,
    }
}

impl SelectorSource for Service {
    const SELECTOR_KIND: SelectorKind = SelectorKind::Service;
    fn source(&self) -> Source {
        let mut s = source(Self::SELECTOR_KIND, self.metadata.as_ref());
        s.labels = self.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        s
    }
}

impl SelectorSource for ReplicationController {
    const SELECTOR_KIND: SelectorKind = SelectorKind::ReplicationController;
    fn source(&self) -> Source {
        let mut s = source(Self::SELECTOR_KIND, self.metadata.as_ref());
        s.labels = self.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        s
    }
}

/// A source whose selector is a `LabelSelector` (ReplicaSets, StatefulSets).
fn label_selector_source(
    kind: SelectorKind,
    meta: Option<&ObjectMeta>,
    ls: Option<&LabelSelector>,
) -> Source {
    let mut s = source(kind, meta);
    s.selector = ls.and_then(|l| Selector::from_label_selector(Some(l)).ok());
    s
}

impl SelectorSource for ReplicaSet {
    const SELECTOR_KIND: SelectorKind = SelectorKind::ReplicaSet;
    fn source(&self) -> Source {
        let ls = self.spec.as_ref().and_then(|s| s.selector.as_ref());
        label_selector_source(Self::SELECTOR_KIND, self.metadata.as_ref(), ls)
    }
}

impl SelectorSource for StatefulSet {
    const SELECTOR_KIND: SelectorKind = SelectorKind::StatefulSet;
    fn source(&self) -> Source {
        let ls = self.spec.as_ref().and_then(|s| s.selector.as_ref());
        label_selector_source(Self::SELECTOR_KIND, self.metadata.as_ref(), ls)
    }
}

impl SourceEvent {
    pub fn from_event<K: SelectorSource>(e: Event<K>) -> SourceEvent {
        match e {
            Event::Init => SourceEvent::Relist(K::SELECTOR_KIND),
            Event::InitApply(o) | Event::Apply(o) => SourceEvent::Apply(o.source()),
            Event::InitDone => SourceEvent::RelistDone(K::SELECTOR_KIND),
            Event::Delete(o) => {
                let s = o.source();
                SourceEvent::Delete(s.kind, s.namespace, s.name)
            }
        }
    }
}

type Key = (SelectorKind, String, String);

/// The configured default constraints and the selectors they are completed with.
#[derive(Debug, Clone)]
pub struct Defaults {
    constraints: Vec<TopologySpreadConstraint>,
    system: bool,
    /// Services per namespace, by name: their selectors.
    services: HashMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// ReplicationControllers, ReplicaSets and StatefulSets by (kind, namespace, name).
    controllers: HashMap<Key, Source>,
    /// Per kind being relisted: what the relist has shown so far.
    relisting: HashMap<SelectorKind, HashSet<(String, String)>>,
}

impl Default for Defaults {
    /// Kubernetes' default: `defaultingType: System`.
    fn default() -> Self {
        Defaults::new(&SpreadArgs::default())
    }
}

impl Defaults {
    pub fn new(args: &SpreadArgs) -> Defaults {
        let system = args.defaulting_type == DefaultingType::System;
        Defaults {
            constraints: if system { system_default_constraints() } else { args.default_constraints.clone() },
            system,
            services: HashMap::new(),
            controllers: HashMap::new(),
            relisting: HashMap::new(),
        }
    }

    /// Replaces the configuration, keeping the selectors.
    pub fn configure(&mut self, args: &SpreadArgs) {
        let fresh = Defaults::new(args);
        self.constraints = fresh.constraints;
        self.system = fresh.system;
    }

    /// Whether the system defaults are in use (their scoring counts nodes without a zone label).
    pub fn is_system(&self) -> bool {
        self.system
    }

    /// Whether any default constraint exists, so the selector sources are worth watching.
    pub fn needs_sources(&self) -> bool {
        !self.constraints.is_empty()
    }

    pub fn apply(&mut self, e: SourceEvent) {
        match e {
            SourceEvent::Relist(kind) => {
                self.relisting.insert(kind, HashSet::new());
            }
            SourceEvent::Apply(s) => {
                if let Some(seen) = self.relisting.get_mut(&s.kind) {
                    seen.insert((s.namespace.clone(), s.name.clone()));
                }
                if s.kind == SelectorKind::Service {
                    self.services.entry(s.namespace).or_default().insert(s.name, s.labels);
                } else {
                    self.controllers.insert((s.kind, s.namespace.clone(), s.name.clone()), s);
                }
            }
            SourceEvent::RelistDone(kind) => {
                let seen = self.relisting.remove(&kind).unwrap_or_default();
                if kind == SelectorKind::Service {
                    for (ns, by_name) in self.services.iter_mut() {
                        by_name.retain(|name, _| seen.contains(&(ns.clone(), name.clone())));
                    }
                    self.services.retain(|_, by_name| !by_name.is_empty());
                } else {
                    self.controllers
                        .retain(|(k, ns, name), _| *k != kind || seen.contains(&(ns.clone(), name.clone())));
                }
            }
            SourceEvent::Delete(kind, ns, name) => {
                if kind == SelectorKind::Service {
                    if let Some(by_name) = self.services.get_mut(&ns) {
                        by_name.remove(&name);
                        if by_name.is_empty() {
                            self.services.remove(&ns);
                        }
                    }
                } else {
                    self.controllers.remove(&(kind, ns, name));
                }
            }
        }
    }

    /// Kubernetes' `DefaultSelector`: the labels of every Service in the pod's namespace whose selector
    /// matches it, then its controller's selector (ReplicationController: merged labels; ReplicaSet,
    /// StatefulSet: requirements added). Empty: the pod gets no default constraints.
    pub fn selector_for(&self, pod: &Pod) -> Selector {
        let ns = super::pod_namespace(pod);
        let labels = pod_labels(pod);
        let mut set: BTreeMap<String, String> = BTreeMap::new();
        for sel in self.services.get(ns).into_iter().flat_map(|m| m.values()) {
            // A Service without a selector selects nothing here.
            if !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                set.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let as_selector = |set: &BTreeMap<String, String>| {
            Selector(set.iter().map(|(k, v)| Requirement::Equals(k.clone(), v.clone())).collect())
        };
        let mut selector = as_selector(&set);
        let owner = pod
            .metadata
            .as_ref()
            .and_then(|m| m.owner_references.iter().find(|o| o.controller == Some(true)));
        let Some(owner) = owner else { return selector };
        let kind = match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("v1", "ReplicationController") => SelectorKind::ReplicationController,
            ("apps/v1", "ReplicaSet") => SelectorKind::ReplicaSet,
            ("apps/v1", "StatefulSet") => SelectorKind::StatefulSet,
            _ => return selector,
        };
        let Some(src) = self.controllers.get(&(kind, ns.to_string(), owner.name.clone())) else {
            return selector;
        };
        if kind == SelectorKind::ReplicationController {
            set.extend(src.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            selector = as_selector(&set);
        } else if let Some(s) = &src.selector {
            selector.0.extend(s.0.iter().cloned());
        }
        selector
    }

    /// The pod's default constraints, (DoNotSchedule, ScheduleAnyway), each with the deduced selector;
    /// none when there is no default or the selector is empty.
    pub fn constraints_for(&self, pod: &Pod) -> (Vec<Constraint>, Vec<Constraint>) {
        if self.constraints.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let labels = pod_labels(pod);
        let mut hard = constraints(&self.constraints, labels, DO_NOT_SCHEDULE);
        let mut soft = constraints(&self.constraints, labels, SCHEDULE_ANYWAY);
        let selector = self.selector_for(pod);
        if selector.is_empty() {
            return (Vec::new(), Vec::new());
        }
        for c in hard.iter_mut().chain(soft.iter_mut()) {
            c.selector = selector.clone();
        }
        (hard, soft)
    }
}
