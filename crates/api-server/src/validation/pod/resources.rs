//! Resource requirements of containers and pods (`resources`, `overhead`): resource names, quantities,
//! requests against limits, and extended resources.

use std::collections::BTreeMap;

use navarch_api::names;
use navarch_api::quantity::{self, Amount};
use navarch_api::v1::*;

use crate::validation::field::{Errors, Path, q};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResourceScope {
    Container,
    Pod,
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// Extended resources (a domain other than kubernetes.io) are counted in whole units, never overcommitted.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

pub(super) fn validate_resources(
    r: &ResourceRequirements,
    path: &Path,
    scope: ResourceScope,
    errs: &mut Errors,
) {
    let limits = validate_resource_list(&r.limits, &path.child("limits"), scope, errs);
    let requests = validate_resource_list(&r.requests, &path.child("requests"), scope, errs);
    for (name, req) in &requests {
        let p = path.child("requests").key(name);
        let req_text = &r.requests[*name].string;
        match limits.get(name) {
            Some(lim) if is_extended_resource(name) && req != lim => {
                let lim_text = &r.limits[*name].string;
                errs.invalid(&p, q(req_text), format!("must be equal to {name} limit of {lim_text}"));
            }
            Some(lim) if req > lim => {
                let lim_text = &r.limits[*name].string;
                errs.invalid(
                    &p,
                    q(req_text),
                    format!("must be less than or equal to {name} limit of {lim_text}"),
                );
            }
            None if is_extended_resource(name) => {
                errs.forbidden(&p, "Limit must be set for non overcommitable resources");
            }
            _ => {}
        }
    }
    for (i, c) in r.claims.iter().enumerate() {
        let p = path.child("claims").index(i);
        if c.name.is_empty() {
            errs.required(&p.child("name"), "");
        }
    }
}

/// Checks each name and amount; returns the amounts that parsed.
pub(super) fn validate_resource_list<'a>(
    list: &'a BTreeMap<String, Quantity>,
    path: &Path,
    scope: ResourceScope,
    errs: &mut Errors,
) -> BTreeMap<&'a str, Amount> {
    let mut out = BTreeMap::new();
    for (name, qty) in list {
        let p = path.key(name);
        let reasons = names::qualified_name(name);
        if !reasons.is_empty() {
            errs.syntax(&p, name, reasons);
        } else if !name.contains('/') {
            let ok = match scope {
                ResourceScope::Container => is_standard_container_resource(name),
                ResourceScope::Pod => {
                    matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage")
                        || name.starts_with("hugepages-")
                }
            };
            if !ok {
                let what = if scope == ResourceScope::Container { "containers" } else { "pods" };
                errs.invalid(&p, q(name), format!("must be a standard resource for {what}"));
            }
        }
        match quantity::parse(&qty.string) {
            Err(e) => errs.syntax(&p, &qty.string, vec![e.to_string()]),
            Ok(a) if a.is_negative() => {
                errs.invalid(&p, q(&qty.string), "must be greater than or equal to 0")
            }
            Ok(a) => {
                if is_extended_resource(name) && a.0 % 1_000_000_000 != 0 {
                    errs.invalid(&p, q(&qty.string), "must be an integer");
                }
                out.insert(name.as_str(), a);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POD, assert_edit_errors};
    use crate::validation::testing::*;

    #[test]
    fn invalid_resources() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            (
                "requests: {cpu: 250m, memory: 64Mi}",
                "requests: {cpu: '2', memory: 64Mi}",
                format!("{c}.resources.requests[cpu]"),
                "Invalid value: \"2\": must be less than or equal to cpu limit of 500m",
            ),
            (
                "requests: {cpu: 250m, memory: 64Mi}",
                "requests: {cpu: 250m, memory: 64Mx}",
                format!("{c}.resources.requests[memory]"),
                "Invalid value: \"64Mx\": quantities must match",
            ),
            (
                "requests: {cpu: 250m, memory: 64Mi}",
                "requests: {cpu: 250m, memory: -64Mi}",
                format!("{c}.resources.requests[memory]"),
                "must be greater than or equal to 0",
            ),
            (
                "requests: {cpu: 250m, memory: 64Mi}",
                "requests: {cpu: 250m, memory: 64Mi, gpu: '1'}",
                format!("{c}.resources.requests[gpu]"),
                "must be a standard resource for containers",
            ),
            (
                "requests: {cpu: 250m, memory: 64Mi}",
                "requests: {cpu: 250m, memory: 64Mi, example.com/gpu: '1'}",
                format!("{c}.resources.requests[example.com/gpu]"),
                "Forbidden: Limit must be set for non overcommitable resources",
            ),
        ]);
    }

    #[test]
    fn extended_resources_are_whole_units() {
        let yaml = edit(
            POD,
            "limits: {cpu: 500m, memory: 128Mi}",
            "limits: {cpu: 500m, memory: 128Mi, example.com/gpu: 500m}",
        );
        let errs = defaulted_errors(&yaml);
        let c = "spec.containers[0].resources";
        // The request defaults to the limit, so both are reported.
        assert_eq!(errs.len(), 2, "{}", render(&errs));
        assert_eq!(
            errs[0].to_string(),
            format!("{c}.limits[example.com/gpu]: Invalid value: \"500m\": must be an integer")
        );
        assert_eq!(errs[1].path, format!("{c}.requests[example.com/gpu]"));
    }
}
