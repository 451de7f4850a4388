//! How objects are laid out in etcd.
//!
//! Key: `{prefix}/{plural}/{namespace}/{name}` for namespaced kinds, `{prefix}/{plural}/{name}` for
//! cluster-scoped ones (Kubernetes' own layout, e.g. `/registry/pods/default/web-1`).
//! Value: the protobuf encoding of the typed object with `metadata.resourceVersion` empty; the
//! resourceVersion is the key's etcd `mod_revision`, filled in when the value is read.

use navarch_api::{KindInfo, Object};

/// The prefix under which every object of `kind` is stored, with a trailing `/`.
pub fn kind_prefix(prefix: &str, kind: &KindInfo) -> String {
    format!("{}/{}/", prefix.trim_end_matches('/'), kind.plural)
}

/// The prefix of one namespace's objects of a namespaced kind (trailing `/`); the kind prefix when
/// `namespace` is empty or the kind is cluster-scoped.
pub fn namespace_prefix(prefix: &str, kind: &KindInfo, namespace: &str) -> String {
    if kind.namespaced && !namespace.is_empty() {
        format!("{}{namespace}/", kind_prefix(prefix, kind))
    } else {
        kind_prefix(prefix, kind)
    }
}

/// The key of one object.
pub fn object_key(prefix: &str, kind: &KindInfo, namespace: &str, name: &str) -> String {
    if kind.namespaced {
        format!("{}{namespace}/{name}", kind_prefix(prefix, kind))
    } else {
        format!("{}{name}", kind_prefix(prefix, kind))
    }
}

/// The value stored for `obj`: its encoding without resourceVersion.
pub fn encode_value(obj: &Object) -> Vec<u8> {
    if obj.meta().resource_version.is_empty() {
        return obj.encode();
    }
    let mut o = obj.clone();
    o.meta_mut().resource_version.clear();
    o.encode()
}

/// Reads a stored value, setting resourceVersion to the key's `mod_revision`.
pub fn decode_value(kind: &str, value: &[u8], mod_revision: i64) -> Result<Object, navarch_api::Error> {
    let mut o = Object::decode(kind, value)?;
    o.meta_mut().resource_version = mod_revision.to_string();
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::kind_info;

    #[test]
    fn keys() {
        let ns = kind_info("Namespace").unwrap();
        let cm = kind_info("ConfigMap").unwrap();
        assert_eq!(object_key("/registry", ns, "", "default"), "/registry/namespaces/default");
        assert_eq!(object_key("/registry/", cm, "default", "a"), "/registry/configmaps/default/a");
        assert_eq!(namespace_prefix("/registry", cm, ""), "/registry/configmaps/");
        assert_eq!(namespace_prefix("/registry", cm, "x"), "/registry/configmaps/x/");
    }
}
