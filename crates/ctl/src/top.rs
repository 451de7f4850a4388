//! `navctl top node|pod`: CPU and memory usage gathered by the api-server from each kubelet's
//! cgroup readings (what metrics-server does for kubectl top), in kubectl's table shapes.

use navarch_api::Object;
use navarch_api::kind_info;
use navarch_api::kubelet_proto::StatsResponse;
use navarch_api::quantity;
use navarch_api::selector::Selector;
use navarch_client::ListParams;

use crate::cli::TopCommand;
use crate::context::{Context, Outcome, emit};
use crate::printers::table::Table;

fn cpu(nanocores: u64) -> String {
    format!("{}m", nanocores / 1_000_000)
}

fn memory(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

fn percent(used: f64, of: f64) -> String {
    if of <= 0.0 { "<unknown>".into() } else { format!("{}%", (used / of * 100.0).round() as i64) }
}

async fn gather(ctx: &Context, node: &str) -> anyhow::Result<Vec<StatsResponse>> {
    let client = ctx.client().await?;
    let r = client.top(node).await.map_err(|e| crate::errors::general(e, ctx.server()))?;
    for e in &r.errors {
        eprintln!("warning: {e}");
    }
    Ok(r.nodes)
}

pub async fn run(ctx: &Context, cmd: &TopCommand) -> anyhow::Result<Outcome> {
    match cmd {
        TopCommand::Node { name } => nodes(ctx, name.as_deref()).await,
        TopCommand::Pod { name, all_namespaces, containers, selector } => {
            pods(ctx, name.as_deref(), *all_namespaces, *containers, selector.as_deref()).await
        }
    }
}

async fn nodes(ctx: &Context, name: Option<&str>) -> anyhow::Result<Outcome> {
    let stats = gather(ctx, name.unwrap_or("")).await?;
    let info = kind_info("Node").expect("Node is a known kind");
    let (objects, _) = ctx.list(info, &ListParams::default(), 0).await?;
    let allocatable = |node: &str, res: &str| -> f64 {
        objects
            .iter()
            .find_map(|o| match o {
                Object::Node(n) if n.metadata.as_ref().is_some_and(|m| m.name == node) => n
                    .status
                    .as_ref()
                    .and_then(|s| s.allocatable.get(res))
                    .and_then(|q| quantity::parse(&q.string).ok()),
                _ => None,
            })
            .map(|a| if res == "cpu" { a.milli_value() as f64 * 1e6 } else { a.value() as f64 })
            .unwrap_or(0.0)
    };
    if stats.is_empty() {
        anyhow::bail!("metrics not available yet");
    }
    let mut rows = vec![
        vec!["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ];
    let mut stats = stats;
    stats.sort_by(|a, b| a.node_name.cmp(&b.node_name));
    for s in &stats {
        rows.push(vec![
            s.node_name.clone(),
            cpu(s.node_cpu_nano_cores),
            percent(s.node_cpu_nano_cores as f64, allocatable(&s.node_name, "cpu")),
            memory(s.node_memory_working_set_bytes),
            percent(s.node_memory_working_set_bytes as f64, allocatable(&s.node_name, "memory")),
        ]);
    }
    emit(&Table::new().format(&rows));
    Ok(Outcome::Success)
}

async fn pods(
    ctx: &Context,
    name: Option<&str>,
    all: bool,
    containers: bool,
    selector: Option<&str>,
) -> anyhow::Result<Outcome> {
    let selector = Selector::parse(selector.unwrap_or("")).map_err(|e| anyhow::anyhow!("selector: {e}"))?;
    let stats = gather(ctx, "").await?;
    // Labels come from the pods themselves.
    let labels_of = if selector.is_empty() {
        None
    } else {
        let info = kind_info("Pod").expect("Pod is a known kind");
        let ns = if all { String::new() } else { ctx.namespace().to_string() };
        let params = ListParams { namespace: ns, label_selector: selector.to_string(), ..Default::default() };
        let (objs, _) = ctx.list(info, &params, 0).await?;
        Some(objs.iter().map(|o| o.meta().uid.clone()).collect::<std::collections::HashSet<_>>())
    };
    let mut pods: Vec<_> = stats
        .iter()
        .flat_map(|s| s.pods.iter())
        .filter(|p| all || p.namespace == ctx.namespace())
        .filter(|p| name.is_none_or(|n| p.name == n))
        .filter(|p| labels_of.as_ref().is_none_or(|uids| uids.contains(&p.uid)))
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    if pods.is_empty() {
        if let Some(n) = name {
            anyhow::bail!(
                "pod {n:?} has no metrics (not running, or not found in namespace {:?})",
                ctx.namespace()
            );
        }
        eprintln!("No resources found");
        return Ok(Outcome::Success);
    }
    let mut header: Vec<String> = Vec::new();
    if all {
        header.push("NAMESPACE".into());
    }
    if containers {
        header.extend(["POD", "NAME"].map(String::from));
    } else {
        header.push("NAME".into());
    }
    header.extend(["CPU(cores)", "MEMORY(bytes)"].map(String::from));
    let mut rows = vec![header];
    for p in pods {
        let prefix = |row: &mut Vec<String>| {
            if all {
                row.push(p.namespace.clone());
            }
        };
        if containers {
            for c in &p.containers {
                let mut row = Vec::new();
                prefix(&mut row);
                row.extend([
                    p.name.clone(),
                    c.name.clone(),
                    cpu(c.cpu_nano_cores),
                    memory(c.memory_working_set_bytes),
                ]);
                rows.push(row);
            }
        } else {
            let mut row = Vec::new();
            prefix(&mut row);
            let cpu_sum: u64 = p.containers.iter().map(|c| c.cpu_nano_cores).sum();
            let mem_sum: u64 = p.containers.iter().map(|c| c.memory_working_set_bytes).sum();
            row.extend([p.name.clone(), cpu(cpu_sum), memory(mem_sum)]);
            rows.push(row);
        }
    }
    emit(&Table::new().format(&rows));
    Ok(Outcome::Success)
}
