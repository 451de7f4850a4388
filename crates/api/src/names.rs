//! Name and label syntax, as Kubernetes defines it (apimachinery's validation of names and labels).
//! Each check returns the reasons a value is invalid; empty means valid.

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const LABEL_VALUE_MAX: usize = 63;
const QUALIFIED_NAME_MAX: usize = 63;

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric, at most 63.
pub fn dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX {
        errs.push(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    let ok = !v.is_empty()
        && v.chars().all(|c| is_alnum(c) || c == '-')
        && v.starts_with(is_alnum)
        && v.ends_with(is_alnum);
    if !ok {
        errs.push(format!(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc'), got {v:?}"
        ));
    }
    errs
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    let ok = !v.is_empty()
        && v.split('.').all(|p| {
            !p.is_empty()
                && p.chars().all(|c| is_alnum(c) || c == '-')
                && p.starts_with(is_alnum)
                && p.ends_with(is_alnum)
        });
    if !ok {
        errs.push(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com'), got {v:?}"
        ));
    }
    errs
}

/// RFC 1035 label (Service names): like a 1123 label but starting with a letter.
pub fn dns1035_label(v: &str) -> Vec<String> {
    let mut errs = dns1123_label(v);
    if errs.is_empty() && !v.starts_with(|c: char| c.is_ascii_lowercase()) {
        errs.push(format!(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123'), got {v:?}"
        ));
    }
    errs
}

fn name_part_ok(v: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !v.is_empty()
        && v.len() <= QUALIFIED_NAME_MAX
        && v.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && v.starts_with(alnum)
        && v.ends_with(alnum)
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at most 63 characters of
/// alphanumerics, '-', '_', '.', starting and ending alphanumeric.
pub fn qualified_name(v: &str) -> Vec<String> {
    let (prefix, name) = match v.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, v),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            errs.extend(dns1123_subdomain(p).into_iter().map(|e| format!("prefix part {e}")));
        }
    }
    if !name_part_ok(name) {
        errs.push(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', must start and end with an alphanumeric character and be at most 63 characters (e.g. 'MyName', 'my.name', or '123-abc'), got {v:?}"
        ));
    }
    errs
}

/// A label value: empty, or at most 63 characters like a qualified name's name part.
pub fn label_value(v: &str) -> Vec<String> {
    if v.is_empty() || (v.len() <= LABEL_VALUE_MAX && name_part_ok(v)) {
        return Vec::new();
    }
    vec![format!(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character and be at most 63 characters, got {v:?}"
    )]
}

/// IANA service name (named ports): at most 15 characters, lower-case alphanumerics and '-', at least one
/// letter, no leading/trailing or double '-'.
pub fn port_name(v: &str) -> Vec<String> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.chars().all(|c| is_alnum(c) || c == '-')
        && v.chars().any(|c| c.is_ascii_lowercase())
        && !v.starts_with('-')
        && !v.ends_with('-')
        && !v.contains("--");
    if ok {
        Vec::new()
    } else {
        vec![format!(
            "must be no more than 15 lower case alphanumeric characters or '-', contain at least one letter, and not start, end or have two consecutive '-', got {v:?}"
        )]
    }
}

/// A name that is one path segment of a URL (`path.IsValidPathSegmentName`): not `.` or `..`, no `/` or
/// `%`. Kubernetes' rule for the names of RBAC objects, and what every name must be to be addressable.
pub fn path_segment_name(v: &str) -> Vec<String> {
    if let Some(whole) = [".", ".."].into_iter().find(|w| v == *w) {
        return vec![format!("may not be '{whole}'")];
    }
    ["/", "%"]
        .into_iter()
        .filter(|part| v.contains(part))
        .map(|part| format!("may not contain '{part}'"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("my-app.example").is_empty());
        assert!(!dns1123_subdomain("My_App").is_empty());
        assert!(!dns1123_subdomain("").is_empty());
        assert!(dns1123_label("a1").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(!qualified_name("a b").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(port_name("http").is_empty());
        assert!(!port_name("8080").is_empty());
        for ok in ["system:controller:x", "Admin", "a.b", "...", "x..", "", "é"] {
            assert!(path_segment_name(ok).is_empty(), "{ok}");
        }
        assert_eq!(path_segment_name("."), ["may not be '.'"]);
        assert_eq!(path_segment_name(".."), ["may not be '..'"]);
        assert_eq!(path_segment_name("a/b%c"), ["may not contain '/'", "may not contain '%'"]);
        assert_eq!(path_segment_name("%2F"), ["may not contain '%'"]);
    }
}
