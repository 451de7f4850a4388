//! Helpers for the table-driven tests of every validation file.

use navarch_api::Object;

use super::{FieldError, apply_defaults, validate};

/// Reads one object from YAML (panics on malformed test input).
pub(crate) fn parse(yaml: &str) -> Object {
    let mut objs = navarch_api::manifest::parse(yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("test manifest does not parse: {e:?}"));
    assert_eq!(objs.len(), 1, "expected one object");
    objs.remove(0)
}

/// Reads one object and applies the defaults.
pub(crate) fn defaulted(yaml: &str) -> Object {
    let mut obj = parse(yaml);
    apply_defaults(&mut obj);
    obj
}

/// Reads, defaults and validates every document of `yaml`.
pub(crate) fn defaulted_errors(yaml: &str) -> Vec<FieldError> {
    let objs = navarch_api::manifest::parse(yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("test manifest does not parse: {e:?}"));
    objs.into_iter()
        .flat_map(|mut o| {
            apply_defaults(&mut o);
            validate(&o, None)
        })
        .collect()
}

/// Asserts that the defaulted object validates cleanly.
pub(crate) fn assert_valid(yaml: &str) {
    let errs = defaulted_errors(yaml);
    assert!(errs.is_empty(), "expected no errors, got:\n{}", render(&errs));
}

/// Asserts that the defaulted object has exactly one error, at `path`, whose reason contains
/// `reason`.
pub(crate) fn assert_error(yaml: &str, path: &str, reason: &str) {
    let errs = defaulted_errors(yaml);
    assert_single(&errs, path, reason, yaml);
}

/// Asserts [`assert_error`] of each `(from, to, path, reason)` case: `base` edited `from` → `to` has exactly
/// one error, at `path`, whose reason contains `reason`.
pub(crate) fn assert_edit_errors<P: AsRef<str>>(base: &str, cases: &[(&str, &str, P, &str)]) {
    for (from, to, path, reason) in cases {
        assert_error(&edit(base, from, to), path.as_ref(), reason);
    }
}

pub(crate) fn assert_single(errs: &[FieldError], path: &str, reason: &str, context: &str) {
    assert!(
        errs.len() == 1 && errs[0].path == path && errs[0].reason.contains(reason),
        "expected exactly `{path}: ...{reason}...`, got:\n{}\nfor:\n{context}",
        render(errs)
    );
}

/// Validates `new` as an update of `old` (both defaulted).
pub(crate) fn update_errors(old: &str, new: &str) -> Vec<FieldError> {
    validate(&defaulted(new), Some(&defaulted(old)))
}

/// Asserts that updating `old` to `new` gives exactly one error, at `path`, whose reason contains `reason`.
pub(crate) fn assert_update_error(old: &str, new: &str, path: &str, reason: &str) {
    assert_single(&update_errors(old, new), path, reason, new);
}

pub(crate) fn render(errs: &[FieldError]) -> String {
    errs.iter().map(|e| format!("  {e}\n")).collect()
}

/// Applies `edit` (a `sed`-like `from` → `to` replacement that must match) to `base`.
pub(crate) fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "test edit {from:?} does not match the base manifest");
    base.replacen(from, to, 1)
}
