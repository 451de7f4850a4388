//! `navctl top node|pod`: CPU and memory usage read from the resource metrics API (`metrics.k8s.io/v1beta1`
//! NodeMetrics and PodMetrics, which the api-server's metrics pipeline serves), printed as `kubectl top`
//! prints it: its columns, its rounding (cpu in millicores rounded up, memory in whole MiB, percentages of
//! the node's allocatable truncated), its sorting (`--sort-by=cpu|memory`, largest first) and its
//! messages when there are no metrics.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use navarch_api::v1::{ContainerMetrics, NodeMetrics, PodMetrics, Quantity};
use navarch_api::{KindInfo, Object, kind_info, quantity};
use navarch_client::ListParams;

use crate::cli::TopCommand;
use crate::context::{Context, Outcome, emit};
use crate::printers::table::Table;

/// kubectl's grace for a new pod before missing metrics are an error (`metricsCreationDelay`).
const METRICS_CREATION_DELAY: Duration = Duration::from_secs(120);

fn info(kind: &str) -> &'static KindInfo {
    kind_info(kind).expect("a known kind")
}

/// Usage as kubectl reads it: millicores (rounded up) and bytes (rounded up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Usage {
    cpu_milli: i64,
    memory: i64,
}

impl Usage {
    fn of(usage: &BTreeMap<String, Quantity>) -> Usage {
        let amount = |k: &str| usage.get(k).and_then(|q| quantity::parse(&q.string).ok()).unwrap_or_default();
        Usage { cpu_milli: amount("cpu").milli_value(), memory: amount("memory").value() }
    }

    /// A pod's usage: its containers' summed (exactly, then rounded).
    fn of_pod(containers: &[ContainerMetrics]) -> Usage {
        let sum = |k: &str| {
            let nanos = containers
                .iter()
                .filter_map(|c| c.usage.get(k).and_then(|q| quantity::parse(&q.string).ok()))
                .map(|a| a.0)
                .sum();
            quantity::Amount(nanos)
        };
        Usage { cpu_milli: sum("cpu").milli_value(), memory: sum("memory").value() }
    }

    /// `["12m", "34Mi"]`, with `["5%", "7%"]` after each when the node's allocatable is known.
    fn cells(self, allocatable: Option<Usage>) -> Vec<String> {
        let percent =
            |used: i64, of: i64| if of == 0 { "0%".to_string() } else { format!("{}%", used * 100 / of) };
        let mut cells = vec![format!("{}m", self.cpu_milli)];
        if let Some(a) = allocatable {
            cells.push(percent(self.cpu_milli, a.cpu_milli));
        }
        cells.push(format!("{}Mi", self.memory / (1024 * 1024)));
        if let Some(a) = allocatable {
            // kubectl compares milli-values: for bytes that is the bytes' ratio.
            cells.push(percent(self.memory, a.memory));
        }
        cells
    }
}

/// How rows are ordered: `--sort-by` (largest first) or by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    Cpu,
    Memory,
}

impl SortBy {
    fn parse(s: Option<&str>) -> anyhow::Result<SortBy> {
        match s.unwrap_or("") {
            "" => Ok(SortBy::Name),
            "cpu" => Ok(SortBy::Cpu),
            "memory" => Ok(SortBy::Memory),
            _ => bail!("--sort-by accepts only cpu or memory"),
        }
    }

    /// Orders `items` by usage (or keeps the given name order, which must already be sorted).
    fn sort<T>(self, items: &mut [T], usage: impl Fn(&T) -> Usage) {
        match self {
            SortBy::Name => {}
            SortBy::Cpu => items.sort_by_key(|i| std::cmp::Reverse(usage(i).cpu_milli)),
            SortBy::Memory => items.sort_by_key(|i| std::cmp::Reverse(usage(i).memory)),
        }
    }
}

/// The table kubectl's top printer makes: every cell, the last included, ends a column.
fn print(rows: Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|mut r| {
            r.push(String::new());
            r
        })
        .collect();
    let text = Table::new().format(&rows);
    // The empty last cell leaves the padding of the real last column, as kubectl's tab writer does.
    emit(&text);
}

pub async fn run(ctx: &Context, cmd: &TopCommand) -> anyhow::Result<Outcome> {
    match cmd {
        TopCommand::Node { name, selector, sort_by, no_headers } => {
            let sort = SortBy::parse(sort_by.as_deref())?;
            if name.is_some() && selector.is_some() {
                bail!("only one of NAME or --selector can be provided");
            }
            let params =
                ListParams { label_selector: selector.clone().unwrap_or_default(), ..Default::default() };
            nodes(ctx, name.as_deref(), &params, sort, *no_headers).await
        }
        TopCommand::Pod {
            name,
            all_namespaces,
            containers,
            selector,
            field_selector,
            sort_by,
            no_headers,
        } => {
            let sort = SortBy::parse(sort_by.as_deref())?;
            if name.is_some() && (selector.is_some() || field_selector.is_some()) {
                bail!("only one of NAME or selector can be provided");
            }
            let params = ListParams {
                namespace: if *all_namespaces { String::new() } else { ctx.namespace().to_string() },
                label_selector: selector.clone().unwrap_or_default(),
                field_selector: field_selector.clone().unwrap_or_default(),
                ..Default::default()
            };
            let shape = PodShape {
                all_namespaces: *all_namespaces,
                containers: *containers,
                no_headers: *no_headers,
                sort,
            };
            pods(ctx, name.as_deref(), &params, shape).await
        }
    }
}

/// Reads one object or lists them; the items of the kind `T`.
async fn read<T>(
    ctx: &Context,
    info: &'static KindInfo,
    name: Option<&str>,
    params: &ListParams,
    take: impl Fn(Object) -> Option<T>,
) -> anyhow::Result<Vec<T>> {
    let objects = match name {
        Some(n) => {
            let client = ctx.client().await?;
            let o = client
                .get(info.kind, &ctx.namespace_for(info, &params.namespace), n)
                .await
                .map_err(|e| crate::errors::general(e, ctx.server()))?;
            vec![o]
        }
        None => ctx.list(info, params, 0).await?.0,
    };
    Ok(objects.into_iter().filter_map(take).collect())
}

async fn nodes(
    ctx: &Context,
    name: Option<&str>,
    params: &ListParams,
    sort: SortBy,
    no_headers: bool,
) -> anyhow::Result<Outcome> {
    let take = |o| match o {
        Object::NodeMetrics(m) => Some(m),
        _ => None,
    };
    let mut metrics: Vec<NodeMetrics> = read(ctx, info("NodeMetrics"), name, params, take).await?;
    if metrics.is_empty() {
        bail!("metrics not available yet");
    }
    let take = |o| match o {
        Object::Node(n) => Some(n),
        _ => None,
    };
    let node_list = read(ctx, info("Node"), name, params, take).await?;
    let mut allocatable: BTreeMap<String, Usage> = node_list
        .iter()
        .map(|n| {
            let a = n.status.as_ref().map(|s| Usage::of(&s.allocatable)).unwrap_or_default();
            (n.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default(), a)
        })
        .collect();
    sort.sort(&mut metrics, |m| Usage::of(&m.usage));
    let mut rows = Vec::new();
    if !no_headers {
        rows.push(["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"].map(String::from).to_vec());
    }
    for m in &metrics {
        let node = m.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let mut row = vec![node.clone()];
        row.extend(Usage::of(&m.usage).cells(allocatable.remove(&node)));
        rows.push(row);
    }
    // Nodes without metrics.
    for node in allocatable.into_keys() {
        rows.push(vec![node, "<unknown>".into(), "<unknown>".into(), "<unknown>".into(), "<unknown>".into()]);
    }
    print(rows);
    Ok(Outcome::Success)
}

/// What `top pod` prints.
#[derive(Debug, Clone, Copy)]
struct PodShape {
    all_namespaces: bool,
    containers: bool,
    no_headers: bool,
    sort: SortBy,
}

async fn pods(
    ctx: &Context,
    name: Option<&str>,
    params: &ListParams,
    shape: PodShape,
) -> anyhow::Result<Outcome> {
    let take = |o| match o {
        Object::PodMetrics(m) => Some(m),
        _ => None,
    };
    let metrics: Vec<PodMetrics> = read(ctx, info("PodMetrics"), name, params, take).await?;
    if metrics.is_empty() {
        // kubectl looks at the pods of the current namespace (even with -A) to say why.
        let params = ListParams { namespace: ctx.namespace().to_string(), ..params.clone() };
        let take = |o| match o {
            Object::Pod(p) => Some(p),
            _ => None,
        };
        let pods = read(ctx, info("Pod"), name, &params, take).await?;
        if !pods.is_empty() {
            for p in &pods {
                let m = p.metadata.clone().unwrap_or_default();
                let created = navarch_api::rfc3339::parse(&m.creation_timestamp).unwrap_or(SystemTime::now());
                let age = SystemTime::now().duration_since(created).unwrap_or_default();
                if age > METRICS_CREATION_DELAY {
                    let age = navarch_api::go_duration::format(age);
                    bail!("Metrics not available for pod {}/{}, age: {age}", m.namespace, m.name);
                }
            }
            bail!("metrics not available yet");
        }
        if shape.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", ctx.namespace());
        }
        return Ok(Outcome::Success);
    }
    print(pod_rows(metrics, shape));
    Ok(Outcome::Success)
}

/// The lines of `top pod` (the header first unless `--no-headers`).
fn pod_rows(mut metrics: Vec<PodMetrics>, shape: PodShape) -> Vec<Vec<String>> {
    let key = |m: &PodMetrics| {
        m.metadata.as_ref().map(|m| (m.namespace.clone(), m.name.clone())).unwrap_or_default()
    };
    if shape.all_namespaces {
        metrics.sort_by_key(key);
    } else {
        metrics.sort_by_key(|m| key(m).1);
    }
    shape.sort.sort(&mut metrics, |m| Usage::of_pod(&m.containers));
    let mut rows = Vec::new();
    if !shape.no_headers {
        let mut header = Vec::new();
        if shape.all_namespaces {
            header.push("NAMESPACE".to_string());
        }
        if shape.containers {
            header.push("POD".to_string());
        }
        header.extend(["NAME", "CPU(cores)", "MEMORY(bytes)"].map(String::from));
        rows.push(header);
    }
    for m in &mut metrics {
        let (namespace, pod) = key(m);
        let prefix = if shape.all_namespaces { vec![namespace] } else { Vec::new() };
        if shape.containers {
            m.containers.sort_by(|a, b| a.name.cmp(&b.name));
            shape.sort.sort(&mut m.containers, |c| Usage::of(&c.usage));
            for c in &m.containers {
                let mut row = prefix.clone();
                row.extend([pod.clone(), c.name.clone()]);
                row.extend(Usage::of(&c.usage).cells(None));
                rows.push(row);
            }
        } else {
            let mut row = prefix;
            row.push(pod);
            row.extend(Usage::of_pod(&m.containers).cells(None));
            rows.push(row);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use navarch_api::v1::ObjectMeta;

    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity { string: s.into() }
    }

    fn usage(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
        BTreeMap::from([("cpu".to_string(), q(cpu)), ("memory".to_string(), q(memory))])
    }

    fn pod(ns: &str, name: &str, containers: &[(&str, &str, &str)]) -> PodMetrics {
        PodMetrics {
            metadata: Some(ObjectMeta { namespace: ns.into(), name: name.into(), ..Default::default() }),
            containers: containers
                .iter()
                .map(|(n, cpu, mem)| ContainerMetrics { name: n.to_string(), usage: usage(cpu, mem) })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn usage_rounds_as_kubectl() {
        let u = Usage::of(&usage("123456789n", "2748180Ki"));
        assert_eq!(u, Usage { cpu_milli: 124, memory: 2_814_136_320 });
        assert_eq!(u.cells(None), ["124m", "2683Mi"]);
        let allocatable = Usage { cpu_milli: 2000, memory: 4 << 30 };
        assert_eq!(u.cells(Some(allocatable)), ["124m", "6%", "2683Mi", "65%"]);
        // Summed exactly before rounding: 2 × 0.5m is 1m, not 2m.
        let both = Usage::of_pod(&pod("d", "p", &[("a", "500u", "1Mi"), ("b", "500u", "1Mi")]).containers);
        assert_eq!(both.cells(None), ["1m", "2Mi"]);
    }

    fn texts(rows: Vec<Vec<String>>) -> Vec<String> {
        rows.into_iter().map(|r| r.join(" ")).collect()
    }

    #[test]
    fn pod_rows_sort_and_shape_as_kubectl() {
        let metrics = vec![
            pod("kube-system", "dns", &[("coredns", "2m", "12Mi")]),
            pod("default", "web", &[("app", "100m", "7Mi"), ("log", "1m", "40Mi")]),
            pod("default", "api", &[("app", "50m", "80Mi")]),
        ];
        let shape =
            PodShape { all_namespaces: true, containers: false, no_headers: false, sort: SortBy::Name };
        assert_eq!(
            texts(pod_rows(metrics.clone(), shape)),
            [
                "NAMESPACE NAME CPU(cores) MEMORY(bytes)",
                "default api 50m 80Mi",
                "default web 101m 47Mi",
                "kube-system dns 2m 12Mi"
            ]
        );
        let shape =
            PodShape { all_namespaces: false, containers: true, no_headers: true, sort: SortBy::Memory };
        assert_eq!(
            texts(pod_rows(metrics.clone(), shape)),
            ["api app 50m 80Mi", "web log 1m 40Mi", "web app 100m 7Mi", "dns coredns 2m 12Mi"]
        );
        let shape = PodShape { sort: SortBy::Cpu, containers: false, ..shape };
        assert_eq!(texts(pod_rows(metrics, shape)), ["web 101m 47Mi", "api 50m 80Mi", "dns 2m 12Mi"]);
    }

    #[test]
    fn sort_by_takes_cpu_or_memory() {
        assert_eq!(SortBy::parse(Some("cpu")).unwrap(), SortBy::Cpu);
        assert_eq!(SortBy::parse(None).unwrap(), SortBy::Name);
        assert_eq!(
            SortBy::parse(Some("disk")).unwrap_err().to_string(),
            "--sort-by accepts only cpu or memory"
        );
    }
}
