//! The `profiles` section of the scheduler's config file, in KubeSchedulerConfiguration's names
//! (`kubescheduler.config.k8s.io/v1`), so a Kubernetes profile's score plugins and `pluginConfig` read
//! the same here:
//!
//! ```yaml
//! profiles:
//! - schedulerName: default-scheduler
//!   plugins:
//!     score:
//!       enabled: [{name: NodeResourcesFit, weight: 5}]
//!       disabled: [{name: ImageLocality}]
//!   pluginConfig:
//!   - name: NodeResourcesFit
//!     args:
//!       scoringStrategy:
//!         type: MostAllocated
//!         resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
//! ```
//!
//! Merging and defaults are Kubernetes': `disabled` removes default plugins (`*`: all of them), an
//! `enabled` default plugin takes its new weight in place, others are appended; a weight of 0 or none
//! is 1. Validation messages are Kubernetes' (`field.Invalid`, `NotSupported`, ...) and name the field
//! path, e.g. `profiles[0].pluginConfig[0].args.scoringStrategy.resources[1].weight: Invalid value: 0:
//! resource weight of cpu not in valid range (0, 100]`. Only the score extension point is configurable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::scores::fit::{FitScoring, ResourceSpec, Strategy};
use crate::scores::{self, Plugin};
use crate::spread::{DefaultingType, SpreadArgs};

/// One profile (Kubernetes' `KubeSchedulerProfile`, score plugins only).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KubeSchedulerProfile {
    /// The pods' `spec.schedulerName` this profile is for (may be left out when there is one profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    pub plugins: Plugins,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plugins {
    pub score: PluginSet,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enabled: Vec<PluginRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// A plugin's arguments, read by the plugin's name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: serde_yaml::Value,
}

/// `NodeResourcesFitArgs` (the scoring part).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct NodeResourcesFitArgs {
    scoring_strategy: Option<ScoringStrategy>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct ScoringStrategy {
    #[serde(rename = "type")]
    kind: String,
    resources: Vec<ResourceArg>,
    requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ResourceArg {
    name: String,
    weight: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RequestedToCapacityRatioParam {
    shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct UtilizationShapePoint {
    utilization: i32,
    score: i32,
}

/// `NodeResourcesBalancedAllocationArgs`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct BalancedAllocationArgs {
    resources: Vec<ResourceArg>,
}

/// `InterPodAffinityArgs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct InterPodAffinityArgs {
    /// The score an existing pod's required affinity term gives a node it matches (0..=100).
    pub hard_pod_affinity_weight: i32,
    /// Score only with the incoming pod's preferred terms, not the existing pods'.
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for InterPodAffinityArgs {
    fn default() -> InterPodAffinityArgs {
        InterPodAffinityArgs {
            hard_pod_affinity_weight: crate::interpod::HARD_POD_AFFINITY_WEIGHT as i32,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

// ---- Kubernetes' field errors ----

fn invalid(path: &str, value: impl std::fmt::Debug, detail: &str) -> String {
    format!("{path}: Invalid value: {value:?}: {detail}")
}

fn unsupported(path: &str, value: &str, supported: &[&str]) -> String {
    let list = supported.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    format!("{path}: Unsupported value: {value:?}: supported values: {list}")
}

fn required(path: &str, detail: &str) -> String {
    if detail.is_empty() {
        format!("{path}: Required value")
    } else {
        format!("{path}: Required value: {detail}")
    }
}

fn duplicate(path: &str, value: &str) -> String {
    format!("{path}: Duplicate value: {value:?}")
}

/// Deserializes `args` (null: the defaults) with the path of a bad value in the error.
fn args<T: DeserializeOwned + Default>(path: &str, args: &serde_yaml::Value) -> Result<T, String> {
    if args.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(args.clone()).map_err(|e| {
        let inner = e.path().to_string();
        if inner == "." { format!("{path}: {}", e.inner()) } else { format!("{path}.{inner}: {}", e.inner()) }
    })
}

const STRATEGIES: [&str; 3] = ["LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"];

fn fit_scoring(path: &str, a: NodeResourcesFitArgs, errs: &mut Vec<String>) -> FitScoring {
    let Some(s) = a.scoring_strategy else { return FitScoring::default() };
    let path = format!("{path}.scoringStrategy");
    let mut resources = Vec::new();
    for (i, r) in s.resources.iter().enumerate() {
        // Kubernetes defaults a weight of 0 to 1 before validating.
        let weight = if r.weight == 0 { 1 } else { r.weight };
        if !(1..=100).contains(&weight) {
            let detail = format!("resource weight of {} not in valid range (0, 100]", r.name);
            errs.push(invalid(&format!("{path}.resources[{i}].weight"), weight, &detail));
        }
        resources.push(ResourceSpec::new(&r.name, weight));
    }
    if resources.is_empty() {
        resources = scores::fit::default_resources();
    }
    let strategy = match s.kind.as_str() {
        "LeastAllocated" => Strategy::LeastAllocated,
        "MostAllocated" => Strategy::MostAllocated,
        "RequestedToCapacityRatio" => {
            let shape = match s.requested_to_capacity_ratio {
                // Kubernetes' default shape: LeastAllocated's line.
                None => vec![
                    UtilizationShapePoint { utilization: 0, score: 10 },
                    UtilizationShapePoint { utilization: 100, score: 0 },
                ],
                Some(p) => p.shape,
            };
            shape_errors(&format!("{path}.requestedToCapacityRatio.shape"), &shape, errs);
            Strategy::RequestedToCapacityRatio(
                shape.iter().map(|p| (p.utilization as i64, p.score as i64 * (MAX_SCORE_SCALE))).collect(),
            )
        }
        other => {
            errs.push(unsupported(&format!("{path}.type"), other, &STRATEGIES));
            Strategy::LeastAllocated
        }
    };
    FitScoring { strategy, resources }
}

/// The config's shape scores are 0..=10 (Kubernetes' `MaxCustomPriorityScore`); node scores 0..=100.
const MAX_SCORE_SCALE: i64 = scores::MAX / 10;

fn shape_errors(path: &str, shape: &[UtilizationShapePoint], errs: &mut Vec<String>) {
    if shape.is_empty() {
        errs.push(required(path, "at least one point must be specified"));
        return;
    }
    if let Some(i) = (1..shape.len()).find(|&i| shape[i - 1].utilization >= shape[i].utilization) {
        errs.push(invalid(
            &format!("{path}[{i}].utilization"),
            shape[i].utilization,
            "values must be sorted in increasing order",
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=100).contains(&p.utilization) {
            errs.push(invalid(
                &format!("{path}[{i}].utilization"),
                p.utilization,
                "not in valid range [0, 100]",
            ));
        }
        if !(0..=10).contains(&p.score) {
            errs.push(invalid(&format!("{path}[{i}].score"), p.score, "not in valid range [0, 10]"));
        }
    }
}

fn balanced_resources(path: &str, a: BalancedAllocationArgs, errs: &mut Vec<String>) -> Vec<String> {
    if a.resources.is_empty() {
        return vec!["cpu".into(), "memory".into()];
    }
    let mut names: Vec<String> = Vec::new();
    for (i, r) in a.resources.iter().enumerate() {
        if names.contains(&r.name) {
            errs.push(duplicate(&format!("{path}.resources[{i}].name"), &r.name));
        } else {
            names.push(r.name.clone());
        }
        let weight = if r.weight == 0 { 1 } else { r.weight };
        if weight != 1 {
            errs.push(invalid(&format!("{path}.resources[{i}].weight"), weight, "must be 1"));
        }
    }
    names
}

fn inter_pod_errors(path: &str, a: &InterPodAffinityArgs, errs: &mut Vec<String>) {
    let w = a.hard_pod_affinity_weight;
    if !(0..=100).contains(&w) {
        errs.push(invalid(&format!("{path}.hardPodAffinityWeight"), w, "not in valid range [0, 100]"));
    }
}

fn spread_errors(path: &str, a: &SpreadArgs, errs: &mut Vec<String>) {
    if a.defaulting_type == DefaultingType::System && !a.default_constraints.is_empty() {
        errs.push(invalid(
            &format!("{path}.defaultingType"),
            "System",
            "when .defaultConstraints are not empty",
        ));
    }
    for (i, c) in a.default_constraints.iter().enumerate() {
        let p = format!("{path}.defaultConstraints[{i}]");
        if c.max_skew <= 0 {
            errs.push(invalid(&format!("{p}.maxSkew"), c.max_skew, "not in valid range (0, inf)"));
        }
        if c.topology_key.is_empty() {
            errs.push(required(&format!("{p}.topologyKey"), "can not be empty"));
        }
        match c.when_unsatisfiable.as_str() {
            "" => errs.push(required(&format!("{p}.whenUnsatisfiable"), "can not be empty")),
            "DoNotSchedule" | "ScheduleAnyway" => {}
            other => errs.push(unsupported(
                &format!("{p}.whenUnsatisfiable"),
                other,
                &["DoNotSchedule", "ScheduleAnyway"],
            )),
        }
        if c.label_selector.is_some() {
            errs.push(format!(
                "{p}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
            ));
        }
        if a.default_constraints[..i]
            .iter()
            .any(|o| o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable)
        {
            errs.push(duplicate(
                &format!("{path}.defaultConstraints[{i}]"),
                &format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
    }
}

fn plugin_names() -> Vec<&'static str> {
    Plugin::DEFAULTS.iter().map(|(p, _)| p.name()).collect()
}

/// The enabled score plugins and weights: Kubernetes' defaults merged with the profile's score set.
fn score_plugins(path: &str, set: &PluginSet, errs: &mut Vec<String>) -> Vec<(Plugin, i64)> {
    let names = plugin_names();
    let mut disabled_all = false;
    let mut disabled = Vec::new();
    for (i, d) in set.disabled.iter().enumerate() {
        match (d.name.as_str(), Plugin::from_name(&d.name)) {
            ("*", _) => disabled_all = true,
            (_, Some(p)) => disabled.push(p),
            (name, None) => {
                errs.push(unsupported(&format!("{path}.disabled[{i}].name"), name, &names));
            }
        }
    }
    let mut enabled: Vec<(Plugin, i64)> = Vec::new();
    for (i, e) in set.enabled.iter().enumerate() {
        let Some(p) = Plugin::from_name(&e.name) else {
            errs.push(unsupported(&format!("{path}.enabled[{i}].name"), &e.name, &names));
            continue;
        };
        if enabled.iter().any(|(q, _)| *q == p) {
            errs.push(duplicate(&format!("{path}.enabled[{i}].name"), &e.name));
            continue;
        }
        let weight = e.weight.unwrap_or(0);
        if weight < 0 {
            errs.push(invalid(&format!("{path}.enabled[{i}].weight"), weight, "must not be negative"));
        }
        // A weight of zero is not permitted: plugins are disabled explicitly (Kubernetes makes it 1).
        enabled.push((p, if weight == 0 { 1 } else { weight as i64 }));
    }
    let mut out: Vec<(Plugin, i64)> = Vec::new();
    if !disabled_all {
        for (p, w) in Plugin::DEFAULTS {
            if disabled.contains(&p) {
                continue;
            }
            out.push(enabled.iter().find(|(q, _)| *q == p).copied().unwrap_or((p, w)));
        }
    }
    for e in enabled {
        if !out.iter().any(|(q, _)| *q == e.0) {
            out.push(e);
        }
    }
    out
}

/// One profile, validated and resolved; every error found is pushed.
fn resolve_one(path: &str, p: &KubeSchedulerProfile, errs: &mut Vec<String>) -> scores::Profile {
    let mut out = scores::Profile {
        plugins: score_plugins(&format!("{path}.plugins.score"), &p.plugins.score, errs),
        ..scores::Profile::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in p.plugin_config.iter().enumerate() {
        let cpath = format!("{path}.pluginConfig[{i}]");
        if seen.contains(&c.name.as_str()) {
            errs.push(duplicate(&cpath, &c.name));
            continue;
        }
        seen.push(&c.name);
        let apath = format!("{cpath}.args");
        let parsed = match Plugin::from_name(&c.name) {
            Some(Plugin::NodeResourcesFit) => {
                args(&apath, &c.args).map(|a| out.fit = fit_scoring(&apath, a, errs))
            }
            Some(Plugin::NodeResourcesBalancedAllocation) => {
                args(&apath, &c.args).map(|a| out.balanced = balanced_resources(&apath, a, errs))
            }
            Some(Plugin::InterPodAffinity) => args(&apath, &c.args).map(|a| {
                inter_pod_errors(&apath, &a, errs);
                out.inter_pod = a;
            }),
            Some(Plugin::PodTopologySpread) => args(&apath, &c.args).map(|a| {
                spread_errors(&apath, &a, errs);
                out.spread = a;
            }),
            Some(_) if c.args.is_null() => Ok(()),
            Some(_) => Err(format!("{apath}: Forbidden: {} takes no arguments", c.name)),
            None => Err(unsupported(&format!("{cpath}.name"), &c.name, &plugin_names())),
        };
        if let Err(e) = parsed {
            errs.push(e);
        }
    }
    out
}

/// The scoring of the scheduler named `scheduler_name` from the config file's `profiles`: Kubernetes'
/// defaults without profiles; a single profile without `schedulerName` applies whatever the name. All
/// profiles are validated; the errors are joined as Kubernetes aggregates them (`[a, b]`).
pub fn resolve(profiles: &[KubeSchedulerProfile], scheduler_name: &str) -> Result<scores::Profile, String> {
    let mut errs = Vec::new();
    let mut chosen = None;
    for (i, p) in profiles.iter().enumerate() {
        let path = format!("profiles[{i}]");
        let resolved = resolve_one(&path, p, &mut errs);
        let name = match (&p.scheduler_name, profiles.len()) {
            (None, 1) => scheduler_name,
            (Some(n), _) if !n.is_empty() => n.as_str(),
            _ => {
                errs.push(required(&format!("{path}.schedulerName"), ""));
                continue;
            }
        };
        if let Some(j) = profiles[..i].iter().position(|o| o.scheduler_name.as_deref() == Some(name)) {
            errs.push(format!("{path}.schedulerName: Duplicate value: \"profiles[{j}].schedulerName\""));
        }
        if name == scheduler_name && chosen.is_none() {
            chosen = Some(resolved);
        }
    }
    if errs.is_empty() && chosen.is_none() && !profiles.is_empty() {
        errs.push(format!(
            "profiles: no profile has schedulerName {scheduler_name:?} (this scheduler's scheduler_name)"
        ));
    }
    match errs.len() {
        0 => Ok(chosen.unwrap_or_default()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}
