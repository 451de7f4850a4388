//! ResourceQuota accounting, shared by the api-server's ResourceQuota admission and the controller-manager's
//! resource quota controller (Kubernetes' `k8s.io/apiserver/pkg/quota/v1` and the evaluators of
//! `pkg/quota/v1/evaluator/core`).
//!
//! * [`Qty`] / [`ResourceList`]: amounts with the format they are written in, and Kubernetes' arithmetic on
//!   resource lists (`Add` keeps the format of the first non-zero addend, masks, comparisons).
//! * [`names`]: which resource names and scopes a quota may use (validation's facts).
//! * [`evaluator`]: what an object of each kind uses (pods: compute and `pods`; claims: storage; services:
//!   node ports and load balancers; every kind: `count/<resource>`), which quotas' scopes it falls under,
//!   and which compute values a pod must state.
//! * [`check`]: the admission decision for one write against the namespace's quotas (the new
//!   `status.used` of each quota it charges, or Kubernetes' refusal).
//! * [`usage`]: the controller's recomputation of a quota's status from the stored objects.

pub mod check;
pub mod evaluator;
pub mod names;
pub mod usage;

use std::collections::BTreeMap;
use std::fmt;

use crate::quantity::{Amount, Format, format_of};
use crate::v1::{Quantity, ResourceQuota, ResourceQuotaSpec, ScopedResourceSelectorRequirement};

/// An amount and the format it is written in (Kubernetes' `resource.Quantity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qty {
    pub amount: Amount,
    pub format: Format,
}

impl Qty {
    /// A whole number (DecimalSI): counts.
    pub fn int(n: i64) -> Qty {
        Qty { amount: Amount(i128::from(n) * 1_000_000_000), format: Format::DecimalSi }
    }
    /// Zero, written as DecimalSI.
    pub fn zero() -> Qty {
        Qty { amount: Amount(0), format: Format::DecimalSi }
    }
    /// A quantity's amount and format; `None` when malformed (validation refuses those).
    pub fn parse(q: &Quantity) -> Option<Qty> {
        let amount = q.amount().ok()?;
        Some(Qty { amount, format: format_of(&q.string) })
    }
    pub fn is_zero(self) -> bool {
        self.amount.0 == 0
    }
    pub fn to_quantity(self) -> Quantity {
        Quantity { string: self.to_string() }
    }
}

/// `Quantity.Add`: a zero takes the other's format.
impl std::ops::Add for Qty {
    type Output = Qty;
    fn add(self, o: Qty) -> Qty {
        let format = if self.amount.0 == 0 { o.format } else { self.format };
        Qty { amount: Amount(self.amount.0 + o.amount.0), format }
    }
}

impl std::ops::Sub for Qty {
    type Output = Qty;
    fn sub(self, o: Qty) -> Qty {
        Qty { amount: Amount(self.amount.0 - o.amount.0), format: self.format }
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.amount.canonical(self.format))
    }
}

/// Resource name → amount (Kubernetes' `ResourceList`), sorted by name.
pub type ResourceList = BTreeMap<String, Qty>;

/// The well-formed entries of a list of quantities.
pub fn from_quantities(list: &BTreeMap<String, Quantity>) -> ResourceList {
    list.iter().filter_map(|(k, v)| Some((k.clone(), Qty::parse(v)?))).collect()
}

/// The list in Kubernetes' canonical text.
pub fn to_quantities(list: &ResourceList) -> BTreeMap<String, Quantity> {
    list.iter().map(|(k, v)| (k.clone(), v.to_quantity())).collect()
}

/// `quota.Add`: every key of both, summed.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        let sum = out.get(k).map_or(*v, |x| *x + *v);
        out.insert(k.clone(), sum);
    }
    out
}

/// `quota.SubtractWithNonNegativeResult`: `a - b` per key of either, never below zero.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    for (k, v) in a {
        let d = b.get(k).map_or(*v, |o| *v - *o);
        out.insert(k.clone(), if d.amount.0 > 0 { d } else { Qty::zero() });
    }
    for k in b.keys() {
        out.entry(k.clone()).or_insert_with(Qty::zero);
    }
    out
}

/// `quota.Mask`: the entries whose names are in `names`.
pub fn mask<'a>(a: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    names.into_iter().filter_map(|n| Some((n.clone(), *a.get(n)?))).collect()
}

/// `quota.LessThanOrEqual`: the names of `a` whose amount is above `b`'s (names `b` lacks are fine).
pub fn exceeded(a: &ResourceList, b: &ResourceList) -> Vec<String> {
    a.iter().filter(|(k, v)| b.get(*k).is_some_and(|h| v.amount > h.amount)).map(|(k, _)| k.clone()).collect()
}

/// `quota.IsZero`.
pub fn is_zero(a: &ResourceList) -> bool {
    a.values().all(|v| v.is_zero())
}

/// The admission's `prettyPrint`: `name=value` sorted by name, joined with commas.
pub fn pretty_print(a: &ResourceList) -> String {
    a.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// A quota's scopes as selector requirements (`spec.scopes` as `Exists`, then `spec.scopeSelector`),
/// Kubernetes' `getScopeSelectorsFromQuota`.
pub fn scope_selectors(spec: &ResourceQuotaSpec) -> Vec<ScopedResourceSelectorRequirement> {
    let mut out: Vec<ScopedResourceSelectorRequirement> = spec
        .scopes
        .iter()
        .map(|s| ScopedResourceSelectorRequirement {
            scope_name: s.clone(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    if let Some(sel) = &spec.scope_selector {
        out.extend(sel.match_expressions.iter().cloned());
    }
    out
}

/// The quota's `status.hard` and `status.used` as lists.
pub fn status_lists(q: &ResourceQuota) -> (ResourceList, ResourceList) {
    let status = q.status.clone().unwrap_or_default();
    (from_quantities(&status.hard), from_quantities(&status.used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> ResourceList {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Qty::parse(&Quantity { string: v.to_string() }).unwrap()))
            .collect()
    }

    #[test]
    fn add_keeps_the_first_non_zero_format() {
        let zero = ResourceList::from([("requests.memory".to_string(), Qty::zero())]);
        let sum =
            add(&add(&zero, &list(&[("requests.memory", "1Gi")])), &list(&[("requests.memory", "512Mi")]));
        assert_eq!(pretty_print(&sum), "requests.memory=1536Mi");
        let cpu = add(&list(&[("cpu", "500m")]), &list(&[("cpu", "1500m"), ("pods", "1")]));
        assert_eq!(pretty_print(&cpu), "cpu=2,pods=1");
    }

    #[test]
    fn subtract_never_goes_below_zero() {
        let d = subtract_non_negative(&list(&[("a", "1"), ("b", "5")]), &list(&[("b", "7"), ("c", "1")]));
        assert_eq!(pretty_print(&d), "a=1,b=0,c=0");
    }

    #[test]
    fn exceeded_names_only_limited_ones() {
        let used = list(&[("pods", "11"), ("requests.memory", "1Gi"), ("secrets", "9")]);
        let hard = list(&[("pods", "10"), ("requests.memory", "2Gi")]);
        assert_eq!(exceeded(&used, &hard), vec!["pods".to_string()]);
    }
}
