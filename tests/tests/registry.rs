//! The local OCI registry with the offline test images (`scripts/images.sh`), checked over plain HTTP the
//! way a container runtime resolving `busybox:1.36` through a docker.io mirror would ask for it.

use navarch_tests::{Registry, http_get, http_get_with_headers};
use serde_json::Value;

/// What containerd sends when it resolves a tag.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// The manifest of `library/<name>:<tag>`: (digest, manifest JSON).
fn manifest(registry: &Registry, name: &str, tag: &str) -> (String, Value) {
    let path = format!("/v2/library/{name}/manifests/{tag}");
    let resp = http_get_with_headers(registry.addr(), &path, &[("Accept", ACCEPT)])
        .unwrap_or_else(|| panic!("GET {path}: no response"));
    assert_eq!(resp.status, 200, "GET {path}: {resp:?}\n--- registry log\n{}", registry.log());
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        ACCEPT.contains(content_type) && !content_type.is_empty(),
        "{path}: content type {content_type:?}"
    );
    let digest = resp.header("docker-content-digest").expect("Docker-Content-Digest header").to_string();
    let json: Value = serde_json::from_str(&resp.body).expect("manifest is JSON");
    (digest, json)
}

/// The tags of `library/<name>`.
fn tags(registry: &Registry, name: &str) -> Vec<String> {
    let path = format!("/v2/library/{name}/tags/list");
    let (code, body) = http_get(registry.addr(), &path).unwrap_or_else(|| panic!("GET {path}: no response"));
    assert_eq!(code, 200, "GET {path}: {body}");
    let json: Value = serde_json::from_str(&body).expect("tags list is JSON");
    let mut tags: Vec<String> =
        json["tags"].as_array().expect("tags").iter().map(|t| t.as_str().unwrap().to_string()).collect();
    tags.sort();
    tags
}

#[test]
fn registry_serves_the_test_images() {
    let registry = Registry::with_test_images();

    let (digest_136, m) = manifest(&registry, "busybox", "1.36");
    assert_eq!(m["schemaVersion"], 2);
    let layers = m["layers"].as_array().expect("layers");
    assert!(!layers.is_empty(), "{m}");
    // Small: busybox-static is about 2 MB uncompressed.
    let size: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    assert!(size < 5 << 20, "busybox:1.36 layers are {size} bytes");

    // Different digests, so a rollout between the two tags really changes the image.
    let (digest_latest, _) = manifest(&registry, "busybox", "latest");
    assert_ne!(digest_136, digest_latest);
    let (digest_v1, _) = manifest(&registry, "serve-hostname", "1.0");
    let (digest_v2, _) = manifest(&registry, "serve-hostname", "2.0");
    assert_ne!(digest_v1, digest_v2);

    assert_eq!(tags(&registry, "busybox"), ["1.36", "latest"]);
    assert_eq!(tags(&registry, "serve-hostname"), ["1.0", "2.0"]);

    // Blobs are fetchable (the config of serve-hostname:2.0 names its entrypoint and port).
    let (_, m) = manifest(&registry, "serve-hostname", "2.0");
    let config = m["config"]["digest"].as_str().expect("config digest");
    let (code, body) = http_get(registry.addr(), &format!("/v2/library/serve-hostname/blobs/{config}"))
        .expect("config blob");
    assert_eq!(code, 200, "{body}");
    let config: Value = serde_json::from_str(&body).expect("image config is JSON");
    assert_eq!(config["os"], "linux");
    assert!(config["config"]["ExposedPorts"].get("9376/tcp").is_some(), "{config}");
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/serve-hostname");
}

#[test]
fn two_registries_share_one_image_build() {
    // Runs in parallel with the test above: the build is serialized and done once per process.
    let a = Registry::with_test_images();
    let b = Registry::start();
    assert_ne!(a.addr(), b.addr());
    assert_eq!(tags(&a, "serve-hostname"), ["1.0", "2.0"]);
    let (code, _) = http_get(b.addr(), "/v2/library/busybox/tags/list").expect("empty registry answers");
    assert_eq!(code, 404);
}
