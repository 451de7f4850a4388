//! v1 LimitRange: Kubernetes' `SetDefaults_LimitRangeItem` (a Container item's default limit from its
//! max, its default request from its default limit, else from its min) and `ValidateLimitRange` (the
//! item types Pod, Container, PersistentVolumeClaim or a qualified name, once each; the resource names
//! each type allows; min <= defaultRequest <= default <= max, maxLimitRequestRatio >= 1 and <= max/min;
//! no defaults for the Pod type; a claim item bounds storage), with Kubernetes' messages.

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::quantity::{self, Amount, Format};
use navarch_api::v1::{LimitRange, LimitRangeItem, Quantity};

use crate::validation::field::{Errors, Path, q};
use crate::validation::resource_names::{
    is_native_resource, validate_container_resource_name, validate_resource_name,
};

pub(super) const POD: &str = "Pod";
pub(super) const CONTAINER: &str = "Container";
pub(super) const PERSISTENT_VOLUME_CLAIM: &str = "PersistentVolumeClaim";

/// Kubernetes' `SetDefaults_LimitRangeItem`, for every item.
pub(super) fn default_limit_range(lr: &mut LimitRange) {
    for item in lr.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
        if item.r#type != CONTAINER {
            continue;
        }
        for (k, v) in &item.max {
            item.default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &item.default {
            item.default_request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &item.min {
            item.default_request.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

pub(super) fn validate_limit_range(lr: &LimitRange, errs: &mut Errors) {
    let path = Path::new("spec").child("limits");
    let mut types = BTreeSet::new();
    for (i, item) in lr.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
        let p = path.index(i);
        validate_type_name(&item.r#type, &p.child("type"), errs);
        if !types.insert(item.r#type.as_str()) {
            errs.duplicate(&p.child("type"), q(&item.r#type));
        }
        validate_item(item, &p, errs);
    }
}

/// Kubernetes' `validateLimitRangeTypeName`.
fn validate_type_name(value: &str, path: &Path, errs: &mut Errors) {
    let reasons = navarch_api::names::qualified_name(value);
    if !reasons.is_empty() {
        errs.syntax(path, value, reasons);
    } else if !value.contains('/') && ![POD, CONTAINER, PERSISTENT_VOLUME_CLAIM].contains(&value) {
        errs.invalid(path, q(value), "must be a standard limit type or fully qualified");
    }
}

/// One map of an item (`max`, `min`, ...) with its resource names checked.
fn checked<'a>(
    item: &LimitRangeItem,
    list: &'a BTreeMap<String, Quantity>,
    path: &Path,
    errs: &mut Errors,
) -> &'a BTreeMap<String, Quantity> {
    for k in list.keys() {
        if matches!(item.r#type.as_str(), POD | CONTAINER) {
            validate_container_resource_name(k, &path.key(k), errs);
        } else {
            validate_resource_name(k, &path.key(k), errs);
        }
    }
    list
}

fn validate_item(item: &LimitRangeItem, p: &Path, errs: &mut Errors) {
    let empty = BTreeMap::new();
    let max = checked(item, &item.max, &p.child("max"), errs);
    let min = checked(item, &item.min, &p.child("min"), errs);
    let (default, default_request) = if item.r#type == POD {
        for (field, list) in [("default", &item.default), ("defaultRequest", &item.default_request)] {
            if !list.is_empty() {
                errs.forbidden(&p.child(field), "may not be specified when `type` is 'Pod'");
            }
        }
        (&empty, &empty)
    } else {
        (
            checked(item, &item.default, &p.child("default"), errs),
            checked(item, &item.default_request, &p.child("defaultRequest"), errs),
        )
    };
    if item.r#type == PERSISTENT_VOLUME_CLAIM && !min.contains_key("storage") && !max.contains_key("storage")
    {
        errs.required(
            &p.child("limits"),
            "either minimum or maximum storage value is required, but neither was provided",
        );
    }
    let ratio = checked(item, &item.max_limit_request_ratio, &p.child("maxLimitRequestRatio"), errs);

    let keys: BTreeSet<&String> =
        [max, min, default, default_request, ratio].into_iter().flat_map(|m| m.keys()).collect();
    for k in keys {
        let (min, max, def, req, ratio) =
            (get(min, k), get(max, k), get(default, k), get(default_request, k), get(ratio, k));
        let mut check = |field: &str, shown: &Quantity, detail: String| {
            errs.invalid(&p.child(field).key(k), go_quantity(&shown.string), detail);
        };
        // (lower, its name, upper, its name, the field reported, whether the lower value is shown):
        // Kubernetes' order of checks.
        let orders = [
            (min, "min value", max, "max value", "min", true),
            (min, "min value", req, "default request value", "defaultRequest", false),
            (req, "default request value", max, "max value", "defaultRequest", true),
            (req, "default request value", def, "default limit value", "defaultRequest", true),
            (min, "min value", def, "default value", "default", true),
            (def, "default value", max, "max value", "default", false),
        ];
        for (lower, lower_name, upper, upper_name, field, show_lower) in orders {
            if let (Some((lq, la)), Some((uq, ua))) = (lower, upper)
                && la > ua
            {
                let detail = format!("{lower_name} {} is greater than {upper_name} {}", c(lq), c(uq));
                check(field, if show_lower { lq } else { uq }, detail);
            }
        }
        if let Some((r, a)) = ratio
            && a < Amount(1_000_000_000)
        {
            check("maxLimitRequestRatio", r, format!("ratio {} is less than 1", c(r)));
        }
        if let (Some((r, ra)), Some((_, mn)), Some((_, mx))) = (ratio, min, max) {
            // Kubernetes compares in thousandths when nothing overflows, else in whole units.
            let small = [ra, mn, mx].iter().all(|a| a.value() < MAX_MILLI_VALUE);
            let (ratio_value, lo, hi) = if small {
                (ra.milli_value() as f64 / 1000.0, mn.milli_value(), mx.milli_value())
            } else {
                (ra.value() as f64, mn.value(), mx.value())
            };
            let limit = hi as f64 / lo as f64;
            if ratio_value > limit {
                check(
                    "maxLimitRequestRatio",
                    r,
                    format!("ratio {} is greater than max/min = {limit:.6}", c(r)),
                );
            }
        }
        // GPUs, hugepages and other resources that are not overcommitted: default request = default.
        let overcommit = is_native_resource(k) && !k.starts_with("hugepages-");
        if let (Some((df, a)), Some((dr, b))) = (def, req)
            && !overcommit
            && a != b
        {
            check(
                "defaultRequest",
                dr,
                format!("default value {} must equal to defaultRequest value {} in {k}", c(df), c(dr)),
            );
        }
    }
}

/// The quantity of `k` in `m` with its amount, when it parses.
fn get<'a>(m: &'a BTreeMap<String, Quantity>, k: &str) -> Option<(&'a Quantity, Amount)> {
    m.get(k).and_then(|v| Some((v, v.amount().ok()?)))
}

/// Kubernetes' `resource.MaxMilliValue`: the largest value whose thousandths fit in an int64.
pub(crate) const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

/// A quantity as Kubernetes prints it.
fn c(v: &Quantity) -> String {
    quantity::canonical(&v.string)
}

/// A quantity as Go's `%#v` prints a `resource.Quantity` (field errors of LimitRanges carry the
/// Quantity itself as the bad value, so Kubernetes' messages show its struct): the int64 form
/// Kubernetes' parser gives, the cached canonical text and the format.
fn go_quantity(text: &str) -> String {
    let canonical = quantity::canonical(text);
    let format = quantity::format_of(text);
    let format_name = match format {
        Format::DecimalSi => "DecimalSI",
        Format::BinarySi => "BinarySI",
        Format::DecimalExponent => "DecimalExponent",
    };
    match int64_amount(text, format) {
        Some((value, scale)) => format!(
            "resource.Quantity{{i:resource.int64Amount{{value:{value}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:{canonical:?}, Format:{format_name:?}}}"
        ),
        None => format!(
            "resource.Quantity{{i:resource.int64Amount{{value:0, scale:0}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(0xc000000000)}}, s:{canonical:?}, Format:{format_name:?}}}"
        ),
    }
}

/// The (value, scale) Kubernetes' `ParseQuantity` stores for `text` on its int64 path; `None` when it
/// takes the arbitrary-precision path (a fraction of a binary suffix, more than 18 digits, below nano).
fn int64_amount(text: &str, format: Format) -> Option<(i64, i32)> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let end = rest.find(|ch: char| !(ch.is_ascii_digit() || ch == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let (num, denom) = number.split_once('.').unwrap_or((number, ""));
    let num = num.trim_start_matches('0');
    let digits = num.len() + denom.len();
    let (mut scale, mantissa, precision) = match format {
        Format::BinarySi => {
            let exp = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].iter().position(|s| *s == suffix)? as i32 * 10;
            if !denom.is_empty() {
                return None;
            }
            let precision = 15 - num.len() as i32 - (exp as f32 * 3.0 / 10.0) as i32 - 1;
            (0, 1i64 << exp, precision)
        }
        Format::DecimalSi | Format::DecimalExponent => {
            let exp = match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "" => 0,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                e => e.get(1..)?.parse().ok()?,
            };
            (exp, 1, 18 - digits as i32)
        }
    };
    if precision < 0 {
        return None;
    }
    scale -= denom.len() as i32;
    if scale < -9 {
        return None;
    }
    let value: i64 = if digits == 0 { 0 } else { format!("{num}{denom}").parse().ok()? };
    let result = value.checked_mul(mantissa)?;
    Some((if negative { -result } else { result }, scale))
}

#[cfg(test)]
mod tests {
    use crate::validation::testing::*;

    use super::*;

    const LR: &str =
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: limits, namespace: default}\nspec:\n  limits:\n";

    fn lr(items: &str) -> String {
        format!("{LR}{items}")
    }

    fn lines(errs: &[crate::validation::FieldError]) -> String {
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn container_items_default_from_max_default_and_min() {
        let obj = defaulted(&lr(
            "  - type: Container\n    max: {cpu: '2', memory: 1Gi}\n    min: {cpu: 100m, ephemeral-storage: 1Gi}\n    default: {memory: 512Mi}\n",
        ));
        let navarch_api::Object::LimitRange(o) = obj else { panic!() };
        let item = &o.spec.unwrap().limits[0];
        let s = |m: &BTreeMap<String, Quantity>| {
            m.iter().map(|(k, v)| format!("{k}={}", v.string)).collect::<Vec<_>>().join(",")
        };
        // The default limit comes from max only where there is none; the request from the limit, then min.
        assert_eq!(s(&item.default), "cpu=2,memory=512Mi");
        assert_eq!(s(&item.default_request), "cpu=2,ephemeral-storage=1Gi,memory=512Mi");
        // Other types get nothing.
        let obj = defaulted(&lr("  - type: Pod\n    max: {cpu: '2'}\n"));
        let navarch_api::Object::LimitRange(o) = obj else { panic!() };
        assert!(o.spec.unwrap().limits[0].default.is_empty());
    }

    #[test]
    fn valid_limit_ranges() {
        assert_valid(&lr(
            "  - type: Container\n    max: {cpu: '2', memory: 1Gi}\n    min: {cpu: 100m, memory: 4Mi}\n    default: {cpu: 500m}\n    defaultRequest: {cpu: 200m}\n    maxLimitRequestRatio: {cpu: '10'}\n  - type: Pod\n    max: {cpu: '4'}\n  - type: PersistentVolumeClaim\n    min: {storage: 1Gi}\n    max: {storage: 10Gi}\n  - type: example.com/thing\n    max: {example.com/foo: '1'}\n",
        ));
    }

    #[test]
    fn invalid_items() {
        let cases = [
            (
                "  - type: Node\n    max: {cpu: '1'}\n",
                "spec.limits[0].type",
                "Invalid value: \"Node\": must be a standard limit type or fully qualified",
            ),
            (
                "  - type: Pod\n    max: {cpu: '1'}\n    default: {cpu: '1'}\n",
                "spec.limits[0].default",
                "Forbidden: may not be specified when `type` is 'Pod'",
            ),
            (
                "  - type: PersistentVolumeClaim\n    max: {cpu: '1'}\n",
                "spec.limits[0].limits",
                "Required value: either minimum or maximum storage value is required, but neither was provided",
            ),
            (
                "  - type: Pod\n    min: {storage: 1Gi}\n",
                "spec.limits[0].min[storage]",
                "Invalid value: \"storage\": must be a standard resource for containers",
            ),
            (
                "  - type: Pod\n    min: {cpu: '2'}\n    max: {cpu: 500m}\n",
                "spec.limits[0].min[cpu]",
                "min value 2 is greater than max value 500m",
            ),
            (
                "  - type: Pod\n    maxLimitRequestRatio: {memory: 500m}\n",
                "spec.limits[0].maxLimitRequestRatio[memory]",
                "Invalid value: resource.Quantity{i:resource.int64Amount{value:500, scale:-3}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"500m\", Format:\"DecimalSI\"}: ratio 500m is less than 1",
            ),
            (
                "  - type: Pod\n    min: {cpu: 100m}\n    max: {cpu: 200m}\n    maxLimitRequestRatio: {cpu: '3'}\n",
                "spec.limits[0].maxLimitRequestRatio[cpu]",
                "ratio 3 is greater than max/min = 2.000000",
            ),
            (
                "  - type: Container\n    default: {example.com/gpu: '2'}\n    defaultRequest: {example.com/gpu: '1'}\n",
                "spec.limits[0].defaultRequest[example.com/gpu]",
                "default value 2 must equal to defaultRequest value 1 in example.com/gpu",
            ),
        ];
        for (items, path, reason) in cases {
            assert_error(&lr(items), path, reason);
        }
    }

    #[test]
    fn container_default_order_is_checked_with_kubernetes_messages() {
        // max 1, default 2 (so the default request defaults to 2 as well): three complaints.
        let errs = defaulted_errors(&lr(
            "  - type: Container\n    max: {memory: 1Gi}\n    default: {memory: 2Gi}\n",
        ));
        assert_eq!(
            lines(&errs),
            "spec.limits[0].defaultRequest[memory]: Invalid value: resource.Quantity{i:resource.int64Amount{value:2147483648, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"2Gi\", Format:\"BinarySI\"}: default request value 2Gi is greater than max value 1Gi\n\
             spec.limits[0].default[memory]: Invalid value: resource.Quantity{i:resource.int64Amount{value:1073741824, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"1Gi\", Format:\"BinarySI\"}: default value 2Gi is greater than max value 1Gi"
        );
        let errs = defaulted_errors(&lr(
            "  - type: Container\n    min: {cpu: 500m}\n    default: {cpu: '1'}\n    defaultRequest: {cpu: 200m}\n",
        ));
        assert_eq!(errs.len(), 1, "{}", render(&errs));
        assert!(errs[0].reason.ends_with("min value 500m is greater than default request value 200m"));
    }

    #[test]
    fn duplicate_types() {
        let errs =
            defaulted_errors(&lr("  - type: Pod\n    max: {cpu: '1'}\n  - type: Pod\n    max: {cpu: '2'}\n"));
        assert_eq!(lines(&errs), "spec.limits[1].type: Duplicate value: \"Pod\"");
    }

    #[test]
    fn go_quantity_structs() {
        let go = |t: &str| {
            let s = go_quantity(t);
            s[s.find("value:").unwrap()..s.find('}').unwrap()].to_string()
        };
        assert_eq!(go("1.5"), "value:15, scale:-1");
        assert_eq!(go("2k"), "value:2, scale:3");
        assert_eq!(go("1e3"), "value:1, scale:3");
        assert_eq!(go("0"), "value:0, scale:0");
        assert_eq!(go("64Mi"), "value:67108864, scale:0");
        assert!(go_quantity("1.5Gi").contains("(*inf.Dec)(0x"));
    }
}
