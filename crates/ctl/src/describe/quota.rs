//! `navctl describe quota`: kubectl's ResourceQuota description (`describeQuota`) — Name, Namespace,
//! the scopes with their help text, and a `Resource Used Hard` table of the status, the used amount
//! rewritten in the hard amount's format when they differ; aligned by kubectl's tabwriter
//! ([`crate::printers::table::tabbed`]).

use navarch_api::quantity::{Amount, canonical, format_of, parse};
use navarch_api::table_columns::{at, list_at, str_at};
use serde_json::Value;

/// kubectl's `helpTextForResourceQuotaScope`.
fn scope_help(scope: &str) -> &'static str {
    match scope {
        "Terminating" => {
            "Matches all pods that have an active deadline. These pods have a limited lifespan on a node before being actively terminated by the system."
        }
        "NotTerminating" => {
            "Matches all pods that do not have an active deadline. These pods usually include long running pods whose container command is not expected to terminate."
        }
        "BestEffort" => {
            "Matches all pods that do not have resource requirements set. These pods have a best effort quality of service."
        }
        "NotBestEffort" => {
            "Matches all pods that have at least one resource requirement set. These pods have a burstable or guaranteed quality of service."
        }
        _ => "",
    }
}

/// The description of a ResourceQuota (its JSON form).
pub fn describe(o: &Value) -> String {
    let mut lines = vec![
        format!("Name:\t{}", str_at(o, "metadata.name")),
        format!("Namespace:\t{}", str_at(o, "metadata.namespace")),
    ];
    let mut scopes: Vec<&str> = list_at(o, "spec.scopes").iter().filter_map(Value::as_str).collect();
    scopes.sort();
    if !scopes.is_empty() {
        lines.push(format!("Scopes:\t{}", scopes.join(", ")));
        lines.extend(
            scopes.iter().map(|s| scope_help(s)).filter(|h| !h.is_empty()).map(|h| format!(" * {h}")),
        );
    }
    lines.push("Resource\tUsed\tHard".into());
    lines.push("--------\t----\t----".into());
    let hard = at(o, "status.hard").as_object().cloned().unwrap_or_default();
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    for name in names {
        let hard_text = hard[name].as_str().unwrap_or("0");
        let hard_format = format_of(hard_text);
        let hard_shown = canonical(hard_text);
        let used_text = at(o, "status.used").get(name).and_then(Value::as_str).unwrap_or("0");
        let used = parse(used_text).unwrap_or_default();
        let used_shown = if format_of(used_text) == hard_format {
            used.canonical(hard_format)
        } else {
            // `resource.NewQuantity(used.Value(), hard.Format)`: whole units, rounded up.
            Amount(i128::from(used.value()) * 1_000_000_000).canonical(hard_format)
        };
        lines.push(format!("{name}\t{used_shown}\t{hard_shown}"));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    crate::printers::table::tabbed(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_description_like_kubectl() {
        let q: Value = serde_yaml::from_str(
            "metadata: {name: compute, namespace: default}\n\
             status: {hard: {requests.memory: 2Gi, pods: '10'}, used: {requests.memory: 1536Mi, pods: '3'}}\n",
        )
        .unwrap();
        assert_eq!(
            describe(&q),
            "\
Name:            compute
Namespace:       default
Resource         Used    Hard
--------         ----    ----
pods             3       10
requests.memory  1536Mi  2Gi
"
        );
        let scoped: Value = serde_yaml::from_str(
            "metadata: {name: be, namespace: team}\nspec: {scopes: [BestEffort]}\n\
             status: {hard: {pods: '5'}, used: {pods: '0'}}\n",
        )
        .unwrap();
        assert_eq!(
            describe(&scoped),
            "\
Name:       be
Namespace:  team
Scopes:     BestEffort
 * Matches all pods that do not have resource requirements set. These pods have a best effort quality of service.
Resource  Used  Hard
--------  ----  ----
pods      0     5
"
        );
    }
}
