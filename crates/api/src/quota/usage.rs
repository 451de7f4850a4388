//! The resource quota controller's recomputation of a quota (Kubernetes' `CalculateUsage`,
//! `CalculateUsageStats` and `syncResourceQuota`): `status.hard` is `spec.hard`; `status.used` holds, for
//! every hard name some evaluator accounts, the sum over the namespace's objects under the quota's
//! scopes (zero when none); other hard names keep what they had.

use std::time::SystemTime;

use super::evaluator::{Evaluator, Item};
use super::{Qty, ResourceList, add, from_quantities, mask, scope_selectors, to_quantities};
use crate::v1::{ResourceQuota, ResourceQuotaStatus};

/// The evaluators of every namespaced kind that account some name of `hard`.
pub fn evaluators_for(hard: &ResourceList) -> Vec<Evaluator> {
    crate::KINDS
        .iter()
        .filter_map(Evaluator::for_kind)
        .filter(|e| !e.matching_resources(hard.keys()).is_empty())
        .collect()
}

/// What one evaluator's objects use of the quota: zero for each hard name it accounts, plus the usage of
/// every object under all the quota's scopes.
pub fn usage_of<'a>(
    ev: &Evaluator,
    quota: &ResourceQuota,
    items: impl IntoIterator<Item = Item<'a>>,
    now: SystemTime,
) -> ResourceList {
    let spec = quota.spec.clone().unwrap_or_default();
    let hard = from_quantities(&spec.hard);
    let names = ev.matching_resources(hard.keys());
    let scopes = scope_selectors(&spec);
    let mut used: ResourceList = names.iter().map(|n| (n.clone(), Qty::zero())).collect();
    for item in items {
        if ev.matches_scopes(&scopes, item) {
            used = add(&used, &mask(&ev.usage(item, now), &names));
        }
    }
    used
}

/// The status the quota should have, given the summed usage of its evaluators.
pub fn status(quota: &ResourceQuota, computed: &ResourceList) -> ResourceQuotaStatus {
    let spec = quota.spec.clone().unwrap_or_default();
    let old = quota.status.clone().unwrap_or_default();
    let mut used = from_quantities(&old.used);
    used.extend(computed.iter().map(|(k, v)| (k.clone(), *v)));
    let used = mask(&used, spec.hard.keys());
    ResourceQuotaStatus { hard: spec.hard.clone(), used: to_quantities(&used) }
}
