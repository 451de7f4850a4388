//! Image references: `registry/repository[:tag][@digest]`, parsed and normalised as Docker does
//! (the `docker.io` registry and its `library/` namespace by default, `latest` when there is neither
//! tag nor digest), the canonical name containerd records, and the default pull policy.

use super::{ImageError, Result};

/// A parsed image reference: `registry/repository[:tag][@digest]`, normalised as Docker does
/// (`busybox` → `docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |reason: &str| ImageError::InvalidReference { reference: s.into(), reason: reason.into() };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !d.starts_with("sha256:") || d.len() != 71 {
                    return Err(bad("digest must be sha256:<64 hex digits>"));
                }
                (r, d.to_string())
            }
            None => (s, String::new()),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) if i + 1 == rest[slash..].len() => return Err(bad("empty tag after ':'")),
            Some(i) => (&rest[..slash + i], rest[slash + i + 1..].to_string()),
            None => (rest, String::new()),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty()
            || !repository.split('/').all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            })
        {
            return Err(bad("repository must be lower-case path components of [a-z0-9._-]"));
        }
        if !tag.is_empty()
            && (tag.len() > 128 || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(bad("tag must be up to 128 of [A-Za-z0-9._-]"));
        }
        let tag = if tag.is_empty() && digest.is_empty() { "latest".to_string() } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The canonical name containerd records (`docker.io/library/busybox:1.36`).
    pub fn name(&self) -> String {
        let mut n = format!("{}/{}", self.registry, self.repository);
        if !self.tag.is_empty() {
            n.push(':');
            n.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            n.push('@');
            n.push_str(&self.digest);
        }
        n
    }

    /// What to ask the registry's manifests endpoint for.
    pub(super) fn manifest_ref(&self) -> &str {
        if self.digest.is_empty() { &self.tag } else { &self.digest }
    }

    /// Kubernetes' default pull policy: `Always` for `:latest` or no tag, else `IfNotPresent`.
    pub fn default_pull_policy(image: &str) -> &'static str {
        match Reference::parse(image) {
            Ok(r) if r.digest.is_empty() && r.tag == "latest" => "Always",
            _ => "IfNotPresent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(p("busybox").name(), "docker.io/library/busybox:latest");
        assert_eq!(p("busybox:1.36").name(), "docker.io/library/busybox:1.36");
        assert_eq!(p("nginx/nginx:1").name(), "docker.io/nginx/nginx:1");
        assert_eq!(p("127.0.0.1:5000/x/y:2").name(), "127.0.0.1:5000/x/y:2");
        assert_eq!(p("localhost/app").name(), "localhost/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(p(&format!("busybox@{d}")).name(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(p(&format!("registry.k8s.io/pause:3.9@{d}")).tag, "3.9");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "busy box"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pull_policy_defaults() {
        assert_eq!(Reference::default_pull_policy("busybox"), "Always");
        assert_eq!(Reference::default_pull_policy("busybox:latest"), "Always");
        assert_eq!(Reference::default_pull_policy("busybox:1.36"), "IfNotPresent");
    }
}
