//! The admission decision for one write (Kubernetes' `checkRequest`): the quotas whose `status.hard`
//! names something the object uses and whose scopes it falls under; for each, the pod's required compute
//! values and a known usage; then the object's usage (on update, what it adds) added to each quota's
//! `status.used` and compared with `status.hard`. A quota whose status is not computed yet (empty
//! `status.hard`) does not apply, as in Kubernetes.

use std::time::SystemTime;

use thiserror::Error;

use super::evaluator::{Evaluator, Item};
use super::{ResourceList, add, exceeded, is_zero, mask, pretty_print, status_lists, subtract_non_negative};
use crate::v1::ResourceQuota;

/// Why a write is refused; the text is Kubernetes' (after `<plural> "<name>" is forbidden: `).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denial {
    #[error("failed quota: {quota}: {message}")]
    Constraint { quota: String, message: String },
    #[error("status unknown for quota: {quota}, resources: {}", resources.join(","))]
    StatusUnknown { quota: String, resources: Vec<String> },
    #[error("quota usage is negative for resource(s): {}", .0.join(","))]
    Negative(Vec<String>),
    #[error("exceeded quota: {quota}, requested: {requested}, used: {used}, limited: {limited}")]
    Exceeded { quota: String, requested: String, used: String, limited: String },
}

/// One write to admit.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub evaluator: &'a Evaluator,
    pub object: Item<'a>,
    /// The stored object, on update.
    pub old: Option<Item<'a>>,
    pub now: SystemTime,
}

/// The new `status.used` of each quota (by index into `quotas`) the write charges, or why it is refused.
pub fn check(quotas: &[ResourceQuota], r: &Request) -> Result<Vec<(usize, ResourceList)>, Denial> {
    let mut interesting = Vec::new();
    for (i, q) in quotas.iter().enumerate() {
        if !r.evaluator.matches(q, r.object) {
            continue;
        }
        let name = q.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let (hard, used) = status_lists(q);
        let restricted = r.evaluator.matching_resources(hard.keys());
        if let Err(message) = r.evaluator.constraints(&restricted, r.object) {
            return Err(Denial::Constraint { quota: name, message });
        }
        if restricted.iter().any(|k| !used.contains_key(k)) {
            let mut resources = restricted.clone();
            resources.sort();
            return Err(Denial::StatusUnknown { quota: name, resources });
        }
        interesting.push(i);
    }
    if interesting.is_empty() {
        return Ok(Vec::new());
    }
    let mut delta = r.evaluator.usage(r.object, r.now);
    let negative: Vec<String> =
        delta.iter().filter(|(_, v)| v.amount.is_negative()).map(|(k, _)| k.clone()).collect();
    if !negative.is_empty() {
        return Err(Denial::Negative(negative));
    }
    if let Some(old) = r.old {
        delta = subtract_non_negative(&delta, &r.evaluator.usage(old, r.now));
    }
    if is_zero(&delta) {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for i in interesting {
        let q = &quotas[i];
        let (hard, used) = status_lists(q);
        let requested = mask(&delta, hard.keys());
        let new_used = add(&used, &requested);
        let over = exceeded(&mask(&new_used, requested.keys()), &hard);
        if !over.is_empty() {
            return Err(Denial::Exceeded {
                quota: q.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                requested: pretty_print(&mask(&requested, &over)),
                used: pretty_print(&mask(&used, &over)),
                limited: pretty_print(&mask(&hard, &over)),
            });
        }
        if new_used != used {
            out.push((i, new_used));
        }
    }
    Ok(out)
}
