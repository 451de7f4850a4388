//! Label selectors: the string form (`app=web,tier!=db,env in (a,b),!legacy`) used by list/watch and
//! navctl's `-l`, and the structured form (`matchLabels` / `matchExpressions`) of workload specs.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::Error;
use crate::names;
use crate::v1::LabelSelector;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

impl Selector {
    pub fn everything() -> Selector {
        Selector(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// Parses the string form.
    pub fn parse(s: &str) -> Result<Selector, Error> {
        let mut reqs = Vec::new();
        for term in split_top_level(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term)?);
        }
        Ok(Selector(reqs))
    }

    /// Converts a workload's structured selector. `None` or an empty selector matches everything (callers
    /// that must reject empty selectors check that themselves).
    pub fn from_label_selector(ls: Option<&LabelSelector>) -> Result<Selector, Error> {
        let Some(ls) = ls else { return Ok(Selector::everything()) };
        let mut reqs: Vec<Requirement> =
            ls.match_labels.iter().map(|(k, v)| Requirement::Equals(k.clone(), v.clone())).collect();
        for (i, e) in ls.match_expressions.iter().enumerate() {
            let path = format!("matchExpressions[{i}]");
            let r = match e.operator.as_str() {
                "In" | "NotIn" if e.values.is_empty() => {
                    return Err(Error::field(
                        format!("{path}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
                "In" => Requirement::In(e.key.clone(), e.values.clone()),
                "NotIn" => Requirement::NotIn(e.key.clone(), e.values.clone()),
                "Exists" | "DoesNotExist" if !e.values.is_empty() => {
                    return Err(Error::field(
                        format!("{path}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(Error::field(
                        format!("{path}.operator"),
                        format!(
                            "Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                        ),
                    ));
                }
            };
            reqs.push(r);
        }
        Ok(Selector(reqs))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn bad(term: &str, why: &str) -> Error {
    Error::Selector(format!("invalid label selector {term:?}: {why}"))
}

fn check_key(term: &str, key: &str) -> Result<String, Error> {
    let errs = names::qualified_name(key);
    if !errs.is_empty() {
        return Err(bad(term, &format!("key {}", errs.join("; "))));
    }
    Ok(key.to_string())
}

fn check_value(term: &str, v: &str) -> Result<String, Error> {
    let errs = names::label_value(v);
    if !errs.is_empty() {
        return Err(bad(term, &errs.join("; ")));
    }
    Ok(v.to_string())
}

fn parse_term(term: &str) -> Result<Requirement, Error> {
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(check_key(term, k.trim())?));
    }
    if let Some(open) = term.find('(') {
        let close = term.rfind(')').filter(|&c| c > open).ok_or_else(|| bad(term, "missing ')'"))?;
        if !term[close + 1..].trim().is_empty() {
            return Err(bad(term, "unexpected text after ')'"));
        }
        let head: Vec<&str> = term[..open].split_whitespace().collect();
        let [key, op] = head[..] else {
            return Err(bad(term, "expected `key in (values)` or `key notin (values)`"));
        };
        let key = check_key(term, key)?;
        let values = term[open + 1..close]
            .split(',')
            .map(|v| check_value(term, v.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return match op {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            _ => Err(bad(term, &format!("unknown operator {op:?}, expected `in` or `notin`"))),
        };
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = term.split_once(op) {
            let key = check_key(term, k.trim())?;
            let value = check_value(term, v.trim())?;
            return Ok(if neg {
                Requirement::NotEquals(key, value)
            } else {
                Requirement::Equals(key, value)
            });
        }
    }
    Ok(Requirement::Exists(check_key(term, term)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parse_and_match() {
        let s = Selector::parse("app=web, tier!=db,env in (prod, staging),!legacy,team").unwrap();
        assert_eq!(s.0.len(), 5);
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "x"), ("legacy", "")])));
        assert!(Selector::parse("").unwrap().matches(&labels(&[])));
        assert!(Selector::parse("a notin (x)").unwrap().matches(&labels(&[])));
        assert_eq!(Selector::parse("a==b").unwrap().to_string(), "a=b");
    }

    #[test]
    fn parse_errors() {
        assert!(Selector::parse("a in (x").is_err());
        assert!(Selector::parse("a maybe (x)").is_err());
        assert!(Selector::parse("bad key=x").is_err());
        assert!(Selector::parse("a=-x").is_err());
    }

    #[test]
    fn structured() {
        let ls = LabelSelector {
            match_labels: [("app".to_string(), "web".to_string())].into(),
            match_expressions: vec![crate::v1::LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: vec!["fe".into()],
            }],
        };
        let s = Selector::from_label_selector(Some(&ls)).unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
    }
}
