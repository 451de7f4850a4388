//! Pulling into containerd: the OCI manifest, index and image-config formats, choosing this
//! platform's manifest, writing blobs into the content store with their GC references, recording the
//! image, and unpacking its layers into snapshots named by their chain ids; and looking up an image
//! already there ([`present`]).

use std::collections::HashMap;

use containerd_client::types::Descriptor;
use serde::Deserialize;

use super::{ImageError, Puller, Reference, Result, sha256_hex};
use crate::containerd::Containerd;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    config: Option<OciDescriptor>,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Debug, Deserialize)]
struct ImageConfig {
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// What a pull (or a lookup of a present image) yields: enough to create containers from it.
#[derive(Debug, Clone)]
pub struct PulledImage {
    pub name: String,
    /// The manifest's (or index's) digest, the image ID Kubernetes reports.
    pub digest: String,
    /// The top layer's chain id: the parent snapshot of a container's rootfs.
    pub chain_id: String,
    /// The image config (`config` of the OCI image config: Env, Entrypoint, Cmd, WorkingDir, User).
    pub config: serde_json::Value,
}

/// Chain ids of a layer stack (OCI image spec: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_hex(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

// The pull itself; the registry side of `Puller` (fetching manifests and blobs) is in `registry`.
impl Puller {
    /// Pulls `image` into containerd (skipping blobs and snapshots it already has) and records it.
    pub async fn pull(&self, ctd: &Containerd, image: &str) -> Result<PulledImage> {
        let r = Reference::parse(image)?;
        let lease = format!("navarch-pull-{}", rand::random::<u64>());
        ctd.create_lease(&lease).await?;
        let result = self.pull_leased(ctd, &r, &lease).await;
        if let Err(e) = ctd.delete_lease(&lease).await {
            tracing::warn!(%lease, error = %e, "deleting pull lease");
        }
        result
    }

    async fn pull_leased(&self, ctd: &Containerd, r: &Reference, lease: &str) -> Result<PulledImage> {
        let (headers, body) = self.fetch(r, &format!("manifests/{}", r.manifest_ref()), ACCEPT).await?;
        let top_digest = headers.get("docker-content-digest").cloned().unwrap_or_else(|| sha256_hex(&body));
        if sha256_hex(&body) != top_digest {
            return Err(ImageError::Registry(format!(
                "manifest of {} does not match its digest {top_digest}",
                r.name()
            )));
        }
        let top: Manifest = serde_json::from_slice(&body)
            .map_err(|e| ImageError::Registry(format!("manifest of {}: {e}", r.name())))?;
        let top_media = headers
            .get("content-type")
            .cloned()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| top.media_type.clone());
        let top_size = body.len() as i64;

        // An index: choose this platform's manifest.
        let (manifest, manifest_body, manifest_digest, index) =
            if top_media == MEDIA_OCI_INDEX || top_media == MEDIA_DOCKER_LIST || !top.manifests.is_empty() {
                let chosen = this_platform(&top).ok_or_else(|| {
                    ImageError::Registry(format!("{}: no manifest for linux/{}", r.name(), arch()))
                })?;
                let (_, mbody) = self.fetch(r, &format!("manifests/{}", chosen.digest), ACCEPT).await?;
                if sha256_hex(&mbody) != chosen.digest {
                    return Err(ImageError::Registry(format!(
                        "manifest {} does not match its digest",
                        chosen.digest
                    )));
                }
                let m: Manifest = serde_json::from_slice(&mbody)
                    .map_err(|e| ImageError::Registry(format!("manifest {}: {e}", chosen.digest)))?;
                (m, mbody, chosen.digest.clone(), Some((body, top_media.clone())))
            } else {
                (top, body, top_digest.clone(), None)
            };
        let config = manifest
            .config
            .as_ref()
            .ok_or_else(|| ImageError::Registry(format!("manifest of {} has no config", r.name())))?;

        // Blobs: layers, config, then the manifest (and index) with GC references to them.
        for layer in &manifest.layers {
            self.store_blob(ctd, r, lease, &layer.digest).await?;
        }
        let cfg_bytes = match ctd.content_exists(&config.digest).await? {
            true => ctd.read_content(&config.digest).await?,
            false => self.fetch_blob(r, &config.digest).await?,
        };
        let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
            .map_err(|e| ImageError::Registry(format!("image config {}: {e}", config.digest)))?;
        if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::Registry(format!(
                "{}: {} layers but {} diff ids",
                r.name(),
                manifest.layers.len(),
                cfg.rootfs.diff_ids.len()
            )));
        }
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        let top_chain = chains.last().cloned().unwrap_or_default();
        // The config keeps the unpacked snapshot alive; the manifest keeps config and layers.
        if !ctd.content_exists(&config.digest).await? {
            let gc_snapshot = format!("containerd.io/gc.ref.snapshot.{}", crate::containerd::SNAPSHOTTER);
            let labels = HashMap::from([(gc_snapshot, top_chain.clone())]);
            ctd.write_content(lease, &config.digest, cfg_bytes.clone(), labels).await?;
        }
        let mut mlabels =
            HashMap::from([("containerd.io/gc.ref.content.config".to_string(), config.digest.clone())]);
        for (i, l) in manifest.layers.iter().enumerate() {
            mlabels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
        }
        if !ctd.content_exists(&manifest_digest).await? {
            ctd.write_content(lease, &manifest_digest, manifest_body.clone(), mlabels).await?;
        }
        let mut target = Descriptor {
            media_type: if manifest.media_type.is_empty() {
                MEDIA_OCI_MANIFEST.into()
            } else {
                manifest.media_type.clone()
            },
            digest: manifest_digest.clone(),
            size: manifest_body.len() as i64,
            annotations: HashMap::new(),
        };
        if let Some((ibody, imedia)) = index {
            if !ctd.content_exists(&top_digest).await? {
                let labels = HashMap::from([(
                    "containerd.io/gc.ref.content.m.0".to_string(),
                    manifest_digest.clone(),
                )]);
                ctd.write_content(lease, &top_digest, ibody, labels).await?;
            }
            target = Descriptor {
                media_type: imedia,
                digest: top_digest.clone(),
                size: top_size,
                annotations: HashMap::new(),
            };
        }

        // Unpack: one committed snapshot per chain id.
        for (i, (layer, chain)) in manifest.layers.iter().zip(&chains).enumerate() {
            if ctd.snapshot_exists(chain).await? {
                continue;
            }
            let parent = if i == 0 { String::new() } else { chains[i - 1].clone() };
            let key = format!("extract-{}-{chain}", rand::random::<u32>());
            let mounts = ctd.prepare_snapshot(&key, &parent, Some(lease)).await?;
            let desc = Descriptor {
                media_type: layer.media_type.clone(),
                digest: layer.digest.clone(),
                size: layer.size,
                annotations: HashMap::new(),
            };
            let applied = ctd.apply_layer(desc, mounts).await;
            let committed = match applied {
                Ok(()) => ctd.commit_snapshot(chain, &key, lease).await,
                Err(e) => Err(e),
            };
            if let Err(e) = committed {
                let _ = ctd.remove_snapshot(&key).await;
                if !(e.is_already_exists()) {
                    return Err(e.into());
                }
            }
        }
        ctd.put_image(&r.name(), target).await?;
        let full: serde_json::Value = serde_json::from_slice(&cfg_bytes).unwrap_or_default();
        Ok(PulledImage {
            name: r.name(),
            digest: top_digest,
            chain_id: top_chain,
            config: full.get("config").cloned().unwrap_or_default(),
        })
    }

    /// Fetches a blob into the content store unless it is there.
    async fn store_blob(&self, ctd: &Containerd, r: &Reference, lease: &str, digest: &str) -> Result<()> {
        if !ctd.content_exists(digest).await? {
            let body = self.fetch_blob(r, digest).await?;
            ctd.write_content(lease, digest, body, HashMap::new()).await?;
        }
        Ok(())
    }
}

/// The bytes of an image's content as containerd's CRI reports its size: the target (manifest or
/// index), this platform's manifest, the config and the (compressed) layers.
pub async fn content_size(ctd: &Containerd, target: &Descriptor) -> Result<i64> {
    let mut size = target.size;
    let mut manifest: Manifest = serde_json::from_slice(&ctd.read_content(&target.digest).await?)
        .map_err(|e| ImageError::Registry(format!("manifest {}: {e}", target.digest)))?;
    if !manifest.manifests.is_empty() {
        let Some(chosen) = this_platform(&manifest) else { return Ok(size) };
        size += chosen.size;
        let digest = chosen.digest.clone();
        manifest = serde_json::from_slice(&ctd.read_content(&digest).await?)
            .map_err(|e| ImageError::Registry(format!("manifest {digest}: {e}")))?;
    }
    size += manifest.config.map(|c| c.size).unwrap_or(0);
    Ok(size + manifest.layers.iter().map(|l| l.size).sum::<i64>())
}

/// An index's manifest for linux on this machine's architecture.
fn this_platform(index: &Manifest) -> Option<&OciDescriptor> {
    index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == arch()))
}

/// Looks up an image already in containerd (unpacked), without the network.
pub async fn present(ctd: &Containerd, image: &str) -> Result<Option<PulledImage>> {
    let r = Reference::parse(image)?;
    let Some(img) = ctd.get_image(&r.name()).await? else { return Ok(None) };
    let Some(target) = img.target else { return Ok(None) };
    let mut manifest: Manifest = match serde_json::from_slice(&ctd.read_content(&target.digest).await?) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if !manifest.manifests.is_empty() {
        let Some(chosen) = this_platform(&manifest) else { return Ok(None) };
        manifest = match serde_json::from_slice(&ctd.read_content(&chosen.digest).await?) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
    }
    let Some(config) = manifest.config else { return Ok(None) };
    let full: serde_json::Value = match serde_json::from_slice(&ctd.read_content(&config.digest).await?) {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    let diff_ids: Vec<String> = full
        .pointer("/rootfs/diff_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let chain_id = chain_ids(&diff_ids).last().cloned().unwrap_or_default();
    if chain_id.is_empty() || !ctd.snapshot_exists(&chain_id).await? {
        return Ok(None);
    }
    Ok(Some(PulledImage {
        name: r.name(),
        digest: target.digest,
        chain_id,
        config: full.get("config").cloned().unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let d = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let c = chain_ids(&d);
        assert_eq!(c[0], "sha256:a");
        assert_eq!(c[1], sha256_hex(b"sha256:a sha256:b"));
    }
}
