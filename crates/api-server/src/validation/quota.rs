//! v1 ResourceQuota: Kubernetes' `ValidateResourceQuota` and `ValidateResourceQuotaUpdate` — resource
//! names a quota may hold (standard quota names, or qualified names with a `/`: `count/<resource>`,
//! per-class storage, extended `requests.*`), non-negative amounts (whole for counts), scopes and scope
//! selectors that exist, fit the hard resources and do not conflict, and scopes that never change.
//! Values print as Kubernetes' field errors print them (Go's `%#v` for lists and the selector).

use std::collections::BTreeMap;

use navarch_api::names;
use navarch_api::quota::names::{
    SCOPES, is_integer_resource, is_scope_valid_for_resource, is_standard_quota_resource,
    is_standard_resource,
};
use navarch_api::v1::{Quantity, ResourceQuota, ResourceQuotaSpec, ScopeSelector};

use super::field::{Errors, Path, q};

pub(super) fn validate_resource_quota(rq: &ResourceQuota, old: Option<&ResourceQuota>, errs: &mut Errors) {
    let spec = rq.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    validate_list(&spec.hard, &path.child("hard"), errs);
    validate_scopes(&spec, &path, errs);
    if let Some(sel) = &spec.scope_selector {
        validate_scope_selector(&spec, sel, &path.child("scopeSelector"), errs);
    }
    if let Some(status) = &rq.status {
        validate_list(&status.hard, &Path::new("status").child("hard"), errs);
        validate_list(&status.used, &Path::new("status").child("used"), errs);
    }
    if let Some(old) = old {
        let old_spec = old.spec.clone().unwrap_or_default();
        let set = |s: &[String]| s.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        if set(&old_spec.scopes) != set(&spec.scopes) {
            errs.invalid(&path.child("scopes"), go_scopes(&spec.scopes), "field is immutable");
        }
    }
}

/// Kubernetes' `ValidateResourceQuotaResourceName` and `ValidateResourceQuantityValue` for each entry.
fn validate_list(list: &BTreeMap<String, Quantity>, path: &Path, errs: &mut Errors) {
    for (name, value) in list {
        let p = path.key(name);
        let reasons = names::qualified_name(name);
        let got = format!(", got {}", q(name));
        for r in &reasons {
            errs.invalid(&p, name, r.strip_suffix(&got).unwrap_or(r));
        }
        if reasons.is_empty() && !name.contains('/') {
            if !is_standard_resource(name) {
                errs.invalid(&p, name, "must be a standard resource type or fully qualified");
            }
            if !is_standard_quota_resource(name) {
                errs.invalid(&p, name, "must be a standard resource for quota");
            }
        }
        match value.amount() {
            Err(e) => errs.syntax(&p, &value.string, vec![e.to_string()]),
            Ok(a) if a.is_negative() => {
                errs.invalid(&p, q(&value.string), "must be greater than or equal to 0")
            }
            Ok(a) if is_integer_resource(name) && a.milli_value() % 1000 != 0 => {
                errs.invalid(&p, q(&value.string), "must be an integer")
            }
            Ok(_) => {}
        }
    }
}

/// Go's `%#v` of `[]core.ResourceQuotaScope`.
fn go_scopes(scopes: &[String]) -> String {
    if scopes.is_empty() {
        return "[]core.ResourceQuotaScope(nil)".into();
    }
    format!("[]core.ResourceQuotaScope{{{}}}", scopes.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "))
}

/// Go's `%#v` of a `*core.ScopeSelector` as field errors print it (the pointer followed).
fn go_selector(sel: &ScopeSelector) -> String {
    let reqs: Vec<String> = sel
        .match_expressions
        .iter()
        .map(|r| {
            let values = if r.values.is_empty() {
                "[]string(nil)".to_string()
            } else {
                format!("[]string{{{}}}", r.values.iter().map(|v| q(v)).collect::<Vec<_>>().join(", "))
            };
            format!(
                "core.ScopedResourceSelectorRequirement{{ScopeName:{}, Operator:{}, Values:{values}}}",
                q(&r.scope_name),
                q(&r.operator)
            )
        })
        .collect();
    let list = if reqs.is_empty() {
        "[]core.ScopedResourceSelectorRequirement(nil)".to_string()
    } else {
        format!("[]core.ScopedResourceSelectorRequirement{{{}}}", reqs.join(", "))
    };
    format!("core.ScopeSelector{{MatchExpressions:{list}}}")
}

/// BestEffort with NotBestEffort, Terminating with NotTerminating.
fn conflicting(scopes: &[&str]) -> usize {
    [("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")]
        .iter()
        .filter(|(a, b)| scopes.contains(a) && scopes.contains(b))
        .count()
}

/// The standard hard names a scope does not apply to (each one is an error).
fn unfit(spec: &ResourceQuotaSpec, scope: &str) -> usize {
    spec.hard
        .keys()
        .filter(|k| is_standard_quota_resource(k) && !is_scope_valid_for_resource(scope, k))
        .count()
}

fn validate_scopes(spec: &ResourceQuotaSpec, path: &Path, errs: &mut Errors) {
    if spec.scopes.is_empty() {
        return;
    }
    let p = path.child("scopes");
    let shown = go_scopes(&spec.scopes);
    for scope in &spec.scopes {
        if !SCOPES.contains(&scope.as_str()) {
            errs.invalid(&p, &shown, "unsupported scope");
        }
        for _ in 0..unfit(spec, scope) {
            errs.invalid(&p, &shown, "unsupported scope applied to resource");
        }
    }
    let names: Vec<&str> = spec.scopes.iter().map(String::as_str).collect();
    for _ in 0..conflicting(&names) {
        errs.invalid(&p, &shown, "conflicting scopes");
    }
}

fn validate_scope_selector(spec: &ResourceQuotaSpec, sel: &ScopeSelector, path: &Path, errs: &mut Errors) {
    let p = path.child("matchExpressions");
    for req in &sel.match_expressions {
        if !SCOPES.contains(&req.scope_name.as_str()) {
            errs.invalid(&p.child("scopeName"), q(&req.scope_name), "unsupported scope");
        }
        for _ in 0..unfit(spec, &req.scope_name) {
            errs.invalid(&p, go_selector(sel), "unsupported scope applied to resource");
        }
        let exists_only =
            ["BestEffort", "NotBestEffort", "Terminating", "NotTerminating", "CrossNamespacePodAffinity"];
        if exists_only.contains(&req.scope_name.as_str()) && req.operator != "Exists" {
            errs.invalid(
                &p.child("operator"),
                q(&req.operator),
                "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            );
        }
        match req.operator.as_str() {
            "In" | "NotIn" if req.values.is_empty() => errs.required(
                &p.child("values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            ),
            "Exists" | "DoesNotExist" if !req.values.is_empty() => errs.invalid(
                &p.child("values"),
                format!("[]string{{{}}}", req.values.iter().map(|v| q(v)).collect::<Vec<_>>().join(", ")),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => errs.invalid(&p.child("operator"), q(&req.operator), "not a valid selector operator"),
        }
    }
    let names: Vec<&str> = sel.match_expressions.iter().map(|r| r.scope_name.as_str()).collect();
    for _ in 0..conflicting(&names) {
        errs.invalid(&p, go_scopes(&spec.scopes), "conflicting scopes");
    }
}

#[cfg(test)]
mod tests {
    use crate::validation::testing::{assert_edit_errors, assert_update_error, assert_valid, edit};

    const QUOTA: &str = "\
apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
  namespace: default
spec:
  hard:
    requests.memory: 2Gi
    pods: '10'
";

    #[test]
    fn valid_quotas() {
        assert_valid(QUOTA);
        for hard in [
            "    count/deployments.apps: '3'\n",
            "    gold.storageclass.storage.k8s.io/requests.storage: 10Gi\n",
            "    requests.example.com/gpu: '2'\n",
            "    limits.cpu: '2'\n    services.nodeports: '0'\n",
            "    hugepages-2Mi: 1Gi\n",
        ] {
            assert_valid(&edit(QUOTA, "    pods: '10'\n", hard));
        }
        assert_valid(&format!("{QUOTA}  scopes: [NotBestEffort, Terminating]\n"));
        assert_valid(&format!(
            "{QUOTA}  scopeSelector:\n    matchExpressions:\n    - {{scopeName: PriorityClass, operator: In, values: [high]}}\n"
        ));
    }

    #[test]
    fn invalid_quotas() {
        assert_edit_errors(
            QUOTA,
            &[
                (
                    "    pods: '10'\n",
                    "    pods: '-1'\n",
                    "spec.hard[pods]",
                    "Invalid value: \"-1\": must be greater than or equal to 0",
                ),
                (
                    "    pods: '10'\n",
                    "    pods: 1500m\n",
                    "spec.hard[pods]",
                    "Invalid value: \"1500m\": must be an integer",
                ),
                (
                    "    pods: '10'\n",
                    "    storage: 1Gi\n",
                    "spec.hard[storage]",
                    "Invalid value: storage: must be a standard resource for quota",
                ),
                (
                    "  hard:\n",
                    "  scopes: [BestEffort]\n  hard:\n",
                    "spec.scopes",
                    "Invalid value: []core.ResourceQuotaScope{\"BestEffort\"}: unsupported scope applied to resource",
                ),
                (
                    "  hard:\n",
                    "  scopes: [Foo]\n  hard:\n",
                    "spec.scopes",
                    "Invalid value: []core.ResourceQuotaScope{\"Foo\"}: unsupported scope",
                ),
            ],
        );
        assert_edit_errors(
            &edit(QUOTA, "    requests.memory: 2Gi\n", ""),
            &[(
                "  hard:\n",
                "  scopes: [BestEffort, NotBestEffort]\n  hard:\n",
                "spec.scopes",
                "Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: conflicting scopes",
            )],
        );
        assert_edit_errors(
            QUOTA,
            &[(
                "  hard:\n",
                "  scopeSelector:\n    matchExpressions:\n    - {scopeName: PriorityClass, operator: In}\n  hard:\n",
                "spec.scopeSelector.matchExpressions.values",
                "Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )],
        );
    }

    #[test]
    fn unknown_names_get_both_errors() {
        let errs =
            crate::validation::testing::defaulted_errors(&edit(QUOTA, "    pods: '10'\n", "    foo: '1'\n"));
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "spec.hard[foo]: Invalid value: foo: must be a standard resource type or fully qualified",
                "spec.hard[foo]: Invalid value: foo: must be a standard resource for quota",
            ]
        );
    }

    #[test]
    fn a_new_quota_starts_without_status() {
        let mut q = crate::validation::testing::parse(&format!(
            "{QUOTA}status:\n  hard: {{pods: '10'}}\n  used: {{pods: '0'}}\n"
        ));
        crate::validation::prepare_write(&mut q, None);
        let navarch_api::Object::ResourceQuota(q) = q else { panic!() };
        assert_eq!(q.status, None);
    }

    #[test]
    fn scopes_never_change() {
        let scoped = format!("{QUOTA}  scopes: [NotTerminating]\n");
        assert_update_error(
            &scoped,
            QUOTA,
            "spec.scopes",
            "Invalid value: []core.ResourceQuotaScope(nil): field is immutable",
        );
    }
}
