//! The `profiles` section: Kubernetes' merging of score plugins, NodeResourcesFit's args, and
//! validation errors naming the field.

use navarch_daemon::resolve_yaml;

use super::*;
use crate::scores::Plugin;
use crate::scores::fit::{ResourceSpec, Strategy};

fn profile(yaml: &str) -> Result<scores::Profile, String> {
    resolve_yaml::<Config>(yaml, &[], &[]).map(|c| (*c.scoring).clone())
}

#[test]
fn no_profiles_is_kubernetes_defaults() {
    let p = profile("scheduler_name: default-scheduler\n").unwrap();
    assert_eq!(p, scores::Profile::default());
    assert_eq!(
        p.plugins[..3],
        [(Plugin::TaintToleration, 3), (Plugin::NodeAffinity, 2), (Plugin::NodeResourcesFit, 1)]
    );
    assert_eq!(p.fit.strategy, Strategy::LeastAllocated);
    assert_eq!(p.fit.resources, vec![ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 1)]);
}

#[test]
fn weights_and_most_allocated() {
    let p = profile(
        "profiles:
- plugins:
    score:
      enabled:
      - {name: NodeResourcesFit, weight: 5}
      - {name: NodeAffinity}
      disabled: [{name: ImageLocality}, {name: PodTopologySpread}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 3}, {name: memory}]
",
    )
    .unwrap();
    // In place, with the new weights (none is 1, as Kubernetes); the disabled ones gone.
    assert_eq!(
        p.plugins,
        vec![
            (Plugin::TaintToleration, 3),
            (Plugin::NodeAffinity, 1),
            (Plugin::NodeResourcesFit, 5),
            (Plugin::InterPodAffinity, 2),
            (Plugin::NodeResourcesBalancedAllocation, 1),
        ]
    );
    assert_eq!(p.fit.strategy, Strategy::MostAllocated);
    assert_eq!(p.fit.resources, vec![ResourceSpec::new("cpu", 3), ResourceSpec::new("memory", 1)]);
}

#[test]
fn disable_all_and_requested_to_capacity_ratio() {
    let p = profile(
        "profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled: [{name: '*'}]
      enabled: [{name: NodeResourcesFit, weight: 2}, {name: ImageLocality}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: RequestedToCapacityRatio
        resources: [{name: cpu, weight: 1}]
        requestedToCapacityRatio:
          shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]
  - name: InterPodAffinity
    args: {hardPodAffinityWeight: 5}
",
    )
    .unwrap();
    assert_eq!(p.plugins, vec![(Plugin::NodeResourcesFit, 2), (Plugin::ImageLocality, 1)]);
    assert_eq!(p.fit.strategy, Strategy::RequestedToCapacityRatio(vec![(0, 0), (100, 100)]));
    assert_eq!(p.inter_pod.hard_pod_affinity_weight, 5);
    // Without a shape: Kubernetes' default {0: 10}, {100: 0}.
    let p = profile(
        "profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: RequestedToCapacityRatio}}\n",
    )
    .unwrap();
    assert_eq!(p.fit.strategy, Strategy::RequestedToCapacityRatio(vec![(0, 100), (100, 0)]));
}

#[test]
fn the_profile_named_after_this_scheduler_is_used() {
    let yaml = "scheduler_name: packer
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  pluginConfig:
  - {name: NodeResourcesFit, args: {scoringStrategy: {type: MostAllocated}}}
";
    assert_eq!(profile(yaml).unwrap().fit.strategy, Strategy::MostAllocated);
    let e = profile("scheduler_name: other\nprofiles:\n- schedulerName: packer\n").unwrap_err();
    assert_eq!(e, "profiles: no profile has schedulerName \"other\" (this scheduler's scheduler_name)");
    let e = profile("profiles:\n- schedulerName: a\n- {}\n").unwrap_err();
    assert_eq!(e, "profiles[1].schedulerName: Required value");
}

fn fit_error(args: &str) -> String {
    profile(&format!("profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {args}\n"))
        .unwrap_err()
}

#[test]
fn invalid_values_name_the_field() {
    assert_eq!(
        fit_error(
            "{scoringStrategy: {type: LeastAllocated, resources: [{name: cpu, weight: 1}, {name: memory, weight: 101}]}}"
        ),
        "profiles[0].pluginConfig[0].args.scoringStrategy.resources[1].weight: Invalid value: 101: \
         resource weight of memory not in valid range (0, 100]"
    );
    assert_eq!(
        fit_error("{scoringStrategy: {type: Packed}}"),
        "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: \"Packed\": supported \
         values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
    );
    assert_eq!(
        fit_error(
            "{scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: [{utilization: 50, score: 11}, {utilization: 40, score: 1}]}}}"
        ),
        "[profiles[0].pluginConfig[0].args.scoringStrategy.requestedToCapacityRatio.shape[1].utilization: \
         Invalid value: 40: values must be sorted in increasing order, \
         profiles[0].pluginConfig[0].args.scoringStrategy.requestedToCapacityRatio.shape[0].score: \
         Invalid value: 11: not in valid range [0, 10]]"
    );
    assert_eq!(
        fit_error(
            "{scoringStrategy: {type: RequestedToCapacityRatio, requestedToCapacityRatio: {shape: []}}}"
        ),
        "profiles[0].pluginConfig[0].args.scoringStrategy.requestedToCapacityRatio.shape: Required value: \
         at least one point must be specified"
    );
    let e = fit_error("{scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: x}]}}");
    assert!(
        e.starts_with("profiles[0].pluginConfig[0].args.scoringStrategy.resources[0].weight: invalid type"),
        "{e}"
    );
    let e = fit_error("{ignoredResources: [a]}");
    assert!(e.starts_with("profiles[0].pluginConfig[0].args.ignoredResources: unknown field"), "{e}");
    let e = profile("profiles:\n- plugins: {score: {enabled: [{name: NodeResourcesFits}]}}\n").unwrap_err();
    assert!(
        e.starts_with("profiles[0].plugins.score.enabled[0].name: Unsupported value: \"NodeResourcesFits\""),
        "{e}"
    );
    let e = profile("profiles:\n- plugins: {score: {enabled: [{name: NodeAffinity, weight: -1}]}}\n")
        .unwrap_err();
    assert_eq!(e, "profiles[0].plugins.score.enabled[0].weight: Invalid value: -1: must not be negative");
    let e = profile("profiles:\n- plugins: {filter: {}}\n").unwrap_err();
    assert!(e.contains("profiles[0].plugins.filter: unknown field `filter`, expected `score`"), "{e}");
    let e = profile("profiles:\n- pluginConfig: [{name: NodeResourcesFit}, {name: NodeResourcesFit}]\n")
        .unwrap_err();
    assert_eq!(e, "profiles[0].pluginConfig[1]: Duplicate value: \"NodeResourcesFit\"");
    let e = profile("profiles:\n- pluginConfig: [{name: ImageLocality, args: {a: 1}}]\n").unwrap_err();
    assert_eq!(e, "profiles[0].pluginConfig[0].args: Forbidden: ImageLocality takes no arguments");
}

#[test]
fn other_plugins_args() {
    let e = profile(
        "profiles:\n- pluginConfig: [{name: NodeResourcesBalancedAllocation, args: {resources: [{name: cpu, weight: 2}, {name: cpu}]}}]\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "[profiles[0].pluginConfig[0].args.resources[0].weight: Invalid value: 2: must be 1, \
         profiles[0].pluginConfig[0].args.resources[1].name: Duplicate value: \"cpu\"]"
    );
    let p = profile(
        "profiles:\n- pluginConfig: [{name: NodeResourcesBalancedAllocation, args: {resources: [{name: cpu}, {name: ephemeral-storage}]}}]\n",
    )
    .unwrap();
    assert_eq!(p.balanced, vec!["cpu".to_string(), "ephemeral-storage".to_string()]);
    let e = profile(
        "profiles:\n- pluginConfig: [{name: InterPodAffinity, args: {hardPodAffinityWeight: 101}}]\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "profiles[0].pluginConfig[0].args.hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]"
    );
    // PodTopologySpread: constraints need `defaultingType: List`, and no selector.
    let spread = |args: &str| {
        profile(&format!("profiles:\n- pluginConfig: [{{name: PodTopologySpread, args: {args}}}]\n"))
    };
    let c = "{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}";
    let p = spread(&format!("{{defaultingType: List, defaultConstraints: [{c}]}}")).unwrap();
    assert_eq!(p.spread.default_constraints.len(), 1);
    assert_eq!(
        spread(&format!("{{defaultConstraints: [{c}]}}")).unwrap_err(),
        "profiles[0].pluginConfig[0].args.defaultingType: Invalid value: \"System\": when .defaultConstraints are not empty"
    );
    let bad = "{maxSkew: 0, topologyKey: '', whenUnsatisfiable: Sometimes, labelSelector: {}}";
    assert_eq!(
        spread(&format!("{{defaultingType: List, defaultConstraints: [{bad}]}}")).unwrap_err(),
        "[profiles[0].pluginConfig[0].args.defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf), \
         profiles[0].pluginConfig[0].args.defaultConstraints[0].topologyKey: Required value: can not be empty, \
         profiles[0].pluginConfig[0].args.defaultConstraints[0].whenUnsatisfiable: Unsupported value: \"Sometimes\": \
         supported values: \"DoNotSchedule\", \"ScheduleAnyway\", \
         profiles[0].pluginConfig[0].args.defaultConstraints[0].labelSelector: Forbidden: constraint must not define \
         a selector, as they deduced for each pod]"
    );
}

#[test]
fn print_config_round_trips() {
    let yaml = "profiles:\n- plugins: {score: {enabled: [{name: NodeResourcesFit, weight: 5}]}}\n  pluginConfig:\n  - {name: NodeResourcesFit, args: {scoringStrategy: {type: MostAllocated}}}\n";
    let c = resolve_yaml::<Config>(yaml, &[], &[]).unwrap();
    let printed = navarch_daemon::config::to_yaml(&c);
    assert!(!printed.contains("schedulerName") && printed.contains("MostAllocated"), "{printed}");
    let again = resolve_yaml::<Config>(&printed, &[], &[]).unwrap();
    assert_eq!(again.scoring, c.scoring);
}
