//! Query parameters, read the way Kubernetes reads them: repeated keys allowed, and a boolean is false
//! only when absent, empty, `0` or `false` (any case) — Python's client sends `watch=True`.

use super::status::StatusError;

#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn str(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_string()
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")))
    }

    /// An integer parameter; a value that is not one is a 400 naming the parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, StatusError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                StatusError::bad_request(format!("{key}: Invalid value: {v:?}: must be an integer"))
            }),
        }
    }

    /// `dryRun=All` (the only value Kubernetes accepts).
    pub fn dry_run(&self) -> Result<bool, StatusError> {
        dry_run_values(&self.all("dryRun"))
    }
}

/// `["All"]` is a dry run, `[]` is not; anything else is an error, as in Kubernetes.
pub fn dry_run_values<S: AsRef<str>>(values: &[S]) -> Result<bool, StatusError> {
    match values {
        [] => Ok(false),
        [v] if v.as_ref() == "All" => Ok(true),
        [v] if v.as_ref().is_empty() => Ok(false),
        _ => Err(StatusError::bad_request(format!(
            "dryRun: Unsupported value: {:?}: supported values: \"All\"",
            values.iter().map(AsRef::as_ref).collect::<Vec<_>>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_kubernetes_reads_them() {
        let q = Query::parse(Some("watch=True&stdin=False&a=0&b=&c=1&d=yes"));
        assert!(q.bool("watch"));
        assert!(!q.bool("stdin"));
        assert!(!q.bool("a"));
        assert!(!q.bool("b"));
        assert!(q.bool("c"));
        assert!(q.bool("d"));
        assert!(!q.bool("missing"));
    }

    #[test]
    fn decodes_and_repeats() {
        let q = Query::parse(Some(
            "fieldSelector=metadata.name%3Dweb&command=sh&command=-c&labelSelector=app+in+(a%2Cb)",
        ));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=web"));
        assert_eq!(q.all("command"), vec!["sh", "-c"]);
        assert_eq!(q.get("labelSelector"), Some("app in (a,b)"));
        assert!(Query::parse(Some("limit=x")).int("limit").is_err());
        assert_eq!(Query::parse(Some("limit=500")).int("limit").unwrap(), Some(500));
    }

    #[test]
    fn dry_run() {
        assert!(Query::parse(Some("dryRun=All")).dry_run().unwrap());
        assert!(!Query::parse(None).dry_run().unwrap());
        assert!(Query::parse(Some("dryRun=true")).dry_run().is_err());
    }
}
