//! OpenAPI v3, as Kubernetes serves it: `GET /openapi/v3` lists one document per group-version
//! ([`index`]), and `GET /openapi/v3/<api/v1 | apis/<group>/<version>>?hash=<hash>` is that document
//! ([`document`]).
//!
//! Everything is generated from navarch's own model: the kinds of [`navarch_api::KINDS`] give the paths and
//! operations ([`paths`]), the proto messages of [`navarch_api::schema`] (fields, comments, Kubernetes'
//! patch and required-field tables) give `components.schemas` ([`schemas`]). So the documents describe
//! exactly what navarch accepts.
//!
//! kubectl needs them for three things: `apply`/`create`/`edit` with the default `--validate=strict` look for
//! a PATCH operation carrying `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, and
//! then leave validation to the server; client-side `apply` computes strategic merge patches from the
//! `x-kubernetes-patch-*` extensions; `explain` finds a kind through its paths and renders its schema.

mod paths;
mod schemas;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::Bytes;
use navarch_api::{KINDS, KindInfo};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

// Kinds with the `scale` subresource (`autoscaling/v1 Scale`), as discovery lists them.
use crate::rest::discovery::SCALABLE;

/// The `info.version` of every document.
const VERSION: &str = concat!("v1.32.0+navarch.", env!("CARGO_PKG_VERSION"));

/// One group-version's document, serialized once.
#[derive(Debug)]
pub struct GroupVersionDoc {
    /// The JSON document.
    pub json: Bytes,
    /// Upper-case hex SHA-512 of `json`, as Kubernetes computes it: the `hash` of its URL in the index
    /// (and a strong `ETag`). It changes whenever the document does, so a response to the hashed URL can be
    /// cached as immutable.
    pub hash: String,
}

static DOCUMENTS: LazyLock<BTreeMap<String, GroupVersionDoc>> = LazyLock::new(|| {
    group_versions()
        .into_iter()
        .map(|gv| {
            let json = serde_json::to_vec(&build(&gv)).expect("serializing a JSON value");
            let hash = hex::encode_upper(Sha512::digest(&json));
            (gv.path(), GroupVersionDoc { json: Bytes::from(json), hash })
        })
        .collect()
});

static INDEX: LazyLock<Value> = LazyLock::new(|| {
    let paths: Map<String, Value> = DOCUMENTS
        .iter()
        .map(|(path, doc)| {
            (path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}))
        })
        .collect();
    json!({ "paths": paths })
});

/// The body of `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn index() -> &'static Value {
    &INDEX
}

/// The document of a group-version path as the index names it (`api/v1`, `apis/apps/v1`); `None` for any
/// other path. The `hash` query parameter is not checked: a client with an old hash gets the current
/// document (Kubernetes does the same, adding a redirect; kubectl follows either).
pub fn document(group_version_path: &str) -> Option<&'static GroupVersionDoc> {
    DOCUMENTS.get(group_version_path.trim_matches('/'))
}

/// A group-version navarch serves, with its kinds.
#[derive(Debug, Clone)]
struct GroupVersion {
    /// `""` for the core group.
    group: &'static str,
    version: &'static str,
    kinds: Vec<&'static KindInfo>,
}

impl GroupVersion {
    /// `api/v1`, `apis/apps/v1`: the key in the index.
    fn path(&self) -> String {
        if self.group.is_empty() {
            format!("api/{}", self.version)
        } else {
            format!("apis/{}/{}", self.group, self.version)
        }
    }

    /// `/api/v1`, `/apis/apps/v1`: the prefix of the REST paths.
    fn url_prefix(&self) -> String {
        format!("/{}", self.path())
    }

    /// The group as it appears in operation ids: `Core`, `Apps`, `Coordination` (for
    /// `coordination.k8s.io`).
    fn group_ident(&self) -> String {
        if self.group.is_empty() {
            return "Core".into();
        }
        self.group.trim_end_matches(".k8s.io").split('.').map(capitalize).collect()
    }

    /// `CoreV1`, `AppsV1`: the middle of operation ids (`listCoreV1NamespacedPod`).
    fn op_ident(&self) -> String {
        format!("{}{}", self.group_ident(), capitalize(self.version))
    }

    /// `core_v1`, `apps_v1`: the operations' tag.
    fn tag(&self) -> String {
        format!("{}_{}", self.group_ident().to_ascii_lowercase(), self.version)
    }

    /// `x-kubernetes-group-version-kind` of one of this group-version's kinds.
    fn gvk(&self, kind: &str) -> Value {
        json!({"group": self.group, "version": self.version, "kind": kind})
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// `(group, version)` of an `apiVersion`: `v1` → `("", "v1")`, `apps/v1` → `("apps", "v1")`.
fn split_api_version(api_version: &'static str) -> (&'static str, &'static str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// Every group-version of [`KINDS`], in the order they first appear.
fn group_versions() -> Vec<GroupVersion> {
    let mut gvs: Vec<GroupVersion> = Vec::new();
    for k in KINDS.iter() {
        let (group, version) = split_api_version(k.api_version);
        match gvs.iter_mut().find(|gv| gv.group == group && gv.version == version) {
            Some(gv) => gv.kinds.push(k),
            None => gvs.push(GroupVersion { group, version, kinds: vec![k] }),
        }
    }
    gvs
}

/// One group-version's document.
fn build(gv: &GroupVersion) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": paths::paths(gv),
        "components": {"schemas": schemas::schemas(gv)},
    })
}

/// `{"$ref": "#/components/schemas/<name>"}`.
fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}
