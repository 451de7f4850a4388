//! The Tables of NodeMetrics and PodMetrics, as metrics-server's `addNodeMetricsToTable` /
//! `addPodMetricsToTable` make them: `Name`, one column per resource (`cpu`, `memory`: the node's usage, or
//! the sum of the pod's containers', as canonical quantities) and `Window`; no age.

use serde_json::Value;

use super::{ColumnDefinition, at, list_at, str_at};
use crate::quantity;

const fn quantity_column(name: &'static str, description: &'static str) -> ColumnDefinition {
    ColumnDefinition { name, type_: "string", format: "quantity", description, priority: 0 }
}

pub(super) const COLUMNS: &[ColumnDefinition] = &[
    ColumnDefinition {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name of the resource",
        priority: 0,
    },
    quantity_column("cpu", "CPU used, in cores."),
    quantity_column("memory", "Memory used (working set), in bytes."),
    ColumnDefinition {
        name: "Window",
        type_: "string",
        format: "duration",
        description: "The window the usage is averaged over.",
        priority: 0,
    },
];

/// The nano-units of `resource` in the `usage` maps, summed (a missing or malformed one counts 0).
fn total(usages: &[&Value], resource: &str) -> i128 {
    usages
        .iter()
        .filter_map(|u| u.get(resource)?.as_str())
        .filter_map(|q| quantity::parse(q).ok())
        .map(|a| a.0.max(0))
        .sum()
}

/// A NodeMetrics' or PodMetrics' row.
pub(super) fn row(kind: &str, o: &Value) -> Vec<Value> {
    let usages: Vec<&Value> = if kind == "PodMetrics" {
        list_at(o, "containers").iter().map(|c| at(c, "usage")).collect()
    } else {
        vec![at(o, "usage")]
    };
    let cpu = quantity::format_decimal_nanos(total(&usages, "cpu").unsigned_abs());
    let memory = quantity::format_binary(total(&usages, "memory").unsigned_abs().div_ceil(1_000_000_000));
    [str_at(o, "metadata.name").to_string(), cpu, memory, str_at(o, "window").to_string()]
        .into_iter()
        .map(Value::String)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_sum_the_containers_as_metrics_server() {
        let pod = json!({
            "metadata": {"name": "web"},
            "window": "15s",
            "containers": [
                {"name": "a", "usage": {"cpu": "1m", "memory": "4Ki"}},
                {"name": "b", "usage": {"cpu": "500u", "memory": "4Ki"}},
            ],
        });
        assert_eq!(row("PodMetrics", &pod), [json!("web"), json!("1500u"), json!("8Ki"), json!("15s")]);
        let node = json!({"metadata": {"name": "n1"}, "window": "20.064s",
                          "usage": {"cpu": "329087452n", "memory": "2748180Ki"}});
        assert_eq!(
            row("NodeMetrics", &node),
            [json!("n1"), json!("329087452n"), json!("2748180Ki"), json!("20.064s")]
        );
        assert_eq!(COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>(), ["Name", "cpu", "memory", "Window"]);
    }
}
