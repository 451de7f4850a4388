//! Resolving what the user typed to kinds (`po`, `pods`, `Pod`, `deployments.apps`) and reading the
//! resource arguments of get/describe/delete/label (`KIND [NAME...]`, `KIND/NAME...`, `po,svc`).

use anyhow::{bail, ensure};
use navarch_api::{KindInfo, kind_info};

/// Finds a kind like kubectl resolves a resource type.
pub fn resolve(name: &str) -> anyhow::Result<&'static KindInfo> {
    let found = kind_info(name).filter(|info| {
        // `deployments.apps` must name the kind's group; a bare name matches any group.
        match name.split_once('.') {
            Some((_, group)) => {
                group == api_group(info) || info.api_version.starts_with(&format!("{group}/"))
            }
            None => true,
        }
    });
    match found {
        Some(info) => Ok(info),
        None => bail!("the server doesn't have a resource type {name:?}"),
    }
}

/// The API group of a kind: `apps` for `apps/v1`, empty for the core group (`v1`).
pub fn api_group(info: &KindInfo) -> &'static str {
    match info.api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// kubectl's `kind.group` form of a kind, as in `deployment.apps/web` (`pod/web` for the core group).
pub fn singular_ref(info: &KindInfo) -> String {
    match api_group(info) {
        "" => info.singular.clone(),
        group => format!("{}.{group}", info.singular),
    }
}

/// kubectl's `plural.group` form, as in `deployments.apps "web" not found`.
pub fn plural_ref(info: &KindInfo) -> String {
    match api_group(info) {
        "" => info.plural.to_string(),
        group => format!("{}.{group}", info.plural),
    }
}

/// kubectl's `Kind.group` form, as in `Deployment.apps "web" is invalid`.
pub fn kind_ref(info: &KindInfo) -> String {
    match api_group(info) {
        "" => info.kind.to_string(),
        group => format!("{}.{group}", info.kind),
    }
}

/// `deployment.apps/web`.
pub fn object_ref(info: &KindInfo, name: &str) -> String {
    format!("{}/{name}", singular_ref(info))
}

/// One kind and the names asked for (empty: every object of the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub kind: &'static KindInfo,
    pub names: Vec<String>,
}

/// Reads resource arguments: `KIND`, `KIND NAME...`, `KIND1,KIND2`, or `KIND/NAME...` (possibly mixing
/// kinds). Selections keep the order in which kinds were first named.
pub fn parse_args(args: &[String]) -> anyhow::Result<Vec<Selection>> {
    ensure!(
        !args.is_empty(),
        "you must specify the type of resource (e.g. `pods`, `deploy/web`); see `navctl api-resources`"
    );
    let mut out: Vec<Selection> = Vec::new();
    let mut add = |kind: &'static KindInfo, name: Option<&str>| {
        let idx = match out.iter().position(|s| s.kind.kind == kind.kind) {
            Some(i) => i,
            None => {
                out.push(Selection { kind, names: Vec::new() });
                out.len() - 1
            }
        };
        if let Some(n) = name
            && !out[idx].names.iter().any(|x| x == n)
        {
            out[idx].names.push(n.to_string());
        }
    };
    if args[0].contains('/') {
        for a in args {
            let Some((kind, name)) = a.split_once('/') else {
                bail!(
                    "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'navctl get resource/<resource_name>' instead of 'navctl get resource resource/<resource_name>')"
                );
            };
            ensure!(
                !kind.is_empty() && !name.is_empty(),
                "arguments in resource/name form must have a single resource and name, got {a:?}"
            );
            add(resolve(kind)?, Some(name));
        }
    } else {
        let mut kinds = Vec::new();
        for name in args[0].split(',').filter(|k| !k.is_empty()) {
            if name == "all" {
                kinds.extend(navarch_api::CATEGORY_ALL.iter().filter_map(|k| kind_info(k)));
            } else {
                kinds.push(resolve(name)?);
            }
        }
        ensure!(!kinds.is_empty(), "you must specify the type of resource");
        for name in &args[1..] {
            ensure!(
                !name.contains('/'),
                "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'navctl get resource/<resource_name>' instead of 'navctl get resource resource/<resource_name>')"
            );
        }
        for kind in kinds {
            add(kind, None);
            for name in &args[1..] {
                add(kind, Some(name));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolves_every_spelling() {
        for name in ["ConfigMap", "configmap", "configmaps", "cm", "configmaps.", "ConfigMaps"] {
            let name = name.trim_end_matches('.');
            assert_eq!(resolve(name).unwrap().kind, "ConfigMap", "{name}");
        }
        assert_eq!(resolve("ns").unwrap().kind, "Namespace");
        let err = resolve("frobs").unwrap_err().to_string();
        assert_eq!(err, "the server doesn't have a resource type \"frobs\"");
        assert!(resolve("configmaps.apps").is_err(), "wrong group");
    }

    #[test]
    fn kubectl_aliases_when_served() {
        let aliases = [
            ("po", "Pod"),
            ("svc", "Service"),
            ("deploy", "Deployment"),
            ("rs", "ReplicaSet"),
            ("rc", "ReplicationController"),
            ("ds", "DaemonSet"),
            ("sts", "StatefulSet"),
            ("ns", "Namespace"),
            ("cm", "ConfigMap"),
            ("ep", "Endpoints"),
            ("no", "Node"),
            ("sa", "ServiceAccount"),
            ("ev", "Event"),
            ("cj", "CronJob"),
            ("lease", "Lease"),
            ("secret", "Secret"),
            ("deployments.apps", "Deployment"),
            ("jobs.batch", "Job"),
            ("leases.coordination.k8s.io", "Lease"),
        ];
        for (alias, kind) in aliases {
            if kind_info(kind).is_none() {
                continue; // not in the kinds table yet
            }
            assert_eq!(resolve(alias).map(|k| k.kind).ok(), Some(kind), "{alias}");
        }
    }

    #[test]
    fn refs() {
        let cm = resolve("cm").unwrap();
        assert_eq!(object_ref(cm, "x"), "configmap/x");
        assert_eq!(plural_ref(cm), "configmaps");
        if let Some(d) = kind_info("Deployment") {
            assert_eq!(object_ref(d, "web"), "deployment.apps/web");
            assert_eq!(plural_ref(d), "deployments.apps");
            assert_eq!(kind_ref(d), "Deployment.apps");
        }
    }

    #[test]
    fn kind_then_names() {
        let sel = parse_args(&strings(&["cm", "a", "b"])).unwrap();
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].kind.kind, "ConfigMap");
        assert_eq!(sel[0].names, ["a", "b"]);
        let sel = parse_args(&strings(&["cm,ns"])).unwrap();
        assert_eq!(sel.iter().map(|s| s.kind.kind).collect::<Vec<_>>(), ["ConfigMap", "Namespace"]);
        assert!(sel.iter().all(|s| s.names.is_empty()));
    }

    #[test]
    fn slash_form_groups_by_kind() {
        let sel = parse_args(&strings(&["cm/a", "ns/b", "configmap/c"])).unwrap();
        assert_eq!(sel.len(), 2);
        assert_eq!((sel[0].kind.kind, sel[0].names.clone()), ("ConfigMap", strings(&["a", "c"])));
        assert_eq!((sel[1].kind.kind, sel[1].names.clone()), ("Namespace", strings(&["b"])));
        if kind_info("Pod").is_some() && kind_info("Deployment").is_some() {
            let sel = parse_args(&strings(&["po/a", "deploy/b"])).unwrap();
            assert_eq!(sel[0].kind.kind, "Pod");
            assert_eq!(sel[1].kind.kind, "Deployment");
            assert_eq!(sel[1].names, ["b"]);
        }
    }

    #[test]
    fn all_expands_to_workloads() {
        let sel = parse_args(&strings(&["all"])).unwrap();
        let kinds: Vec<&str> = sel.iter().map(|s| s.kind.kind).collect();
        assert_eq!(kinds, navarch_api::CATEGORY_ALL);
        let sel = parse_args(&strings(&["cm,all"])).unwrap();
        assert_eq!(sel.len(), 1 + navarch_api::CATEGORY_ALL.len());
    }

    #[test]
    fn mixed_forms_are_errors() {
        assert!(parse_args(&strings(&["cm/a", "b"])).is_err());
        assert!(parse_args(&strings(&["cm", "ns/b"])).is_err());
        assert!(parse_args(&strings(&["cm/"])).is_err());
        assert!(parse_args(&[]).is_err());
        assert!(parse_args(&strings(&["nope/a"])).is_err());
    }
}
